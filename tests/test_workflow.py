"""The SOP workflow from the card's buttons, end to end (issue B)."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlparse

import pytest

from tests.conftest import VALID_FORM, form
from ticketbot.domain.lifecycle import State
from ticketbot.emulator.simulation import ADB, GROUP_ID, KASI, STAF, STAF2, STRANGER, Simulation
from ticketbot.jobs import sweep_overdue
from ticketbot.records import BOT_ACTOR


async def open_ticket(sim: Simulation, text: str = VALID_FORM) -> int:
    """Open a ticket; return its card's message id."""
    await sim.say(STAF, text)
    return sim.last_bot_message().message_id


async def state_of(sim: Simulation, ticket_id: int = 1) -> State:
    ticket = await sim.office.repo.tickets.get_ticket(ticket_id)
    assert ticket is not None
    return ticket.state


async def actions(sim: Simulation, ticket_id: int = 1) -> list[str]:
    return [e.action for e in await sim.office.repo.events.events_for(ticket_id)]


def card_text(sim: Simulation, card: int) -> str:
    return sim.message(card).plain or ""


def labels(sim: Simulation, card: int) -> list[str]:
    markup = sim.message(card).reply_markup or {"inline_keyboard": []}
    return [b["text"] for row in markup["inline_keyboard"] for b in row]


async def to_sent_to_dwh(sim: Simulation) -> None:
    """Through the real recap: 15:00 comes, the email is accepted by the SMTP server."""
    sim.clock.now = sim.clock.now.replace(hour=15, minute=0)
    await sim.run_jobs()
    assert len(sim.smtp.received) == 1


async def test_happy_path_through_every_button(sim: Simulation) -> None:
    card = await open_ticket(sim)
    sim.clock.advance(minutes=3)
    q = await sim.tap(KASI, card, "Verifikasi")
    assert sim.answer_to(q)["text"] == "Tiket #1: diverifikasi."
    assert await state_of(sim) == State.VERIFIED
    text = card_text(sim, card)
    assert "Diverifikasi oleh Rina Kasi" in text and "Giliran: Budi ADB" not in text
    assert "Batas sinkronisasi ADB: Rab 25 Nov 09:03" in text
    # SPEC §2: the ADB may send it back to the Kasi, the Kasi may cancel it (with a reason).
    assert labels(sim, card) == [
        "🔄 Sinkron di Konsolidasi",
        "↩️ Kembalikan ke Kasi",
        "🚫 Batal",
        "🔎 NIK",
    ]

    sim.clock.advance(hours=2)
    await sim.tap(ADB, card, "Konsolidasi")
    assert await state_of(sim) == State.SYNCED
    # The ADB's working day still runs from the verification until the recap leaves.
    assert "Batas sinkronisasi ADB: Rab 25 Nov 09:03" in card_text(sim, card)

    await to_sent_to_dwh(sim)
    assert "Menunggu admin DWH pusat" in card_text(sim, card)
    body = sim.smtp.received[0].message.get_body(("plain",))
    assert body is not None and "Tiket #1" in body.get_content()
    sim.clock.advance(days=1)
    await sim.tap(ADB, card, "DWH")
    assert await state_of(sim) == State.READY_TO_INFORM
    assert "Giliran: Sari Staf" in card_text(sim, card)  # the opener informs the pemohon

    markup = sim.message(card).reply_markup
    assert markup is not None
    wa = next(b for row in markup["inline_keyboard"] for b in row if "WhatsApp" in b["text"])
    url = urlparse(wa["url"])
    assert (url.scheme, url.netloc, url.path) == ("https", "wa.me", "/6281234567890")
    message = parse_qs(url.query)["text"][0]
    assert (
        "tiket #1" in message and "BPJS Kesehatan" in message and "1273014506850001" not in message
    )

    await sim.tap(STAF2, card, "Diinformasikan")
    assert await state_of(sim) == State.DONE
    assert labels(sim, card) == []
    assert await actions(sim) == ["open", "verify", "sync_at_konsolidasi", "send_to_dwh",
                                  "confirm_dwh", "inform"]  # fmt: skip
    # One card for the whole lifecycle, re-posted at each hand-off (to the ADB, to the desk;
    # the DWH step stays the ADB's) with the old one deleted, edited in between. No pings of
    # their own: the re-posted card's mention is the ping. Plus the recap's summary.
    sends = [c.params["text"].split("\n")[0] for c in sim.api.calls_of("sendMessage")]
    assert sends[0] == "📋 <b>Tiket #1</b> — Menunggu verifikasi Kasi"
    assert (
        sends[1] == "📋 <b>Tiket #1</b> — Diverifikasi — menunggu sinkronisasi ADB di Konsolidasi"
    )
    assert "Rekap" in sends[2] and len(sends) == 4
    assert sends[3] == "📋 <b>Tiket #1</b> — Sinkron di DWH — informasikan ke pemohon"
    posted = [int(c.result["message_id"]) for c in sim.api.calls_of("sendMessage")]
    deleted = [int(c.params["message_id"]) for c in sim.api.calls_of("deleteMessage")]
    assert posted[0] == card and {posted[0], posted[1]} <= set(deleted)
    edited = {int(c.params["message_id"]) for c in sim.api.calls_of("editMessageText")}
    assert edited == {posted[1], posted[3]}
    cards = [m.message_id for m in sim.api.visible(GROUP_ID) if "Tiket #1 —" in (m.plain or "")]
    assert cards == [posted[3]]


async def test_rejection_with_a_preset_reason(sim: Simulation) -> None:
    card = await open_ticket(sim)
    q = await sim.tap(KASI, card, "Tolak")
    assert "Pilih alasan" in sim.answer_to(q)["text"]
    assert labels(sim, card)[-1] == "↩️ Kembali"
    assert "balas (reply) kartu ini" in card_text(sim, card)
    # A rejection's reason reaches the resident word for word: the prompt says so.
    assert "dikirim apa adanya ke pemohon lewat WhatsApp" in card_text(sim, card)
    assert await state_of(sim) == State.NEW
    await sim.tap(KASI, card, "2. Data pemohon")
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.state == State.REJECTED
    assert ticket.reject_reason == "Data pemohon tidak sesuai dokumen"
    assert "Alasan penolakan: Data pemohon tidak sesuai dokumen" in card_text(sim, card)
    assert any("WhatsApp" in lab for lab in labels(sim, card))
    await sim.tap(STAF, card, "Diinformasikan")
    assert await state_of(sim) == State.CLOSED_REJECTED
    events = await sim.office.repo.events.events_for(1)
    assert [(e.action, e.detail) for e in events if e.to_state] == [
        ("open", None),
        ("reject", "Data pemohon tidak sesuai dokumen"),
        ("inform", None),
    ]


async def test_rejection_with_a_free_text_reason_and_the_way_back(sim: Simulation) -> None:
    card = await open_ticket(sim)
    await sim.tap(KASI, card, "Tolak")
    await sim.tap(KASI, card, "Kembali")
    assert "Verifikasi" in labels(sim, card)[0]
    # A reply while the reason menu is closed does nothing.
    await sim.say(KASI, "bukan alasan", reply_to=card)
    assert await state_of(sim) == State.NEW
    await sim.tap(KASI, card, "Tolak")
    # Someone without the Kasi role cannot reject by replying.
    await sim.say(STAF, "saya tolak", reply_to=card)
    assert await state_of(sim) == State.NEW
    await sim.say(KASI, "Data   ganda <b>di</b> SIAK & perlu dicek", reply_to=card)
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.state == State.REJECTED
    assert ticket.reject_reason == "Data ganda <b>di</b> SIAK & perlu dicek"
    assert "Data ganda <b>di</b> SIAK & perlu dicek" in card_text(sim, card)


async def test_a_reason_carrying_a_nik_is_refused_and_removed(sim: Simulation) -> None:
    card = await open_ticket(sim)
    await sim.tap(KASI, card, "Tolak")
    reply = await sim.say(KASI, "NIK 1273 0145 0685 0001 ganda", reply_to=card)
    assert sim.message(reply).deleted
    assert "tidak boleh memuat NIK" in (sim.last_bot_message().plain or "")
    assert await state_of(sim) == State.NEW


async def test_cancel_by_opener_and_by_kasi_not_by_other_staff(sim: Simulation) -> None:
    first = await open_ticket(sim)
    q = await sim.tap(STAF2, first, "Batal")
    assert sim.answer_to(q)["text"] == "Tombol ini hanya untuk Kasi atau pembuka tiket."
    assert await state_of(sim, 1) == State.NEW
    await sim.tap(STAF, first, "Batal")
    assert await state_of(sim, 1) == State.CANCELLED
    assert labels(sim, first) == []
    second = await open_ticket(sim, form(lembaga="Bank"))
    await sim.tap(KASI, second, "Batal")
    assert await state_of(sim, 2) == State.CANCELLED


@pytest.mark.parametrize(
    ("who", "label"),
    [(STAF, "Verifikasi"), (ADB, "Verifikasi"), (STRANGER, "Verifikasi"), (STAF, "Tolak"),
     (ADB, "Tolak"), (STRANGER, "Batal")],
)  # fmt: skip
async def test_wrong_role_taps_change_nothing(sim: Simulation, who: object, label: str) -> None:
    card = await open_ticket(sim)
    before = card_text(sim, card)
    q = await sim.tap(who, card, label)  # type: ignore[arg-type]
    assert sim.answer_to(q)["text"].startswith("Tombol ini hanya untuk")
    assert await state_of(sim) == State.NEW
    assert await actions(sim) == ["open"]
    assert card_text(sim, card) == before


async def test_wrong_roles_later_in_the_lifecycle(sim: Simulation) -> None:
    card = await open_ticket(sim)
    await sim.tap(KASI, card, "Verifikasi")
    for who in (KASI, STAF, STRANGER):
        await sim.tap(who, card, "Konsolidasi")
        assert await state_of(sim) == State.VERIFIED
    await sim.tap(ADB, card, "Konsolidasi")
    await to_sent_to_dwh(sim)
    q = await sim.tap_data(KASI, card, "1:d:1", forged=True)  # a stale card with "DWH"
    assert sim.answer_to(q)["text"] == "Tombol ini hanya untuk ADB SIAK."
    assert await state_of(sim) == State.SENT_TO_DWH


async def test_two_concurrent_taps_make_one_transition(sim: Simulation) -> None:
    card = await open_ticket(sim)
    data = sim.button_data(card, "Verifikasi")
    (u1, q1), (u2, q2) = await asyncio.gather(
        sim.api.press(KASI.user_id, GROUP_ID, card, data),
        sim.api.press(KASI.user_id, GROUP_ID, card, data),
    )
    assert sim.app is not None
    assert sim.inbox is not None
    runner = sim.inbox.runner
    await asyncio.gather(runner.wait_handled(u1), runner.wait_handled(u2))
    answers = [sim.answer_to(q1)["text"], sim.answer_to(q2)["text"]]
    assert answers.count("Tiket #1: diverifikasi.") == 1
    lost = next(a for a in answers if a != "Tiket #1: diverifikasi.")
    assert lost.startswith("Tiket #1 sudah berubah: Diverifikasi") and "Rina Kasi" in lost
    assert await actions(sim) == ["open", "verify"]


async def test_stale_button_is_answered_with_who_did_it(sim: Simulation) -> None:
    card = await open_ticket(sim)
    stale = sim.button_data(card, "Verifikasi")
    await sim.tap(KASI, card, "Verifikasi")
    q = await sim.tap_data(KASI, card, stale, forged=True)
    assert sim.answer_to(q)["text"] == (
        "Tiket #1 sudah berubah: Diverifikasi — menunggu sinkronisasi ADB di Konsolidasi "
        "(Rina Kasi, Sel 24 Nov 09:00)."
    )


@pytest.mark.parametrize(
    "data",
    ["hello", "\x00" * 64, "1:v:2", "1:v:999999", "1:r:1:9", "' OR 1=1; DROP TABLE tickets; --",
     "0:v:1", "1:D:1"],
)  # fmt: skip
async def test_forged_callback_data_is_refused(sim: Simulation, data: str) -> None:
    card = await open_ticket(sim)
    await open_ticket(sim, form(lembaga="Bank"))  # ticket #2 has its own card
    q = await sim.tap_data(KASI, card, data, forged=True)
    assert sim.answer_to(q)["text"] == "Tombol tidak berlaku."
    assert await state_of(sim, 1) == State.NEW and await state_of(sim, 2) == State.NEW
    assert await sim.office.repo.tickets.count_tickets() == 2
    # The bot keeps serving.
    await sim.tap(KASI, card, "Verifikasi")
    assert await state_of(sim, 1) == State.VERIFIED


async def test_full_nik_pop_up_only_for_staff_and_logged(sim: Simulation) -> None:
    card = await open_ticket(sim)
    for who in (KASI, ADB, STAF2):
        q = await sim.tap(who, card, "NIK")
        answer = sim.answer_to(q)
        assert answer["show_alert"] is True
        assert (
            "NIK: 1273014506850001" in answer["text"] and "KK: 1273010101090003" in answer["text"]
        )
    q = await sim.tap(STRANGER, card, "NIK")
    assert "1273014506850001" not in sim.answer_to(q)["text"]
    events = [e for e in await sim.office.repo.events.events_for(1) if e.action == "view_nik"]
    assert [e.actor_id for e in events] == [KASI.user_id, ADB.user_id, STAF2.user_id]
    # Views do not touch the card.
    assert sim.api.calls_of("editMessageText") == []


async def test_a_card_from_before_a_restart_still_works(sim: Simulation) -> None:
    card = await open_ticket(sim)
    await sim.stop_bot()
    await sim.start_bot()
    await sim.tap(KASI, card, "Verifikasi")
    assert await state_of(sim) == State.VERIFIED


async def test_status_and_queue(sim: Simulation) -> None:
    card = await open_ticket(sim)
    await sim.tap(KASI, card, "NIK")
    await sim.tap(KASI, card, "Verifikasi")
    await open_ticket(sim, form(lembaga="Bank"))
    await sim.say(STAF, "/status #1")
    status = sim.last_bot_message().plain or ""
    assert "Tiket #1" in status and "127301******0001" in status
    assert (
        "Melihat NIK lengkap oleh Rina Kasi" in status and "Diverifikasi oleh Rina Kasi" in status
    )

    asked = await sim.say(STAF, "/status 1273 0145 0685 0001")
    assert sim.message(asked).deleted  # it carried a full NIK
    assert "Tiket untuk NIK 127301******0001" in (sim.last_bot_message().plain or "")
    await sim.say(STAF, "/status #99")
    assert "tidak ditemukan" in (sim.last_bot_message().plain or "")

    sim.clock.advance(minutes=30)  # ticket #2's Kasi step (10 min) is now overdue
    await sim.say(ADB, "/antrian")
    queue = sim.last_bot_message().plain or ""
    assert queue.index("Menunggu verifikasi Kasi") < queue.index("Menunggu sinkronisasi ADB")
    assert "#2 Bank" in queue and "terlambat 20 menit" in queue and "1 terlambat" in queue
    await sim.say(STRANGER, "/antrian")
    assert sim.last_bot_message().plain == queue  # nothing for people without a role


async def test_overdue_cards_are_marked_once(sim: Simulation) -> None:
    card = await open_ticket(sim)
    assert sim.app is not None
    await sweep_overdue(sim.app)
    await sim.services.outbox.drained()  # cards change through the outbox
    assert sim.api.calls_of("editMessageText") == []
    sim.clock.advance(minutes=12)
    await sweep_overdue(sim.app)
    await sim.services.outbox.drained()
    assert "TERLAMBAT 2 menit" in card_text(sim, card)
    await sweep_overdue(sim.app)
    await sim.services.outbox.drained()
    assert len(sim.api.calls_of("editMessageText")) == 1


async def test_long_histories_stay_within_telegram_limits(sim: Simulation) -> None:
    card = await open_ticket(sim, form(keterangan="k" * 500))
    for _ in range(150):
        await sim.office.repo.events.record_event(1, BOT_ACTOR, "view_nik", sim.clock(), "x" * 100)
    await sim.tap(KASI, card, "Verifikasi")
    await sim.say(STAF, "/status #1")
    status = sim.last_bot_message().plain or ""
    assert "catatan lebih lama tidak ditampilkan" in status
    assert len(status) <= 4096


async def test_deleted_card_is_posted_again(sim: Simulation) -> None:
    card = await open_ticket(sim)
    sim.message(card).deleted = True  # somebody deleted the card in the group
    await sim.tap_data(KASI, card, sim.button_data(card, "Verifikasi"), forged=True)
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.state == State.VERIFIED
    assert ticket.card_message_id != card
    assert "Diverifikasi oleh Rina Kasi" in card_text(sim, ticket.card_message_id or 0)
    # A hand-off re-posts the card; the old one was gone already (that is no failure).
    gone = [c for c in sim.api.calls if c.status != 200]
    assert [c.description for c in gone] == ["Bad Request: message to delete not found"]
    sim.api.calls.remove(gone[0])
    assert not sim.api.calls_of("editMessageText")


async def test_a_failing_tap_is_still_answered_and_the_bot_goes_on(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = await open_ticket(sim)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(sim.office, "press", broken)
    q = await sim.tap(KASI, card, "Verifikasi")
    assert sim.answer_to(q)["text"] == "Maaf, terjadi kesalahan. Periksa kartu lalu coba lagi."
    assert await state_of(sim) == State.NEW
    monkeypatch.undo()
    await sim.tap(KASI, card, "Verifikasi")
    assert await state_of(sim) == State.VERIFIED


async def test_a_failing_command_is_reported_in_the_group(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(sim.office, "queue", broken)
    await sim.say(KASI, "/antrian")
    assert "terjadi kesalahan" in (sim.last_bot_message().plain or "")
