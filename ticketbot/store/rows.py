"""What the stores share: time in the database, row shapes, and rows as records."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ticketbot.domain.lifecycle import Clock
from ticketbot.domain.report import Change, TicketHistory
from ticketbot.records import Batch, Event, ReportRun, Ticket

PURGE_CHUNK = 500  # tickets per transaction: the writer is never held long
FETCH_CHUNK = 5000  # rows per trip to the database thread in large reads
EVENTS_CHUNK = 5000  # ticket ids per query (SQLite takes up to 32766 parameters)
# The NIK/KK as a purged ticket keeps them (SPEC §5 retention; privacy.mask_number).
MASKED_SQL = "substr({0}, 1, 6) || '******' || substr({0}, 13, 4)"
# What entering a state does to tickets.step_since (the table of steps says which).
STEP_SINCE_SQL = {Clock.START: ":stamp", Clock.KEEP: "step_since", Clock.STOP: "NULL"}


Deadline = Callable[[str, datetime | None], datetime | None]


# An update handled: its content goes, its id stays (it keeps the offset). Written by the
# inbox store, or by the update's decisive change in the same transaction (Database).
MARK_HANDLED = (
    "UPDATE inbox SET handled_at = ?, payload = '' WHERE update_id = ? AND handled_at IS NULL"
)


def events_of_tickets(count: int, actions: int) -> str:
    """The query of `count` tickets' events (`actions` of them, when not 0), in the order
    `events_by_ticket()` reads them; parameters: the ids, then the actions."""
    only = f" AND action IN ({','.join('?' * actions)})" if actions else ""
    return (f"SELECT {EVENT_COLUMNS} FROM events WHERE ticket_id IN ({','.join('?' * count)})"
            f"{only} ORDER BY ticket_id, id")  # fmt: skip


def to_db_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def batch_from(row: Any) -> Batch:
    return Batch(
        id=int(row[0]),
        due_date=date.fromisoformat(row[1]),
        created_at=datetime.fromisoformat(row[2]),
        message_id=str(row[3]),
        status=str(row[4]),
        attempts=int(row[5]),
        next_attempt_at=datetime.fromisoformat(row[6]),
        last_error=row[7],
        sent_at=from_db_time(row[8]),
        late_notified=bool(row[9]),
        summary_message_id=row[10],
        error_kind=row[11],
        undelivered=row[12],
        carried=bool(row[13]),
    )


TICKET_COLUMNS = (
    "id, nik, kk, lembaga, lembaga_key, phone, nama, keterangan, photo_file_id, state, "
    "opened_by, opened_at, state_since, step_since, reject_reason, chat_id, card_message_id, "
    "batch_id, ping_message_id, purged_at, menu_action, menu_round, scan_is_document, sumber,"
    " card_posted_at"
)
BATCH_COLUMNS = (
    "id, due_date, created_at, message_id, status, attempts, next_attempt_at, last_error, "
    "sent_at, late_notified, summary_message_id, error_kind, undelivered, carried"
)
OUTBOX_COLUMNS = (
    "id, kind, key, chat_id, message_id, target_id, text, reply_to, person_id, refused,"
    " generation, probe_from, attempts, next_attempt_at, touched"
)
# Where a ticket's card is now (named parameters: card, now, ticket). When it was posted
# changes only with the message: the bot may delete a message for 48 hours after sending it
# (a hand-off re-posts a card only within them).
PLACE_CARD = (
    "UPDATE tickets SET card_posted_at = CASE WHEN card_message_id IS :card THEN card_posted_at"
    " ELSE :now END, card_message_id = :card WHERE id = :ticket"
)
REFUSAL_GAP = timedelta(minutes=1)  # beyond the prompt ones: one combined refusal a minute
PROMPT_REFUSALS = 3  # refusals to one person within REFUSAL_GAP that go at once
EVENT_COLUMNS = "id, ticket_id, actor_id, actor_name, action, from_state, to_state, at, detail"


REPORT_RUN_COLUMNS = (
    "month, created_at, message_id, status, attempts, next_attempt_at, error_kind, last_error,"
    " sent_at, notified"
)


def report_run_from(row: Any) -> ReportRun:
    return ReportRun(
        month=str(row[0]), created_at=datetime.fromisoformat(row[1]), message_id=str(row[2]),
        status=str(row[3]), attempts=int(row[4]), next_attempt_at=datetime.fromisoformat(row[5]),
        error_kind=row[6], last_error=row[7], sent_at=from_db_time(row[8]),
        notified=bool(row[9]),
    )  # fmt: skip


def histories(tickets: Iterable[Any], events: Iterable[Any]) -> list[TicketHistory]:
    """The rows of `ReportStore.report_rows` as the report reads them (CPU: off the loop)."""
    changes: dict[int, list[Change]] = {}
    parse = datetime.fromisoformat
    for r in events:
        changes.setdefault(r[0], []).append(
            Change(parse(r[1]), r[2], r[3] or None, r[4], r[5], r[6])
        )
    return [
        TicketHistory(r[0], r[1], r[2], parse(r[3]), tuple(changes.get(r[0], ())), r[4], r[5])
        for r in tickets
    ]


def events_by_ticket(rows: Iterable[Any]) -> dict[int, list[Event]]:
    """Rows of `Repository.event_rows`, per ticket (CPU: off the loop)."""
    found: dict[int, list[Event]] = {}
    for row in rows:
        found.setdefault(row[1], []).append(event_from(row))
    return found


def ticket_from(row: Any) -> Ticket:
    (id_, nik, kk, lembaga, key, phone, nama, ket, photo, state, opened_by, opened_at,
     state_since, step_since, reason, chat_id, card, batch_id, ping, purged, menu,
     menu_round, document, sumber, posted) = row  # fmt: skip
    return Ticket(
        id=int(id_),
        nik=str(nik),
        kk=str(kk),
        lembaga=str(lembaga),
        lembaga_key=str(key),
        phone=str(phone),
        nama=nama if isinstance(nama, str) else None,
        keterangan=str(ket),
        photo_file_id=photo if isinstance(photo, str) else None,
        state=str(state),
        opened_by=int(opened_by),
        opened_at=datetime.fromisoformat(str(opened_at)),
        state_since=datetime.fromisoformat(str(state_since)),
        step_since=from_db_time(step_since if isinstance(step_since, str) else None),
        reject_reason=reason if isinstance(reason, str) else None,
        chat_id=int(chat_id),
        card_message_id=card if isinstance(card, int) else None,
        batch_id=batch_id if isinstance(batch_id, int) else None,
        ping_message_id=ping if isinstance(ping, int) else None,
        purged_at=from_db_time(purged if isinstance(purged, str) else None),
        menu_action=menu if isinstance(menu, str) else None,
        menu_round=int(menu_round or 0),
        scan_is_document=bool(document),
        sumber=str(sumber or "loket"),
        card_posted_at=from_db_time(posted),
    )


def event_from(row: Any) -> Event:
    id_, ticket_id, actor_id, actor_name, action, from_state, to_state, at, detail = row
    return Event(
        id=int(id_),
        ticket_id=ticket_id if isinstance(ticket_id, int) else None,
        actor_id=actor_id if isinstance(actor_id, int) else None,
        actor_name=str(actor_name),
        action=str(action),
        from_state=from_state if isinstance(from_state, str) else None,
        to_state=to_state if isinstance(to_state, str) else None,
        at=datetime.fromisoformat(str(at)),
        detail=detail if isinstance(detail, str) else None,
    )
