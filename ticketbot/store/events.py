"""EventStore: see the class."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ticketbot.records import (
    Actor,
    Effect,
    Event,
)
from ticketbot.store.database import Database
from ticketbot.store.outbox import OutboxStore
from ticketbot.store.rows import (
    EVENT_COLUMNS,
    EVENTS_CHUNK,
    FETCH_CHUNK,
    event_from,
    events_of_tickets,
    to_db_time,
)


@dataclass
class EventStore:
    """The append-only event log: transitions, views, exports."""

    db: Database
    outbox: OutboxStore

    async def insert(
        self,
        ticket_id: int | None,
        actor: Actor,
        action: str,
        from_state: str | None,
        to_state: str | None,
        stamp: str,
        detail: str | None,
        batch_id: int | None = None,  # an event about a recap batch (its mail)
    ) -> None:
        await self.db.conn.execute(
            "INSERT INTO events (ticket_id, actor_id, actor_name, action, from_state, to_state,"
            " at, detail, batch_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ticket_id, actor.user_id, actor.name, str(action),
             from_state, to_state,
             stamp, detail, batch_id),
        )  # fmt: skip

    async def record_event(
        self,
        ticket_id: int | None,
        actor: Actor,
        action: str,
        now: datetime,
        detail: str | None = None,
        effects: Sequence[Effect] = (),
    ) -> None:
        """An event that changes no state (e.g. a view of the full NIK)."""
        async with self.db.transaction():
            stamp = to_db_time(now)
            await self.insert(ticket_id, actor, action, None, None, stamp, detail)
            await self.outbox.add(effects)

    async def record_search(self, actor: Actor, now: datetime, detail: str) -> int:
        """A /cari: who, the terms and how many were found. Its id names the search."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO events (ticket_id, actor_id, actor_name, action, at, detail)"
                " VALUES (NULL, ?, ?, 'search', ?, ?)",
                (actor.user_id, actor.name, to_db_time(now), detail),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    async def search_terms(self, event_id: int) -> str | None:
        async with self.db.conn.execute(
            "SELECT detail FROM events WHERE id = ? AND action = 'search'", (event_id,)
        ) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row and row[0] is not None else None

    async def events_for(self, ticket_id: int) -> list[Event]:
        async with self.db.conn.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE ticket_id = ? ORDER BY id", (ticket_id,)
        ) as cur:
            return [event_from(r) for r in await cur.fetchall()]

    async def event_rows(
        self, ticket_ids: Sequence[int], actions: Sequence[str] = ()
    ) -> list[Any]:  # fmt: skip
        """The events of many tickets (only `actions`, when given) as rows for
        `events_by_ticket()` (which a worker thread runs), a query per EVENTS_CHUNK tickets."""
        rows: list[Any] = []
        for at in range(0, len(ticket_ids), EVENTS_CHUNK):
            chunk = list(ticket_ids[at : at + EVENTS_CHUNK])
            async with self.db.conn.execute(
                events_of_tickets(len(chunk), len(actions)), [*chunk, *actions]
            ) as cur:
                while found := await cur.fetchmany(FETCH_CHUNK):
                    rows += found
        return rows

    async def last_transition(self, ticket_id: int) -> Event | None:
        async with self.db.conn.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE ticket_id = ? AND to_state IS NOT NULL"
            " ORDER BY id DESC LIMIT 1",
            (ticket_id,),
        ) as cur:
            row = await cur.fetchone()
        return event_from(row) if row else None

    async def closing_reason(self, ticket_id: int) -> str | None:
        """The reason recorded with a ticket's last step (a rejection, a cancellation)."""
        async with self.db.conn.execute(
            "SELECT detail FROM events WHERE ticket_id = ? AND to_state IS NOT NULL"
            " AND to_state IN ('rejected', 'cancelled') ORDER BY id DESC LIMIT 1",
            (ticket_id,),
        ) as cur:
            row = await cur.fetchone()
        return row[0] if row and isinstance(row[0], str) else None

    async def record_access(
        self, ticket_ids: Sequence[int], actor: Actor, action: str, now: datetime, detail: str
    ) -> None:
        """An export (or another access) recorded against every ticket it read, or against
        no ticket when none was found."""
        async with self.db.transaction():
            stamp = to_db_time(now)
            targets: Sequence[int | None] = ticket_ids or [None]
            for ticket_id in targets:
                await self.insert(ticket_id, actor, action, None, None, stamp, detail)
