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

-- The outbox learns one more kind: "answer", a mail as the group sees it (SQLite changes a
-- CHECK only by rebuilding the table; ids, and so the delivery order, are kept).
CREATE TABLE outbox_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL
                     CHECK (kind IN ('card', 'summary', 'delete', 'send', 'ping', 'answer')),
    key              TEXT NOT NULL,
    chat_id          INTEGER,
    message_id       INTEGER,
    target_id        INTEGER,
    text             TEXT,
    reply_to         INTEGER,
    person_id        INTEGER,
    refused          INTEGER NOT NULL DEFAULT 1,
    generation       INTEGER NOT NULL DEFAULT 0,
    probe_from       INTEGER,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'done', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    next_attempt_at  TEXT NOT NULL,
    done_at          TEXT,
    last_error       TEXT
);
INSERT INTO outbox_new SELECT * FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE UNIQUE INDEX outbox_one_pending ON outbox (key) WHERE status = 'pending';
CREATE UNIQUE INDEX outbox_send_once ON outbox (key) WHERE kind = 'send';
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
CREATE INDEX outbox_done ON outbox (done_at) WHERE status != 'pending';
CREATE INDEX outbox_person ON outbox (person_id, next_attempt_at) WHERE person_id IS NOT NULL;
