"""Where things sit in the group: cards, recap summaries, notices, and deleting messages
that carry personal data. Every Bot API call that shows something goes through here."""

from __future__ import annotations

from typing import Any

from telegram import Message
from telegram.ext import Application

from ticketbot import telegram_io
from ticketbot.domain.privacy import carries_full_number
from ticketbot.recap import NewsKind, RecapNews
from ticketbot.records import Ticket
from ticketbot.services import Services, services_of
from ticketbot.views import CardView

AnyApp = Application[Any, Any, Any, Any, Any, Any]


async def show_card(app: AnyApp, ticket: Ticket) -> None:
    """Post the card of a new ticket, or edit it in place; remember where it is."""
    s = services_of(app)
    async with s.locks(f"ticket:{ticket.id}"):
        fresh = await s.repo.get_ticket(ticket.id) or ticket
        view = s.views.card(await s.office.card_facts(fresh))
        where = await telegram_io.place(app.bot, fresh.chat_id, fresh.card_message_id, view)
        if where != fresh.card_message_id:
            await s.repo.set_card_message(fresh.id, where)


async def refresh_cards(app: AnyApp, ids: tuple[int, ...]) -> None:
    repo = services_of(app).repo
    for ticket_id in ids:
        ticket = await repo.get_ticket(ticket_id)
        if ticket is not None:
            await show_card(app, ticket)


async def show_summary(app: AnyApp, batch_id: int) -> None:
    """Post a recap batch's summary message, or edit it in place."""
    s = services_of(app)
    async with s.locks(f"batch:{batch_id}"):
        batch = await s.repo.get_batch(batch_id)
        if batch is None:
            return
        view = s.views.batch_summary(await s.office.batch_facts(batch))
        where = await telegram_io.place(app.bot, s.office.group_id, batch.summary_message_id, view)
        if where != batch.summary_message_id:
            await s.repo.set_batch_summary(batch.id, where)


async def tell(app: AnyApp, text: str) -> None:
    """A notice to the group (no buttons)."""
    await telegram_io.send(app.bot, services_of(app).office.group_id, CardView(text, ()))


async def announce(app: AnyApp, news: list[RecapNews]) -> None:
    """Tell the group what the recap desk did: summaries, late and failed recaps."""
    s = services_of(app)
    for item in news:
        if item.kind == NewsKind.SENT:
            tickets = item.moved or tuple(t.id for t in await s.repo.batch_tickets(item.batch.id))
            if tickets:
                await refresh_cards(app, tickets)
                await show_summary(app, item.batch.id)
        else:
            name = "late" if item.kind == NewsKind.LATE else "failed"
            await tell(app, s.texts.render(f"telegram/recap_{name}.html", batch=item.batch))


async def remove_personal_message(s: Services, message: Message) -> None:
    """Delete a person's message that carries a full NIK/KK (SPEC §3); if Telegram refuses,
    ask the group to delete it by hand (the answer never quotes the number)."""
    text = message.text or message.caption or ""
    if not (s.config.delete_intake and carries_full_number(text)):
        return
    if not await telegram_io.delete(message.get_bot(), message.chat_id, message.message_id):
        await telegram_io.reply(message, s.texts.render("telegram/delete_failed.html"))
