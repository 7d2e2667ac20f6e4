"""Thin Telegram handlers: translate an update into an Office call and the result back."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from telegram import Message, Update, User
from telegram.constants import MessageEntityType
from telegram.ext import Application, ContextTypes, filters

from ticketbot import callback_data, telegram_io
from ticketbot.domain.lifecycle import Role
from ticketbot.domain.privacy import carries_full_number, clean_text, clip_utf16, redact_numbers
from ticketbot.office import CardView, Office
from ticketbot.recap import NewsKind, RecapDesk, RecapNews
from ticketbot.repository import Actor, Ticket

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    command: str  # its description is labels.txt's `commands`


# Registered with setMyCommands; /help and /start are aliases of /bantuan.
COMMANDS = tuple(Command(c) for c in ("tiket", "status", "antrian", "rekap", "bantuan", "id"))


def office_of(context: ContextTypes.DEFAULT_TYPE) -> Office:
    office: Office = context.application.bot_data["office"]
    return office


NAME_LIMIT = 64  # Telegram's own limit for first + last name


def actor_of(user: User) -> Actor:
    """The person as stored and shown: a display name is free text like any other."""
    name = redact_numbers(clip_utf16(clean_text(user.full_name or ""), NAME_LIMIT))
    return Actor(user.id, name or str(user.id))


def command_arguments(message: Message) -> str:
    """The text after the leading /command (text or photo caption), newlines kept."""
    if message.text:
        text, entities, parse = message.text, message.entities, message.parse_entity
    else:
        text, entities = message.caption or "", message.caption_entities
        parse = message.parse_caption_entity
    for entity in entities:
        if entity.type == MessageEntityType.BOT_COMMAND and entity.offset == 0:
            return text[len(parse(entity)) :]
    return ""


def _lock_for(application: Application, key: str) -> asyncio.Lock:
    """One lock per card or summary: a render and its edit happen together, so an older
    render can never land after a newer one (a tap racing the overdue sweep)."""
    locks: dict[str, asyncio.Lock] = application.bot_data.setdefault("message_locks", {})
    return locks.setdefault(key, asyncio.Lock())


async def show_card(application: Application, office: Office, ticket: Ticket) -> None:
    """Post the card of a new ticket, or edit it in place; remember where it is."""
    async with _lock_for(application, f"ticket:{ticket.id}"):
        fresh = await office.repo.get_ticket(ticket.id) or ticket
        view = await office.card(fresh)
        where = await telegram_io.place(
            application.bot, fresh.chat_id, fresh.card_message_id, view
        )
        if where != fresh.card_message_id:
            await office.repo.set_card_message(fresh.id, where)


async def refresh_cards(application: Application, office: Office, ids: tuple[int, ...]) -> None:
    for ticket_id in ids:
        ticket = await office.repo.get_ticket(ticket_id)
        if ticket is not None:
            await show_card(application, office, ticket)


async def remember_people(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Keep staff names fresh so cards can mention people by name."""
    user = update.effective_user
    office = office_of(context)
    if user and office.config.roles_of(user.id):
        await office.remember(actor_of(user))


async def on_tiket(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    office = office_of(context)
    photo = message.photo[-1].file_id if message.photo else None
    outcome = await office.intake(
        command_arguments(message), actor_of(message.from_user), message.chat_id, photo
    )
    if outcome.reply is not None:
        await telegram_io.reply(message, outcome.reply)
    else:
        assert outcome.ticket is not None
        await show_card(context.application, office, outcome.ticket)
    # Valid, invalid or duplicate: the intake may hold a full NIK/KK; it goes once answered.
    await remove_personal_message(office, message)


async def remove_personal_message(office: Office, message: Message) -> None:
    """Delete a person's message that carries a full NIK/KK (SPEC §3); if Telegram refuses,
    ask the group to delete it by hand (the answer never quotes the number)."""
    text = message.text or message.caption or ""
    if not (office.config.delete_intake and carries_full_number(text)):
        return
    if not await telegram_io.delete(message.get_bot(), message.chat_id, message.message_id):
        await telegram_io.reply(message, office.texts.render("telegram/delete_failed.html"))


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    if query is None:
        return
    office = office_of(context)
    message = query.message
    chat_id = message.chat.id if message else 0
    outcome = await office.press(
        callback_data.parse(query.data),
        actor_of(query.from_user),
        chat_id,
        message.message_id if message else None,
    )
    await telegram_io.answer(query, outcome.answer, alert=outcome.alert)
    await refresh_cards(context.application, office, outcome.refresh)
    if outcome.refresh_batch is not None:
        await show_summary(context.application, office, outcome.refresh_batch)


async def on_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A reply to a card: the free-text reason of a rejection."""
    message = update.effective_message
    if message is None or message.reply_to_message is None or message.from_user is None:
        return
    replied_to = message.reply_to_message.from_user
    if replied_to is None or replied_to.id != context.bot.id:
        return
    office = office_of(context)
    result = await office.reply_to_card(
        message.chat_id,
        message.reply_to_message.message_id,
        actor_of(message.from_user),
        message.text or "",
    )
    if result is None:
        return
    if result.delete_source:
        await telegram_io.reply(message, result.answer)
        await remove_personal_message(office, message)
    await refresh_cards(context.application, office, result.refresh)


async def on_status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None:
        return
    office = office_of(context)
    query = " ".join(context.args or [])
    await telegram_io.reply(message, await office.status(query))
    await remove_personal_message(office, message)


async def on_queue(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None:
        return
    await telegram_io.reply(message, await office_of(context).queue())


async def sweep_overdue(application: Application) -> None:
    """Re-render cards once when their step's deadline passes, so they say TERLAMBAT."""
    office: Office = application.bot_data["office"]
    seen: set[tuple[int, datetime]] = application.bot_data.setdefault("overdue_seen", set())
    for ticket in await office.newly_overdue(seen):
        await show_card(application, office, ticket)


async def on_overdue_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await sweep_overdue(context.application)


def desk_of(application: Application) -> RecapDesk:
    desk: RecapDesk = application.bot_data["recap"]
    return desk


async def show_summary(application: Application, office: Office, batch_id: int) -> None:
    """Post a recap batch's summary message, or edit it in place."""
    async with _lock_for(application, f"batch:{batch_id}"):
        batch = await office.repo.get_batch(batch_id)
        if batch is None:
            return
        view = await office.batch_summary(batch)
        group = office.group_id
        where = await telegram_io.place(application.bot, group, batch.summary_message_id, view)
        if where != batch.summary_message_id:
            await office.repo.set_batch_summary(batch.id, where)


async def announce(application: Application, news: list[RecapNews]) -> None:
    """Tell the group what the recap desk did: summaries, late and failed recaps."""
    office: Office = application.bot_data["office"]
    group = office.group_id
    for item in news:
        if item.kind == NewsKind.SENT:
            tickets = item.moved or tuple(
                t.id for t in await office.repo.batch_tickets(item.batch.id)
            )
            if tickets:
                await refresh_cards(application, office, tickets)
                await show_summary(application, office, item.batch.id)
        else:
            name = (
                "telegram/recap_late.html"
                if item.kind == NewsKind.LATE
                else ("telegram/recap_failed.html")
            )
            text = office.texts.render(name, batch=item.batch)
            await telegram_io.send(application.bot, group, CardView(text, ()))


def recap_lock(application: Application) -> asyncio.Lock:
    """Held from a recap action until the group has been told, so that a batch between
    "sent" and "announced" is never taken for one whose summary was lost in a crash."""
    lock: asyncio.Lock = application.bot_data.setdefault("recap_lock", asyncio.Lock())
    return lock


async def run_recap(application: Application) -> None:
    """One pass of the recap desk (scheduled daily, and every minute for retries)."""
    async with recap_lock(application):
        await announce(application, await desk_of(application).tick())


async def on_recap_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await run_recap(context.application)


async def on_rekap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    office, desk = office_of(context), desk_of(context.application)
    args = [a.lower() for a in context.args or []]
    if args[:1] != ["kirim"]:
        await telegram_io.reply(message, await desk.preview())
        return
    if not office.config.roles_of(message.from_user.id) & {Role.KASI, Role.ADB}:
        await telegram_io.reply(message, office.texts.render("telegram/recap_not_allowed.html"))
        return
    async with recap_lock(context.application):
        count, news, problem = await desk.send_now()
        text = office.texts.render(
            "telegram/recap_sent_now.html", nothing=count == 0, count=count, problem=problem
        )
        await telegram_io.reply(message, text)
        # The reply already says what failed: one message, not two that disagree.
        await announce(context.application, [n for n in news if n.kind != NewsKind.FAILED])


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None:
        return
    office = office_of(context)
    text = office.texts.render(
        "telegram/help.html",
        office=office.config.office.name,
        commands=COMMANDS,
        recap_time=f"{office.config.recap.time:%H:%M}",
    )
    await telegram_io.reply(message, text)


async def on_private_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None:
        return
    office = office_of(context)
    text = office.texts.render("telegram/private_start.html", office=office.config.office.name)
    await telegram_io.reply(message, text)


async def on_id(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    text = office_of(context).texts.render(
        "telegram/id.html", chat_id=message.chat_id, user_id=message.from_user.id
    )
    await telegram_io.reply(message, text)


async def on_group_moved(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Telegram upgraded the group to a supergroup and its id changed: follow it, say so in
    the group and the log, and name the group_id to put in the configuration."""
    message = update.effective_message
    if message is None:
        return
    if message.migrate_to_chat_id:
        old, new = message.chat_id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id:
        old, new = message.migrate_from_chat_id, message.chat_id
    else:
        return
    office = office_of(context)
    if not await office.move_group(old, new):
        return
    group_filter: filters.Chat = context.application.bot_data["group_filter"]
    group_filter.add_chat_ids(new)
    log.warning(
        "Telegram moved the group %s to the supergroup %s; following it. Set group_id = %s"
        " in [telegram] of the configuration.", old, new, new,
    )  # fmt: skip
    text = office.texts.render("telegram/group_moved.html", old=old, new=new)
    await telegram_io.send(context.bot, new, CardView(text, ()))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log first; then tell the person something went wrong (a tap is always answered)."""
    log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    office = office_of(context)
    try:
        if update.callback_query is not None:
            # answer() ignores a query that was already answered before the failure.
            await telegram_io.answer(update.callback_query, office.texts.answer("failed"))
        elif update.effective_chat.id == office.group_id:
            text = office.texts.render("telegram/error.html")
            await telegram_io.send(context.bot, update.effective_chat.id, CardView(text, ()))
    except Exception:
        log.exception("could not tell the person about the error")
