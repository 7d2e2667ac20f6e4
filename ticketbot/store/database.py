"""The database: one SQLite connection through aiosqlite (WAL, synchronous=FULL, one
writer), its migrations, its backup, and the write transaction every store shares.

Writes run inside `BEGIN IMMEDIATE` under an asyncio lock, so a transition is one
compare-and-set plus its event and the group effects it implies, atomically; `kill -9`
loses nothing acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

from ticketbot import schema
from ticketbot.paths import MIGRATIONS_DIR, private_file
from ticketbot.store.connection import Connection
from ticketbot.store.rows import MARK_HANDLED, to_db_time


@dataclass
class Handling:
    """The update whose handlers run in this task (inbox.Runner sets it)."""

    update_id: int
    marked: bool = False  # marked handled by its decisive transaction


HANDLING: ContextVar[Handling | None] = ContextVar("handling", default=None)


# Another process (a backup, a second reader) may hold the write lock a while: wait rather
# than lose a tap; the tap is answered meanwhile (handlers.py).
BUSY_TIMEOUT_MS = 60_000


def _begin_at_once(db: sqlite3.Connection, *, synced: bool) -> bool:
    """BEGIN IMMEDIATE if the write lock is free now (on the event loop: no wait); False
    when another process holds it (then `_begin` waits for it in the database thread)."""
    db.execute("PRAGMA busy_timeout = 0")
    try:
        _begin(db, synced=synced)
    except sqlite3.OperationalError as error:
        if "locked" not in str(error) and "busy" not in str(error):
            raise
        return False
    finally:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return True


def _begin(db: sqlite3.Connection, *, synced: bool) -> None:
    if not synced:
        db.execute("PRAGMA synchronous = NORMAL")
    try:
        db.execute("BEGIN IMMEDIATE")
    except BaseException:
        _restore(db, synced=synced)
        raise


def _commit(db: sqlite3.Connection, mark: Handling | None, *, synced: bool) -> bool:
    """Commit (marking the update handled in it); False when there was no update to mark."""
    marked = False
    if mark is not None:  # no row: a tap handled before its update was stored
        stamp = to_db_time(datetime.now(UTC))
        marked = db.execute(MARK_HANDLED, (stamp, mark.update_id)).rowcount == 1
    db.execute("COMMIT")
    _restore(db, synced=synced)
    return marked


def _roll_back(db: sqlite3.Connection, *, synced: bool) -> None:
    """Also when COMMIT itself failed (a full disk): the connection must be left outside any
    transaction, usable again once the fault passes. SQLite may already have rolled back on
    its own; that is not an error."""
    with contextlib.suppress(sqlite3.Error):
        db.execute("ROLLBACK")
    _restore(db, synced=synced)


def _restore(db: sqlite3.Connection, *, synced: bool) -> None:
    if not synced:
        with contextlib.suppress(sqlite3.Error):
            db.execute("PRAGMA synchronous = FULL")


class Database:
    def __init__(self, conn: Connection, path: Path) -> None:
        self.path = path  # a worker process reads it too (store/snapshot.py)
        self.conn = conn
        self._write_lock = asyncio.Lock()
        self._after_commit: list[Callable[[], None]] = []

    @classmethod
    async def open(cls, path: Path, *, migrate: bool = True) -> Database:
        if migrate:  # the bot's own database: personal data, owner-only (SPEC §5)
            private_file(path)
        conn = await Connection.connect(path)
        try:
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = FULL")
            await conn.execute("PRAGMA foreign_keys = ON")
            # Erasure is real (SPEC §6): what a purge or a handled update gives up is
            # overwritten with zeros, not left in free pages.
            await conn.execute("PRAGMA secure_delete = ON")
            db = cls(conn, path)
            if migrate:
                await db.migrate()
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        await self.conn.close()

    @asynccontextmanager
    async def transaction(
        self, *, decisive: bool = False, synced: bool = True
    ) -> AsyncIterator[Connection]:
        """One write transaction.

        `decisive`: the change an update's handler exists for (a ticket opened, a
        transition): the update is marked handled in it, not in a transaction of its own.
        `synced` False: bookkeeping that may be lost with the machine's power (what the
        outbox delivered; a lost record means a re-edit, or a post found by its probe):
        committed to the WAL without an fsync of its own; the next synced commit makes it
        durable too. A killed process loses neither kind."""
        async with self._write_lock:
            handling = HANDLING.get() if decisive else None
            mark = handling if handling is not None and not handling.marked else None
            # Begun on the event loop when the write lock is free (it nearly always is);
            # waited for in the database thread when another process holds it. COMMIT
            # (its fsync, a checkpoint) is the transaction's one hop to the thread.
            if not await self.conn.now(lambda db: _begin_at_once(db, synced=synced)):
                try:
                    await self.conn.run(lambda db: _begin(db, synced=synced))
                except asyncio.CancelledError:
                    # The BEGIN goes on in the thread (a stop while the lock is held):
                    # rolled back there once through, so no transaction is left without
                    # an owner (the thread takes calls in order).
                    self.conn.later(lambda db: _roll_back(db, synced=synced))
                    raise
            self._after_commit = []
            try:
                yield self.conn
            except BaseException:
                await self.conn.now(lambda db: _roll_back(db, synced=synced))
                raise
            try:
                marked = await self.conn.run(lambda db: _commit(db, mark, synced=synced))
            except BaseException:
                await self.conn.run(lambda db: _roll_back(db, synced=synced))
                raise
            if mark is not None and marked:
                mark.marked = True
            for callback in self._after_commit:
                callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Inside a transaction: run `callback` once it has committed."""
        if callback not in self._after_commit:
            self._after_commit.append(callback)

    # -- schema ------------------------------------------------------------------------

    async def schema_version(self) -> int:
        return await schema.schema_version(self.conn)

    async def migrate(self, directory: Path = MIGRATIONS_DIR, *, upto: int | None = None) -> int:
        return await schema.migrate(self.conn, self.transaction, directory, upto=upto)

    async def checkpoint(self) -> None:
        """Copy the WAL into the database and empty it: after a purge, erased rows must not
        live on in the WAL's old page images."""
        async with self._write_lock:
            # It waits for readers (another process's too): in the thread.
            await self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)", off_loop=True)

    async def table_names(self) -> list[str]:
        async with self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ) as cur:
            return [str(r[0]) for r in await cur.fetchall()]

    async def setting(self, key: str) -> str | None:
        async with self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    # -- backup -------------------------------------------------------------------------

    async def backup_to(self, target: Path) -> None:
        """A consistent copy through SQLite's online backup API, safe while the bot runs.
        The copy is a new file, owner-only."""
        dest = await aiosqlite.connect(private_file(target, new=True))
        try:
            await dest.execute("PRAGMA secure_delete = ON")
            await self.conn.backup(dest)
        finally:
            await dest.close()
