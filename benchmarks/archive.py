"""A seeded archive for the benchmarks: N tickets with their events, written straight into a
migrated database with sqlite3's executemany (a million tickets in well under a minute).

Most tickets went the whole way (open, verify, sync, recap, DWH confirmation, inform); the
newest `open_share` are still open, spread over the open states. Every NIK is made up.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ticketbot.domain.lifecycle import State
from ticketbot.domain.search import folded, reversed_digits
from ticketbot.store import Stores

GROUP_ID = -1001234567890
STAF, KASI, ADB = 333333333, 111111111, 222222222
LEMBAGA = ("BPJS Kesehatan", "BPJS Ketenagakerjaan", "Bank BRI", "Telkomsel", "DJP")
# (action, actor, to_state, offset from opening)
WHOLE_WAY = (
    ("verify", KASI, State.VERIFIED, timedelta(minutes=6)),
    ("sync_at_konsolidasi", ADB, State.SYNCED, timedelta(hours=2)),
    ("send_to_dwh", None, State.SENT_TO_DWH, timedelta(hours=5)),
    ("confirm_dwh", ADB, State.READY_TO_INFORM, timedelta(days=1)),
    ("inform", STAF, State.DONE, timedelta(days=1, minutes=5)),
)
OPEN_STATES = (State.NEW, State.VERIFIED, State.SYNCED, State.SENT_TO_DWH,
               State.READY_TO_INFORM)  # fmt: skip


FIRST = (
    "Siti",
    "Budi",
    "Ani",
    "Rudi",
    "Dewi",
    "Hendra",
    "Rina",
    "Yusuf",
    "Maria",
    "Agus",
    "Nur",
    "Fitri",
    "Joko",
    "Lestari",
    "Andi",
    "Putri",
    "Bambang",
    "Intan",
    "Dedi",
    "Wati",
)
LAST = ("Siregar", "Nasution", "Lubis", "Harahap", "Hutagalung", "Simatupang", "Pasaribu",
        "Tanjung", "Aminah", "Nurhaliza", "Sihombing", "Panggabean", "Sitompul", "Batubara",
        "Daulay", "Pulungan", "Situmorang", "Rangkuti", "Hasibuan", "Ritonga")  # fmt: skip


def name_of(ticket_id: int) -> str:
    """Made-up names, 400 combinations and a number: like a city's many Siti Siregars."""
    return f"{FIRST[ticket_id % 20]} {LAST[(ticket_id // 20) % 20]} {ticket_id % 997}"


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _rows(
    count: int, start: datetime, span: timedelta, open_share: float
) -> Iterator[tuple[tuple[object, ...], list[tuple[object, ...]]]]:
    step = span / max(count, 1)
    first_open = int(count * (1 - open_share))
    for i in range(count):
        ticket_id = i + 1
        opened = start + step * i
        path = list(WHOLE_WAY)
        if i >= first_open:  # still open: stopped somewhere on the way
            stop = OPEN_STATES[i % len(OPEN_STATES)]
            path = path[: OPEN_STATES.index(stop)]
        state = path[-1][2] if path else State.NEW
        last = opened + (path[-1][3] if path else timedelta())
        lembaga = LEMBAGA[i % len(LEMBAGA)]
        step_since = None if state in (State.DONE, State.SENT_TO_DWH) else stamp(last)
        if state == State.SYNCED:
            step_since = stamp(opened + WHOLE_WAY[0][3])
        sent = len(path) >= 3  # the recap of its day took it: one batch a day
        batch = (opened - start).days + 1 if sent else None
        phone = f"+62812{ticket_id:08d}"
        ticket: tuple[object, ...] = (
            ticket_id, f"1273{ticket_id:012d}", f"1273{ticket_id + 10**11:012d}", lembaga,
            lembaga.lower(), phone, name_of(ticket_id), "", None, state.value, STAF,
            stamp(opened), stamp(last), step_since, None, GROUP_ID, ticket_id, batch, None,
            None, None, None, None, None, None, 0, 0, "loket", reversed_digits(phone),
            None,  # card_posted_at: unknown, as for cards from before it was recorded
        )  # fmt: skip
        events: list[tuple[object, ...]] = [
            (ticket_id, STAF, "Sari Staf", "open", None, "new", stamp(opened), None)
        ]
        source = State.NEW
        for action, actor, target, offset in path:
            events.append(
                (
                    ticket_id,
                    actor,
                    "ticketbot" if actor is None else "Petugas",
                    action,
                    source.value,
                    target.value,
                    stamp(opened + offset),
                    None,
                )
            )
            source = target
        yield ticket, events


def seed(path: Path, count: int, *, end: datetime, span: timedelta,
         open_share: float = 0.005) -> float:  # fmt: skip
    """Write `count` tickets opened over `span` ending at `end`; returns the seconds taken."""
    started = time.perf_counter()

    async def migrate() -> None:
        repo = await Stores.open(path)
        await repo.close()

    asyncio.run(migrate())
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous = OFF")
    tickets: list[tuple[object, ...]] = []
    events: list[tuple[object, ...]] = []

    def flush() -> None:
        if not tickets:
            return
        con.executemany(f"INSERT INTO tickets VALUES ({','.join('?' * len(tickets[0]))})",
                        tickets)  # fmt: skip
        con.executemany("INSERT INTO ticket_names (rowid, nama) VALUES (?, ?)",
                        [(t[0], folded(str(t[6]))) for t in tickets])  # fmt: skip
        con.executemany(
            "INSERT INTO events (ticket_id, actor_id, actor_name, action, from_state,"
            " to_state, at, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            events,
        )
        tickets.clear()
        events.clear()

    with con:
        days = span.days + 2
        con.executemany(
            "INSERT INTO recap_batches (id, due_date, created_at, message_id, status,"
            " next_attempt_at, sent_at) VALUES (?, ?, ?, ?, 'sent', ?, ?)",
            [(d + 1, (end - span + timedelta(days=d)).date().isoformat(),
              stamp(end - span + timedelta(days=d, hours=8)), f"<rekap-{d}@example.go.id>",
              stamp(end - span + timedelta(days=d, hours=8)),
              stamp(end - span + timedelta(days=d, hours=8))) for d in range(days)],
        )  # fmt: skip
        # Every day's recap ran (the newest synced tickets wait for today's).
        con.executemany(
            "INSERT INTO recap_runs (due_date, batch_id, ran_at) VALUES (?, ?, ?)",
            [((end - span + timedelta(days=d)).date().isoformat(), d + 1,
              stamp(end - span + timedelta(days=d, hours=8))) for d in range(days)],
        )  # fmt: skip
        for ticket, its_events in _rows(count, end - span, span, open_share):
            tickets.append(ticket)
            events.extend(its_events)
            if len(tickets) >= 50_000:
                flush()
        flush()
    con.execute("PRAGMA optimize")
    con.close()
    return time.perf_counter() - started
