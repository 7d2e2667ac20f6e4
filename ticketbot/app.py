"""All wiring in one place: build_application() and serve().

serve() is how production, the demo and the tests run the bot: initialize, post_init, long
polling, then the reverse on stop. Nothing else starts the application.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from telegram import BotCommand, Update
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from ticketbot import handlers
from ticketbot.answers import MailDesk
from ticketbot.clock import Clock, now_utc
from ticketbot.config import Config
from ticketbot.group import Projection
from ticketbot.inbox import Inbox
from ticketbot.jobs import schedule_jobs
from ticketbot.mailbox import MailboxWatcher
from ticketbot.office import Office, deadline_of
from ticketbot.outbox import OutboxWorker, Pacer
from ticketbot.recap import RecapDesk
from ticketbot.records import card_effect
from ticketbot.reminders import ReminderDesk
from ticketbot.report import ReportDesk
from ticketbot.retention import Retention
from ticketbot.search import SearchDesk
from ticketbot.services import App, BotData, Services
from ticketbot.store import Stores
from ticketbot.telegram_http import AiohttpRequest
from ticketbot.texts import Texts
from ticketbot.views import Views

log = logging.getLogger(__name__)
STOP_SECONDS = 6  # systemd waits 30 s; the spec asks for 10
# Edited messages too: an intake corrected by editing it must be seen (and deleted).
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]
TICKET_CAPTION = r"^/tiket(@\w+)?(\s|$)"


def build_application(config: Config, *, clock: Clock = now_utc) -> App:
    group = filters.Chat(chat_id=config.telegram.group_id)

    async def post_init(app: App) -> None:
        # Every transition stores its step's deadline, by this office's calendar.
        repo = await Stores.open(
            config.database_path, procedure=config.procedure, deadline=deadline_of(config),
            ping_gather=timedelta(seconds=config.reminders.ping_gather_seconds),
        )  # fmt: skip
        texts = Texts(config.office.timezone, config.procedure.words)
        office = Office(config, repo, clock)
        views = Views(config, texts)
        tg = config.telegram
        # The group is a projection of the database: the worker renders it at delivery.
        outbox = OutboxWorker(
            app.bot, repo, Projection(office, views, texts),
            Pacer(tg.group_messages_per_minute, tg.messages_per_second),
        )  # fmt: skip
        # The DWH admin's mail (SPEC §4c): stored, handled, told in the group.
        mailbox = None
        if config.mailbox.enabled:
            mail = MailDesk(config, repo, texts, clock, lambda: office.group_id)
            mailbox = MailboxWatcher(
                config.mailbox, repo, clock, mail.handle_pending, mail.trouble, mail.recovered
            )
        s = Services(
            config=config, repo=repo, office=office,
            desk=RecapDesk(config, repo, texts, clock), views=views,
            reminders=ReminderDesk(config, repo, office, views, clock),
            reports=ReportDesk(config, repo, texts, clock, group_id=lambda: office.group_id),
            retention=Retention(config, repo, clock), search=SearchDesk(config, repo, clock),
            texts=texts, group_filter=group, outbox=outbox, mailbox=mailbox,
        )  # fmt: skip
        app.bot_data.services = s
        group.add_chat_ids(await office.find_group())
        # Stored deadlines follow the calendar and standards in force (only when they change).
        await repo.tickets.refresh_deadlines(office.deadline_rule(), clock())
        # Tickets from before the search index are indexed once.
        await repo.search.fill()
        await app.bot.set_my_commands(
            [BotCommand(c.command, texts.label("commands", c.command))
             for c in handlers.COMMANDS]
        )  # fmt: skip
        # Cards are queued with their tickets; a database from before the outbox may hold a
        # ticket without one.
        await repo.outbox.enqueue(
            [card_effect(t.id) for t in await repo.tickets.tickets_without_card()]
        )
        s.outbox.start()
        if mailbox is not None:
            mailbox.start()
        if app.job_queue is not None:
            schedule_jobs(app)

    async def post_shutdown(app: App) -> None:
        if app.bot_data.ready:
            if app.bot_data.services.mailbox is not None:
                await app.bot_data.services.mailbox.stop()
            await app.bot_data.services.outbox.stop()
            app.bot_data.services.desk.close()
            await app.bot_data.services.repo.close()

    tg = config.telegram
    updates = AiohttpRequest(2)  # a second connection: the final getUpdates on stop goes at once
    app: App = (
        ApplicationBuilder()
        .token(tg.token.get_secret_value())
        .base_url(tg.base_url)
        .base_file_url(tg.base_url.replace("/bot", "/file/bot"))
        .context_types(ContextTypes(bot_data=BotData))
        # Bot API calls over aiohttp (telegram_http.py): a fifth of httpx's CPU per call.
        .request(AiohttpRequest())
        .get_updates_request(updates)
        # Updates are fetched and run by the durable inbox (inbox.py), not PTB's Updater.
        .updater(None)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    # The inbox stores each update as Telegram sent it (no second serialisation per update).
    app.bot_data.last_updates = lambda: updates.last_body
    # Who may do what is the procedure's table of roles (SPEC §3): anyone with a role may
    # ask; those who open tickets open them; those who press buttons give reasons.
    staff = filters.User(user_id=sorted({i for ids in config.roles.values() for i in ids}))
    openers = filters.User(user_id=sorted(config.people_who("opens")))
    pressers = filters.User(user_id=sorted(config.people_who("presses")))
    in_office = group & staff
    # Only /tiket (and its photo caption) is read again when edited; other commands are not
    # answered twice.
    new_in_office = in_office & filters.UpdateType.MESSAGE
    # Telegram upgraded the group to a supergroup (its id changes): follow it first.
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, handlers.on_group_moved))
    # Remember staff names before anything else handles the update.
    app.add_handler(TypeHandler(Update, handlers.remember_people), group=-1)
    # /id answers anywhere: it is how the configuration gets filled in.
    app.add_handler(CommandHandler("id", handlers.on_id, filters.UpdateType.MESSAGE))
    # Opening a ticket: /tiket with the form, or a photo (or a file) of the KK/KTP-el with it
    # as caption.
    app.add_handler(CommandHandler("tiket", handlers.on_tiket, filters=group & openers))
    app.add_handler(
        MessageHandler(
            group
            & openers
            & (filters.PHOTO | filters.Document.ALL)
            & filters.CaptionRegex(TICKET_CAPTION),
            handlers.on_tiket,
        )
    )
    # Help in the group; a short explanation in a private chat.
    app.add_handler(
        CommandHandler(["bantuan", "help", "start"], handlers.on_bantuan, new_in_office)
    )
    private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    app.add_handler(CommandHandler("start", handlers.on_private_start, private))
    # /rekap (preview) and /rekap kirim (send now; Kasi/ADB).
    app.add_handler(CommandHandler("rekap", handlers.on_rekap, new_in_office))
    # /status <#N | NIK> and /antrian, for staff in the group.
    app.add_handler(CommandHandler("status", handlers.on_status, new_in_office))
    app.add_handler(CommandHandler("antrian", handlers.on_antrian, new_in_office))
    # /cari …: find tickets again by phone end, name, lembaga, date, state (staff, kadis).
    app.add_handler(CommandHandler("cari", handlers.on_cari, new_in_office))
    app.add_handler(CallbackQueryHandler(handlers.on_search_page, pattern=r"^1:q:"))
    # /laporan [YYYY-MM]: the monthly report, as a chart and a spreadsheet.
    app.add_handler(CommandHandler("laporan", handlers.on_laporan, new_in_office))
    # Every inline button; the office re-checks chat, card, role and state.
    app.add_handler(CallbackQueryHandler(handlers.on_button))
    # A reply to a card: the free-text reason of a rejection.
    app.add_handler(
        MessageHandler(new_in_office & pressers & filters.REPLY & filters.TEXT
                       & ~filters.COMMAND, handlers.on_reply)
    )  # fmt: skip
    # Anything else in the group: a full NIK/KK or an intake album's other photo is deleted.
    app.add_handler(MessageHandler(group, handlers.on_group_message))
    app.add_error_handler(handlers.on_error)
    return app


async def serve(
    app: App,
    stop: asyncio.Event,
    *,
    poll_timeout: int = 10,
    ready: asyncio.Event | None = None,
    inbox: Inbox | None = None,
) -> None:
    """Run until `stop` is set: initialize, post_init, handle what the inbox holds, fetch;
    then the reverse, each part bounded in time so that SIGTERM ends the process within
    seconds (what is still pending stays in the database for the next start). The demo and
    the tests pass their own `inbox` to wait on what it handled."""
    try:
        await app.initialize()
    except BaseException:
        # Telegram refused the token or could not be reached: the HTTP sessions opened for
        # it are closed, so the one-line error is all that is printed.
        await app.bot.shutdown()
        raise
    inbox = inbox or Inbox(app, ALLOWED_UPDATES, poll_timeout)
    try:
        if app.post_init is not None:
            await app.post_init(app)
        await app.start()
        await inbox.start()
        log.info("ticketbot is running")
        if ready is not None:
            ready.set()
        stopping = asyncio.ensure_future(stop.wait())
        assert inbox.task is not None
        await asyncio.wait({stopping, inbox.task}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if inbox.task.done() and not inbox.task.cancelled():
            # The inbox stops only for good (a refused token): so does the process, with
            # its error, so that systemd sees it and restarts it.
            error = inbox.task.exception()
            raise error if error is not None else RuntimeError("the inbox stopped")
    finally:
        await inbox.stop(STOP_SECONDS)
        if app.running:
            try:
                async with asyncio.timeout(STOP_SECONDS):
                    await app.stop()
            except TimeoutError:
                log.warning("handlers still running after %s s; stopping anyway", STOP_SECONDS)
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)
        log.info("ticketbot stopped")
