"""Inline-button data: short, versioned, strictly parsed. It is untrusted input.

Format `1:<code>:<id>[:<n>]`, at most 64 bytes (Telegram's limit). Anything else,
including an old version, parses to None and is answered "tombol tidak berlaku".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

VERSION = "1"
MAX_BYTES = 64


class Press(StrEnum):
    VERIFY = "v"
    REJECT_MENU = "t"  # "Tolak": show the reasons
    RETURN_MENU = "m"  # "Kembalikan" (to the Kasi): show the reasons
    CANCEL_MENU = "c"  # "Batal" on a verified ticket: show the reasons
    RESYNC_MENU = "u"  # "Ulang": show the reasons
    REJECT_REASON = "r"  # a preset reason of the open menu, n = its index
    REJECT_BACK = "x"  # back from the reasons to the card
    CANCEL = "b"
    SYNC = "k"
    CONFIRM_DWH = "d"
    INFORM = "i"
    VIEW_NIK = "n"
    VIEW_PHOTO = "f"  # "Foto": the KK/KTP-el photo, sent to the presser privately
    CONFIRM_BATCH = "D"  # id is a recap batch, not a ticket


PATTERN = re.compile(r"^1:([A-Za-z]):([1-9]\d{0,8})(?::(\d{1,2}))?$")


@dataclass(frozen=True)
class ButtonPress:
    press: Press
    target_id: int
    index: int | None = None


def encode(press: Press, target_id: int, index: int | None = None) -> str:
    data = f"{VERSION}:{press.value}:{target_id}" + ("" if index is None else f":{index}")
    assert len(data.encode()) <= MAX_BYTES
    return data


def parse(data: str | None) -> ButtonPress | None:
    if not data or len(data) > MAX_BYTES:
        return None
    match = PATTERN.match(data)
    if not match:
        return None
    try:
        press = Press(match[1])
    except ValueError:
        return None
    has_index = match[3] is not None
    if has_index != (press == Press.REJECT_REASON):
        return None
    return ButtonPress(press, int(match[2]), int(match[3]) if has_index else None)
