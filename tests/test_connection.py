"""The statement on the loop (store/connection.py): what the stores read through it is what
aiosqlite's own cursor gives, for results shorter and longer than its first fetch, on the
loop or in the database thread, and the two never use the connection at once."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from pathlib import Path

import pytest

from ticketbot.store.connection import PREFETCH, Connection
from ticketbot.store.database import Database


async def test_results_of_every_length_come_whole(tmp_path: Path) -> None:
    conn = await Connection.connect(tmp_path / "t.sqlite3")
    try:
        await conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        cur = await conn.execute("INSERT INTO t (v) VALUES (?)", ("a",))
        assert (cur.rowcount, cur.lastrowid) == (1, 1)
        await conn.executemany(
            "INSERT INTO t (v) VALUES (?)", [(str(i),) for i in range(PREFETCH * 3)]
        )
        async with conn.execute("SELECT count(*) FROM t") as cur:
            assert await cur.fetchone() == (PREFETCH * 3 + 1,)
            assert await cur.fetchone() is None
        for size in (0, 1, PREFETCH - 1, PREFETCH, PREFETCH + 1, PREFETCH * 3 + 1):
            async with conn.execute("SELECT id FROM t WHERE id <= ? ORDER BY id", (size,)) as cur:
                assert [r[0] for r in await cur.fetchall()] == list(range(1, size + 1))
        async with conn.execute("SELECT id FROM t ORDER BY id") as cur:
            first = await cur.fetchone()
            chunks = [await cur.fetchmany(100) for _ in range(9)]
            rest = await cur.fetchall()
        ids = [first[0], *(r[0] for c in chunks for r in c), *(r[0] for r in rest)]
        assert ids == list(range(1, PREFETCH * 3 + 2))
        cur = await conn.execute("UPDATE t SET v = 'x' WHERE id <= 10 RETURNING id")
        assert cur.rowcount == 10 and len(await cur.fetchall()) == 10
        with pytest.raises(sqlite3.OperationalError):
            await conn.execute("SELECT nothing FROM nowhere")
        assert await conn.run(lambda db: db.execute("SELECT 7").fetchone()) == (7,)
    finally:
        await conn.close()


async def test_off_loop_statements_give_the_same_results(tmp_path: Path) -> None:
    conn = await Connection.connect(tmp_path / "t.sqlite3")
    try:
        await conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        await conn.executemany("INSERT INTO t (id) VALUES (?)", ((i,) for i in range(1, 600)))
        for size in (0, 1, PREFETCH, PREFETCH + 1, 599):
            async with conn.execute(
                "SELECT id FROM t WHERE id <= ? ORDER BY id", (size,), off_loop=True
            ) as cur:
                assert [r[0] for r in await cur.fetchall()] == list(range(1, size + 1))
        with pytest.raises(sqlite3.OperationalError):
            await conn.execute("SELECT nothing FROM nowhere", off_loop=True)
    finally:
        await conn.close()


async def test_a_statement_waits_while_the_thread_has_the_connection(tmp_path: Path) -> None:
    """One sqlite3 connection, two threads: a statement on the loop never runs while the
    database thread works with it (a COMMIT's fsync, a search), and then sees its result."""
    conn = await Connection.connect(tmp_path / "t.sqlite3")
    try:
        await conn.execute("CREATE TABLE t (v INTEGER)")
        entered, release = threading.Event(), threading.Event()

        def slow_insert(db: sqlite3.Connection) -> None:
            entered.set()
            release.wait(10)
            db.execute("INSERT INTO t (v) VALUES (1)")

        in_thread = asyncio.create_task(conn.run(slow_insert))
        await asyncio.to_thread(entered.wait, 10)

        async def count() -> object:
            async with conn.execute("SELECT count(*) FROM t") as cur:
                return await cur.fetchone()

        read = asyncio.create_task(count())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not read.done()  # waiting for the thread, not reading beside it
        release.set()
        await in_thread
        assert await read == (1,)
    finally:
        release.set()
        await conn.close()


async def test_a_transaction_waits_for_another_process_holding_the_write_lock(
    tmp_path: Path,
) -> None:
    """BEGIN is tried on the event loop without waiting; when another process (a backup, an
    operator's sqlite3) holds the write lock, the transaction waits for it in the database
    thread instead of failing, and then commits."""
    path = tmp_path / "office.sqlite3"
    db = await Database.open(path)
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")

        async def remember() -> None:
            async with db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO people (user_id, name, seen_at) VALUES (7, 'Sari', '2026-12-07')"
                )

        write = asyncio.create_task(remember())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not write.done()  # waiting for the lock, not refused
        locker.execute("ROLLBACK")
        await write
        async with db.conn.execute("SELECT name FROM people WHERE user_id = 7") as cur:
            assert await cur.fetchone() == ("Sari",)
    finally:
        locker.close()
        await db.close()


async def test_a_transaction_cancelled_while_it_waits_for_the_lock_leaves_none_open(
    tmp_path: Path,
) -> None:
    """A stop cancels a transaction whose BEGIN waits in the thread: the thread keeps the
    connection until that BEGIN is through (nothing on the loop runs beside it), then rolls
    it back, and the next transaction begins and commits as usual."""
    path = tmp_path / "office.sqlite3"
    db = await Database.open(path)
    locker = sqlite3.connect(path, isolation_level=None)

    async def remember(user_id: int) -> None:
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO people (user_id, name, seen_at) VALUES (?, 'Sari', '2026-12-07')",
                (user_id,),
            )

    async def people() -> list[object]:
        async with db.conn.execute("SELECT user_id FROM people ORDER BY user_id") as cur:
            return [r[0] for r in await cur.fetchall()]

    try:
        locker.execute("BEGIN IMMEDIATE")
        waiting = asyncio.create_task(remember(7))
        for _ in range(5):
            await asyncio.sleep(0)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        read = asyncio.create_task(people())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not read.done()  # the thread still has the connection
        locker.execute("ROLLBACK")
        assert await read == []
        await remember(8)
        assert await people() == [8]
    finally:
        locker.close()
        await db.close()


async def test_unsynced_commits_stay_on_the_loop_and_checkpoints_go_to_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unsynced COMMIT only writes to the WAL: it runs on the event loop, no hop to the
    database thread; a synced one (its fsync) goes there. SQLite's automatic checkpoint is
    off (it would fsync the database file inside whichever COMMIT crossed the threshold,
    on the loop): every CHECKPOINT_EVERY commits a checkpoint runs in the thread and the
    rows reach the database file itself."""
    path = tmp_path / "office.sqlite3"
    db = await Database.open(path)
    hops: list[str] = []
    run = db.conn.run

    async def counted(fn: object) -> object:
        hops.append(getattr(fn, "__name__", getattr(getattr(fn, "func", None), "__name__", "?")))
        return await run(fn)  # type: ignore[arg-type]

    monkeypatch.setattr(db.conn, "run", counted)

    async def remember(user_id: int, *, synced: bool) -> None:
        async with db.transaction(synced=synced) as conn:
            await conn.execute(
                "INSERT INTO people (user_id, name, seen_at) VALUES (?, 'Sari', '2026-12-07')",
                (user_id,),
            )

    def in_database_file(user_id: int) -> bool:
        """Read the main database file alone (a copy without its WAL)."""
        copy = tmp_path / "main-only.sqlite3"
        copy.write_bytes(path.read_bytes())
        reader = sqlite3.connect(copy)
        try:
            found = reader.execute("SELECT 1 FROM people WHERE user_id = ?", (user_id,))
            return found.fetchone() is not None
        finally:
            reader.close()
            copy.unlink()

    try:
        async with db.conn.execute("PRAGMA wal_autocheckpoint") as cur:
            assert await cur.fetchone() == (0,)
        await db.checkpoint()  # the schema in the database file
        for user_id in range(1, 51):
            await remember(user_id, synced=False)
        assert hops == []  # fifty commits, none in the thread
        assert not in_database_file(50)  # in the WAL only: nothing checkpointed on the loop
        await remember(51, synced=True)
        assert hops == ["_commit"]
        monkeypatch.setattr("ticketbot.store.database.CHECKPOINT_EVERY", 1)
        await remember(52, synced=False)
        await db.conn.idle()  # the checkpoint: not waited for by the commit
        assert in_database_file(52)
        assert hops == ["_commit"]  # the checkpoint went by `later`, the commit stayed here
        async with db.conn.execute("SELECT count(*) FROM people") as cur:
            assert await cur.fetchone() == (52,)
    finally:
        await db.close()
