"""Thin Telegram handlers: an update becomes an office call, the outcome becomes words
(views) and group effects (group). Named after the commands they answer."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from telegram import CallbackQuery, Message, Update, User
from telegram.constants import MessageEntityType

from ticketbot import callback_data, group, telegram_io
from ticketbot.domain.privacy import carries_full_number, clean_text, clip_utf16, redact_numbers
from ticketbot.inbox import storage_fault
from ticketbot.office import FormRefused, Opened, PhotoShown, ReasonHasNumber
from ticketbot.outbox import FORM_BACK
from ticketbot.recap import NewsKind
from ticketbot.records import Actor, Effect, delete_effect
from ticketbot.services import Context, Services

log = logging.getLogger(__name__)
NAME_LIMIT = 64  # Telegram's own limit for first + last name
RECAP_WAIT = 3.0  # seconds /rekap kirim waits for a recap already on its way
TAP_ANSWER_WITHIN = 1.5  # seconds; Telegram shows a spinner until the answer, and gives up at 15


@dataclass(frozen=True)
class Command:
    command: str  # its description is labels.txt's `commands`


# Registered with setMyCommands; /help and /start are aliases of /bantuan.
COMMANDS = tuple(
    Command(c) for c in ("tiket", "status", "cari", "antrian", "rekap", "laporan", "bantuan", "id")
)


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


async def remember_people(update: Update, context: Context) -> None:
    """Keep staff names fresh so cards can mention people by name."""
    user = update.effective_user
    s = context.bot_data.services
    if user and s.config.roles_of(user.id):
        if update.callback_query is not None:
            # A tap's answer never waits on this write (the database may be busy).
            context.application.create_task(s.office.remember(actor_of(user)))
        else:
            await s.office.remember(actor_of(user))
            chat = update.effective_chat
            if chat is not None and chat.type == "private":
                await s.repo.people.open_private_chat(user.id)


def key_of(update: Update) -> str:
    return f"reply:{update.update_id}"


async def on_tiket(update: Update, context: Context) -> None:
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    s = context.bot_data.services
    if message.media_group_id:
        context.bot_data.albums.opened(message.media_group_id)
    # The KK/KTP-el scan: a photo, or a file (a document) sent with the same caption.
    document = message.document is not None and not message.photo
    scan = message.photo[-1].file_id if message.photo else None
    if document and message.document is not None:
        scan = message.document.file_id
    remove = s.config.delete_intake and carries_full_number(message.text or message.caption or "")
    outcome = await s.office.intake(
        command_arguments(message), actor_of(message.from_user), message.chat_id, scan,
        document=document, message_id=message.message_id, remove_message=remove,
    )  # fmt: skip
    if isinstance(outcome, Opened):
        return  # its card and the deletion of the intake were committed with the ticket
    refusal = isinstance(outcome, FormRefused)
    removal = group.removal(s, message)
    # A refused form the bot deletes is not lost: it goes back to its sender privately,
    # problems marked, when they have a private chat with the bot (SPEC §3).
    back: list[Effect] = []
    sender = message.from_user.id
    if (isinstance(outcome, FormRefused) and removal
            and await s.repo.people.has_private_chat(sender)):  # fmt: skip
        text = s.views.form_back(outcome, message.text or message.caption or "")
        back = [group.private(sender, text, f"{FORM_BACK}{update.update_id}")]
    reply = s.views.intake_reply(outcome, sent_back=bool(back), deleted=bool(removal))
    assert reply is not None
    # Valid, invalid or duplicate: the intake may hold a full NIK/KK; it goes once answered.
    await s.repo.outbox.enqueue(
        [group.reply(s, message, reply, key_of(update), refusal=refusal), *back, *removal]
    )  # fmt: skip


async def on_group_message(update: Update, context: Context) -> None:
    """Any other message in the group (a member without a role, a form the bot does not
    take): one that carries a full NIK/KK is deleted, whoever sent it, and so are the other
    photos of an album that opened a ticket (SPEC §3)."""
    message = update.effective_message
    if message is None:
        return
    s = context.bot_data.services
    album = message.media_group_id
    scan = bool(album and (message.photo or message.document))
    if scan and album is not None and not await context.bot_data.albums.of_intake(album):
        scan = False
    effects = group.removal(s, message, personal=scan)
    if effects:
        await s.repo.outbox.enqueue(effects)


async def on_button(update: Update, context: Context) -> None:
    query = update.callback_query
    if query is None:
        return
    # The tap's answer first, then the group messages its decision queued.
    async with context.bot_data.services.outbox.answer_first():
        await _decide_and_answer(query, context)


async def _decide_and_answer(query: CallbackQuery, context: Context) -> None:
    s = context.bot_data.services
    message = query.message
    decision = asyncio.ensure_future(
        s.office.press(
            callback_data.parse(query.data),
            actor_of(query.from_user),
            message.chat.id if message else 0,
            message.message_id if message else None,
        )
    )
    # A tap is answered within seconds whatever happens (a database busy with a backup):
    # if the decision takes longer, say so now; the card shows the outcome when it lands.
    done, _ = await asyncio.wait({decision}, timeout=TAP_ANSWER_WITHIN)
    if not done:
        await telegram_io.answer(query, s.texts.answer("processing"))
        await decision
        return
    # The answer goes straight out (never behind group messages); what the tap changed in
    # the group was queued with the change itself.
    outcome = decision.result()
    text, alert = s.views.answer(outcome)
    if isinstance(outcome, PhotoShown) and outcome.ticket.photo_file_id:
        caption = s.texts.answer("photo_caption", ticket_id=outcome.ticket.id)
        copy = await telegram_io.send_scan_privately(
            context.bot,
            outcome.user_id,
            outcome.ticket.photo_file_id,
            caption,
            document=outcome.ticket.scan_is_document,
        )
        if copy is None:
            text, alert = s.texts.answer("photo_start_first"), True
        else:
            # The copy goes after privacy.photo_minutes, through the durable outbox: a
            # restart in between does not leave it behind (SPEC §3).
            gone = datetime.now(UTC) + timedelta(minutes=s.config.photo_minutes)
            await s.repo.outbox.enqueue([delete_effect(outcome.user_id, copy, at=gone)])
    await telegram_io.answer(query, text, alert=alert)


async def on_reply(update: Update, context: Context) -> None:
    """A reply to a card: the free-text reason of a rejection."""
    message = update.effective_message
    if message is None or message.reply_to_message is None or message.from_user is None:
        return
    replied_to = message.reply_to_message.from_user
    if replied_to is None or replied_to.id != context.bot.id:
        return
    s = context.bot_data.services
    outcome = await s.office.reply_to_card(
        message.chat_id,
        message.reply_to_message.message_id,
        actor_of(message.from_user),
        message.text or "",
    )
    if isinstance(outcome, ReasonHasNumber):
        text = s.views.answer(outcome)[0]
        await s.repo.outbox.enqueue(
            [group.reply(s, message, text, key_of(update)),
             *group.removal(s, message, personal=True)]
        )  # fmt: skip


async def on_status(update: Update, context: Context) -> None:
    message = update.effective_message
    if message is None:
        return
    s = context.bot_data.services
    outcome = await s.office.status(" ".join(context.args or []))
    text = s.views.status(outcome)
    await s.repo.outbox.enqueue(
        [group.reply(s, message, text, key_of(update)), *group.removal(s, message)]
    )


async def on_cari(update: Update, context: Context) -> None:
    """/cari terms: a page of masked rows with ◀/▶ (sent at once, within the group's
    budget, like /laporan: it carries buttons, which the outbox's replies do not)."""
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    s = context.bot_data.services
    terms = " ".join(context.args or [])
    outcome = await s.search.search(terms, actor_of(message.from_user)) if terms else None
    await s.outbox.pacer.acquire(message.chat_id, charged=True)
    await telegram_io.send(context.bot, message.chat_id, s.views.search(outcome),
                           message.message_id)  # fmt: skip


async def on_search_page(update: Update, context: Context) -> None:
    """◀/▶ under a search: the same terms, another page, edited in place."""
    query = update.callback_query
    if query is None or query.message is None:
        return
    s = context.bot_data.services
    press = callback_data.parse(query.data)
    if press is None or not s.config.roles_of(query.from_user.id):
        await telegram_io.answer(query, s.texts.answer("invalid"))
        return
    found = await s.search.page(press.target_id, press.index or 0)
    if found is None:
        await telegram_io.answer(query, s.texts.answer("invalid"))
        return
    await telegram_io.answer(query, "")
    await s.outbox.pacer.acquire(query.message.chat.id, charged=True)
    await telegram_io.edit(context.bot, query.message.chat.id, query.message.message_id,
                           s.views.search(found))  # fmt: skip


async def on_antrian(update: Update, context: Context) -> None:
    message = update.effective_message
    if message is None:
        return
    s = context.bot_data.services
    text = s.views.queue(await s.office.queue())
    await s.repo.outbox.enqueue([group.reply(s, message, text, key_of(update))])


async def on_rekap(update: Update, context: Context) -> None:
    """/rekap previews the pending recap; /rekap kirim sends it now (Kasi/ADB)."""
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    s = context.bot_data.services
    args = [a.lower() for a in context.args or []]
    if args[:1] != ["kirim"]:
        text = await s.desk.preview()
    elif not s.config.may(message.from_user.id, "recaps"):
        text = s.texts.render("telegram/recap_not_allowed.html")
    elif not await s.desk.free_within(RECAP_WAIT):
        # A recap is being handed to the mail server right now: no waiting on it here.
        text = s.texts.render("telegram/recap_sent_now.html", busy=True)
    else:
        count, news, problem = await s.desk.send_now()
        # The reply already says what failed: one message, not two that disagree.
        await group.announce(s, [n for n in news if n.kind != NewsKind.FAILED])
        if problem is None and any(n.kind == NewsKind.SENT for n in news):
            return  # the batch's summary, posted with the send, is the answer
        text = s.texts.render(
            "telegram/recap_sent_now.html", nothing=count == 0, count=count, problem=problem
        )
    await s.repo.outbox.enqueue([group.reply(s, message, text, key_of(update))])


async def on_laporan(update: Update, context: Context) -> None:
    """/laporan [YYYY-MM]: the month's chart (with the figures as caption) and its XLSX."""
    message = update.effective_message
    if message is None:
        return
    s = context.bot_data.services
    if message.from_user is None or not s.config.may(message.from_user.id, "reports"):
        text = s.texts.render("telegram/report_refused.html", problem="role")
        await s.repo.outbox.enqueue([group.reply(s, message, text, key_of(update))])
        return
    month = s.reports.choose(" ".join(context.args or []), s.office.clock())
    if isinstance(month, str):
        text = s.texts.render("telegram/report_refused.html", problem=month)
        await s.repo.outbox.enqueue([group.reply(s, message, text, key_of(update))])
        return
    files = await s.reports.build(month)
    pacer = s.outbox.pacer
    sent = await telegram_io.send_files(
        context.bot, lambda: pacer.acquire(message.chat_id, charged=True),
        lambda seconds: pacer.pause(message.chat_id, seconds), message.chat_id,
        message.message_id, (files.png_name, files.png), (files.xlsx_name, files.xlsx),
        files.caption,
    )  # fmt: skip
    if not sent:
        text = s.texts.render("telegram/report_refused.html", problem="send",
                              title=files.title)  # fmt: skip
        await s.repo.outbox.enqueue([group.reply(s, message, text, key_of(update))])


async def on_bantuan(update: Update, context: Context) -> None:
    message = update.effective_message
    if message is None:
        return
    s = context.bot_data.services
    text = s.texts.render(
        "telegram/help.html",
        office=s.config.office.name,
        commands=COMMANDS,
        recap_time=f"{s.config.recap.time:%H:%M}",
    )
    await s.repo.outbox.enqueue([group.reply(s, message, text, key_of(update))])


async def on_private_start(update: Update, context: Context) -> None:
    message = update.effective_message
    if message is None:
        return
    s = context.bot_data.services
    text = s.texts.render("telegram/private_start.html", office=s.config.office.name)
    await s.repo.outbox.enqueue([group.reply(s, message, text, key_of(update))])


async def on_id(update: Update, context: Context) -> None:
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    s = context.bot_data.services
    if message.chat_id == s.office.group_id and not s.config.roles_of(message.from_user.id):
        return  # outsiders in the configured group get no answer (and cost no budget)
    text = s.texts.render(
        "telegram/id.html", chat_id=message.chat_id, user_id=message.from_user.id
    )
    await s.repo.outbox.enqueue([group.reply(s, message, text, key_of(update))])


async def on_group_moved(update: Update, context: Context) -> None:
    """Telegram upgraded the group to a supergroup and its id changed: follow it, say so in
    the group and the log, and name the group_id to put in the configuration."""
    message = update.effective_message
    if message is None:
        return
    s = context.bot_data.services
    if message.migrate_to_chat_id:
        old, new = message.chat_id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id:
        # Said in the new chat: only Telegram's own word that our group moved there counts
        # (any chat could name our group; Telegram does not let users forge this, but a
        # move of the office is too much to take on one message's word).
        old, new = message.migrate_from_chat_id, message.chat_id
        if old != s.office.group_id or await telegram_io.moved_to(context.bot, old) != new:
            return
    else:
        return
    # A move is followed only from the configured group (move_group checks `old`).
    if not await s.office.move_group(old, new):
        return
    s.group_filter.add_chat_ids(new)
    log.warning(
        "Telegram moved the group %s to the supergroup %s; following it. Set group_id = %s"
        " in [telegram] of the configuration.", old, new, new,
    )  # fmt: skip
    text = s.texts.render("telegram/group_moved.html", old=old, new=new)
    await s.repo.outbox.enqueue([group.notice(s, text, f"group-moved:{new}")])


async def on_error(update: object, context: Context) -> None:
    """Log first; then tell the person something went wrong (a tap is always answered)."""
    log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update):
        return
    if storage_fault(context.error):
        # The database could not write (a full disk): the update runs again, not lost.
        context.bot_data.storage_fault(update.update_id)
    if update.effective_chat is None or not context.bot_data.ready:
        return
    s: Services = context.bot_data.services
    try:
        if update.callback_query is not None:
            # answer() ignores a query that was already answered before the failure; a
            # storage fault is tried again, so the tap is on its way, not failed.
            text = s.texts.answer("processing" if storage_fault(context.error) else "failed")
            await telegram_io.answer(update.callback_query, text)
        elif storage_fault(context.error):
            return  # it runs again by itself: nothing to tell yet
        elif update.effective_chat.id == s.office.group_id:
            text = s.texts.render("telegram/error.html")
            await s.repo.outbox.enqueue([group.notice(s, text, f"error:{update.update_id}")])
    except Exception:
        log.exception("could not tell the person about the error")
