"""Issue G: the SOP is one table, and every place that needs a step's facts reads it."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ticketbot import callback_data as cb
from ticketbot.domain.calendar import Sla, WorkCalendar, deadline
from ticketbot.domain.lifecycle import SOP_09, Clock, State, Unit
from ticketbot.emulator.simulation import Simulation
from ticketbot.paths import MIGRATIONS_DIR
from ticketbot.records import Ticket
from ticketbot.schema import migration_files
from ticketbot.store import Stores

TZ = ZoneInfo("Asia/Jakarta")
CAL = WorkCalendar(TZ)
SLA = Sla({"kasi_minutes": 10, "adb_workdays": 1, "inform_minutes": 5})
STEPS = {s.state: s for s in SOP_09.steps}
SINCE = datetime(2026, 11, 24, 9, 0, tzinfo=TZ)


def ticket_in(state: State, **changes: object) -> Ticket:
    base = Ticket(
        id=7, nik="1273014506850001", kk="1273010101090003", lembaga="BPJS Kesehatan",
        lembaga_key="bpjs kesehatan", phone="+6281234567890", nama=None, keterangan="",
        photo_file_id=None, state=state, opened_by=333333333, opened_at=SINCE,
        state_since=SINCE, step_since=SINCE, reject_reason=None, chat_id=-1001234567890,
        card_message_id=5,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def test_every_state_has_one_row_and_every_transition_starts_from_an_offered_action() -> None:
    assert set(STEPS) == set(State)
    for t in SOP_09.transitions:
        if t.roles:  # a person's action: a button on the card of its source state
            assert t.action in STEPS[t.source].actions, (t.action, t.source)
    for step in STEPS.values():
        for action in step.actions:
            assert any(t.action == action and t.source == step.state for t in SOP_09.transitions)
    assert (
        tuple(s for s in sorted(SOP_09.open_states, key=lambda s: STEPS[s].queue_rank or 0))
        == SOP_09.queue_order
    )


def test_the_open_ticket_index_lists_exactly_the_open_states() -> None:
    """The partial unique index (one open ticket per NIK and lembaga) is SQL in a migration;
    its latest definition must name exactly the table's open states."""
    definition = None
    for _, path in migration_files(MIGRATIONS_DIR):
        sql = path.read_text()
        for found in re.finditer(
            r"CREATE UNIQUE INDEX tickets_one_open_per_nik_lembaga.*?WHERE state IN \((.*?)\)",
            sql, re.S,
        ):  # fmt: skip
            definition = found[1]
    assert definition is not None
    listed = {s.strip().strip("'") for s in definition.split(",")}
    assert listed == set(SOP_09.open_states)


async def test_every_state_reads_deadline_turn_buttons_and_rank_from_the_table(
    sim: Simulation,
) -> None:
    office, views = sim.office, sim.services.views
    for state, step in STEPS.items():
        ticket = ticket_in(state, step_since=None if step.clock == Clock.STOP else SINCE)
        # Deadline: the step's standard in its unit, or none.
        due = deadline(step.standard, ticket.step_since, CAL, SLA)
        if step.standard is None:
            assert due is None
        elif step.standard.unit == Unit.WORKDAYS:
            assert due == CAL.add_workdays(SINCE, SLA.amount(step.standard))
        else:
            assert due == CAL.add_work_time(SINCE, SLA.amount(step.standard))
        # Turn: the step's roles (every configured person in them), or the opener.
        people = await office.turn(ticket)
        expected = [i for r in sorted(step.turn) for i in sorted(sim.config.roles[r])]
        if step.turn_opener:
            expected.append(ticket.opened_by)
        assert [p.user_id for p in people] == expected, state
        # Buttons: the step's actions in order, then NIK while open.
        pressed = [
            cb.parse(b.data).code  # type: ignore[union-attr]
            for row in views.buttons(ticket)
            for b in row
            if b.data
        ]
        wanted = [SOP_09.button(a).code for a in step.actions]
        assert pressed == [*wanted, *([cb.VIEW_NIK] if step.is_open else [])], state
        # Queue: open states in rank order; closed ones not listed.
        assert (state in SOP_09.queue_order) == step.is_open
        if step.is_open:
            assert SOP_09.queue_order.index(state) == sorted(
                s.queue_rank or 0 for s in STEPS.values() if s.is_open
            ).index(step.queue_rank or 0)


async def test_reading_the_version_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite3"
    sqlite3.connect(path).close()
    repo = await Stores.open(path, migrate=False)
    try:
        assert await repo.db.schema_version() == 0
        assert await repo.db.table_names() == []
    finally:
        await repo.close()


async def test_a_failing_migration_rolls_back_and_leaves_the_version(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    for _, path in migration_files(MIGRATIONS_DIR):
        (migrations / path.name).write_text(path.read_text())
    latest = len(migration_files(MIGRATIONS_DIR))
    (migrations / f"{latest + 1:04d}_broken.sql").write_text(
        "CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n"
    )
    repo = await Stores.open(tmp_path / "db.sqlite3", migrate=False)
    try:
        await repo.db.migrate(migrations, upto=latest)
        with pytest.raises(Exception, match="no_such_table"):
            await repo.db.migrate(migrations)
        assert await repo.db.schema_version() == latest
        assert "half_done" not in await repo.db.table_names()
    finally:
        await repo.close()
