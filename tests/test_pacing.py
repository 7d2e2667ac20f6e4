"""Issue K: Telegram paced by its real rules, and no re-edit storm after a restart.

The fake enforces Telegram's group budget (messages sent and edits, per group, 429 past it)
and counts every call; the tests wait on the fake's own conditions, never on the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import form
from ticketbot.emulator.simulation import GROUP_ID, KASI, STAF, Simulation
from ticketbot.outbox import HOLD_AT_MOST, MESSAGE_KINDS, TOGETHER, Pacer
from ticketbot.store import Stores
from ticketbot.store.rows import to_db_time

BUDGET = 3  # messages a minute in the group, for both the bot and the fake


def cards(sim: Simulation) -> list[int]:
    return [m.message_id for m in sim.api.visible(GROUP_ID)
            if m.from_id == sim.api.bot_id and (m.text or "").startswith("📋")]  # fmt: skip


def test_the_pacer_charges_messages_to_the_group_and_nothing_else() -> None:
    pacer = Pacer(group_per_minute=2, per_second=30)
    assert pacer.wait_for(GROUP_ID, charged=True) == 0
    assert pacer.wait_for(GROUP_ID, charged=True) == 0
    assert pacer.wait_for(GROUP_ID, charged=True) > 55  # the group's minute is spent
    # Deletions in that group, and messages to another chat, still go now.
    assert pacer.wait_for(GROUP_ID, charged=False) == 0
    assert pacer.wait_for(-100777, charged=True) == 0
    assert pacer.wait_for(42, charged=True) == 0
    # A 429 pauses the chat it names, and only that one.
    pacer.pause(42, 30)
    assert pacer.wait_for(42, charged=True) > 25
    assert pacer.wait_for(-100777, charged=True) == 0


@pytest.mark.parametrize("sim", [{"telegram__group_messages_per_minute": BUDGET}], indirect=True)
async def test_deletions_and_tap_answers_do_not_wait_behind_the_group_budget(
    sim: Simulation,
) -> None:
    sim.api.group_limit = (BUDGET, 60.0)  # Telegram's rule, at the configured budget
    intakes = []
    for n in range(BUDGET + 2):
        _, message_id = await sim.api.post(
            STAF.user_id, GROUP_ID, form(nik=f"12730145068500{n + 1:02d}", lembaga=f"B {n}")
        )
        intakes.append(message_id)
    await sim.api.wait_until(lambda: len(cards(sim)) == BUDGET)
    # The group's minute is spent: the other cards wait, but every intake (with its full
    # NIK) is deleted, and a tap is answered.
    await sim.api.wait_until(lambda: all(sim.message(m).deleted for m in intakes))
    assert len(cards(sim)) == BUDGET
    answer = await sim.tap(KASI, cards(sim)[0], "NIK")
    assert answer
    assert [c for c in sim.api.calls if c.status == 429] == []
    charged = sim.api.calls_of("sendMessage", "editMessageText", "editMessageReplyMarkup")
    assert len(charged) == BUDGET


async def test_a_429_in_the_group_does_not_stop_a_private_answer(sim: Simulation) -> None:
    sim.api.fail_next("sendMessage", 429, retry_after=30)
    await sim.api.post(STAF.user_id, GROUP_ID, form())
    await sim.api.wait_until(lambda: any(c.status == 429 for c in sim.api.calls))
    # The group is paused for 30 s; a person's /id in a private chat is answered now.
    await sim.say(STAF, "/id", chat_id=STAF.user_id)
    await sim.api.wait_until(
        lambda: any(
            m.chat_id == STAF.user_id and m.from_id == sim.api.bot_id
            for m in sim.api.messages.values()
        )
    )
    assert cards(sim) == []  # the card waits out its chat's retry_after
    assert [c.method for c in sim.api.calls if c.params.get("chat_id") in (GROUP_ID,
            str(GROUP_ID)) and c.method == "sendMessage"] == ["sendMessage"]  # fmt: skip
    sim.api.calls[:] = [c for c in sim.api.calls if not c.injected]


async def test_a_restart_edits_only_cards_whose_text_changed(tmp_path: Path) -> None:
    async with Simulation(tmp_path) as sim:
        for n in range(6):
            await sim.say(STAF, form(nik=f"12730145068500{n + 1:02d}", lembaga=f"Bank {n}"))
        await sim.services.outbox.drained()
        # The Kasi's ten minutes pass for all six: each card says TERLAMBAT once.
        sim.clock.advance(minutes=30)
        edits = len(sim.api.calls_of("editMessageText"))
        await sim.run_jobs()
        overdue = sim.api.calls_of("editMessageText")[edits:]
        assert len(overdue) == 6
        assert all("TERLAMBAT" in str(c.params["text"]) for c in overdue)
        # A restart, and the jobs again: nothing was shown that is not already shown.
        await sim.stop_bot()
        await sim.start_bot()
        edits = len(sim.api.calls_of("editMessageText"))
        await sim.run_jobs()
        assert sim.api.calls_of("editMessageText")[edits:] == []
        # A ticket that moved on, and whose new step ran out while the bot was down, is the
        # one card edited after the restart.
        card = cards(sim)[0]
        await sim.tap(KASI, card, "Verifikasi")
        await sim.services.outbox.drained()
        await sim.stop_bot()
        sim.clock.advance(days=3)
        await sim.start_bot()
        edits = len(sim.api.calls_of("editMessageText"))
        await sim.run_jobs()
        edited = {int(c.params["message_id"]) for c in sim.api.calls_of("editMessageText")[edits:]}
        assert edited == {sim.card_now(card)}  # where the hand-off re-posted it


async def test_a_new_card_that_waited_for_the_budget_is_posted_not_searched_for(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A card steps aside while the group's minute is spent: it was not tried, so when it
    goes it is posted at once, not first looked for as a post whose answer was lost (that
    search edits, and Telegram counts edits against the group's budget)."""
    pacer = sim.services.outbox.pacer
    spent = iter([HOLD_AT_MOST + 0.1])  # the first look at the group's budget: spent

    def blocked_for(chat_id: int | None, *, charged: bool) -> float:
        return next(spent, None) or Pacer.blocked_for(pacer, chat_id, charged=charged)

    monkeypatch.setattr(pacer, "blocked_for", blocked_for)
    await sim.api.post(STAF.user_id, GROUP_ID, form(nik="1273014506850001"))
    await sim.api.wait_until(lambda: len(cards(sim)) == 1)
    assert next(spent, None) is None  # it did step aside
    await sim.services.outbox.drained()
    assert [c for c in sim.api.calls if c.method == "editMessageReplyMarkup"] == []
    assert len([c for c in sim.api.calls_of("sendMessage")
                if str(c.params["text"]).startswith("📋")]) == 1  # fmt: skip


async def test_effects_due_in_the_same_moment_go_most_urgent_first(tmp_path: Path) -> None:
    """Effects that stepped aside for the same slot of the group's budget get due times a
    few microseconds apart. The lane takes what is due within TOGETHER as one: a new card
    waiting for that slot goes before a combined ping whose time came a microsecond sooner
    (else the ping takes the slot, and the burst needs another minute)."""
    repo = await Stores.open(tmp_path / "db.sqlite3")
    try:
        slot = datetime(2026, 12, 8, 2, 0, tzinfo=UTC)
        async with repo.db.transaction() as conn:
            for kind, key, due in (("ping", "ping:7", slot),
                                   ("send", "reply:1", slot + timedelta(microseconds=10))):  # fmt: skip
                await conn.execute(
                    "INSERT INTO outbox (kind, key, chat_id, target_id, text, created_at,"
                    " next_attempt_at) VALUES (?, ?, ?, 7, 'x', ?, ?)",
                    (kind, key, GROUP_ID, to_db_time(slot), to_db_time(due)),
                )
        alone = await repo.outbox.due_effects(slot, MESSAGE_KINDS, 1)
        assert [e.kind for e in alone] == ["ping"]  # strictly by the clock: the ping
        together = await repo.outbox.due_effects(slot + TOGETHER, MESSAGE_KINDS, 1)
        assert [e.kind for e in together] == ["send"]
    finally:
        await repo.close()
