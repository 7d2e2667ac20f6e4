"""The resident's data over time (issue J): retention and subject access.

`ticketbot purge` and `ticketbot export` run as the operator would (the CLI, no token) on a
real database; the daily job runs in the simulated office, where the card is re-rendered."""

from __future__ import annotations

import asyncio
import stat
from datetime import datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

from tests.conftest import always_open_config, form
from ticketbot.cli import main
from ticketbot.domain.lifecycle import SOP_09, Action, State
from ticketbot.domain.validation import TicketForm
from ticketbot.emulator.simulation import GROUP_ID, STAF, TZ, Simulation
from ticketbot.records import Actor
from ticketbot.schema import migration_files
from ticketbot.store import Stores
from ticketbot.store.rows import to_db_time

NOW = datetime.now(TZ)
KASI = Actor(111111111, "Rina Kasi")
ADB = Actor(222222222, "Budi ADB")
OPENER = Actor(333333333, "Sari Staf")
PATHS = {  # how each ticket of the archive ends, from `new`
    "done": (Action.VERIFY, Action.SYNC_AT_KONSOLIDASI, "send", Action.CONFIRM_DWH,
             Action.INFORM),
    "rejected": (Action.REJECT, Action.INFORM),
    "cancelled": (Action.CANCEL,),
    "open": (),
    "unconfirmed": (Action.VERIFY, Action.SYNC_AT_KONSOLIDASI, "send"),
}  # fmt: skip


def nik(n: int) -> str:
    return f"12730145068500{n:02d}"


async def walk(repo: Stores, ticket_id: int, path: tuple[object, ...], when: datetime) -> None:
    await walk_from(repo, ticket_id, State.NEW, path, when)


async def walk_from(
    repo: Stores, ticket_id: int, state: State, path: tuple[object, ...], when: datetime
) -> None:
    for step in path:
        if step == "send":
            batch = await repo.batches.freeze_batch(when.date(), when, "example.go.id", allow_empty=False,
                                            run=False)  # fmt: skip
            assert batch is not None
            send = SOP_09.transition_for(Action.SEND_TO_DWH, State.SYNCED)
            assert send is not None
            assert await repo.batches.mark_batch_sent(batch.id, send, when, "rekap")
            state = State.SENT_TO_DWH
            continue
        assert isinstance(step, Action)
        transition = SOP_09.transition_for(step, state)
        assert transition is not None
        actor = {Action.VERIFY: KASI, Action.REJECT: KASI, Action.CANCEL: KASI}.get(step, ADB)
        reason = "Data tidak sesuai SIAK" if transition.needs_reason else None
        outcome = await repo.tickets.apply(ticket_id, transition, actor, when, reason)
        assert outcome.applied
        state = transition.target


async def archive(repo: Stores) -> dict[str, int]:
    """Tickets closed long ago and lately, an open one, and a ticket closed long ago whose
    recap batch still waits on the DWH admin for another ticket."""
    plan = [("done", 400), ("rejected", 31), ("cancelled", 29), ("open", 500),
            ("done", 10), ("shared", 400), ("unconfirmed", 400)]  # fmt: skip
    ids = {}
    for n, (kind, days) in enumerate(plan, start=1):
        when = NOW - timedelta(days=days)
        ticket, created = await repo.tickets.open_ticket(
            TicketForm(nik(n), f"12730101010900{n:02d}", "BPJS Kesehatan", f"bpjs{n}",
                       "+6281234567890", "Warga Satu", "keterangan pribadi"),
            OPENER, GROUP_ID, when, "AgACphoto",
        )  # fmt: skip
        assert created
        ids[f"{kind}-{days}"] = ticket.id
        if kind == "shared":  # synced; sent with the next one below
            await walk(repo, ticket.id, (Action.VERIFY, Action.SYNC_AT_KONSOLIDASI), when)
        else:
            await walk(repo, ticket.id, PATHS[kind], when)
    # The shared batch's first ticket was confirmed and closed; the other still waits.
    await walk_from(repo, ids["shared-400"], State.SENT_TO_DWH,
                    (Action.CONFIRM_DWH, Action.INFORM), NOW - timedelta(days=399))  # fmt: skip
    return ids


@pytest.fixture
def office(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    config = always_open_config(tmp_path / "config.toml", "http://127.0.0.1:9/bot", 9)
    with config.open("a") as out:
        out.write("[privacy]\nretention_days = 30\n")

    async def seed() -> dict[str, int]:
        repo = await Stores.open(tmp_path / "office.sqlite3")
        try:
            return await archive(repo)
        finally:
            await repo.close()

    return config, asyncio.run(seed())


def tickets(config: Path) -> dict[int, tuple[object, ...]]:
    async def read() -> dict[int, tuple[object, ...]]:
        async with aiosqlite.connect(config.parent / "office.sqlite3") as db:
            rows = await db.execute_fetchall(
                "SELECT id, nik, kk, phone, nama, keterangan, photo_file_id, purged_at, state"
                " FROM tickets"
            )
        return {int(r[0]): tuple(r[1:]) for r in rows}

    return asyncio.run(read())


def events(config: Path, action: str) -> list[tuple[object, ...]]:
    async def read() -> list[tuple[object, ...]]:
        async with aiosqlite.connect(config.parent / "office.sqlite3") as db:
            return list(await db.execute_fetchall(
                "SELECT ticket_id, actor_id, actor_name, detail FROM events WHERE action = ?"
                " ORDER BY id", (action,),
            ))  # fmt: skip

    return asyncio.run(read())


def test_purge_dry_run_changes_nothing_then_purge_erases_only_what_is_due(
    office: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    config, ids = office
    monkeypatch.delenv("TICKETBOT_TELEGRAM_TOKEN", raising=False)
    before = tickets(config)
    assert main(["purge", "--config", str(config), "--dry-run"]) == 0
    due = sorted([ids["done-400"], ids["rejected-31"]])
    assert capsys.readouterr().out == (
        f"2 closed ticket(s) past 30 days would be purged: #{due[0]}, #{due[1]};"
        " nothing changed (--dry-run)\n"
    )
    assert tickets(config) == before
    assert events(config, "purge") == []

    assert main(["purge", "--config", str(config)]) == 0
    assert capsys.readouterr().out == "2 closed ticket(s) past 30 days purged\n"
    after = tickets(config)
    for ticket_id in due:
        nik_, kk, phone, nama, keterangan, photo, purged_at, state = after[ticket_id]
        n = f"{ticket_id:02d}"
        assert (nik_, kk) == (f"127301******00{n}", f"127301******00{n}")
        assert (phone, nama, keterangan, photo) == ("", None, "", None)
        assert purged_at is not None
        assert state == before[ticket_id][-1]  # the statistics keep their state
    # Closed lately, open, and closed but in a batch the DWH admin has not confirmed: kept.
    for kept in set(ids.values()) - set(due):
        assert after[kept] == before[kept], kept
    assert [(t, a) for t, a, _, _ in events(config, "purge")] == [(i, None) for i in due]
    assert all(d == "retensi 30 hari" for *_, d in events(config, "purge"))
    assert all(str(n).startswith("operator (") for _, _, n, _ in events(config, "purge"))
    # Once is enough: nothing more is due.
    assert main(["purge", "--config", str(config)]) == 0
    assert capsys.readouterr().out == "0 closed ticket(s) past 30 days purged\n"


def test_export_holds_everything_on_one_nik_owner_only_and_is_logged(
    office: tuple[Path, dict[str, int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, ids = office
    ticket_id = ids["unconfirmed-400"]
    out = tmp_path / "ekspor.txt"
    assert main(["export", "--config", str(config), "--nik", nik(ticket_id), "--out",
                 str(out)]) == 0  # fmt: skip
    assert capsys.readouterr().out == (
        f"1 ticket(s) for NIK 127301******00{ticket_id:02d} written to {out}\n"
    )
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text(encoding="utf-8")
    for held in (nik(ticket_id), f"12730101010900{ticket_id:02d}", "+6281234567890",
                 "Warga Satu", "keterangan pribadi", "BPJS Kesehatan", f"TIKET #{ticket_id}",
                 "Diverifikasi oleh Rina Kasi", "Rekap dikirim ke admin DWH oleh ticketbot",
                 "diterima server email", "Message-ID <"):  # fmt: skip
        assert held in text, held
    assert "Rekap terkirim — menunggu konfirmasi" in text
    logged = events(config, "export")
    assert [(t, d) for t, _, _, d in logged] == [
        (ticket_id, f"ekspor NIK 127301******00{ticket_id:02d}")
    ]


def test_export_of_an_unknown_nik_says_so_and_is_logged(
    office: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    config, _ = office
    out = tmp_path / "kosong.txt"
    assert main(["export", "--config", str(config), "--nik", "1273 0145 0685 0099", "--out",
                 str(out)]) == 0  # fmt: skip
    assert "Tidak ada tiket yang menyimpan NIK ini." in out.read_text(encoding="utf-8")
    assert [(t, d) for t, _, _, d in events(config, "export")] == [
        (None, "ekspor NIK 127301******0099")
    ]


@pytest.mark.parametrize(
    ("args", "problem"),
    [(["--nik", "12345"], "--nik: a NIK is 16 digits\n"),
     (["--nik", "1273014506850001", "--out", "EXISTS"], "already exists; choose a new file name")],
)  # fmt: skip
def test_export_refuses_a_bad_nik_or_an_existing_file(
    office: tuple[Path, dict[str, int]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    args: list[str], problem: str,
) -> None:  # fmt: skip
    config, _ = office
    existing = tmp_path / "ada.txt"
    existing.write_text("jangan ditimpa")
    argv = [a.replace("EXISTS", str(existing)) for a in args]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "baru.txt")]
    assert main(["export", "--config", str(config), *argv]) == 2
    err = capsys.readouterr().err
    assert problem in err and err.count("\n") == 1
    assert existing.read_text() == "jangan ditimpa"
    assert not (tmp_path / "baru.txt").exists()
    assert events(config, "export") == []


def test_report_files_are_owner_only(
    office: tuple[Path, dict[str, int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = office
    out = tmp_path / "laporan"
    month = f"{NOW:%Y-%m}"
    assert main(["report", "--config", str(config), "--month", month, "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"laporan-{month}.png", f"laporan-{month}.txt", f"laporan-{month}.xlsx"]
    assert capsys.readouterr().out.splitlines() == [str(out / n) for n in
                                                    (names[0], names[2], names[1])]  # fmt: skip
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert {stat.S_IMODE((out / n).stat().st_mode) for n in names} == {0o600}
    assert main(["report", "--config", str(config), "--month", "2026-5", "--out",
                 str(out)]) == 2  # fmt: skip
    assert capsys.readouterr().err == "--month: '2026-5' is not a month like 2026-10\n"


async def test_the_daily_purge_rerenders_the_card_without_the_erased_data(
    tmp_path: Path,
) -> None:
    async with Simulation(tmp_path, settings={"privacy__retention_days": 30}) as sim:
        sim.clock.now -= timedelta(days=45)
        await sim.say(STAF, form(keterangan="Nama ibu kandung: Siti"))
        repo = sim.services.repo
        ticket = await repo.tickets.get_ticket(1)
        assert ticket is not None and ticket.card_message_id is not None
        cancel = SOP_09.transition_for(Action.CANCEL, State.NEW)
        assert cancel is not None
        assert (await repo.tickets.apply(1, cancel, KASI, sim.clock.now)).applied
        await sim.run_jobs()
        card = sim.message(ticket.card_message_id)
        assert card.plain is not None and "Siti" in card.plain
        sim.clock.now += timedelta(days=45)
        await sim.run_jobs()
        card = sim.message(ticket.card_message_id)
        assert card.plain is not None
        assert "Siti" not in card.plain and "0812" not in card.plain
        assert "dihapus (masa simpan data habis)" in card.plain
        assert "NIK: 127301******0001" in card.plain
        purged = await repo.tickets.get_ticket(1)
        assert purged is not None and purged.purged_at == sim.clock.now
        events_ = [e.action for e in await repo.events.events_for(1)]
        assert events_[-1] == "purge"
        # The daily job again: nothing more to do, no edit.
        edits = len(sim.api.calls_of("editMessageText"))
        await sim.run_jobs()
        assert len(sim.api.calls_of("editMessageText")) == edits


async def test_migrations_5_and_6_keep_every_ticket_and_its_checks(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    repo = await Stores.open(path, migrate=False)
    try:
        assert await repo.db.migrate(upto=4) == 4
        db = repo.db.conn.raw  # aiosqlite itself: a test writes as an old version did
        stamp = NOW.isoformat()
        # As version 4 stored a ticket (the code of today reads version 5).
        await db.execute(
            "INSERT INTO tickets (nik, kk, lembaga, lembaga_key, phone, opened_by, opened_at,"
            " state_since, step_since, chat_id) VALUES (?, ?, 'Bank BRI', 'bank bri',"
            " '+6281234567890', 1, ?, ?, ?, ?)", (nik(1), nik(2), stamp, stamp, stamp, GROUP_ID),
        )  # fmt: skip
        await db.execute(
            "INSERT INTO events (ticket_id, actor_id, actor_name, action, to_state, at)"
            " VALUES (1, 1, 'Sari', 'open', 'new', ?)", (stamp,),
        )  # fmt: skip
        await db.commit()
        assert await repo.db.migrate(upto=5) == 5
        again = await db.execute_fetchall("SELECT nik, kk, purged_at FROM tickets WHERE id = 1")
        assert list(again) == [(nik(1), nik(2), None)]
        assert [e.action for e in await repo.events.events_for(1)] == ["open"]
        assert list(await db.execute_fetchall("PRAGMA foreign_key_check")) == []
        assert list(await db.execute_fetchall("PRAGMA foreign_keys")) == [(1,)]
        # A masked NIK only on a purged ticket; never letters.
        for nik_, purged in (("127301******0001", None), ("12730l4506850001", NOW.isoformat())):
            with pytest.raises(aiosqlite.IntegrityError, match="CHECK"):
                await db.execute(
                    "UPDATE tickets SET nik = ?, purged_at = ? WHERE id = ?",
                    (nik_, purged, 1),
                )
        # The events still refer to their ticket, and a ticket cannot vanish under them.
        with pytest.raises(aiosqlite.IntegrityError, match="FOREIGN KEY"):
            await db.execute("DELETE FROM tickets WHERE id = 1")
        # On to version 6 and on: the open ticket's deadline is filled in at start-up, once
        # per rule (calendar and standards).
        assert await repo.db.migrate() == len(migration_files())
        repo.tickets.deadline = lambda state, since: (
            since + timedelta(minutes=10) if since else None
        )
        assert await repo.tickets.refresh_deadlines("rule-1", NOW) == 1
        rows = await db.execute_fetchall("SELECT due_at, overdue_shown FROM tickets")
        assert list(rows) == [(to_db_time(NOW + timedelta(minutes=10)), None)]
        assert await repo.tickets.refresh_deadlines("rule-1", NOW) == 0
    finally:
        await repo.close()
