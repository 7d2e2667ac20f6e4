"""All SQL lives here: a store per aggregate, all on one database and its one write
transaction (aiogram's HolderDao). Effects for the group are queued by the outbox store in
the transaction of the change that implies them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from ticketbot.domain.lifecycle import SOP_09, Procedure
from ticketbot.records import PING_GATHER
from ticketbot.store.batches import BatchStore
from ticketbot.store.database import Database
from ticketbot.store.events import EventStore
from ticketbot.store.inbox import InboxStore
from ticketbot.store.mails import MailStore
from ticketbot.store.outbox import OutboxStore
from ticketbot.store.people import PeopleStore
from ticketbot.store.reports import ReportStore
from ticketbot.store.rows import Deadline
from ticketbot.store.search import SearchIndex
from ticketbot.store.tickets import TicketStore


@dataclass(frozen=True)
class Stores:
    db: Database
    outbox: OutboxStore
    inbox: InboxStore
    events: EventStore
    tickets: TicketStore
    batches: BatchStore
    people: PeopleStore
    reports: ReportStore
    search: SearchIndex
    mails: MailStore

    @classmethod
    def on(
        cls, db: Database, procedure: Procedure = SOP_09, deadline: Deadline | None = None,
        ping_gather: timedelta = PING_GATHER,
    ) -> Stores:  # fmt: skip
        """Every store on `db`, constructed complete, in dependency order."""
        outbox = OutboxStore(db, ping_gather)
        events = EventStore(db, outbox)
        search = SearchIndex(db)
        tickets = TicketStore(db, outbox, events, search, procedure, deadline)
        return cls(
            db=db, outbox=outbox, inbox=InboxStore(db), events=events, tickets=tickets,
            batches=BatchStore(db, outbox, events, tickets), people=PeopleStore(db, outbox),
            reports=ReportStore(db, outbox, procedure), search=search,
            mails=MailStore(db, outbox, events, tickets),
        )  # fmt: skip

    @classmethod
    async def open(
        cls, path: Path, *, migrate: bool = True, procedure: Procedure = SOP_09,
        deadline: Deadline | None = None, ping_gather: timedelta = PING_GATHER,
    ) -> Stores:  # fmt: skip
        db = await Database.open(path, migrate=migrate)
        return cls.on(db, procedure, deadline, ping_gather)

    async def close(self) -> None:
        await self.db.close()

    async def prune_delivered(self, before: datetime) -> tuple[int, int]:
        """Forget delivered effects and handled updates older than `before` (their work is
        done). Returns (effects, updates) removed."""
        return await self.outbox.prune(before), await self.inbox.prune(before)
