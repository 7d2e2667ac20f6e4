-- The daily recap to the central DWH admin: frozen batches and a durable outbox.
CREATE TABLE recap_batches (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    due_date            TEXT NOT NULL,              -- office-local date the recap is for
    created_at          TEXT NOT NULL,
    message_id          TEXT NOT NULL UNIQUE,       -- RFC 5322 Message-ID, reused on retries
    status              TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'sent', 'failed')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     TEXT NOT NULL,
    last_error          TEXT,
    sent_at             TEXT,
    late_notified       INTEGER NOT NULL DEFAULT 0,
    summary_message_id  INTEGER
);
CREATE INDEX recap_batches_status ON recap_batches (status);

ALTER TABLE tickets ADD COLUMN batch_id INTEGER REFERENCES recap_batches (id);
CREATE INDEX tickets_batch ON tickets (batch_id);

-- Scheduled recap days already handled, so a restart neither repeats nor skips one.
CREATE TABLE recap_runs (
    due_date  TEXT PRIMARY KEY,
    batch_id  INTEGER REFERENCES recap_batches (id),
    ran_at    TEXT NOT NULL
);
