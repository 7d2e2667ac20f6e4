"""The durable inbox (SPEC §6): every update is stored before Telegram may forget it.

python-telegram-bot's Updater confirms updates to Telegram on its next getUpdates, before
their handlers have finished: a crash in between loses them. Here getUpdates is called with
our own offset, and the offset only moves past updates that are already committed to the
`inbox` table; the `Runner` then hands them to the Application's handlers, and each is
marked handled when its handlers return. At start-up, stored updates not yet handled are
handled first.

Each update is dispatched once per process (`_dispatched`): a staff tap goes at once, ahead
of the store (a tap must be answered within seconds, whatever backlog of group messages
waits and however busy the database is), everything else once stored. A tap of somebody
without a role is answered on the spot and never decided: a flood of them cannot hold a
staff tap. The loop never dies of an exception: it logs, backs off and tries again (a full
disk included); only a refused token ends it, and then the process stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from telegram import Update
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError
from telegram.ext import Application

from ticketbot import telegram_io
from ticketbot.services import App, Services, services_of
from ticketbot.store.database import HANDLING, Handling

log = logging.getLogger(__name__)
BACKOFF_MAX = 30.0
STORAGE_RETRY = 5.0  # seconds before an update whose handler met a storage fault runs again
STAFF_FIRST = 2.0  # seconds an outsider's tap waits at most for staff taps being decided
KEEP_DISPATCHED = 5000  # ids remembered below the offset (getUpdates never returns them)
# How long the next getUpdates waits for a handler's fsync'd change to carry the stored
# messages to disk before fsyncing them itself (a form's own change takes milliseconds).
DURABLE_WITHIN = 0.05


def storage_fault(error: BaseException | None) -> bool:
    """The database could not write (disk full, I/O error, read-only, locked too long):
    the update's work was not done and is tried again later, not lost."""
    return isinstance(error, sqlite3.OperationalError | sqlite3.DatabaseError) and not (
        isinstance(error, sqlite3.IntegrityError)
    )


def disk_full(error: BaseException) -> bool:
    text = str(error).lower()
    return "disk is full" in text or "disk i/o error" in text or "database or disk" in text


def raw_updates(body: bytes) -> dict[int, Any]:
    """The updates of a getUpdates answer as Telegram sent them, by id (empty when the body
    is not one)."""
    try:
        result = json.loads(body)["result"]
        return {int(u["update_id"]): u for u in result if isinstance(u, dict)}
    except (ValueError, KeyError, TypeError):
        return {}


def payload_of(update: Update, raw: Any = None) -> tuple[Update, str]:
    """The update as stored: as Telegram sent it (`raw`, its JSON object), else serialised
    from the parsed update (python-telegram-bot's `to_dict`, a third of a millisecond). A
    text that is not valid Unicode (a lone surrogate, which Telegram's JSON can carry)
    cannot be stored or sent back: it is replaced, and the update handled as replaced."""
    data = raw if raw is not None else update.to_dict()
    text = json.dumps(data, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
        log.warning("update %s carried invalid Unicode; handled with it replaced",
                    update.update_id)  # fmt: skip
        update = Update.de_json(json.loads(text), update.get_bot())
    return update, text


class Runner:
    """Runs updates through the application's handlers, concurrently (taps on phones race
    for real) and each once; calls `done` when its handlers have returned (not when they
    were cancelled by a stop: it stays unhandled, and runs again at the next start). Waiters
    may wait until an update is handled: the demo and the tests do, instead of sleeping."""

    KEPT = 10_000  # handled ids remembered for waiters; older ones are forgotten

    def __init__(
        self,
        app: Application[Any, Any, Any, Any, Any, Any],
        done: Callable[[Update], Awaitable[None]],
        concurrency: int = 16,
    ) -> None:
        self.app, self._done = app, done
        self._slots = asyncio.Semaphore(concurrency)
        self._running: set[asyncio.Task[None]] = set()
        self.handled: set[int] = set()
        self._order: deque[int] = deque()
        self._changed = asyncio.Condition()

    def run(self, update: Update, *, now: bool = False) -> None:
        """Handle `update`; with `now` (a tap), without waiting for a free slot."""
        task = asyncio.create_task(self._run(update, now=now))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, update: Update, *, now: bool) -> None:
        if not now:
            await self._slots.acquire()
        # The update's decisive change marks it handled in its own transaction.
        HANDLING.set(Handling(update.update_id))
        try:
            await self.app.process_update(update)  # errors go to the error handler
            await self._done(update)
            await self.note_handled(update.update_id)
        finally:
            if not now:
                self._slots.release()

    async def note_handled(self, update_id: int) -> None:
        async with self._changed:
            self.handled.add(update_id)
            self._order.append(update_id)
            if len(self._order) > self.KEPT:
                self.handled.discard(self._order.popleft())
            self._changed.notify_all()

    async def wait_handled(self, update_id: int, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: update_id in self.handled)

    async def stop(self, grace: float) -> None:
        """Let what runs finish within `grace` seconds, then cancel the rest."""
        if self._running:
            await asyncio.wait(set(self._running), timeout=grace)
        for task in set(self._running):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@dataclass
class Inbox:
    app: App
    allowed_updates: Sequence[str]
    poll_timeout: int = 10
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _dispatched: set[int] = field(default_factory=set, init=False)
    _unstored: set[int] = field(default_factory=set, init=False)  # dispatched, not yet stored
    _early: set[int] = field(default_factory=set, init=False)  # handled, mark not written
    _retry: set[int] = field(default_factory=set, init=False)
    _side: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _disk_told: bool = field(default=False, init=False)
    _outsiders: asyncio.Queue[Update] = field(default_factory=asyncio.Queue, init=False)
    _staff_taps: set[int] = field(default_factory=set, init=False)  # being decided
    _no_staff_taps: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _newest_staff_tap: float = field(default=0.0, init=False)
    runner: Runner = field(init=False)

    def __post_init__(self) -> None:
        self.runner = Runner(self.app, self.handled)

    @property
    def services(self) -> Services:
        return services_of(self.app)

    def is_staff(self, user_id: int) -> bool:
        """Has a role: may decide something. Others' taps are answered cheaply."""
        return bool(self.services.config.roles_of(user_id))

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    async def start(self) -> None:
        """Handle what a crash left unhandled, then start fetching."""
        repo = self.services.repo
        for update_id, payload in await repo.inbox.unhandled_updates():
            update = Update.de_json(json.loads(payload), self.app.bot)
            self._dispatched.add(update_id)
            await self._dispatch(update)
        await self.app.bot.delete_webhook(drop_pending_updates=False)
        offset = await repo.inbox.last_update_id()
        self._no_staff_taps.set()
        self._side_task(self._answer_outsiders())
        self._task = asyncio.create_task(self._poll(None if offset is None else offset + 1))

    async def stop(self, grace: float) -> None:
        """Stop fetching at once; let handlers running finish within `grace` seconds.
        Updates not handled stay in the inbox for the next start."""
        for task in [self._task, *self._side]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = None
        await self.runner.stop(grace)

    # -- the loop ------------------------------------------------------------------------

    async def _poll(self, offset: int | None) -> None:
        backoff = 1.0
        while True:
            try:
                offset = await self._round(offset)
                backoff = 1.0
            except InvalidToken:
                log.critical("Telegram refused the bot token; no updates can be fetched")
                raise
            except asyncio.CancelledError:
                raise
            except Conflict:
                log.error("another process is fetching updates with this token (409);"
                          " stop it — retrying in %.0f s", backoff)  # fmt: skip
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
            except RetryAfter as error:
                retry = error.retry_after
                await asyncio.sleep(retry if isinstance(retry, int | float) else 5)
            except TelegramError as error:
                log.warning("fetching updates failed (%s); retrying in %.0f s", error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
            except Exception as error:
                # Anything else (the database refusing the store, a malformed update) is
                # logged and tried again: the offset did not move, so nothing is lost.
                log.exception("the inbox could not take updates; retrying in %.0f s", backoff)
                if disk_full(error):
                    await self._tell_disk_full()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, STORAGE_RETRY)

    async def _round(self, offset: int | None) -> int | None:
        """One getUpdates, stored, dispatched. Returns the next offset."""
        updates = await self.app.bot.get_updates(
            offset=offset, timeout=self.poll_timeout,
            allowed_updates=list(self.allowed_updates),
            read_timeout=self.poll_timeout + 10,
        )  # fmt: skip
        if not updates:
            return offset
        sent = raw_updates(self.app.bot_data.last_updates())
        cleaned = [payload_of(u, sent.get(u.update_id)) for u in updates]
        outsiders = {u.update_id for u, _ in cleaned if self._outsider_tap(u)}
        new_outsiders = [u for u, _ in cleaned
                         if u.update_id in outsiders - self._dispatched]  # fmt: skip
        self._dispatched |= outsiders
        for update in new_outsiders:
            self._outsiders.put_nowait(update)
        # Staff taps at once, even before they are stored (the database may be busy):
        # until stored the offset does not move, so Telegram would deliver them again
        # after a crash, and deciding one twice changes nothing.
        for update, _ in cleaned:
            tap = update.callback_query is not None
            if tap and update.update_id not in self._dispatched:
                self._dispatched.add(update.update_id)
                self._unstored.add(update.update_id)
                await self._dispatch(update)
        # Stored first: only then may the next getUpdates confirm them to Telegram. What
        # comes from chats or people the bot ignores (an outsider's tap, already answered;
        # another chat; a stranger's private message) keeps only its id (SPEC §3).
        fleeting = outsiders | {u.update_id for u, _ in cleaned if not self._kept(u)}
        marked = set(self._early)  # written as handled with the store
        # A message (a form) must survive a power cut once Telegram forgets it, at the next
        # getUpdates: that waits until the store is on disk (below). The store itself is not
        # fsync'd: its handler's change, fsync'd moments later, makes it durable too (one
        # fsync per form, not two). Staff taps need not be: one lost with the power in the
        # moment before its decision commits went unanswered, so its presser taps again;
        # kill -9 loses neither.
        durable = any(u.callback_query is None and u.update_id not in fleeting
                      for u, _ in cleaned)  # fmt: skip
        stored = await self.services.repo.inbox.store_updates(
            [(u.update_id, "" if u.update_id in fleeting else p) for u, p in cleaned],
            datetime.now(UTC), handled=marked | fleeting, synced=False,
        )  # fmt: skip
        self._unstored -= {u.update_id for u, _ in cleaned}
        self._early -= marked
        # Handled while the store ran (taps), or earlier when the mark could not be written
        # (a full disk): marked now that the row is there. Not fsync'd: their work is done,
        # and a mark lost with the power only runs one again at the next start.
        for update_id in sorted(self._early):
            await self.services.repo.inbox.mark_handled(update_id, datetime.now(UTC), synced=False)
            self._early.discard(update_id)
        if self._disk_told:
            self._disk_told = False
            log.warning("the database takes updates again")
        for update, _ in cleaned:
            if update.update_id not in self._dispatched:
                self._dispatched.add(update.update_id)
                await self._dispatch(update)
        if durable:  # the offset moves past these messages once they are on disk
            await self.services.repo.db.durable(stored, within=DURABLE_WITHIN)
        last = updates[-1].update_id
        self._dispatched = {i for i in self._dispatched if i > last - KEEP_DISPATCHED}
        return last + 1

    def _kept(self, update: Update) -> bool:
        """Worth keeping until handled: the office group's messages (a stranger's may carry
        a NIK to delete), and staff's taps and private messages."""
        if update.callback_query is not None:
            return self.is_staff(update.callback_query.from_user.id)
        message, user = update.effective_message, update.effective_user
        if message is None:
            return False
        if message.chat_id == self.services.office.group_id:
            return True
        return message.chat.type == "private" and user is not None and self.is_staff(user.id)

    def _outsider_tap(self, update: Update) -> bool:
        query = update.callback_query
        return query is not None and not self.is_staff(query.from_user.id)

    async def _answer_outsiders(self) -> None:
        """One after another, and each only once no staff tap is being decided (or a
        moment has passed): a flood of them never holds a staff tap's answer."""
        text = self.services.texts.answer("not_staff")
        while True:
            update = await self._outsiders.get()
            # A staff tap is answered within STAFF_FIRST seconds (handlers.py): wait for
            # its answer, never longer.
            hold = self._newest_staff_tap + STAFF_FIRST - time.monotonic()
            if hold > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(hold):
                        await self._no_staff_taps.wait()
            assert update.callback_query is not None
            await telegram_io.answer(update.callback_query, text)
            await self.runner.note_handled(update.update_id)

    def _side_task(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._side.add(task)
        task.add_done_callback(self._side.discard)

    async def _tell_disk_full(self) -> None:
        """Once per episode, straight to the group (the outbox needs the disk too)."""
        if self._disk_told:
            return
        self._disk_told = True
        log.error("the database's disk is full: updates wait at Telegram until there is room")
        try:
            s = self.services
            text = s.texts.render("telegram/disk_full.html")
            await self.app.bot.send_message(s.office.group_id, text, parse_mode="HTML")
        except Exception as error:
            log.error("could not tell the group that the disk is full: %s", error)

    # -- dispatch ------------------------------------------------------------------------

    async def _dispatch(self, update: Update) -> None:
        message = update.effective_message
        if message is not None:
            self.services.outbox.saw(message.chat_id, message.message_id)
        if update.callback_query is not None:
            self._staff_taps.add(update.update_id)
            self._newest_staff_tap = time.monotonic()
            self._no_staff_taps.clear()
        # Taps first: never behind a backlog of group messages, nor waiting for a slot.
        self.runner.run(update, now=update.callback_query is not None)

    def retry_later(self, update: Update) -> None:
        """Its handler met a storage fault: it stays unhandled and runs again soon."""
        self._retry.add(update.update_id)

        async def again() -> None:
            await asyncio.sleep(STORAGE_RETRY)
            self._retry.discard(update.update_id)
            await self._dispatch(update)

        self._side_task(again())

    async def handled(self, update: Update) -> None:
        update_id = update.update_id
        self._staff_taps.discard(update_id)
        if not self._staff_taps:
            self._no_staff_taps.set()
        if self.app.bot_data.take_storage_fault(update_id):
            self.retry_later(update)  # not done: it stays unhandled and runs again
            return
        if update_id in self._retry:
            return
        if update_id in self._unstored:
            # Handled before its store commits: the store (or the round after it) records
            # it as handled; there is no row to mark yet.
            self._early.add(update_id)
            return
        handling = HANDLING.get()
        if handling is not None and handling.update_id == update_id and handling.marked:
            return  # marked with its change: one transaction, one fsync, fewer
        try:
            # A tap's mark lost with the power only runs the tap again at the next start,
            # which changes nothing (every transition is a compare-and-set).
            await self.services.repo.inbox.mark_handled(
                update_id, datetime.now(UTC), synced=update.callback_query is None
            )
        except Exception as error:
            # The work is done; the mark is written with the next store that succeeds.
            log.error("could not mark update %s handled: %s", update_id, error)
            self._early.add(update_id)
