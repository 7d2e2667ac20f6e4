"""The resident's data over time (UU 27/2022 PDP): retention and subject access.

- Retention (SPEC §5 `privacy.retention_days`): a closed ticket's phone, name, keterangan and
  photo reference are erased that many days after closure, and its NIK/KK kept only masked,
  so the statistics and the audit trail survive. Open tickets and tickets whose recap still
  waits on the DWH admin are never touched. Each purge is an event; the card in the group
  is re-rendered without the erased data.
- Subject access (`ticketbot export`): everything held on one NIK, as a text a person reads,
  written owner-only; the export itself is an event.
"""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from ticketbot.clock import Clock
from ticketbot.config import Config
from ticketbot.domain.privacy import mask_number
from ticketbot.paths import write_private
from ticketbot.records import BOT_ACTOR, Actor, card_effect
from ticketbot.store import Stores
from ticketbot.texts import Texts

log = logging.getLogger(__name__)


def operator(texts: Texts) -> Actor:
    """Who ran a CLI verb, as the event log names them."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "?"
    return Actor(None, texts.label("records", "operator").format(login=login))


@dataclass
class Retention:
    config: Config
    repo: Stores
    clock: Clock

    def __post_init__(self) -> None:
        self.texts = Texts(self.config.office.timezone)

    @property
    def keep(self) -> timedelta:
        return timedelta(days=self.config.retention_days)

    async def due(self) -> list[int]:
        """The tickets a purge now would erase."""
        return await self.repo.tickets.purgeable(self.clock() - self.keep)

    async def purge(self, actor: Actor = BOT_ACTOR) -> list[int]:
        # The DWH side's answers are about tickets too: their words go with the same rule
        # (sender, verdict and the batch's events stay).
        await self.repo.mails.forget_words(self.clock() - self.keep)
        ids = await self.due()
        if not ids:
            return []
        purged = await self.repo.tickets.purge(
            ids, actor, self.clock(),
            self.texts.label("records", "purge").format(days=self.config.retention_days),
            effects=lambda with_card: [card_effect(i) for i in with_card],
            presets={r for reasons in self.config.reasons.values() for r in reasons},
            erased=self.texts.label("records", "reason_erased"),
        )  # fmt: skip
        # Erased names must leave the search index's old segments, and the erased rows
        # must not live on in the WAL's page images.
        await self.repo.search.compact()
        await self.repo.db.checkpoint()
        log.info("retention: personal data of %s closed tickets erased (kept %s days)",
                 len(purged), self.config.retention_days)  # fmt: skip
        return purged

    async def export(self, nik: str, out: Path, actor: Actor) -> int:
        """Write everything held on `nik` to `out` (owner-only); returns the tickets found.
        The export is recorded against each ticket (or against none when none was found)."""
        tickets, events, batches = await self.repo.tickets.subject_record(nik)
        now = self.clock()
        text = self.texts.render(
            "export.txt", office=self.config.office.name, nik=nik, now=now, tickets=tickets,
            events=events, batches=batches, retention_days=self.config.retention_days,
        )  # fmt: skip
        write_private(out, (text.rstrip("\n") + "\n").encode("utf-8"))
        await self.repo.events.record_access(
            [t.id for t in tickets],
            actor,
            "export",
            now,
            self.texts.label("records", "export").format(nik=mask_number(nik)),
        )
        log.info("export of NIK %s: %s tickets written", mask_number(nik), len(tickets))
        return len(tickets)
