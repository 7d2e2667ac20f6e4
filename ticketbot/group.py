"""What the group must show, queued in the durable outbox (outbox.py delivers it).

Handlers and jobs say *what* should appear (a card re-rendered, a reply, a notice, a
message deleted); nothing here calls Telegram, so a crash can lose none of it. The
`Projection` renders it when it is delivered: the group is a projection of the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Message

from ticketbot.domain.privacy import carries_full_number
from ticketbot.office import Office
from ticketbot.recap import NewsKind, RecapNews
from ticketbot.records import Batch, Effect, Ticket, delete_effect, send_effect
from ticketbot.services import Services
from ticketbot.store.mails import StoredMail
from ticketbot.texts import Texts
from ticketbot.views import CardView, Views


def reply(s: Services, message: Message, text: str, key: str, *, refusal: bool = False) -> Effect:
    """A reply to a person's message, once per `key` (the update that asked). A refusal
    (a form turned down) is combined with that person's other refusals."""
    person = message.from_user.id if refusal and message.from_user else None
    return send_effect(message.chat_id, text, key, reply_to=message.message_id,
                       person_id=person)  # fmt: skip


def removal(s: Services, message: Message, *, personal: bool = False) -> list[Effect]:
    """Delete a person's message that carries a full NIK/KK (SPEC §3), or that is known to
    carry personal data (`personal`: a KK scan, a reason with a phone number)."""
    text = message.text or message.caption or ""
    if s.config.delete_intake and (personal or carries_full_number(text)):
        return [delete_effect(message.chat_id, message.message_id)]
    return []


def private(user_id: int, text: str, key: str) -> Effect:
    """A message to one person's private chat (their own refused form, back to fix)."""
    return send_effect(user_id, text, key)


def notice(s: Services, text: str, key: str) -> Effect:
    """A notice to the group, once per `key`."""
    return send_effect(s.office.group_id, text, key)


async def announce(s: Services, news: list[RecapNews]) -> None:
    """Tell the group what the recap desk did (a sent batch's cards and summary were queued
    with the batch itself): late and failed recaps, once each."""
    effects = []
    for item in news:
        if item.kind == NewsKind.SENT:
            continue
        name = "late" if item.kind == NewsKind.LATE else "failed"
        text = s.texts.render(f"telegram/recap_{name}.html", batch=item.batch)
        effects.append(notice(s, text, f"recap-{name}:{item.batch.id}:{item.batch.attempts}"))
    await s.repo.outbox.enqueue(effects)


@dataclass(frozen=True)
class Projection:
    """The outbox worker's `Renderer`: cards, summaries and pings as the database says now."""

    office: Office
    views: Views
    texts: Texts

    @property
    def group_id(self) -> int:
        return self.office.group_id

    async def card(self, ticket: Ticket, mention: frozenset[int] | None = None) -> CardView:
        return self.views.card(await self.office.card_facts(ticket), mention)

    async def summary(self, batch: Batch) -> CardView:
        return self.views.batch_summary(await self.office.batch_facts(batch))

    async def carried(self, ticket: Ticket) -> bool:
        """The ticket's buttons are on the summary of its batch (no reason menu open on its
        card): its card is not edited for the batch's steps."""
        return await self._carrier(ticket) is not None

    async def shown_at(self, ticket: Ticket) -> int | None:
        """The message with the ticket's buttons (a ping replies to it): the summary that
        carries it, else its card."""
        batch = await self._carrier(ticket)
        if batch is not None and batch.summary_message_id is not None:
            return batch.summary_message_id
        return ticket.card_message_id

    async def _carrier(self, ticket: Ticket) -> Batch | None:
        """The batch whose summary shows the ticket's buttons now (none while a reason menu
        is open on its card)."""
        batch = None if ticket.menu_action else await self.office.carried_batch(ticket)
        if batch is None:
            return None
        carries = self.views.carries(await self.office.batch_facts(batch), ticket.id)
        return batch if carries else None

    async def turn(self, ticket: Ticket) -> tuple[int, ...]:
        return tuple(sorted(p.user_id for p in await self.office.turn(ticket)))

    async def ping(self, tickets: list[Ticket], only: frozenset[int] | None = None) -> CardView:
        """One ping for tickets whose turn is the same people's (the first one's); `only`:
        just these of them (the others were pinged privately)."""
        people = [
            p for p in await self.office.turn(tickets[0]) if only is None or p.user_id in only
        ]
        return CardView(self.views.ping(tickets, people), ())

    @property
    def private_pings(self) -> bool:
        return self.office.config.reminders.private_pings

    async def private_ping(self, tickets: list[Ticket]) -> CardView:
        """The turn ping in a person's private chat: the tickets, and a link to the card."""
        return self.views.private_ping(tickets)

    async def answer(self, mail: StoredMail) -> CardView:
        batch = await self.office.repo.batches.get_batch(mail.batch_id) if mail.batch_id else None
        return self.views.mail_answer(mail, batch)

    def delete_failed(self) -> str:
        return self.texts.render("telegram/delete_failed.html")

    def refusals_combined(self, more: int) -> str:
        return self.texts.render("telegram/refusals_combined.html", more=more)
