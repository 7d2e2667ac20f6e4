"""Issue I (SPEC §3 "Whose turn it is"): Telegram does not notify on edits, so every hand-off
posts a short new message replying to the card that mentions exactly the people whose turn
it is; the previous ping goes when the turn moves on; pings for the same people at the same
time go as one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import VALID_FORM, form
from ticketbot.emulator.botapi import StoredMessage
from ticketbot.emulator.simulation import ADB, GROUP_ID, KASI, STAF, Simulation


def mentioned(ping: StoredMessage) -> list[int]:
    return [int(i) for i in re.findall(r'href="tg://user\?id=(\d+)"', ping.text or "")]


def standing(sim: Simulation) -> list[StoredMessage]:
    return sim.pings()


async def test_each_hand_off_pings_exactly_the_people_whose_turn_it_is(sim: Simulation) -> None:
    await sim.run_jobs()
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    [ping] = standing(sim)
    assert mentioned(ping) == [KASI.user_id] and ping.reply_to == card
    assert "#1" in (ping.plain or "") and "Menunggu verifikasi Kasi" in (ping.plain or "")

    await sim.tap(KASI, card, "Verifikasi")
    [ping2] = standing(sim)
    assert sim.message(ping.message_id).deleted  # the Kasi's ping is taken back
    assert mentioned(ping2) == [ADB.user_id] and ping2.reply_to == card

    await sim.tap(ADB, card, "Konsolidasi")
    assert standing(sim) == []  # the recap machine's turn: nobody to ping
    sim.clock.now = sim.clock.now.replace(hour=15, minute=0)
    await sim.run_jobs()
    assert standing(sim) == []  # the batch's summary tells the ADB, not one ping a ticket

    await sim.tap(ADB, card, "DWH")
    [ping3] = standing(sim)
    assert mentioned(ping3) == [STAF.user_id]  # the opener informs the resident

    await sim.tap(STAF, card, "Diinformasikan")
    assert standing(sim) == []
    assert all(sim.message(p.message_id).deleted for p in (ping, ping2, ping3))


async def test_a_ticket_sent_back_pings_the_kasi_again(sim: Simulation) -> None:
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    await sim.tap(KASI, card, "Verifikasi")
    await sim.tap(ADB, card, "Kembalikan")
    assert mentioned(standing(sim)[0]) == [ADB.user_id]  # opening the menu moves nothing
    await sim.tap(ADB, card, "1.")
    [ping] = standing(sim)
    assert mentioned(ping) == [KASI.user_id]


async def test_pings_in_the_same_seconds_for_the_same_people_are_one_message(
    tmp_path: Path,
) -> None:
    async with Simulation(tmp_path, ping_gather=1.0) as sim:
        await sim.run_jobs()
        cards = []
        for i in range(3):
            await sim.say(STAF, form(lembaga=f"Bank {i}"))
            cards.append(sim.last_bot_message().message_id)
        for card in cards:
            await sim.tap(KASI, card, "Verifikasi")
            await sim.tap(ADB, card, "Konsolidasi")
        sim.clock.now = sim.clock.now.replace(hour=15, minute=0)
        await sim.run_jobs()
        summary = sim.last_bot_message().message_id
        await sim.tap(ADB, summary, "DWH")  # the whole batch at once
        [ping] = standing(sim)
        assert mentioned(ping) == [STAF.user_id]
        assert re.search(r"#1, #2, #3", ping.plain or "")
        tickets = [await sim.office.repo.tickets.get_ticket(i) for i in (1, 2, 3)]
        assert {t.ping_message_id for t in tickets if t} == {ping.message_id}
        # One is informed: the shared ping stays for the other two.
        await sim.tap(STAF, cards[0], "Diinformasikan")
        assert not sim.message(ping.message_id).deleted
        for card in cards[1:]:
            await sim.tap(STAF, card, "Diinformasikan")
        assert sim.message(ping.message_id).deleted
        assert sim.api.errors == []
        assert GROUP_ID < 0


@pytest.mark.parametrize("sim", [{"reminders__private_pings": True}], indirect=True)
async def test_private_pings_spare_the_group_for_people_with_a_private_chat(
    sim: Simulation,
) -> None:
    for person in (KASI, ADB):
        await sim.say(person, "/start", chat_id=person.user_id)
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    # The Kasi is told privately, with a link to the card; the group gets no ping.
    assert standing(sim) == []
    [told] = [m for m in sim.api.visible(KASI.user_id) if m.from_id == sim.api.bot_id
              and "Giliran Anda" in (m.text or "")]  # fmt: skip
    assert told.text == "🔔 Giliran Anda — Menunggu verifikasi Kasi: #1"
    assert told.reply_markup == {
        "inline_keyboard": [
            [{"text": "📋 Buka kartu", "url": f"https://t.me/c/{str(GROUP_ID)[4:]}/{card}"}]
        ]
    }

    await sim.tap(KASI, card, "Verifikasi")
    assert standing(sim) == []  # the ADB too, privately
    await sim.tap(ADB, card, "Konsolidasi")
    sim.clock.now = sim.clock.now.replace(hour=15, minute=0)
    await sim.run_jobs()
    await sim.tap(ADB, card, "DWH")
    # The desk (no private chat) is pinged in the group, mentioning only them.
    [ping] = standing(sim)
    assert mentioned(ping) == [STAF.user_id]
    private = [c for c in sim.api.calls_of("sendMessage") if int(c.params["chat_id"]) > 0]
    assert [int(c.params["chat_id"]) for c in private if "Giliran" in c.params["text"]] == [
        KASI.user_id, ADB.user_id]  # fmt: skip


async def test_someone_who_blocked_the_bot_is_pinged_in_the_group(tmp_path: Path) -> None:
    async with Simulation(tmp_path, settings={"reminders__private_pings": True}) as sim:
        await sim.say(KASI, "/start", chat_id=KASI.user_id)
        sim.api.started.discard(KASI.user_id)  # blocked the bot since
        await sim.say(STAF, VALID_FORM)
        [ping] = standing(sim)
        assert mentioned(ping) == [KASI.user_id]
        assert not await sim.services.repo.people.has_private_chat(KASI.user_id)
        [refused] = sim.api.errors  # the one try Telegram refused, never repeated
        assert refused.method == "sendMessage" and int(refused.params["chat_id"]) == KASI.user_id
