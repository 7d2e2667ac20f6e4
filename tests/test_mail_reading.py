"""Issue M: what a mail from the DWH side says, read from the shapes real clients and
servers send (tests/mails.py). Pure code: no server here."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import mails
from ticketbot.domain.mail import (
    Kind,
    SheetRow,
    answer_lines,
    authenticated,
    batch_of_refs,
    propose,
    read_mail,
    trusted_sender,
)
from ticketbot.xlsx import RecapRow, read_dwh_answers, recap_workbook

MAX = 10 * 1024 * 1024


def read(raw: bytes) -> object:
    return read_mail(raw, len(raw), MAX)


def test_gmail_reply_threads_by_in_reply_to_and_drops_the_quoted_recap() -> None:
    mail = read_mail(raw := mails.gmail_reply("Sudah kami sinkronkan semua.\n#2 gagal: NIK ganda di DWH"),
                     len(raw), MAX)  # fmt: skip
    assert mail.kind == Kind.REPLY
    assert mail.sender == mails.ADMIN and mail.sender_name == "Admin DWH Pusat"
    assert batch_of_refs(mail, {mails.RECAP_ID: 1}) == 1
    assert mail.tag("12.73") == 1 and mail.tag("12.71") is None
    lines = answer_lines(mail.text)
    assert lines == ("Sudah kami sinkronkan semua.", "#2 gagal: NIK ganda di DWH")
    assert not any("1273014506850001" in line for line in lines)


def test_outlook_html_only_base64_is_read_as_text_and_found_by_the_tag() -> None:
    raw = mails.outlook_html_reply(
        "Selamat siang,<br>#1 <b>berhasil</b>, #2 belum terbaca&nbsp;di DWH"
    )
    mail = read_mail(raw, len(raw), MAX)
    assert mail.kind == Kind.REPLY and mail.refs == ()
    assert mail.tag("12.73") == 1
    assert answer_lines(mail.text) == ("Selamat siang,", "#1 berhasil, #2 belum terbaca di DWH")


def test_thunderbird_reply_stops_at_wrote_and_signature() -> None:
    raw = mails.thunderbird_reply("OK, semua selesai.")
    mail = read_mail(raw, len(raw), MAX)
    assert answer_lines(mail.text) == ("OK, semua selesai.",)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (mails.exchange_out_of_office(), Kind.AUTO),
        (mails.gmail_vacation(), Kind.AUTO),
        (mails.postfix_bounce(), Kind.BOUNCE),
        (mails.postfix_bounce("4.4.1", action="delayed"), Kind.DELAY),
        (mails.exchange_bounce(), Kind.BOUNCE),
    ],
    ids=["exchange-oof", "gmail-vacation", "postfix-5xx", "postfix-4xx", "exchange-ndr"],
)
def test_automatic_mail_is_told_apart_by_its_headers(raw: bytes, kind: Kind) -> None:
    mail = read_mail(raw, len(raw), MAX)
    assert mail.kind == kind
    # A delivery report names the recap it returns, whatever its own threading says.
    assert batch_of_refs(mail, {mails.RECAP_ID: 1}) == 1


def test_delivery_reports_name_the_refusing_address_and_code() -> None:
    postfix = read_mail(raw := mails.postfix_bounce(), len(raw), MAX)
    assert postfix.bounce is not None and postfix.bounce.permanent
    assert postfix.bounce.recipients == (mails.ADMIN,) and postfix.bounce.status == "5.1.1"
    exchange = read_mail(raw := mails.exchange_bounce(), len(raw), MAX)
    assert exchange.bounce is not None and exchange.bounce.status == "5.2.2"
    delayed = read_mail(raw := mails.postfix_bounce("4.4.1", action="delayed"), len(raw), MAX)
    assert delayed.bounce is not None and not delayed.bounce.permanent


def test_an_ordinary_reply_with_ok_in_it_is_not_automatic() -> None:
    raw = mails.gmail_reply("OK")
    assert read_mail(raw, len(raw), MAX).kind == Kind.REPLY


def test_trust_needs_the_listed_sender_and_our_servers_dmarc_pass() -> None:
    good = read_mail(raw := mails.gmail_reply("OK"), len(raw), MAX)
    assert trusted_sender(good, [mails.ADMIN], "")
    assert trusted_sender(good, [f"Admin <{mails.ADMIN.upper()}>"], "mx.example.go.id")
    assert not trusted_sender(good, ["other@example.go.id"], "")
    spoofed = read_mail(
        raw := mails.gmail_reply(
            "OK semua sudah", auth="mx.example.go.id; spf=fail; dkim=none; dmarc=fail"
            " header.from=example.go.id",
        ), len(raw), MAX,
    )  # fmt: skip
    assert trusted_sender(spoofed, [mails.ADMIN], "")  # without authserv_id: the list only
    assert not trusted_sender(spoofed, [mails.ADMIN], "mx.example.go.id")
    # A header another server (or the sender) wrote lower down does not count; only the
    # topmost of our own server does.
    forged_below = good.auth_results
    assert not authenticated(
        type(good)(**{**good.__dict__, "auth_results": (
            "mx.example.go.id; dmarc=fail", *forged_below)}), "mx.example.go.id",
    )  # fmt: skip
    # DKIM pass aligned with the From domain is enough; a stranger's signature is not.
    aligned = type(good)(**{**good.__dict__, "auth_results": (
        "mx.example.go.id; dkim=pass header.d=example.go.id; dmarc=none",)})  # fmt: skip
    foreign = type(good)(**{**good.__dict__, "auth_results": (
        "mx.example.go.id; dkim=pass header.d=evil.example; dmarc=none",)})  # fmt: skip
    assert authenticated(aligned, "mx.example.go.id")
    assert not authenticated(foreign, "mx.example.go.id")


def test_full_numbers_and_phones_in_an_answer_are_masked() -> None:
    raw = mails.gmail_reply("#2 gagal NIK 1273 0145 0685 0002 hubungi 0812-3456-7890")
    mail = read_mail(raw, len(raw), MAX)
    [line] = answer_lines(mail.text)
    assert "1273014506850002" not in line.replace(" ", "") and "127301******0002" in line
    assert "3456" not in line and "0812****7890" in line
    proposal = propose([line], [], [1, 2])
    assert proposal.failed == ((2, "gagal NIK 127301******0002 hubungi 0812****7890"),)


def test_oversize_mail_is_recorded_not_read() -> None:
    raw = mails.gmail_reply("OK")
    assert read_mail(raw[:200], 11 * 1024 * 1024, MAX).kind == Kind.OVERSIZE


def test_malformed_mime_never_raises_and_counts_the_broken_part() -> None:
    raw = (b"From: Admin <admin-dwh@example.go.id>\r\nSubject: x [SINKRON 12.73 B1]\r\n"
           b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n"
           b"Content-Type: text/plain; charset=no-such-charset\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64\r\n--b\r\n"
           b"Content-Type: text/plain\r\n\r\nsudah\r\n")  # no closing boundary  # fmt: skip
    mail = read_mail(raw, len(raw), MAX)
    assert mail.kind == Kind.REPLY and mail.tag("12.73") == 1
    assert "sudah" in mail.text


@given(st.binary(max_size=3000))
def test_any_bytes_read_without_raising(raw: bytes) -> None:
    mail = read_mail(raw, len(raw), MAX)
    answer_lines(mail.text)


@given(st.text(max_size=400))
def test_answer_lines_never_show_a_full_number(text: str) -> None:
    body = f"{text}\n1273014506850001\n+62 812 3456 7890"
    from ticketbot.domain.privacy import carries_full_number

    assert not any(carries_full_number(line) for line in answer_lines(body, limit=50))


# -- what an answer proposes ---------------------------------------------------------------


def test_words_propose_confirmations_and_failures_within_the_batch() -> None:
    batch = [1, 2, 3]
    assert propose(["Sudah disinkronkan semua."], [], batch).confirm == (1, 2, 3)
    mixed = propose(["Sudah kami proses.", "#2 gagal: NIK ganda", "#9 gagal"], [], batch)
    assert mixed.confirm == (1, 3) and mixed.failed == ((2, "gagal: NIK ganda"),)
    only_failure = propose(["#3 belum terbaca di DWH"], [], batch)
    assert only_failure.confirm == () and only_failure.failed == ((3, "belum terbaca di DWH"),)
    assert propose(["Terima kasih, akan kami cek."], [], batch).empty
    assert propose(["#1 berhasil"], [], batch).confirm == (1,)


def test_a_returned_workbook_proposes_row_by_row() -> None:
    rows = [SheetRow(1, "Sudah", ""), SheetRow(2, "Gagal", "NIK tidak ditemukan di DWH"),
            SheetRow(3, "", "")]  # fmt: skip
    proposal = propose([], rows, [1, 2, 3])
    assert proposal.confirm == (1,) and proposal.failed == ((2, "NIK tidak ditemukan di DWH"),)
    assert propose([], [SheetRow(1, "sudah", ""), SheetRow(2, "SUDAH", "")], [1, 2]).confirm == (
        1,
        2,
    )


def _row(ticket_id: int) -> RecapRow:
    return RecapRow(ticket_id, f"127301450685{ticket_id:04d}", "1273010101090001", "Siti", "BPJS",
                    "", None, "", None, "", None, "")  # fmt: skip


def test_the_recap_workbook_read_back_with_its_dwh_columns_filled() -> None:
    from io import BytesIO

    from openpyxl import load_workbook

    data = recap_workbook([_row(1), _row(2)], "Rekap")
    assert read_dwh_answers(data) == [SheetRow(1, "", ""), SheetRow(2, "", "")]
    wb = load_workbook(BytesIO(data))
    sheet = wb.active
    assert sheet is not None
    headers = [c.value for c in sheet[1]]
    status, note = headers.index("Status DWH") + 1, headers.index("Catatan DWH") + 1
    sheet.cell(row=2, column=status, value="Sudah")
    sheet.cell(row=3, column=status, value="Gagal")
    sheet.cell(row=3, column=note, value="NIK ganda")
    out = BytesIO()
    wb.save(out)
    assert read_dwh_answers(out.getvalue()) == [
        SheetRow(1, "Sudah", ""),
        SheetRow(2, "Gagal", "NIK ganda"),
    ]
    assert read_dwh_answers(b"PK\x03\x04 not a workbook") == []


def test_a_mail_carries_its_workbook() -> None:
    data = recap_workbook([_row(1)], "Rekap")
    mail = read_mail(raw := mails.with_xlsx("Terlampir.", data), len(raw), MAX)
    assert mail.xlsx == data


def test_forward_of_a_recap_is_found_by_its_tag_only() -> None:
    message = EmailMessage()
    message["From"] = f"Admin <{mails.ADMIN}>"
    message["Subject"] = "Fwd: Rekap [SINKRON 12.73 B7]"
    message.set_content("---------- Forwarded message ---------\nDari: Disdukcapil\nisi")
    mail = read_mail(raw := message.as_bytes(), len(raw), MAX)
    assert mail.tag("12.73") == 7 and answer_lines(mail.text) == ()
