"""A real SMTP server on loopback (aiosmtpd) that keeps what it accepted.

It runs in the caller's event loop and binds port 0 on first start, so the OS picks a free
port atomically; a restart (after stop(), to play a mail server that is down) binds the same
port again. It can refuse the next messages with a given reply (e.g. 451 or 550).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class SmtpSink:
    port: int = 0
    received: list[Received] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # replies to DATA, used in order
    tls: ssl.SSLContext | None = None  # implicit TLS (smtp.security = "tls")
    _server: asyncio.Server | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refusals:
            return self.refusals.pop(0)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK: queued"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="sink.localhost"), "127.0.0.1", self.port, ssl=self.tls
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
