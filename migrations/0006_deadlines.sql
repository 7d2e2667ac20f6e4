-- Deadlines in the database (issue K): the running step's deadline is stored with every
-- transition, so /antrian, the overdue sweep and the reminders read an index instead of
-- computing a deadline for every open ticket, and what a card last showed as overdue
-- survives a restart (no re-edit storm). Filled for open tickets at start-up, and again
-- whenever the calendar or the time standards change.
ALTER TABLE tickets ADD COLUMN due_at TEXT;         -- UTC; NULL: no clock runs
ALTER TABLE tickets ADD COLUMN overdue_shown TEXT;  -- the passed deadline the card shows
CREATE INDEX tickets_queue ON tickets (state, due_at, id)
    WHERE state IN ('new', 'verified', 'synced', 'sent_to_dwh', 'ready_to_inform', 'rejected');
CREATE INDEX tickets_due ON tickets (due_at) WHERE due_at IS NOT NULL;
-- Start-up looks for tickets whose card was never posted.
CREATE INDEX tickets_without_card ON tickets (id) WHERE card_message_id IS NULL;
-- A batch's tickets by state (is any still waiting on the DWH admin?) without reading them all.
DROP INDEX tickets_batch;
CREATE INDEX tickets_batch ON tickets (batch_id, state);
