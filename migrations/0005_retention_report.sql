-- rebuilds-tables
-- Retention (SPEC §5 privacy.retention_days) and the monthly report (SPEC §4b).
--
-- A purged ticket keeps its NIK and KK only masked (region and serial, the date hidden:
-- 127301******0001), so the statistics and the audit trail survive. SQLite cannot change a
-- CHECK in place: the table is rebuilt (create, copy, drop, rename; the runner turns foreign
-- keys off around this migration and checks them before it commits).
CREATE TABLE tickets_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    nik               TEXT NOT NULL,
    kk                TEXT NOT NULL,
    lembaga           TEXT NOT NULL,
    lembaga_key       TEXT NOT NULL,
    phone             TEXT NOT NULL,                    -- E.164; '' once purged
    nama              TEXT,
    keterangan        TEXT NOT NULL DEFAULT '',
    photo_file_id     TEXT,
    state             TEXT NOT NULL DEFAULT 'new',
    opened_by         INTEGER NOT NULL,
    opened_at         TEXT NOT NULL,
    state_since       TEXT NOT NULL,
    step_since        TEXT,
    reject_reason     TEXT,
    chat_id           INTEGER NOT NULL,
    card_message_id   INTEGER,
    batch_id          INTEGER REFERENCES recap_batches (id),
    intake_chat_id    INTEGER,
    intake_message_id INTEGER,
    ping_message_id   INTEGER,
    purged_at         TEXT,                             -- retention applied (UTC)
    CHECK (length(nik) = 16 AND (nik NOT GLOB '*[^0-9]*' OR (purged_at IS NOT NULL AND
           nik GLOB '[0-9][0-9][0-9][0-9][0-9][0-9][*][*][*][*][*][*][0-9][0-9][0-9][0-9]'))),
    CHECK (length(kk) = 16 AND (kk NOT GLOB '*[^0-9]*' OR (purged_at IS NOT NULL AND
           kk GLOB '[0-9][0-9][0-9][0-9][0-9][0-9][*][*][*][*][*][*][0-9][0-9][0-9][0-9]')))
);
INSERT INTO tickets_new (id, nik, kk, lembaga, lembaga_key, phone, nama, keterangan,
    photo_file_id, state, opened_by, opened_at, state_since, step_since, reject_reason, chat_id,
    card_message_id, batch_id, intake_chat_id, intake_message_id, ping_message_id)
SELECT id, nik, kk, lembaga, lembaga_key, phone, nama, keterangan, photo_file_id, state,
    opened_by, opened_at, state_since, step_since, reject_reason, chat_id, card_message_id,
    batch_id, intake_chat_id, intake_message_id, ping_message_id
FROM tickets;
DROP TABLE tickets;
ALTER TABLE tickets_new RENAME TO tickets;
CREATE UNIQUE INDEX tickets_one_open_per_nik_lembaga ON tickets (nik, lembaga_key)
    WHERE state IN ('new', 'verified', 'synced', 'sent_to_dwh', 'ready_to_inform', 'rejected');
CREATE INDEX tickets_state ON tickets (state);
CREATE INDEX tickets_nik ON tickets (nik);
CREATE INDEX tickets_batch ON tickets (batch_id);
CREATE UNIQUE INDEX tickets_intake ON tickets (intake_chat_id, intake_message_id)
    WHERE intake_message_id IS NOT NULL;
CREATE INDEX tickets_card ON tickets (chat_id, card_message_id);
CREATE INDEX tickets_ping ON tickets (ping_message_id) WHERE ping_message_id IS NOT NULL;
-- Retention finds closed, unpurged tickets by closure time without a scan.
CREATE INDEX tickets_purgeable ON tickets (state_since)
    WHERE purged_at IS NULL AND state IN ('done', 'closed_rejected', 'cancelled');
-- The monthly report reads a month of events by time.
CREATE INDEX events_at ON events (at);

-- The monthly report by email (SPEC §4b): one row per month, delivered exactly once, with
-- the same Message-ID on every attempt (the recap's discipline).
CREATE TABLE report_runs (
    month            TEXT PRIMARY KEY,                  -- YYYY-MM
    created_at       TEXT NOT NULL,
    message_id       TEXT NOT NULL UNIQUE,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    error_kind       TEXT,
    last_error       TEXT,
    sent_at          TEXT,
    notified         INTEGER NOT NULL DEFAULT 0          -- the group was told it failed
);
