"""A real IMAP server on loopback for the demo and the tests: pymap (IMAP4rev1 with IDLE,
in-memory backend) in its own process, so that it can be stopped and started again like a
mail server that goes away. Mail is put in with APPEND over IMAP, as a delivery would."""

from __future__ import annotations

import asyncio
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aioimaplib

USER = "dwh-inbox"
PASSWORD = "not-a-real-password"
# pymap tells systemd when its services listen (notify_ready); here it tells its parent.
START = (
    "import sys, pymap.main as m;"
    " m.notify_ready = lambda: print('ready', flush=True); sys.exit(m.main())"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ImapServer:
    user: str = USER
    password: str = PASSWORD
    port: int = field(default_factory=free_port)
    cert: Path | None = None  # a PEM holding key and certificate: STARTTLS is offered
    process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        tls = ["--cert", str(self.cert), "--key", str(self.cert)] if self.cert else ["--no-tls"]
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", START, "--host", "127.0.0.1", "--port", str(self.port), *tls,
            "dict", "--demo-user", self.user, "--demo-password", self.password,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 60)
        if line.strip() != b"ready":
            raise RuntimeError("the IMAP server did not start")

    async def stop(self) -> None:
        """The server goes away (its in-memory mail with it)."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self.process = None

    async def _client(self) -> aioimaplib.IMAP4:
        client = aioimaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        await client.wait_hello_from_server()
        await client.login(self.user, self.password)
        return client

    async def deliver(self, *raws: bytes, folder: str = "INBOX") -> None:
        """Mail arrives in `folder`, as the office's mail server would put it there."""
        client = await self._client()
        try:
            for raw in raws:
                response = await client.append(raw, mailbox=folder)
                if response.result != "OK":
                    raise RuntimeError(f"APPEND refused: {response.lines}")
        finally:
            await client.logout()

    async def flags(self, folder: str = "INBOX") -> dict[int, str]:
        """Every message's UID and flags (what the bot left on the server)."""
        client = await self._client()
        try:
            await client.select(folder)
            response = await client.fetch("1:*", "(UID FLAGS)")
            found = {}
            for line in response.lines:
                text = bytes(line).decode()
                if "FETCH" in text and "UID " in text:
                    uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
                    found[uid] = (
                        text.split("FLAGS (")[1].split(")")[0] if "FLAGS (" in text else ""
                    )
            return found
        finally:
            await client.logout()
