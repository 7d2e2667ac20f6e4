-- Mail from the central DWH side (SPEC §4c). A mail is stored here, in the transaction that
-- moves the folder's checkpoint past it, before it is flagged on the server; it is handled
-- once (its Message-ID, else a digest of its bytes, is unique). Its bytes are dropped once
-- it is handled: what the group and the audit need is kept, already masked.
CREATE TABLE mails (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    message_key       TEXT NOT NULL UNIQUE,
    folder            TEXT NOT NULL,
    uidvalidity       INTEGER NOT NULL,
    uid               INTEGER NOT NULL,
    received_at       TEXT NOT NULL,
    size              INTEGER NOT NULL,
    raw               BLOB,
    handled_at        TEXT,
    batch_id          INTEGER REFERENCES recap_batches (id),
    verdict           TEXT,           -- reply, untrusted, auto, bounce, delay, oversize, unmatched …
    shown             TEXT,           -- JSON: what the group message says (masked)
    proposal          TEXT,           -- JSON: {"confirm": [...], "failed": [[id, reason], ...]}
    applied_at        TEXT,
    applied_by        TEXT,
    group_message_id  INTEGER
);
CREATE INDEX mails_unhandled ON mails (handled_at) WHERE handled_at IS NULL;
CREATE INDEX mails_batch ON mails (batch_id);

-- Per folder: the UIDVALIDITY seen and the highest UID stored (IMAP's own resume point).
CREATE TABLE mailbox_checkpoints (
    folder       TEXT PRIMARY KEY,
    uidvalidity  INTEGER NOT NULL,
    last_uid     INTEGER NOT NULL
);

-- A permanent bounce: the address that refused the recap; its tickets go out again.
ALTER TABLE recap_batches ADD COLUMN undelivered TEXT;
-- Mail events belong to a batch, not to one ticket.
ALTER TABLE events ADD COLUMN batch_id INTEGER REFERENCES recap_batches (id);
