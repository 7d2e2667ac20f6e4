"""PeopleStore: see the class."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ticketbot.records import (
    Effect,
)
from ticketbot.store.database import Database
from ticketbot.store.outbox import OutboxStore
from ticketbot.store.rows import (
    to_db_time,
)


@dataclass
class PeopleStore:
    """Staff names, reminder rounds, the office's group."""

    db: Database
    outbox: OutboxStore

    async def remember_person(self, user_id: int, name: str, now: datetime) -> None:
        # A cache of display names (learnt again from the next update): no fsync of its own.
        async with self.db.transaction(synced=False) as conn:
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
        async with self.db.conn.execute(
            f"SELECT user_id, name FROM people WHERE user_id IN ({marks})", ids
        ) as cur:
            return {int(r[0]): str(r[1]) for r in await cur.fetchall()}

    async def reminder_state(self) -> dict[str, tuple[str, int, datetime]]:
        """key -> (about, count, last reminded) for everything reminded so far."""
        async with self.db.conn.execute("SELECT key, about, count, last_at FROM reminders") as cur:
            return {
                str(r[0]): (str(r[1]), int(r[2]), datetime.fromisoformat(str(r[3])))
                for r in await cur.fetchall()
            }

    async def record_reminders(
        self, records: Sequence[tuple[str, str, int]], now: datetime, effects: Sequence[Effect]
    ) -> None:
        """A round's reminders and the record of them, in one transaction."""
        async with self.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO reminders (key, about, count, last_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET about = excluded.about,"
                " count = excluded.count, last_at = excluded.last_at",
                [(key, about, n, now.isoformat()) for key, about, n in records],
            )
            await self.outbox.add(effects)

    async def open_private_chat(self, user_id: int) -> None:
        """The person wrote to the bot privately: the bot may write to them there."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE people SET private_chat = 1 WHERE user_id = ? AND private_chat = 0",
                (user_id,),
            )

    async def close_private_chat(self, user_id: int) -> None:
        """The person blocked the bot (Telegram says Forbidden): the group, from now on."""
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE people SET private_chat = 0 WHERE user_id = ?", (user_id,))

    async def has_private_chat(self, user_id: int) -> bool:
        async with self.db.conn.execute(
            "SELECT private_chat FROM people WHERE user_id = ?", (user_id,)
        ) as cur:
            row = await cur.fetchone()
        return bool(row and row[0])

    async def move_group(self, old_id: int, new_id: int) -> None:
        """Telegram upgraded the group to a supergroup: the id changes, messages stay."""
        async with self.db.transaction() as conn:
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

    async def set_setting(self, key: str, value: str | None, effects: Sequence[Effect]) -> None:
        """A setting (None removes it) and what the group is told of it, together."""
        async with self.db.transaction() as conn:
            if value is None:
                await conn.execute("DELETE FROM settings WHERE key = ?", (key,))
            else:
                await conn.execute(
                    "INSERT INTO settings (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )
            await self.outbox.add(effects)
