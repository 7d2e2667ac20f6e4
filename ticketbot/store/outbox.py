"""OutboxStore: see the class."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ticketbot.records import (
    PING_GATHER,
    Effect,
    OutboxItem,
    Placed,
)
from ticketbot.store.database import Database
from ticketbot.store.rows import (
    OUTBOX_COLUMNS,
    PLACE_CARD,
    PROMPT_REFUSALS,
    REFUSAL_GAP,
    from_db_time,
    to_db_time,
)

# The worker's lanes and the effect kinds each delivers: messages one at a time, most urgent
# first; deletions (outside the group's budget) in batches beside them.
LANES: dict[str, tuple[str, ...]] = {
    "messages": ("card", "summary", "send", "ping", "answer"),
    "deletes": ("delete",),
}


# A message is deleted once the reply to it is out (it stays a reply), unless that reply
# waits (refusals to one person go once a minute): whether a reply to it is due and not out.
REPLY_WAITS = (
    "EXISTS (SELECT 1 FROM outbox AS r WHERE r.status = 'pending' AND r.kind = 'send'"
    " AND r.chat_id = {chat} AND r.reply_to = {message} AND r.next_attempt_at <= :now)"
)


# Effects that post a message of their own (a card, a recap summary, an answer) are created
# with their post's intent: `probe_from` is PROBE_AT_RECOVERY, "if this process dies, look
# for the post from the first message id of ours we do not know". Created in the change's
# own fsync'd transaction, the intent needs no transaction of its own before the post.
PLACED_KINDS = ("card", "summary", "answer")
PROBE_AT_RECOVERY = 0


def kinds_sql(kinds: Iterable[str]) -> str:
    """Effect kinds as SQL literals (a closed set, checked). Not bound parameters: a bound
    `kind` makes SQLite prepare the statement again at every run (~30 µs), since the
    partial index `outbox_send_once` (WHERE kind = 'send') may or may not apply to it."""
    known = {k for lane in LANES.values() for k in lane}
    chosen = list(kinds)
    if not set(chosen) <= known:
        raise ValueError(f"unknown effect kinds: {sorted(set(chosen) - known)}")
    return ",".join(f"'{k}'" for k in chosen)


# Where the messages the bot sent are recorded: table, column, and the condition for one
# chat (summaries and mail answers are always in the group). `+chat_id`: a ping's newest is
# read from the ping index, not by walking every card of the chat.
OUR_MESSAGES = (
    ("tickets", "card_message_id", "chat_id = :chat"),
    ("tickets", "ping_message_id", "+chat_id = :chat"),
    ("outbox", "message_id", "kind != 'delete' AND status = 'done' AND chat_id = :chat"),
    ("recap_batches", "summary_message_id", "1"),
    ("mails", "group_message_id", "1"),
)


def lane_of(kind: str) -> str:
    """The worker's lane that delivers an effect of `kind`."""
    return next(lane for lane, kinds in LANES.items() if kind in kinds)


@dataclass
class OutboxStore:
    """The durable outbox: what the group must show, committed with the change that implies it."""

    db: Database

    ping_gather: timedelta = PING_GATHER
    # Set after a commit that queued effects, one per lane of the worker (messages, and
    # deletions): a lane wakes for its own kinds only.
    changed: dict[str, asyncio.Event] = field(
        default_factory=lambda: {lane: asyncio.Event() for lane in LANES}
    )
    # Placed effects created by this process and not tried yet: their intent, stored with
    # them, still holds (after a restart none is fresh: each is looked for before it posts).
    fresh: set[int] = field(default_factory=set)

    async def add(self, effects: Iterable[Effect]) -> None:
        """Inside a write transaction. A card or summary already waiting is not queued
        twice: its generation goes up, so the worker renders it again after delivering.
        Delivery runs on the wall clock, whatever clock the office keeps."""
        stamp = to_db_time(datetime.now(UTC))
        gathered = to_db_time(datetime.now(UTC) + self.ping_gather)
        pinged = {e.target_id for e in effects if e.kind == "ping"}
        for e in effects:
            self.db.after_commit(self.changed[lane_of(e.kind)].set)
            values = {"kind": e.kind, "key": e.key, "chat_id": e.chat_id,
                      "message_id": e.message_id, "target_id": e.target_id, "text": e.text,
                      "reply_to": e.reply_to, "person_id": e.person_id, "stamp": stamp,
                      "due": stamp, "touched": e.touched}  # fmt: skip
            # A person at a human pace hears every refusal at once (SPEC §3): only beyond
            # the first few in a minute are they combined, one a minute.
            flood = (
                e.person_id is not None
                and await self._replies_within_minute(e.person_id, stamp) >= PROMPT_REFUSALS
            )
            if flood and await self._combine_refusal(e):
                continue
            if flood and e.person_id is not None:
                values["due"] = await self._next_reply_slot(e.person_id, stamp)
            if e.not_before is not None:
                values["due"] = max(stamp, to_db_time(e.not_before))
            if e.kind == "ping":
                # Pings falling in the same few seconds for the same people go as one.
                values["due"] = gathered
            elif e.kind == "card" and e.target_id in pinged and await self._standing(e):
                # A hand-off of a card already standing waits as long as its ping: it goes
                # re-posted alone, or edited beside the others' cards under one ping. A new
                # card is never held back.
                values["due"] = gathered
            conflict = (
                # Rendered once more; once touched, touched until delivered.
                "ON CONFLICT (key) WHERE status = 'pending' DO UPDATE SET"
                " generation = generation + 1, touched = max(touched, excluded.touched)"
                if e.kind in ("card", "summary", "ping", "answer")
                else "ON CONFLICT DO NOTHING"
            )
            placed = e.kind in PLACED_KINDS
            values["probe"] = PROBE_AT_RECOVERY if placed else None
            async with self.db.conn.execute(
                "INSERT INTO outbox (kind, key, chat_id, message_id, target_id, text, reply_to,"
                " person_id, created_at, next_attempt_at, touched, probe_from) VALUES (:kind,"
                " :key, :chat_id, :message_id, :target_id, :text, :reply_to, :person_id,"
                " :stamp, :due, :touched, :probe) " + conflict + " RETURNING id, generation",
                values,
            ) as cur:
                row = await cur.fetchone()
            if placed and row is not None and row[1] == 0:  # new, not one waiting already
                self.db.after_commit(functools.partial(self.fresh.add, int(row[0])))

    async def _standing(self, e: Effect) -> bool:
        async with self.db.conn.execute(
            "SELECT card_message_id IS NOT NULL FROM tickets WHERE id = ?", (e.target_id,)
        ) as cur:
            row = await cur.fetchone()
        return bool(row and row[0])

    async def _combine_refusal(self, e: Effect) -> bool:
        """A refusal to a person who already has one waiting for its minute: that one now
        says the newest problems and counts one message more (SPEC §3 "Floods and
        faults"). One that is due or on its way is left alone."""
        cur = await self.db.conn.execute(
            "UPDATE outbox SET text = ?, reply_to = ?, refused = refused + 1"
            " WHERE person_id = ? AND status = 'pending' AND kind = 'send'"
            " AND next_attempt_at > ?",
            (e.text, e.reply_to, e.person_id, to_db_time(datetime.now(UTC))),
        )
        return cur.rowcount > 0

    async def _replies_within_minute(self, person_id: int, stamp: str) -> int:
        since = to_db_time(datetime.fromisoformat(stamp) - REFUSAL_GAP)
        async with self.db.conn.execute(
            "SELECT count(*) FROM outbox WHERE person_id = ? AND created_at > ?",
            (person_id, since),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _next_reply_slot(self, person_id: int, stamp: str) -> str:
        """At most one refusal a minute to one person: a minute after the last one."""
        async with self.db.conn.execute(
            "SELECT max(next_attempt_at) FROM outbox WHERE person_id = ?", (person_id,)
        ) as cur:
            row = await cur.fetchone()
        last = from_db_time(row[0] if row else None)
        now = datetime.fromisoformat(stamp)
        if last is None or now - last >= REFUSAL_GAP:
            return stamp
        return to_db_time(last + REFUSAL_GAP)

    async def enqueue(self, effects: Sequence[Effect], now: datetime | None = None) -> None:
        """Queue effects on their own (replies, notices); `now` is not used: delivery runs
        on the wall clock."""
        async with self.db.transaction():
            await self.add(effects)

    async def due_effects(
        self, now: datetime, kinds: Sequence[str], limit: int = 20
    ) -> list[OutboxItem]:
        async with self.db.conn.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending'"
            f" AND next_attempt_at <= :now AND kind IN ({kinds_sql(kinds)})"
            # A deletion waits while a reply to its message is due (REPLY_WAITS).
            " AND (kind != 'delete' OR NOT "
            + REPLY_WAITS.format(chat="outbox.chat_id", message="outbox.message_id")
            + ")"
            # What people wait for first (a new card, a reply, a notice), then hand-offs (a
            # card that takes its ping along, before the ping that waits for it), then pings,
            # then re-renders of cards already standing (e.g. thirty turning TERLAMBAT at once).
            " ORDER BY CASE WHEN kind = 'send' THEN 0"
            "   WHEN kind = 'card' AND (SELECT card_message_id FROM tickets"
            "     WHERE tickets.id = outbox.target_id) IS NULL THEN 0"
            "   WHEN kind = 'card' AND EXISTS (SELECT 1 FROM outbox AS p WHERE p.status ="
            "     'pending' AND p.kind = 'ping' AND p.target_id = outbox.target_id) THEN 1"
            "   WHEN kind = 'ping' THEN 2 ELSE 3 END, id LIMIT :limit",
            {"now": to_db_time(now), "limit": limit},
        ) as cur:
            return [OutboxItem(*r) for r in await cur.fetchall()]

    async def pending(self, kind: str, target_id: int) -> OutboxItem | None:
        """The effect of `kind` waiting for ticket/batch `target_id`, due or not (one at most:
        a second is folded into it)."""
        async with self.db.conn.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending'"
            f" AND kind = {kinds_sql([kind])} AND target_id = ? ORDER BY id LIMIT 1",
            (target_id,),
        ) as cur:
            row = await cur.fetchone()
        return OutboxItem(*row) if row else None

    async def due_pings(self, now: datetime, limit: int = 50) -> list[OutboxItem]:
        async with self.db.conn.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending' AND kind = 'ping'"
            " AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            (to_db_time(now), limit),
        ) as cur:
            return [OutboxItem(*r) for r in await cur.fetchall()]

    async def next_effect_at(self, kinds: Sequence[str]) -> datetime | None:
        async with self.db.conn.execute(
            "SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending'"
            f" AND kind IN ({kinds_sql(kinds)})"
        ) as cur:
            row = await cur.fetchone()
        return from_db_time(row[0] if row else None)

    async def pending_effects(self) -> int:
        async with self.db.conn.execute(
            "SELECT count(*) FROM outbox WHERE status = 'pending'"
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def effect_done(
        self,
        item: OutboxItem,
        now: datetime,
        message_id: int | None = None,
        *,
        placed: Placed | None = None,
    ) -> bool:
        """Delivered (with where a card or summary now is, when `message_id` names it).
        False when the card was asked for again meanwhile: it stays pending and is rendered
        once more."""
        async with self.db.transaction(synced=False) as conn:
            if placed is not None and message_id is not None:
                if placed.card is not None:  # a post (an edit records no message id)
                    await conn.execute(
                        PLACE_CARD,
                        {"card": message_id, "now": to_db_time(now), "ticket": placed.card},
                    )
                if placed.summary is not None:
                    await conn.execute(
                        "UPDATE recap_batches SET summary_message_id = ? WHERE id = ?",
                        (message_id, placed.summary),
                    )
                if placed.answer is not None:
                    await conn.execute(
                        "UPDATE mails SET group_message_id = ? WHERE id = ?",
                        (message_id, placed.answer),
                    )
            return await self._effect_done(item, now, message_id)

    async def _effect_done(self, item: OutboxItem, now: datetime, message_id: int | None) -> bool:
        cur = await self.db.conn.execute(
            # Delivered: its text (a reply may quote a form) is needed no more.
            "UPDATE outbox SET status = 'done', done_at = ?, message_id = coalesce(?,"
            " message_id), probe_from = NULL, text = NULL WHERE id = ? AND (generation = ?"
            " OR kind NOT IN ('card', 'summary', 'answer', 'ping'))",
            (to_db_time(now), message_id, item.id, item.generation),
        )
        if cur.rowcount == 0:
            await self.db.conn.execute(
                "UPDATE outbox SET probe_from = NULL, attempts = 0 WHERE id = ?", (item.id,)
            )
        return cur.rowcount == 1

    async def deletes_done(
        self, items: Sequence[OutboxItem], notices: Sequence[Effect], now: datetime
    ) -> None:
        """A round of deletions delivered, with the notices of those Telegram refused, in one
        transaction."""
        async with self.db.transaction(synced=False):
            for item in items:
                await self._effect_done(item, now, None)
            await self.add(notices)

    async def pings_done(
        self, items: Sequence[OutboxItem], ticket_ids: Sequence[int], message_id: int | None,
        now: datetime,
    ) -> None:  # fmt: skip
        """Pings delivered as one message (or none: nobody's turn), recorded as the tickets'
        current ping, in one transaction."""
        async with self.db.transaction(synced=False) as conn:
            await conn.executemany(
                "UPDATE tickets SET ping_message_id = ? WHERE id = ?",
                [(message_id, i) for i in ticket_ids],
            )
            for item in items:
                await self._effect_done(item, now, message_id)

    async def handed_off(
        self, card: OutboxItem, ping: OutboxItem, ticket_id: int, card_at: int,
        ping_at: int | None, deletions: Sequence[Effect], deleted: Sequence[Effect],
        now: datetime,
    ) -> None:  # fmt: skip
        """A card delivered with its ping (re-posted with its mentions, or edited when every
        one of them was pinged privately): where the card and the ticket's ping now are, both
        effects done, the deletion of the old card and old ping queued (`deletions`) or
        recorded as done (`deleted`: a tap on the old card is still told what happened), in
        one transaction. A change that came meanwhile keeps its effect pending."""
        async with self.db.transaction(synced=False) as conn:
            await conn.execute(
                PLACE_CARD, {"card": card_at, "now": to_db_time(now), "ticket": ticket_id}
            )
            await conn.execute(
                "UPDATE tickets SET ping_message_id = ? WHERE id = ?", (ping_at, ticket_id)
            )
            await self._effect_done(card, now, card_at)
            await self._effect_done(ping, now, ping_at)
            await self.add(deletions)
            stamp = to_db_time(now)
            if deleted:
                await conn.executemany(
                    "INSERT INTO outbox (kind, key, chat_id, message_id, target_id, created_at,"
                    " next_attempt_at, status, done_at)"
                    " VALUES ('delete', ?, ?, ?, ?, ?, ?, 'done', ?)",
                    [(e.key, e.chat_id, e.message_id, e.target_id, stamp, stamp, stamp)
                     for e in deleted],
                )  # fmt: skip

    async def reply_waits(self, chat_id: int, message_id: int, now: datetime) -> bool:
        """Whether a reply to that message is due and not yet out (the message is deleted
        after it, so it stays a reply)."""
        async with self.db.conn.execute(
            "SELECT " + REPLY_WAITS.format(chat=":chat", message=":message"),
            {"chat": chat_id, "message": message_id, "now": to_db_time(now)},
        ) as cur:
            row = await cur.fetchone()
        return bool(row and row[0])

    async def effect_retry(
        self, item: OutboxItem, at: datetime, error: str, *, probe_from: int | None = None
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?,"
                " last_error = ?, probe_from = coalesce(?, probe_from) WHERE id = ?",
                (to_db_time(at), error, probe_from, item.id),
            )

    async def effect_postpone(self, item: OutboxItem, at: datetime) -> None:
        """Not an attempt: its chat cannot take it before `at` (a 429, a spent budget)."""
        async with self.db.transaction(synced=False) as conn:
            await conn.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE id = ?", (to_db_time(at), item.id)
            )

    async def forget_probe(self, item: OutboxItem) -> None:
        async with self.db.transaction(synced=False) as conn:
            await conn.execute("UPDATE outbox SET probe_from = NULL WHERE id = ?", (item.id,))

    async def effect_failed(self, item: OutboxItem, now: datetime, error: str) -> None:
        async with self.db.transaction(synced=False) as conn:
            await conn.execute(
                "UPDATE outbox SET status = 'failed', done_at = ?, last_error = ?, text = NULL"
                " WHERE id = ?",
                (to_db_time(now), error, item.id),
            )

    async def known_bot_messages(self, chat_id: int, low: int, high: int) -> set[int]:
        """Every message of ours in [low, high] whose id we recorded: cards, summaries,
        pings, reminders, notices and replies (a lost post is none of them)."""
        known: set[int] = set()
        for table, column, where in OUR_MESSAGES:
            async with self.db.conn.execute(
                f"SELECT {column} FROM {table} WHERE {where} AND {column} BETWEEN :low AND :high",
                {"chat": chat_id, "low": low, "high": high},
            ) as cur:
                known |= {int(r[0]) for r in await cur.fetchall()}
        return known

    async def posting_card(self, chat_id: int, ticket_id: int, message_id: int) -> bool:
        """Whether that message may be the ticket's card being posted right now: its post's
        intent is stored (the search for a lost post would start at or before it)."""
        item = await self.pending("card", ticket_id)
        if item is None or item.probe_from is None:
            return False
        return message_id >= await self.probe_start(chat_id, item)

    async def probe_start(self, chat_id: int, item: OutboxItem) -> int:
        """Where a lost post of `item` would be: from its stored intent on, or, for an
        intent stored with the effect, from the first message id of ours not recorded."""
        if item.probe_from is not None and item.probe_from != PROBE_AT_RECOVERY:
            return item.probe_from
        return await self.first_unknown_id(chat_id)

    async def first_unknown_id(self, chat_id: int) -> int:
        """One past the newest message of ours recorded in that chat: each record's newest,
        read from the end of its index (a tap on an old card may ask, at a million tickets)."""
        newest = 0
        for table, column, where in OUR_MESSAGES:
            async with self.db.conn.execute(
                f"SELECT {column} FROM {table} WHERE {where} AND {column} IS NOT NULL"
                f" ORDER BY {column} DESC LIMIT 1",
                {"chat": chat_id},
            ) as cur:
                row = await cur.fetchone()
            newest = max(newest, int(row[0])) if row else newest
        return newest + 1

    async def replaced_card(self, chat_id: int, message_id: int, ticket_id: int) -> bool:
        """Whether that message was the ticket's card before a hand-off re-posted it."""
        async with self.db.conn.execute(
            "SELECT 1 FROM outbox WHERE kind = 'delete' AND chat_id = ? AND message_id = ?"
            " AND target_id = ?",
            (chat_id, message_id, ticket_id),
        ) as cur:
            return await cur.fetchone() is not None

    async def prune(self, before: datetime) -> int:
        """Forget delivered (or failed) effects older than `before`."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM outbox WHERE status != 'pending' AND done_at < ?",
                (to_db_time(before),),
            )
        return cur.rowcount
