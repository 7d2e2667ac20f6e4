"""InboxStore: see the class."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ticketbot.store.database import Database
from ticketbot.store.rows import MARK_HANDLED, to_db_time


@dataclass
class InboxStore:
    """The durable inbox: every update, stored before Telegram may forget it."""

    db: Database

    async def store_updates(
        self,
        updates: Sequence[tuple[int, str]],
        now: datetime,
        *,
        handled: set[int],
        synced: bool = True,
    ) -> int:
        """Store fetched updates; those in `handled` (already done, or never to be handled)
        keep only their id. `synced` False: committed without an fsync of its own (see
        Inbox._round). Returns the commit's number (for `Database.durable`)."""
        stamp = to_db_time(now)
        async with self.db.transaction(synced=synced) as conn:
            await conn.executemany(
                "INSERT OR IGNORE INTO inbox (update_id, payload, received_at, handled_at)"
                " VALUES (?, ?, ?, ?)",
                [(u, "" if u in handled else payload, stamp, stamp if u in handled else None)
                 for u, payload in updates],
            )  # fmt: skip
        return self.db.commits

    async def unhandled_updates(self) -> list[tuple[int, str]]:
        async with self.db.conn.execute(
            "SELECT update_id, payload FROM inbox WHERE handled_at IS NULL ORDER BY update_id"
        ) as cur:
            return [(int(r[0]), str(r[1])) for r in await cur.fetchall()]

    async def last_update_id(self) -> int | None:
        async with self.db.conn.execute("SELECT max(update_id) FROM inbox") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else None

    async def mark_handled(self, update_id: int, now: datetime, *, synced: bool = True) -> None:
        async with self.db.transaction(synced=synced) as conn:
            await conn.execute(MARK_HANDLED, (to_db_time(now), update_id))

    async def prune(self, before: datetime) -> int:
        """Forget handled updates older than `before`; the newest keeps the offset."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM inbox WHERE handled_at IS NOT NULL AND handled_at < ?"
                " AND update_id < (SELECT max(update_id) FROM inbox)",
                (to_db_time(before),),
            )
        return cur.rowcount
