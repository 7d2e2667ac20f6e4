"""The office on one machine: the real application against the Bot API emulator.

The tests and `ticketbot demo` both use this, so the demo cannot drift from what is tested.
People post and tap through the emulator; every step waits until the bot has handled the
update (no sleeping).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ticketbot.app import ALLOWED_UPDATES, build_application, serve
from ticketbot.config import Config, parse_config
from ticketbot.domain.lifecycle import SOP_09, Procedure
from ticketbot.emulator.botapi import FakeBotApi, StoredMessage
from ticketbot.emulator.smtp import SmtpSink
from ticketbot.inbox import Inbox
from ticketbot.jobs import run_recap, sweep_overdue
from ticketbot.office import Office
from ticketbot.recap import RecapDesk
from ticketbot.services import App, Services, services_of

GROUP_ID = -1001234567890
PING_MARK = "🔔"  # how a turn ping begins (templates/telegram/ping.html)
CARD_HEAD = re.compile(r"📋 Tiket #(\d+) — ")  # a card's head (templates/telegram/card.html)
TZ = ZoneInfo("Asia/Jakarta")


@dataclass(frozen=True)
class Person:
    user_id: int
    first_name: str
    last_name: str | None = None

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name


KASI = Person(111111111, "Rina", "Kasi")
ADB = Person(222222222, "Budi", "ADB")
STAF = Person(333333333, "Sari", "Staf")
STAF2 = Person(444444444, "Tono", "Staf")
STRANGER = Person(555555555, "Orang", "Lain")
PEOPLE = (KASI, ADB, STAF, STAF2, STRANGER)


class FakeClock:
    """The bot's clock, moved by hand (the SLA and the recap schedule read it)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def office_settings(
    base_url: str, token: str, database: Path, smtp_port: int, **overrides: Any
) -> dict[str, Any]:
    """A complete configuration (as the TOML tree) for the simulated office."""
    data: dict[str, Any] = {
        "office": {"name": "Dinas Kependudukan dan Pencatatan Sipil Kota Sibolga",
                   "timezone": "Asia/Jakarta", "kode_wilayah": "12.73"},
        "telegram": {"token": token, "base_url": base_url, "group_id": GROUP_ID,
                     "group_messages_per_minute": 600},
        "roles": {"kasi": [KASI.user_id], "adb": [ADB.user_id],
                  "staf": [STAF.user_id, STAF2.user_id]},
        "database": {"path": str(database)},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none",
                 "timeout_seconds": 10,
                 "from": "Disdukcapil Kota Sibolga <disdukcapil@example.go.id>"},
        "recap": {"to": ["admin-dwh@example.go.id"], "time": "15:00"},
        # The morning summary is tested on its own; elsewhere it would be noise.
        "reminders": {"morning_summary": ""},
    }  # fmt: skip
    for key, value in overrides.items():
        section, _, name = key.partition("__")
        data.setdefault(section, {})[name] = value
    return data


@dataclass
class Simulation:
    """Start with `async with Simulation(tmp_dir) as sim:`; stops the bot on exit."""

    directory: Path
    clock: FakeClock = field(
        default_factory=lambda: FakeClock(datetime(2026, 11, 24, 9, 0, tzinfo=TZ))
    )
    settings: Mapping[str, Any] = field(default_factory=dict)
    api: FakeBotApi = field(default_factory=FakeBotApi)
    smtp: SmtpSink = field(default_factory=SmtpSink)
    ping_gather: float = 0.0  # seconds turn pings wait to be combined (production: 3)
    procedure: Procedure = SOP_09  # the office's procedure, or a test's own table

    def __post_init__(self) -> None:
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.app: App | None = None
        self.inbox: Inbox | None = None
        self.config: Config | None = None

    async def __aenter__(self) -> Simulation:
        await self.api.start()
        await self.smtp.start()
        self.api.add_group(GROUP_ID)
        for p in PEOPLE:
            self.api.add_user(p.user_id, p.first_name, p.last_name)
        data = office_settings(
            self.api.base_url, self.api.token, self.directory / "ticketbot.sqlite3",
            self.smtp.port,
            **{"reminders__ping_gather_seconds": self.ping_gather, **self.settings},
        )  # fmt: skip
        self.config = parse_config(data, {}, self.directory, procedure=self.procedure)
        await self.start_bot()
        return self

    async def start_bot(self) -> None:
        assert self.config is not None
        self._stop = asyncio.Event()
        await self.api.release_polls(False)
        ready = asyncio.Event()
        self.app = build_application(self.config, clock=self.clock)
        self.inbox = Inbox(self.app, ALLOWED_UPDATES, poll_timeout=1)
        self._task = asyncio.create_task(
            serve(self.app, self._stop, ready=ready, inbox=self.inbox)
        )
        waiter = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            waiter.cancel()
            self._task.result()  # start-up failed: raise why
        # Jobs run on the simulated clock, by hand (run_jobs), never on the wall clock.
        assert self.app.job_queue is not None
        self.app.job_queue.scheduler.pause()

    async def run_jobs(self) -> None:
        """What the scheduled jobs do, now, on the simulated clock."""
        assert self.app is not None
        await run_recap(self.app)
        await sweep_overdue(self.app)
        await self.services.reminders.tick()
        await self.services.reports.tick()
        await self.services.retention.purge()
        await self.services.outbox.drained()

    async def stop_bot(self) -> None:
        # Answer the pending long poll first: cancelling it mid-request makes PTB's final
        # getUpdates wait a second for its one pooled connection.
        await self.api.release_polls()
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.stop_bot()
        finally:
            await self.api.stop()
            await self.smtp.stop()

    # -- what people do ------------------------------------------------------------------

    @property
    def services(self) -> Services:
        assert self.app is not None
        return services_of(self.app)

    @property
    def desk(self) -> RecapDesk:
        assert self.app is not None
        return services_of(self.app).desk

    @property
    def office(self) -> Office:
        assert self.app is not None
        return services_of(self.app).office

    async def _handled(self, update_id: int) -> None:
        assert self.inbox is not None
        await self.inbox.runner.wait_handled(update_id)
        await self.services.outbox.drained()

    async def say(
        self,
        who: Person,
        text: str,
        *,
        chat_id: int = GROUP_ID,
        photo: bool = False,
        reply_to: int | None = None,
    ) -> int:
        """`who` posts `text` (as a photo caption with photo=True); returns its message id."""
        if reply_to is not None and chat_id == GROUP_ID:
            reply_to = self.card_now(reply_to)  # people reply to the card they see
        update_id, message_id = await self.api.post(
            who.user_id, chat_id, text, photo=photo, reply_to=reply_to
        )
        await self._handled(update_id)
        return message_id

    async def edit(self, message_id: int, text: str, *, chat_id: int = GROUP_ID) -> None:
        """The author of `message_id` edits it to `text` (a caption, for a photo)."""
        await self._handled(await self.api.edit_by_person(chat_id, message_id, text))

    async def tap(self, who: Person, message_id: int, label: str) -> str:
        """`who` taps the button whose label contains `label` on that message, or on the card
        it was (see `card_now`); returns the query id."""
        data = self.button_data(message_id, label)
        return await self.tap_data(who, message_id, data)

    async def tap_data(
        self, who: Person, message_id: int, data: str, *, forged: bool = False
    ) -> str:
        update_id, query_id = await self.api.press(
            who.user_id, GROUP_ID, self.card_now(message_id), data, forged=forged
        )
        await self._handled(update_id)
        return query_id

    def answer_to(self, query_id: str) -> dict[str, Any]:
        """The answerCallbackQuery call for a tap."""
        for call in self.api.calls_of("answerCallbackQuery"):
            if call.params.get("callback_query_id") == query_id:
                return call.params
        raise AssertionError(f"callback query {query_id} was not answered")

    def message(self, message_id: int) -> StoredMessage:
        """The message, or the card it was (see `card_now`)."""
        return self.api.message(GROUP_ID, self.card_now(message_id))

    def card_now(self, message_id: int) -> int:
        """People tap the card they see: a card's message id stands for its ticket's card
        wherever a hand-off has re-posted it since (where the database says it is)."""
        m = self.api.message(GROUP_ID, message_id)
        card = CARD_HEAD.match(m.plain or "")
        if not m.deleted or m.from_id != self.api.bot_id or card is None:
            return message_id
        with contextlib.closing(sqlite3.connect(self.services.repo.db.path)) as db:
            row = db.execute(
                "SELECT card_message_id FROM tickets WHERE id = ?", (int(card[1]),)
            ).fetchone()
        return int(row[0]) if row and row[0] is not None else message_id

    def button_data(self, message_id: int, label: str) -> str:
        """The callback data of a button on that message, or on the card it was."""
        return self.api.button_data(GROUP_ID, self.card_now(message_id), label)

    def last_bot_message(self) -> StoredMessage:
        """The bot's newest message in the group that is not a turn ping (a card, a reply)."""
        return [m for m in self._bot_messages() if not m.text or m.text[:1] != PING_MARK][-1]

    def pings(self) -> list[StoredMessage]:
        """The bot's turn pings standing in the group."""
        return [m for m in self._bot_messages() if (m.text or "")[:1] == PING_MARK]

    def _bot_messages(self) -> list[StoredMessage]:
        return [m for m in self.api.visible(GROUP_ID) if m.from_id == self.api.bot_id]
