"""Statements on the event loop; waits and flushes in the database thread.

aiosqlite runs every call in its own thread: each is a queue put, a thread switch and a
wake-up of the event loop, ~90 µs of CPU where the statement itself takes ~4 µs (a point
read or write in the page cache). Here a statement runs on the event loop, unless it may
take long:
- a synced `COMMIT` (its fsync) goes to the database thread (`run`), as do the WAL's
  checkpoints and `BEGIN IMMEDIATE` when another process holds the write lock (it waits
  there): one hop per synced transaction, none for an unsynced one (database.py);
- statements marked `off_loop` (searches and reports that scan at a million tickets) go
  there too, statement and first rows in one hop;
- inside a write transaction nothing waits for a lock (it is held), and in WAL mode a read
  never waits for a writer.
One sqlite3 connection serves both, never at the same time: a statement on the loop waits
while the thread has work of this connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import Any

import aiosqlite

PREFETCH = 256  # rows fetched with the statement; most results are far smaller


class Rows:
    """A cursor whose first rows are already here (the `aiosqlite.Cursor` calls the stores
    use: fetchone, fetchall, rowcount, lastrowid)."""

    def __init__(
        self,
        conn: Connection,
        cursor: sqlite3.Cursor | None,
        rows: list[Any],
        rowcount: int,
        lastrowid: int | None,
        *,
        off_loop: bool,
    ) -> None:
        self._conn, self._cursor, self._rows = conn, cursor, rows
        self.rowcount, self.lastrowid = rowcount, lastrowid
        self._off_loop = off_loop

    async def _more(self, size: int = PREFETCH) -> bool:
        cursor = self._cursor
        if cursor is None:
            return False
        more: list[Any] = await self._conn.call(cursor.fetchmany, size, off_loop=self._off_loop)
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
            await self._conn.call(cursor.close, off_loop=self._off_loop)

    async def __aenter__(self) -> Rows:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Statement:
    """`conn.execute(...)`: awaited, or used as `async with` (as aiosqlite's is)."""

    def __init__(self, conn: Connection, sql: str, parameters: Any, *, off_loop: bool) -> None:
        self._conn, self._sql, self._parameters = conn, sql, parameters
        self._off_loop = off_loop
        self._rows: Rows | None = None

    async def _run(self) -> Rows:
        if self._rows is None:
            conn, sql, parameters = self._conn, self._sql, self._parameters
            off_loop = self._off_loop

            def run(db: sqlite3.Connection) -> Rows:
                cursor = db.execute(sql, parameters)
                rows = cursor.fetchmany(PREFETCH)
                done = len(rows) < PREFETCH
                if done:
                    cursor.close()
                return Rows(conn, None if done else cursor, rows, cursor.rowcount,
                            cursor.lastrowid, off_loop=off_loop)  # fmt: skip

            self._rows = await conn.call(run, conn.raw._conn, off_loop=off_loop)
        return self._rows

    def __await__(self) -> Generator[Any, None, Rows]:
        return self._run().__await__()

    async def __aenter__(self) -> Rows:
        return await self._run()

    async def __aexit__(self, *exc: object) -> None:
        if self._rows is not None:
            await self._rows.close()


class Connection:
    """The aiosqlite connection (opened with `check_same_thread=False`): statements on the
    loop, `run` in its thread."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.raw = conn
        self._in_thread = 0  # calls of this connection queued or running in its thread
        self._thread_idle = asyncio.Event()
        self._thread_idle.set()
        self._later: set[asyncio.Future[Any]] = set()

    @classmethod
    async def connect(cls, path: Path) -> Connection:
        """Autocommit (transactions are explicit), usable from the loop and the thread."""
        return cls(await aiosqlite.connect(path, isolation_level=None, check_same_thread=False))

    def execute(self, sql: str, parameters: Any = (), *, off_loop: bool = False) -> Statement:
        return Statement(self, sql, parameters, off_loop=off_loop)

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> None:
        rows = list(parameters)
        await self.call(lambda db: db.executemany(sql, rows).close(), self.raw._conn)

    async def backup(self, target: aiosqlite.Connection) -> None:
        await self.call(self.raw._conn.backup, target._conn, off_loop=True)

    async def close(self) -> None:
        await self.idle()
        await self.raw.close()

    async def idle(self) -> None:
        """Until the database thread has done all it was given (`later`'s work included)."""
        while self._in_thread:
            await self._thread_idle.wait()

    def later(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        """`fn(connection)` in the database thread, after what is queued there, not waited
        for (an error is logged by asyncio). The thread has the connection from now on."""
        self._in_thread += 1
        self._thread_idle.clear()
        work = asyncio.ensure_future(self.raw._execute(fn, self.raw._conn))
        work.add_done_callback(self._left_thread)
        self._later.add(work)
        work.add_done_callback(self._later.discard)

    def _left_thread(self, _: asyncio.Future[Any]) -> None:
        self._in_thread -= 1
        if not self._in_thread:
            self._thread_idle.set()

    async def now(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """`fn(connection)` on the event loop: what cannot wait (see `run`)."""
        return await self.call(fn, self.raw._conn)

    async def run(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """`fn(connection)` in the database thread, in one hop: what may wait (a lock, an
        fsync)."""
        return await self.call(fn, self.raw._conn, off_loop=True)

    async def call(self, fn: Callable[..., Any], *args: Any, off_loop: bool = False) -> Any:
        if off_loop:
            # Counted until the thread has finished with it, not until its caller stops
            # waiting: a caller cancelled (a tap answered after a timeout, a stop) leaves
            # the call running there, holding the connection.
            self._in_thread += 1
            self._thread_idle.clear()
            work = asyncio.ensure_future(self.raw._execute(fn, *args))
            work.add_done_callback(self._left_thread)
            return await asyncio.shield(work)
        # The connection is the thread's while it has work: wait, then run without a pause
        # (nothing else of this loop can come between the check and the call).
        while self._in_thread:
            await self._thread_idle.wait()
        return fn(*args)
