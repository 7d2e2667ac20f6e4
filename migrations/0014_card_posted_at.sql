-- When the ticket's card message was posted: Telegram deletes a message only within 48 hours
-- of sending it, so a hand-off re-posts (and deletes the old card) only while it is younger.
-- Cards posted before this version: unknown, treated as old (edited, and a ping).
ALTER TABLE tickets ADD COLUMN card_posted_at TEXT;
