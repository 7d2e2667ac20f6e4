-- Tickets, the append-only event log, and the people the bot has seen.
CREATE TABLE tickets (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,  -- the human "Tiket #N", never reused
    nik             TEXT NOT NULL CHECK (length(nik) = 16 AND nik NOT GLOB '*[^0-9]*'),
    kk              TEXT NOT NULL CHECK (length(kk) = 16 AND kk NOT GLOB '*[^0-9]*'),
    lembaga         TEXT NOT NULL,
    lembaga_key     TEXT NOT NULL,
    phone           TEXT NOT NULL,                      -- E.164
    nama            TEXT,
    keterangan      TEXT NOT NULL DEFAULT '',
    photo_file_id   TEXT,
    state           TEXT NOT NULL DEFAULT 'new',
    opened_by       INTEGER NOT NULL,
    opened_at       TEXT NOT NULL,                      -- ISO 8601, UTC
    state_since     TEXT NOT NULL,
    step_since      TEXT,                               -- start of the running SLA clock
    reject_reason   TEXT,
    chat_id         INTEGER NOT NULL,
    card_message_id INTEGER
);
-- SPEC §3: one open ticket per NIK and lembaga.
CREATE UNIQUE INDEX tickets_one_open_per_nik_lembaga ON tickets (nik, lembaga_key)
    WHERE state IN ('new', 'verified', 'synced', 'sent_to_dwh', 'ready_to_inform', 'rejected');
CREATE INDEX tickets_state ON tickets (state);
CREATE INDEX tickets_nik ON tickets (nik);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id   INTEGER REFERENCES tickets (id),
    actor_id    INTEGER,                                -- NULL: the bot itself
    actor_name  TEXT NOT NULL,
    action      TEXT NOT NULL,
    from_state  TEXT,
    to_state    TEXT,
    at          TEXT NOT NULL,
    detail      TEXT
);
CREATE INDEX events_ticket ON events (ticket_id, id);
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

CREATE TABLE people (
    user_id   INTEGER PRIMARY KEY,
    name      TEXT NOT NULL,
    seen_at   TEXT NOT NULL
);
