"""MailStore: see the class."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ticketbot.domain.lifecycle import Transition
from ticketbot.records import BOT_ACTOR, Actor, Effect
from ticketbot.store.database import Database
from ticketbot.store.events import EventStore
from ticketbot.store.outbox import OutboxStore
from ticketbot.store.rows import from_db_time, to_db_time
from ticketbot.store.tickets import TicketStore

MAIL_COLUMNS = (
    "id, message_key, raw, size, handled_at, batch_id, verdict, shown, proposal, applied_at,"
    " applied_by, group_message_id"
)


@dataclass(frozen=True)
class StoredMail:
    id: int
    message_key: str
    raw: bytes | None  # dropped once handled
    size: int
    handled_at: datetime | None
    batch_id: int | None
    verdict: str | None
    shown: dict[str, Any]  # what the group message says, masked
    proposal: dict[str, Any] | None  # {"confirm": [ids], "failed": [[id, reason]]}
    applied_at: datetime | None
    applied_by: str | None
    group_message_id: int | None


def _mail_from(row: Any) -> StoredMail:
    return StoredMail(
        id=int(row[0]), message_key=str(row[1]), raw=row[2], size=int(row[3]),
        handled_at=from_db_time(row[4]), batch_id=row[5], verdict=row[6],
        shown=json.loads(row[7]) if row[7] else {},
        proposal=json.loads(row[8]) if row[8] else None,
        applied_at=from_db_time(row[9]), applied_by=row[10], group_message_id=row[11],
    )  # fmt: skip


@dataclass(frozen=True)
class Handled:
    """What handling one mail decided, written in one transaction."""

    batch_id: int | None
    verdict: str
    shown: dict[str, Any]
    proposal: dict[str, Any] | None
    detail: str  # the batch's event: sender, subject, Message-ID, verdict
    effects: Sequence[Effect] = ()
    undeliver: Transition | None = None  # a permanent bounce: the batch's tickets go back
    refused_by: str = ""


@dataclass
class MailStore:
    """Mail in from the DWH side: stored before it is flagged, handled once, applied once."""

    db: Database
    outbox: OutboxStore
    events: EventStore
    tickets: TicketStore

    async def checkpoint(self, folder: str) -> tuple[int, int] | None:
        async with self.db.conn.execute(
            "SELECT uidvalidity, last_uid FROM mailbox_checkpoints WHERE folder = ?", (folder,)
        ) as cur:
            row = await cur.fetchone()
        return (int(row[0]), int(row[1])) if row else None

    async def restart_folder(self, folder: str, uidvalidity: int) -> None:
        """A new UIDVALIDITY: the folder's UIDs mean other mail now; read it all again
        (Message-IDs already stored are skipped)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO mailbox_checkpoints (folder, uidvalidity, last_uid) VALUES (?, ?, 0)"
                " ON CONFLICT (folder) DO UPDATE SET uidvalidity = excluded.uidvalidity,"
                " last_uid = 0",
                (folder, uidvalidity),
            )

    async def store_fetched(
        self, folder: str, uidvalidity: int, uid: int, key: str, raw: bytes | None, size: int,
        now: datetime,
    ) -> bool:  # fmt: skip
        """The mail and the checkpoint past it, in one transaction. False: a mail with this
        Message-ID was stored before (a second delivery, a copy): nothing more is done."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO mails (message_key, folder, uidvalidity, uid, received_at, size, raw)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_key) DO NOTHING",
                (key, folder, uidvalidity, uid, to_db_time(now), size, raw),
            )
            await conn.execute(
                "INSERT INTO mailbox_checkpoints (folder, uidvalidity, last_uid) VALUES (?, ?, ?)"
                " ON CONFLICT (folder) DO UPDATE SET uidvalidity = excluded.uidvalidity,"
                " last_uid = max(last_uid, excluded.last_uid)",
                (folder, uidvalidity, uid),
            )
        return cur.rowcount == 1

    async def unhandled(self) -> list[StoredMail]:
        async with self.db.conn.execute(
            f"SELECT {MAIL_COLUMNS} FROM mails WHERE handled_at IS NULL ORDER BY id"
        ) as cur:
            return [_mail_from(r) for r in await cur.fetchall()]

    async def get(self, mail_id: int) -> StoredMail | None:
        async with self.db.conn.execute(
            f"SELECT {MAIL_COLUMNS} FROM mails WHERE id = ?", (mail_id,)
        ) as cur:
            row = await cur.fetchone()
        return _mail_from(row) if row else None

    async def mails(self) -> list[StoredMail]:
        async with self.db.conn.execute(f"SELECT {MAIL_COLUMNS} FROM mails ORDER BY id") as cur:
            return [_mail_from(r) for r in await cur.fetchall()]

    async def recap_ids(self) -> dict[str, int]:
        """Every recap's Message-ID, to its batch."""
        async with self.db.conn.execute("SELECT message_id, id FROM recap_batches") as cur:
            return {str(r[0]): int(r[1]) for r in await cur.fetchall()}

    async def told(self, batch_id: int, verdicts: Sequence[str]) -> bool:
        """Whether the group was already told of a mail of these verdicts on the batch."""
        marks = ", ".join("?" * len(verdicts))
        async with self.db.conn.execute(
            f"SELECT 1 FROM mails WHERE batch_id = ? AND verdict IN ({marks})"
            " AND json_extract(shown, '$.told') = 1 LIMIT 1",
            (batch_id, *verdicts),
        ) as cur:
            return await cur.fetchone() is not None

    async def handled(self, mail_id: int, now: datetime, outcome: Handled) -> list[int]:
        """The verdict, the batch's event, a bounce's consequences and the group's message,
        in one transaction; the mail's bytes are dropped. Returns tickets a bounce moved."""
        stamp = to_db_time(now)
        moved: list[int] = []
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE mails SET handled_at = ?, batch_id = ?, verdict = ?, shown = ?,"
                " proposal = ?, raw = NULL WHERE id = ? AND handled_at IS NULL",
                (stamp, outcome.batch_id, outcome.verdict, json.dumps(outcome.shown),
                 json.dumps(outcome.proposal) if outcome.proposal is not None else None,
                 mail_id),
            )  # fmt: skip
            if cur.rowcount != 1:
                return []
            await self.events.insert(
                None, BOT_ACTOR, "mail_in", None, None, stamp, outcome.detail, outcome.batch_id
            )
            if outcome.undeliver is not None and outcome.batch_id is not None:
                changed = await conn.execute(
                    "UPDATE recap_batches SET undelivered = ? WHERE id = ?"
                    " AND undelivered IS NULL",
                    (outcome.refused_by, outcome.batch_id),
                )
                if changed.rowcount == 1:
                    async with conn.execute(
                        "SELECT id FROM tickets WHERE batch_id = ? AND state = ? ORDER BY id",
                        (outcome.batch_id, outcome.undeliver.source),
                    ) as rows:
                        ids = [int(r[0]) for r in await rows.fetchall()]
                    for ticket_id in ids:
                        if await self.tickets.move(
                            ticket_id, outcome.undeliver, BOT_ACTOR, stamp,
                            f"rekap B{outcome.batch_id} ditolak {outcome.refused_by}",
                        ):  # fmt: skip
                            moved.append(ticket_id)
            await self.outbox.add(outcome.effects)
        return moved

    async def forget_words(self, handled_before: datetime) -> int:
        """Retention: what a mail said (its lines, subject, the admin's reasons) is erased
        once it is older than the office keeps personal data."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE mails SET raw = NULL, proposal = NULL, shown = json_remove(shown,"
                " '$.lines', '$.subject', '$.diagnostic') WHERE handled_at < ?"
                " AND (proposal IS NOT NULL OR json_extract(shown, '$.lines') IS NOT NULL"
                " OR json_extract(shown, '$.subject') IS NOT NULL)",
                (to_db_time(handled_before),),
            )
        return cur.rowcount

    async def apply(
        self, mail: StoredMail, actor: Actor, confirm: Transition, resync: Transition,
        now: datetime, effects: Callable[[list[int]], Sequence[Effect]],
    ) -> list[int] | None:  # fmt: skip
        """ "Terapkan": the proposal, once, through the same transitions as "DWH" and
        "Ulang", one event per ticket naming the mail. None: applied already."""
        assert mail.proposal is not None
        stamp = to_db_time(now)
        named = f"email DWH #{mail.id}"
        moved: list[int] = []
        async with self.db.transaction(decisive=True) as conn:
            cur = await conn.execute(
                "UPDATE mails SET applied_at = ?, applied_by = ? WHERE id = ?"
                " AND applied_at IS NULL",
                (stamp, actor.name, mail.id),
            )
            if cur.rowcount != 1:
                return None
            for ticket_id in mail.proposal.get("confirm", []):
                if await self.tickets.move(int(ticket_id), confirm, actor, stamp, named):
                    moved.append(int(ticket_id))
            for ticket_id, reason in mail.proposal.get("failed", []):
                detail = f"{reason} ({named})"
                if await self.tickets.move(int(ticket_id), resync, actor, stamp, detail):
                    moved.append(int(ticket_id))
            await self.events.insert(
                None,
                actor,
                "mail_applied",
                None,
                None,
                stamp,
                f"{named}: {len(moved)} tiket",
                mail.batch_id,
            )
            await self.outbox.add(effects(moved))
        return moved
