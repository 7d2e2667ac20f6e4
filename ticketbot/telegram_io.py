"""Telegram's quirks, handled in one place.

- nothing posted to the group ever carries a full NIK/KK: every text, label and URL is
  redacted here, the last door (the door that refuses them is validation);
- callback queries are answered first, once; a late or repeated answer is logged, not raised;
- "message is not modified" is success;
- a card that somebody deleted is posted again;
- 429 is waited out by the AIORateLimiter (see app.py), which retries the same request.
"""

from __future__ import annotations

import logging

from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest

from ticketbot.domain.privacy import redact_numbers
from ticketbot.views import CardView

log = logging.getLogger(__name__)
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


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


async def send(bot: Bot, chat_id: int, view: CardView, reply_to: int | None = None) -> Message:
    return await bot.send_message(
        chat_id,
        redact_numbers(view.text),
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


async def edit(bot: Bot, chat_id: int, message_id: int, view: CardView) -> int:
    """Edit a card in place and return its message id (a new one if the card was gone)."""
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
            return message_id
        if _is(error, "message to edit not found", "message can't be edited"):
            log.warning("card %s in chat %s is gone; posting it again", message_id, chat_id)
            return (await send(bot, chat_id, view)).message_id
        raise
    return message_id


async def place(bot: Bot, chat_id: int, message_id: int | None, view: CardView) -> int:
    """Post `view`, or edit it into `message_id`; the id where it now stands."""
    if message_id is None:
        return (await send(bot, chat_id, view)).message_id
    return await edit(bot, chat_id, message_id, view)


async def answer(query: CallbackQuery, text: str, *, alert: bool = False) -> None:
    try:
        await query.answer(text[:200], show_alert=alert)
    except BadRequest as error:
        if not _is(error, "query is too old", "query id is invalid"):
            raise
        log.warning("callback query answered too late: %s", error.message)


async def delete(bot: Bot, chat_id: int, message_id: int) -> bool:
    """Delete a message; False (not an exception) when Telegram refuses."""
    try:
        return await bot.delete_message(chat_id, message_id)
    except BadRequest as error:
        log.warning("could not delete message %s: %s", message_id, error.message)
        return False
