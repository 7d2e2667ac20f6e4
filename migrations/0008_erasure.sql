-- Erasure is real (SPEC §3, §6). The audit log stays append-only, with one exception: once
-- a ticket is purged, the text of its events' details (a typed reason may name a person)
-- may be overwritten; who did what, when, and from which state to which never changes.
DROP TRIGGER events_append_only_update;
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
WHEN NOT (
    NEW.id IS OLD.id AND NEW.ticket_id IS OLD.ticket_id AND NEW.actor_id IS OLD.actor_id
    AND NEW.actor_name IS OLD.actor_name AND NEW.action IS OLD.action
    AND NEW.from_state IS OLD.from_state AND NEW.to_state IS OLD.to_state AND NEW.at IS OLD.at
    AND EXISTS (SELECT 1 FROM tickets WHERE id = OLD.ticket_id AND purged_at IS NOT NULL)
)
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

-- What was delivered needs its text no more (replies may quote a form), and a handled
-- update needs only its id: what older versions kept goes now.
UPDATE outbox SET text = NULL WHERE status != 'pending';
UPDATE inbox SET payload = '' WHERE handled_at IS NOT NULL;
