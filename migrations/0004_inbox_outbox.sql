-- The group is a projection of the database (SPEC §6): Telegram is driven from here.

-- Durable inbox: every update is stored before Telegram may forget it (the next
-- getUpdates confirms it), and handled exactly once, even across a crash.
CREATE TABLE inbox (
    update_id    INTEGER PRIMARY KEY,
    payload      TEXT NOT NULL,                -- the update as Telegram sent it (JSON)
    received_at  TEXT NOT NULL,
    handled_at   TEXT
);
CREATE INDEX inbox_unhandled ON inbox (update_id) WHERE handled_at IS NULL;

-- Durable outbox: what the group must show, committed with the change that implies it
-- and delivered by one worker, with retries, within Telegram's budgets.
--   card / summary: render ticket or batch `target_id` now and post or edit it (coalesced:
--                   one pending row per card; `generation` counts requests while pending)
--   delete:         delete message `message_id` in `chat_id`
--   send:           post `text` in `chat_id` (as a reply to `reply_to`), once per `key`
--   ping:           tell the people whose turn ticket `target_id` now is (a new message,
--                   replying to the card; the previous ping of the ticket is deleted)
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL CHECK (kind IN ('card', 'summary', 'delete', 'send', 'ping')),
    key              TEXT NOT NULL,
    chat_id          INTEGER,
    message_id       INTEGER,
    target_id        INTEGER,
    text             TEXT,
    reply_to         INTEGER,
    person_id        INTEGER,                     -- refusals to one person are combined
    refused          INTEGER NOT NULL DEFAULT 1,  -- how many messages one reply stands for
    generation       INTEGER NOT NULL DEFAULT 0,
    probe_from       INTEGER,                     -- a post whose outcome is unknown
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'done', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    next_attempt_at  TEXT NOT NULL,
    done_at          TEXT,
    last_error       TEXT
);
CREATE UNIQUE INDEX outbox_one_pending ON outbox (key) WHERE status = 'pending';
CREATE UNIQUE INDEX outbox_send_once ON outbox (key) WHERE kind = 'send';
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
CREATE INDEX outbox_done ON outbox (done_at) WHERE status != 'pending';
CREATE INDEX inbox_handled ON inbox (handled_at);
CREATE INDEX outbox_person ON outbox (person_id, next_attempt_at) WHERE person_id IS NOT NULL;

-- Where the intake message of a ticket is: a replayed update finds its ticket again, and
-- the message can still be deleted after a crash.
ALTER TABLE tickets ADD COLUMN intake_chat_id INTEGER;
ALTER TABLE tickets ADD COLUMN intake_message_id INTEGER;
CREATE UNIQUE INDEX tickets_intake ON tickets (intake_chat_id, intake_message_id)
    WHERE intake_message_id IS NOT NULL;
-- Replying to a card finds its ticket by an index, not a scan.
CREATE INDEX tickets_card ON tickets (chat_id, card_message_id);

-- The ticket's current turn ping (SPEC §3 "Whose turn it is"); tickets pinged together
-- share one message.
ALTER TABLE tickets ADD COLUMN ping_message_id INTEGER;
CREATE INDEX tickets_ping ON tickets (ping_message_id) WHERE ping_message_id IS NOT NULL;

-- Reminders and chases (SPEC §3): how often a ticket's overdue step (key "ticket:N", about
-- its deadline) or an unconfirmed recap batch ("batch:N") has been reminded, and when, so a
-- restart neither repeats nor skips one.
CREATE TABLE reminders (
    key        TEXT PRIMARY KEY,
    about      TEXT NOT NULL,
    count      INTEGER NOT NULL,
    last_at    TEXT NOT NULL
);
