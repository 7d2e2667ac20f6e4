"""The one typed object the handlers and jobs use, built in post_init (app.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from telegram.ext import Application, CallbackContext, ExtBot, filters

from ticketbot.config import Config
from ticketbot.mailbox import MailboxWatcher
from ticketbot.office import Office
from ticketbot.outbox import OutboxWorker
from ticketbot.recap import RecapDesk
from ticketbot.reminders import ReminderDesk
from ticketbot.report import ReportDesk
from ticketbot.retention import Retention
from ticketbot.search import SearchDesk
from ticketbot.store import Stores
from ticketbot.texts import Texts
from ticketbot.views import Views


@dataclass
class Services:
    config: Config
    repo: Stores
    office: Office
    desk: RecapDesk
    views: Views
    texts: Texts
    group_filter: filters.Chat
    outbox: OutboxWorker
    reminders: ReminderDesk
    reports: ReportDesk
    retention: Retention
    search: SearchDesk
    mailbox: MailboxWatcher | None = None  # off when [mailbox] has no host


class Albums:
    """Albums whose first photo opened a ticket: their other photos (the KK's other side, a
    second scan) show the numbers too and are deleted with the intake. Telegram sends an
    album's photos as separate updates that run at once, so a later photo may wait a moment
    for its intake to be read."""

    KEEP = 600.0  # seconds an album is remembered (Telegram sends one within seconds)

    def __init__(self) -> None:
        self._seen: dict[str, tuple[float, asyncio.Event]] = {}

    def _event(self, album: str) -> asyncio.Event:
        now = time.monotonic()
        for key, (at, _) in list(self._seen.items()):
            if now - at > self.KEEP:
                del self._seen[key]
        return self._seen.setdefault(album, (now, asyncio.Event()))[1]

    def opened(self, album: str) -> None:
        self._event(album).set()

    async def of_intake(self, album: str, wait: float = 3.0) -> bool:
        event = self._event(album)
        try:
            async with asyncio.timeout(wait):
                await event.wait()
        except TimeoutError:
            return False
        return True


class BotData:
    """PTB's bot_data, typed: the services, once post_init has built them."""

    def __init__(self) -> None:
        self._services: Services | None = None
        # Updates whose handler met a storage fault (a full disk): run again, not lost.
        self._storage_faults: set[int] = set()
        self.albums = Albums()
        # The body of the last getUpdates answer, as Telegram sent it (app.py wires it to the
        # getUpdates transport; telegram_http.AiohttpRequest.last_body).
        self.last_updates: Callable[[], bytes] = lambda: b""

    def storage_fault(self, update_id: int) -> None:
        self._storage_faults.add(update_id)

    def take_storage_fault(self, update_id: int) -> bool:
        if update_id in self._storage_faults:
            self._storage_faults.discard(update_id)
            return True
        return False

    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("services are built in post_init")
        return self._services

    @services.setter
    def services(self, value: Services) -> None:
        self._services = value

    @property
    def ready(self) -> bool:
        return self._services is not None


Context = CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]
App = Application[Any, Any, Any, Any, BotData, Any]


def services_of(app: Application[Any, Any, Any, Any, Any, Any]) -> Services:
    data: BotData = app.bot_data
    return data.services
