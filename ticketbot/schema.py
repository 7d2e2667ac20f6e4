"""Numbered migrations (migrations/NNNN_name.sql): each applied in its own transaction and
recorded in schema_migrations; reading the version never creates anything."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ticketbot.paths import MIGRATIONS_DIR

if TYPE_CHECKING:  # the store imports this module
    from ticketbot.store.connection import Connection

Transaction = Callable[[], AbstractAsyncContextManager["Connection"]]

MIGRATION_NAME = re.compile(r"^(\d{4})_[\w-]+\.sql$")
# A migration whose first line is this rebuilds a table (SQLite's way to change a CHECK):
# foreign keys are off while it runs, and checked before it commits.
REBUILDS_TABLES = "-- rebuilds-tables"


def split_statements(script: str) -> list[str]:
    """Split a SQL script into statements (triggers included) without executescript(),
    which would COMMIT and break the one-transaction-per-migration rule."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip().strip(";").strip():
                statements.append(current.strip())
            current = ""
    if current.strip() and not all(
        ln.strip().startswith("--") for ln in current.strip().splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at end of migration: {current.strip()[:60]}")
    return statements


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name} is not named NNNN_name.sql")
        found.append((int(match[1]), path))
    versions = [v for v, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1..N without gaps, found {versions}")
    return found


async def schema_version(conn: Connection) -> int:
    """The applied version; 0 for a database never migrated. Reads only."""
    async with conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ) as cur:
        if await cur.fetchone() is None:
            return 0
    async with conn.execute("SELECT max(version) FROM schema_migrations") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


async def migrate(
    conn: Connection,
    transaction: Transaction,
    directory: Path = MIGRATIONS_DIR,
    *,
    upto: int | None = None,
) -> int:
    """Apply pending migrations, each in one transaction with its record; return the
    version. A failing migration rolls back whole and leaves the version where it was."""
    async with transaction() as tx:
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
    current = await schema_version(conn)
    for version, path in migration_files(directory):
        if version <= current or (upto is not None and version > upto):
            continue
        script = path.read_text(encoding="utf-8")
        rebuilds = script.startswith(REBUILDS_TABLES)
        if rebuilds:  # a no-op inside a transaction: set it before
            await conn.execute("PRAGMA foreign_keys = OFF")
        try:
            async with transaction() as tx:
                for statement in split_statements(script):
                    await tx.execute(statement)
                if rebuilds:
                    async with tx.execute("PRAGMA foreign_key_check") as cur:
                        broken = list(await cur.fetchall())
                    if broken:
                        raise RuntimeError(f"{path.name} breaks foreign keys: {broken[:3]}")
                await tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, path.name, datetime.now(UTC).isoformat(timespec="microseconds")),
                )
        finally:
            if rebuilds:
                await conn.execute("PRAGMA foreign_keys = ON")
        current = version
    return current
