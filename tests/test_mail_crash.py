"""Issue M: `kill -9` of the real `ticketbot run` just after the IMAP server handed it a
mail, before (or while) it stores it. Restarted, the bot handles the mail exactly once: one
row, one message in the group, the tickets unchanged until the ADB taps.

The IMAP server is pymap on loopback; between it and the bot sits a relay in this test
process that passes every byte on and, once the server's answer carrying the mail's body
has gone through, kills the bot (SIGKILL: no finally, no flush)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests import mails
from tests.test_mail_in import recap_sent
from ticketbot.emulator.imap import ImapServer
from ticketbot.emulator.simulation import Simulation, office_settings
from ticketbot.store import Stores


class KillingRelay:
    """Loopback TCP relay to the IMAP server; `armed` kills on the first mail body."""

    def __init__(self, port: int, kill: Callable[[], None]) -> None:
        self.port = port
        self.kill = kill
        self.armed = True
        self.killed_after: bytes = b""
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)

        async def pipe(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, down: bool
        ) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while chunk := await src.read(65536):
                    dst.write(chunk)
                    await dst.drain()
                    if down and self.armed and b"BODY[] {" in chunk:
                        # The server's answer is out to the bot: it dies now.
                        self.armed = False
                        self.killed_after = chunk
                        self.kill()
            dst.close()

        await asyncio.gather(
            pipe(reader, up_writer, down=False), pipe(up_reader, writer, down=True)
        )


def toml_of(data: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "".join(
        f"[{section}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in keys.items())
        for section, keys in data.items()
    )


async def test_kill_9_between_the_servers_answer_and_the_store(tmp_path: Path) -> None:
    imap = ImapServer()
    await imap.start()
    process: asyncio.subprocess.Process | None = None

    def kill() -> None:
        assert process is not None
        process.send_signal(signal.SIGKILL)

    relay = KillingRelay(imap.port, kill)
    relay_port = await relay.start()
    settings = {"mailbox__host": "127.0.0.1", "mailbox__port": relay_port,
                "mailbox__security": "none", "mailbox__username": imap.user,
                "mailbox__password": imap.password, "mailbox__retry_seconds": 0.1}  # fmt: skip
    try:
        async with Simulation(tmp_path, settings=settings) as sim:
            # The office's day in-process: two tickets in a recap the DWH admin answers.
            relay.armed = False
            summary = await recap_sent(sim)
            await sim.stop_bot()
            # The same office, now the real program in its own process.
            data = office_settings(sim.api.base_url, sim.api.token,
                                   tmp_path / "ticketbot.sqlite3", sim.smtp.port)  # fmt: skip
            for key, v in settings.items():
                section, _, name = key.partition("__")
                data.setdefault(section, {})[name] = v
            data.setdefault("recap", {})["time"] = "23:59"
            config = tmp_path / "config.toml"
            config.write_text(toml_of(data))
            config.chmod(0o600)

            async def start() -> asyncio.subprocess.Process:
                ready = len(sim.api.calls_of("setMyCommands")) + 1
                with (tmp_path / "bot.log").open("ab") as log:
                    started = await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "ticketbot", "run", "--config", str(config),
                        stdout=asyncio.subprocess.DEVNULL, stderr=log, env=dict(os.environ),
                    )  # fmt: skip
                await sim.api.wait_for_call("setMyCommands", ready, timeout=60)
                return started

            await sim.api.release_polls(False)
            process = await start()
            sent = len(sim.api.calls_of("sendMessage"))
            relay.armed = True
            await imap.deliver(mails.gmail_reply("Sudah semua.\n#2 gagal: NIK ganda"))
            await asyncio.wait_for(process.wait(), 60)
            assert process.returncode == -signal.SIGKILL and b"BODY[] {" in relay.killed_after
            assert len(sim.api.calls_of("sendMessage")) == sent  # nothing told yet

            process = await start()  # restarted: reads the folder again from its checkpoint
            answer = await sim.api.wait_for_call("sendMessage", sent + 1, timeout=60)
            assert "Jawaban email untuk rekap" in answer.params["text"]
            assert answer.params["reply_parameters"]["message_id"] == summary
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)
            later = [c for c in sim.api.calls_of("sendMessage")[sent:]
                     if "Jawaban email" in c.params["text"]]  # fmt: skip
            assert len(later) == 1

            repo = await Stores.open(tmp_path / "ticketbot.sqlite3", migrate=False)
            try:
                [mail] = await repo.mails.mails()
                assert (mail.verdict, mail.raw) == ("reply", None)
                assert mail.proposal == {"confirm": [1], "failed": [[2, "gagal: NIK ganda"]]}
                assert {t.state for t in await repo.batches.batch_tickets(1)} == {"sent_to_dwh"}
            finally:
                await repo.close()
            await sim.api.release_polls()
    finally:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        await relay.stop()
        await imap.stop()
