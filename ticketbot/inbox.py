"""The durable inbox (SPEC §6): every update is stored before Telegram may forget it.

python-telegram-bot's Updater confirms updates to Telegram on its next getUpdates, before
their handlers have finished: a crash in between loses them. Here getUpdates is called with
our own offset, and the offset only moves past updates that are already committed to the
`inbox` table; the Application then handles them from its update queue as usual, and each
is marked handled when its handler returns. At start-up, stored updates not yet handled are
handled first. Taps skip the queue (and the store's wait): a tap must be answered within
seconds, whatever backlog of group messages waits and however busy the database is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application

log = logging.getLogger(__name__)
BACKOFF_MAX = 30.0


@dataclass
class Inbox:
    app: Application[Any, Any, Any, Any, Any, Any]
    allowed_updates: Sequence[str]
    poll_timeout: int = 10
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _queued: set[int] = field(default_factory=set, init=False)

    @property
    def services(self) -> Any:
        return self.app.bot_data.services

    async def start(self) -> None:
        """Handle what a crash left unhandled, then start fetching."""
        repo = self.services.repo
        for update_id, payload in await repo.unhandled_updates():
            await self._dispatch(Update.de_json(json.loads(payload), self.app.bot), update_id)
        await self.app.bot.delete_webhook(drop_pending_updates=False)
        offset = await repo.last_update_id()
        self._task = asyncio.create_task(self._poll(None if offset is None else offset + 1))

    async def stop(self) -> None:
        """Stop fetching at once. Updates still queued stay in the inbox for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        queue = self.app.update_queue
        while not queue.empty():
            queue.get_nowait()
            queue.task_done()

    async def _poll(self, offset: int | None) -> None:
        backoff = 1.0
        while True:
            try:
                updates = await self.app.bot.get_updates(
                    offset=offset, timeout=self.poll_timeout,
                    allowed_updates=list(self.allowed_updates),
                    read_timeout=self.poll_timeout + 10,
                )  # fmt: skip
            except InvalidToken:
                log.critical("Telegram refused the bot token; no updates can be fetched")
                raise
            except Conflict:
                log.error("another process is fetching updates with this token (409);"
                          " stop it — retrying in %.0f s", backoff)  # fmt: skip
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            except RetryAfter as error:
                retry = error.retry_after
                await asyncio.sleep(retry if isinstance(retry, int | float) else 5)
                continue
            except (NetworkError, TelegramError) as error:
                log.warning("fetching updates failed (%s); retrying in %.0f s", error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = 1.0
            if not updates:
                continue
            # A tap is handled at once, even before it is stored (the database may be busy):
            # until it is stored the offset does not move, so Telegram would deliver it
            # again after a crash, and handling it twice changes nothing.
            for update in updates:
                if update.callback_query is not None:
                    await self._dispatch(update, update.update_id)
            # Stored first: only then may the next getUpdates confirm them to Telegram.
            await self.services.repo.store_updates(
                [(u.update_id, json.dumps(u.to_dict(), ensure_ascii=False)) for u in updates],
                datetime.now(UTC),
            )
            offset = updates[-1].update_id + 1
            for update in updates:
                await self._dispatch(update, update.update_id)

    async def _dispatch(self, update: Update, update_id: int) -> None:
        if update_id in self._queued:
            return
        self._queued.add(update_id)
        message = update.effective_message
        if message is not None:
            self.services.outbox.saw(message.chat_id, message.message_id)
        if update.callback_query is not None:
            # Taps first: never behind a backlog of group messages, nor waiting for one of
            # the processor's slots (do_process_update is the processor's work without its
            # semaphore).
            processor = self.app.update_processor
            self.app.create_task(
                processor.do_process_update(update, self.app.process_update(update)),
                update=update,
            )
        else:
            await self.app.update_queue.put(update)

    async def handled(self, update_id: int) -> None:
        self._queued.discard(update_id)
        await self.services.repo.mark_handled(update_id, datetime.now(UTC))
