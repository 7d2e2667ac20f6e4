"""What the office keeps: tickets, events, recap batches, the people acting. Plain records,
read from the database by the repository and passed around everywhere else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta


@dataclass(frozen=True)
class Actor:
    """A person (or the bot, with user_id None) acting on a ticket."""

    user_id: int | None
    name: str


BOT_ACTOR = Actor(None, "ticketbot")


@dataclass(frozen=True)
class Ticket:
    id: int
    nik: str
    kk: str
    lembaga: str
    lembaga_key: str
    phone: str
    nama: str | None
    keterangan: str
    photo_file_id: str | None
    state: str
    opened_by: int
    opened_at: datetime
    state_since: datetime
    step_since: datetime | None
    reject_reason: str | None
    chat_id: int
    card_message_id: int | None
    batch_id: int | None = None
    ping_message_id: int | None = None  # the turn ping now standing for this ticket
    purged_at: datetime | None = None  # retention applied: NIK/KK masked, contacts erased
    menu_action: str | None = None  # the action whose reason menu the card shows
    menu_round: int = 0  # how many reason menus were opened on it so far
    scan_is_document: bool = False  # the scan came as a file, not a photo
    sumber: str = "loket"  # how the request came
    card_posted_at: datetime | None = None  # when its card message was sent (None: unknown)


@dataclass(frozen=True)
class Batch:
    """A recap batch: frozen when first built, then delivered exactly once."""

    id: int
    due_date: date
    created_at: datetime
    message_id: str
    status: str  # pending | sent | failed
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    sent_at: datetime | None
    late_notified: bool
    summary_message_id: int | None
    error_kind: str | None = None
    undelivered: str | None = None  # the address whose server returned it for good
    carried: bool = False  # its summary carries its tickets' buttons (`summary_carries`)


@dataclass(frozen=True)
class ReportRun:
    """The monthly report's email for one month: delivered exactly once (SPEC §4b)."""

    month: str  # YYYY-MM
    created_at: datetime
    message_id: str
    status: str  # pending | sent | failed
    attempts: int
    next_attempt_at: datetime
    error_kind: str | None
    last_error: str | None
    sent_at: datetime | None
    notified: bool


@dataclass(frozen=True)
class Event:
    id: int
    ticket_id: int | None
    actor_id: int | None
    actor_name: str
    action: str
    from_state: str | None
    to_state: str | None
    at: datetime
    detail: str | None


@dataclass(frozen=True)
class TransitionOutcome:
    """`applied` False means the compare-and-set lost: `ticket` is the current state and
    `last_event` tells who moved it."""

    applied: bool
    ticket: Ticket
    last_event: Event | None


@dataclass(frozen=True)
class Effect:
    """Something the group must show, committed with the change that implies it.

    card / summary: render ticket or batch `target_id` and post or edit it;
    delete: delete `message_id` in `chat_id` (if Telegram refuses, the group is asked to);
    send: post `text` in `chat_id`, once per `key`; with `person_id`, refusals to that
    person are combined into one reply a minute.
    """

    kind: str
    key: str
    chat_id: int | None = None
    message_id: int | None = None
    target_id: int | None = None
    text: str | None = None
    reply_to: int | None = None
    person_id: int | None = None
    not_before: datetime | None = None  # not delivered before (a photo copy's deletion)
    touched: bool = False  # a card edited even while a summary carries it (`card_effect`)


# Turn pings for the same people within these seconds go as one message (the office's
# reminders.ping_gather_seconds; this is its default).
PING_GATHER = timedelta(seconds=3)
CARDS_FOLLOW_UP_TO = 5  # a batch this small: its cards are edited when it is sent, confirmed


def summary_carries(batch_size: int) -> bool:
    """Whether a recap batch of this many tickets is carried by its summary (SPEC §3, the
    group's budget): while it waits on the DWH and while the desk informs, the summary
    shows its tickets with their buttons, and the cards it shows so are not edited at each
    step of the batch (one group message per ticket, twice)."""
    return batch_size > CARDS_FOLLOW_UP_TO


def card_effect(ticket_id: int, *, touched: bool = False) -> Effect:
    """Render the ticket's card now. `touched`: somebody worked on the card itself (closed a
    reason menu there), so it is edited even while a summary carries the ticket."""
    return Effect("card", f"card:{ticket_id}", target_id=ticket_id, touched=touched)


def ping_effect(ticket_id: int) -> Effect:
    """Tell whoever's turn it now is (and take back the ticket's previous ping)."""
    return Effect("ping", f"ping:{ticket_id}", target_id=ticket_id)


def summary_effect(batch_id: int) -> Effect:
    return Effect("summary", f"summary:{batch_id}", target_id=batch_id)


def answer_effect(mail_id: int) -> Effect:
    """A mail from the DWH side as the group sees it (a reply to its batch's summary)."""
    return Effect("answer", f"answer:{mail_id}", target_id=mail_id)


def delete_effect(
    chat_id: int, message_id: int, *, at: datetime | None = None, card_of: int | None = None
) -> Effect:
    """`card_of`: the message is that ticket's card, replaced by a re-post (a tap on it
    meanwhile is told what happened)."""
    return Effect("delete", f"delete:{chat_id}:{message_id}", chat_id, message_id,
                  target_id=card_of, not_before=at)  # fmt: skip


def send_effect(
    chat_id: int, text: str, key: str, *, reply_to: int | None = None, person_id: int | None = None
) -> Effect:
    return Effect("send", key, chat_id, text=text, reply_to=reply_to, person_id=person_id)


@dataclass(frozen=True)
class Placed:
    """What a delivered card or summary post is the message of (recorded with it)."""

    card: int | None = None  # ticket id
    summary: int | None = None  # recap batch id
    answer: int | None = None  # mail id (SPEC §4c)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    key: str
    chat_id: int | None
    message_id: int | None
    target_id: int | None
    text: str | None
    reply_to: int | None
    person_id: int | None
    refused: int
    generation: int
    probe_from: int | None
    attempts: int
    next_attempt_at: str = ""  # when it is due (database time)
    touched: bool = False  # see `card_effect`
