-- A recap batch of more than a few tickets is carried by its summary while it waits on the
-- DWH and while the desk informs the residents: the summary has the tickets' buttons and the
-- cards are not edited when it is sent or confirmed (the group's 20 messages a minute).
-- Decided once, when the batch is sent, so that tickets leaving it later change nothing.
-- Batches sent before this version: their cards were edited (0).
ALTER TABLE recap_batches ADD COLUMN carried INTEGER NOT NULL DEFAULT 0;
