"""The IMAP side of SPEC §4c: watch one folder, store each mail before flagging it.

aioimaplib is the asyncio IMAP client of the field (IDLE included); it has no STARTTLS, so
the upgrade is done here with asyncio's own `loop.start_tls` on its transport. The folder
is read by UID from a checkpoint kept with the stored mail (one transaction), so a crash
anywhere repeats at most a fetch, never a handling; a new UIDVALIDITY reads the folder
again and the Message-IDs already stored are skipped. Nothing is ever deleted or moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

import aioimaplib

from ticketbot.clock import Clock
from ticketbot.config import MailboxConfig
from ticketbot.domain.mail import message_id_of
from ticketbot.mailer import tls_context
from ticketbot.store import Stores

log = logging.getLogger(__name__)
MAX_RETRY_SECONDS = 600.0
COMMAND_TIMEOUT = 60.0
STOP_SECONDS = 3.0  # a stop waits this long for the watcher, then leaves it behind
_FETCH_HEAD = re.compile(rb"\(UID (\d+) RFC822\.SIZE (\d+)|RFC822\.SIZE (\d+) UID (\d+)")
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
LOST = [b"* BYE connection lost"]  # what the watcher's IDLE hears when the server goes


class Problem(StrEnum):
    UNREACHABLE = "unreachable"  # no connection, a timeout, the server went away
    TLS = "tls"  # the certificate is not trusted, or STARTTLS is missing
    LOGIN = "login"  # the server refused the username or password
    FOLDER = "folder"  # the folder does not exist


class MailboxError(Exception):
    def __init__(self, problem: Problem, detail: str) -> None:
        super().__init__(f"{problem}: {detail}")
        self.problem = problem
        self.detail = detail


def message_key(raw: bytes) -> str:
    """A mail's identity: its Message-ID, else a digest of its bytes (copies are one)."""
    return message_id_of(raw) or "sha256:" + hashlib.sha256(raw).hexdigest()


async def _start_tls(client: aioimaplib.IMAP4, host: str, context: ssl.SSLContext) -> None:
    protocol = client.protocol
    response = await protocol.execute(
        aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
    )
    if response.result != "OK":
        raise MailboxError(Problem.TLS, "the server refused STARTTLS")
    loop = asyncio.get_running_loop()
    transport = await loop.start_tls(protocol.transport, protocol, context, server_hostname=host)
    protocol.transport = transport
    await protocol.capability()  # what the server offers may change once encrypted


async def connect(cfg: MailboxConfig) -> aioimaplib.IMAP4:
    """Connected, logged in and the folder selected; MailboxError says what is wrong."""
    context = tls_context(cfg.ca_file)
    try:
        client = (
            aioimaplib.IMAP4_SSL(cfg.host, cfg.port, timeout=COMMAND_TIMEOUT, ssl_context=context)
            if cfg.security == "tls"
            # "none" only on loopback (check-config refuses it elsewhere)
            else aioimaplib.IMAP4(cfg.host, cfg.port, timeout=COMMAND_TIMEOUT)
        )
        # A server that goes away during IDLE must wake the watcher, not leave it waiting.
        client.protocol.conn_lost_cb = lambda _exc: client.protocol.idle_queue.put_nowait(LOST)
        async with asyncio.timeout(COMMAND_TIMEOUT):
            await client.wait_hello_from_server()
        if cfg.security == "starttls":
            if not client.has_capability("STARTTLS"):
                raise MailboxError(Problem.TLS, "the server offers no STARTTLS")
            await _start_tls(client, cfg.host, context)
        login = await client.login(cfg.username, cfg.password.get_secret_value())
    except MailboxError:
        raise
    except ssl.SSLCertVerificationError as error:
        raise MailboxError(
            Problem.TLS, f"certificate not trusted: {error.verify_message}"
        ) from None
    except ssl.SSLError as error:
        raise MailboxError(Problem.TLS, f"TLS failed: {error.reason}") from None
    except (
        OSError,
        TimeoutError,
        aioimaplib.AioImapException,
        asyncio.IncompleteReadError,
    ) as error:
        raise MailboxError(Problem.UNREACHABLE, f"{type(error).__name__}: {error}") from None
    if login.result != "OK":
        raise MailboxError(Problem.LOGIN, _said(login.lines) or "login refused")
    selected = await client.select(_quoted(cfg.folder))
    if selected.result != "OK":
        raise MailboxError(Problem.FOLDER, f"folder {cfg.folder!r}: " + _said(selected.lines))
    return client


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _said(lines: list[bytes]) -> str:
    return " ".join(bytes(b).decode("utf-8", "replace") for b in lines[:1]).strip()


def uidvalidity_of(lines: list[bytes]) -> int:
    for line in lines:
        found = _UIDVALIDITY.search(bytes(line))
        if found:
            return int(found.group(1))
    return 0


async def describe(cfg: MailboxConfig) -> str:
    """`ticketbot mailbox --test`: log in, look at the folder, log out."""
    client = await connect(cfg)
    try:
        selected = await client.select(_quoted(cfg.folder))
        exists = next(
            (int(m.group(1)) for line in selected.lines
             if (m := re.match(rb"(\d+) EXISTS", bytes(line)))), 0,
        )  # fmt: skip
        idle = "IDLE" if client.has_capability("IDLE") else "no IDLE (polled every minute)"
        return (
            f"ok: logged in to {cfg.host}; folder {cfg.folder!r} holds {exists} messages; {idle}"
        )
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await client.logout()


@dataclass
class MailboxWatcher:
    """Keeps the folder read: connect, catch up, then IDLE (or poll), reconnect with
    back-off. `handle` handles what was stored; `trouble`/`recovered` tell the group."""

    cfg: MailboxConfig
    stores: Stores
    clock: Clock
    handle: Callable[[], Awaitable[object]]
    trouble: Callable[[MailboxError], Awaitable[None]]
    recovered: Callable[[], Awaitable[None]]
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.rounds = 0  # folder catch-ups done (tests and the demo wait on it)
        self.failures = 0  # rounds failed in a row (the back-off, and when to tell)
        self._caught_up = asyncio.Condition()

    async def wait_rounds(self, count: int) -> None:
        """Until `count` catch-ups have been done since start."""
        await self.wait_until(lambda w: w.rounds >= count)

    async def wait_until(self, predicate: Callable[[MailboxWatcher], bool]) -> None:
        """Until `predicate` holds after a round or a failed try (the tests, the demo)."""
        async with self._caught_up:
            await self._caught_up.wait_for(lambda: predicate(self))

    async def _changed(self) -> None:
        async with self._caught_up:
            self._caught_up.notify_all()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="mailbox")

    async def stop(self) -> None:
        """Cancelled again until it ends (an asyncio.wait_for inside aioimaplib may drop a
        cancellation on Python 3.11), and left behind after STOP_SECONDS: a stop is never
        held by the mail server."""
        task = self._task
        if task is None:
            return
        deadline = asyncio.get_running_loop().time() + STOP_SECONDS
        while not task.done() and asyncio.get_running_loop().time() < deadline:
            task.cancel()
            await asyncio.wait({task}, timeout=0.2)
        if not task.done():
            log.warning("mailbox: the watcher did not stop within %s s; left behind",
                        STOP_SECONDS)  # fmt: skip
        elif not task.cancelled() and task.exception() is not None:
            log.warning("mailbox: the watcher ended with %r", task.exception())

    async def run(self) -> None:
        while True:
            client = None
            try:
                client = await connect(self.cfg)
                self.connected.set()
                await self._watch(client)
            except asyncio.CancelledError:
                raise
            except MailboxError as error:
                self.failures += 1
                log.warning("mailbox: %s", error)
                await self._told(error)
            except Exception as error:  # the server went away mid-command, a full disk: go on
                self.failures += 1
                log.warning("mailbox: connection lost (%s: %s)", type(error).__name__, error)
                await self._told(MailboxError(Problem.UNREACHABLE, str(error)))
            finally:
                self.connected.clear()
                await self._changed()
                if client is not None:
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(2):
                            await client.logout()
            wait = self.cfg.retry_seconds * 2 ** max(self.failures - 1, 0)
            await asyncio.sleep(min(wait, MAX_RETRY_SECONDS) * self.rng.uniform(0.8, 1.2))

    async def _told(self, error: MailboxError) -> None:
        # A refused login is told at once; a short outage (a restart of the server) only
        # from the third try on. Either is told once (the callee keeps that state).
        if error.problem != Problem.UNREACHABLE or self.failures >= 3:
            try:
                await self.trouble(error)
            except Exception:
                log.exception("mailbox: could not record the trouble")

    async def _watch(self, client: aioimaplib.IMAP4) -> None:
        idle = client.has_capability("IDLE")
        while True:
            # Again until nothing new: a mail that arrives while a round runs is announced
            # outside IDLE, where the client drops the notice.
            found = 1
            while found:
                found = await self.catch_up(client)
                if self.failures:
                    # Back-off ends once a whole round worked, not at login: a round that
                    # fails every time (a full disk) must not spin, nor tell "back" and
                    # "gone" in turn.
                    self.failures = 0
                    await self.recovered()
                self.rounds += 1
                await self._changed()
            if idle:
                # Renewed before servers drop it (RFC 2177: 29 minutes; some cut at 25+).
                waiting = await client.idle_start(timeout=self.cfg.idle_seconds)
                heard = None
                # Not aioimaplib's wait_server_push: Python 3.11's asyncio.wait_for returns a
                # push that lands in the same moment as a cancellation and drops the
                # cancellation (a stop then waited out the IDLE); asyncio.timeout does not.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.cfg.idle_seconds):
                        heard = await client.protocol.idle_queue.get()
                if heard is LOST:
                    waiting.cancel()
                    raise MailboxError(Problem.UNREACHABLE, "the server closed the connection")
                if client.has_pending_idle():
                    client.idle_done()
                async with asyncio.timeout(COMMAND_TIMEOUT):
                    await waiting
            else:
                await asyncio.sleep(self.cfg.poll_seconds)
                await client.protocol.execute(
                    aioimaplib.Command(
                        "NOOP", client.protocol.new_tag(), loop=client.protocol.loop
                    )
                )

    async def catch_up(self, client: aioimaplib.IMAP4) -> int:
        """Store every mail past the checkpoint, flag it, then handle what is stored.
        Returns how many mails were past the checkpoint."""
        folder = self.cfg.folder
        selected = await client.select(_quoted(folder))
        if selected.result != "OK":
            raise MailboxError(Problem.FOLDER, f"folder {folder!r}: " + _said(selected.lines))
        validity = uidvalidity_of(selected.lines)
        mark = await self.stores.mails.checkpoint(folder)
        if mark is None or mark[0] != validity:
            await self.stores.mails.restart_folder(folder, validity)
            mark = (validity, 0)
        listing = await client.uid("fetch", f"{mark[1] + 1}:*", "(UID RFC822.SIZE)")
        found = []
        for line in listing.lines:
            head = _FETCH_HEAD.search(bytes(line))
            if head:
                uid = int(head.group(1) or head.group(4))
                size = int(head.group(2) or head.group(3))
                if uid > mark[1]:  # "n:*" always names the last mail, even below n
                    found.append((uid, size))
        for uid, size in sorted(found):
            raw = await self._fetch(client, uid, headers_only=size > self.cfg.max_bytes)
            if raw is None:
                continue
            key = message_key(raw)
            # A copy of a mail already stored (its Message-ID) is not stored again.
            await self.stores.mails.store_fetched(
                folder, validity, uid, key, raw, size, self.clock()
            )
            # Flagged only once it is stored; the flag is for people reading the folder.
            await client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Seen)")
        await self.handle()
        return len(found)

    async def _fetch(
        self, client: aioimaplib.IMAP4, uid: int, *, headers_only: bool
    ) -> bytes | None:
        part = "BODY.PEEK[HEADER]" if headers_only else "BODY.PEEK[]"
        response = await client.uid("fetch", str(uid), f"(UID {part})")
        for line in response.lines:
            if isinstance(line, bytearray):
                return bytes(line)
        return None
