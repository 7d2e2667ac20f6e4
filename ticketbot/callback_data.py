"""Inline-button data: short, versioned, strictly parsed. It is untrusted input.

    1:<code>:<id>                 a button of the procedure's table (its code), or one of
                                  the fixed ones below; id is the ticket (a batch for D,
                                  a mail for A)
    1:r:<id>:<menu>:<n>           preset reason n of the reason menu <menu>
    1:x:<id>:<menu>               back from that menu to the card
    1:q:<id>:<page>               page <page> (from 0) of the search recorded as event <id>

A menu is named by its action's code and the round it was opened in (`t3`: the third menu
opened on this ticket, Tolak's): a reason button belongs to the action and the opening whose
menu showed it, so an older menu's button changes nothing. At most 64 bytes (Telegram's
limit). Anything else, including an old version, parses to None ("tombol tidak berlaku").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VERSION = "1"
MAX_BYTES = 64
VIEW_NIK = "n"
VIEW_PHOTO = "f"  # "Foto": the KK/KTP-el photo, sent to the presser privately
CONFIRM_BATCH = "D"  # id is a recap batch, not a ticket
APPLY_ANSWER = "A"  # id is a mail from the DWH side: "Terapkan" its proposal (SPEC §4c)
SEARCH_PAGE = "q"  # id is the search (its event), the last part the page
REASON = "r"
BACK = "x"

PATTERN = re.compile(r"^1:([A-Za-z]):([1-9]\d{0,8})(?::([A-Za-z])([1-9]\d{0,5}))?(?::(\d{1,2}))?$")


@dataclass(frozen=True)
class Menu:
    code: str  # the code of the action whose reasons it shows
    round: int  # which opening of a menu on this ticket

    def __str__(self) -> str:
        return f"{self.code}{self.round}"


@dataclass(frozen=True)
class ButtonPress:
    code: str
    target_id: int
    menu: Menu | None = None  # reason and back buttons
    index: int | None = None  # reason buttons


def encode(code: str, target_id: int, menu: Menu | None = None, index: int | None = None) -> str:
    data = f"{VERSION}:{code}:{target_id}"
    if menu is not None:
        data += f":{menu}"
    if index is not None:
        data += f":{index}"
    assert len(data.encode()) <= MAX_BYTES
    return data


def parse(data: str | None) -> ButtonPress | None:
    if not data or len(data) > MAX_BYTES:
        return None
    match = PATTERN.match(data)
    if not match:
        return None
    code, target, menu_code, menu_round, index = match.groups()
    menu = Menu(menu_code, int(menu_round)) if menu_code else None
    if code == REASON:
        if menu is None or index is None:
            return None
    elif code == BACK:
        if menu is None or index is not None:
            return None
    elif code == SEARCH_PAGE:
        if menu is not None or index is None:
            return None
    elif menu is not None or index is not None:
        return None
    return ButtonPress(code, int(target), menu, int(index) if index is not None else None)
