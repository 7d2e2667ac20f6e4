"""One hop to the database thread per statement, not three.

aiosqlite runs every call in its own thread: `async with conn.execute(sql) as cur: await
cur.fetchall()` is three hops (execute, fetch, close), each a queue put, a thread switch and
a wake-up of the event loop; a tap made about a hundred of them. Here a statement is executed
and its first rows fetched in the same hop, and the cursor closed there when it is exhausted;
a result longer than `PREFETCH` rows goes on fetching from the thread as before.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Generator, Iterable
from typing import Any

import aiosqlite

PREFETCH = 256  # rows fetched with the statement; most results are far smaller


class Rows:
    """A cursor whose first rows are already here (the `aiosqlite.Cursor` calls the stores
    use: fetchone, fetchall, rowcount, lastrowid)."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        cursor: sqlite3.Cursor | None,
        rows: list[Any],
        rowcount: int,
        lastrowid: int | None,
    ) -> None:
        self._conn, self._cursor, self._rows = conn, cursor, rows
        self.rowcount, self.lastrowid = rowcount, lastrowid

    async def _more(self, size: int = PREFETCH) -> bool:
        if self._cursor is None:
            return False
        more: list[Any] = await self._conn._execute(self._cursor.fetchmany, size)
        if len(more) < size:
            await self.close()
        self._rows.extend(more)
        return bool(more)

    async def fetchone(self) -> Any:
        if not self._rows and not await self._more():
            return None
        return self._rows.pop(0)

    async def fetchmany(self, size: int) -> list[Any]:
        while len(self._rows) < size and await self._more(max(size, PREFETCH)):
            pass
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    async def fetchall(self) -> list[Any]:
        while await self._more():
            pass
        rows, self._rows = self._rows, []
        return rows

    async def close(self) -> None:
        cursor, self._cursor = self._cursor, None
        if cursor is not None:
            await self._conn._execute(cursor.close)

    async def __aenter__(self) -> Rows:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Statement:
    """`conn.execute(...)`: awaited, or used as `async with` (as aiosqlite's is)."""

    def __init__(self, conn: aiosqlite.Connection, sql: str, parameters: Any) -> None:
        self._conn, self._sql, self._parameters = conn, sql, parameters
        self._rows: Rows | None = None

    async def _run(self) -> Rows:
        if self._rows is None:
            conn, sql, parameters = self._conn, self._sql, self._parameters

            def run() -> Rows:  # in the database thread
                cursor = conn._conn.execute(sql, parameters)
                rows = cursor.fetchmany(PREFETCH)
                done = len(rows) < PREFETCH
                if done:
                    cursor.close()
                return Rows(conn, None if done else cursor, rows, cursor.rowcount,
                            cursor.lastrowid)  # fmt: skip

            self._rows = await conn._execute(run)
        return self._rows

    def __await__(self) -> Generator[Any, None, Rows]:
        return self._run().__await__()

    async def __aenter__(self) -> Rows:
        return await self._run()

    async def __aexit__(self, *exc: object) -> None:
        if self._rows is not None:
            await self._rows.close()


class Connection:
    """The aiosqlite connection, its `execute` in one hop; the rest as aiosqlite has it."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.raw = conn

    def execute(self, sql: str, parameters: Any = ()) -> Statement:
        return Statement(self.raw, sql, parameters)

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> None:
        await self.raw.executemany(sql, parameters)

    async def backup(self, target: aiosqlite.Connection) -> None:
        await self.raw.backup(target)

    async def close(self) -> None:
        await self.raw.close()

    async def run(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """`fn(connection)` in the database thread, in one hop."""
        return await self.raw._execute(fn, self.raw._conn)
