"""Telegram's quirks, handled in one place.

- nothing posted to the group ever carries a full NIK/KK: every text, label and URL is
  redacted here, the last door (the door that refuses them is validation);
- callback queries are answered first, once; a late or repeated answer is logged, not raised;
- "message is not modified" is success; a message that is gone is reported, to be posted
  again by the outbox;
- pacing, 429 and retries are the outbox's (outbox.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError

from ticketbot.domain.privacy import redact_numbers
from ticketbot.views import CardView

log = logging.getLogger(__name__)
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
FILE_ATTEMPTS = 3  # a file sent in answer to a command: a 429 is waited out, then given up


def keyboard(view: CardView) -> InlineKeyboardMarkup | None:
    if not view.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    redact_numbers(b.label), callback_data=b.data,
                    url=redact_numbers(b.url) if b.url else None,
                )
                for b in row
            ]
            for row in view.buttons
        ]
    )  # fmt: skip


def _is(error: BadRequest, *fragments: str) -> bool:
    text = error.message.lower()
    return any(f in text for f in fragments)


async def send(
    bot: Bot, chat_id: int, view: CardView, reply_to: int | None = None, *, redact: bool = True
) -> Message:
    return await bot.send_message(
        chat_id,
        redact_numbers(view.text) if redact else view.text,
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard(view),
        link_preview_options=NO_PREVIEW,
        reply_parameters=(
            ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        ),
    )


async def reply(message: Message, text: str) -> Message:
    """Reply to a person's message; still sent if that message was deleted meanwhile."""
    return await send(message.get_bot(), message.chat_id, CardView(text, ()), message.message_id)


async def edit(bot: Bot, chat_id: int, message_id: int, view: CardView) -> bool:
    """Edit a message in place. True when it shows `view` ("not modified" is success),
    False when the message is gone or no longer editable (the caller posts it again)."""
    try:
        await bot.edit_message_text(
            redact_numbers(view.text),
            chat_id=chat_id,
            message_id=message_id,
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard(view),
            link_preview_options=NO_PREVIEW,
        )
    except BadRequest as error:
        if _is(error, "message is not modified"):
            return True
        if _is(error, "message to edit not found", "message can't be edited"):
            log.warning("message %s in chat %s is gone; it will be posted again", message_id,
                        chat_id)  # fmt: skip
            return False
        raise
    return True


async def answer(query: CallbackQuery, text: str, *, alert: bool = False) -> None:
    """Answer a tap, best effort: the tap's effect is already stored and its card will show
    it, so a late, repeated or failed answer is logged, never raised."""
    try:
        await query.answer(text[:200], show_alert=alert)
    except TelegramError as error:
        log.warning("callback query not answered: %s", error.message)


async def send_scan_privately(
    bot: Bot, user_id: int, file_id: str, caption: str, *, document: bool = False
) -> int | None:
    """The intake scan (a photo, or a file) to one person's private chat, protected from
    forwarding and saving: its message id, or None when Telegram refuses (the person never
    started a chat)."""
    try:
        if document:
            sent = await bot.send_document(user_id, file_id, caption=caption, protect_content=True)
        else:
            sent = await bot.send_photo(user_id, file_id, caption=caption, protect_content=True)
    except (Forbidden, BadRequest) as error:
        log.info("scan not sent privately: %s", error.message)
        return None
    return sent.message_id


async def moved_to(bot: Bot, chat_id: int) -> int | None:
    """The supergroup Telegram says the group `chat_id` became, if it says so."""
    try:
        await bot.get_chat(chat_id)
    except ChatMigrated as error:
        return error.new_chat_id
    except TelegramError as error:
        log.warning("could not ask Telegram about chat %s: %s", chat_id, error.message)
    return None


async def delete(bot: Bot, chat_id: int, message_id: int) -> bool:
    """Delete a message; False (not an exception) when Telegram refuses. A message that is
    already gone counts as deleted."""
    try:
        return await bot.delete_message(chat_id, message_id)
    except BadRequest as error:
        if _is(error, "message to delete not found"):
            return True
        log.warning("could not delete message %s: %s", message_id, error.message)
        return False


async def send_files(
    bot: Bot,
    acquire: Callable[[], Awaitable[None]],
    pause: Callable[[float], None],
    chat_id: int,
    reply_to: int,
    photo: tuple[str, bytes],
    document: tuple[str, bytes],
    caption: str,
) -> bool:
    """A chart and a spreadsheet in answer to a command (/laporan), each within the group's
    budget (`acquire`), a 429 waited out (`pause` tells the outbox too). False when Telegram
    refuses; the person may ask again."""
    reply = ReplyParameters(reply_to, allow_sending_without_reply=True)
    for kind, (name, data) in (("photo", photo), ("document", document)):
        for attempt in range(FILE_ATTEMPTS):
            await acquire()
            try:
                if kind == "photo":
                    await bot.send_photo(
                        chat_id,
                        InputFile(data, filename=name),
                        caption=redact_numbers(caption),
                        parse_mode=ParseMode.HTML,
                        reply_parameters=reply,
                    )
                else:
                    await bot.send_document(chat_id, InputFile(data, filename=name),
                                            reply_parameters=reply)  # fmt: skip
                break
            except RetryAfter as error:
                seconds = error.retry_after
                wait = seconds if isinstance(seconds, int | float) else seconds.total_seconds()
                pause(wait)
                if attempt + 1 == FILE_ATTEMPTS:
                    return False
                await asyncio.sleep(wait)  # Telegram named the moment: nothing to await
            except TelegramError as error:
                log.warning("%s %s not sent: %s", kind, name, error.message)
                return False
    return True
