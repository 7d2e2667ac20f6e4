"""What `/cari` understands (SPEC §3 "Search"). Pure code: terms in, a query out.

A term is, in this order: `#N` (a ticket), `rekap:N` (a recap batch), a date or a range
(`2026-11-01`, `2026-11-01..2026-11-30`), 4 or more digits (the end of the phone), a word
for a state (`terbuka`, `ditolak`, …), a known lembaga (by name or alias, or the start of
known names: `bpjs`), else a part of the name (3 letters or more). Several terms narrow the
search together.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date

from ticketbot.domain.privacy import ascii_digits, strip_separators
from ticketbot.domain.validation import LembagaCatalog, lembaga_key

PAGE = 10  # results per message
PHONE_END_KEPT = 6  # digits of a phone term searched and logged: an end, never a whole number
TICKET = re.compile(r"^#(\d{1,9})$")
BATCH = re.compile(r"^rekap:?(\d{1,9})$", re.IGNORECASE)
DAY = r"\d{4}-\d{2}-\d{2}"
DATES = re.compile(rf"^({DAY})(?:\.\.({DAY}))?$")


def folded(text: str) -> str:
    """Lower case, without accents: 'Nurhalizá' and 'NURHALIZA' are one name."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def phone_ends_only(terms: str) -> str:
    """The terms with every number (its groups joined: "0812 3456 7890" is one) cut to its
    last PHONE_END_KEPT digits: the search log outlives retention, so it must never hold a
    whole phone number."""
    kept: list[str] = []
    number = ""
    for term in terms.split():
        digits = ascii_digits(strip_separators(term.removeprefix("+")))
        if digits.isdigit() and digits.isascii() and not DATES.match(term):
            number += digits
            continue
        if number:
            kept.append(number[-PHONE_END_KEPT:])
            number = ""
        kept.append(term)
    if number:
        kept.append(number[-PHONE_END_KEPT:])
    return " ".join(kept)


def reversed_digits(phone: str) -> str:
    """'+6281234567890' -> '0987654321826': its end becomes a prefix."""
    return "".join(reversed([c for c in phone if c.isdigit()]))


@dataclass(frozen=True)
class Query:
    ticket_id: int | None = None
    batch_id: int | None = None
    first_day: date | None = None
    last_day: date | None = None
    phone_end: str | None = None  # digits, as typed (reversed by the store)
    states: frozenset[str] | None = None
    lembaga_key: str | None = None
    lembaga_prefix: str | None = None  # "bpjs": every lembaga whose name begins so
    names: tuple[str, ...] = field(default=())  # folded parts of the name

    @property
    def empty(self) -> bool:
        return self == Query()


def parse_query(
    text: str, catalog: LembagaCatalog, state_words: Mapping[str, frozenset[str]]
) -> Query | str:
    """The terms as a query, or the Indonesian words for what is wrong with them."""
    query = Query()
    for term in text.split():
        digits = ascii_digits(strip_separators(term))
        if match := TICKET.match(term):
            query = replace(query, ticket_id=int(match[1]))
        elif match := BATCH.match(term):
            query = replace(query, batch_id=int(match[1]))
        elif match := DATES.match(term):
            try:
                first = date.fromisoformat(match[1])
                last = date.fromisoformat(match[2]) if match[2] else first
            except ValueError:
                return f"Tanggal “{term}” tidak ada; tulis seperti 2026-11-24."
            if last < first:
                return f"Rentang “{term}” terbalik; tulis tanggal awal dulu."
            query = replace(query, first_day=first, last_day=last)
        elif digits.isdigit() and digits.isascii():
            if len(digits) < 4:
                return f"Angka “{term}”: tulis minimal 4 digit terakhir nomor HP."
            query = replace(query, phone_end=digits)
        elif (word := folded(term)) in state_words:
            query = replace(query, states=state_words[word])
        elif (named := catalog.named_in(term)) is not None:
            query = replace(query, lembaga_key=lembaga_key(named))
        elif any(lembaga_key(name).startswith(lembaga_key(term)) for name in catalog.names):
            query = replace(query, lembaga_prefix=lembaga_key(term))
        elif len(folded(term)) >= 3:
            query = replace(query, names=(*query.names, folded(term)))
        else:
            return f"“{term}” terlalu pendek; tulis minimal 3 huruf nama."
    return query
