"""/cari (SPEC §3 "Search"), through the real app: found by what the desk remembers, masked,
paged, logged; erased data is not found."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import FULL_NUMBER, form
from ticketbot.config import DEFAULT_LEMBAGA
from ticketbot.domain.search import Query, parse_query
from ticketbot.domain.validation import LembagaCatalog
from ticketbot.emulator.simulation import KASI, STAF, STRANGER, Simulation


async def open_ticket(sim: Simulation, n: int, nama: str, hp: str, lembaga: str) -> None:
    await sim.say(STAF, form(nik=f"12730145068500{n:02d}", hp=hp, lembaga=lembaga)
                  + f"\nNama: {nama}")  # fmt: skip


def rows(text: str) -> list[str]:
    return [line.split(" ·")[0] for line in text.splitlines() if line.startswith("#")]


async def cari(sim: Simulation, terms: str) -> str:
    await sim.say(STAF, f"/cari {terms}".strip())
    return sim.last_bot_message().plain or ""


async def test_found_by_phone_end_name_and_lembaga_masked_and_logged(sim: Simulation) -> None:
    await open_ticket(sim, 1, "Siti Nurhalizá", "0812-3456-7890", "BPJS Kesehatan")
    await open_ticket(sim, 2, "Budi Siregar", "0812-3456-1111", "Bank")
    await open_ticket(sim, 3, "Siti Aminah", "0813-9999-2222", "BPJS Kesehatan")
    shown = await cari(sim, "7890")
    assert "1 tiket" in shown and "#1 · 127301******0001 · BPJS Kesehatan" in shown
    assert "#2" not in shown and "#3" not in shown
    assert not FULL_NUMBER.search(shown) and "3456" not in shown
    # A part of the name, case and accents ignored; two terms narrow together.
    assert "#1 ·" in await cari(sim, "NURHALIZA")
    both = await cari(sim, "siti bpjs")
    assert "2 tiket" in both and rows(both) == ["#3", "#1"]  # newest first
    assert "0 tiket" in await cari(sim, "siti bank")
    # Every search is an event: who, the terms, how many.
    db = sqlite3.connect(sim.services.config.database_path)
    logged = db.execute(
        "SELECT actor_id, detail FROM events WHERE action = 'search' ORDER BY id"
    ).fetchall()
    assert logged[0] == (STAF.user_id, "1 ditemukan: 7890")
    assert logged[2] == (STAF.user_id, "2 ditemukan: siti bpjs")
    # A whole number typed in groups is one term, searched and logged by its end only: the
    # log outlives retention and never holds a phone number.
    found = await cari(sim, "+62 812 3456 7890")
    assert rows(found) == ["#1"] and "3456" not in found
    last = db.execute(
        "SELECT detail FROM events WHERE action = 'search' ORDER BY id DESC"
    ).fetchone()
    assert last == ("1 ditemukan: 567890",)


async def test_alone_it_explains_itself_and_bad_terms_are_said(sim: Simulation) -> None:
    assert "4 digit terakhir nomor HP" in await cari(sim, "")
    said = await cari(sim, "12")
    assert "minimal 4 digit" in said and "/cari" in said
    assert "tidak ada" in await cari(sim, "2026-02-30")


async def test_results_come_ten_a_page_with_buttons(sim: Simulation) -> None:
    for n in range(1, 13):
        await open_ticket(sim, n, f"Warga {n}", f"0812-0000-{n:04d}", "Bank")
    await sim.say(STAF, "/cari terbuka")
    page = sim.last_bot_message()
    text = page.plain or ""
    assert "12 tiket (halaman 1 dari 2)" in text
    assert rows(text) == [f"#{n}" for n in range(12, 2, -1)]
    await sim.tap(KASI, page.message_id, "▶")
    text = sim.message(page.message_id).plain or ""
    assert "halaman 2 dari 2" in text and "#2 ·" in text and "#1 ·" in text and "#3 ·" not in text
    labels = [b["text"] for row in sim.message(page.message_id).reply_markup["inline_keyboard"]
              for b in row]  # fmt: skip
    assert labels == ["◀"]


async def test_an_outsider_gets_no_search(sim: Simulation) -> None:
    await open_ticket(sim, 1, "Siti", "0812-3456-7890", "Bank")
    before = len(sim.api.calls_of("sendMessage"))
    await sim.say(STRANGER, "/cari siti")
    assert len(sim.api.calls_of("sendMessage")) == before


async def test_erased_names_and_phones_are_not_found(tmp_path: Path) -> None:
    async with Simulation(tmp_path, settings={"privacy__retention_days": 30}) as sim:
        sim.clock.now -= timedelta(days=45)
        await open_ticket(sim, 1, "Zulaikha", "0812-3456-7890", "Bank")
        card = sim.last_bot_message().message_id
        await sim.tap(KASI, card, "Batal")
        assert "1 tiket" in await cari(sim, "zulaikha")
        sim.clock.now += timedelta(days=45)
        await sim.run_jobs()  # the daily purge
        assert "0 tiket" in await cari(sim, "zulaikha")
        assert "0 tiket" in await cari(sim, "7890")
        assert "1 tiket" in await cari(sim, "bank")  # what is no one's stays findable
        db = sqlite3.connect(sim.services.config.database_path)
        assert db.execute("SELECT count(*) FROM ticket_names").fetchone() == (0,)


@pytest.mark.parametrize(
    ("terms", "query"),
    [
        ("#12", Query(ticket_id=12)),
        ("rekap:3", Query(batch_id=3)),
        ("0812-7890", Query(phone_end="08127890")),
        ("７８９０", Query(phone_end="7890")),
        ("siti BPJS", Query(names=("siti",), lembaga_prefix="bpjs")),
        ("jkn", Query(lembaga_key="bpjs kesehatan")),
        ("Ditolak", Query(states=frozenset({"rejected", "closed_rejected"}))),
    ],
)
def test_terms_are_read_as_the_desk_means_them(terms: str, query: Query) -> None:
    catalog = LembagaCatalog(DEFAULT_LEMBAGA)
    words = {"ditolak": frozenset({"rejected", "closed_rejected"})}
    assert parse_query(terms, catalog, words) == query


def test_dates_and_ranges() -> None:
    catalog = LembagaCatalog(DEFAULT_LEMBAGA)
    found = parse_query("2026-11-01..2026-11-30", catalog, {})
    assert isinstance(found, Query)
    assert (str(found.first_day), str(found.last_day)) == ("2026-11-01", "2026-11-30")
    assert "terbalik" in str(parse_query("2026-11-30..2026-11-01", catalog, {}))
    assert "terlalu pendek" in str(parse_query("si", catalog, {}))


async def test_pages_run_open_first_then_closed_newest_first_across_the_boundary(
    sim: Simulation,
) -> None:
    for n in range(1, 24):
        await open_ticket(sim, n, f"Warga {n}", f"0812-0000-{n:04d}", "Bank")
    # Some closed (cancelled by the Kasi), spread among the open ones.
    closed = {2, 5, 6, 11, 12, 13, 17, 21}
    for n in sorted(closed):
        ticket = await sim.services.repo.tickets.get_ticket(n)
        assert ticket is not None and ticket.card_message_id is not None
        await sim.tap(KASI, ticket.card_message_id, "Batal")
    opened = sorted(set(range(1, 24)) - closed, reverse=True)
    expected = [*opened, *sorted(closed, reverse=True)]
    got: list[int] = []
    for page in range(3):
        found, total = await sim.services.search._find("warga", page)
        assert total == 23
        got += [t.id for t in found]
    assert got == expected
