"""Issue I and Q (SPEC §3 "Whose turn it is"): Telegram does not notify on edits, so every
hand-off is a new group message that mentions exactly the people whose turn it is: the card
itself re-posted (the old one deleted), or, when several tickets hand off to the same people in
the same seconds, one ping naming them all; the previous ping goes when the turn moves on."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import VALID_FORM, form
from ticketbot.emulator.botapi import StoredMessage
from ticketbot.emulator.simulation import ADB, GROUP_ID, KASI, STAF, Simulation
from ticketbot.store.outbox import OutboxStore


def mentioned(ping: StoredMessage) -> list[int]:
    return [int(i) for i in re.findall(r'href="tg://user\?id=(\d+)"', ping.text or "")]


def standing(sim: Simulation) -> list[StoredMessage]:
    return sim.pings()


class Posts:
    """The bot's new group messages since the last look: the only ones that notify."""

    def __init__(self, sim: Simulation) -> None:
        self.sim, self.seen = sim, len(sim.api.calls)

    def new(self) -> list[StoredMessage]:
        calls = self.sim.api.calls[self.seen :]
        self.seen = len(self.sim.api.calls)
        return [self.sim.api.message(GROUP_ID, int(c.result["message_id"])) for c in calls
                if c.method == "sendMessage" and int(c.params["chat_id"]) == GROUP_ID]  # fmt: skip


async def card_of(sim: Simulation, ticket_id: int) -> int:
    ticket = await sim.office.repo.tickets.get_ticket(ticket_id)
    assert ticket is not None and ticket.card_message_id is not None
    return ticket.card_message_id


async def test_each_hand_off_pings_exactly_the_people_whose_turn_it_is(sim: Simulation) -> None:
    await sim.run_jobs()
    posts = Posts(sim)
    await sim.say(STAF, VALID_FORM)
    [card] = posts.new()  # the card, mentioning the Kasi: no ping of its own
    assert mentioned(card) == [KASI.user_id] and (card.plain or "").startswith("📋 Tiket #1 —")
    assert standing(sim) == []

    await sim.tap(KASI, card.message_id, "Verifikasi")
    [card2] = posts.new()  # re-posted, mentioning the ADB; the old card is gone
    assert mentioned(card2) == [ADB.user_id] and "Diverifikasi" in (card2.plain or "")
    assert sim.api.message(GROUP_ID, card.message_id).deleted
    assert await card_of(sim, 1) == card2.message_id

    await sim.tap(ADB, card2.message_id, "Konsolidasi")
    assert posts.new() == []  # the recap machine's turn: the card is edited, nobody told
    assert sim.api.message(GROUP_ID, card2.message_id).edits == 1
    sim.clock.now = sim.clock.now.replace(hour=15, minute=0)
    await sim.run_jobs()
    [summary] = posts.new()  # the batch's summary tells the ADB, not one message a ticket
    assert "Rekap" in (summary.plain or "") and mentioned(summary) == [ADB.user_id]

    await sim.tap(ADB, card2.message_id, "DWH")
    [card3] = posts.new()
    assert mentioned(card3) == [STAF.user_id]  # the opener informs the resident

    await sim.tap(STAF, card3.message_id, "Diinformasikan")
    assert posts.new() == []
    visible = [m for m in sim.api.visible(GROUP_ID) if m.from_id == sim.api.bot_id]
    assert [m.message_id for m in visible] == [summary.message_id, card3.message_id]
    assert standing(sim) == [] and sim.api.errors == []


async def test_a_ticket_sent_back_pings_the_kasi_again(sim: Simulation) -> None:
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    await sim.tap(KASI, card, "Verifikasi")
    posts = Posts(sim)
    await sim.tap(ADB, card, "Kembalikan")
    assert posts.new() == []  # opening the menu moves nothing: an edit
    await sim.tap(ADB, card, "1.")
    [again] = posts.new()
    assert mentioned(again) == [KASI.user_id] and "Menunggu verifikasi Kasi" in (again.plain or "")
    assert await card_of(sim, 1) == again.message_id


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
    posts = Posts(sim)
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    # The Kasi is told privately, with a link to the card; the card names them without a
    # mention (it would notify them twice), and the group gets no ping.
    [posted] = posts.new()
    assert mentioned(posted) == [] and "Giliran: Rina Kasi" in (posted.plain or "")
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
    assert posts.new() == []  # the ADB too, privately: the card is edited in place
    assert await card_of(sim, 1) == card
    await sim.tap(ADB, card, "Konsolidasi")
    sim.clock.now = sim.clock.now.replace(hour=15, minute=0)
    await sim.run_jobs()
    posts.new()
    await sim.tap(ADB, card, "DWH")
    # The desk (no private chat) is told in the group: the card re-posted, mentioning only
    # them.
    [ping] = posts.new()
    assert mentioned(ping) == [STAF.user_id] and await card_of(sim, 1) == ping.message_id
    private = [c for c in sim.api.calls_of("sendMessage") if int(c.params["chat_id"]) > 0]
    assert [int(c.params["chat_id"]) for c in private if "Giliran" in c.params["text"]] == [
        KASI.user_id, ADB.user_id]  # fmt: skip


async def test_someone_who_blocked_the_bot_is_pinged_in_the_group(tmp_path: Path) -> None:
    async with Simulation(tmp_path, settings={"reminders__private_pings": True}) as sim:
        await sim.say(KASI, "/start", chat_id=KASI.user_id)
        sim.api.started.discard(KASI.user_id)  # blocked the bot since
        posts = Posts(sim)
        await sim.say(STAF, VALID_FORM)
        [card, ping] = posts.new()  # the card, then the group ping when the private one failed
        assert mentioned(card) == [] and mentioned(ping) == [KASI.user_id]
        assert ping.reply_to == card.message_id
        assert not await sim.services.repo.people.has_private_chat(KASI.user_id)
        [refused] = sim.api.errors  # the one try Telegram refused, never repeated
        assert refused.method == "sendMessage" and int(refused.params["chat_id"]) == KASI.user_id


async def test_a_tap_on_the_card_a_hand_off_replaced_acts_for_nobody(sim: Simulation) -> None:
    await sim.say(STAF, VALID_FORM)
    old = sim.last_bot_message().message_id
    # Telegram will not delete the old card: it stands (the group is asked to delete it).
    sim.api.fail_next("deleteMessage", 400, "Bad Request: message can't be deleted")
    await sim.tap(KASI, old, "Verifikasi")
    assert not sim.api.message(GROUP_ID, old).deleted and await card_of(sim, 1) != old
    # Its buttons act for nobody: the Kasi hears what happened, others that it is not theirs.
    q = await sim.tap_data(KASI, old, sim.api.button_data(GROUP_ID, old, "Tolak"))
    assert sim.answer_to(q)["text"] == (
        "Tiket #1 sudah berubah: Diverifikasi — menunggu sinkronisasi ADB di Konsolidasi "
        "(Rina Kasi, Sel 24 Nov 09:00)."
    )
    q = await sim.tap_data(STAF, old, sim.api.button_data(GROUP_ID, old, "Verifikasi"))
    assert sim.answer_to(q)["text"] == "Tombol ini hanya untuk Kasi."
    events = await sim.office.repo.events.events_for(1)
    assert [e.action for e in events] == ["open", "verify"]
    assert "hapus" in (sim.last_bot_message().plain or "").lower()  # the group is asked
    sim.api.calls[:] = [c for c in sim.api.calls if c.method != "deleteMessage" or c.status == 200]


async def test_a_hand_off_deletes_the_old_card_itself_and_leaves_a_failed_try_to_the_lane(
    sim: Simulation,
) -> None:
    """The old card goes in the hand-off's own round (no deletion queued); when Telegram
    cannot be asked just then (a 5xx), the deletion lane tries it again."""
    await sim.say(STAF, VALID_FORM)
    first = sim.last_bot_message().message_id
    await sim.tap(KASI, first, "Verifikasi")
    assert sim.api.message(GROUP_ID, first).deleted
    [deleted] = [c for c in sim.api.calls_of("deleteMessage")
                 if int(c.params["message_id"]) == first]  # fmt: skip
    sent = sim.api.calls_of("sendMessage")[-1]
    assert sim.api.calls.index(deleted) == sim.api.calls.index(sent) + 1  # right after it
    await sim.say(STAF, form(nik="1273014506850002"))
    second = sim.last_bot_message().message_id
    sim.api.fail_next("deleteMessage", 502)
    await sim.tap(KASI, second, "Verifikasi")
    assert await card_of(sim, 2) != second and sim.api.message(GROUP_ID, second).deleted
    tries = [c.status for c in sim.api.calls if c.method == "deleteMessage"
             and int(c.params["message_id"]) == second]  # fmt: skip
    assert tries == [502, 200]
    rows = await sim.services.repo.db.conn.execute(
        "SELECT message_id, target_id, status FROM outbox WHERE kind = 'delete'"
        " AND target_id IS NOT NULL ORDER BY id"
    )
    assert await rows.fetchall() == [(first, 1, "done"), (second, 2, "done")]
    sim.api.calls[:] = [c for c in sim.api.calls if c.status == 200]


async def test_a_tap_on_a_re_posted_card_before_its_post_is_recorded_acts(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """People tap the new card the moment it appears; the bot may not have written down
    where it is yet."""
    await sim.say(STAF, VALID_FORM)
    old = sim.last_bot_message().message_id
    gate = asyncio.Event()
    record = OutboxStore.handed_off

    async def held(self: OutboxStore, *args: Any, **kwargs: Any) -> None:
        await gate.wait()
        await record(self, *args, **kwargs)

    monkeypatch.setattr(OutboxStore, "handed_off", held)
    await sim.api.press(
        KASI.user_id, GROUP_ID, old, sim.api.button_data(GROUP_ID, old, "Verifikasi")
    )
    await sim.api.wait_until(lambda: len(sim.api.calls_of("sendMessage")) == 2)
    new = int(sim.api.calls_of("sendMessage")[1].result["message_id"])
    assert await card_of(sim, 1) == old  # not recorded yet
    data = sim.api.button_data(GROUP_ID, new, "Konsolidasi")
    update_id, query = await sim.api.press(ADB.user_id, GROUP_ID, new, data)
    assert sim.inbox is not None
    await sim.inbox.runner.wait_handled(update_id)
    assert sim.answer_to(query)["text"] == "Tiket #1: disinkronkan di Konsolidasi."
    gate.set()
    await sim.services.outbox.drained()
    assert await card_of(sim, 1) == new
    [card] = [m for m in sim.api.visible(GROUP_ID) if (m.plain or "").startswith("📋 Tiket #1")]
    assert card.message_id == new and "Sinkron di Konsolidasi" in (card.plain or "")


async def test_hand_offs_to_the_same_people_in_the_same_seconds_ring_once(tmp_path: Path) -> None:
    """The Kasi verifies three cards in a row: the ADB's phone rings once (their cards are
    edited in place, one ping names all three); a fourth, alone, is re-posted."""
    async with Simulation(tmp_path, ping_gather=1.0) as sim:
        await sim.run_jobs()
        for i in range(4):
            await sim.say(STAF, form(lembaga=f"Bank {i}"))
        cards = [await card_of(sim, t) for t in (1, 2, 3, 4)]
        posts = Posts(sim)
        assert sim.inbox is not None
        updates = []
        for card in cards[:3]:
            data = sim.api.button_data(GROUP_ID, card, "Verifikasi")
            updates.append((await sim.api.press(KASI.user_id, GROUP_ID, card, data))[0])
        for update_id in updates:
            await sim.inbox.runner.wait_handled(update_id)
        await sim.services.outbox.drained()
        [ping] = posts.new()
        assert mentioned(ping) == [ADB.user_id] and "#1, #2, #3" in (ping.plain or "")
        assert [await card_of(sim, t) for t in (1, 2, 3)] == cards[:3]
        assert all("Diverifikasi" in (sim.api.message(GROUP_ID, c).plain or "") for c in cards[:3])
        await sim.tap(KASI, cards[3], "Verifikasi")
        [alone] = posts.new()
        assert mentioned(alone) == [ADB.user_id] and await card_of(sim, 4) == alone.message_id


async def test_a_card_older_than_telegram_lets_delete_is_edited_and_pinged(
    sim: Simulation,
) -> None:
    """Telegram deletes a message only within 48 hours: a ticket that waited longer (on the
    DWH, say) is not re-posted at its hand-off (the old card would stay); its card is edited
    and a short ping replying to it tells whose turn it is."""
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    await sim.office.repo.db.conn.execute(
        "UPDATE tickets SET card_posted_at = '2026-11-20T09:00:00+00:00' WHERE id = 1"
    )
    posts = Posts(sim)
    await sim.tap(KASI, card, "Verifikasi")
    [ping] = posts.new()
    assert mentioned(ping) == [ADB.user_id] and ping.reply_to == card
    assert (ping.plain or "").startswith("🔔") and "#1" in (ping.plain or "")
    assert await card_of(sim, 1) == card and not sim.api.message(GROUP_ID, card).deleted
    assert "Diverifikasi" in (sim.api.message(GROUP_ID, card).plain or "")
    assert sim.api.calls_of("deleteMessage")[-1].params["message_id"] != str(card)
