"""Benchmark: the bot at any size of the archive. Prints a table, asserts nothing.

    .venv/bin/python benchmarks/bench_archive.py [--sizes 10000,100000] [--cases report]

Each case runs in a fresh process on a seeded database (benchmarks/archive.py), so its peak
resident memory is its own. Cases:
- seed: writing the archive (tickets and their events);
- report: the monthly report (figures, PNG, XLSX, email text) of the archive's last month,
  and of a month that holds the whole archive (the worst case).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
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

END = datetime(2026, 11, 1, tzinfo=UTC)  # the archive ends where October does


def config_for(db: Path) -> Config:
    data = office_settings("http://127.0.0.1:9/bot", FakeBotApi.token, db, 9)
    return parse_config(data, {}, db.parent)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def case_report(db: Path) -> dict[str, Any]:
    from ticketbot.report import ReportDesk
    from ticketbot.repository import Repository
    from ticketbot.texts import Texts

    config = config_for(db)
    repo = await Repository.open(db)
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


def child(case: str, db: Path) -> None:
    before = peak_mib()
    result = asyncio.run({"report": case_report}[case](db))
    result["rss_mib"] = peak_mib()
    result["rss_before_mib"] = before
    print(json.dumps(result))


def run_case(case: str, db: Path) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603 (this very script, by its own path)
        [sys.executable, __file__, "--child", case, "--db", str(db)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--cases", default="report")
    parser.add_argument("--child")
    parser.add_argument("--db", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.db)
        return
    cases = args.cases.split(",")
    print(f"{'archive':>10} {'case':<34} {'time':>10} {'peak RSS':>10}  detail")
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            for label, span in (("2 years", timedelta(days=730)),
                                ("1 month", timedelta(days=31))):  # fmt: skip
                db = Path(tmp) / f"archive-{span.days}.sqlite3"
                seconds = seed(db, size, end=END, span=span)
                print(f"{size:>10} {'seed (' + label + ')':<34} {seconds:>8.1f} s"
                      f" {'':>10}  {db.stat().st_size / 2**20:.0f} MiB")  # fmt: skip
                if "report" in cases:
                    r = run_case("report", db)
                    print(
                        f"{size:>10} {'report Oct 2026 (' + label + ')':<34}"
                        f" {r['seconds'] * 1000:>7.0f} ms {r['rss_mib']:>6.0f} MiB"
                        f"  {r['tickets']} tickets, {r['passages']} passages,"
                        f" XLSX {r['xlsx_kib']:.0f} KiB, PNG {r['png_kib']:.0f} KiB"
                    )
                sys.stdout.flush()


if __name__ == "__main__":
    main()
