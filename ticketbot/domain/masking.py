"""Masking of personal data shown in the group (SPEC §3 "Privacy in the group")."""

import re

SIXTEEN_DIGITS = re.compile(r"(?<!\d)(\d{6})\d{6}(\d{4})(?!\d)")


def mask_number(digits: str) -> str:
    """NIK/KK: region (6 digits) and serial (4) stay, the birth/issue date is hidden."""
    return f"{digits[:6]}******{digits[-4:]}" if len(digits) == 16 else "****************"


def mask_phone(e164: str) -> str:
    """+6281234567890 -> 0812****7890."""
    national = "0" + e164[3:] if e164.startswith("+62") else e164
    return national[:4] + "*" * max(len(national) - 8, 0) + national[-4:]


def redact_numbers(text: str) -> str:
    """Mask every 16-digit run in free text (log lines, stray input)."""
    return SIXTEEN_DIGITS.sub(r"\1******\2", text)


def carries_full_number(text: str) -> bool:
    """True when the text holds a 16-digit run, however it is split by spaces, dots, dashes."""
    return bool(re.search(r"\d{16}", re.sub(r"[\s.\-]", "", text)))
