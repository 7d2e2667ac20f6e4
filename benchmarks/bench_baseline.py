"""Benchmark: ticketbot against a bare python-telegram-bot 22 bot on the same strict fake Bot
API, same machine, same load. Prints a table with ratios; asserts nothing.

    .venv/bin/python benchmarks/bench_baseline.py [--updates 200] [--runs 3]

Each bot runs as its own process (`ticketbot run`, and benchmarks/bare_ptb.py), so its CPU
time (each thread's schedstat, in ns) and peak resident memory (VmHWM) are its own. The
load: N intakes, each answered by a card (and the intake deleted), then N taps on those
cards, one at a time (the cost of an update, not of a queue of them). ticketbot runs with
`reminders.ping_gather_seconds = 0`: a hand-off goes at once instead of after the seconds
that combine pings (a tap alone has nothing to combine with: the same code path), so a
tap's span holds its work, not idle time.
CPU is given per update and per Bot API call the bot made (ticketbot does more per update:
a hand-off re-posts the card and deletes the old one; the bare bot edits it). The bare bot
uses python-telegram-bot's default transport (httpx); ticketbot its own (aiohttp).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import form
from ticketbot.emulator.botapi import FakeBotApi
from ticketbot.emulator.simulation import ADB, GROUP_ID, KASI, STAF, Simulation

TOKEN = "424242:BENCH-baseline-not-a-real-token-x"
ROOT = Path(__file__).resolve().parent.parent
IDLE_SECONDS = 10.0  # how long each bot's idle CPU (timers, the long poll) is measured,
# before the intakes and after the taps


def cpu_seconds(pid: int) -> float:
    """CPU time of all the process's threads, in nanoseconds (schedstat), where /proc's
    utime and stime count 10 ms ticks."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def config(path: Path, base_url: str) -> Path:
    path.write_text(
        '[office]\nname = "Disdukcapil Kota Sibolga"\n'
        f'[telegram]\nbase_url = "{base_url}"\ngroup_id = {GROUP_ID}\n'
        "group_messages_per_minute = 60000\nmessages_per_second = 10000\n"
        f"[roles]\nkasi = [{KASI.user_id}]\nadb = [{ADB.user_id}]\nstaf = [{STAF.user_id}]\n"
        '[database]\npath = "office.sqlite3"\n'
        '[smtp]\nhost = "127.0.0.1"\nport = 9\nsecurity = "none"\n'
        'from = "Disdukcapil <disdukcapil@example.go.id>"\n'
        '[recap]\nto = ["admin-dwh@example.go.id"]\ntime = "23:59"\n'
        '[calendar]\nworkdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
        'work_hours = "00:00-23:59"\npublic_holidays = ""\n'
        # A tap's hand-off at once, not after the few seconds that combine pings: the tap's
        # span then holds its own work, not idle time (the path is the same).
        '[reminders]\nmorning_summary = ""\nping_gather_seconds = 0\n'
    )
    path.chmod(0o600)
    return path


def cards(api: FakeBotApi) -> list[int]:
    return [m.message_id for m in api.visible(GROUP_ID)
            if m.from_id == api.bot_id and (m.text or "").startswith("📋")]  # fmt: skip


def bot_calls(api: FakeBotApi) -> int:
    return len([c for c in api.calls if c.method != "getUpdates"])


async def ticketbot_card() -> dict[str, object]:
    """The card ticketbot sends for an intake (text and keyboard), for the bare bot to send
    the same message (`--same-card`)."""
    with tempfile.TemporaryDirectory() as tmp:
        async with Simulation(Path(tmp)) as sim:
            await sim.say(STAF, form(nik="1273014506850001", lembaga="BPJS"))
            sent = sim.api.calls_of("sendMessage")[-1].params
    return {"text": sent["text"], "reply_markup": sent["reply_markup"]}


async def one_run(
    bot: str, n: int, tmp: Path, taps: int | None = None, card_json: Path | None = None
) -> dict[str, float]:
    api = FakeBotApi(token=TOKEN)
    base_url = await api.start()
    api.add_group(GROUP_ID)
    for p in (KASI, ADB, STAF):
        api.add_user(p.user_id, p.first_name, p.last_name)
    if bot == "ticketbot":
        argv = ["-m", "ticketbot", "run", "--config", str(config(tmp / "c.toml", base_url))]
        if os.environ.get("BENCH_PROFILE"):  # where the time goes: python -m cProfile
            argv = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"], *argv]
    else:
        argv = [str(ROOT / "benchmarks" / "bare_ptb.py"), base_url, TOKEN, str(GROUP_ID)]
        argv += [str(card_json)] if card_json is not None else []
    process = await asyncio.create_subprocess_exec(
        sys.executable, *argv, cwd=tmp, env={**os.environ, "TICKETBOT_TELEGRAM_TOKEN": TOKEN},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip

    def intakes_gone() -> bool:
        return all(m.deleted for m in api.messages.values() if m.from_id == STAF.user_id)

    try:
        await api.wait_for_call("getMe" if bot != "ticketbot" else "setMyCommands",
                                timeout=60)  # fmt: skip
        # One intake first, not measured: start-up and the first update's imports done.
        await api.post(STAF.user_id, GROUP_ID, form(nik="1273014506859999", lembaga="Awal"))
        await api.wait_until(lambda: len(cards(api)) == 1, timeout=60)
        out: dict[str, float] = {}
        # Idle CPU (timers, the long poll), shown apart: a span's idle share is subtracted.
        # Measured once the first intake is gone too (its deletion is the last call).
        await api.wait_until(intakes_gone, timeout=60)
        cpu, started = cpu_seconds(process.pid), time.perf_counter()
        await asyncio.sleep(IDLE_SECONDS)
        out["idle_rate"] = (cpu_seconds(process.pid) - cpu) / (time.perf_counter() - started)
        cpu, calls, started = cpu_seconds(process.pid), bot_calls(api), time.perf_counter()
        for i in range(n):  # one at a time: the cost of an update, not of a queue
            await api.post(
                STAF.user_id,
                GROUP_ID,
                form(nik=f"127301{(i % 28) + 1:02d}0685{i + 1:04d}", lembaga=f"B{i}"),
            )
            await api.wait_until(lambda i=i: len(cards(api)) > i + 1)  # type: ignore[misc]
        await api.wait_until(intakes_gone, timeout=300)
        out["intake_s"] = time.perf_counter() - started
        out["intake_cpu"] = cpu_seconds(process.pid) - cpu
        out["intake_calls"] = bot_calls(api) - calls
        answered = len(api.calls_of("answerCallbackQuery"))
        cpu, calls, started = cpu_seconds(process.pid), bot_calls(api), time.perf_counter()
        for i, card in enumerate(cards(api)[1 : (n if taps is None else taps) + 1]):
            # ticketbot re-posts the card at this hand-off; the bare bot edits it.
            done = (api.message(GROUP_ID, card).plain or "").split(" — ")[0] + " — Diverifikasi"
            await api.press(
                KASI.user_id, GROUP_ID, card, api.button_data(GROUP_ID, card, "Verifikasi")
            )

            def shown(i: int = i, done: str = done) -> bool:
                return len(api.calls_of("answerCallbackQuery")) > answered + i and any(
                    (m.plain or "").startswith(done) for m in api.visible(GROUP_ID)
                )

            await api.wait_until(shown)
        out["tap_s"] = time.perf_counter() - started
        out["tap_cpu"] = cpu_seconds(process.pid) - cpu
        out["tap_calls"] = bot_calls(api) - calls
        out["rss"] = peak_rss_mib(process.pid)
        # Idle again, after the taps: the estimate is the mean of the two (the idle CPU comes
        # in lumps: the lanes' and the long poll's timers, the minute's jobs).
        cpu, started = cpu_seconds(process.pid), time.perf_counter()
        await asyncio.sleep(IDLE_SECONDS)
        after = (cpu_seconds(process.pid) - cpu) / (time.perf_counter() - started)
        out["idle_rate"] = (out["idle_rate"] + after) / 2
        return out
    finally:
        process.terminate()
        await process.wait()
        await api.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--taps", type=int, help="taps after the intakes (default: as many)")
    parser.add_argument(
        "--same-card",
        action="store_true",
        help="the bare bot sends ticketbot's card (its text and keyboard)",
    )
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"bare PTB": [], "ticketbot": []}
    with tempfile.TemporaryDirectory() as cards:
        card = None
        if args.same_card:
            card = Path(cards) / "card.json"
            card.write_text(json.dumps(asyncio.run(ticketbot_card())))
        for _ in range(args.runs):
            for bot, runs in results.items():
                with tempfile.TemporaryDirectory() as tmp:
                    runs.append(asyncio.run(one_run(bot, args.updates, Path(tmp), args.taps,
                                                    card)))  # fmt: skip
    n = args.updates
    med = {bot: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
           for bot, runs in results.items()}  # fmt: skip
    taps = n if args.taps is None else args.taps

    def busy(m: dict[str, float], phase: str) -> float:
        """A phase's CPU less the idle CPU of its span."""
        return m[f"{phase}_cpu"] - m["idle_rate"] * m[f"{phase}_s"]

    rows = [
        ("idle CPU (ms per second)", lambda m: m["idle_rate"] * 1000),
        ("intake: CPU per update (ms)", lambda m: m["intake_cpu"] / n * 1000),
        ("intake: Bot API calls per update", lambda m: m["intake_calls"] / n),
        (
            "intake: CPU per Bot API call (ms)",
            lambda m: m["intake_cpu"] / m["intake_calls"] * 1000,
        ),
        ("intake: less idle, per Bot API call (ms)",
         lambda m: busy(m, "intake") / m["intake_calls"] * 1000),
        ("tap: seconds per update", lambda m: m["tap_s"] / taps),
        ("tap: CPU per update (ms)", lambda m: m["tap_cpu"] / taps * 1000),
        ("tap: Bot API calls per update", lambda m: m["tap_calls"] / taps),
        ("tap: CPU per Bot API call (ms)", lambda m: m["tap_cpu"] / m["tap_calls"] * 1000),
        ("tap: less idle, per update (ms)", lambda m: busy(m, "tap") / taps * 1000),
        ("tap: less idle, per Bot API call (ms)",
         lambda m: busy(m, "tap") / m["tap_calls"] * 1000),
        ("peak RSS (MiB)", lambda m: m["rss"]),
    ]  # fmt: skip
    same = " (the bare bot sends ticketbot's card)" if args.same_card else ""
    print(f"{n} intakes then {taps} taps, median of {args.runs} runs{same}")
    print(f"{'':<40} {'bare PTB':>10} {'ticketbot':>10} {'ratio':>7}")
    for name, value in rows:
        if name.startswith("tap") and args.taps == 0:
            continue
        bare, ours = value(med["bare PTB"]), value(med["ticketbot"])
        ratio = f"{ours / bare:>6.2f}x" if bare else f"{'-':>7}"
        print(f"{name:<40} {bare:>10.2f} {ours:>10.2f} {ratio}")


if __name__ == "__main__":
    main()
