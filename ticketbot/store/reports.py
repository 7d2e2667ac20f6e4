"""ReportStore: see the class."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ticketbot.domain.lifecycle import Procedure
from ticketbot.records import (
    Effect,
    ReportRun,
)
from ticketbot.store.database import Database
from ticketbot.store.outbox import OutboxStore
from ticketbot.store.rows import (
    FETCH_CHUNK,
    MASKED_SQL,
    REPORT_RUN_COLUMNS,
    from_db_time,
    report_run_from,
    to_db_time,
)


@dataclass
class ReportStore:
    """The monthly report: its rows and its runs."""

    db: Database
    outbox: OutboxStore
    procedure: Procedure

    async def report_rows(
        self, start: datetime, end: datetime
    ) -> tuple[list[Any], list[Any]]:  # fmt: skip
        """Every ticket open at some time in [start, end) and its transitions, as rows for
        `histories()` (which a worker thread runs): two queries, whatever the number of
        tickets. The NIK leaves the database masked."""
        open_states = self.procedure.open_states
        marks = ",".join("?" * len(open_states))
        where = f"opened_at < ? AND (state IN ({marks}) OR state_since >= ?)"
        args = (to_db_time(end), *open_states, to_db_time(start))
        events: list[Any] = []
        async with self.db.conn.execute(
            "SELECT ticket_id, at, action, from_state, to_state, detail, actor_id FROM events"
            f" WHERE to_state IS NOT NULL AND ticket_id IN (SELECT id FROM tickets WHERE {where})"
            " ORDER BY ticket_id, id",
            args,
            off_loop=True,  # a month's events: a scan that takes a while
        ) as cur:
            while rows := await cur.fetchmany(FETCH_CHUNK):
                events += rows
        async with self.db.conn.execute(
            f"SELECT id, {MASKED_SQL.format('nik')}, lembaga, opened_at, opened_by, sumber"
            " FROM tickets"
            f" WHERE {where} ORDER BY id",
            args,
            off_loop=True,
        ) as cur:
            tickets = list(await cur.fetchall())
        return tickets, events

    async def first_opened_at(self) -> datetime | None:
        async with self.db.conn.execute(
            "SELECT min(opened_at) FROM tickets", off_loop=True
        ) as cur:
            row = await cur.fetchone()
        return from_db_time(row[0] if row else None)

    async def report_run(self, month: str) -> ReportRun | None:
        async with self.db.conn.execute(
            f"SELECT {REPORT_RUN_COLUMNS} FROM report_runs WHERE month = ?", (month,)
        ) as cur:
            row = await cur.fetchone()
        return report_run_from(row) if row else None

    async def due_report_runs(self, now: datetime) -> list[ReportRun]:
        async with self.db.conn.execute(
            f"SELECT {REPORT_RUN_COLUMNS} FROM report_runs WHERE status = 'pending'"
            " AND next_attempt_at <= ? ORDER BY month",
            (to_db_time(now),),
        ) as cur:
            return [report_run_from(r) for r in await cur.fetchall()]

    async def create_report_run(self, month: str, now: datetime, message_id: str) -> None:
        """The month's report is due: recorded once (a restart finds it, never a second)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO report_runs (month, created_at, message_id, next_attempt_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (month) DO NOTHING",
                (month, to_db_time(now), message_id, to_db_time(now)),
            )

    async def resume_failed_report_runs(self, now: datetime) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE report_runs SET status = 'pending', next_attempt_at = ?"
                " WHERE status = 'failed'",
                (to_db_time(now),),
            )

    async def report_run_sent(self, month: str, now: datetime) -> None:
        async with self.db.transaction() as conn:
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
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE report_runs SET attempts = attempts + 1, next_attempt_at = ?,"
                " error_kind = ?, last_error = ?, status = ?,"
                " notified = notified OR ? WHERE month = ?",
                (to_db_time(next_at), kind, error[:500], "failed" if failed else "pending",
                 bool(effects), month),
            )  # fmt: skip
            await self.outbox.add(effects)
