"""What a worker process reads for itself: the recap's tickets and their events, straight
from the database file (read-only, beside the bot's own connection: WAL lets both read), so
that nothing big crosses the process boundary."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ticketbot.records import Ticket
from ticketbot.store.rows import EVENTS_CHUNK, TICKET_COLUMNS, events_of_tickets, ticket_from


def recap_snapshot(
    path: Path, ticket_ids: Sequence[int], actions: Sequence[str]
) -> tuple[list[Ticket], list[Any]]:
    """The tickets (in the order of `ticket_ids`) and their events of `actions`."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tickets: dict[int, Ticket] = {}
        rows: list[Any] = []
        for at in range(0, len(ticket_ids), EVENTS_CHUNK):
            chunk = list(ticket_ids[at : at + EVENTS_CHUNK])
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(
                f"SELECT {TICKET_COLUMNS} FROM tickets WHERE id IN ({marks})", chunk
            ):
                ticket = ticket_from(row)
                tickets[ticket.id] = ticket
            rows += conn.execute(
                events_of_tickets(len(chunk), len(actions)), [*chunk, *actions]
            ).fetchall()
        return [tickets[i] for i in ticket_ids if i in tickets], rows
    finally:
        conn.close()
