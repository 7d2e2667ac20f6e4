"""The database: one SQLite connection through aiosqlite (WAL, synchronous=FULL, one
writer), its migrations, its backup, and the write transaction every store shares.

Writes run inside `BEGIN IMMEDIATE` under an asyncio lock, so a transition is one
compare-and-set plus its event and the group effects it implies, atomically; `kill -9`
loses nothing acknowledged.

What may block stays off the event loop: a synced COMMIT (its fsync) runs in the database
thread; an unsynced one only writes to the WAL, so it runs on the loop, and the WAL's
checkpoints (which fsync the database file) are not left to whichever COMMIT crosses
SQLite's threshold (`wal_autocheckpoint` is off): one runs in the thread every
`CHECKPOINT_EVERY` commits. (Not by the WAL file's size: SQLite reuses the file from its
start after a checkpoint, so its size never falls.)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
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
# About SQLite's own automatic checkpoint threshold (1000 pages): a transaction here writes
# a handful of pages.
CHECKPOINT_EVERY = 200


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


def _commit(db: sqlite3.Connection, *, mark: Handling | None, synced: bool) -> bool:
    """Commit (marking the update handled in it); False when there was no update to mark."""
    marked = False
    if mark is not None:  # no row: a tap handled before its update was stored
        stamp = to_db_time(datetime.now(UTC))
        marked = db.execute(MARK_HANDLED, (stamp, mark.update_id)).rowcount == 1
    db.execute("COMMIT")
    _restore(db, synced=synced)
    return marked


def _checkpoint(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _fsync(path: Path) -> None:
    """What the WAL holds, on disk. No WAL (just checkpointed and truncated): what it held
    is in the database file, which the checkpoint fsync'd."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        self._wal = path.with_name(path.name + "-wal")
        self._unchecked = 0  # commits since the last checkpoint began
        self.commits = 0  # this connection's commits so far
        self._durable = 0  # how many of them an fsync has made durable
        self._durable_changed = asyncio.Event()  # set, and replaced, at each change

    @classmethod
    async def open(cls, path: Path, *, migrate: bool = True) -> Database:
        if migrate:  # the bot's own database: personal data, owner-only (SPEC §5)
            private_file(path)
        conn = await Connection.connect(path)
        try:
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = FULL")
            await conn.execute("PRAGMA wal_autocheckpoint = 0")  # in the thread (see above)
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
        committed to the WAL without an fsync of its own, on the event loop (no hop to the
        database thread); the next synced commit makes it durable too. A killed process
        loses neither kind."""
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
                commit = functools.partial(_commit, mark=mark, synced=synced)
                marked = await (self.conn.run(commit) if synced else self.conn.now(commit))
            except BaseException:
                await self.conn.run(lambda db: _roll_back(db, synced=synced))
                raise
            if mark is not None and marked:
                mark.marked = True
            self.commits += 1
            if synced:  # the WAL's fsync makes every earlier commit durable too
                self._made_durable(self.commits)
            self._unchecked += 1
            if self._unchecked >= CHECKPOINT_EVERY:
                self._unchecked = 0
                # PASSIVE: never waits for readers; not waited for here.
                self.conn.later(_checkpoint)
            for callback in self._after_commit:
                callback()

    async def durable(self, commit: int, *, within: float) -> None:
        """Once this connection's commit number `commit` (`commits`, read right after it) is
        on disk, power cut included: the next synced commit makes it so; if none comes
        within `within` seconds, the WAL is fsync'd here."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while self._durable < commit:
                    await self._durable_changed.wait()
        if self._durable >= commit:
            return
        upto = self.commits  # written to the WAL already: the fsync covers them
        await asyncio.to_thread(_fsync, self._wal)
        self._made_durable(upto)

    def _made_durable(self, upto: int) -> None:
        if upto > self._durable:
            self._durable = upto
            self._durable_changed.set()
            self._durable_changed = asyncio.Event()

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
