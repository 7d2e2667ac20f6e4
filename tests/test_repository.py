"""Migrations, the append-only event log and compare-and-set transitions."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import form
from ticketbot.domain.lifecycle import SOP_09, Action, State
from ticketbot.domain.validation import TicketForm
from ticketbot.emulator import simulation as people
from ticketbot.emulator.simulation import GROUP_ID, Simulation
from ticketbot.records import Actor, card_effect
from ticketbot.schema import migration_files, split_statements
from ticketbot.store import Stores

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
FORM = TicketForm("1273014506850001", "1273010101090003", "BPJS Kesehatan", "bpjs kesehatan",
                  "+6281234567890", None, "tidak terbaca")  # fmt: skip
STAF = Actor(333, "Sari")
KASI = Actor(111, "Rina")


async def test_all_migrations_on_an_empty_database(tmp_path: Path) -> None:
    repo = await Stores.open(tmp_path / "db.sqlite3")
    try:
        latest = len(migration_files())
        assert await repo.db.schema_version() == latest
        assert {"tickets", "events", "people", "schema_migrations"} <= set(
            await repo.db.table_names()
        )
        assert await repo.db.migrate() == latest  # idempotent
    finally:
        await repo.close()


async def test_migrations_from_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    latest = len(migration_files())
    repo = await Stores.open(path, migrate=False)
    await repo.db.migrate(upto=latest - 1)
    assert await repo.db.schema_version() == latest - 1
    await repo.close()
    repo = await Stores.open(path)
    try:
        assert await repo.db.schema_version() == latest
        ticket, created = await repo.tickets.open_ticket(FORM, STAF, -1, NOW)
        assert created and ticket.id == 1
    finally:
        await repo.close()


async def test_a_touched_card_effect_keyed_by_suffix_becomes_one_marked_effect(
    tmp_path: Path,
) -> None:
    """Migration 0016: the "touched" mark moves from the key's suffix to a column, one
    pending card effect per ticket."""
    path = tmp_path / "db.sqlite3"
    repo = await Stores.open(path, migrate=False)
    await repo.db.migrate(upto=15)
    rows = [("card:3", 3, "pending"), ("card:3:touched", 3, "pending"),
            ("card:4:touched", 4, "pending"), ("card:5:touched", 5, "done"),
            ("card:6", 6, "pending")]  # fmt: skip
    await repo.db.conn.executemany(
        "INSERT INTO outbox (kind, key, target_id, status, created_at, next_attempt_at)"
        " VALUES ('card', ?, ?, ?, '2026-12-07T00:00:00', '2026-12-07T00:00:00')",
        rows,
    )
    await repo.close()
    repo = await Stores.open(path)
    try:
        cur = await repo.db.conn.execute(
            "SELECT key, status, touched FROM outbox WHERE kind = 'card' ORDER BY id"
        )
        assert await cur.fetchall() == [
            ("card:3", "pending", 1), ("card:3:touched", "done", 0), ("card:4", "pending", 1),
            ("card:5:touched", "done", 0), ("card:6", "pending", 0),
        ]  # fmt: skip
        later = datetime(2026, 12, 8, tzinfo=UTC)
        [item] = [i for i in await repo.outbox.due_effects(later, ("card",)) if i.target_id == 4]
        assert item.touched and item.key == "card:4"
    finally:
        await repo.close()


async def test_a_ticket_has_one_pending_card_effect_touched_once_touched(tmp_path: Path) -> None:
    repo = await Stores.open(tmp_path / "db.sqlite3")
    try:
        for touched in (False, True, False):
            await repo.outbox.enqueue([card_effect(1, touched=touched)])
        cur = await repo.db.conn.execute(
            "SELECT key, touched, generation FROM outbox WHERE status = 'pending'"
        )
        assert await cur.fetchall() == [("card:1", 1, 2)]
    finally:
        await repo.close()


def test_split_statements_keeps_triggers_whole() -> None:
    script = "CREATE TABLE a (x);\n-- note\nCREATE TRIGGER t BEFORE DELETE ON a\nBEGIN SELECT 1; SELECT 2; END;\n"
    assert len(split_statements(script)) == 2


async def test_events_are_append_only(tmp_path: Path) -> None:
    repo = await Stores.open(tmp_path / "db.sqlite3")
    try:
        await repo.tickets.open_ticket(FORM, STAF, -1, NOW)
        conn = sqlite3.connect(tmp_path / "db.sqlite3")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE events SET actor_name = 'x'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM events")
        conn.close()
    finally:
        await repo.close()


async def test_duplicate_open_ticket_is_refused(tmp_path: Path) -> None:
    repo = await Stores.open(tmp_path / "db.sqlite3")
    try:
        first, _ = await repo.tickets.open_ticket(FORM, STAF, -1, NOW)
        again, created = await repo.tickets.open_ticket(FORM, STAF, -1, NOW)
        assert not created and again.id == first.id
    finally:
        await repo.close()


async def test_compare_and_set_under_a_race(tmp_path: Path) -> None:
    repo = await Stores.open(tmp_path / "db.sqlite3")
    try:
        ticket, _ = await repo.tickets.open_ticket(FORM, STAF, -1, NOW)
        verify = SOP_09.transition_for(Action.VERIFY, State.NEW)
        assert verify is not None
        outcomes = await asyncio.gather(
            *(
                repo.tickets.apply(ticket.id, verify, Actor(111, f"Kasi {i}"), NOW)
                for i in range(5)
            )
        )
        assert sum(o.applied for o in outcomes) == 1
        events = await repo.events.events_for(ticket.id)
        assert [e.action for e in events] == ["open", "verify"]
        for lost in (o for o in outcomes if not o.applied):
            # The loser learns who won: the one verify event.
            assert lost.ticket.state == State.VERIFIED and lost.last_event == events[1]
    finally:
        await repo.close()


async def test_an_updates_decisive_change_marks_it_handled_in_the_same_transaction(
    tmp_path: Path,
) -> None:
    from ticketbot.store.database import HANDLING, Handling

    repo = await Stores.open(tmp_path / "t.sqlite3")
    try:
        now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
        await repo.inbox.store_updates([(41, '{"update_id": 41}')], now, handled=set())
        handling = Handling(41)
        HANDLING.set(handling)
        # An ordinary write does not mark it; the decisive one does, with its change.
        await repo.people.remember_person(1, "Rina", now)
        assert not handling.marked and [u for u, _ in await repo.inbox.unhandled_updates()] == [41]
        async with repo.db.transaction(decisive=True) as conn:
            await conn.execute("INSERT INTO settings (key, value) VALUES ('x', '1')")
        assert handling.marked and await repo.inbox.unhandled_updates() == []
        # A change that rolls back leaves the update unhandled (it runs again).
        await repo.inbox.store_updates([(42, '{"update_id": 42}')], now, handled=set())
        other = Handling(42)
        HANDLING.set(other)

        async def failing_change() -> None:
            async with repo.db.transaction(decisive=True) as conn:
                await conn.execute("INSERT INTO settings (key, value) VALUES ('y', '1')")
                raise RuntimeError("the change failed")

        with pytest.raises(RuntimeError):
            await failing_change()
        assert not other.marked and [u for u, _ in await repo.inbox.unhandled_updates()] == [42]
        # A tap handled before its update was stored: nothing to mark yet (the inbox
        # marks it with the store).
        early = Handling(43)
        HANDLING.set(early)
        async with repo.db.transaction(decisive=True) as conn:
            await conn.execute("INSERT INTO settings (key, value) VALUES ('z', '1')")
        assert not early.marked
    finally:
        HANDLING.set(None)
        await repo.close()


async def test_the_first_unknown_message_id_is_one_past_every_message_recorded(
    sim: Simulation,
) -> None:
    """Read from the end of each record's index, it agrees with the whole set of messages
    of ours recorded (cards, pings, replies, summaries): where a search for a lost post
    begins after a restart."""
    outbox = sim.services.repo.outbox
    assert await outbox.first_unknown_id(GROUP_ID) == 1
    await sim.say(people.STAF, form(nik="1273014506850001"))
    await sim.say(people.STAF, form(nik="1273014506850002"))
    await sim.tap(people.KASI, sim.last_bot_message().message_id, "Verifikasi")
    await sim.say(people.STAF, form(nik="12730145068500"))  # refused: a reply
    await sim.services.outbox.drained()
    known = await outbox.known_bot_messages(GROUP_ID, 0, 2**62)
    assert len(known) >= 3
    assert await outbox.first_unknown_id(GROUP_ID) == max(known) + 1
    assert (
        await outbox.first_unknown_id(-100999)
        == max(await outbox.known_bot_messages(-100999, 0, 2**62), default=0) + 1
    )
