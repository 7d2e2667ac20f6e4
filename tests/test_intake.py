"""Opening tickets in the group, end to end through the strict Bot API emulator."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

import pytest

from tests.conftest import VALID_FORM, form, not_pings
from ticketbot.domain.lifecycle import State
from ticketbot.emulator.simulation import ADB, GROUP_ID, KASI, STAF, STAF2, STRANGER, Simulation


async def test_valid_form_posts_one_card_stores_ticket_and_deletes_intake(sim: Simulation) -> None:
    intake_id = await sim.say(STAF, VALID_FORM)

    sends = not_pings(sim.api.calls_of("sendMessage"))
    assert len(sends) == 1
    card = sends[0].params
    assert card["chat_id"] == str(GROUP_ID) and card["parse_mode"] == "HTML"
    text = sim.last_bot_message().plain
    assert text is not None
    assert "Tiket #1" in text
    assert "127301******0001" in text and "127301******0003" in text
    assert "0812****7890" in text and "BPJS Kesehatan" in text
    assert "NIK tidak terbaca di aplikasi P-Care" in text
    assert "Menunggu verifikasi Kasi" in text and "Giliran: Kasi" in text
    assert '<a href="tg://user?id=111111111">' in card["text"]
    labels = [b["text"] for row in card["reply_markup"]["inline_keyboard"] for b in row]
    assert [
        lab for lab in labels if any(w in lab for w in ("Verifikasi", "Tolak", "Batal", "NIK"))
    ] == labels
    assert len(labels) == 4

    deletes = sim.api.calls_of("deleteMessage")
    assert [(d.params["chat_id"], d.params["message_id"]) for d in deletes] == [
        (str(GROUP_ID), str(intake_id))
    ]
    assert sim.message(intake_id).deleted

    repo = sim.office.repo
    assert await repo.tickets.count_tickets() == 1
    ticket = await repo.tickets.get_ticket(1)
    assert ticket is not None
    assert (ticket.nik, ticket.kk, ticket.phone, ticket.state) == (
        "1273014506850001",
        "1273010101090003",
        "+6281234567890",
        State.NEW,
    )
    assert ticket.card_message_id == sim.last_bot_message().message_id
    events = await repo.events.events_for(1)
    assert [(e.action, e.actor_id, e.actor_name, e.to_state) for e in events] == [
        ("open", STAF.user_id, "Sari Staf", State.NEW)
    ]
    assert [c["command"] for c in sim.api.commands] == [
        "tiket",
        "status",
        "cari",
        "antrian",
        "rekap",
        "laporan",
        "bantuan",
        "id",
    ]


async def test_photo_caption_opens_ticket_and_keeps_file_id(sim: Simulation) -> None:
    await sim.say(STAF, VALID_FORM, photo=True)
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.photo_file_id and ticket.photo_file_id.startswith("AgAC")
    assert "Foto KK/KTP-el tersimpan" in (sim.last_bot_message().plain or "")


async def test_tiket_alone_answers_with_a_form(sim: Simulation) -> None:
    asked = await sim.say(STAF, "/tiket")
    reply = sim.last_bot_message()
    assert reply.reply_to == asked
    assert "NIK:" in (reply.plain or "") and "Keterangan:" in (reply.plain or "")
    assert await sim.office.repo.tickets.count_tickets() == 0


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"nik": "127301450685"}, "NIK harus 16 digit"),
        ({"nik": "1273010113850001"}, "bulan"),
        ({"nik": "1273013201850001"}, "hari"),
        ({"nik": "1273012902010001"}, "tidak ada di kalender"),
        ({"nik": "1273014506850000"}, "0000"),
        ({"kk": "1273014506850003"}, "Nomor KK: hari"),
        ({"hp": "0631 21799"}, "nomor seluler"),
        ({"hp": ""}, "Nomor HP/WA wajib diisi"),
        ({"lembaga": ""}, "Lembaga wajib diisi"),
        ({"keterangan": "x" * 501}, "Keterangan terlalu panjang"),
    ],
)
async def test_invalid_form_gets_one_reply_and_stores_nothing(
    sim: Simulation, fields: dict[str, str], fragment: str
) -> None:
    intake_id = await sim.say(STAF, form(**fields))
    sends = sim.api.calls_of("sendMessage")
    assert len(sends) == 1
    reply = sim.last_bot_message()
    assert reply.reply_to == intake_id
    assert "belum dibuat" in (reply.plain or "") and fragment in (reply.plain or "")
    assert await sim.office.repo.tickets.count_tickets() == 0
    # SPEC §3: an invalid intake still carries a full NIK/KK, so it goes once answered.
    assert [d.params["message_id"] for d in sim.api.calls_of("deleteMessage")] == [str(intake_id)]
    assert sim.message(intake_id).deleted


async def test_every_problem_is_listed_in_one_reply(sim: Simulation) -> None:
    await sim.say(STAF, form(nik="12", hp="0631 21799", lembaga=""))
    text = sim.last_bot_message().plain or ""
    assert "NIK harus 16 digit" in text and "seluler" in text and "Lembaga wajib" in text
    assert len(sim.api.calls_of("sendMessage")) == 1


async def test_duplicate_points_to_the_open_ticket(sim: Simulation) -> None:
    await sim.say(STAF, VALID_FORM)
    again = await sim.say(STAF2, form(lembaga="bpjs kes", keterangan="lagi"))
    reply = sim.last_bot_message()
    assert reply.reply_to == again
    assert "Tiket #1" in (reply.plain or "") and "Tidak ada tiket baru" in (reply.plain or "")
    assert await sim.office.repo.tickets.count_tickets() == 1
    # Another lembaga for the same NIK is a different request.
    await sim.say(STAF2, form(lembaga="Bank Sumut"))
    assert await sim.office.repo.tickets.count_tickets() == 2


async def test_people_without_a_role_and_other_chats_are_ignored(sim: Simulation) -> None:
    stranger = await sim.say(STRANGER, VALID_FORM)
    await sim.say(STAF, VALID_FORM, chat_id=STAF.user_id)  # a private chat
    assert sim.api.calls_of("sendMessage") == []
    assert await sim.office.repo.tickets.count_tickets() == 0
    # Ignored, but a full NIK in the group goes whoever sent it (SPEC §3).
    [deleted] = sim.api.calls_of("deleteMessage")
    assert deleted.params["message_id"] == str(stranger)


async def test_kasi_and_adb_may_open_tickets_too(sim: Simulation) -> None:
    await sim.say(KASI, VALID_FORM)
    await sim.say(ADB, form(lembaga="Bank"))
    assert await sim.office.repo.tickets.count_tickets() == 2


async def test_markup_in_keterangan_arrives_literally(sim: Simulation) -> None:
    await sim.say(STAF, form(keterangan="<script>alert(1)</script> & _*[`~ </b> &amp;"))
    text = sim.last_bot_message().plain or ""
    assert "Keterangan: <script>alert(1)</script> & _*[`~ </b> &amp;" in text


@pytest.mark.parametrize("sim", [{"privacy__delete_intake": False}], indirect=True)
async def test_intake_kept_when_delete_intake_is_off(sim: Simulation) -> None:
    intake_id = await sim.say(STAF, VALID_FORM)
    assert not sim.message(intake_id).deleted
    assert sim.api.calls_of("deleteMessage") == []


async def test_refused_delete_is_reported_and_work_goes_on(sim: Simulation) -> None:
    sim.api.can_delete = False
    intake_id = await sim.say(STAF, VALID_FORM)
    assert not sim.message(intake_id).deleted
    warning = sim.last_bot_message().plain or ""
    assert "tidak bisa dihapus" in warning and "Tiket #1" not in warning.split("\n")[0][:5]
    assert await sim.office.repo.tickets.count_tickets() == 1
    # Telegram's refusal was a real 400; nothing else failed.
    refused = [c for c in sim.api.calls if c.status != 200]
    assert [(c.method, c.description) for c in refused] == [
        ("deleteMessage", "Bad Request: message can't be deleted")
    ]
    sim.api.calls.remove(refused[0])


async def test_help_and_id(sim: Simulation) -> None:
    await sim.say(STAF, "/bantuan")
    assert "/tiket" in (sim.last_bot_message().plain or "")
    await sim.say(STRANGER, "/id", chat_id=STRANGER.user_id)
    reply = sim.api.visible(STRANGER.user_id)[-1]
    assert f"{STRANGER.user_id}" in (reply.plain or "")
    await sim.say(STRANGER, "/start", chat_id=STRANGER.user_id)
    assert "hanya melayani grup" in (sim.api.visible(STRANGER.user_id)[-1].plain or "")


async def test_command_addressed_to_the_bot_by_username(sim: Simulation) -> None:
    await sim.say(STAF, VALID_FORM.replace("/tiket", f"/tiket@{sim.api.bot_username}", 1))
    assert await sim.office.repo.tickets.count_tickets() == 1
    await sim.say(STAF2, VALID_FORM.replace("/tiket", "/tiket@another_bot", 1))
    assert len(not_pings(sim.api.calls_of("sendMessage"))) == 1  # for another bot: ignored


async def test_three_quick_mistakes_are_answered_at_once_and_a_flood_combined(
    sim: Simulation,
) -> None:
    """A person at a human pace hears every refusal at once (SPEC §3); beyond three in a
    minute they are combined into one reply a minute, naming how many were refused."""
    for n in range(5):
        await sim.say(STAF, form(hp=f"0631 2179{n}"))  # a landline: refused
    replies = [c for c in sim.api.calls_of("sendMessage") if "belum dibuat" in c.params["text"]]
    assert len(replies) == 3
    db = sqlite3.connect(sim.services.config.database_path)
    waiting = db.execute(
        "SELECT refused, next_attempt_at, created_at FROM outbox WHERE person_id = ?"
        " AND status = 'pending'", (STAF.user_id,),
    ).fetchall()  # fmt: skip
    assert len(waiting) == 1 and waiting[0][0] == 2  # the 4th and the 5th, as one reply
    due, created = (datetime.fromisoformat(t) for t in waiting[0][1:])
    assert due - created > timedelta(seconds=50)


async def test_a_halo_dukcapil_message_opens_a_ticket_as_it_is(sim: Simulation) -> None:
    """The national channel's one line, forwarded after /tiket: its lembaga found in the
    Keluhan; with a Sumber line, the channel is kept and shown."""
    await sim.say(STAF, "/tiket\n# 1273014506850001 # Zulaikha Siregar # 1273010101090003"
                        " # 0812-3456-7890 # NIK tidak terbaca di aplikasi JKN\nSumber: WhatsApp")  # fmt: skip
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None
    assert (ticket.nik, ticket.kk, ticket.phone, ticket.nama, ticket.lembaga, ticket.sumber) == (
        "1273014506850001", "1273010101090003", "+6281234567890", "Zulaikha Siregar",
        "BPJS Kesehatan", "wa",
    )  # fmt: skip
    card = sim.last_bot_message().plain or ""
    assert "Lembaga: BPJS Kesehatan" in card and "Sumber: wa" in card
    # No institution named anywhere: refused, asking for the Lembaga line.
    await sim.say(STAF, "/tiket\n#1273016902000002#Ani#1273010101090004#081298765432#gagal daftar")
    assert "tambahkan baris “Lembaga: …”" in (sim.last_bot_message().plain or "")
    assert await sim.office.repo.tickets.count_tickets() == 1


async def test_a_refused_form_goes_back_to_its_sender_privately(sim: Simulation) -> None:
    """Deleted from the group (it carries a NIK), the form is not lost: its sender gets it
    back in their private chat, problems marked, ready to fix; without such a chat the
    group answer says to type it again."""
    bad = form(hp="0631 21799")  # a landline
    first = await sim.say(STAF, bad)
    assert sim.message(first).deleted
    told = sim.last_bot_message().plain or ""
    assert "ketik ulang formulirnya" in told
    assert not [m for m in sim.api.messages.values() if m.chat_id == STAF.user_id]
    await sim.say(STAF, "/start", chat_id=STAF.user_id)  # now a private chat exists
    second = await sim.say(STAF, bad)
    assert sim.message(second).deleted
    assert "dikirim kembali ke chat pribadi" in (sim.last_bot_message().plain or "")
    [back] = [m for m in sim.api.messages.values()
              if m.chat_id == STAF.user_id and "belum menjadi tiket" in (m.plain or "")]  # fmt: skip
    text = back.plain or ""
    assert "seluler" in text  # the problem, marked
    assert "NIK: 1273014506850001" in text and "HP: 0631 21799" in text  # the form as typed
    # In the group, still no full number anywhere.
    group = [m.plain or "" for m in sim.api.visible(GROUP_ID) if m.from_id == sim.api.bot_id]
    assert not any("1273014506850001" in t for t in group)
