"""Issue I (SPEC §3): reminders at the configured rhythm in work hours only, one message per
audience per round, escalation, the morning summary, chasing unconfirmed recaps; all of it
remembered in the database across a restart."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import VALID_FORM, form
from ticketbot.emulator.botapi import StoredMessage
from ticketbot.emulator.simulation import ADB, GROUP_ID, KASI, STAF, TZ, Simulation
from ticketbot.jobs import sweep_overdue
from ticketbot.records import card_effect, send_effect

KADIS = 666666666


def at(d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, d, hh, mm, tzinfo=TZ)


def reminders(sim: Simulation) -> list[StoredMessage]:
    return [m for m in sim.api.visible(GROUP_ID)
            if m.from_id == sim.api.bot_id and (m.text or "").startswith("⏰")]  # fmt: skip


def mentioned(m: StoredMessage) -> list[int]:
    return [int(i) for i in re.findall(r'href="tg://user\?id=(\d+)"', m.text or "")]


async def jobs_at(sim: Simulation, moment: datetime) -> None:
    sim.clock.now = moment
    await sim.run_jobs()


@pytest.mark.parametrize("sim", [{"roles__kadis": [KADIS]}], indirect=True)
async def test_rhythm_work_hours_escalation_and_restart(sim: Simulation) -> None:
    sim.clock.now = at(24, 15, 40)
    await sim.say(STAF, VALID_FORM)  # the Kasi's 10 minutes end at 15:50
    await jobs_at(sim, at(24, 15, 49))
    assert reminders(sim) == []
    await jobs_at(sim, at(24, 15, 51))
    [first] = reminders(sim)
    assert mentioned(first) == [KASI.user_id]
    assert "#1 BPJS Kesehatan — Menunggu verifikasi Kasi, terlambat 1 menit" in (first.plain or "")
    # A restart remembers it: no second reminder for the same round.
    await sim.stop_bot()
    await sim.start_bot()
    await jobs_at(sim, at(24, 15, 52))
    assert len(reminders(sim)) == 1
    # After hours, nothing; the 30 working minutes run on the next morning: 9 + 21.
    await jobs_at(sim, at(24, 16, 30))
    await jobs_at(sim, at(25, 7, 50))
    assert len(reminders(sim)) == 1
    await jobs_at(sim, at(25, 7, 52))
    second = reminders(sim)[-1]
    # The second reminder escalates: the head of office (the Kasi's own step: no Kasi twice).
    assert mentioned(second) == [KASI.user_id, KADIS]
    assert "diteruskan ke" in (second.plain or "")


@pytest.mark.parametrize("sim", [{"roles__kadis": [KADIS]}], indirect=True)
async def test_an_adb_step_escalates_to_the_kasi_and_the_kadis(sim: Simulation) -> None:
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    await sim.tap(KASI, card, "Verifikasi")  # Tue 09:00: the ADB's day ends Wed 09:00
    await jobs_at(sim, at(25, 9, 1))
    assert mentioned(reminders(sim)[-1]) == [ADB.user_id]
    await jobs_at(sim, at(25, 9, 31))
    assert mentioned(reminders(sim)[-1]) == [ADB.user_id, KASI.user_id, KADIS]


async def test_thirty_overdue_tickets_are_one_message_per_audience(sim: Simulation) -> None:
    for i in range(30):
        await sim.say(STAF, form(nik=f"1273014506{85:02d}{i + 1:04d}", lembaga=f"Bank {i}"))
    # From now on Telegram's own budget, enforced by the fake; the thirty cards and their
    # pings went out long ago.
    sim.api.group_limit = (20, 60.0)
    sim.api._sent_at.clear()
    pacer = sim.services.outbox.pacer
    pacer.group_limit, pacer._group = 20, {}
    sent_before = len(sim.api.calls_of("sendMessage"))
    sim.clock.now = at(24, 9, 30)  # all thirty overdue at once
    assert sim.app is not None
    await sweep_overdue(sim.app)  # thirty cards to say TERLAMBAT: low priority
    await sim.services.reminders.tick()
    await sim.api.wait_until(lambda: bool(reminders(sim)))
    [reminder] = reminders(sim)
    listed = re.findall(r"#(\d+) Bank", reminder.plain or "")
    assert len(listed) == 30 and len(reminder.plain or "") <= 4096
    # A new card is not held up behind the round and the thirty edits: it goes before the
    # re-renders still waiting.
    await sim.api.post(STAF.user_id, GROUP_ID, form(lembaga="Bank baru"))
    await sim.api.wait_until(
        lambda: any("Tiket #31" in c.params["text"] for c in sim.api.calls_of("sendMessage"))
    )
    # Re-renders were still waiting when it went (thirty edits take over a minute of the
    # group's budget): the card overtook them.
    assert await sim.services.repo.outbox.pending_effects() > 0
    # One reminder message for thirty tickets (never thirty), all within the budget.
    reminders_sent = [c for c in sim.api.calls_of("sendMessage")[sent_before:]
                      if c.params["text"].startswith("⏰")]  # fmt: skip
    assert len(reminders_sent) == 1
    assert [c for c in sim.api.calls if c.status == 429] == []


@pytest.mark.parametrize("sim", [{"reminders__morning_summary": "07:45"}], indirect=True)
async def test_the_morning_summary_once_each_working_day(sim: Simulation) -> None:
    await sim.say(STAF, VALID_FORM)  # Tue 24 Nov 09:00

    def summaries() -> list[StoredMessage]:
        return [m for m in sim.api.visible(GROUP_ID) if "Ringkasan pagi" in (m.plain or "")]

    assert len(summaries()) == 0  # run_jobs has not run yet today
    # A bot that never ran before, started at 09:00: no catch-up summary of this morning.
    await jobs_at(sim, at(24, 9, 1))
    assert summaries() == []
    await jobs_at(sim, at(25, 7, 40))
    assert summaries() == []
    await jobs_at(sim, at(25, 7, 46))
    [summary] = summaries()
    text = summary.plain or ""
    assert "25 Nov 2026" in text and "Tiket terbuka: 1" in text and "1 terlambat" in text
    await sim.stop_bot()
    await sim.start_bot()
    await jobs_at(sim, at(25, 8, 30))
    assert len(summaries()) == 1
    await jobs_at(sim, at(28, 7, 46))  # Saturday: no summary
    assert len(summaries()) == 1
    await jobs_at(sim, at(30, 7, 46))
    assert len(summaries()) == 2


async def test_an_unconfirmed_recap_is_chased_after_three_working_days(sim: Simulation) -> None:
    await sim.run_jobs()
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    await sim.tap(KASI, card, "Verifikasi")
    await sim.tap(ADB, card, "Konsolidasi")
    await jobs_at(sim, at(24, 15, 0))  # the recap goes; the DWH never confirms
    await jobs_at(sim, at(27, 14, 59))  # Friday, just under 3 working days
    assert not any("belum dikonfirmasi" in (m.plain or "") for m in reminders(sim))
    await jobs_at(sim, at(27, 15, 1))
    [chase] = [m for m in reminders(sim) if "belum dikonfirmasi" in (m.plain or "")]
    assert mentioned(chase) == [ADB.user_id]
    assert "Rekap 24 Nov 2026 belum dikonfirmasi admin DWH pusat: 1 tiket, 3 hari kerja" in (
        chase.plain or ""
    )


async def test_no_reminder_outside_work_hours_even_when_overdue(sim: Simulation) -> None:
    sim.clock.now = at(24, 15, 45)
    await sim.say(STAF, VALID_FORM)  # due 15:55
    await jobs_at(sim, at(24, 16, 5))  # overdue, but the office is closed
    await jobs_at(sim, at(24, 21, 0))
    await jobs_at(sim, at(25, 6, 0))
    assert reminders(sim) == []
    await jobs_at(sim, at(25, 7, 31))
    assert len(reminders(sim)) == 1


async def test_the_card_and_the_queue_say_how_long_the_dwh_has_kept_it(sim: Simulation) -> None:
    await sim.run_jobs()
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    await sim.tap(KASI, card, "Verifikasi")
    await sim.tap(ADB, card, "Konsolidasi")
    await jobs_at(sim, at(24, 15, 0))
    await jobs_at(sim, at(26, 15, 0))  # two working days later
    await sim.say(STAF, "/antrian")
    assert "#1 BPJS Kesehatan — menunggu DWH 2,0 hari kerja" in (
        sim.last_bot_message().plain or ""
    )
    await sim.services.repo.outbox.enqueue([card_effect(1)])  # the card is rendered again
    await sim.services.outbox.drained()
    assert "Menunggu admin DWH pusat sejak Sel 24 Nov 15:00 (2 hari kerja)" in (
        sim.message(card).plain or ""
    )


async def test_a_group_the_bot_is_not_in_is_one_clear_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The example's group_id at a first start: Telegram knows no such chat."""
    unknown = -1001234567890 - 7
    async with Simulation(tmp_path, settings={"telegram__group_id": unknown}) as sim:
        with caplog.at_level(logging.ERROR):
            await sim.services.repo.outbox.enqueue(
                [send_effect(unknown, "satu", "a"), send_effect(unknown, "dua", "b")]
            )
            await sim.services.outbox.drained()
        refused = [c for c in sim.api.errors if c.method == "sendMessage"]
        assert [c.description for c in refused] == ["Bad Request: chat not found"] * 2
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 1, lines
    assert lines[0].startswith("telegram.group_id: Telegram says 'Chat not found'")
    assert "put the id it answers in [telegram] group_id" in lines[0]
