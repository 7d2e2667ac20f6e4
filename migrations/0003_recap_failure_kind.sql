-- Why a recap is not delivered, as a kind the group is told about in Indonesian
-- (refused, auth, tls, temporary, unreachable, build); last_error keeps the detail.
ALTER TABLE recap_batches ADD COLUMN error_kind TEXT;

-- The group's chat id when Telegram upgraded it to a supergroup (the id changes).
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
