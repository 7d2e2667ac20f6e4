"""Pure validation of the intake form (SPEC §3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import form
from ticketbot.config import DEFAULT_LEMBAGA
from ticketbot.domain.privacy import mask_number, mask_phone, redact_numbers, redact_personal
from ticketbot.domain.regions import KAB_KOTA, PROVINCES, RETIRED
from ticketbot.domain.validation import (
    LembagaCatalog,
    check_number,
    check_phone,
    normalise_key,
    split_form,
    validate_form,
)

CATALOG = LembagaCatalog(DEFAULT_LEMBAGA)


@pytest.mark.parametrize(
    "raw",
    ["1273014506850001", "1273 0145 0685 0001", "1273.0145.0685.0001", "1273-014506-850001",
     # Unicode digits are digits (SPEC §3): full-width from a phone keyboard, Arabic-Indic.
     "１２７３０１４５０６８５０００１", "١٢٧٣٠١٤٥٠٦٨٥٠٠٠١", "１２７３ ０１４５ ０６８５ ０００１"],
)  # fmt: skip
def test_separators_are_removed(raw: str) -> None:
    assert check_number(raw, kind="nik").value == "1273014506850001"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("127301450685000", "16 digit (terbaca 15"),
        ("12730145068500011", "16 digit (terbaca 17"),
        ("12730145068500O1", "hanya boleh berisi angka"),
        ("1273010013850001", "bulan"),  # month 13
        ("1273010000850001", "bulan"),  # month 00
        ("1273013201850001", "hari"),  # day 32
        ("1273010001850001", "hari"),  # day 00
        ("1273017201850001", "hari"),  # day 72 (women's 41–71 range ends at 71)
        ("1273013202850001", "hari"),  # 32 is neither a man's day nor a woman's
        ("1273013102850001", "tidak ada di kalender"),  # 31 February
        ("1273012902010001", "tidak ada di kalender"),  # 29 Feb 1901 and 2001
        ("1273016902010001", "tidak ada di kalender"),  # the same for a woman (+40)
        ("1273014506850000", "0000"),
        ("", "kosong"),
    ],
)
def test_nik_rejections(raw: str, fragment: str) -> None:
    result = check_number(raw, kind="nik")
    assert result.value is None
    assert any(fragment in e for e in result.errors), result.errors


@pytest.mark.parametrize(
    "raw",
    [
        "1273012902000001",  # 29 Feb 2000 is a leap day
        "1273016902040001",  # a woman born 29 Feb 2004 (1904 and 2004 leap)
        "1273017112990001",  # 31 Dec 1999, woman
        "1273010101000001",
    ],
)
def test_nik_edge_dates_accepted(raw: str) -> None:
    assert check_number(raw, kind="nik").value == raw


def test_kk_has_no_plus_forty_rule() -> None:
    assert check_number("1273014506850001", kind="kk").value is None
    assert check_number("1273010506850001", kind="kk").value == "1273010506850001"


def test_unknown_region_is_a_warning_not_a_rejection() -> None:
    outside = check_number("3174014506850001", kind="nik")  # Jakarta Selatan: normal
    assert outside.value and outside.warnings == ()
    unknown = check_number("9973014506850001", kind="nik")
    assert unknown.value == "9973014506850001"
    assert unknown.errors == () and "provinsi 99" in unknown.warnings[0]
    unknown_city = check_number("1299014506850001", kind="nik")
    assert unknown_city.value and "12.99" in unknown_city.warnings[0]
    # Outside Sumatera Utara too, by the whole Kepmendagri 2025 table.
    assert check_number("3199014506850001", kind="nik").warnings != ()
    assert check_number("6571014506850001", kind="nik").warnings == ()  # Kota Tarakan


def test_the_kab_kota_table_is_kepmendagri_2025_with_the_retired_papua_codes() -> None:
    assert len(KAB_KOTA) == 514 and KAB_KOTA["12.73"] == "Kota Sibolga"
    assert {code[:2] for code in KAB_KOTA} == set(PROVINCES)
    # 26 codes retired by the 2022 Papua split, each now a kab/kota of a new province.
    assert len(RETIRED) == 26 and not set(RETIRED) & set(KAB_KOTA)
    assert {old[:2] for old in RETIRED} == {"91", "92"}
    assert {new[:2] for new in RETIRED.values()} == {"93", "94", "95", "96"}
    assert all(new in KAB_KOTA for new in RETIRED.values())
    # A NIK from before the split is valid; the desk is told the region's code now.
    merauke = check_number("9101014506850001", kind="nik")
    assert merauke.value == "9101014506850001" and merauke.errors == ()
    assert merauke.warnings == (
        "NIK: kode kabupaten/kota 91.01 kode lama, sekarang 93.01 (Kabupaten Merauke);"
        " NIK tetap berlaku.",
    )


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0812-3456-7890", "+6281234567890"),
        ("+62 812 3456 7890", "+6281234567890"),
        ("62 812 3456 7890", "+6281234567890"),
        ("6281234567890", "+6281234567890"),
        ("(0812) 3456.7890", "+6281234567890"),
        ("0857 1234 5678", "+6285712345678"),
    ],
)
def test_mobile_numbers_become_e164(raw: str, e164: str) -> None:
    assert check_phone(raw) == (e164, None)


def test_full_width_digits_are_read_in_a_whole_form() -> None:
    text = form(nik="１２７３０１４５０６８５０００１", kk="１２７３０１０１０１０９０００３",
                hp="０８１２－３４５６－７８９０")  # fmt: skip
    result = validate_form(text.removeprefix("/tiket\n"), CATALOG)
    assert result.errors == () and result.form is not None
    assert (result.form.nik, result.form.kk, result.form.phone) == (
        "1273014506850001", "1273010101090003", "+6281234567890",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("0631 21799", "seluler"),  # Sibolga landline
        ("021 1234 5678", "seluler"),  # Jakarta landline
        ("+1 202 555 0143", "bukan nomor Indonesia"),
        ("0812", "bukan nomor Indonesia"),
        ("nomor saya", "tidak terbaca"),
        ("0812 3456 789O", "hanya boleh berisi angka"),  # letter O for a zero: never guessed
        ("0812-3456-78l0", "hanya boleh berisi angka"),
    ],
)
def test_phone_rejections(raw: str, fragment: str) -> None:
    value, error = check_phone(raw)
    assert value is None and error and fragment in error


@pytest.mark.parametrize(
    ("key", "canonical"),
    [("No KK", "kk"), ("Nomor KK", "kk"), ("No. HP", "hp"), ("WA", "hp"), ("nik", "nik"),
     ("Lembaga Pengguna", "lembaga"), ("Ket", "keterangan"), ("NO.  HP/WA", "hp")],
)  # fmt: skip
def test_key_variants(key: str, canonical: str) -> None:
    fields, errors = split_form(f"{key}: x")
    assert errors == [] and list(fields) == [canonical], normalise_key(key)


def test_whole_form_lists_every_problem() -> None:
    result = validate_form("NIK: 12\nKK: 1273010101090000\nHP: 0631 21799\nLembga: BPJS", CATALOG)
    assert result.form is None
    text = " ".join(result.errors)
    for fragment in ("16 digit", "0000", "seluler", "Lembga", "Lembaga wajib"):
        assert fragment in text


def test_lembaga_aliases_are_normalised_and_free_text_kept() -> None:
    base = "NIK: 1273014506850001\nKK: 1273010101090003\nHP: 081234567890\nLembaga: "
    assert validate_form(base + "bpjs-KES", CATALOG).form.lembaga == "BPJS Kesehatan"  # type: ignore[union-attr]
    free = validate_form(base + "  Bank   Sumut  ", CATALOG).form
    assert free is not None and free.lembaga == "Bank Sumut" and free.lembaga_key == "bank sumut"
    assert validate_form(base + "!!!", CATALOG).errors


def test_length_limits() -> None:
    base = "NIK: 1273014506850001\nKK: 1273010101090003\nHP: 081234567890\nLembaga: BPJS\n"
    assert (
        "Keterangan terlalu panjang"
        in validate_form(base + "Ket: " + "x" * 501, CATALOG).errors[0]
    )
    assert (
        "Lembaga terlalu panjang"
        in validate_form(base.replace("BPJS", "B" * 101), CATALOG).errors[0]
    )


def test_keterangan_may_wrap_lines() -> None:
    text = (
        "NIK: 1273014506850001\nKK: 1273010101090003\nHP: 081234567890\nLembaga: BPJS\n"
        "Keterangan: baris satu\nbaris dua"
    )
    result = validate_form(text, CATALOG)
    assert result.form is not None and result.form.keterangan == "baris satu\nbaris dua"


def test_masks() -> None:
    assert mask_number("1273014506850001") == "127301******0001"
    assert mask_phone("+6281234567890") == "0812****7890"
    assert redact_numbers("nik 1273014506850001 ok 12345") == "nik 127301******0001 ok 12345"


@given(st.text("0123456789", min_size=7, max_size=12))
def test_a_phone_is_masked_alike_on_cards_and_in_mail(rest: str) -> None:
    """At least four digits hidden, however short; a phone in a mail (any spelling) shows as
    the card shows the pemohon's."""
    national = "08" + rest
    masked = mask_phone("+62" + national[1:])
    assert masked.startswith(national[:4]) and masked.count("*") >= 4
    assert len(masked) == len(national) and national.endswith(masked.lstrip("0123456789*"))
    spaced = f"+62 {national[1:4]}-{national[4:8]}-{national[8:]}"
    for spelling in (national, "62" + national[1:], spaced):
        assert redact_personal(f"hubungi {spelling} ya") == f"hubungi {masked} ya"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    result = validate_form(text, CATALOG)
    assert (result.form is None) == bool(result.errors)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789 .-", max_size=40), st.sampled_from(["nik", "kk"]))
def test_numbers_accepted_are_sixteen_digits(raw: str, kind: str) -> None:
    result = check_number(raw, kind=kind)
    if result.value is not None:
        assert len(result.value) == 16 and result.value.isdigit() and not result.errors
    else:
        assert result.errors


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_phone_never_raises(raw: str) -> None:
    value, error = check_phone(raw)
    assert (value is None) != (error is None)
    if value:
        assert value.startswith("+628")
