-- A card effect marked "touched" (somebody worked on the card itself, e.g. closed a reason
-- menu there) is edited even while a recap summary carries its ticket. The mark was a suffix
-- of the effect's key, so a ticket could have two pending card effects (two edits): it is a
-- column now, and one pending card effect per ticket carries it.
ALTER TABLE outbox ADD COLUMN touched INTEGER NOT NULL DEFAULT 0;
-- A plain card effect pending beside a marked one takes the mark; the marked one is folded
-- into it.
UPDATE outbox SET touched = 1
 WHERE status = 'pending' AND kind = 'card'
   AND key || ':touched' IN (SELECT key FROM outbox WHERE status = 'pending' AND kind = 'card');
UPDATE outbox SET status = 'done', done_at = next_attempt_at, text = NULL
 WHERE status = 'pending' AND kind = 'card' AND key LIKE '%:touched'
   AND substr(key, 1, length(key) - 8) IN
       (SELECT key FROM outbox WHERE status = 'pending' AND kind = 'card');
-- A marked one alone: the mark moves to the column, the key back to the card's own.
UPDATE outbox SET touched = 1, key = substr(key, 1, length(key) - 8)
 WHERE status = 'pending' AND kind = 'card' AND key LIKE '%:touched';
