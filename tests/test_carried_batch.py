"""Issue Q (SPEC §3, the group's 20 messages a minute): a recap batch of more than five
tickets is carried by its summary. Sending it and confirming it edit no card (that would cost
one group message per ticket, twice); the summary shows each ticket with its own buttons
(Ulang while the DWH has it, WhatsApp and Diinformasikan once confirmed), a tap there acts as
on the card, and the card is current again once touched. Five or fewer: the cards follow the
batch as before."""

from __future__ import annotations

from tests.conftest import form
from ticketbot.emulator.botapi import StoredMessage
from ticketbot.emulator.simulation import ADB, GROUP_ID, KASI, STAF, Simulation


async def synced(sim: Simulation, count: int, lembaga: str = "Bank") -> list[int]:
    """`count` tickets opened, verified and synced; their cards now."""
    cards = []
    for i in range(count):
        name = f"{lembaga} {i:02d}"[-100:]
        await sim.say(STAF, form(nik=f"127301450685{i + 1:04d}", lembaga=name))
        cards.append(sim.last_bot_message().message_id)
    for card in cards:
        await sim.tap(KASI, card, "Verifikasi")
    for card in cards:
        await sim.tap(ADB, card, "Konsolidasi")
    await sim.services.outbox.drained()
    return [sim.card_now(c) for c in cards]


def edits_of(sim: Simulation, since: int) -> list[int]:
    """Message ids the bot edited in the group since call number `since`."""
    return [int(c.params["message_id"]) for c in sim.api.calls[since:]
            if c.method in ("editMessageText", "editMessageReplyMarkup") and c.status == 200
            and int(c.params["chat_id"]) == GROUP_ID]  # fmt: skip


def labels(message: StoredMessage) -> list[str]:
    return [b["text"] for row in (message.reply_markup or {}).get("inline_keyboard", [])
            for b in row]  # fmt: skip


async def states(sim: Simulation) -> dict[int, str]:
    tickets = [await sim.services.repo.tickets.get_ticket(i) for i in range(1, 7)]
    return {t.id: t.state for t in tickets if t is not None}


async def test_a_batch_of_six_is_carried_by_its_summary_and_no_card_is_edited(
    sim: Simulation,
) -> None:
    cards = await synced(sim, 6)
    before = len(sim.api.calls)
    await sim.say(ADB, "/rekap kirim")
    await sim.services.outbox.drained()
    [batch] = await sim.services.repo.batches.batches("sent")
    assert batch.carried and batch.summary_message_id is not None
    summary = batch.summary_message_id
    assert set((await states(sim)).values()) == {"sent_to_dwh"}
    assert set(edits_of(sim, before)) <= {summary}  # no card edited by the send
    shown = sim.api.message(GROUP_ID, summary)
    assert labels(shown)[0].startswith("☁️ DWH")
    assert [x for x in labels(shown) if "Ulang" in x] == [f"#{i} 🔁 Ulang sinkron"
                                                          for i in range(1, 7)]  # fmt: skip

    # The DWH confirms: the summary now carries the desk's buttons; still no card edited,
    # and the desk is pinged once for the six.
    before = len(sim.api.calls)
    await sim.tap(ADB, summary, "DWH")
    await sim.services.outbox.drained()
    assert set((await states(sim)).values()) == {"ready_to_inform"}
    assert set(edits_of(sim, before)) == {summary}
    shown = sim.api.message(GROUP_ID, summary)
    rows = shown.reply_markup["inline_keyboard"] if shown.reply_markup else []
    assert [[b["text"] for b in row] for row in rows] == [
        [f"#{i} 💬 WhatsApp", f"#{i} 📣 Diinformasikan"] for i in range(1, 7)
    ]
    assert all(row[0]["url"].startswith("https://wa.me/62") for row in rows)
    assert "6 pemohon belum diinformasikan" in (shown.plain or "")
    [ping] = sim.pings()  # a reply to the summary, where the buttons are
    assert f"tg://user?id={STAF.user_id}" in (ping.text or "") and ping.reply_to == summary

    # The desk informs #3 from its row: the ticket is done and its card (touched) is
    # current; the summary is not edited for it.
    before = len(sim.api.calls)
    query = await sim.tap(STAF, summary, "#3 📣")
    await sim.services.outbox.drained()
    assert "#3" in sim.answer_to(query)["text"]
    assert (await states(sim))[3] == "done"
    assert edits_of(sim, before) == [cards[2]]
    card = sim.api.message(GROUP_ID, cards[2])
    assert "Selesai" in (card.plain or "") and labels(card) == []
    # The same row again changes nothing and says who did it.
    query = await sim.tap(STAF, summary, "#3 📣")
    assert "sudah" in sim.answer_to(query)["text"]
    assert (await states(sim))[3] == "done"

    # The last one informed: the summary loses its buttons.
    for i in (1, 2, 4, 5, 6):
        await sim.tap(STAF, summary, f"#{i} 📣")
    await sim.services.outbox.drained()
    assert set((await states(sim)).values()) == {"done"}
    shown = sim.api.message(GROUP_ID, summary)
    assert labels(shown) == []
    assert "Semua tiket rekap ini sudah dikonfirmasi" in (shown.plain or "")


async def test_ulang_from_the_summary_opens_the_reason_on_the_card(sim: Simulation) -> None:
    cards = await synced(sim, 6)
    await sim.say(ADB, "/rekap kirim")
    await sim.services.outbox.drained()
    [batch] = await sim.services.repo.batches.batches("sent")
    assert batch.summary_message_id is not None
    summary = batch.summary_message_id
    # Not the ADB's: refused, nothing opens.
    query = await sim.tap(STAF, summary, "#2 🔁")
    assert "hanya untuk" in sim.answer_to(query)["text"]
    # Opened and closed again ("Kembali"): the card shows the ticket as it is now.
    await sim.tap(ADB, summary, "#2 🔁")
    await sim.services.outbox.drained()
    card = sim.api.message(GROUP_ID, sim.card_now(cards[1]))
    assert any(x.startswith("1.") for x in labels(card))  # the reason menu, on the card
    await sim.tap(ADB, cards[1], "Kembali")
    await sim.services.outbox.drained()
    card = sim.api.message(GROUP_ID, sim.card_now(cards[1]))
    assert "Ulang" in str(labels(card)) and not any(x.startswith("1.") for x in labels(card))
    await sim.tap(ADB, summary, "#2 🔁")
    await sim.services.outbox.drained()
    before = len(sim.api.calls)
    await sim.tap(ADB, cards[1], "1.")
    await sim.services.outbox.drained()
    ticket = await sim.services.repo.tickets.get_ticket(2)
    assert ticket is not None and ticket.state == "verified" and ticket.batch_id is None
    # It left the batch: the summary is edited without its row (the DWH button counts 5).
    assert summary in edits_of(sim, before)
    shown = sim.api.message(GROUP_ID, summary)
    assert not [x for x in labels(shown) if x.startswith("#2 ")]
    assert labels(shown)[0] == "☁️ DWH: konfirmasi 5 tiket"
    # The batch stays carried: confirming it edits no card of the five.
    before = len(sim.api.calls)
    await sim.tap(ADB, summary, "DWH")
    await sim.services.outbox.drained()
    edited = set(edits_of(sim, before))
    assert edited == {summary}, edited


async def test_five_tickets_are_followed_by_their_cards(sim: Simulation) -> None:
    cards = await synced(sim, 5)
    before = len(sim.api.calls)
    await sim.say(ADB, "/rekap kirim")
    await sim.services.outbox.drained()
    [batch] = await sim.services.repo.batches.batches("sent")
    assert not batch.carried and batch.summary_message_id is not None
    assert set(cards) <= set(edits_of(sim, before))  # each card shows DWH and Ulang
    assert labels(sim.api.message(GROUP_ID, batch.summary_message_id)) == [
        "☁️ DWH: konfirmasi 5 tiket"
    ]
    for card in cards:
        assert any("Ulang" in x for x in labels(sim.api.message(GROUP_ID, card)))


async def test_a_summary_carries_what_fits_on_one_message_and_the_other_cards_follow(
    sim: Simulation,
) -> None:
    """Telegram takes about 10 KB of keyboard on a message (the emulator refuses more): with
    long lembaga names the WhatsApp links of twenty do not fit, so the summary carries the
    first ones and the cards of the rest are edited as for a small batch."""
    long_name = "Badan Penyelenggara Jaminan Sosial Kesehatan Kantor Cabang Utama Sibolga"
    cards = await synced(sim, 20, long_name)
    await sim.say(ADB, "/rekap kirim")
    await sim.services.outbox.drained()
    [batch] = await sim.services.repo.batches.batches("sent")
    assert batch.summary_message_id is not None
    summary = batch.summary_message_id
    # Twenty Ulang buttons fit: no card edited by the send.
    assert len([x for x in labels(sim.api.message(GROUP_ID, summary)) if "Ulang" in x]) == 20
    before = len(sim.api.calls)
    await sim.tap(ADB, summary, "DWH")
    await sim.services.outbox.drained()
    shown = labels(sim.api.message(GROUP_ID, summary))
    carried = [int(x.split()[0][1:]) for x in shown if "📣" in x]
    assert 5 <= len(carried) < 20 and carried == list(range(1, len(carried) + 1))
    edited = set(edits_of(sim, before)) - {summary}
    assert edited == {cards[i - 1] for i in range(len(carried) + 1, 21)}
    for i in range(len(carried) + 1, 21):
        assert "Diinformasikan" in str(labels(sim.api.message(GROUP_ID, cards[i - 1])))
