"""The desk's search (SPEC §3 "Search"): `/cari` terms become a query, every search is an
event (who, the terms, how many found), and a page of masked rows comes back. The terms are
kept in that event, so "◀"/"▶" find the same tickets again without keeping anything else."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from ticketbot.clock import Clock
from ticketbot.config import Config
from ticketbot.domain.search import PAGE, parse_query, phone_ends_only
from ticketbot.records import Actor, Ticket
from ticketbot.store import Stores
from ticketbot.store.search import COUNT_CAP

SEARCH = "search"  # the event's action
# Staff type words for states; each names the states it means (the procedure's names).
STATE_WORDS = {
    "terbuka": "open", "baru": "new", "diverifikasi": "verified", "terverifikasi": "verified",
    "sinkron": "synced", "dwh": "sent_to_dwh", "ditolak": "rejected,closed_rejected",
    "selesai": "done", "batal": "cancelled", "dibatalkan": "cancelled",
}  # fmt: skip


@dataclass(frozen=True)
class Found:
    search_id: int  # the event that recorded the search
    terms: str
    tickets: list[Ticket]
    total: int
    page: int

    @property
    def pages(self) -> int:
        return max((min(self.total, COUNT_CAP) + PAGE - 1) // PAGE, 1)

    @property
    def many(self) -> bool:
        """More found than counted: the person should narrow the search."""
        return self.total > COUNT_CAP


@dataclass(frozen=True)
class NotUnderstood:
    problem: str  # Indonesian, for the person


def shown_terms(terms: str) -> str:
    """The terms as the group may see them again: a long digit run only by its end."""
    return re.sub(r"\d{5,}", lambda m: "…" + m.group()[-4:], terms)


@dataclass
class SearchDesk:
    config: Config
    repo: Stores
    clock: Clock

    def __post_init__(self) -> None:
        procedure = self.config.procedure
        self.state_words = {
            word: frozenset(procedure.open_states) if states == "open"
            else frozenset(states.split(","))
            for word, states in STATE_WORDS.items()
        }  # fmt: skip

    async def search(self, terms: str, actor: Actor) -> Found | NotUnderstood:
        terms = phone_ends_only(terms)
        query = parse_query(terms, self.config.lembaga, self.state_words)
        if isinstance(query, str):
            return NotUnderstood(query)
        found, total = await self._find(terms, 0)
        search_id = await self.repo.events.record_search(
            actor, self.clock(), f"{total} ditemukan: {terms}"
        )
        return Found(search_id, terms, found, total, 0)

    async def page(self, search_id: int, page: int) -> Found | None:
        """Another page of a search recorded before (None: no such search)."""
        detail = await self.repo.events.search_terms(search_id)
        if detail is None:
            return None
        terms = detail.partition(": ")[2]
        found, total = await self._find(terms, page)
        return Found(search_id, terms, found, total, page)

    async def _find(self, terms: str, page: int) -> tuple[list[Ticket], int]:
        query = parse_query(terms, self.config.lembaga, self.state_words)
        assert not isinstance(query, str)
        opened = None
        if query.first_day is not None and query.last_day is not None:
            tz = self.config.office.timezone
            start = datetime.combine(query.first_day, datetime.min.time(), tz)
            end = datetime.combine(query.last_day + timedelta(days=1), datetime.min.time(), tz)
            opened = (start, end)
        return await self.repo.search.find(
            query, opened, self.config.procedure.open_states, max(page, 0)
        )
