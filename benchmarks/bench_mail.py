"""Benchmark: the DWH admin's mail coming in (SPEC §4c). Prints numbers, asserts nothing.

    .venv/bin/python benchmarks/bench_mail.py [--mails 300] [--latency 20]

Against a real IMAP server (pymap on loopback) and the real bot in-process (Simulation):
- throughput: `--mails` answers delivered at once; mails stored and handled per second (the
  group's messages then go at Telegram's pace, which is not counted here);
- latency: APPEND accepted by the server -> the answer's sendMessage at the Bot API fake,
  one mail at a time, with IDLE (median, p95, max);
- memory: a 10 MB mail (a 7.5 MB attachment, base64) fetched, stored, read and handled, in
  a fresh process: peak resident memory over the same process idle.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import mails
from tests.test_mail_in import mailbox_settings, recap_sent
from ticketbot.emulator.imap import ImapServer
from ticketbot.emulator.simulation import Simulation


async def _handled(sim: Simulation, count: int) -> None:
    watcher = sim.services.mailbox
    assert watcher is not None
    while len([m for m in await sim.services.repo.mails.mails() if m.handled_at]) < count:
        await watcher.wait_rounds(watcher.rounds + 1)


async def throughput_and_latency(n: int, reps: int) -> dict[str, Any]:
    imap = ImapServer()
    await imap.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with Simulation(Path(tmp), settings=mailbox_settings(imap)) as sim:
                assert sim.services.mailbox is not None
                await sim.services.mailbox.connected.wait()
                await recap_sent(sim, 10)
                # Latency, one at a time.
                waits = []
                for i in range(reps):
                    sent = len(sim.api.calls_of("sendMessage"))
                    raw = mails.gmail_reply(f"Terima kasih, dicek ({i}).", mid=f"<lat-{i}@x>")
                    await imap.deliver(raw)  # returns once the server accepted the APPEND
                    start = time.perf_counter()
                    await sim.api.wait_for_call("sendMessage", sent + 1, timeout=60)
                    waits.append((time.perf_counter() - start) * 1000)
                # Throughput: n mails at once.
                raws = [mails.gmail_reply(f"#{1 + i % 10} gagal: uji {i}", mid=f"<tp-{i}@x>")
                        for i in range(n)]  # fmt: skip
                start = time.perf_counter()
                await imap.deliver(*raws)
                appended = time.perf_counter() - start
                await _handled(sim, reps + n)
                total = time.perf_counter() - start
                await sim.services.outbox.drained(timeout=600)
    finally:
        await imap.stop()
    waits.sort()
    return {
        "mails": n, "append_s": round(appended, 2), "stored_and_handled_s": round(total, 2),
        "mails_per_s": round(n / total, 1),
        "latency_ms": {"median": round(statistics.median(waits), 1),
                       "p95": round(waits[int(0.95 * (len(waits) - 1))], 1),
                       "max": round(waits[-1], 1), "n": len(waits)},
    }  # fmt: skip


def big_mail() -> bytes:
    # 7.5 MB of attachment is 10 MB once base64'd: what a phone photo of a scan weighs.
    payload = base64.encodebytes(os.urandom(7_500_000)).decode()
    head = mails.gmail_reply("Terlampir hasil pemindaian.", mid="<big@x>").decode()
    head = head.replace('Content-Type: multipart/alternative; boundary="000000000000abc"',
                        'Content-Type: multipart/mixed; boundary="000000000000abc"')  # fmt: skip
    tail = ("--000000000000abc\r\nContent-Type: image/jpeg\r\nContent-Disposition: attachment;"
            " filename=\"scan.jpg\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + payload.replace("\n", "\r\n") + "\r\n--000000000000abc--\r\n")  # fmt: skip
    return (head.rsplit("--000000000000abc--", 1)[0] + tail).encode()


async def memory_case(deliver: bool) -> dict[str, Any]:
    imap = ImapServer()
    await imap.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = mailbox_settings(imap, max_bytes=12 * 1024 * 1024)
            async with Simulation(Path(tmp), settings=settings) as sim:
                assert sim.services.mailbox is not None
                await sim.services.mailbox.connected.wait()
                await recap_sent(sim, 2)
                raw = big_mail()
                size = len(raw)
                base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                if deliver:
                    await imap.deliver(raw)
                    await _handled(sim, 1)
                    await sim.services.outbox.drained()
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    finally:
        await imap.stop()
    return {
        "mail_bytes": size,
        "base_mib": round(base / 1024, 1),
        "peak_mib": round(peak / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mails", type=int, default=300)
    parser.add_argument("--latency", type=int, default=20)
    parser.add_argument("--memory-case", choices=["idle", "big"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_case:
        print(json.dumps(asyncio.run(memory_case(args.memory_case == "big"))))
        return
    result = asyncio.run(throughput_and_latency(args.mails, args.latency))
    print(
        f"throughput: {result['mails']} mails appended in {result['append_s']} s, stored and"
        f" handled in {result['stored_and_handled_s']} s = {result['mails_per_s']} mails/s"
    )
    lat = result["latency_ms"]
    print(f"latency APPEND -> group message (IDLE), {lat['n']} mails: median {lat['median']} ms,"
          f" p95 {lat['p95']} ms, max {lat['max']} ms")  # fmt: skip
    runs = {}
    for case in ("idle", "big"):
        out = subprocess.run(  # noqa: S603 (this very script, by its own path)
            [sys.executable, __file__, "--memory-case", case],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        runs[case] = json.loads(out.strip().splitlines()[-1])
    print(
        f"memory: a {runs['big']['mail_bytes'] / 1e6:.1f} MB mail: peak RSS"
        f" {runs['big']['peak_mib']} MiB vs {runs['idle']['peak_mib']} MiB without it"
        f" (+{runs['big']['peak_mib'] - runs['idle']['peak_mib']:.1f} MiB)"
    )


if __name__ == "__main__":
    main()
