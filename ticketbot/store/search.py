"""SearchIndex: what /cari reads (SPEC §3 "Search"), kept in the transaction of the ticket
change that implies it: the phone's digits reversed (its end becomes a prefix, which a
B-tree finds) and the folded name in an FTS5 trigram index (any part of three letters)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ticketbot.domain.search import PAGE, Query, folded, reversed_digits
from ticketbot.records import Ticket
from ticketbot.store.database import Database
from ticketbot.store.rows import TICKET_COLUMNS, ticket_from, to_db_time

COUNT_CAP = 1000  # a search that finds more says "lebih dari 1000"


@dataclass
class SearchIndex:
    db: Database

    async def add(self, ticket_id: int, phone: str, nama: str | None) -> None:
        """Inside the transaction that opens the ticket."""
        await self.db.conn.execute(
            "UPDATE tickets SET phone_rev = ? WHERE id = ?", (reversed_digits(phone), ticket_id)
        )
        if nama:
            await self.db.conn.execute(
                "INSERT INTO ticket_names (rowid, nama) VALUES (?, ?)", (ticket_id, folded(nama))
            )

    async def forget(self, ticket_ids: Sequence[int]) -> None:
        """Inside the purge's transaction: an erased name or phone is not found again."""
        marks = ",".join("?" * len(ticket_ids))
        await self.db.conn.execute(
            f"UPDATE tickets SET phone_rev = NULL WHERE id IN ({marks})", list(ticket_ids)
        )
        await self.db.conn.execute(
            f"DELETE FROM ticket_names WHERE rowid IN ({marks})", list(ticket_ids)
        )

    async def compact(self) -> None:
        """After a purge: FTS5 keeps deleted entries in old segments until they are merged;
        merged now, so the erased names leave the file (secure_delete zeroes the pages)."""
        async with self.db.transaction() as conn:
            await conn.execute("INSERT INTO ticket_names (ticket_names) VALUES ('optimize')")

    async def fill(self) -> int:
        """Tickets from before the index (migration 11): indexed once, at start-up."""
        async with self.db.conn.execute(
            "SELECT id, phone, nama FROM tickets WHERE phone_rev IS NULL AND purged_at IS NULL"
            " AND phone != ''",
            off_loop=True,
        ) as cur:
            rows = list(await cur.fetchall())
        if rows:
            async with self.db.transaction() as conn:
                for ticket_id, phone, nama in rows:
                    await conn.execute("DELETE FROM ticket_names WHERE rowid = ?", (ticket_id,))
                    await self.add(int(ticket_id), str(phone), nama)
        return len(rows)

    async def find(
        self, query: Query, opened: tuple[datetime, datetime] | None, open_states: Sequence[str],
        page: int,
    ) -> tuple[list[Ticket], int]:  # fmt: skip
        """One page of the tickets that match every term (open first, newest first), and
        how many match in all."""
        where: list[str] = []
        args: list[object] = []
        if query.ticket_id is not None:
            where.append("id = ?")
            args.append(query.ticket_id)
        if query.batch_id is not None:
            where.append("batch_id = ?")
            args.append(query.batch_id)
        if opened is not None:
            where.append("opened_at >= ? AND opened_at < ?")
            args += [to_db_time(opened[0]), to_db_time(opened[1])]
        if query.phone_end is not None:
            start = query.phone_end[::-1]
            where.append("phone_rev >= ? AND phone_rev < ?")  # ':' sorts right after '9'
            args += [start, start + ":"]
        if query.states is not None:
            where.append(f"state IN ({','.join('?' * len(query.states))})")
            args += sorted(query.states)
        if query.lembaga_key is not None:
            where.append("lembaga_key = ?")
            args.append(query.lembaga_key)
        if query.lembaga_prefix is not None:
            where.append("lembaga_key >= ? AND lembaga_key < ?")
            args += [query.lembaga_prefix, query.lembaga_prefix + "\uffff"]
        if query.names:
            # One MATCH for every part: the index intersects them itself.
            where.append("id IN (SELECT rowid FROM ticket_names WHERE ticket_names MATCH ?)")
            args.append(" AND ".join('"' + n.replace('"', '""') + '"' for n in query.names))
        condition = " AND ".join(where) or "1"
        async with self.db.conn.execute(
            # Counted up to COUNT_CAP: "more than 1000" says enough, and costs far less.
            f"SELECT count(*) FROM (SELECT 1 FROM tickets WHERE {condition} LIMIT ?)",
            [*args, COUNT_CAP + 1],
            off_loop=True,  # at a million tickets a search scans for tens of ms
        ) as cur:
            row = await cur.fetchone()
        total = int(row[0]) if row else 0
        # Open first, newest first, as two walks down the ids (each stops at its page)
        # rather than one sort of every match: a name part shared by 50,000 tickets.
        marks = ",".join("?" * len(open_states))
        first = page * PAGE
        async with self.db.conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM tickets WHERE ({condition})"
            f" AND state IN ({marks}) LIMIT ?)",
            [*args, *open_states, first + PAGE],
            off_loop=True,
        ) as cur:
            row = await cur.fetchone()
        open_count = int(row[0]) if row else 0
        found: list[Ticket] = []
        for part, offset in ((f"state IN ({marks})", first),
                             (f"state NOT IN ({marks})", max(first - open_count, 0))):  # fmt: skip
            if part.startswith("state IN") and first >= open_count:
                continue  # this page begins past the open ones
            if len(found) >= PAGE:
                break
            async with self.db.conn.execute(
                f"SELECT {TICKET_COLUMNS} FROM tickets WHERE ({condition}) AND {part}"
                " ORDER BY id DESC LIMIT ? OFFSET ?",
                [*args, *open_states, PAGE - len(found), offset],
                off_loop=True,
            ) as cur:
                found += [ticket_from(r) for r in await cur.fetchall()]
        return found, total
