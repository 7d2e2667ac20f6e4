"""All SQL lives here. SQLite through aiosqlite: WAL, synchronous=FULL, one writer.

Writes run inside `BEGIN IMMEDIATE` under an asyncio lock, so a transition is one
compare-and-set plus one event row, atomically; `kill -9` loses nothing acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from ticketbot import schema
from ticketbot.domain.lifecycle import OPEN_STATES, STEPS, Action, Clock, State, Transition
from ticketbot.domain.report import Change, TicketHistory
from ticketbot.domain.validation import TicketForm
from ticketbot.paths import MIGRATIONS_DIR, private_file
from ticketbot.records import (
    BOT_ACTOR,
    Actor,
    Batch,
    Effect,
    Event,
    OutboxItem,
    Placed,
    ReportRun,
    Ticket,
    TransitionOutcome,
)
from ticketbot.schema import migration_files, split_statements

# Re-exported: callers name them from here as well.
__all__ = [
    "BOT_ACTOR",
    "Actor",
    "Batch",
    "Event",
    "Repository",
    "Ticket",
    "TransitionOutcome",
    "migration_files",
    "split_statements",
]
OPEN_STATE_LIST = tuple(s.value for s in OPEN_STATES)
OPEN_MARKS = ",".join("?" * len(OPEN_STATE_LIST))  # `state IN (...)` takes OPEN_STATE_LIST
CLOSED_STATE_LIST = tuple(s.value for s in State if s not in OPEN_STATES)
CLOSED_SQL = ", ".join(f"'{s}'" for s in CLOSED_STATE_LIST)  # constants of the code
PURGE_CHUNK = 500  # tickets per transaction: the writer is never held long
FETCH_CHUNK = 5000  # rows per trip to the database thread in large reads
EVENTS_CHUNK = 5000  # ticket ids per query (SQLite takes up to 32766 parameters)
STATE_OF = {s.value: s for s in State}
# The NIK/KK as a purged ticket keeps them (SPEC §5 retention; privacy.mask_number).
MASKED_SQL = "substr({0}, 1, 6) || '******' || substr({0}, 13, 4)"
# What entering a state does to tickets.step_since (the table of steps says which).
STEP_SINCE_SQL = {Clock.START: ":stamp", Clock.KEEP: "step_since", Clock.STOP: "NULL"}


Deadline = Callable[[State, datetime | None], datetime | None]


def to_db_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _batch(row: Any) -> Batch:
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
    )


TICKET_COLUMNS = (
    "id, nik, kk, lembaga, lembaga_key, phone, nama, keterangan, photo_file_id, state, "
    "opened_by, opened_at, state_since, step_since, reject_reason, chat_id, card_message_id, "
    "batch_id, ping_message_id, purged_at"
)
BATCH_COLUMNS = (
    "id, due_date, created_at, message_id, status, attempts, next_attempt_at, last_error, "
    "sent_at, late_notified, summary_message_id, error_kind"
)
OUTBOX_COLUMNS = (
    "id, kind, key, chat_id, message_id, target_id, text, reply_to, person_id, refused,"
    " generation, probe_from, attempts"
)
REFUSAL_GAP = timedelta(minutes=1)
PING_GATHER = timedelta(seconds=3)  # at most one refusal reply a minute to one person
EVENT_COLUMNS = "id, ticket_id, actor_id, actor_name, action, from_state, to_state, at, detail"


REPORT_RUN_COLUMNS = (
    "month, created_at, message_id, status, attempts, next_attempt_at, error_kind, last_error,"
    " sent_at, notified"
)


def _report_run(row: Any) -> ReportRun:
    return ReportRun(
        month=str(row[0]), created_at=datetime.fromisoformat(row[1]), message_id=str(row[2]),
        status=str(row[3]), attempts=int(row[4]), next_attempt_at=datetime.fromisoformat(row[5]),
        error_kind=row[6], last_error=row[7], sent_at=from_db_time(row[8]),
        notified=bool(row[9]),
    )  # fmt: skip


def histories(tickets: Iterable[Any], events: Iterable[Any]) -> list[TicketHistory]:
    """The rows of `Repository.report_rows` as the report reads them (CPU: off the loop)."""
    changes: dict[int, list[Change]] = {}
    parse, state = datetime.fromisoformat, STATE_OF.__getitem__
    for r in events:
        changes.setdefault(r[0], []).append(
            Change(parse(r[1]), r[2], state(r[3]) if r[3] else None, state(r[4]), r[5])
        )
    return [
        TicketHistory(r[0], r[1], r[2], parse(r[3]), tuple(changes.get(r[0], ()))) for r in tickets
    ]


def events_by_ticket(rows: Iterable[Any]) -> dict[int, list[Event]]:
    """Rows of `Repository.event_rows`, per ticket (CPU: off the loop)."""
    found: dict[int, list[Event]] = {}
    for row in rows:
        found.setdefault(row[1], []).append(_event(row))
    return found


def _ticket(row: Any) -> Ticket:
    (id_, nik, kk, lembaga, key, phone, nama, ket, photo, state, opened_by, opened_at,
     state_since, step_since, reason, chat_id, card, batch_id, ping, purged) = row  # fmt: skip
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
        state=State(str(state)),
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
    )


def _event(row: Any) -> Event:
    id_, ticket_id, actor_id, actor_name, action, from_state, to_state, at, detail = row
    return Event(
        id=int(id_),
        ticket_id=ticket_id if isinstance(ticket_id, int) else None,
        actor_id=actor_id if isinstance(actor_id, int) else None,
        actor_name=str(actor_name),
        action=str(action),
        from_state=STATE_OF[from_state] if isinstance(from_state, str) else None,
        to_state=STATE_OF[to_state] if isinstance(to_state, str) else None,
        at=datetime.fromisoformat(str(at)),
        detail=detail if isinstance(detail, str) else None,
    )


class Repository:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._write_lock = asyncio.Lock()
        self._enqueued = False
        # Called after a transaction that queued effects commits (wakes the outbox worker).
        self.on_enqueue: Callable[[], None] = lambda: None
        self.ping_gather = PING_GATHER
        # The running step's deadline (the office's calendar and standards), stored with
        # every transition; None: deadlines are filled in by `refresh_deadlines`.
        self.deadline: Deadline | None = None

    @classmethod
    async def open(cls, path: Path, *, migrate: bool = True) -> Repository:
        if migrate:  # the bot's own database: personal data, owner-only (SPEC §5)
            private_file(path)
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            # Another process (a backup, a second reader) may hold the write lock a while:
            # wait rather than lose a tap; the tap is answered meanwhile (handlers.py).
            await conn.execute("PRAGMA busy_timeout = 60000")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = FULL")
            await conn.execute("PRAGMA foreign_keys = ON")
            repo = cls(conn)
            if migrate:
                await repo.migrate()
        except BaseException:
            await conn.close()
            raise
        return repo

    async def close(self) -> None:
        await self._conn.close()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            self._enqueued = False
            try:
                yield self._conn
                await self._conn.execute("COMMIT")
            except BaseException:
                # Also when COMMIT itself fails (a full disk): the connection must be left
                # outside any transaction, usable again once the fault passes. SQLite may
                # already have rolled back on its own; that is not an error.
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await self._conn.execute("ROLLBACK")
                raise
            if self._enqueued:
                self.on_enqueue()

    # -- migrations ---------------------------------------------------------------------

    async def schema_version(self) -> int:
        return await schema.schema_version(self._conn)

    async def migrate(self, directory: Path = MIGRATIONS_DIR, *, upto: int | None = None) -> int:
        return await schema.migrate(self._conn, self._write, directory, upto=upto)

    async def table_names(self) -> list[str]:
        async with self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ) as cur:
            return [str(r[0]) for r in await cur.fetchall()]

    # -- tickets ------------------------------------------------------------------------

    async def open_ticket(
        self,
        form: TicketForm,
        opener: Actor,
        chat_id: int,
        now: datetime,
        photo_file_id: str | None = None,
        *,
        intake_message_id: int | None = None,
        effects: Callable[[int], Sequence[Effect]] = lambda _: (),
    ) -> tuple[Ticket, bool | None]:
        """Create the ticket, its `open` event and `effects(ticket_id)` in one transaction.
        Returns (ticket, True) when created, (existing, False) for a duplicate, and
        (ticket, None) when this intake message already opened it (a replayed update)."""
        assert opener.user_id is not None
        async with self._write() as conn:
            if intake_message_id is not None:
                replayed = await self._one_ticket(
                    "intake_chat_id = ? AND intake_message_id = ?", (chat_id, intake_message_id)
                )
                if replayed is not None:
                    return replayed, None
            existing = await self._open_duplicate(form.nik, form.lembaga_key)
            if existing is not None:
                return existing, False
            stamp = to_db_time(now)
            cur = await conn.execute(
                "INSERT INTO tickets (nik, kk, lembaga, lembaga_key, phone, nama, keterangan,"
                " photo_file_id, state, opened_by, opened_at, state_since, step_since, chat_id,"
                " intake_chat_id, intake_message_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'new', ?, ?, ?, ?, ?, ?, ?)",
                (form.nik, form.kk, form.lembaga, form.lembaga_key, form.phone, form.nama,
                 form.keterangan, photo_file_id, opener.user_id, stamp, stamp, stamp, chat_id,
                 chat_id if intake_message_id else None, intake_message_id),
            )  # fmt: skip
            ticket_id = cur.lastrowid
            assert ticket_id is not None
            await self._set_due(ticket_id, State.NEW, stamp)
            await self._insert_event(ticket_id, opener, Action.OPEN, None, State.NEW, stamp, None)
            await self._enqueue(effects(ticket_id))
            ticket = await self.get_ticket(ticket_id)
        assert ticket is not None
        return ticket, True

    async def _one_ticket(self, where: str, args: Sequence[Any]) -> Ticket | None:
        async with self._conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE {where}", args
        ) as cur:
            row = await cur.fetchone()
        return _ticket(row) if row else None

    async def _open_duplicate(self, nik: str, lembaga_key: str) -> Ticket | None:
        async with self._conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE nik = ? AND lembaga_key = ?"
            f" AND state IN ({OPEN_MARKS})",
            (nik, lembaga_key, *OPEN_STATE_LIST),
        ) as cur:
            row = await cur.fetchone()
        return _ticket(row) if row else None

    async def get_ticket(self, ticket_id: int) -> Ticket | None:
        async with self._conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE id = ?", (ticket_id,)
        ) as cur:
            row = await cur.fetchone()
        return _ticket(row) if row else None

    async def ticket_by_card(self, chat_id: int, message_id: int) -> Ticket | None:
        async with self._conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE chat_id = ? AND card_message_id = ?",
            (chat_id, message_id),
        ) as cur:
            row = await cur.fetchone()
        return _ticket(row) if row else None

    async def closed_before(self, ticket: Ticket, limit: int = 3) -> list[Ticket]:
        """Earlier tickets for the same NIK and lembaga that were rejected or cancelled."""
        async with self._conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE nik = ? AND lembaga_key = ?"
            " AND id < ? AND state IN ('rejected', 'closed_rejected', 'cancelled')"
            " ORDER BY id DESC LIMIT ?",
            (ticket.nik, ticket.lembaga_key, ticket.id, limit),
        ) as cur:
            return [_ticket(r) for r in await cur.fetchall()]

    async def closing_reason(self, ticket_id: int) -> str | None:
        """The reason recorded with a ticket's last step (a rejection, a cancellation)."""
        async with self._conn.execute(
            "SELECT detail FROM events WHERE ticket_id = ? AND to_state IS NOT NULL"
            " AND to_state IN ('rejected', 'cancelled') ORDER BY id DESC LIMIT 1",
            (ticket_id,),
        ) as cur:
            row = await cur.fetchone()
        return row[0] if row and isinstance(row[0], str) else None

    async def tickets_by_nik(self, nik: str) -> list[Ticket]:
        async with self._conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE nik = ? ORDER BY id DESC", (nik,)
        ) as cur:
            return [_ticket(r) for r in await cur.fetchall()]

    async def open_tickets(self) -> list[Ticket]:
        async with self._conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE state IN ({OPEN_MARKS}) ORDER BY id",
            OPEN_STATE_LIST,
        ) as cur:
            return [_ticket(r) for r in await cur.fetchall()]

    async def tickets_without_card(self) -> list[Ticket]:
        async with self._conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE card_message_id IS NULL ORDER BY id"
        ) as cur:
            return [_ticket(r) for r in await cur.fetchall()]

    async def ping_sharers(self, message_id: int) -> set[int]:
        async with self._conn.execute(
            "SELECT id FROM tickets WHERE ping_message_id = ?", (message_id,)
        ) as cur:
            return {int(r[0]) for r in await cur.fetchall()}

    async def due_pings(self, now: datetime, limit: int = 50) -> list[OutboxItem]:
        async with self._conn.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending' AND kind = 'ping'"
            " AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            (to_db_time(now), limit),
        ) as cur:
            return [OutboxItem(*r) for r in await cur.fetchall()]

    async def set_card_message(self, ticket_id: int, message_id: int) -> None:
        async with self._write() as conn:
            await conn.execute(
                "UPDATE tickets SET card_message_id = ? WHERE id = ?", (message_id, ticket_id)
            )

    async def count_tickets(self) -> int:
        async with self._conn.execute("SELECT count(*) FROM tickets") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def apply(
        self,
        ticket_id: int,
        transition: Transition,
        actor: Actor,
        now: datetime,
        detail: str | None = None,
        effects: Sequence[Effect] = (),
    ) -> TransitionOutcome:
        """Compare-and-set `transition.source` -> `transition.target`, plus its event and
        the group effects it implies, in one transaction."""
        stamp = to_db_time(now)
        async with self._write() as conn:
            step = STEP_SINCE_SQL[STEPS[transition.target].clock]
            reason = ":detail" if transition.action == Action.REJECT else "reject_reason"
            batch = "NULL" if transition.leaves_batch else "batch_id"
            async with conn.execute(
                f"UPDATE tickets SET state = :target, state_since = :stamp, step_since = {step},"
                f" reject_reason = {reason}, batch_id = {batch}"
                " WHERE id = :id AND state = :source RETURNING step_since",
                {"target": transition.target.value, "stamp": stamp, "id": ticket_id,
                 "source": transition.source.value, "detail": detail},
            ) as cur:  # fmt: skip
                changed = await cur.fetchone()
            applied = changed is not None
            if changed is not None:
                await self._set_due(ticket_id, transition.target, changed[0])
                await self._insert_event(
                    ticket_id, actor, transition.action, transition.source,
                    transition.target, stamp, detail,
                )  # fmt: skip
                await self._enqueue(effects)
        ticket = await self.get_ticket(ticket_id)
        if ticket is None:
            raise LookupError(f"ticket {ticket_id} does not exist")
        last = None if applied else await self.last_transition(ticket_id)
        return TransitionOutcome(applied, ticket, last)

    # -- deadlines ----------------------------------------------------------------------

    def _due_text(self, state: State, step_since: str | None) -> str | None:
        if self.deadline is None:
            return None
        due = self.deadline(state, from_db_time(step_since))
        return to_db_time(due) if due is not None else None

    async def _set_due(self, ticket_id: int, state: State, step_since: str | None) -> None:
        """Inside a write: the deadline of the step the ticket just entered."""
        await self._conn.execute(
            "UPDATE tickets SET due_at = ? WHERE id = ?",
            (self._due_text(state, step_since), ticket_id),
        )

    async def refresh_deadlines(self, rule: str, now: datetime) -> int:
        """Compute the stored deadlines of the open tickets again when the rule that made
        them (calendar, standards, holidays) is not `rule`; returns how many."""
        before = await self.setting("deadline_rule")
        if self.deadline is None or before == rule:
            return 0
        async with self._conn.execute(
            f"SELECT id, state, step_since FROM tickets WHERE state IN ({OPEN_MARKS})",
            OPEN_STATE_LIST,
        ) as cur:
            rows = list(await cur.fetchall())
        async with self._write() as conn:
            await conn.executemany(
                "UPDATE tickets SET due_at = ? WHERE id = ?",
                [(self._due_text(STATE_OF[r[1]], r[2]), r[0]) for r in rows],
            )
            if before is None:
                # The first fill (an upgraded database): what is overdue now, its card already
                # says (the bot before this one showed it); no re-render storm at upgrade.
                await conn.execute(
                    "UPDATE tickets SET overdue_shown = due_at WHERE due_at < ?",
                    (to_db_time(now),),
                )
            await conn.execute(
                "INSERT INTO settings (key, value) VALUES ('deadline_rule', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (rule,),
            )
        return len(rows)

    async def queue_counts(self, now: datetime) -> dict[State, tuple[int, int]]:
        """`/antrian`: per open state, how many tickets and how many of them overdue."""
        async with self._conn.execute(
            f"SELECT state, count(*), sum(due_at < ?) FROM tickets WHERE state IN ({OPEN_MARKS})"
            " GROUP BY state",
            (to_db_time(now), *OPEN_STATE_LIST),
        ) as cur:
            return {STATE_OF[r[0]]: (r[1], r[2] or 0) for r in await cur.fetchall()}

    async def queue_tickets(self, state: State, limit: int) -> list[Ticket]:
        """The first `limit` tickets of a step by deadline (overdue first), by an index."""
        async with self._conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE state = ? ORDER BY due_at, id LIMIT ?",
            (state.value, limit),
        ) as cur:
            return [_ticket(r) for r in await cur.fetchall()]

    async def overdue_tickets(self, now: datetime, limit: int = 1000) -> list[Ticket]:
        """Open tickets past their deadline, the longest overdue first."""
        async with self._conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE due_at < ? AND state IN ({OPEN_MARKS})"
            " ORDER BY due_at, id LIMIT ?",
            (to_db_time(now), *OPEN_STATE_LIST, limit),
        ) as cur:
            return [_ticket(r) for r in await cur.fetchall()]

    async def newly_overdue(
        self, now: datetime, effects: Callable[[list[int]], Sequence[Effect]], limit: int = 200
    ) -> list[int]:
        """Open tickets whose deadline passed and whose card does not say so yet: marked as
        shown, with `effects` (their cards re-rendered), in one transaction. The mark is in
        the database, so a restart re-renders none of them again."""
        async with self._write() as conn:
            async with conn.execute(
                f"UPDATE tickets SET overdue_shown = due_at WHERE id IN (SELECT id FROM tickets"
                f" WHERE due_at < ? AND state IN ({OPEN_MARKS})"
                " AND (overdue_shown IS NULL OR overdue_shown != due_at)"
                " ORDER BY due_at LIMIT ?) RETURNING id",
                (to_db_time(now), *OPEN_STATE_LIST, limit),
            ) as cur:
                ids = sorted(int(r[0]) for r in await cur.fetchall())
            await self._enqueue(effects(ids))
        return ids

    # -- events -------------------------------------------------------------------------

    async def _insert_event(
        self,
        ticket_id: int | None,
        actor: Actor,
        action: Action | str,
        from_state: State | None,
        to_state: State | None,
        stamp: str,
        detail: str | None,
    ) -> None:
        await self._conn.execute(
            "INSERT INTO events (ticket_id, actor_id, actor_name, action, from_state, to_state,"
            " at, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (ticket_id, actor.user_id, actor.name, str(action),
             from_state.value if from_state else None, to_state.value if to_state else None,
             stamp, detail),
        )  # fmt: skip

    async def record_event(
        self,
        ticket_id: int | None,
        actor: Actor,
        action: Action | str,
        now: datetime,
        detail: str | None = None,
        effects: Sequence[Effect] = (),
    ) -> None:
        """An event that changes no state (e.g. a view of the full NIK)."""
        async with self._write():
            stamp = to_db_time(now)
            await self._insert_event(ticket_id, actor, action, None, None, stamp, detail)
            await self._enqueue(effects)

    async def events_for(self, ticket_id: int) -> list[Event]:
        async with self._conn.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE ticket_id = ? ORDER BY id", (ticket_id,)
        ) as cur:
            return [_event(r) for r in await cur.fetchall()]

    async def event_rows(
        self, ticket_ids: Sequence[int], actions: Sequence[str] = ()
    ) -> list[Any]:  # fmt: skip
        """The events of many tickets (only `actions`, when given) as rows for
        `events_by_ticket()` (which a worker thread runs), a query per EVENTS_CHUNK tickets."""
        rows: list[Any] = []
        only = f" AND action IN ({','.join('?' * len(actions))})" if actions else ""
        for at in range(0, len(ticket_ids), EVENTS_CHUNK):
            chunk = list(ticket_ids[at : at + EVENTS_CHUNK])
            async with self._conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE ticket_id IN"
                f" ({','.join('?' * len(chunk))}){only} ORDER BY ticket_id, id",
                [*chunk, *actions],
            ) as cur:
                while found := await cur.fetchmany(FETCH_CHUNK):
                    rows += found
        return rows

    async def last_transition(self, ticket_id: int) -> Event | None:
        async with self._conn.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE ticket_id = ? AND to_state IS NOT NULL"
            " ORDER BY id DESC LIMIT 1",
            (ticket_id,),
        ) as cur:
            row = await cur.fetchone()
        return _event(row) if row else None

    # -- people -------------------------------------------------------------------------

    async def remember_person(self, user_id: int, name: str, now: datetime) -> None:
        async with self._write() as conn:
            await conn.execute(
                "INSERT INTO people (user_id, name, seen_at) VALUES (?, ?, ?)"
                " ON CONFLICT (user_id) DO UPDATE SET name = excluded.name,"
                " seen_at = excluded.seen_at WHERE name != excluded.name",
                (user_id, name, to_db_time(now)),
            )

    async def names_of(self, user_ids: Iterable[int]) -> dict[int, str]:
        ids: Sequence[int] = sorted(set(user_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        async with self._conn.execute(
            f"SELECT user_id, name FROM people WHERE user_id IN ({marks})", ids
        ) as cur:
            return {int(r[0]): str(r[1]) for r in await cur.fetchall()}

    # -- recap batches ----------------------------------------------------------------------

    async def unbatched_synced(self) -> list[Ticket]:
        async with self._conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE state = 'synced' AND batch_id IS NULL"
            " ORDER BY id"
        ) as cur:
            return [_ticket(r) for r in await cur.fetchall()]

    async def freeze_batch(
        self, due_date: date, now: datetime, domain: str, *, allow_empty: bool, run: bool
    ) -> Batch | None:
        """Freeze every synced, unbatched ticket into a new batch (None when there is
        nothing and empty recaps are off). With `run`, the scheduled recap of `due_date` is
        recorded as done in the same transaction, so a crash neither repeats nor skips it."""
        stamp = to_db_time(now)
        async with self._write() as conn:
            async with conn.execute(
                "SELECT id FROM tickets WHERE state = 'synced' AND batch_id IS NULL ORDER BY id"
            ) as cur:
                ids = [int(r[0]) for r in await cur.fetchall()]
            if not ids and not allow_empty:
                if run:
                    await self._record_run(due_date, None, stamp)
                return None
            cur = await conn.execute(
                "INSERT INTO recap_batches (due_date, created_at, message_id, next_attempt_at)"
                " VALUES (?, ?, '', ?)",
                (due_date.isoformat(), stamp, stamp),
            )
            batch_id = cur.lastrowid
            assert batch_id is not None
            message_id = f"<rekap-{batch_id}-{due_date.isoformat()}@{domain}>"
            await conn.execute(
                "UPDATE recap_batches SET message_id = ? WHERE id = ?", (message_id, batch_id)
            )
            await conn.executemany(
                "UPDATE tickets SET batch_id = ? WHERE id = ? AND batch_id IS NULL",
                [(batch_id, i) for i in ids],
            )
            if run:
                await self._record_run(due_date, batch_id, stamp)
        batch = await self.get_batch(batch_id)
        assert batch is not None
        return batch

    async def get_batch(self, batch_id: int) -> Batch | None:
        async with self._conn.execute(
            f"SELECT {BATCH_COLUMNS} FROM recap_batches WHERE id = ?", (batch_id,)
        ) as cur:
            row = await cur.fetchone()
        return _batch(row) if row else None

    async def batches(self, status: str | None = None) -> list[Batch]:
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        async with self._conn.execute(
            f"SELECT {BATCH_COLUMNS} FROM recap_batches {where} ORDER BY id", args
        ) as cur:
            return [_batch(r) for r in await cur.fetchall()]

    async def batch_tickets(self, batch_id: int) -> list[Ticket]:
        async with self._conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE batch_id = ? ORDER BY id", (batch_id,)
        ) as cur:
            return [_ticket(r) for r in await cur.fetchall()]

    async def mark_batch_sent(
        self,
        batch_id: int,
        send: Transition,
        now: datetime,
        detail: str,
        effects: Callable[[list[int]], Sequence[Effect]] = lambda _: (),
    ) -> list[int]:
        """After the SMTP server accepted: the batch is sent, its tickets move to
        sent_to_dwh and the group effects are queued, all in one transaction. Returns the
        tickets moved."""
        stamp = to_db_time(now)
        moved = []
        async with self._write() as conn:
            cur = await conn.execute(
                "UPDATE recap_batches SET status = 'sent', sent_at = ?, last_error = NULL"
                " WHERE id = ? AND status = 'pending'",
                (stamp, batch_id),
            )
            if cur.rowcount != 1:
                return []
            async with conn.execute(
                "SELECT id FROM tickets WHERE batch_id = ? AND state = ? ORDER BY id",
                (batch_id, send.source.value),
            ) as rows:
                ids = [int(r[0]) for r in await rows.fetchall()]
            for ticket_id in ids:
                step = STEP_SINCE_SQL[STEPS[send.target].clock]
                async with conn.execute(
                    f"UPDATE tickets SET state = :target, state_since = :stamp,"
                    f" step_since = {step} WHERE id = :id AND state = :source"
                    " RETURNING step_since",
                    {"target": send.target.value, "stamp": stamp, "id": ticket_id,
                     "source": send.source.value},
                ) as cur:  # fmt: skip
                    updated = await cur.fetchone()
                if updated is not None:
                    await self._set_due(ticket_id, send.target, updated[0])
                    await self._insert_event(
                        ticket_id, BOT_ACTOR, send.action, send.source, send.target, stamp, detail
                    )
                    moved.append(ticket_id)
            await self._enqueue(effects(moved))
        return moved

    async def defer_batch(
        self, batch_id: int, next_attempt_at: datetime, kind: str, error: str, *, failed: bool
    ) -> None:
        async with self._write() as conn:
            await conn.execute(
                "UPDATE recap_batches SET attempts = attempts + 1, next_attempt_at = ?,"
                " error_kind = ?, last_error = ?, status = ? WHERE id = ? AND status = 'pending'",
                (to_db_time(next_attempt_at), kind, error, "failed" if failed else "pending",
                 batch_id),
            )  # fmt: skip

    async def retry_failed_batch(self, batch_id: int, now: datetime) -> bool:
        async with self._write() as conn:
            cur = await conn.execute(
                "UPDATE recap_batches SET status = 'pending', next_attempt_at = ?,"
                " late_notified = 0 WHERE id = ? AND status = 'failed'",
                (to_db_time(now), batch_id),
            )
            return cur.rowcount == 1

    async def mark_batch_late_notified(self, batch_id: int) -> None:
        async with self._write() as conn:
            await conn.execute(
                "UPDATE recap_batches SET late_notified = 1 WHERE id = ?", (batch_id,)
            )

    async def set_batch_summary(self, batch_id: int, message_id: int) -> None:
        async with self._write() as conn:
            await conn.execute(
                "UPDATE recap_batches SET summary_message_id = ? WHERE id = ?",
                (message_id, batch_id),
            )

    async def recap_ran(self, due_date: date) -> bool:
        async with self._conn.execute(
            "SELECT 1 FROM recap_runs WHERE due_date = ?", (due_date.isoformat(),)
        ) as cur:
            return await cur.fetchone() is not None

    async def _record_run(self, due_date: date, batch_id: int | None, stamp: str) -> None:
        await self._conn.execute(
            "INSERT OR IGNORE INTO recap_runs (due_date, batch_id, ran_at) VALUES (?, ?, ?)",
            (due_date.isoformat(), batch_id, stamp),
        )

    # -- outbox: what the group must show ------------------------------------------------

    async def _enqueue(self, effects: Iterable[Effect]) -> None:
        """Inside a write transaction. A card or summary already waiting is not queued
        twice: its generation goes up, so the worker renders it again after delivering.
        Delivery runs on the wall clock, whatever clock the office keeps."""
        stamp = to_db_time(datetime.now(UTC))
        for e in effects:
            self._enqueued = True
            values = {"kind": e.kind, "key": e.key, "chat_id": e.chat_id,
                      "message_id": e.message_id, "target_id": e.target_id, "text": e.text,
                      "reply_to": e.reply_to, "person_id": e.person_id, "stamp": stamp,
                      "due": stamp}  # fmt: skip
            if e.person_id is not None and await self._combine_refusal(e):
                continue
            if e.person_id is not None:
                values["due"] = await self._next_reply_slot(e.person_id, stamp)
            if e.kind == "ping":
                # Pings falling in the same few seconds for the same people go as one.
                values["due"] = to_db_time(datetime.now(UTC) + self.ping_gather)
            conflict = (
                "ON CONFLICT (key) WHERE status = 'pending' DO UPDATE SET"
                " generation = generation + 1"
                if e.kind in ("card", "summary", "ping")
                else "ON CONFLICT DO NOTHING"
            )
            await self._conn.execute(
                "INSERT INTO outbox (kind, key, chat_id, message_id, target_id, text, reply_to,"
                " person_id, created_at, next_attempt_at) VALUES (:kind, :key, :chat_id,"
                " :message_id, :target_id, :text, :reply_to, :person_id, :stamp, :due) "
                + conflict,
                values,
            )

    async def _combine_refusal(self, e: Effect) -> bool:
        """A refusal to a person who already has one waiting for its minute: that one now
        says the newest problems and counts one message more (SPEC §3 "Floods and
        faults"). One that is due or on its way is left alone."""
        cur = await self._conn.execute(
            "UPDATE outbox SET text = ?, reply_to = ?, refused = refused + 1"
            " WHERE person_id = ? AND status = 'pending' AND kind = 'send'"
            " AND next_attempt_at > ?",
            (e.text, e.reply_to, e.person_id, to_db_time(datetime.now(UTC))),
        )
        return cur.rowcount > 0

    async def _next_reply_slot(self, person_id: int, stamp: str) -> str:
        """At most one refusal a minute to one person: a minute after the last one."""
        async with self._conn.execute(
            "SELECT max(next_attempt_at) FROM outbox WHERE person_id = ?", (person_id,)
        ) as cur:
            row = await cur.fetchone()
        last = from_db_time(row[0] if row else None)
        now = datetime.fromisoformat(stamp)
        if last is None or now - last >= REFUSAL_GAP:
            return stamp
        return to_db_time(last + REFUSAL_GAP)

    async def enqueue(self, effects: Sequence[Effect], now: datetime | None = None) -> None:
        """Queue effects on their own (replies, notices); `now` is not used: delivery runs
        on the wall clock."""
        async with self._write():
            await self._enqueue(effects)

    async def due_effects(
        self, now: datetime, kinds: Sequence[str], limit: int = 20
    ) -> list[OutboxItem]:
        marks = ",".join(f":k{i}" for i in range(len(kinds)))
        async with self._conn.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending'"
            f" AND next_attempt_at <= :now AND kind IN ({marks})"
            # A message is deleted once the reply to it is out (it stays a reply), unless
            # that reply waits (refusals to one person go once a minute).
            " AND (kind != 'delete' OR NOT EXISTS (SELECT 1 FROM outbox AS r"
            "   WHERE r.status = 'pending' AND r.kind = 'send' AND r.chat_id = outbox.chat_id"
            "   AND r.reply_to = outbox.message_id AND r.next_attempt_at <= :now))"
            # What people wait for first (a new card, a reply, a notice), then pings, then
            # re-renders of cards already standing (e.g. thirty turning TERLAMBAT at once).
            " ORDER BY CASE WHEN kind = 'send' THEN 0"
            "   WHEN kind = 'card' AND (SELECT card_message_id FROM tickets"
            "     WHERE tickets.id = outbox.target_id) IS NULL THEN 0"
            "   WHEN kind = 'ping' THEN 1 ELSE 2 END, id LIMIT :limit",
            {"now": to_db_time(now), "limit": limit, **{f"k{i}": k for i, k in enumerate(kinds)}},
        ) as cur:
            return [OutboxItem(*r) for r in await cur.fetchall()]

    async def next_effect_at(self) -> datetime | None:
        async with self._conn.execute(
            "SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending'"
        ) as cur:
            row = await cur.fetchone()
        return from_db_time(row[0] if row else None)

    async def pending_effects(self) -> int:
        async with self._conn.execute(
            "SELECT count(*) FROM outbox WHERE status = 'pending'"
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def effect_done(
        self,
        item: OutboxItem,
        now: datetime,
        message_id: int | None = None,
        *,
        placed: Placed | None = None,
    ) -> bool:
        """Delivered (with where a card or summary now is, when `message_id` names it).
        False when the card was asked for again meanwhile: it stays pending and is rendered
        once more."""
        async with self._write() as conn:
            if placed is not None and message_id is not None:
                if placed.card is not None:
                    await conn.execute(
                        "UPDATE tickets SET card_message_id = ? WHERE id = ?",
                        (message_id, placed.card),
                    )
                if placed.summary is not None:
                    await conn.execute(
                        "UPDATE recap_batches SET summary_message_id = ? WHERE id = ?",
                        (message_id, placed.summary),
                    )
            return await self._effect_done(item, now, message_id)

    async def _effect_done(self, item: OutboxItem, now: datetime, message_id: int | None) -> bool:
        cur = await self._conn.execute(
            "UPDATE outbox SET status = 'done', done_at = ?, message_id = coalesce(?,"
            " message_id), probe_from = NULL WHERE id = ? AND (generation = ?"
            " OR kind != 'card' AND kind != 'summary')",
            (to_db_time(now), message_id, item.id, item.generation),
        )
        if cur.rowcount == 0:
            await self._conn.execute(
                "UPDATE outbox SET probe_from = NULL, attempts = 0 WHERE id = ?", (item.id,)
            )
        return cur.rowcount == 1

    async def pings_done(
        self, items: Sequence[OutboxItem], ticket_ids: Sequence[int], message_id: int | None,
        now: datetime,
    ) -> None:  # fmt: skip
        """Pings delivered as one message (or none: nobody's turn), recorded as the tickets'
        current ping, in one transaction."""
        async with self._write() as conn:
            await conn.executemany(
                "UPDATE tickets SET ping_message_id = ? WHERE id = ?",
                [(message_id, i) for i in ticket_ids],
            )
            for item in items:
                await self._effect_done(item, now, message_id)

    async def effect_retry(
        self, item: OutboxItem, at: datetime, error: str, *, probe_from: int | None = None
    ) -> None:
        async with self._write() as conn:
            await conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?,"
                " last_error = ?, probe_from = coalesce(?, probe_from) WHERE id = ?",
                (to_db_time(at), error, probe_from, item.id),
            )

    async def effect_postpone(self, item: OutboxItem, at: datetime) -> None:
        """Not an attempt: its chat cannot take it before `at` (a 429, a spent budget)."""
        async with self._write() as conn:
            await conn.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE id = ?", (to_db_time(at), item.id)
            )

    async def forget_probe(self, item: OutboxItem) -> None:
        async with self._write() as conn:
            await conn.execute("UPDATE outbox SET probe_from = NULL WHERE id = ?", (item.id,))

    async def effect_failed(self, item: OutboxItem, now: datetime, error: str) -> None:
        async with self._write() as conn:
            await conn.execute(
                "UPDATE outbox SET status = 'failed', done_at = ?, last_error = ? WHERE id = ?",
                (to_db_time(now), error, item.id),
            )

    async def known_bot_messages(self, chat_id: int, low: int, high: int) -> set[int]:
        """Every message of ours in [low, high] whose id we recorded: cards, summaries,
        pings, reminders, notices and replies (a lost post is none of them)."""
        args = (chat_id, low, high)
        known: set[int] = set()
        for sql in (
            "SELECT card_message_id FROM tickets WHERE chat_id = ? AND card_message_id"
            " BETWEEN ? AND ?",
            "SELECT ping_message_id FROM tickets WHERE chat_id = ? AND ping_message_id"
            " BETWEEN ? AND ?",
            "SELECT message_id FROM outbox WHERE kind != 'delete' AND status = 'done'"
            " AND chat_id = ? AND message_id BETWEEN ? AND ?",
        ):
            async with self._conn.execute(sql, args) as cur:
                known |= {int(r[0]) for r in await cur.fetchall()}
        async with self._conn.execute(
            "SELECT summary_message_id FROM recap_batches"
            " WHERE summary_message_id BETWEEN ? AND ?",
            (low, high),
        ) as cur:
            known |= {int(r[0]) for r in await cur.fetchall()}
        return known

    # -- inbox: every update, stored before Telegram may forget it -------------------------

    async def store_updates(
        self, updates: Sequence[tuple[int, str]], now: datetime, *, handled: set[int]
    ) -> None:
        """Store fetched updates; those in `handled` (already done, or never to be handled)
        keep only their id."""
        stamp = to_db_time(now)
        async with self._write() as conn:
            await conn.executemany(
                "INSERT OR IGNORE INTO inbox (update_id, payload, received_at, handled_at)"
                " VALUES (?, ?, ?, ?)",
                [(u, "" if u in handled else payload, stamp, stamp if u in handled else None)
                 for u, payload in updates],
            )  # fmt: skip

    async def unhandled_updates(self) -> list[tuple[int, str]]:
        async with self._conn.execute(
            "SELECT update_id, payload FROM inbox WHERE handled_at IS NULL ORDER BY update_id"
        ) as cur:
            return [(int(r[0]), str(r[1])) for r in await cur.fetchall()]

    async def last_update_id(self) -> int | None:
        async with self._conn.execute("SELECT max(update_id) FROM inbox") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else None

    async def mark_handled(self, update_id: int, now: datetime) -> None:
        async with self._write() as conn:
            await conn.execute(
                # Handled: the content goes, the id stays (it keeps the offset).
                "UPDATE inbox SET handled_at = ?, payload = '' WHERE update_id = ?"
                " AND handled_at IS NULL",
                (to_db_time(now), update_id),
            )

    async def prune_delivered(self, before: datetime) -> tuple[int, int]:
        """Forget delivered effects and handled updates older than `before` (they carry
        personal data and their work is done). Returns (effects, updates) removed."""
        stamp = to_db_time(before)
        async with self._write() as conn:
            effects = await conn.execute(
                "DELETE FROM outbox WHERE status != 'pending' AND done_at < ?", (stamp,)
            )
            updates = await conn.execute(
                "DELETE FROM inbox WHERE handled_at IS NOT NULL AND handled_at < ?"
                " AND update_id < (SELECT max(update_id) FROM inbox)",  # keeps the offset
                (stamp,),
            )
        return effects.rowcount, updates.rowcount

    # -- reminders -----------------------------------------------------------------------

    async def reminder_state(self) -> dict[str, tuple[str, int, datetime]]:
        """key -> (about, count, last reminded) for everything reminded so far."""
        async with self._conn.execute("SELECT key, about, count, last_at FROM reminders") as cur:
            return {
                str(r[0]): (str(r[1]), int(r[2]), datetime.fromisoformat(str(r[3])))
                for r in await cur.fetchall()
            }

    async def record_reminders(
        self, records: Sequence[tuple[str, str, int]], now: datetime, effects: Sequence[Effect]
    ) -> None:
        """A round's reminders and the record of them, in one transaction."""
        async with self._write() as conn:
            await conn.executemany(
                "INSERT INTO reminders (key, about, count, last_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET about = excluded.about,"
                " count = excluded.count, last_at = excluded.last_at",
                [(key, about, n, now.isoformat()) for key, about, n in records],
            )
            await self._enqueue(effects)

    async def unconfirmed_batches(self) -> list[tuple[Batch, int]]:
        """Sent recap batches with tickets the ADB has not confirmed yet, and how many."""
        async with self._conn.execute(
            f"SELECT {', '.join('b.' + c.strip() for c in BATCH_COLUMNS.split(','))},"
            " count(t.id) FROM recap_batches AS b JOIN tickets AS t ON t.batch_id = b.id"
            " WHERE b.status = 'sent' AND t.state = 'sent_to_dwh' GROUP BY b.id ORDER BY b.id"
        ) as cur:
            return [(_batch(r[:-1]), int(r[-1])) for r in await cur.fetchall()]

    # -- settings -------------------------------------------------------------------------

    async def setting(self, key: str) -> str | None:
        async with self._conn.execute("SELECT value FROM settings WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def move_group(self, old_id: int, new_id: int) -> None:
        """Telegram upgraded the group to a supergroup: the id changes, messages stay."""
        async with self._write() as conn:
            await conn.execute(
                "INSERT INTO settings (key, value) VALUES ('group_id', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(new_id),),
            )
            await conn.execute(
                "INSERT INTO settings (key, value) VALUES ('group_id_was', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(old_id),),
            )
            await conn.execute(
                "UPDATE tickets SET chat_id = ? WHERE chat_id = ?", (new_id, old_id)
            )

    # -- the monthly report ------------------------------------------------------------------

    async def report_rows(
        self, start: datetime, end: datetime
    ) -> tuple[list[Any], list[Any]]:  # fmt: skip
        """Every ticket open at some time in [start, end) and its transitions, as rows for
        `histories()` (which a worker thread runs): two queries, whatever the number of
        tickets. The NIK leaves the database masked."""
        where = f"opened_at < ? AND (state IN ({OPEN_MARKS}) OR state_since >= ?)"
        args = (to_db_time(end), *OPEN_STATE_LIST, to_db_time(start))
        events: list[Any] = []
        async with self._conn.execute(
            "SELECT ticket_id, at, action, from_state, to_state, detail FROM events"
            f" WHERE to_state IS NOT NULL AND ticket_id IN (SELECT id FROM tickets WHERE {where})"
            " ORDER BY ticket_id, id",
            args,
        ) as cur:
            while rows := await cur.fetchmany(FETCH_CHUNK):
                events += rows
        async with self._conn.execute(
            f"SELECT id, {MASKED_SQL.format('nik')}, lembaga, opened_at FROM tickets"
            f" WHERE {where} ORDER BY id",
            args,
        ) as cur:
            tickets = list(await cur.fetchall())
        return tickets, events

    async def first_opened_at(self) -> datetime | None:
        async with self._conn.execute("SELECT min(opened_at) FROM tickets") as cur:
            row = await cur.fetchone()
        return from_db_time(row[0] if row else None)

    async def report_run(self, month: str) -> ReportRun | None:
        async with self._conn.execute(
            f"SELECT {REPORT_RUN_COLUMNS} FROM report_runs WHERE month = ?", (month,)
        ) as cur:
            row = await cur.fetchone()
        return _report_run(row) if row else None

    async def due_report_runs(self, now: datetime) -> list[ReportRun]:
        async with self._conn.execute(
            f"SELECT {REPORT_RUN_COLUMNS} FROM report_runs WHERE status = 'pending'"
            " AND next_attempt_at <= ? ORDER BY month",
            (to_db_time(now),),
        ) as cur:
            return [_report_run(r) for r in await cur.fetchall()]

    async def create_report_run(self, month: str, now: datetime, message_id: str) -> None:
        """The month's report is due: recorded once (a restart finds it, never a second)."""
        async with self._write() as conn:
            await conn.execute(
                "INSERT INTO report_runs (month, created_at, message_id, next_attempt_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (month) DO NOTHING",
                (month, to_db_time(now), message_id, to_db_time(now)),
            )

    async def resume_failed_report_runs(self, now: datetime) -> None:
        async with self._write() as conn:
            await conn.execute(
                "UPDATE report_runs SET status = 'pending', next_attempt_at = ?"
                " WHERE status = 'failed'",
                (to_db_time(now),),
            )

    async def report_run_sent(self, month: str, now: datetime) -> None:
        async with self._write() as conn:
            await conn.execute(
                "UPDATE report_runs SET status = 'sent', sent_at = ?, attempts = attempts + 1,"
                " error_kind = NULL WHERE month = ?",
                (to_db_time(now), month),
            )

    async def report_run_deferred(
        self, month: str, next_at: datetime, kind: str, error: str, *, failed: bool,
        effects: Sequence[Effect] = (),
    ) -> None:  # fmt: skip
        """A failed attempt: retried at `next_at`, or failed for good; the group's notice
        (if any) is committed with it, so it is told once."""
        async with self._write() as conn:
            await conn.execute(
                "UPDATE report_runs SET attempts = attempts + 1, next_attempt_at = ?,"
                " error_kind = ?, last_error = ?, status = ?,"
                " notified = notified OR ? WHERE month = ?",
                (to_db_time(next_at), kind, error[:500], "failed" if failed else "pending",
                 bool(effects), month),
            )  # fmt: skip
            await self._enqueue(effects)

    # -- retention and the data subject's access (UU 27/2022) ----------------------------

    async def purgeable(self, closed_before: datetime) -> list[int]:
        """Closed tickets past retention, not yet purged; never one whose recap batch still
        waits on the DWH admin (a batch not sent, or one of its tickets unconfirmed)."""
        async with self._conn.execute(
            # By closure time through the partial index (its states written out, as in the
            # index, so the planner can use it; it would read every closed ticket by state).
            "SELECT t.id FROM tickets AS t INDEXED BY tickets_purgeable"
            f" WHERE t.purged_at IS NULL AND t.state IN ({CLOSED_SQL}) AND t.state_since < ?"
            " AND (t.batch_id IS NULL OR (EXISTS (SELECT 1 FROM recap_batches AS b"
            "   WHERE b.id = t.batch_id AND b.status = 'sent') AND NOT EXISTS (SELECT 1"
            "   FROM tickets AS o WHERE o.batch_id = t.batch_id AND o.state = 'sent_to_dwh')))"
            " ORDER BY t.id",
            (to_db_time(closed_before),),
        ) as cur:
            return [int(r[0]) for r in await cur.fetchall()]

    async def purge(
        self, ticket_ids: Sequence[int], actor: Actor, now: datetime, detail: str,
        effects: Callable[[list[int]], Sequence[Effect]] = lambda _: (),
    ) -> list[int]:  # fmt: skip
        """Erase phone, name, keterangan and the photo reference, mask NIK and KK, and
        record a `purge` event per ticket, a chunk per transaction, with `effects` of the
        purged tickets that have a card. A ticket that is open again or already purged is
        left alone. Returns the tickets purged."""
        done: list[int] = []
        closed = ",".join("?" * len(CLOSED_STATE_LIST))
        stamp = to_db_time(now)
        for at in range(0, len(ticket_ids), PURGE_CHUNK):
            chunk = list(ticket_ids[at : at + PURGE_CHUNK])
            marks = ",".join("?" * len(chunk))
            async with self._write() as conn:
                async with conn.execute(
                    f"UPDATE tickets SET nik = {MASKED_SQL.format('nik')},"
                    f" kk = {MASKED_SQL.format('kk')}, phone = '', nama = NULL,"
                    " keterangan = '', photo_file_id = NULL, purged_at = ?"
                    f" WHERE id IN ({marks}) AND purged_at IS NULL AND state IN ({closed})"
                    " RETURNING id, card_message_id",
                    (stamp, *chunk, *CLOSED_STATE_LIST),
                ) as cur:
                    rows = sorted((int(r[0]), r[1] is not None) for r in await cur.fetchall())
                purged = [ticket_id for ticket_id, _ in rows]
                for ticket_id in purged:
                    await self._insert_event(ticket_id, actor, "purge", None, None, stamp, detail)
                await self._enqueue(effects([i for i, has_card in rows if has_card]))
            done += purged
        return done

    async def subject_record(self, nik: str) -> tuple[list[Ticket], list[Event], list[Batch]]:
        """Everything held on one NIK: its tickets, their events, the recaps they went in."""
        tickets = sorted(await self.tickets_by_nik(nik), key=lambda t: t.id)
        ids = [t.id for t in tickets]
        marks = ",".join("?" * len(ids))
        async with self._conn.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE ticket_id IN ({marks}) ORDER BY id", ids
        ) as cur:
            events = [_event(r) for r in await cur.fetchall()]
        async with self._conn.execute(
            # A batch's sending and its tickets' send_to_dwh events share one stamp (after
            # an "Ulang" the ticket's batch_id names only its latest batch).
            f"SELECT {BATCH_COLUMNS} FROM recap_batches WHERE id IN (SELECT batch_id FROM"
            f" tickets WHERE id IN ({marks})) OR sent_at IN (SELECT at FROM events"
            f" WHERE action = 'send_to_dwh' AND ticket_id IN ({marks})) ORDER BY id",
            [*ids, *ids],
        ) as cur:
            batches = [_batch(r) for r in await cur.fetchall()]
        return tickets, events, batches

    async def record_access(
        self, ticket_ids: Sequence[int], actor: Actor, action: str, now: datetime, detail: str
    ) -> None:
        """An export (or another access) recorded against every ticket it read, or against
        no ticket when none was found."""
        async with self._write():
            stamp = to_db_time(now)
            targets: Sequence[int | None] = ticket_ids or [None]
            for ticket_id in targets:
                await self._insert_event(ticket_id, actor, action, None, None, stamp, detail)

    # -- backup -------------------------------------------------------------------------

    async def backup_to(self, target: Path) -> None:
        """A consistent copy through SQLite's online backup API, safe while the bot runs.
        The copy is a new file, owner-only."""
        dest = await aiosqlite.connect(private_file(target, new=True))
        try:
            await self._conn.backup(dest)
        finally:
            await dest.close()
