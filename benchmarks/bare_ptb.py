"""The baseline: a bare python-telegram-bot 22 bot doing what ticketbot's busiest paths do,
with nothing else (no database, no outbox, no validation). Run by bench_baseline.py.

    python benchmarks/bare_ptb.py BASE_URL TOKEN GROUP_ID [CARD_JSON]

/tiket: post a card with a button and delete the intake; a tap: answer it, edit the card.
With CARD_JSON (a card ticketbot sent: its text and keyboard), that card instead, so both
bots send the same message and only what is around the call differs.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, filters

COUNTER = itertools.count(1)
CARD: dict[str, Any] = {}  # ticketbot's card (CARD_JSON), when given


async def on_tiket(update: Update, _: object) -> None:
    message = update.effective_message
    assert message is not None
    n = next(COUNTER)
    if CARD:
        keyboard = [
            [
                InlineKeyboardButton(b["text"], callback_data=f"v:{n}:{i}")
                for i, b in enumerate(row)
            ]
            for row in CARD["reply_markup"]["inline_keyboard"]
        ]
        await message.get_bot().send_message(
            message.chat_id,
            CARD["text"].replace("Tiket #1<", f"Tiket #{n}<"),
            parse_mode=ParseMode.HTML,
            reply_markup=InlineKeyboardMarkup(keyboard),
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )
    else:
        await message.get_bot().send_message(
            message.chat_id,
            f"📋 <b>Tiket #{n}</b> — Menunggu verifikasi Kasi",
            parse_mode=ParseMode.HTML,
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("✅ Verifikasi", callback_data=f"v:{n}")]]
            ),
        )
    await message.delete()


async def on_tap(update: Update, _: object) -> None:
    query = update.callback_query
    assert query is not None
    assert query.data is not None
    await query.answer("Diverifikasi")
    n = query.data.split(":")[1]
    if CARD:
        text = CARD["text"].replace("Tiket #1<", f"Tiket #{n}<")
        text = text.replace("Menunggu verifikasi Kasi", "Diverifikasi", 1)
        await query.edit_message_text(
            text,
            parse_mode=ParseMode.HTML,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )
    else:
        await query.edit_message_text(
            f"📋 <b>Tiket #{n}</b> — Diverifikasi", parse_mode=ParseMode.HTML
        )


def main() -> None:
    base_url, token, group = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if len(sys.argv) > 4:
        CARD.update(json.loads(Path(sys.argv[4]).read_text()))
    # No rate limiter: the floor of what python-telegram-bot itself costs per update.
    app = (
        Application.builder().token(token).base_url(base_url).concurrent_updates(True).build()
    )  # fmt: skip
    app.add_handler(CommandHandler("tiket", on_tiket, filters.Chat(group)))
    app.add_handler(CallbackQueryHandler(on_tap))
    app.run_polling(poll_interval=0, timeout=10, allowed_updates=["message", "callback_query"])


if __name__ == "__main__":
    main()
