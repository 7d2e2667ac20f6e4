"""Personal data in text (SPEC §3 "Privacy in the group"). Pure code.

One definition of "carries a full NIK/KK", used for every free-text field, every reason,
every outgoing text and URL, and every log line: after Unicode digits are normalised and
spaces, dots, dashes, slashes and invisible characters are removed, 16 digits remain.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

# What may stand between the digits of one number: white space of any kind, dots, dashes
# of every width, slashes, and characters that do not show (zero-width, soft hyphen, BOM,
# bidi marks). In log text a repr() writes invisible characters as escapes (\u200b, \xa0).
_INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0"
)
_DASHES = "\\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d"
_DOTS = ".\u00b7\u2024\u2027\u3002\ufe52\uff0e\uff61"
_SLASHES = "/\\\\\u2044\u2215\uff0f"
SEPARATOR = f"[\\s{_INVISIBLE}{_DASHES}{_DOTS}{_SLASHES}]"
_ESCAPE = r"(?:\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}|\\[nrt])"
# Python's \d is every Unicode decimal digit (full-width, Arabic-Indic, Devanagari, …).
_RUN = re.compile(rf"\d(?:{SEPARATOR}*\d){{15,}}")
_LOG_RUN = re.compile(rf"\d(?:(?:{SEPARATOR}|{_ESCAPE})*\d){{15,}}")
# An Indonesian mobile number as people and libraries write it: 0812…, +62 812…, 62812….
_GAP = rf"(?:{SEPARATOR}|[()])*"
_PHONE = re.compile(rf"(?<!\d)(?:\+\s*62|62|0){_GAP}8(?:{_GAP}\d){{7,12}}")
_SEPARATORS = re.compile(f"{SEPARATOR}+")
_HIDDEN = re.compile(f"[{_INVISIBLE}]")
_ESCAPES = re.compile(_ESCAPE)
# Removed from stored text: control characters (new lines kept where a field allows them),
# bidirectional overrides and isolates, lone surrogates, and non-characters.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNWANTED = re.compile(
    f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]"
)


def ascii_digits(text: str) -> str:
    """Every Unicode decimal digit as its ASCII digit ('１２' and '١٢' become '12')."""
    return "".join(str(unicodedata.digit(c)) if c.isdecimal() else c for c in text)


def carries_full_number(text: str) -> bool:
    """True when 16 or more digits remain once separators and invisible characters go."""
    return _RUN.search(text) is not None


def carries_phone(text: str) -> bool:
    """True when the text holds a telephone number in any Indonesian form (0812…, +62 812…,
    62812…, a landline like (0631) 21234), however it is spaced or hidden: a reason or a
    free-text field is not the place for one (the HP line is, and it is masked)."""
    visible = ascii_digits(_HIDDEN.sub("", text))
    matches = phonenumbers.PhoneNumberMatcher(visible, "ID", leniency=phonenumbers.Leniency.VALID)
    return any(True for _ in matches) or _PHONE.search(visible) is not None


def carries_personal_number(text: str) -> bool:
    """A full NIK/KK or a phone number: refused in every free text (SPEC §3)."""
    return carries_full_number(text) or carries_phone(text)


def strip_separators(text: str) -> str:
    """A number as typed, less its separators (spaces, dots, dashes, slashes, invisibles)."""
    return _SEPARATORS.sub("", text)


def mask_number(digits: str) -> str:
    """NIK/KK: region (6 digits) and serial (4) stay, the birth/issue date is hidden."""
    return f"{digits[:6]}******{digits[-4:]}" if len(digits) == 16 else "****************"


def mask_phone(e164: str) -> str:
    """+6281234567890 -> 0812****7890: the first four and up to the last four digits, at
    least four hidden (a short number shows fewer at its end)."""
    national = "0" + e164[3:] if e164.startswith("+62") else e164
    hidden = max(len(national) - 8, 4)
    return national[:4] + "*" * hidden + national[4 + hidden :]


def _masked_run(match: re.Match[str]) -> str:
    digits = ascii_digits(re.sub(r"\D", "", _ESCAPES.sub("", match.group())))
    return f"{digits[:6]}******{digits[-4:]}"


def redact_numbers(text: str) -> str:
    """Mask every full NIK/KK in text, however it is written (outgoing texts and URLs)."""
    return _RUN.sub(_masked_run, text)


def _masked_phone(match: re.Match[str]) -> str:
    """A phone found in text, masked as the cards show a pemohon's (0812****7890)."""
    digits = ascii_digits(re.sub(r"\D", "", match.group()))
    return mask_phone("+" + digits if digits.startswith("62") else digits)


def redact_personal(text: str) -> str:
    """Mask every full NIK/KK and every Indonesian mobile number (mail from outside)."""
    return _PHONE.sub(_masked_phone, redact_numbers(ascii_digits(_HIDDEN.sub("", text))))


# A resident's words in a form (Nama, Keterangan) and a person's name in an update as
# python-telegram-bot logs it (JSON or repr): up to the end of the line, or of the string.
_FORM_VALUE = re.compile(
    r"(?im)((?:(?<=\\n)|(?<!\w))(?:nama(?:\s+pemohon)?|keterangan|ket|masalah)\s*:)"
    r"[^\n'\"]*?(?=\\n|\n|['\"]|$)"
)
_NAME_FIELD = re.compile(
    r"""((?:['"])(?:first_name|last_name|full_name|username|name)(?:['"])\s*[:=]\s*)"""
    r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
)
_NAME_ARG = re.compile(r"\b((?:first_name|last_name|full_name|username)=)('[^']*'|\"[^\"]*\")")


def redact_names(text: str) -> str:
    """Hide people's names and the free text of a form in a log line."""
    text = _FORM_VALUE.sub(r"\1 <…>", text)
    text = _NAME_FIELD.sub(r"\1'<…>'", text)
    return _NAME_ARG.sub(r"\1'<…>'", text)


def redact_log(text: str) -> str:
    """Mask NIK/KK numbers (also as repr() escapes them), phone numbers and names in a log
    line."""
    text = redact_names(_LOG_RUN.sub(_masked_run, text))
    return _PHONE.sub(lambda m: ascii_digits(re.sub(r"\D", "", m.group()))[:4] + "****", text)


def clean_text(text: str, *, multiline: bool = False) -> str:
    """Text as it may be stored: no control characters or bidi overrides, tabs as spaces,
    lines trimmed; new lines only where the field allows them."""
    text = text.replace("\r\n", "\n").replace("\t", " ")
    if not multiline:
        text = text.replace("\n", " ").replace("\r", " ")
    text = _UNWANTED.sub("", unicodedata.normalize("NFC", text))
    if multiline:
        return "\n".join(" ".join(line.split()) for line in text.splitlines()).strip()
    return " ".join(text.split())


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def clip_utf16(text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` UTF-16 units (never half a character)."""
    if utf16_len(text) <= limit:
        return text
    out, used = [], 0
    for c in text:
        used += 2 if ord(c) > 0xFFFF else 1
        if used > limit:
            break
        out.append(c)
    return "".join(out)
