"""Issue I (SPEC §2): the exception paths are part of the procedure. Every open state has a
way out, each exception ends with a recorded reason, and races change nothing twice."""

from __future__ import annotations

import asyncio
import io

from openpyxl import load_workbook

from tests.conftest import VALID_FORM
from ticketbot.domain.lifecycle import SOP_09, State
from ticketbot.emulator.simulation import ADB, KASI, STAF, Simulation

DEFAULTS = {r.key: r.defaults for r in SOP_09.reason_lists}
DEFAULT_RETURN_REASONS = DEFAULTS["return_reasons"]
DEFAULT_CANCEL_REASONS = DEFAULTS["cancel_reasons"]
DEFAULT_RESYNC_REASONS = DEFAULTS["resync_reasons"]


async def open_card(sim: Simulation, text: str = VALID_FORM) -> int:
    await sim.say(STAF, text)
    return sim.last_bot_message().message_id


def card_text(sim: Simulation, card: int) -> str:
    return sim.message(card).plain or ""


def labels(sim: Simulation, card: int) -> list[str]:
    markup = sim.message(card).reply_markup or {"inline_keyboard": []}
    return [b["text"] for row in markup["inline_keyboard"] for b in row]


async def state_of(sim: Simulation, ticket_id: int = 1) -> State:
    ticket = await sim.office.repo.tickets.get_ticket(ticket_id)
    assert ticket is not None
    return ticket.state


def test_every_open_state_has_a_way_forward_and_a_way_out() -> None:
    for state in SOP_09.open_states:
        leaving = [t for t in SOP_09.transitions if t.source == state and t.target != state]
        assert leaving, state
        # A person can move it (the recap machine moves `synced`).
        assert any(t.roles for t in leaving) or state == State.SYNCED, state
        for t in leaving:
            if t.roles:
                assert t.action in SOP_09.step(state).actions, (state, t.action)


async def test_adb_returns_a_verified_ticket_to_the_kasi_with_a_reason(sim: Simulation) -> None:
    card = await open_card(sim)
    await sim.tap(KASI, card, "Verifikasi")
    q = await sim.tap(ADB, card, "Kembalikan")
    assert sim.answer_to(q)["text"].startswith("Pilih alasan pengembalian ke Kasi tiket #1")
    assert labels(sim, card)[0] == f"1. {DEFAULT_RETURN_REASONS[0]}"
    assert "Pilih alasan pengembalian ke Kasi" in card_text(sim, card)
    q = await sim.tap(ADB, card, "1.")
    assert sim.answer_to(q)["text"] == "Tiket #1: dikembalikan ke Kasi."
    assert await state_of(sim) == State.NEW
    text = card_text(sim, card)
    assert "Menunggu verifikasi Kasi" in text
    assert f"Dikembalikan ke Kasi oleh Budi ADB: {DEFAULT_RETURN_REASONS[0]}" in text
    events = await sim.office.repo.events.events_for(1)
    assert (events[-1].action, events[-1].detail) == ("return_to_kasi", DEFAULT_RETURN_REASONS[0])
    # The Kasi's clock starts anew, and the Kasi can verify it again.
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.step_since == sim.clock()
    await sim.tap(KASI, card, "Verifikasi")
    assert await state_of(sim) == State.VERIFIED


async def test_only_the_adb_may_send_a_ticket_back(sim: Simulation) -> None:
    card = await open_card(sim)
    await sim.tap(KASI, card, "Verifikasi")
    for who in (KASI, STAF):
        q = await sim.tap(who, card, "Kembalikan")
        assert sim.answer_to(q)["text"] == "Tombol ini hanya untuk ADB SIAK."
    assert await state_of(sim) == State.VERIFIED
    assert "Sinkron di Konsolidasi" in labels(sim, card)[0]  # no menu opened


async def test_a_typed_reason_by_reply_and_going_back(sim: Simulation) -> None:
    card = await open_card(sim)
    await sim.tap(KASI, card, "Verifikasi")
    await sim.tap(ADB, card, "Kembalikan")
    q = await sim.tap(ADB, card, "Kembali")  # changed their mind
    assert sim.answer_to(q)["text"] == "Pengembalian ke kasi tiket #1 tidak jadi."
    assert "Sinkron di Konsolidasi" in labels(sim, card)[0]
    await sim.tap(ADB, card, "Kembalikan")
    await sim.say(ADB, "Nama di KK beda ejaan dengan SIAK", reply_to=card)
    assert await state_of(sim) == State.NEW
    assert "Nama di KK beda ejaan dengan SIAK" in card_text(sim, card)


async def test_kasi_cancels_a_verified_ticket_and_nobody_else_may(sim: Simulation) -> None:
    card = await open_card(sim)
    await sim.tap(KASI, card, "Verifikasi")
    for who in (ADB, STAF):
        q = await sim.tap(who, card, "Batal")
        assert sim.answer_to(q)["text"] == "Tombol ini hanya untuk Kasi."
    assert "Sinkron di Konsolidasi" in labels(sim, card)[0]  # no menu opened for them
    await sim.tap(KASI, card, "Batal")
    await sim.tap(KASI, card, "2.")
    assert await state_of(sim) == State.CANCELLED
    assert labels(sim, card) == []
    assert f"Dibatalkan oleh Rina Kasi: {DEFAULT_CANCEL_REASONS[1]}" in card_text(sim, card)


async def test_a_cancel_and_a_sync_racing_change_the_ticket_once(sim: Simulation) -> None:
    card = await open_card(sim)
    await sim.tap(KASI, card, "Verifikasi")
    sync = sim.button_data(card, "Konsolidasi")
    await sim.tap(KASI, card, "Batal")
    reason = sim.button_data(card, "1.")
    # The ADB's phone still shows the old buttons (a stale keyboard), both tap at once.
    await asyncio.gather(
        sim.tap_data(ADB, card, sync, forged=True), sim.tap_data(KASI, card, reason)
    )
    moves = [e for e in await sim.office.repo.events.events_for(1) if e.to_state is not None]
    assert [e.action for e in moves][:2] == ["open", "verify"]
    assert len(moves) == 3 and moves[2].action in ("cancel", "sync_at_konsolidasi")


async def test_resync_sends_it_again_in_a_later_recap(sim: Simulation) -> None:
    await sim.run_jobs()
    card = await open_card(sim)
    await sim.tap(KASI, card, "Verifikasi")
    await sim.tap(ADB, card, "Konsolidasi")
    sim.clock.now = sim.clock.now.replace(hour=15, minute=0)
    await sim.run_jobs()
    assert await state_of(sim) == State.SENT_TO_DWH
    q = await sim.tap(STAF, card, "Ulang")
    assert sim.answer_to(q)["text"] == "Tombol ini hanya untuk ADB SIAK."
    await sim.tap(ADB, card, "Ulang")
    await sim.tap(ADB, card, "1.")
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.state == State.VERIFIED and ticket.batch_id is None
    assert f"Sinkron ulang (DWH belum terbaca) oleh Budi ADB: {DEFAULT_RESYNC_REASONS[0]}" in (
        card_text(sim, card)
    )
    # Synced again; the next day's recap carries it, marked as sent again.
    await sim.tap(ADB, card, "Konsolidasi")
    sim.clock.advance(days=1)
    await sim.run_jobs()
    assert len(sim.smtp.received) == 2
    message = sim.smtp.received[1].message
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None and "Tiket #1 (KIRIM ULANG" in plain.get_content()
    # The DWH admin sees why it comes again: the reason the ADB recorded.
    assert f"Alasan ulang: {DEFAULT_RESYNC_REASONS[0]}" in plain.get_content()
    xlsx = next(message.iter_attachments()).get_content()
    sheet = load_workbook(io.BytesIO(xlsx)).active
    assert sheet.cell(row=1, column=13).value == "Kirim ulang"
    assert sheet.cell(row=2, column=13).value == "Ya"
    assert sheet.cell(row=1, column=14).value == "Alasan kirim ulang"
    assert sheet.cell(row=2, column=14).value == DEFAULT_RESYNC_REASONS[0]
    assert await state_of(sim) == State.SENT_TO_DWH


async def test_a_new_ticket_says_when_the_same_request_was_rejected_before(
    sim: Simulation,
) -> None:
    card = await open_card(sim)
    await sim.tap(KASI, card, "Tolak")
    await sim.tap(KASI, card, "1.")
    await sim.tap(STAF, card, "Diinformasikan")
    again = await open_card(sim)
    assert again != card
    text = card_text(sim, again)
    assert "pernah ditolak: #1 — NIK tidak ditemukan di database SIAK" in text


async def test_foto_goes_privately_protected_and_is_recorded(sim: Simulation) -> None:
    await sim.say(STAF, VALID_FORM, photo=True)
    card = sim.last_bot_message().message_id
    assert "🖼 Foto" in labels(sim, card)
    # No private chat with the bot yet: a pop-up says how.
    q = await sim.tap(KASI, card, "Foto")
    answer = sim.answer_to(q)
    assert answer["show_alert"] is True and "chat pribadi" in answer["text"]
    refused = [c for c in sim.api.errors if c.method == "sendPhoto"]
    assert [c.status for c in refused] == [403]
    sim.api.calls.remove(refused[0])
    # After /start in a private chat: the photo arrives there, protected, without the NIK.
    await sim.say(KASI, "/start", chat_id=KASI.user_id)
    q = await sim.tap(KASI, card, "Foto")
    assert "dikirim ke chat pribadi" in sim.answer_to(q)["text"]
    [sent] = [
        m for m in sim.api.messages.values() if m.chat_id == KASI.user_id and m.photo_file_id
    ]
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and sent.photo_file_id == ticket.photo_file_id
    assert sent.protected and "1273014506850001" not in (sent.plain or "")
    views = [e for e in await sim.office.repo.events.events_for(1) if e.action == "view_photo"]
    assert [e.actor_id for e in views] == [KASI.user_id, KASI.user_id]
