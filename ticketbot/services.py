"""The one typed object the handlers and jobs use, built in post_init (app.py)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from telegram.ext import Application, CallbackContext, ExtBot, filters

from ticketbot.config import Config
from ticketbot.office import Office
from ticketbot.recap import RecapDesk
from ticketbot.repository import Repository
from ticketbot.texts import Texts
from ticketbot.views import Views

LOCKS_KEPT = 1024  # per-message locks are kept for the most recently used messages only


class MessageLocks:
    """One lock per card or summary, so a render and its edit happen together and an older
    render never lands after a newer one. Bounded: unused, unheld locks are forgotten."""

    def __init__(self, limit: int = LOCKS_KEPT) -> None:
        self._locks: OrderedDict[str, asyncio.Lock] = OrderedDict()
        self._limit = limit

    def __call__(self, key: str) -> asyncio.Lock:
        lock = self._locks.pop(key, None) or asyncio.Lock()
        self._locks[key] = lock
        while len(self._locks) > self._limit:
            oldest, held = next(iter(self._locks.items()))
            if held.locked():
                break
            del self._locks[oldest]
        return lock

    def __len__(self) -> int:
        return len(self._locks)


@dataclass
class Services:
    config: Config
    repo: Repository
    office: Office
    desk: RecapDesk
    views: Views
    texts: Texts
    group_filter: filters.Chat
    locks: MessageLocks = field(default_factory=MessageLocks)
    # Held from a recap action until the group has been told, so that a batch between
    # "sent" and "announced" is never taken for one whose summary was lost in a crash.
    recap_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    overdue_shown: set[tuple[int, datetime]] = field(default_factory=set)


class BotData:
    """PTB's bot_data, typed: the services, once post_init has built them."""

    def __init__(self) -> None:
        self._services: Services | None = None

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
