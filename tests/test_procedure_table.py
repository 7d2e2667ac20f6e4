"""Issue L: the procedure is data. A test-local table with one more step (the head of
office approves between the Kasi's verification and the ADB's sync, with its own time
standard and reason list) runs in the real app with no product code written for it: its
button, its permission, its deadline, its reminders and its place in the monthly report all
follow the table. And the roles of the table: the Kadis may ask for /laporan, the desk may
not; a reason button belongs to the menu that showed it."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import VALID_FORM
from ticketbot import callback_data as cb
from ticketbot.domain.lifecycle import (
    SOP_09,
    Button,
    ReasonList,
    Role,
    Standard,
    State,
    Transition,
    Unit,
)
from ticketbot.domain.report import Month, build_report
from ticketbot.emulator.botapi import StoredMessage
from ticketbot.emulator.simulation import ADB, GROUP_ID, KASI, STAF, TZ, Person, Simulation
from ticketbot.store.rows import histories

KADIS = Person(666666666, "Kepala", "Dinas")
APPROVED = "approved"  # a state SOP 09 does not have
APPROVE, SEND_BACK = "approve", "send_back"
KADIS_STANDARD = Standard("kadis_minutes", Unit.MINUTES, 15)


def with_approval() -> object:
    """SOP 09 with the head of office's approval after verification: verified now waits on
    the Kadis (step 4, `kadis_minutes`), who approves it on to the ADB (now step 5) or sends
    it back to the Kasi with a reason from `[reject] approval_reasons`."""
    kadis = frozenset({Role.KADIS})
    steps = []
    for step in SOP_09.steps:
        number = step.sop_step + 1 if step.sop_step and step.sop_step >= 4 else step.sop_step
        if step.state == State.VERIFIED:
            steps.append(
                replace(
                    step,
                    turn=kadis,
                    standard=KADIS_STANDARD,
                    actions=(APPROVE, SEND_BACK),
                    escalate_to=frozenset({Role.KASI}),
                )
            )
            steps.append(replace(step, state=APPROVED, sop_step=5, queue_rank=1))
        else:
            steps.append(replace(step, sop_step=number))
    steps = [replace(s, queue_rank=i) if s.is_open else s for i, s in enumerate(steps)]
    transitions = [
        replace(t, source=APPROVED) if t.source == State.VERIFIED
        else replace(t, target=APPROVED) if t.action == "resync" else t
        for t in SOP_09.transitions
    ]  # fmt: skip
    transitions += [
        Transition(APPROVE, State.VERIFIED, APPROVED, kadis),
        Transition(SEND_BACK, State.VERIFIED, State.NEW, kadis, reasons="approval_reasons"),
    ]
    return replace(
        SOP_09,
        steps=tuple(steps),
        transitions=tuple(transitions),
        buttons=(*SOP_09.buttons, Button(APPROVE, "a", "✅ Setujui"),
                 Button(SEND_BACK, "z", "↩️ Kembalikan ke Kasi")),
        roles=tuple(replace(r, presses=True) if r.role == Role.KADIS else r
                    for r in SOP_09.roles),
        reason_lists=(*SOP_09.reason_lists,
                      ReasonList("approval_reasons", ("Berkas perlu dilengkapi",))),
        words={
            "states": {State.VERIFIED: "Menunggu persetujuan Kadis",
                       APPROVED: "Disetujui Kadis, menunggu sinkron ADB"},
            "steps": {State.VERIFIED: "Langkah 4: persetujuan Kadis",
                      APPROVED: "Langkah 5: sinkron di Konsolidasi"},
            "queue": {State.VERIFIED: "Menunggu persetujuan Kadis",
                      APPROVED: "Menunggu sinkron ADB"},
            "actions": {APPROVE: "Disetujui Kadis", SEND_BACK: "Dikembalikan Kadis"},
            "sop_steps": {"4": "Persetujuan Kadis", "5": "Sinkronisasi ADB",
                          "6": "Informasi ke pemohon"},
        },
    )  # fmt: skip


@pytest.fixture
async def office(tmp_path: Path) -> AsyncIterator[Simulation]:
    settings = {
        "roles__kadis": [KADIS.user_id],
        "sla__kadis_minutes": 20,
        "reject__approval_reasons": ["Berkas perlu dilengkapi", "Tanya pemohon"],
    }
    sim = Simulation(tmp_path, settings=settings, procedure=with_approval())  # type: ignore[arg-type]
    sim.api.add_user(KADIS.user_id, KADIS.first_name, KADIS.last_name)
    async with sim:
        yield sim


def labels(sim: Simulation, message_id: int) -> list[str]:
    markup = sim.message(message_id).reply_markup or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


def at(d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, d, hh, mm, tzinfo=TZ)


def reminders(sim: Simulation) -> list[StoredMessage]:
    return [m for m in sim.api.visible(GROUP_ID)
            if m.from_id == sim.api.bot_id and (m.text or "").startswith("⏰")]  # fmt: skip


async def test_a_step_added_in_the_table_runs_in_the_real_app(office: Simulation) -> None:
    sim = office
    sim.clock.now = at(24, 9)
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    await sim.tap(KASI, card, "Verifikasi")
    # Its button, for its role only: the ADB's sync waits for the approval.
    assert "✅ Setujui" in labels(sim, card)
    assert not any("Konsolidasi" in label for label in labels(sim, card))
    assert "Menunggu persetujuan Kadis" in (sim.message(card).plain or "")
    refused = await sim.tap(ADB, card, "Setujui")
    assert "Kadis" in sim.answer_to(refused)["text"]
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.state == State.VERIFIED
    # Its deadline: the configured 20 working minutes of `kadis_minutes` (default 15).
    assert sim.office.due(ticket) == at(24, 9, 20)
    # Its reminders: whose turn it is (the Kadis), then the Kasi above them.
    sim.clock.now = at(24, 9, 21)
    await sim.run_jobs()
    [reminder] = reminders(sim)
    assert re.findall(r"tg://user\?id=(\d+)", reminder.text or "") == [str(KADIS.user_id)]
    # Its reason list: sending back offers the configured reasons.
    await sim.tap(KADIS, card, "Kembalikan ke Kasi")
    assert labels(sim, card)[:2] == ["1. Berkas perlu dilengkapi", "2. Tanya pemohon"]
    await sim.tap(KADIS, card, "Kembali")
    # Approved: the ADB's step, with its own standard, then the rest of SOP 09.
    sim.clock.now = at(24, 9, 30)
    await sim.tap(KADIS, card, "Setujui")
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.state == APPROVED
    assert "Disetujui Kadis, menunggu sinkron ADB" in (sim.message(card).plain or "")
    sim.clock.now = at(24, 10)
    await sim.tap(ADB, card, "Konsolidasi")
    await sim.say(ADB, "/rekap kirim")
    # The monthly report counts it as a step of its own: 4 is the Kadis's, 20 minutes.
    start, end = Month(2026, 11).bounds(TZ)
    rows = await sim.office.repo.reports.report_rows(start, end)
    config = sim.config
    assert config is not None
    report = build_report(Month(2026, 11), histories(*rows), config.procedure,
                          config.calendar, config.sla, at(25, 9))  # fmt: skip
    figures = {s.sop_step: s for s in report.steps}
    assert sorted(figures) == [3, 4, 5, 6]
    assert figures[4].standard == KADIS_STANDARD and figures[4].handled == 1
    assert figures[4].median_minutes == 30  # 09:00 -> 09:30, past its 20 minutes
    assert figures[4].within == 0
    # The ADB's: from the approval until the recap left (09:30 -> 10:00), within its day.
    assert (figures[5].handled, figures[5].median_minutes, figures[5].within) == (1, 30, 1)
    # The spreadsheet's ticket sheet has a column for each step of the table.
    files = await sim.services.reports.build(Month(2026, 11))
    sheet = openpyxl.load_workbook(io.BytesIO(files.xlsx))["Tiket"]
    headers = [c.value for c in next(sheet.iter_rows(max_row=1))]
    assert [h for h in headers if str(h).startswith("Langkah")] == [
        f"Langkah {n} (menit kerja)" for n in (3, 4, 5, 6)
    ]


async def test_the_kadis_gets_the_report_and_the_desk_does_not(office: Simulation) -> None:
    sim = office
    await sim.say(KADIS, "/laporan 2026-11")
    assert [c.params["chat_id"] for c in sim.api.calls_of("sendPhoto")] == [str(GROUP_ID)]
    await sim.say(STAF, "/laporan 2026-11")
    assert "hanya untuk" in (sim.last_bot_message().plain or "")
    assert len(sim.api.calls_of("sendPhoto")) == 1


async def test_the_kadis_of_sop_09_gets_the_report_and_presses_no_button(
    tmp_path: Path,
) -> None:
    async with Simulation(tmp_path, settings={"roles__kadis": [KADIS.user_id]}) as sim:
        sim.api.add_user(KADIS.user_id, KADIS.first_name, KADIS.last_name)
        await sim.say(KADIS, "/laporan 2026-11")
        assert len(sim.api.calls_of("sendPhoto")) == 1
        await sim.say(STAF, "/laporan 2026-11")
        assert "hanya untuk Kasi, ADB SIAK dan Kadis" in (sim.last_bot_message().plain or "")
        await sim.say(STAF, VALID_FORM)
        card = sim.last_bot_message().message_id
        answer = await sim.tap(KADIS, card, "Verifikasi")
        assert "Kasi" in sim.answer_to(answer)["text"]
        answer = await sim.tap(KADIS, card, "NIK")
        assert "1273014506850001" not in sim.answer_to(answer)["text"]
        ticket = await sim.office.repo.tickets.get_ticket(1)
        assert ticket is not None and ticket.state == State.NEW


async def test_a_stale_reason_button_acts_for_nobody(sim: Simulation) -> None:
    """The ADB opens "Kembalikan"; an older "Batal" menu's first reason, tapped by the Kasi,
    must not cancel the ticket with a reason nobody chose (SPEC §3)."""
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    await sim.tap(KASI, card, "Verifikasi")
    await sim.tap(KASI, card, "Batal")  # the Kasi's menu: cancel reasons
    stale = sim.button_data(card, "1.")
    await sim.tap(KASI, card, "Kembali")
    await sim.tap(ADB, card, "Kembalikan")  # now the ADB's menu is open
    answer = await sim.tap_data(KASI, card, stale, forged=True)
    assert "tidak berlaku" in sim.answer_to(answer)["text"]
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.state == State.VERIFIED
    assert ticket.menu_action == "return_to_kasi"
    # The same menu opened again is a new round: the first round's buttons stay stale.
    parsed = cb.parse(stale)
    assert parsed is not None and parsed.menu is not None
    assert parsed.menu.round < ticket.menu_round
    current = sim.button_data(card, "1.")
    await sim.tap_data(ADB, card, current)
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.state == State.NEW and ticket.menu_action is None
