"""Benchmark: fsync'd transactions per intake and per tap, counted by strace on the real
`ticketbot run` (every fsync/fdatasync the process makes). Prints numbers, asserts nothing.
A commit fsyncs the WAL; a checkpoint (SQLite's own, every ~1000 pages) fsyncs the WAL and
then the database file: transactions are the WAL's fsyncs less the database file's.

    .venv/bin/python benchmarks/bench_fsync.py [--count 20]

One intake, waited on until its card (whose mention is the ping) and the intake's deletion
are through the fake Bot API, then one tap (Verifikasi) until its card is re-posted and the
old one deleted; each counted once
the database's own bookkeeping has settled. The first update of a person also stores their
name once per process (one transaction more, not repeated).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import always_open_config, form
from ticketbot.emulator.botapi import FakeBotApi
from ticketbot.emulator.simulation import ADB, GROUP_ID, KASI, STAF
from ticketbot.emulator.smtp import SmtpSink

TOKEN = "424242:BENCH-fsync-not-a-real-token-xyzw"


def syncs(trace: Path) -> int:
    return sum(counts(trace))


def counts(trace: Path) -> tuple[int, int]:
    """(the WAL's fsyncs, every other file's: the database's at checkpoints)."""
    if not trace.exists():
        return 0, 0
    lines = [line for line in trace.read_text().splitlines()
             if "fsync(" in line or "fdatasync(" in line]  # fmt: skip
    wal = sum(1 for line in lines if "-wal>" in line)
    return wal, len(lines) - wal


async def settle(trace: Path) -> int:
    """The count once nothing more is written for a while (the bookkeeping after a call)."""
    last, still = -1, 0
    while still < 5:
        await asyncio.sleep(0.1)
        now = syncs(trace)
        still = still + 1 if now == last else 0
        last = now
    return last


async def run(count: int) -> tuple[tuple[int, int], ...]:
    api = FakeBotApi(token=TOKEN)
    await api.start()
    api.add_group(GROUP_ID)
    for p in (KASI, ADB, STAF):
        api.add_user(p.user_id, p.first_name, p.last_name)
    smtp = SmtpSink()
    await smtp.start()
    with tempfile.TemporaryDirectory() as tmp:
        config = always_open_config(Path(tmp) / "config.toml", api.base_url, smtp.port)
        trace = Path(tmp) / "strace.txt"
        bot = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ticketbot", "run", "--config", str(config),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "TICKETBOT_TELEGRAM_TOKEN": TOKEN},
        )  # fmt: skip
        tracer = None
        try:
            await api.wait_for_call("setMyCommands", 1, timeout=60)
            tracer = await asyncio.create_subprocess_exec(
                "strace", "-f", "-y", "-e", "trace=fsync,fdatasync", "-o", str(trace),
                "-p", str(bot.pid), stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert tracer.stderr is not None
            # strace says on stderr when it has attached to the bot (and its threads).
            while b"attached" not in await asyncio.wait_for(tracer.stderr.readline(), 30):
                pass
            await settle(trace)
            base = counts(trace)
            cards = []
            for i in range(count):
                sends = len(api.calls_of("sendMessage"))
                deletes = len(api.calls_of("deleteMessage"))
                await api.post(STAF.user_id, GROUP_ID, form(nik=f"127301450685{i + 1:04d}"))
                posted = await api.wait_for_call("sendMessage", sends + 1, timeout=60)
                cards.append(int(posted.result["message_id"]))  # its mention is the ping
                await api.wait_for_call("deleteMessage", deletes + 1, timeout=60)
            await settle(trace)
            after_intakes = counts(trace)
            for card in cards:
                sends = len(api.calls_of("sendMessage"))
                deletes = len(api.calls_of("deleteMessage"))
                data = api.button_data(GROUP_ID, card, "Verifikasi")
                await api.press(KASI.user_id, GROUP_ID, card, data)
                # The hand-off: the card re-posted (the ADB mentioned), the old one deleted.
                await api.wait_for_call("sendMessage", sends + 1, timeout=60)
                await api.wait_for_call("deleteMessage", deletes + 1, timeout=60)
            await settle(trace)
            after_taps = counts(trace)
        finally:
            bot.terminate()
            await bot.wait()
            if tracer is not None:
                await tracer.communicate()
            await api.stop()
            await smtp.stop()
    return base, after_intakes, after_taps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("strace") is None:
        print("strace is not installed (apt-get install strace)")
        return
    base, intakes, taps = asyncio.run(run(args.count))
    for what, (wal0, db0), (wal1, db1) in (("intake", base, intakes), ("tap", intakes, taps)):
        n, checkpoints = args.count, db1 - db0
        print(f"per {what}: fsync'd transactions {(wal1 - wal0 - checkpoints) / n:.2f}"
              f"   checkpoints {checkpoints / n:.2f}"
              f"   all fsyncs {(wal1 - wal0 + checkpoints) / n:.2f}   ({n} of each)")  # fmt: skip


if __name__ == "__main__":
    main()
