-- Which reason menu a card shows is state on the ticket (SPEC §3 "reason buttons"): the
-- action whose reasons are open, and the round of the opening. A reason button carries
-- both, so a button of a closed or older menu changes nothing. Every transition closes it.
ALTER TABLE tickets ADD COLUMN menu_action TEXT;
ALTER TABLE tickets ADD COLUMN menu_round INTEGER NOT NULL DEFAULT 0;
