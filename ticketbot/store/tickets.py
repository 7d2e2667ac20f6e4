"""TicketStore: see the class."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ticketbot.domain.lifecycle import Action, Procedure, Transition
from ticketbot.domain.validation import TicketForm
from ticketbot.records import (
    Actor,
    Batch,
    Effect,
    Event,
    Ticket,
    TransitionOutcome,
)
from ticketbot.store.database import Database
from ticketbot.store.events import EventStore
from ticketbot.store.outbox import OutboxStore
from ticketbot.store.rows import (
    BATCH_COLUMNS,
    EVENT_COLUMNS,
    MASKED_SQL,
    PLACE_CARD,
    PURGE_CHUNK,
    STEP_SINCE_SQL,
    TICKET_COLUMNS,
    Deadline,
    batch_from,
    event_from,
    from_db_time,
    ticket_from,
    to_db_time,
)
from ticketbot.store.search import SearchIndex


@dataclass
class TicketStore:
    """Tickets: intake, the compare-and-set move, deadlines, the queue, retention."""

    db: Database
    outbox: OutboxStore
    events: EventStore
    search: SearchIndex
    procedure: Procedure
    # The running step's deadline (the office's calendar and standards), stored with
    # every transition; None: deadlines are filled in by `refresh_deadlines`.
    deadline: Deadline | None = None

    def __post_init__(self) -> None:
        # `state IN (...)` of the open and the closed states, as the table says.
        self._open = self.procedure.open_states
        self._marks = ",".join("?" * len(self._open))
        self._closed = self.procedure.closed_states
        self._closed_sql = ", ".join(f"'{s}'" for s in self._closed)  # the table's own names

    async def open_ticket(
        self,
        form: TicketForm,
        opener: Actor,
        chat_id: int,
        now: datetime,
        photo_file_id: str | None = None,
        *,
        document: bool = False,
        intake_message_id: int | None = None,
        effects: Callable[[int], Sequence[Effect]] = lambda _: (),
    ) -> tuple[Ticket, bool | None]:
        """Create the ticket, its `open` event and `effects(ticket_id)` in one transaction.
        Returns (ticket, True) when created, (existing, False) for a duplicate, and
        (ticket, None) when this intake message already opened it (a replayed update)."""
        assert opener.user_id is not None
        async with self.db.transaction(decisive=True) as conn:
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
                " intake_chat_id, intake_message_id, scan_is_document, sumber)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'new', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (form.nik, form.kk, form.lembaga, form.lembaga_key, form.phone, form.nama,
                 form.keterangan, photo_file_id, opener.user_id, stamp, stamp, stamp, chat_id,
                 chat_id if intake_message_id else None, intake_message_id, document,
                 form.sumber),
            )  # fmt: skip
            ticket_id = cur.lastrowid
            assert ticket_id is not None
            first = self.procedure.first_state
            await self.set_due(ticket_id, first, stamp)
            await self.search.add(ticket_id, form.phone, form.nama)
            await self.events.insert(ticket_id, opener, Action.OPEN, None, first, stamp, None)
            await self.outbox.add(effects(ticket_id))
            ticket = await self.get_ticket(ticket_id)
        assert ticket is not None
        return ticket, True

    async def _one_ticket(self, where: str, args: Sequence[Any]) -> Ticket | None:
        async with self.db.conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE {where}", args
        ) as cur:
            row = await cur.fetchone()
        return ticket_from(row) if row else None

    async def _open_duplicate(self, nik: str, lembaga_key: str) -> Ticket | None:
        async with self.db.conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE nik = ? AND lembaga_key = ?"
            f" AND state IN ({self._marks})",
            (nik, lembaga_key, *self._open),
        ) as cur:
            row = await cur.fetchone()
        return ticket_from(row) if row else None

    async def get_ticket(self, ticket_id: int) -> Ticket | None:
        async with self.db.conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE id = ?", (ticket_id,)
        ) as cur:
            row = await cur.fetchone()
        return ticket_from(row) if row else None

    async def ticket_by_card(self, chat_id: int, message_id: int) -> Ticket | None:
        async with self.db.conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE chat_id = ? AND card_message_id = ?",
            (chat_id, message_id),
        ) as cur:
            row = await cur.fetchone()
        return ticket_from(row) if row else None

    async def closed_before(self, ticket: Ticket, limit: int = 3) -> list[Ticket]:
        """Earlier tickets for the same NIK and lembaga that were rejected or cancelled."""
        async with self.db.conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE nik = ? AND lembaga_key = ?"
            " AND id < ? AND state IN ('rejected', 'closed_rejected', 'cancelled')"
            " ORDER BY id DESC LIMIT ?",
            (ticket.nik, ticket.lembaga_key, ticket.id, limit),
        ) as cur:
            return [ticket_from(r) for r in await cur.fetchall()]

    async def tickets_by_nik(self, nik: str) -> list[Ticket]:
        async with self.db.conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE nik = ? ORDER BY id DESC", (nik,)
        ) as cur:
            return [ticket_from(r) for r in await cur.fetchall()]

    async def open_tickets(self) -> list[Ticket]:
        async with self.db.conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE state IN ({self._marks}) ORDER BY id",
            self._open,
        ) as cur:
            return [ticket_from(r) for r in await cur.fetchall()]

    async def tickets_without_card(self) -> list[Ticket]:
        async with self.db.conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE card_message_id IS NULL ORDER BY id"
        ) as cur:
            return [ticket_from(r) for r in await cur.fetchall()]

    async def ping_sharers(self, message_id: int) -> set[int]:
        async with self.db.conn.execute(
            "SELECT id FROM tickets WHERE ping_message_id = ?", (message_id,)
        ) as cur:
            return {int(r[0]) for r in await cur.fetchall()}

    async def open_menu(self, ticket: Ticket, action: str, effects: Sequence[Effect]) -> int:
        """Show `action`'s reasons on the card: a new round, unless the ticket moved on
        meanwhile (0). Its card is re-rendered in the same transaction."""
        async with self.db.transaction() as conn:
            async with conn.execute(
                "UPDATE tickets SET menu_action = ?, menu_round = menu_round + 1"
                " WHERE id = ? AND state = ? RETURNING menu_round",
                (action, ticket.id, ticket.state),
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                return 0
            await self.outbox.add(effects)
        return int(row[0])

    async def close_menu(self, ticket_id: int, round_: int, effects: Sequence[Effect]) -> bool:
        """Back from the reasons of opening `round_` (only that one) to the card."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE tickets SET menu_action = NULL WHERE id = ? AND menu_round = ?"
                " AND menu_action IS NOT NULL",
                (ticket_id, round_),
            )
            if cur.rowcount != 1:
                return False
            await self.outbox.add(effects)
        return True

    async def set_card_message(self, ticket_id: int, message_id: int) -> None:
        """Where a card whose post's answer was lost is (a tap on it said): posted just now."""
        async with self.db.transaction() as conn:
            await conn.execute(
                PLACE_CARD,
                {"card": message_id, "now": to_db_time(datetime.now(UTC)), "ticket": ticket_id},
            )

    async def count_tickets(self) -> int:
        async with self.db.conn.execute("SELECT count(*) FROM tickets") as cur:
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
        follow: Callable[[], Awaitable[Sequence[Effect]]] | None = None,
    ) -> TransitionOutcome:
        """`move`, plus the group effects it implies, in one transaction; `follow` asks for
        more once it moved, inside the transaction (what it reads no other move changes)."""
        async with self.db.transaction(decisive=True):
            applied = await self._move_with(ticket_id, transition, actor, now, detail, effects)
            if applied and follow is not None:
                await self.outbox.add(await follow())
        ticket = await self.get_ticket(ticket_id)
        if ticket is None:
            raise LookupError(f"ticket {ticket_id} does not exist")
        last = None if applied else await self.events.last_transition(ticket_id)
        return TransitionOutcome(applied, ticket, last)

    async def apply_each(
        self,
        moves: Sequence[tuple[int, Transition]],
        actor: Actor,
        now: datetime,
        effects: Callable[[int], Sequence[Effect]],
    ) -> list[int]:
        """Many tickets moved at once (a batch confirmed), each with its effects, in one
        transaction: the group's worker sees them together (one combined ping). Returns the
        ids that moved."""
        moved = []
        async with self.db.transaction(decisive=True):
            for ticket_id, transition in moves:
                if await self._move_with(
                    ticket_id, transition, actor, now, None, effects(ticket_id)
                ):
                    moved.append(ticket_id)
        return moved

    async def _move_with(
        self, ticket_id: int, transition: Transition, actor: Actor, now: datetime,
        detail: str | None, effects: Sequence[Effect],
    ) -> bool:  # fmt: skip
        """Inside a transaction: `move`, and the group effects it implies when it moved."""
        applied = await self.move(ticket_id, transition, actor, to_db_time(now), detail)
        if applied:
            await self.outbox.add(effects)
        return applied

    async def move(
        self, ticket_id: int, transition: Transition, actor: Actor, stamp: str,
        detail: str | None,
    ) -> bool:  # fmt: skip
        """Inside a transaction: the one compare-and-set of every transition (source ->
        target), the step's clock and deadline, and its event. False when the ticket was
        no longer in the source state (a second tap, a stale button, a race)."""
        step = STEP_SINCE_SQL[self.procedure.step(transition.target).clock]
        reason = ":detail" if transition.keeps_reason else "reject_reason"
        batch = "NULL" if transition.leaves_batch else "batch_id"
        async with self.db.conn.execute(
            f"UPDATE tickets SET state = :target, state_since = :stamp, step_since = {step},"
            f" reject_reason = {reason}, batch_id = {batch}, menu_action = NULL"
            " WHERE id = :id AND state = :source RETURNING step_since",
            {"target": transition.target, "stamp": stamp, "id": ticket_id,
             "source": transition.source, "detail": detail},
        ) as cur:  # fmt: skip
            changed = await cur.fetchone()
        if changed is None:
            return False
        await self.set_due(ticket_id, transition.target, changed[0])
        await self.events.insert(
            ticket_id, actor, transition.action, transition.source, transition.target, stamp,
            detail,
        )  # fmt: skip
        return True

    def _due_text(self, state: str, step_since: str | None) -> str | None:
        if self.deadline is None:
            return None
        due = self.deadline(state, from_db_time(step_since))
        return to_db_time(due) if due is not None else None

    async def set_due(self, ticket_id: int, state: str, step_since: str | None) -> None:
        """Inside a write: the deadline of the step the ticket just entered."""
        await self.db.conn.execute(
            "UPDATE tickets SET due_at = ? WHERE id = ?",
            (self._due_text(state, step_since), ticket_id),
        )

    async def refresh_deadlines(self, rule: str, now: datetime) -> int:
        """Compute the stored deadlines of the open tickets again when the rule that made
        them (calendar, standards, holidays) is not `rule`; returns how many."""
        before = await self.db.setting("deadline_rule")
        if self.deadline is None or before == rule:
            return 0
        async with self.db.conn.execute(
            f"SELECT id, state, step_since FROM tickets WHERE state IN ({self._marks})",
            self._open,
        ) as cur:
            rows = list(await cur.fetchall())
        async with self.db.transaction() as conn:
            await conn.executemany(
                "UPDATE tickets SET due_at = ? WHERE id = ?",
                [(self._due_text(r[1], r[2]), r[0]) for r in rows],
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

    async def queue_counts(self, now: datetime) -> dict[str, tuple[int, int]]:
        """`/antrian`: per open state, how many tickets and how many of them overdue."""
        async with self.db.conn.execute(
            f"SELECT state, count(*), sum(due_at < ?) FROM tickets WHERE state IN ({self._marks})"
            " GROUP BY state",
            (to_db_time(now), *self._open),
        ) as cur:
            return {r[0]: (r[1], r[2] or 0) for r in await cur.fetchall()}

    async def queue_tickets(self, state: str, limit: int) -> list[Ticket]:
        """The first `limit` tickets of a step by deadline (overdue first), by an index."""
        async with self.db.conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE state = ? ORDER BY due_at, id LIMIT ?",
            (state, limit),
        ) as cur:
            return [ticket_from(r) for r in await cur.fetchall()]

    async def overdue_tickets(self, now: datetime, limit: int = 1000) -> list[Ticket]:
        """Open tickets past their deadline, the longest overdue first."""
        async with self.db.conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE due_at < ? AND state IN ({self._marks})"
            " ORDER BY due_at, id LIMIT ?",
            (to_db_time(now), *self._open, limit),
        ) as cur:
            return [ticket_from(r) for r in await cur.fetchall()]

    async def newly_overdue(
        self, now: datetime, effects: Callable[[list[int]], Sequence[Effect]], limit: int = 200
    ) -> list[int]:
        """Open tickets whose deadline passed and whose card does not say so yet: marked as
        shown, with `effects` (their cards re-rendered), in one transaction. The mark is in
        the database, so a restart re-renders none of them again."""
        async with self.db.transaction() as conn:
            async with conn.execute(
                f"UPDATE tickets SET overdue_shown = due_at WHERE id IN (SELECT id FROM tickets"
                f" WHERE due_at < ? AND state IN ({self._marks})"
                " AND (overdue_shown IS NULL OR overdue_shown != due_at)"
                " ORDER BY due_at LIMIT ?) RETURNING id",
                (to_db_time(now), *self._open, limit),
            ) as cur:
                ids = sorted(int(r[0]) for r in await cur.fetchall())
            await self.outbox.add(effects(ids))
        return ids

    async def purgeable(self, closed_before: datetime) -> list[int]:
        """Closed tickets past retention, not yet purged; never one whose recap batch still
        waits on the DWH admin (a batch not sent, or one of its tickets unconfirmed)."""
        async with self.db.conn.execute(
            # By closure time through the partial index (its states written out, as in the
            # index, so the planner can use it; it would read every closed ticket by state).
            "SELECT t.id FROM tickets AS t INDEXED BY tickets_purgeable"
            f" WHERE t.purged_at IS NULL AND t.state IN ({self._closed_sql}) AND t.state_since < ?"
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
        *, presets: Collection[str] = (), erased: str = "",
    ) -> list[int]:  # fmt: skip
        """Erase phone, name, keterangan and the photo reference, mask NIK and KK, replace
        every typed reason in the ticket's events by `erased` (a preset reason names nobody
        and stays, for the report), and record a `purge` event per ticket, a chunk per
        transaction, with `effects` of the purged tickets that have a card. A ticket that is
        open again or already purged is left alone. Returns the tickets purged."""
        kept = sorted(set(presets))
        keep_marks = ",".join("?" * len(kept))
        done: list[int] = []
        closed = ",".join("?" * len(self._closed))
        stamp = to_db_time(now)
        for at in range(0, len(ticket_ids), PURGE_CHUNK):
            chunk = list(ticket_ids[at : at + PURGE_CHUNK])
            marks = ",".join("?" * len(chunk))
            async with self.db.transaction() as conn:
                async with conn.execute(
                    f"UPDATE tickets SET nik = {MASKED_SQL.format('nik')},"
                    f" kk = {MASKED_SQL.format('kk')}, phone = '', nama = NULL,"
                    " keterangan = '', photo_file_id = NULL, purged_at = ?,"
                    " reject_reason = CASE WHEN reject_reason IS NULL"
                    f"   OR reject_reason IN ({keep_marks}) THEN reject_reason ELSE ? END"
                    f" WHERE id IN ({marks}) AND purged_at IS NULL AND state IN ({closed})"
                    " RETURNING id, card_message_id",
                    (stamp, *kept, erased, *chunk, *self._closed),
                ) as cur:
                    rows = sorted((int(r[0]), r[1] is not None) for r in await cur.fetchall())
                purged = [ticket_id for ticket_id, _ in rows]
                await conn.execute(
                    # Only the tickets just purged: the log of any other stays as written.
                    "UPDATE events SET detail = ? WHERE ticket_id IN"
                    f" ({','.join('?' * len(purged))}) AND to_state IS NOT NULL"
                    f" AND detail IS NOT NULL AND detail != ? AND detail NOT IN ({keep_marks})",
                    (erased, *purged, erased, *kept),
                )
                await self.search.forget(purged)
                for ticket_id in purged:
                    await self.events.insert(ticket_id, actor, "purge", None, None, stamp, detail)
                await self.outbox.add(effects([i for i, has_card in rows if has_card]))
            done += purged
        return done

    async def subject_record(self, nik: str) -> tuple[list[Ticket], list[Event], list[Batch]]:
        """Everything held on one NIK: its tickets, their events, the recaps they went in."""
        tickets = sorted(await self.tickets_by_nik(nik), key=lambda t: t.id)
        ids = [t.id for t in tickets]
        marks = ",".join("?" * len(ids))
        async with self.db.conn.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE ticket_id IN ({marks}) ORDER BY id", ids
        ) as cur:
            events = [event_from(r) for r in await cur.fetchall()]
        async with self.db.conn.execute(
            # A batch's sending and its tickets' send_to_dwh events share one stamp (after
            # an "Ulang" the ticket's batch_id names only its latest batch).
            f"SELECT {BATCH_COLUMNS} FROM recap_batches WHERE id IN (SELECT batch_id FROM"
            f" tickets WHERE id IN ({marks})) OR sent_at IN (SELECT at FROM events"
            f" WHERE action = 'send_to_dwh' AND ticket_id IN ({marks})) ORDER BY id",
            [*ids, *ids],
        ) as cur:
            batches = [batch_from(r) for r in await cur.fetchall()]
        return tickets, events, batches
