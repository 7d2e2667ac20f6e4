"""The DWH admin's mail, handled (SPEC §4c): what each stored mail means for its batch, what
the group is shown, and "Terapkan". The IMAP side is mailbox.py; reading a mail is
domain/mail.py; this is where the two meet the tickets."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from ticketbot.clock import Clock
from ticketbot.config import Config
from ticketbot.domain.lifecycle import Action, State, Transition
from ticketbot.domain.mail import (
    ONCE_PER_BATCH,
    Kind,
    Mail,
    Verdict,
    answer_lines,
    batch_of_refs,
    propose,
    read_mail,
    trusted_sender,
)
from ticketbot.domain.privacy import redact_personal
from ticketbot.mailbox import MailboxError
from ticketbot.records import (
    Batch,
    Effect,
    answer_effect,
    card_effect,
    send_effect,
    summary_effect,
)
from ticketbot.store import Stores
from ticketbot.store.mails import Handled, StoredMail
from ticketbot.texts import Texts
from ticketbot.xlsx import read_dwh_answers

log = logging.getLogger(__name__)
TROUBLE_KEY = "mailbox_trouble"  # the setting that says the group was told of an outage


@dataclass
class MailDesk:
    config: Config
    stores: Stores
    texts: Texts
    clock: Clock
    group_id: Callable[[], int]  # the office's group, as it follows a migration

    async def handle_pending(self) -> int:
        """Every stored, unhandled mail, oldest first; one bad mail never stops the rest."""
        count = 0
        for stored in await self.stores.mails.unhandled():
            try:
                outcome = await self.decide(stored)
            except Exception:
                log.exception("mail %s could not be read; recorded as malformed", stored.id)
                outcome = Handled(None, Verdict.MALFORMED, {}, None,
                                  f"email #{stored.id} tidak terbaca")  # fmt: skip
            moved = await self.stores.mails.handled(stored.id, self.clock(), outcome)
            if moved:
                log.info("mail %s: recap bounced; %d tickets go out again", stored.id, len(moved))
            count += 1
        return count

    async def decide(self, stored: StoredMail) -> Handled:
        mail = read_mail(stored.raw or b"", stored.size, self.config.mailbox.max_bytes)
        batch = await self._batch_of(mail)
        subject = redact_personal(mail.subject)[:200]
        detail = (f"email #{stored.id} dari {mail.sender or '?'}; subjek: {subject};"
                  f" Message-ID {mail.message_id or '-'}")  # fmt: skip
        if batch is None:
            return Handled(None, Verdict.UNMATCHED, {}, None, f"{detail}; tidak cocok")
        shown: dict[str, Any] = {
            "sender": mail.sender, "sender_name": redact_personal(mail.sender_name)[:80],
            "date": mail.date.isoformat() if mail.date else None, "subject": subject,
            "batch": batch.id, "due_date": batch.due_date.isoformat(),
        }  # fmt: skip
        verdict, proposal, undeliver = await self._judge(mail, batch, shown)
        told = verdict != Verdict.UNMATCHED and not (
            verdict in ONCE_PER_BATCH and await self.stores.mails.told(batch.id, [verdict])
        )
        shown["told"] = 1 if told else 0
        effects: list[Effect] = [answer_effect(stored.id)] if told else []
        if undeliver is not None:
            # The cards of the tickets going back, and the batch's summary.
            waiting = [t.id for t in await self.stores.batches.batch_tickets(batch.id)
                       if t.state == State.SENT_TO_DWH]  # fmt: skip
            effects += [*map(card_effect, waiting), summary_effect(batch.id)]
        return Handled(
            batch.id, verdict, shown, proposal, f"{detail}; {verdict}", effects,
            undeliver=undeliver, refused_by=", ".join(shown.get("recipients", [])),
        )  # fmt: skip

    async def _batch_of(self, mail: Mail) -> Batch | None:
        found = batch_of_refs(mail, await self.stores.mails.recap_ids())
        if found is None:
            found = mail.tag(self.config.office.kode_wilayah)
        return await self.stores.batches.get_batch(found) if found is not None else None

    async def _judge(
        self, mail: Mail, batch: Batch, shown: dict[str, Any]
    ) -> tuple[str, dict[str, Any] | None, Transition | None]:
        if mail.kind == Kind.OVERSIZE:
            return Verdict.OVERSIZE, None, None
        if mail.kind == Kind.AUTO:
            return Verdict.AUTO, None, None
        if mail.kind in (Kind.BOUNCE, Kind.DELAY, Kind.REPORT):
            assert mail.bounce is not None
            shown.update(recipients=list(mail.bounce.recipients), status=mail.bounce.status,
                         diagnostic=redact_personal(mail.bounce.diagnostic))  # fmt: skip
            # The DWH never got it only when every recap.to address refused it (a Cc that
            # bounces is told, and changes nothing).
            to = {parseaddr(a)[1].lower() for a in self.config.recap.to}
            refused_all = to <= set(mail.bounce.recipients)
            if (mail.kind == Kind.BOUNCE and refused_all and batch.status == "sent"
                    and not batch.undelivered):  # fmt: skip
                undeliver = self.config.procedure.transition_for(
                    Action.UNDELIVERED, State.SENT_TO_DWH
                )
                return Verdict.BOUNCE, None, undeliver
            told = {Kind.BOUNCE: Verdict.BOUNCE, Kind.DELAY: Verdict.DELAY}
            return told.get(mail.kind, Verdict.REPORT), None, None
        lines = answer_lines(mail.text)
        shown["lines"] = list(lines)
        trusted = trusted_sender(
            mail, self.config.mailbox.trusted, self.config.mailbox.authserv_id
        )
        members = [t.id for t in await self.stores.batches.batch_tickets(batch.id)
                   if t.state == State.SENT_TO_DWH]  # fmt: skip
        rows = read_dwh_answers(mail.xlsx) if mail.xlsx else []
        shown["sheet"] = bool(rows)
        if not trusted:
            return Verdict.UNTRUSTED, None, None
        proposal = propose(lines, rows, members)
        if proposal.empty:
            return Verdict.REPLY, None, None
        return Verdict.REPLY, {"confirm": list(proposal.confirm),
                               "failed": [list(f) for f in proposal.failed]}, None  # fmt: skip

    # -- the mailbox's health, told once ------------------------------------------------------

    async def trouble(self, error: MailboxError) -> None:
        await self._tell(str(error.problem))

    async def recovered(self) -> None:
        await self._tell(None)

    async def _tell(self, problem: str | None) -> None:
        """The group hears of the mailbox once per change of its state (None: it works)."""
        if await self.stores.db.setting(TROUBLE_KEY) == problem:
            return
        box = self.config.mailbox
        text = self.texts.render(
            "telegram/mailbox_trouble.html", problem=problem or "ok", host=box.host,
            folder=box.folder,
        )  # fmt: skip
        effect = send_effect(self.group_id(), text, f"mailbox:{uuid.uuid4().hex}")
        await self.stores.people.set_setting(TROUBLE_KEY, problem, [effect])
