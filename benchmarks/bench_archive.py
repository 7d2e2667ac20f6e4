"""Benchmark: the bot at any size of the archive. Prints a table, asserts nothing.

    .venv/bin/python benchmarks/bench_archive.py [--sizes 10000,100000] [--cases report]

Each case runs in a fresh process on a seeded database (benchmarks/archive.py), so its peak
resident memory is its own. Cases:
- seed: writing the archive (tickets, their events, a recap batch a day; 0.5 % still open);
- office: the real bot on the archive against the Bot API fake: start-up (the first, which
  fills the stored deadlines, and a usual one), one round of the periodic jobs, /antrian,
  /status #N, /status NIK and a tap (update in -> handled, medians), the recap render of 1k
  and 10k tickets with the longest stall of the event loop meanwhile;
- report: the monthly report (figures, PNG, XLSX, email text) of the archive's last month,
  and of a month that holds the whole archive (the worst case).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.archive import seed
from ticketbot.config import Config, parse_config
from ticketbot.domain.report import Month
from ticketbot.emulator.botapi import FakeBotApi
from ticketbot.emulator.simulation import office_settings

END = datetime(2026, 11, 1, tzinfo=UTC)  # the report's archive ends where October does
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # the simulated office's morning


def config_for(db: Path) -> Config:
    data = office_settings("http://127.0.0.1:9/bot", FakeBotApi.token, db, 9)
    return parse_config(data, {}, db.parent)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def case_report(db: Path) -> dict[str, Any]:
    from ticketbot.report import ReportDesk
    from ticketbot.store import Stores
    from ticketbot.texts import Texts

    config = config_for(db)
    repo = await Stores.open(db)
    try:
        desk = ReportDesk(config, repo, Texts(config.office.timezone), lambda: END)
        started = time.perf_counter()
        files = await desk.build(Month(2026, 10))
        seconds = time.perf_counter() - started
    finally:
        await repo.close()
    handled = sum(s.handled for s in files.figures.steps)
    return {"seconds": seconds, "tickets": len(files.figures.tickets), "passages": handled,
            "xlsx_kib": len(files.xlsx) / 1024, "png_kib": len(files.png) / 1024}  # fmt: skip


async def timed(action: Any, times: int = 10) -> float:
    """Median seconds of `times` runs of the coroutine function `action(i)`."""
    samples = []
    for i in range(times):
        started = time.perf_counter()
        await action(i)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def stall_during(work: Any) -> tuple[float, float]:
    """(seconds `work` took, the longest the event loop was blocked meanwhile)."""
    longest, done = 0.0, False

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            longest = max(longest, now - last - 0.005)
            last = now

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    await work
    took = time.perf_counter() - started
    done = True
    await task
    return took, longest


async def case_office(db: Path) -> dict[str, Any]:
    from tests.conftest import form
    from ticketbot import callback_data
    from ticketbot.emulator.simulation import GROUP_ID, KASI, STAF, Simulation
    from ticketbot.records import Actor

    out: dict[str, Any] = {}
    started = time.perf_counter()
    sim = Simulation(db.parent)
    await sim.__aenter__()
    try:
        out["first_start"] = time.perf_counter() - started
        await sim.stop_bot()
        started = time.perf_counter()
        await sim.start_bot()
        out["start"] = time.perf_counter() - started
        await sim.run_jobs()
        started = time.perf_counter()
        await sim.run_jobs()
        out["jobs"] = time.perf_counter() - started
        size = await sim.services.repo.tickets.count_tickets()
        out["antrian"] = await timed(lambda i: sim.say(KASI, "/antrian"))
        out["status_id"] = await timed(lambda i: sim.say(KASI, f"/status #{size // 2 + i}"))
        out["status_nik"] = await timed(
            lambda i: sim.say(KASI, f"/status 1273{size // 3 + i:012d}")
        )
        cards = []
        for i in range(10):
            await sim.say(STAF, form(nik=f"127301450685{i + 1:04d}", lembaga=f"Bench {i}"))
            await sim.services.outbox.drained()
            ticket = await sim.services.repo.tickets.get_ticket(size + 1 + i)
            assert ticket is not None
            assert ticket.card_message_id is not None
            cards.append(ticket.card_message_id)
        out["tap"] = await timed(lambda i: sim.tap(KASI, cards[i], "Verifikasi"))
        # The same, as the handlers' own work (no Telegram, no update delivery).
        s, office = sim.services, sim.services.office

        async def queue_work(i: int) -> None:
            s.views.queue(await office.queue())

        async def status_work(i: int) -> None:
            s.views.status(await office.status(f"#{size // 2 + i}"))

        async def tap_work(i: int) -> None:
            card = cards[i]
            data = sim.api.button_data(GROUP_ID, card, "NIK")  # a view, recorded as an event
            outcome = await office.press(callback_data.parse(data), actor_of_kasi, GROUP_ID,
                                         card)  # fmt: skip
            s.views.answer(outcome)

        actor_of_kasi = Actor(KASI.user_id, KASI.name)
        out["antrian_work"] = await timed(queue_work)
        out["status_work"] = await timed(status_work)
        out["tap_work"] = await timed(tap_work)
        get = sim.services.repo.tickets.get_ticket
        tickets = [t for t in [await get(i + 1) for i in range(10_000)] if t is not None]
        for n in (1000, 10_000):
            took, stall = await stall_during(sim.desk.render(sim.clock().date(), tickets[:n]))
            out[f"recap_{n}"], out[f"stall_{n}"] = took, stall
        await sim.services.outbox.drained()
    finally:
        await sim.__aexit__(None, None, None)
    return out


async def case_search(db: Path) -> dict[str, Any]:
    """/cari's database work (the count and one page), as SPEC §3 bounds it: 50 ms at 1M."""
    from ticketbot.search import SearchDesk
    from ticketbot.store import Stores

    repo = await Stores.open(db, migrate=False)
    out: dict[str, Any] = {}
    try:
        desk = SearchDesk(config_for(db), repo, lambda: NOW)
        for name, terms in SEARCHES:
            out[name] = await timed(lambda i, terms=terms: desk._find(terms, 0))
            out[name + "_found"] = (await desk._find(terms, 0))[1]
    finally:
        await repo.close()
    return out


SEARCHES = (
    ("phone", "4567"),
    ("name", "nurhal"),
    ("name2", "siti siregar"),
    ("lembaga_dates", "bpjs 2026-10-01..2026-10-31"),
    ("open", "terbuka"),
)


def child(case: str, db: Path) -> None:
    before = peak_mib()
    result = asyncio.run(
        {"report": case_report, "office": case_office, "search": case_search}[case](db)
    )
    result["rss_mib"] = peak_mib()
    result["rss_before_mib"] = before
    print(json.dumps(result))


def run_case(case: str, db: Path) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603 (this very script, by its own path)
        [sys.executable, __file__, "--child", case, "--db", str(db)],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode:
        raise SystemExit(f"case {case} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--cases", default="office,report,search")
    parser.add_argument("--child")
    parser.add_argument("--db", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.db)
        return
    cases = args.cases.split(",")
    print(f"{'archive':>10} {'case':<34} {'time':>10} {'peak RSS':>10}  detail")
    for size in (int(s) for s in args.sizes.split(",")):
        if "office" in cases:
            with tempfile.TemporaryDirectory() as tmp:
                db = Path(tmp) / "ticketbot.sqlite3"  # where the simulated office keeps it
                seconds = seed(db, size, end=NOW, span=timedelta(days=700))
                line(size, "seed (700 days)", seconds,
                     detail=f"{db.stat().st_size / 2**20:.0f} MiB")  # fmt: skip
                r = run_case("office", db)
                for key, name in (("first_start", "first start (fills deadlines)"),
                                  ("start", "start-up"), ("jobs", "periodic jobs, one round"),
                                  ("antrian", "/antrian (update in -> handled)"),
                                  ("antrian_work", "/antrian (office + view)"),
                                  ("status_id", "/status #N (update -> handled)"),
                                  ("status_work", "/status #N (office + view)"),
                                  ("status_nik", "/status NIK (update -> handled)"),
                                  ("tap", "tap Verifikasi (update -> handled)"),
                                  ("tap_work", "tap (office + answer)"),
                                  ("recap_1000", "recap render 1k"),
                                  ("recap_10000", "recap render 10k")):  # fmt: skip
                    stall = r.get(key.replace("recap", "stall")) if "recap" in key else None
                    detail = f"event loop blocked at most {stall * 1000:.0f} ms" if stall else ""
                    line(size, name, r[key], detail=detail)
                line(size, "peak RSS (office)", None, rss=r["rss_mib"])
        if "search" in cases:
            with tempfile.TemporaryDirectory() as tmp:
                db = Path(tmp) / "ticketbot.sqlite3"
                seed(db, size, end=NOW, span=timedelta(days=700))
                r = run_case("search", db)
                for key, terms in SEARCHES:
                    line(size, f"/cari {terms}", r[key], detail=f"{r[key + '_found']} found")
        if "report" in cases and size <= 100_000:
            with tempfile.TemporaryDirectory() as tmp:
                for label, span in (("2 years", timedelta(days=730)),
                                    ("1 month", timedelta(days=31))):  # fmt: skip
                    db = Path(tmp) / f"archive-{span.days}.sqlite3"
                    seed(db, size, end=END, span=span)
                    r = run_case("report", db)
                    line(
                        size,
                        f"report Oct 2026 ({label})",
                        r["seconds"],
                        rss=r["rss_mib"],
                        detail=f"{r['tickets']} tickets, {r['passages']} passages,"
                        f" XLSX {r['xlsx_kib']:.0f} KiB, PNG {r['png_kib']:.0f} KiB",
                    )


def line(size: int, name: str, seconds: float | None, *, rss: float | None = None,
         detail: str = "") -> None:  # fmt: skip
    took = "" if seconds is None else (
        f"{seconds * 1000:7.1f} ms" if seconds < 10 else f"{seconds:8.1f} s"
    )  # fmt: skip
    memory = f"{rss:6.0f} MiB" if rss is not None else ""
    print(f"{size:>10} {name:<34} {took:>10} {memory:>10}  {detail}", flush=True)


if __name__ == "__main__":
    main()
