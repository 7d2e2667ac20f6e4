"""The worker that makes the group show what the database says (SPEC §6).

Effects are committed with the change that implies them (repository `_enqueue`); this worker
delivers them in order, paced by Telegram's real rules, retrying what can be retried:
- messages sent and edits count against the group's budget (20 a minute) and the bot's
  (30 a second); deletions only against the bot's, in a lane of their own, so a flood of
  deletions never holds up a card (a round's recorded in one transaction); callback answers
  never come here at all;
- a 429 pauses only the chat it names, for the `retry_after` it gives;
- a card or summary is never posted twice: the intent (the first message id it could get)
  is stored before the call, and after an outcome we cannot know (a timeout, a crash) the
  next attempt looks for it there before posting again;
- a card is rendered when it is delivered, from the database, so many changes to one card
  while it waits become one edit;
- a card that changes together with whose turn it is goes with its ping: re-posted with the
  mention and the old one deleted right after it when nothing holds that (one group
  message, not an edit and a ping; one round, not two), or edited beside the others' under
  one combined ping when several hand off to the same people.
At start-up the worker simply continues with whatever is pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import html
import logging
import random
import re
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from telegram import Bot, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from ticketbot import telegram_io
from ticketbot.records import (
    Batch,
    Effect,
    OutboxItem,
    Placed,
    Ticket,
    delete_effect,
    send_effect,
)
from ticketbot.store import Stores
from ticketbot.store.mails import StoredMail
from ticketbot.store.outbox import LANES, lane_of
from ticketbot.store.rows import from_db_time
from ticketbot.views import CardView

log = logging.getLogger(__name__)

MESSAGE_KINDS = LANES["messages"]
PING_GROUP = 20  # tickets one ping message may name
DELETE_KINDS = LANES["deletes"]
FORM_BACK = "form-back:"  # the key of a refused form sent back to its sender
PROBE_SPAN = 30  # how many message ids after the intent a lost post is looked for in
PROBE_MISSING = 3  # missing ids in a row that end the search
FIRST_RETRY = 2.0  # seconds; doubled per attempt, jittered, at most MAX_RETRY
MAX_RETRY = 300.0
# A call is counted here when it leaves and by Telegram when it arrives: keep a little apart
# so our own pacing never meets a 429.
MARGIN = 0.25
HOLD_AT_MOST = 1.0  # seconds a lane waits for a chat's budget before it moves on to others
ANSWER_FIRST = 0.5  # seconds group messages wait at most for taps being answered
# Effects that stepped aside for the same slot of a chat's budget get due times microseconds
# apart (each computed when it stepped aside): taken together, the most urgent first, so a
# combined ping whose time came a microsecond earlier does not take a new card's slot.
TOGETHER = timedelta(milliseconds=50)
# Telegram deletes a message only within 48 hours of sending it: a card older than this is
# not re-posted at a hand-off (its old copy would stay).
REPOST_WITHIN = timedelta(hours=47)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Pacer:
    """Telegram's budgets as sliding windows: per group chat (messages and edits) and for
    the whole bot (every call). A 429 pauses the chat it concerns."""

    def __init__(self, group_per_minute: float, per_second: float) -> None:
        self.group_limit = max(int(group_per_minute), 1)
        self.global_limit = max(int(per_second), 1)
        self._group: dict[int, deque[float]] = {}
        self._global: deque[float] = deque()
        self._paused: dict[int, float] = {}

    def refund(self, chat_id: int | None, *, charged: bool) -> None:
        """Telegram refused the call (429): it took no slot of Telegram's, so it gives its
        own back; only the pause Telegram asked for holds the chat."""
        if self._global:
            self._global.pop()
        group = self._group.get(chat_id or 0)
        if charged and group:
            group.pop()

    def pause(self, chat_id: int | None, seconds: float) -> None:
        key = chat_id or 0
        self._paused[key] = max(self._paused.get(key, 0), time.monotonic() + seconds)

    def wait_for(self, chat_id: int | None, *, charged: bool) -> float:
        """Seconds until a call may go; 0 when it may go now (and it is counted)."""
        return self._wait(chat_id, charged=charged, count=True)

    def blocked_for(self, chat_id: int | None, *, charged: bool) -> float:
        """Seconds until a call to `chat_id` may go; nothing is counted."""
        return self._wait(chat_id, charged=charged, count=False)

    def _wait(self, chat_id: int | None, *, charged: bool, count: bool) -> float:
        now = time.monotonic()
        waits = [self._paused.get(chat_id or 0, 0) - now]
        # Deletions leave a fifth of the bot's budget to messages: a flood of them never
        # holds up a card.
        limit = self.global_limit if charged else max(self.global_limit * 4 // 5, 1)
        waits.append(_window_wait(self._global, limit, 1.0 + MARGIN, now))
        group = None
        if charged and chat_id is not None and chat_id < 0:
            group = self._group.setdefault(chat_id, deque())
            waits.append(_window_wait(group, self.group_limit, 60.0 + MARGIN, now))
        wait = max(waits)
        if wait > 0 or not count:
            return wait
        self._global.append(now)
        if group is not None:
            group.append(now)
        return 0.0

    async def acquire(self, chat_id: int | None, *, charged: bool) -> None:
        while (wait := self.wait_for(chat_id, charged=charged)) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)  # a budget frees up at a known time: nothing to await


def _window_wait(window: deque[float], limit: int, period: float, now: float) -> float:
    while window and window[0] <= now - period:
        window.popleft()
    return window[0] + period - now if len(window) >= limit else 0.0


class Renderer(Protocol):
    """What the worker shows, rendered when it is delivered, from the database (group.py's
    `Projection`): so many changes to one card while it waits become one edit."""

    @property
    def group_id(self) -> int: ...

    async def card(self, ticket: Ticket, mention: frozenset[int] | None = None) -> CardView: ...

    async def summary(self, batch: Batch) -> CardView: ...

    async def carried(self, ticket: Ticket) -> bool: ...

    async def shown_at(self, ticket: Ticket) -> int | None: ...

    async def turn(self, ticket: Ticket) -> tuple[int, ...]: ...

    async def ping(
        self, tickets: list[Ticket], only: frozenset[int] | None = None
    ) -> CardView: ...

    @property
    def private_pings(self) -> bool: ...

    async def private_ping(self, tickets: list[Ticket]) -> CardView: ...

    async def answer(self, mail: StoredMail) -> CardView: ...

    def delete_failed(self) -> str: ...

    def refusals_combined(self, more: int) -> str: ...


@dataclass
class OutboxWorker:
    """Two lanes (messages, deletions) over the durable outbox."""

    bot: Bot
    stores: Stores
    renderer: Renderer
    pacer: Pacer
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._changed = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0
        self._last_seen: dict[int, int] = {}
        self._unrecorded: dict[int, Callable[[], Awaitable[object]]] = {}
        self._deleted: list[tuple[OutboxItem, Effect | None]] = []  # this round's, unrecorded
        self._told_no_group: set[int] = set()  # chats already named in the log
        self._answering = 0  # taps being decided and answered (`answer_first`)
        self._answered = asyncio.Event()
        self._answered.set()

    # -- life ------------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._lane(MESSAGE_KINDS), name="outbox-messages"),
            asyncio.create_task(self._lane(DELETE_KINDS), name="outbox-deletes"),
        ]

    async def stop(self) -> None:
        """Stop at once; what is pending stays in the database for the next start."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    @contextlib.asynccontextmanager
    async def answer_first(self) -> AsyncIterator[None]:
        """Around a tap's decision and its answer: the group messages the decision queued
        go after the answer (the presser's spinner stops first), unless the answer takes
        longer than ANSWER_FIRST."""
        self._answering += 1
        self._answered.clear()
        try:
            yield
        finally:
            self._answering -= 1
            if not self._answering:
                self._answered.set()

    async def _after_answers(self) -> None:
        if self._answering:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ANSWER_FIRST):
                    await self._answered.wait()

    def wake(self) -> None:
        for changed in self.stores.outbox.changed.values():
            changed.set()

    def saw(self, chat_id: int, message_id: int) -> None:
        """The newest message id known in a chat: where a lost post would be."""
        if message_id > self._last_seen.get(chat_id, 0):
            self._last_seen[chat_id] = message_id

    async def drained(self, timeout: float = 30, horizon: float = 10) -> None:
        """Wait until nothing is being delivered and nothing is due within `horizon`
        seconds (retries included; a refusal held back for a minute is not waited for).
        For tests and the demo."""
        async with asyncio.timeout(timeout):
            while True:
                async with self._changed:
                    soon = utcnow() + timedelta(seconds=horizon)
                    kinds = MESSAGE_KINDS + DELETE_KINDS
                    due = await self.stores.outbox.due_effects(soon, kinds, 1)
                    if not due and self._busy == 0:
                        return
                    self.wake()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.2):
                            await self._changed.wait()

    # -- the lanes -------------------------------------------------------------------------

    async def _lane(self, kinds: tuple[str, ...]) -> None:
        while True:
            try:
                await self._lane_round(kinds)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database refused even the retry's bookkeeping (a full disk): the lane
                # goes on; what is pending stays pending.
                log.exception("outbox: a delivery round failed; trying again")
                await asyncio.sleep(1)

    async def _lane_round(self, kinds: tuple[str, ...]) -> None:
        # Messages one at a time: what is most urgent is chosen again before each (a new
        # card overtakes thirty re-renders); deletions go in batches.
        items = await self.stores.outbox.due_effects(
            utcnow() + TOGETHER, kinds, 1 if "card" in kinds else 20
        )
        if not items:
            await self._sleep_until_due(kinds)
            return
        if "card" in kinds:
            await self._after_answers()
        for item in items:
            self._busy += 1
            try:
                if item.id in self._unrecorded:
                    # Delivered, but the database could not say so: say it now, never
                    # deliver it twice.
                    await self._unrecorded[item.id]()
                    del self._unrecorded[item.id]
                    continue
                chat = await self._chat_of(item)
                if await self._postponed(item, chat):
                    continue  # not tried: still untried, its intent stands
                try:
                    await self._handle(item, chat)
                finally:
                    # Tried: from now on a post of it may have happened (an edit too: it
                    # leaves the set).
                    self.stores.outbox.fresh.discard(item.id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox: delivering effect %s failed", item.id)
                await self._retry(item, "internal error")
            finally:
                self._busy -= 1
                async with self._changed:
                    self._changed.notify_all()
        await self._record_deleted()

    async def _sleep_until_due(self, kinds: tuple[str, ...]) -> None:
        changed = self.stores.outbox.changed[lane_of(kinds[0])]
        changed.clear()
        next_at = await self.stores.outbox.next_effect_at(kinds)
        wait = 5.0
        if next_at is not None:
            wait = min(max((next_at - utcnow()).total_seconds(), 0.05), 5.0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await changed.wait()

    # -- one effect ------------------------------------------------------------------------

    async def _postponed(self, item: OutboxItem, chat: int | None) -> bool:
        """An effect whose chat cannot take it for a while (a 429's retry_after, the group's
        minute spent) steps aside until then: the lane goes on with other chats' effects."""
        wait = self.pacer.blocked_for(chat, charged=item.kind not in DELETE_KINDS)
        if wait <= HOLD_AT_MOST:
            return False
        await self.stores.outbox.effect_postpone(item, utcnow() + timedelta(seconds=wait))
        return True

    async def _chat_of(self, item: OutboxItem) -> int | None:
        if item.chat_id is not None or item.target_id is None:
            return item.chat_id
        if item.kind == "card":
            ticket = await self.stores.tickets.get_ticket(item.target_id)
            return ticket.chat_id if ticket else None
        return self.renderer.group_id

    async def _handle(self, item: OutboxItem, chat: int | None) -> None:
        try:
            if item.kind == "delete":
                await self.pacer.acquire(chat, charged=False)
                await self._delete(item)
            elif item.kind == "send":
                await self.pacer.acquire(chat, charged=True)
                await self._send(item)
            elif item.kind == "ping":
                await self._ping(item)
            else:
                await self._place(item)
        except RetryAfter as error:
            seconds = _seconds(error.retry_after)
            self.pacer.refund(chat, charged=item.kind not in DELETE_KINDS)
            self.pacer.pause(chat, seconds)
            await self._retry(item, f"429 retry after {seconds:g}s", at=seconds)
        except (Forbidden, BadRequest) as error:
            if chat is not None and chat == self.renderer.group_id and _not_in_group(error):
                self._no_group(chat, error.message)
            else:
                log.error("outbox: Telegram refused effect %s (%s): %s", item.id, item.kind,
                          error.message)  # fmt: skip
            await self.stores.outbox.effect_failed(item, utcnow(), error.message)
        except NetworkError as error:  # 5xx, timeouts, no connection: try again
            await self._retry(item, f"{type(error).__name__}: {error.message}")
        except TelegramError as error:
            await self._retry(item, f"{type(error).__name__}: {error.message}")

    def _no_group(self, chat: int, why: str) -> None:
        """The configured group is not one the bot is in (the example's id, a typo, the
        bot removed): one line saying what to do, once, not an error per message."""
        if chat in self._told_no_group:
            return
        self._told_no_group.add(chat)
        log.error(
            "telegram.group_id: Telegram says %r for the group %s; add the bot to the office"
            " group, send /id there and put the id it answers in [telegram] group_id", why, chat,
        )  # fmt: skip

    async def _record(self, item: OutboxItem, write: Callable[[], Awaitable[object]]) -> None:
        """The bookkeeping of a delivery Telegram has done. If the database refuses it (a
        full disk), it is remembered here and written before anything else is tried with
        this effect, so the effect is not delivered again meanwhile."""
        try:
            await write()
        except sqlite3.Error:
            self._unrecorded[item.id] = write
            raise

    async def _retry(self, item: OutboxItem, error: str, *, at: float | None = None) -> None:
        if at is None:
            at = min(FIRST_RETRY * 2 ** min(item.attempts, 10), MAX_RETRY)
            at *= self.rng.uniform(0.8, 1.2)
        log.warning("outbox: effect %s (%s) will be tried again in %.0f s: %s",
                    item.id, item.kind, at, error)  # fmt: skip
        await self.stores.outbox.effect_retry(item, utcnow() + timedelta(seconds=at), error)

    async def _delete(self, item: OutboxItem) -> None:
        """One deletion of the lane's round; the round's are recorded together
        (`_record_deleted`): a crash before that deletes them again, and a message already
        gone counts as deleted."""
        assert item.chat_id is not None
        assert item.message_id is not None
        deleted = await telegram_io.delete(self.bot, item.chat_id, item.message_id)
        notice = None
        if not deleted and item.chat_id < 0:
            notice = self._delete_refused(item.chat_id, item.message_id, item.key)
        self._deleted.append((item, notice))

    async def _record_deleted(self) -> None:
        """The deletions of one round, and the notices of those Telegram refused, in one
        transaction."""
        if not self._deleted:
            return
        done, self._deleted = self._deleted, []
        items = [item for item, _ in done]
        notices = [notice for _, notice in done if notice is not None]
        try:
            await self.stores.outbox.deletes_done(items, notices, utcnow())
        except sqlite3.Error:
            log.exception("outbox: %s deletions done could not be recorded yet", len(items))
            for item, notice in done:  # remembered one by one (see `_record`)
                self._unrecorded[item.id] = functools.partial(
                    self.stores.outbox.deletes_done, [item], [notice] if notice else [], utcnow()
                )

    async def _send(self, item: OutboxItem) -> None:
        assert item.chat_id is not None
        assert item.text is not None
        text = item.text
        if item.refused > 1:
            text += "\n\n" + self.renderer.refusals_combined(item.refused - 1)
        # Only a person's own refused form, back in their private chat, keeps its numbers
        # (SPEC §3): they fix it and send it again.
        own_form = item.chat_id > 0 and item.key.startswith(FORM_BACK)
        sent = await telegram_io.send(self.bot, item.chat_id, CardView(text, ()), item.reply_to,
                                      redact=not own_form)  # fmt: skip
        self.saw(item.chat_id, sent.message_id)
        await self._record(
            item, lambda: self.stores.outbox.effect_done(item, utcnow(), sent.message_id)
        )

    async def _ping(self, item: OutboxItem) -> None:
        """Turn pings, where the card itself does not notify (`_hand_off` re-posts it when it
        hands off alone): several tickets handing off to the same people within the gathering
        window, a card too old to re-post. A new short message replying to the card names
        them by a clickable mention; their cards go first, edited; a ticket's previous ping is
        taken back."""
        stores, renderer = self.stores, self.renderer
        assert item.target_id is not None
        ticket = await stores.tickets.get_ticket(item.target_id)
        if ticket is None:
            await stores.outbox.effect_failed(item, utcnow(), "no such ticket")
            return
        card = await stores.outbox.pending("card", ticket.id)
        if card is not None:
            # Its card changes too: the card goes with it (`_hand_off`), when it may.
            await stores.outbox.effect_postpone(
                item, max(from_db_time(card.next_attempt_at) or utcnow(), utcnow())
            )
            return
        who = await renderer.turn(ticket)
        items, tickets = [item], [ticket]
        if who:
            # Those due within the gathering window go now, with this one; their cards first,
            # edited like the others' under this ping.
            for other, seen in await self._same_turn(ticket, who, exclude=ticket.id,
                                                     limit=PING_GROUP - 1):  # fmt: skip
                card = await stores.outbox.pending("card", seen.id)
                if card is not None:
                    await self._place(card)
                items.append(other)
                tickets.append(await stores.tickets.get_ticket(seen.id) or seen)
        ids = {t.id for t in tickets}
        for old in {t.ping_message_id for t in tickets if t.ping_message_id}:
            if await stores.tickets.ping_sharers(old) <= ids:  # nobody else still needs it
                await self.pacer.acquire(ticket.chat_id, charged=False)
                await telegram_io.delete(self.bot, ticket.chat_id, old)
        posted = None
        in_group = frozenset(who)
        if who and renderer.private_pings:
            in_group -= await self._ping_privately(who, tickets)
        if in_group:
            await self.pacer.acquire(ticket.chat_id, charged=True)
            view = await renderer.ping(tickets, in_group)
            # A reply to the card, or to the summary that carries the ticket's buttons.
            reply_to = await renderer.shown_at(ticket)
            sent = await telegram_io.send(self.bot, ticket.chat_id, view, reply_to)
            self.saw(ticket.chat_id, sent.message_id)
            posted = sent.message_id
        await self._record(
            item, lambda: stores.outbox.pings_done(items, sorted(ids), posted, utcnow())
        )

    async def _ping_privately(self, who: tuple[int, ...], tickets: list[Ticket]) -> set[int]:
        """reminders.private_pings: each person with a private chat gets the ping there (the
        group's budget is spared); returns who was reached. Someone who blocked the bot is
        pinged in the group, now and from then on."""
        reached: set[int] = set()
        if not who:
            return reached
        view = await self.renderer.private_ping(tickets)
        for user_id in who:
            if not await self.stores.people.has_private_chat(user_id):
                continue
            await self.pacer.acquire(user_id, charged=True)
            try:
                await telegram_io.send(self.bot, user_id, view)
            except Forbidden:
                await self.stores.people.close_private_chat(user_id)
                continue
            reached.add(user_id)
        return reached

    async def _place(self, item: OutboxItem) -> None:
        """A card or a recap summary: render it now, then edit it where it is, or post it
        (after looking for a post whose outcome was lost)."""
        stores, renderer = self.stores, self.renderer
        assert item.target_id is not None
        reply_to: int | None = None
        if item.kind == "card":
            ticket = await stores.tickets.get_ticket(item.target_id)
            if ticket is None:
                await stores.outbox.effect_failed(item, utcnow(), "no such ticket")
                return
            if not item.touched and await renderer.carried(ticket):
                # Its batch's summary shows it, with its buttons (SPEC §3, the group's
                # budget): the card waits, as it was, until the ticket is next touched.
                await self._record(item, lambda: stores.outbox.effect_done(item, utcnow()))
                return
            ping = await stores.outbox.pending("ping", ticket.id)
            if ping is not None and _may_repost(ticket) and not await self._combined(ticket):
                await self._hand_off(item, ticket, ping)
                return
            chat, where = ticket.chat_id, ticket.card_message_id
            # With a ping that goes combined with others, a new card notifies nobody itself.
            view = await renderer.card(ticket, frozenset() if ping is not None else None)
            place = Placed(card=ticket.id)
        elif item.kind == "answer":
            mail = await stores.mails.get(item.target_id)
            if mail is None:
                await stores.outbox.effect_failed(item, utcnow(), "no such mail")
                return
            chat, where = renderer.group_id, mail.group_message_id
            view = await renderer.answer(mail)
            place = Placed(answer=mail.id)
            # A reply to its batch's summary, where that is known.
            batch = await stores.batches.get_batch(mail.batch_id) if mail.batch_id else None
            reply_to = batch.summary_message_id if batch else None
        else:
            batch = await stores.batches.get_batch(item.target_id)
            if batch is None:
                await stores.outbox.effect_failed(item, utcnow(), "no such batch")
                return
            chat, where = renderer.group_id, batch.summary_message_id
            view = await renderer.summary(batch)
            place = Placed(summary=batch.id)

        await self.pacer.acquire(chat, charged=True)
        found = False
        if where is None and self._maybe_posted(item):
            where = await self._find_lost_post(chat, item, view)
            found = where is not None
        if where is not None and await telegram_io.edit(self.bot, chat, where, view):
            self.saw(chat, where)
            at = where if found else None
            await self._record(
                item, lambda: stores.outbox.effect_done(item, utcnow(), at, placed=place)
            )
            return
        await self._post(item, chat, view, place, reply_to)

    async def _hand_off(self, item: OutboxItem, ticket: Ticket, ping: OutboxItem) -> None:
        """A card that changed together with whose turn it is (SPEC §2 "Turn ping"): the
        card itself is re-posted, its "Giliran" links notifying the people the group must
        tell, and the old card and old ping go; one group message instead of an edit and a
        ping. When everyone was pinged privately (or nobody's turn it is) it is edited in
        place. Crash-safe like any post: the intent is stored first, a lost re-post is found
        by the probe, and the private pings (sent after the card, to link to it) and the
        record come after, so a crash repeats a ping rather than loses one."""
        stores, renderer = self.stores, self.renderer
        chat, old_card = ticket.chat_id, ticket.card_message_id
        who = await renderer.turn(ticket)
        private = {u for u in who if renderer.private_pings
                   and await stores.people.has_private_chat(u)}  # fmt: skip
        mention = frozenset(who) - private
        view = await renderer.card(ticket, mention)
        await self.pacer.acquire(chat, charged=True)
        where = None
        if self._maybe_posted(item):  # a post whose outcome was lost: found, and current
            found = await self._find_lost_post(chat, item, view)
            if found is not None and await telegram_io.edit(self.bot, chat, found, view):
                where = found
        if where is None and not mention and old_card is not None:
            where = old_card if await telegram_io.edit(self.bot, chat, old_card, view) else None
        if where is None:
            where = await self._post_intended(item, chat, view)
        else:
            self.saw(chat, where)
        moved = dataclasses.replace(ticket, card_message_id=where)
        blocked = private - await self._ping_privately(tuple(sorted(private)), [moved])
        ping_at = None
        if blocked:  # they blocked the bot since: the group tells them after all
            await self.pacer.acquire(chat, charged=True)
            view = await renderer.ping([moved], frozenset(blocked))
            ping_at = (await telegram_io.send(self.bot, chat, view, where)).message_id
            self.saw(chat, ping_at)
        old = []
        if old_card is not None and old_card != where:
            old.append(delete_effect(chat, old_card, card_of=ticket.id))
        old_ping = ticket.ping_message_id
        if old_ping and await stores.tickets.ping_sharers(old_ping) <= {ticket.id}:
            old.append(delete_effect(chat, old_ping))
        # The old card and ping go now, in this round, when they may: the bookkeeping of a
        # deletion lane round (a transaction, a wake) saved. What cannot go at once is queued
        # for the deletion lane as before (its retries).
        queued: list[Effect] = []
        done: list[Effect] = []
        for effect in old:
            outcome = await self._delete_now(effect)
            (queued if outcome is None else done).append(effect)
            if outcome is False:
                assert effect.chat_id is not None
                assert effect.message_id is not None
                queued.append(self._delete_refused(effect.chat_id, effect.message_id, effect.key))
        await self._record(
            item,
            lambda: stores.outbox.handed_off(item, ping, ticket.id, where, ping_at, queued,
                                             done, utcnow()),
        )  # fmt: skip

    async def _delete_now(self, effect: Effect) -> bool | None:
        """Delete a message at once, unless something holds it (the bot's budget is spent,
        a reply to it waits to go first) or Telegram cannot be asked now: None leaves it to
        the deletion lane. False: Telegram refuses (see `_delete_refused`). A crash before
        the record deletes it again: a message already gone counts as deleted."""
        chat, message_id = effect.chat_id, effect.message_id
        assert chat is not None
        assert message_id is not None
        if self.pacer.blocked_for(chat, charged=False) > 0:
            return None
        if await self.stores.outbox.reply_waits(chat, message_id, utcnow()):
            return None
        await self.pacer.acquire(chat, charged=False)
        try:
            return await telegram_io.delete(self.bot, chat, message_id)
        except RetryAfter as error:
            self.pacer.refund(chat, charged=False)
            self.pacer.pause(chat, _seconds(error.retry_after))
        except TelegramError as error:
            log.warning("outbox: deleting message %s now failed (%s): queued", message_id,
                        error.message)  # fmt: skip
        return None

    def _delete_refused(self, chat_id: int, message_id: int, key: str) -> Effect:
        """Telegram will not delete a message of ours (the bot is not an admin): the group is
        asked to, in a reply to it (once per deletion `key`)."""
        return send_effect(chat_id, self.renderer.delete_failed(), f"delete-failed:{key}",
                           reply_to=message_id)  # fmt: skip

    async def _combined(self, ticket: Ticket) -> bool:
        """Whether other tickets hand off to the same people in the same few seconds (a batch
        confirmed, a burst of intakes): then one combined ping tells them of all (SPEC §2),
        and the cards are placed without notifying, instead of a re-post each."""
        who = await self.renderer.turn(ticket)
        return bool(who) and bool(await self._same_turn(ticket, who, exclude=ticket.id, limit=1))

    async def _same_turn(
        self, ticket: Ticket, who: tuple[int, ...], *, exclude: int, limit: int
    ) -> list[tuple[OutboxItem, Ticket]]:
        """Other pings due within the gathering window for the same people in the same chat
        (up to `limit`), with their tickets."""
        stores, found = self.stores, list[tuple[OutboxItem, Ticket]]()
        for other in await stores.outbox.due_pings(utcnow() + stores.outbox.ping_gather):
            if len(found) >= limit:
                break
            if other.target_id in (None, exclude):
                continue
            t = await stores.tickets.get_ticket(other.target_id)
            if (
                t is not None
                and t.chat_id == ticket.chat_id
                and await self.renderer.turn(t) == who
            ):
                found.append((other, t))
        return found

    async def _post(
        self,
        item: OutboxItem,
        chat: int,
        view: CardView,
        place: Placed,
        reply_to: int | None = None,
    ) -> None:
        message_id = await self._post_intended(item, chat, view, reply_to)
        # Where the card (or summary) now is, recorded with the delivery: one transaction.
        await self._record(
            item,
            lambda: self.stores.outbox.effect_done(item, utcnow(), message_id, placed=place),
        )

    def _maybe_posted(self, item: OutboxItem) -> bool:
        """An intent is stored and an attempt may have posted it (by this process, or by one
        that died): look for the post before posting."""
        return item.probe_from is not None and item.id not in self.stores.outbox.fresh

    async def _post_intended(
        self, item: OutboxItem, chat: int, view: CardView, reply_to: int | None = None
    ) -> int:
        """Post, the intent stored first: if the answer is lost, the post is looked for from
        there on. An effect created by this process and not tried yet has its intent
        already (stored with it, in its change's fsync'd transaction): no write before the
        post."""
        if self._maybe_posted(item) or item.probe_from is None:
            probe_from = self._last_seen.get(chat, 0) + 1
            if self._last_seen.get(chat) is None:
                probe_from = await self.stores.outbox.first_unknown_id(chat)
            await self.stores.outbox.effect_retry(item, utcnow(), "posting", probe_from=probe_from)
        try:
            sent = await telegram_io.send(self.bot, chat, view, reply_to)
        except (RetryAfter, BadRequest, Forbidden):
            # Telegram answered: nothing was posted, there is nothing to look for.
            await self.stores.outbox.forget_probe(item)
            raise
        self.saw(chat, sent.message_id)
        return sent.message_id

    async def _find_lost_post(self, chat: int, item: OutboxItem, view: CardView) -> int | None:
        """After an outcome we could not see: a message of ours from where the intent says
        (`probe_start`) that we never recorded, and that is this card, is the lost post.
        Editing its buttons to the same ones answers "not modified" only on that card (the
        buttons name the ticket); messages of others cannot be edited; a message of ours
        that is something else is left as it was."""
        start = await self.stores.outbox.probe_start(chat, item)
        known = await self.stores.outbox.known_bot_messages(chat, start, start + PROBE_SPAN)
        markup = telegram_io.keyboard(view)
        if markup is None:
            return None  # nothing tells a card without buttons from another message
        missing = 0
        for message_id in range(start, start + PROBE_SPAN):
            if message_id in known:
                continue
            # An edit, even one that finds nothing: Telegram counts it against the group.
            await self.pacer.acquire(chat, charged=True)
            try:
                edited = await self.bot.edit_message_reply_markup(
                    chat, message_id, reply_markup=markup
                )
            except BadRequest as error:
                if "not modified" in error.message.lower():
                    log.info("outbox: found the lost post %s in chat %s", message_id, chat)
                    return message_id
                # Past the chat's newest message every id is missing: stop looking soon.
                missing = missing + 1 if "not found" in error.message.lower() else 0
                if missing >= PROBE_MISSING:
                    break
                continue
            text = edited.text if isinstance(edited, Message) else None
            if text is not None and _head(text) == _head(html_to_plain(view.text)):
                log.info("outbox: found the lost post %s in chat %s (buttons updated)",
                         message_id, chat)  # fmt: skip
                return message_id
            # One of our messages, but not this card: give it back its (lack of) buttons.
            log.warning("outbox: message %s in chat %s is ours but not the lost post",
                        message_id, chat)  # fmt: skip
            await self.pacer.acquire(chat, charged=True)
            with contextlib.suppress(TelegramError):
                await self.bot.edit_message_reply_markup(chat, message_id, reply_markup=None)
        return None


def _may_repost(ticket: Ticket) -> bool:
    """A hand-off re-posts the card only while Telegram still lets the bot delete the old
    one (48 hours after sending it); an older card is edited, and a ping tells whose turn
    it is. A new card (none yet) is posted with its mention."""
    if ticket.card_message_id is None:
        return True
    posted = ticket.card_posted_at
    return posted is not None and utcnow() - posted < REPOST_WITHIN


def html_to_plain(text: str) -> str:
    """What Telegram shows of our HTML (the text a Message carries back)."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def _head(text: str) -> str:
    return text.strip().split("\n", 1)[0].strip()


def _not_in_group(error: TelegramError) -> bool:
    text = error.message.lower()
    return any(words in text for words in ("chat not found", "not a member", "was kicked"))


def _seconds(value: int | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


__all__ = ["OutboxWorker", "Pacer", "delete_effect", "send_effect"]
