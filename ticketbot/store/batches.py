"""BatchStore: see the class."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from ticketbot.domain.lifecycle import Transition
from ticketbot.records import (
    BOT_ACTOR,
    Batch,
    Effect,
    Ticket,
)
from ticketbot.store.database import Database
from ticketbot.store.events import EventStore
from ticketbot.store.outbox import OutboxStore
from ticketbot.store.rows import (
    BATCH_COLUMNS,
    TICKET_COLUMNS,
    batch_from,
    ticket_from,
    to_db_time,
)
from ticketbot.store.tickets import TicketStore


@dataclass
class BatchStore:
    """Recap batches: frozen once, sent once, confirmed by the ADB."""

    db: Database
    outbox: OutboxStore
    events: EventStore
    tickets: TicketStore

    async def unbatched_synced(self) -> list[Ticket]:
        async with self.db.conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE state = 'synced' AND batch_id IS NULL"
            " ORDER BY id"
        ) as cur:
            return [ticket_from(r) for r in await cur.fetchall()]

    async def freeze_batch(
        self, due_date: date, now: datetime, domain: str, *, allow_empty: bool, run: bool
    ) -> Batch | None:
        """Freeze every synced, unbatched ticket into a new batch (None when there is
        nothing and empty recaps are off). With `run`, the scheduled recap of `due_date` is
        recorded as done in the same transaction, so a crash neither repeats nor skips it."""
        stamp = to_db_time(now)
        async with self.db.transaction() as conn:
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
        async with self.db.conn.execute(
            f"SELECT {BATCH_COLUMNS} FROM recap_batches WHERE id = ?", (batch_id,)
        ) as cur:
            row = await cur.fetchone()
        return batch_from(row) if row else None

    async def batches(self, status: str | None = None) -> list[Batch]:
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        async with self.db.conn.execute(
            f"SELECT {BATCH_COLUMNS} FROM recap_batches {where} ORDER BY id", args
        ) as cur:
            return [batch_from(r) for r in await cur.fetchall()]

    async def batch_tickets(self, batch_id: int) -> list[Ticket]:
        async with self.db.conn.execute(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE batch_id = ? ORDER BY id", (batch_id,)
        ) as cur:
            return [ticket_from(r) for r in await cur.fetchall()]

    async def mark_batch_sent(
        self,
        batch_id: int,
        send: Transition,
        now: datetime,
        detail: str,
        effects: Callable[[list[int]], Sequence[Effect]] = lambda _: (),
        carries: Callable[[int], bool] = lambda _: False,
    ) -> list[int]:
        """After the SMTP server accepted: the batch is sent, its tickets move to
        sent_to_dwh, whether its summary carries them is stored (`carries`, asked with how
        many moved) and the group effects are queued, all in one transaction. Returns the
        tickets moved."""
        stamp = to_db_time(now)
        moved = []
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE recap_batches SET status = 'sent', sent_at = ?, last_error = NULL"
                " WHERE id = ? AND status = 'pending'",
                (stamp, batch_id),
            )
            if cur.rowcount != 1:
                return []
            async with conn.execute(
                "SELECT id FROM tickets WHERE batch_id = ? AND state = ? ORDER BY id",
                (batch_id, send.source),
            ) as rows:
                ids = [int(r[0]) for r in await rows.fetchall()]
            for ticket_id in ids:
                if await self.tickets.move(ticket_id, send, BOT_ACTOR, stamp, detail):
                    moved.append(ticket_id)
            if carries(len(moved)):
                await conn.execute(
                    "UPDATE recap_batches SET carried = 1 WHERE id = ?", (batch_id,)
                )
            await self.outbox.add(effects(moved))
        return moved

    async def defer_batch(
        self, batch_id: int, next_attempt_at: datetime, kind: str, error: str, *, failed: bool
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE recap_batches SET attempts = attempts + 1, next_attempt_at = ?,"
                " error_kind = ?, last_error = ?, status = ? WHERE id = ? AND status = 'pending'",
                (to_db_time(next_attempt_at), kind, error, "failed" if failed else "pending",
                 batch_id),
            )  # fmt: skip

    async def retry_failed_batch(self, batch_id: int, now: datetime) -> bool:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE recap_batches SET status = 'pending', next_attempt_at = ?,"
                " late_notified = 0 WHERE id = ? AND status = 'failed'",
                (to_db_time(now), batch_id),
            )
            return cur.rowcount == 1

    async def mark_batch_late_notified(self, batch_id: int) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE recap_batches SET late_notified = 1 WHERE id = ?", (batch_id,)
            )

    async def set_batch_summary(self, batch_id: int, message_id: int) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE recap_batches SET summary_message_id = ? WHERE id = ?",
                (message_id, batch_id),
            )

    async def recap_ran(self, due_date: date) -> bool:
        async with self.db.conn.execute(
            "SELECT 1 FROM recap_runs WHERE due_date = ?", (due_date.isoformat(),)
        ) as cur:
            return await cur.fetchone() is not None

    async def _record_run(self, due_date: date, batch_id: int | None, stamp: str) -> None:
        await self.db.conn.execute(
            "INSERT OR IGNORE INTO recap_runs (due_date, batch_id, ran_at) VALUES (?, ?, ?)",
            (due_date.isoformat(), batch_id, stamp),
        )

    async def unconfirmed_batches(self) -> list[tuple[Batch, int]]:
        """Sent recap batches with tickets the ADB has not confirmed yet, and how many."""
        async with self.db.conn.execute(
            f"SELECT {', '.join('b.' + c.strip() for c in BATCH_COLUMNS.split(','))},"
            " count(t.id) FROM recap_batches AS b JOIN tickets AS t ON t.batch_id = b.id"
            " WHERE b.status = 'sent' AND t.state = 'sent_to_dwh' GROUP BY b.id ORDER BY b.id"
        ) as cur:
            return [(batch_from(r[:-1]), int(r[-1])) for r in await cur.fetchall()]
