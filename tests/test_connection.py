"""The one-hop statement (store/connection.py): what the stores read through it is what
aiosqlite's own cursor gives, for results shorter and longer than its first fetch."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from ticketbot.store.connection import PREFETCH, Connection


async def test_results_of_every_length_come_whole(tmp_path: Path) -> None:
    conn = Connection(await aiosqlite.connect(tmp_path / "t.sqlite3", isolation_level=None))
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
