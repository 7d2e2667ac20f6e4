"""Erasure that erases, and no side door (issue P): purge, the inbox, reasons, photo copies,
messages carrying a NIK, files the CLI writes, a forged group move, names in the logs.

Everything runs through the real app against the strict Bot API emulator, or the CLI as an
operator runs it; the purge test reads every text column of every table and the file's
bytes."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sqlite3
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import VALID_FORM, always_open_config, form
from ticketbot.cli import main
from ticketbot.config import DEFAULT_LEMBAGA
from ticketbot.domain.privacy import carries_phone, redact_log
from ticketbot.domain.validation import LembagaCatalog, validate_form
from ticketbot.emulator.simulation import GROUP_ID, KASI, STAF, STRANGER, Simulation
from ticketbot.logs import setup_logging

NIK = "1273014506850001"
NAME = "Zulaikha Siregar"
KETERANGAN = "login Mobile JKN ditolak sejak Senin pagi"
TYPED_REASON = "pemohon Zulaikha minta dihubungi lewat loket dua"


def every_text(path: Path) -> str:
    """Every text value of every column of every table, as one string."""
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        values: list[str] = []
        for table in tables:
            columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
            for column in columns:
                values += [
                    str(r[0])
                    for r in db.execute(f'SELECT "{column}" FROM "{table}"')
                    if isinstance(r[0], str | bytes)
                ]
        return "\n".join(values)
    finally:
        db.close()


def file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


async def test_purge_leaves_nothing_of_the_resident_in_any_table_or_byte(
    tmp_path: Path,
) -> None:
    async with Simulation(tmp_path, settings={"privacy__retention_days": 30}) as sim:
        sim.clock.now -= timedelta(days=45)
        await sim.say(STAF, f"{form(keterangan=KETERANGAN)}\nNama: {NAME}", photo=True)
        card = sim.last_bot_message().message_id
        ticket = await sim.office.repo.tickets.get_ticket(1)
        assert ticket is not None and ticket.nama == NAME and ticket.photo_file_id
        photo = ticket.photo_file_id
        # The Kasi rejects with a typed reason (a reply to the card), the desk informs.
        await sim.tap(KASI, card, "Tolak")
        await sim.say(KASI, TYPED_REASON, reply_to=card)
        await sim.tap(STAF, card, "Diinformasikan")
        closed = await sim.office.repo.tickets.get_ticket(1)
        assert closed is not None and closed.state == "closed_rejected"
        database = sim.services.config.database_path
        before = every_text(database)
        assert NAME in before and TYPED_REASON in before and KETERANGAN in before
        sim.clock.now += timedelta(days=45)
        await sim.run_jobs()  # the daily purge
        purged = await sim.office.repo.tickets.get_ticket(1)
        assert purged is not None and purged.purged_at is not None
        await sim.stop_bot()
        text = every_text(database)
        raw = file_bytes(database)

    for needle in (NAME, "Zulaikha", KETERANGAN, TYPED_REASON, NIK, "81234567890", photo):
        assert needle not in text, needle
        assert needle.encode() not in raw, needle
    # What stays: the NIK masked, the steps, and that a typed reason was erased.
    assert "127301******0001" in text
    assert "(alasan diketik; dihapus oleh retensi)" in text


async def test_the_audit_log_stays_append_only_for_tickets_not_purged(tmp_path: Path) -> None:
    async with Simulation(tmp_path) as sim:
        await sim.say(STAF, VALID_FORM)
        db = sim.services.repo.db
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            async with db.transaction() as conn:
                await conn.execute("UPDATE events SET detail = 'x' WHERE ticket_id = 1")


@pytest.mark.parametrize(
    "reason", ["HP 0812 3456 7890 a.n. Zulaikha", "hubungi +62 812-3456-7890",
               "telp 0812\u200b3456\u200b7890", "WA ٠٨١٢٣٤٥٦٧٨٩٠"],
)  # fmt: skip
async def test_a_reason_with_a_phone_is_refused_and_deleted(sim: Simulation, reason: str) -> None:
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    await sim.tap(KASI, card, "Tolak")
    reply = await sim.say(KASI, reason, reply_to=card)
    assert sim.message(reply).deleted
    assert "nomor telepon" in (sim.last_bot_message().plain or "")
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.state == "new"
    assert reason not in every_text(sim.services.config.database_path)
    # The menu stays open: a reason without the number is taken.
    await sim.say(KASI, "Data tidak sesuai SIAK", reply_to=card)
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.state == "rejected"


def test_phones_in_free_text_are_refused_and_other_numbers_are_not() -> None:
    for text in ("0812 3456 7890", "+62 812-3456-7890", "62812345678901", "(0631) 21234"):
        assert carries_phone(f"hubungi {text} ya"), text
    for text in ("RT 003 RW 005", "tanggal 12-03-2025", "antrian 12345678", "tahun 2024"):
        assert not carries_phone(text), text
    result = validate_form(
        form(keterangan="hubungi 0812 1111 2222"), LembagaCatalog(DEFAULT_LEMBAGA)
    )
    assert result.form is None
    assert any("nomor telepon" in e for e in result.errors)


@pytest.mark.parametrize("sim", [{"privacy__photo_minutes": 0.2}], indirect=True)
async def test_a_photo_copy_is_deleted_after_photo_minutes_even_across_a_restart(
    sim: Simulation,
) -> None:
    await sim.say(STAF, VALID_FORM, photo=True)
    card = sim.last_bot_message().message_id
    await sim.say(KASI, "/start", chat_id=KASI.user_id)
    await sim.tap(KASI, card, "Foto")
    [copy] = [m for m in sim.api.messages.values()
              if m.chat_id == KASI.user_id and m.photo_file_id]  # fmt: skip
    assert not copy.deleted
    # Stopped before it is due (12 s; the simulation waits for what is due within 10 s):
    # the deletion waits in the durable outbox.
    await sim.stop_bot()
    pending = sqlite3.connect(sim.services.config.database_path).execute(
        "SELECT count(*) FROM outbox WHERE kind = 'delete' AND status = 'pending'"
        " AND chat_id = ?", (KASI.user_id,),
    ).fetchone()  # fmt: skip
    assert pending == (1,)
    await sim.start_bot()
    await sim.api.wait_until(lambda: copy.deleted)
    calls = [c for c in sim.api.calls_of("deleteMessage")
             if c.params["chat_id"] == str(KASI.user_id)]  # fmt: skip
    assert [c.params["message_id"] for c in calls] == [str(copy.message_id)]


async def test_every_message_carrying_a_nik_goes_whoever_sends_it(sim: Simulation) -> None:
    # A form from someone without a role: not a ticket, but deleted.
    stranger = await sim.say(STRANGER, VALID_FORM)
    # A chat message with a NIK from a member without a role.
    chatter = await sim.say(STRANGER, f"tolong cek {NIK} ya")
    # A KK scan sent as a file with the /tiket caption: an intake like a photo, deleted.
    update_id, document = await sim.api.post(STAF.user_id, GROUP_ID, form(lembaga="Bank"),
                                             document="kk.pdf")  # fmt: skip
    await sim._handled(update_id)
    # An album: the first photo carries the form, the second the KK's other side.
    update_id, first = await sim.api.post(STAF.user_id, GROUP_ID, VALID_FORM, photo=True,
                                          album="album-1")  # fmt: skip
    second_id, second = await sim.api.post(STAF.user_id, GROUP_ID, "", photo=True,
                                           album="album-1")  # fmt: skip
    await sim._handled(update_id)
    await sim._handled(second_id)
    # An ordinary photo of the office, in no album with an intake: it stays.
    kept_id, kept = await sim.api.post(STAF.user_id, GROUP_ID, "", photo=True, album="other")
    await sim._handled(kept_id)
    for message_id in (stranger, chatter, document, first, second):
        assert sim.message(message_id).deleted, message_id
    assert not sim.message(kept).deleted
    assert await sim.office.repo.tickets.count_tickets() == 2  # the file's and the album's
    scan = await sim.office.repo.tickets.get_ticket(1)
    assert scan is not None and scan.scan_is_document and scan.lembaga == "Bank"
    # "Foto" sends the file back as a file, privately and protected.
    await sim.say(KASI, "/start", chat_id=KASI.user_id)
    assert scan.card_message_id is not None
    await sim.tap(KASI, scan.card_message_id, "Foto")
    [sent] = [
        c for c in sim.api.calls_of("sendDocument") if c.params["chat_id"] == str(KASI.user_id)
    ]
    assert sent.params["document"] == scan.photo_file_id and sent.params["protect_content"]


async def test_updates_from_chats_and_people_the_bot_ignores_are_not_kept(
    sim: Simulation,
) -> None:
    other_group = -1005550000001
    sim.api.add_group(other_group, "Grup lain")
    elsewhere, _ = await sim.api.post(STAF.user_id, other_group, f"Nama: {NAME}")
    await sim._handled(elsewhere)
    stranger_dm, _ = await sim.api.post(STRANGER.user_id, STRANGER.user_id,
                                        f"NIK saya {NIK}, nama {NAME}")  # fmt: skip
    await sim._handled(stranger_dm)
    staff_dm, _ = await sim.api.post(KASI.user_id, KASI.user_id, "/id")
    await sim._handled(staff_dm)
    db = sqlite3.connect(sim.services.config.database_path)
    rows = dict(db.execute("SELECT update_id, payload FROM inbox"))
    assert rows[stranger_dm] == rows[staff_dm] == rows[elsewhere] == ""  # ids only
    assert NAME not in every_text(sim.services.config.database_path)


async def test_a_migration_named_from_another_chat_moves_nothing(sim: Simulation) -> None:
    await sim.say(STAF, VALID_FORM)
    forged = -1007770000001
    # A service message as a modified client would forge it, in a chat of its own.
    sim.api.add_group(forged, "palsu")
    update_id = await sim.api._push({"message": {
        "message_id": 1, "from": sim.api._users[STRANGER.user_id],
        "chat": {"id": forged, "type": "supergroup", "title": "palsu"},
        "date": 0, "migrate_from_chat_id": GROUP_ID,
    }})  # fmt: skip
    await sim._handled(update_id)
    update_id = await sim.api._push({"message": {
        "message_id": 2, "from": sim.api._users[STRANGER.user_id],
        "chat": {"id": forged, "type": "group", "title": "palsu"},
        "date": 0, "migrate_to_chat_id": GROUP_ID - 1,
    }})  # fmt: skip
    await sim._handled(update_id)
    assert sim.office.group_id == GROUP_ID
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.chat_id == GROUP_ID
    assert await sim.services.repo.db.setting("group_id") is None
    # Taps in the real group still work.
    card = sim.last_bot_message().message_id
    await sim.tap(KASI, card, "Verifikasi")
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.state == "verified"
    assert all(
        m.chat_id != forged for m in sim.api.messages.values() if m.from_id == sim.api.bot_id
    )


def test_names_and_form_text_are_redacted_from_debug_logs() -> None:
    stream = io.StringIO()
    handler = setup_logging(logging.DEBUG, stream)
    try:
        logging.getLogger("telegram.ext").debug(
            "update %r", {"message": {"text": f"/tiket\nNIK: {NIK}\nNama: {NAME}\n"
                                              f"Keterangan: {KETERANGAN}\nHP: 0812 3456 7890",
                                      "from": {"first_name": "Zulaikha", "last_name": "S"}}},
        )  # fmt: skip
        logging.getLogger("aiosqlite").debug("executing INSERT (%r)", NAME)
    finally:
        logging.getLogger().removeHandler(handler)
    out = stream.getvalue()
    assert "update" in out
    for needle in ("Zulaikha", KETERANGAN, NIK, "3456 7890"):
        assert needle not in out, needle
    assert "Nama: <…>" in redact_log(f"Nama: {NAME}")


# -- files the CLI writes ------------------------------------------------------------------


@pytest.fixture
def office(tmp_path: Path) -> Path:
    config = always_open_config(tmp_path / "config.toml", "http://127.0.0.1:9/bot", 9)

    async def seed() -> None:
        from ticketbot.store import Stores

        repo = await Stores.open(tmp_path / "office.sqlite3")
        await repo.close()

    asyncio.run(seed())
    return config


def test_report_and_export_never_write_through_a_planted_link(
    office: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "passwd"
    victim.write_text("root:x:0:0\n")
    victim.chmod(0o644)
    out = tmp_path / "laporan"
    out.mkdir()
    (out / "laporan-2026-10.xlsx").symlink_to(victim)
    assert main(["report", "--config", str(office), "--month", "2026-10",
                 "--out", str(out)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "symbolic link" in err and err.count("\n") == 1
    assert victim.read_text() == "root:x:0:0\n" and victim.stat().st_mode & 0o777 == 0o644
    assert not (out / "laporan-2026-10.png").exists()
    # A dangling link where the export would go: refused, nothing created behind it.
    dangling = tmp_path / "ekspor.txt"
    dangling.symlink_to(tmp_path / "nowhere.txt")
    assert main(["export", "--config", str(office), "--nik", NIK, "--out", str(dangling)]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert not (tmp_path / "nowhere.txt").exists()
    # A backup too.
    assert main(["backup", "--config", str(office), str(dangling)]) == 2
    assert not (tmp_path / "nowhere.txt").exists()


def test_report_never_overwrites_and_refuses_bad_months_and_directories(
    office: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "laporan"
    assert main(["report", "--config", str(office), "--month", "2026-10",
                 "--out", str(out)]) == 0  # fmt: skip
    capsys.readouterr()
    first = (out / "laporan-2026-10.txt").read_bytes()
    assert main(["report", "--config", str(office), "--month", "2026-10",
                 "--out", str(out)]) == 2  # fmt: skip
    assert "already exists" in capsys.readouterr().err
    assert (out / "laporan-2026-10.txt").read_bytes() == first
    for month, problem in (("9999-12", "has not begun"), ("2026-13", "not a month")):
        assert main(["report", "--config", str(office), "--month", month,
                     "--out", str(tmp_path / "x")]) == 2  # fmt: skip
        err = capsys.readouterr().err
        assert problem in err and err.count("\n") == 1 and "Traceback" not in err
    assert main(["report", "--config", str(office), "--month", "2026-10",
                 "--out", str(tmp_path / "no" / "such" / "dir")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "does not exist" in err and err.count("\n") == 1


def test_export_reads_the_nik_from_standard_input(
    office: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{NIK}\n"))
    out = tmp_path / "ekspor.txt"
    assert main(["export", "--config", str(office), "--nik", "-", "--out", str(out)]) == 0
    assert "127301******0001" in capsys.readouterr().out
    assert out.stat().st_mode & 0o777 == 0o600 and NIK in out.read_text()
    monkeypatch.setattr(sys, "stdin", io.StringIO("12345\n"))
    assert main(["export", "--config", str(office), "--nik", "-",
                 "--out", str(tmp_path / "lain.txt")]) == 2  # fmt: skip
    assert "--nik: a NIK is 16 digits" in capsys.readouterr().err
    assert not os.path.lexists(tmp_path / "lain.txt")


@pytest.mark.parametrize("verb", ["demo", "backup", "report", "export"])
def test_a_missing_or_unwritable_output_directory_is_one_line(
    office: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], verb: str
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    # Root writes into a locked directory anyway: there only the missing one can be shown.
    places = [tmp_path / "no" / "such"] + ([locked / "inside"] if os.geteuid() else [])
    for where in places:
        argv = {
            "demo": ["demo", "--out", str(where)],
            "backup": ["backup", "--config", str(office), str(where)],
            "report": ["report", "--config", str(office), "--month", "2026-10",
                       "--out", str(where)],
            "export": ["export", "--config", str(office), "--nik", NIK, "--out", str(where)],
        }[verb]  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "does not exist" in err or "not writable" in err, err
