"""Benchmark: the group under Telegram's real budget. Prints numbers, asserts nothing.

    .venv/bin/python benchmarks/bench_telegram.py [--burst 100]

- tap -> answer while the group's message budget is spent (a backlog of cards waiting);
- a burst of N intakes, carded against the physical floor: Telegram lets a group receive
  20 messages a minute, so N cards need at least (N - 20) / 20 minutes after the first 20;
- the Kasi's tap in the middle of a flood of 1000 taps by somebody without a role.
The fake Bot API enforces that limit (429 past it) and counts what the bot sent.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import form
from ticketbot.emulator.simulation import GROUP_ID, KASI, STAF, STRANGER, Simulation
from ticketbot.records import PING_GATHER

GROUP_PER_MINUTE = 20


def nik(i: int) -> str:
    return f"127301{(i % 28) + 1:02d}0685{i + 1:04d}"


def cards(sim: Simulation) -> list[int]:
    return [
        m.message_id for m in sim.api.visible(GROUP_ID)
        if m.from_id == sim.api.bot_id and (m.text or "").startswith("📋 <b>Tiket #")
    ]  # fmt: skip


async def run(burst: int) -> None:
    settings = {"telegram__group_messages_per_minute": GROUP_PER_MINUTE}
    with tempfile.TemporaryDirectory() as tmp:
        # Turn pings gathered as in production (the tests' simulation sends them at once).
        gather = PING_GATHER.total_seconds()
        async with Simulation(Path(tmp), settings=settings, ping_gather=gather) as sim:
            sim.api.group_limit = (GROUP_PER_MINUTE, 60.0)  # Telegram's own rule
            started = time.monotonic()
            for i in range(burst):
                await sim.api.post(STAF.user_id, GROUP_ID, form(nik=nik(i), lembaga=f"B {i}"))
            await sim.api.wait_until(lambda: bool(cards(sim)))
            first_card = cards(sim)[0]
            # Taps while the cards of the burst wait for the group's budget.
            answers = []
            for _ in range(20):
                answered = len(sim.api.calls_of("answerCallbackQuery"))
                data = sim.api.button_data(GROUP_ID, first_card, "NIK")
                pressed = time.monotonic()
                await sim.api.press(KASI.user_id, GROUP_ID, first_card, data)
                call = await sim.api.wait_for_call("answerCallbackQuery", answered + 1)
                answers.append(call.at - pressed)
                await asyncio.sleep(0.5)
            ms = sorted(a * 1000 for a in answers)
            print(f"tap -> answer under backlog   n={len(ms)} p50={statistics.median(ms):.0f} ms"
                  f"  p95={ms[int(len(ms) * 0.95) - 1]:.0f} ms  max={ms[-1]:.0f} ms")  # fmt: skip
            await sim.api.wait_until(lambda: len(cards(sim)) >= burst, timeout=burst * 6)
            elapsed = time.monotonic() - started
            floor = max(burst - GROUP_PER_MINUTE, 0) / GROUP_PER_MINUTE * 60
            throttled = len([c for c in sim.api.calls if c.status == 429])
            # Everything else the group was sent meanwhile (the Kasi's combined pings, edits)
            # spends the same budget: the floor for all of it.
            sent = len([c for c in sim.api.calls if c.status == 200 and c.at - started < elapsed
                        and c.method in ("sendMessage", "editMessageText", "sendPhoto")
                        and int(c.params.get("chat_id", 0)) == GROUP_ID])  # fmt: skip
            print(
                f"burst of {burst} intakes carded  {elapsed:.0f} s; floor {floor:.0f} s;"
                f" ratio {elapsed / floor if floor else 0:.2f}; 429s from Telegram: {throttled};"
                f" group messages meanwhile {sent} (their floor"
                f" {max(sent - GROUP_PER_MINUTE, 0) / GROUP_PER_MINUTE * 60:.0f} s)"
            )
            sim.api.calls[:] = [c for c in sim.api.calls if c.status != 429]


async def outsider_flood(taps: int) -> None:
    settings = {"telegram__messages_per_second": 200}
    with tempfile.TemporaryDirectory() as tmp:
        async with Simulation(Path(tmp), settings=settings) as sim:
            await sim.api.post(STAF.user_id, GROUP_ID, form())
            await sim.api.wait_until(lambda: bool(cards(sim)))
            card = cards(sim)[0]
            data = sim.api.button_data(GROUP_ID, card, "Verifikasi")
            started = time.monotonic()
            for _ in range(taps // 2):
                await sim.api.press(STRANGER.user_id, GROUP_ID, card, data)
            pressed = time.monotonic()
            _, kasi = await sim.api.press(KASI.user_id, GROUP_ID, card, data)
            for _ in range(taps - taps // 2):
                await sim.api.press(STRANGER.user_id, GROUP_ID, card, data)
            await sim.api.wait_until(
                lambda: len(sim.api.calls_of("answerCallbackQuery")) == taps + 1, timeout=300
            )
            answers = sim.api.calls_of("answerCallbackQuery")
            [answer] = [c for c in answers if c.params["callback_query_id"] == kasi]
            print(
                f"kasi's tap in a flood of {taps} outsider taps: answered in"
                f" {(answer.at - pressed) * 1000:.0f} ms, {answers.index(answer)} answers"
                f" before it; all {taps + 1} answered in {answers[-1].at - started:.1f} s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=100, help="intakes in the burst")
    parser.add_argument("--flood", type=int, default=1000, help="outsider taps in the flood")
    args = parser.parse_args()
    if args.flood > 0:
        asyncio.run(outsider_flood(args.flood))
    if args.burst > 0:
        asyncio.run(run(args.burst))


if __name__ == "__main__":
    main()
