"""Benchmarks: print numbers, assert nothing. Run: .venv/bin/python benchmarks/bench_office.py

Measures, through the real application and the Bot API emulator over loopback HTTP:
intake latency (/tiket -> handled and its card, ping and deletion delivered), tap latency
(Verifikasi -> answered and the card edited). Intakes one after another need three calls
each against Telegram's 30 calls a second: about every ninth waits ~1 s for the budget (p95).
rendering one recap email with its XLSX for a large batch, and peak memory.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import form
from ticketbot.emulator.simulation import ADB, KASI, STAF, Simulation

TICKETS = 300


def nik(i: int) -> str:
    return f"127301{(i % 28) + 1:02d}0685{i + 1:04d}"


def report(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[int(len(ms) * 0.95) - 1]
    print(f"{name:<34} n={len(ms):<4} median={statistics.median(ms):6.1f} ms  p95={p95:6.1f} ms")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # Latency, not Telegram's budget, is measured here (bench_telegram.py paces).
        settings = {"telegram__group_messages_per_minute": 100_000}
        async with Simulation(Path(tmp), settings=settings) as sim:
            intake, taps, cards = [], [], []
            for i in range(TICKETS):
                started = time.perf_counter()
                await sim.say(STAF, form(nik=nik(i), lembaga=f"Bank {i}"))
                intake.append(time.perf_counter() - started)
            await sim.services.outbox.drained()
            for i in range(TICKETS):
                ticket = await sim.services.repo.tickets.get_ticket(i + 1)
                assert ticket is not None
                assert ticket.card_message_id is not None
                cards.append(ticket.card_message_id)
            for card in cards:
                started = time.perf_counter()
                await sim.tap(KASI, card, "Verifikasi")
                taps.append(time.perf_counter() - started)
                await sim.services.outbox.drained()  # the card shows the ADB's buttons
                await sim.tap(ADB, card, "Konsolidasi")
            report("intake (/tiket -> delivered)", intake)
            report("tap (Verifikasi -> delivered)", taps)
            [batch] = [b for b in [await sim.office.repo.batches.freeze_batch(
                sim.clock().date(), sim.clock(), "example.go.id", allow_empty=False, run=False
            )] if b]  # fmt: skip
            started = time.perf_counter()
            message = await sim.desk.build_message(batch)
            build = time.perf_counter() - started
            size = len(bytes(message))
            label = f"recap email for {TICKETS} tickets"
            print(f"{label:<36} {build * 1000:6.1f} ms, {size / 1024:.0f} KiB")
            db = sim.config.database_path if sim.config else Path()
            print(f"database after {TICKETS} tickets         {db.stat().st_size / 1024:.0f} KiB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak resident memory                 {peak / 1024:.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
