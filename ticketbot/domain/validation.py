"""Validation of the intake form: NIK, KK, phone, lembaga (SPEC §3). Pure code.

Every check returns Indonesian messages meant for the desk officer; nothing here raises on
bad input, whatever the text.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from ticketbot.domain.privacy import (
    ascii_digits,
    carries_full_number,
    carries_phone,
    clean_text,
    redact_numbers,
    strip_separators,
    utf16_len,
)
from ticketbot.domain.regions import KAB_KOTA, PROVINCES, RETIRED, known_regency

# In UTF-16 units, as Telegram counts them.
LIMITS = {
    "nik": 40,  # raw, before separators are removed
    "kk": 40,
    "hp": 30,
    "lembaga": 100,
    "nama": 100,
    "keterangan": 500,
    "sumber": 20,
}
LABELS = {
    "nik": "NIK",
    "kk": "Nomor KK",
    "hp": "Nomor HP/WA",
    "lembaga": "Lembaga",
    "nama": "Nama",
    "keterangan": "Keterangan",
    "sumber": "Sumber",
}
REQUIRED = ("nik", "kk", "lembaga", "hp")
FREE_TEXT = ("nama", "lembaga", "keterangan")  # never a full NIK/KK nor a phone (SPEC §3)

# Key variants staff actually type; matched after normalise_key().
KEY_ALIASES: dict[str, str] = {
    "nik": "nik",
    "kk": "kk",
    "kartu keluarga": "kk",
    "lembaga": "lembaga",
    "lembaga pengguna": "lembaga",
    "instansi": "lembaga",
    "hp": "hp",
    "wa": "hp",
    "hp/wa": "hp",
    "hp / wa": "hp",
    "wa/hp": "hp",
    "whatsapp": "hp",
    "telp": "hp",
    "telepon": "hp",
    "ponsel": "hp",
    "keterangan": "keterangan",
    "ket": "keterangan",
    "masalah": "keterangan",
    "nama": "nama",
    "nama pemohon": "nama",
    "sumber": "sumber",
    "kanal": "sumber",
}

# How the request came (SPEC §3 `Sumber:`), and the words people use for each.
CHANNELS = ("loket", "wa", "telepon", "email", "lainnya")
CHANNEL_ALIASES = {
    "whatsapp": "wa", "telp": "telepon", "telpon": "telepon", "telfon": "telepon",
    "e-mail": "email", "surel": "email", "lain": "lainnya", "lain-lain": "lainnya",
}  # fmt: skip

# The national Halo Dukcapil channel's one line: #NIK#Nama#KK#HP#Keluhan.
HALO_DUKCAPIL = re.compile(r"^\s*#([^#]*)#([^#]*)#([^#]*)#([^#]*)#(.*)$")
HALO_FIELDS = ("nik", "nama", "kk", "hp", "keterangan")


@dataclass(frozen=True)
class NumberCheck:
    value: str | None  # the 16 digits when acceptable
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class TicketForm:
    """A valid intake, normalised for storage."""

    nik: str
    kk: str
    lembaga: str
    lembaga_key: str
    phone: str  # E.164
    nama: str | None
    keterangan: str
    sumber: str = "loket"  # how the request came (CHANNELS)


@dataclass(frozen=True)
class FormResult:
    form: TicketForm | None
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.form is not None


@dataclass(frozen=True)
class LembagaCatalog:
    """Known institutions: canonical name -> aliases. Free text is still accepted."""

    names: Mapping[str, Iterable[str]] = field(default_factory=dict)

    def normalise(self, text: str) -> tuple[str, str]:
        """Return (display name, comparison key)."""
        cleaned = " ".join(text.split())
        key = lembaga_key(cleaned)
        for canonical, aliases in self.names.items():
            if key == lembaga_key(canonical) or key in {lembaga_key(a) for a in aliases}:
                return canonical, lembaga_key(canonical)
        return cleaned, key

    def named_in(self, text: str) -> str | None:
        """The known institution a free text names (by its name or an alias), if one."""
        words = f" {lembaga_key(text)} "
        for canonical, aliases in self.names.items():
            for name in (canonical, *aliases):
                if f" {lembaga_key(name)} " in words:
                    return canonical
        return None


def claimed_twice(names: Mapping[str, Iterable[str]]) -> list[tuple[str, str, str]]:
    """(alias, first name, second name) for every alias (or name) two institutions claim:
    an intake would go to whichever comes first, silently."""
    owner: dict[str, str] = {}
    clashes: list[tuple[str, str, str]] = []
    for canonical, aliases in names.items():
        for word in {lembaga_key(canonical), *(lembaga_key(a) for a in aliases)}:
            first = owner.setdefault(word, canonical)
            if first != canonical:
                clashes.append((word, first, canonical))
    return clashes


def lembaga_key(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", folded).split())


def normalise_key(key: str) -> str:
    k = unicodedata.normalize("NFKC", key).casefold().replace(".", " ")
    k = " ".join(k.split())
    return re.sub(r"^(no|nomor|nomer|nmr)\s+", "", k)


def _date_possible(day: int, month: int, yy: int) -> bool:
    """True when DD-MM is a real date in 19YY or 20YY (two-digit years are ambiguous)."""
    if not 1 <= month <= 12:
        return False
    return any(day <= calendar.monthrange(century + yy, month)[1] for century in (1900, 2000))


def check_number(raw: str, *, kind: str) -> NumberCheck:
    """Check a NIK (kind="nik") or KK number (kind="kk"): `PP KK CC DDMMYY SSSS`."""
    label = LABELS[kind]
    # Unicode digits (full-width ０-９ from a phone keyboard, Arabic-Indic…) are digits, as
    # the privacy rules read them (SPEC §3): normalised at the door.
    digits = ascii_digits(strip_separators(raw))
    if not digits:
        return NumberCheck(None, (f"{label} kosong.",))
    if not digits.isascii() or not digits.isdigit():
        return NumberCheck(None, (f"{label} hanya boleh berisi angka.",))
    if len(digits) != 16:
        return NumberCheck(None, (f"{label} harus 16 digit (terbaca {len(digits)} digit).",))
    errors: list[str] = []
    day, month, yy = int(digits[6:8]), int(digits[8:10]), int(digits[10:12])
    what = "tanggal lahir" if kind == "nik" else "tanggal terbit"
    if kind == "nik" and 41 <= day <= 71:
        day -= 40  # women: day of birth + 40
    if not 1 <= month <= 12:
        errors.append(f"{label}: bulan pada {what} (digit 9–10) harus 01–12.")
    elif not 1 <= day <= 31:
        allowed = "01–31 atau 41–71" if kind == "nik" else "01–31"
        errors.append(f"{label}: hari pada {what} (digit 7–8) harus {allowed}.")
    elif not _date_possible(day, month, yy):
        errors.append(f"{label}: {what} {day:02d}-{month:02d}-{yy:02d} tidak ada di kalender.")
    if digits[12:] == "0000":
        errors.append(f"{label}: nomor urut (4 digit terakhir) tidak boleh 0000.")
    if errors:
        return NumberCheck(None, tuple(errors))
    return NumberCheck(digits, (), tuple(region_warnings(digits, label)))


def region_warnings(digits: str, label: str) -> list[str]:
    """Unknown region codes are only a warning: NIKs outlive region splits and renumbering."""
    province, regency, district = digits[0:2], digits[2:4], digits[4:6]
    if province not in PROVINCES:
        return [f"{label}: kode provinsi {province} tidak dikenal; periksa kembali."]
    if f"{province}.{regency}" in RETIRED:
        # Issued before the 2022 Papua split: still valid, the region has a new code.
        now = RETIRED[f"{province}.{regency}"]
        return [f"{label}: kode kabupaten/kota {province}.{regency} kode lama, sekarang {now}"
                f" ({KAB_KOTA[now]}); NIK tetap berlaku."]  # fmt: skip
    if not known_regency(province, regency):
        return [f"{label}: kode kabupaten/kota {province}.{regency} tidak dikenal; periksa."]
    if district == "00":
        return [f"{label}: kode kecamatan 00 tidak lazim; periksa kembali."]
    return []


def check_phone(raw: str) -> tuple[str | None, str | None]:
    """An Indonesian mobile number in E.164, or an Indonesian error."""
    text = ascii_digits(raw.strip())
    compact = re.sub(r"[()]", "", strip_separators(text))
    if re.search(r"\d", compact) and not re.fullmatch(r"\+?[0-9]+", compact):
        # phonenumbers reads letters as a keypad would (O is 6): a typo would become a
        # wrong number, and the resident is never reached.
        return None, "Nomor HP/WA hanya boleh berisi angka (dan + di depan); periksa huruf O/l."
    if compact.startswith("62"):
        compact = "+" + compact  # "62 812…" without the plus
    try:
        number = phonenumbers.parse(compact, "ID")
    except NumberParseException:
        return None, "Nomor HP/WA tidak terbaca; tulis seperti 0812-3456-7890."
    if number.country_code != 62 or not phonenumbers.is_valid_number(number):
        return None, "Nomor HP/WA bukan nomor Indonesia yang sah; tulis seperti 0812-3456-7890."
    if phonenumbers.number_type(number) != PhoneNumberType.MOBILE:
        return None, "Nomor HP/WA harus nomor seluler (08…), bukan telepon rumah/kantor."
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def split_form(text: str) -> tuple[dict[str, str], list[str]]:
    """Parse `Key: value` lines into canonical fields; problems are Indonesian messages."""
    fields: dict[str, str] = {}
    errors: list[str] = []
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        halo = HALO_DUKCAPIL.match(line)
        if halo and not any(name in fields for name in HALO_FIELDS):
            # A Halo Dukcapil message forwarded as it is: its fields in their order.
            for name, value in zip(HALO_FIELDS, halo.groups(), strict=True):
                if value.strip():
                    fields[name] = value.strip()
            last = "keterangan"
            continue
        key, sep, value = line.partition(":")
        if not sep and last == "keterangan":
            # A long Keterangan wraps onto following lines.
            fields["keterangan"] += "\n" + line.strip()
            continue
        if not sep:
            errors.append(f"Baris tanpa tanda titik dua tidak dimengerti: “{_clip(line)}”.")
            continue
        canonical = KEY_ALIASES.get(normalise_key(key))
        if canonical is None:
            errors.append(f"Isian “{_clip(key)}” tidak dikenal.")
            continue
        if canonical in fields:
            errors.append(f"{LABELS[canonical]} ditulis lebih dari sekali.")
            continue
        fields[canonical] = value.strip()
        last = canonical
    return fields, errors


def _clip(text: str, limit: int = 30) -> str:
    text = redact_numbers(" ".join(text.split()))
    # Never echo a long digit run back: it may be a NIK typed on a bad line.
    text = re.sub(r"\d{7,}", lambda m: m.group()[:4] + "…", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validate_form(text: str, catalog: LembagaCatalog) -> FormResult:
    """Validate the whole intake text; every problem is reported at once."""
    cleaned = clean_text(text, multiline=True)
    fields, errors = split_form(cleaned)
    warnings: list[str] = []
    halo = any(HALO_DUKCAPIL.match(line) for line in cleaned.splitlines())
    if halo and not fields.get("lembaga"):
        # The one-line format has no lembaga: the Keluhan names it, or a Lembaga: line.
        named = catalog.named_in(fields.get("keterangan", ""))
        if named is None:
            errors.append(
                "Lembaga tidak disebut di keluhan; tambahkan baris “Lembaga: …” di bawahnya."
            )
        else:
            fields["lembaga"] = named
    for name in REQUIRED:
        if not fields.get(name) and not (halo and name == "lembaga"):
            errors.append(f"{LABELS[name]} wajib diisi.")
    for name, value in fields.items():
        if utf16_len(value) > LIMITS[name]:
            errors.append(f"{LABELS[name]} terlalu panjang (maksimal {LIMITS[name]} karakter).")
        elif name in FREE_TEXT and carries_full_number(value):
            errors.append(
                f"{LABELS[name]} tidak boleh memuat NIK/KK lengkap (16 digit); "
                "tulis NIK dan KK hanya di baris NIK dan KK."
            )
        elif name in FREE_TEXT and carries_phone(value):
            errors.append(
                f"{LABELS[name]} tidak boleh memuat nomor telepon; "
                "tulis nomor HP/WA hanya di baris HP."
            )
    checked: dict[str, str] = {}
    for name in ("nik", "kk"):
        number = fields.get(name)
        if number and utf16_len(number) <= LIMITS[name]:
            result = check_number(number, kind=name)
            errors.extend(result.errors)
            warnings.extend(result.warnings)
            if result.value:
                checked[name] = result.value
    phone_raw = fields.get("hp")
    phone: str | None = None
    if phone_raw and utf16_len(phone_raw) <= LIMITS["hp"]:
        phone, problem = check_phone(phone_raw)
        if problem:
            errors.append(problem)
    if "nik" in checked and checked.get("kk") == checked["nik"]:
        errors.append("Nomor KK tidak boleh sama dengan NIK.")
    sumber = fields.get("sumber", "loket").casefold()
    sumber = CHANNEL_ALIASES.get(sumber, sumber)
    if sumber not in CHANNELS:
        errors.append(f"Sumber harus salah satu dari: {', '.join(CHANNELS)}.")
    if errors:
        return FormResult(None, tuple(errors), tuple(warnings))
    lembaga, key = catalog.normalise(fields["lembaga"])
    if not key:
        problem = "Lembaga tidak terbaca; tulis nama lembaganya."
        return FormResult(None, (problem,), tuple(warnings))
    assert phone is not None
    form = TicketForm(
        nik=checked["nik"],
        kk=checked["kk"],
        lembaga=lembaga,
        lembaga_key=key,
        phone=phone,
        nama=clean_text(fields.get("nama", "")) or None,
        keterangan=clean_text(fields.get("keterangan", ""), multiline=True),
        sumber=sumber,
    )
    return FormResult(form, (), tuple(warnings))
