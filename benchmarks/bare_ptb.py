"""The baseline: a bare python-telegram-bot 22 bot doing what ticketbot's busiest paths do,
with nothing else (no database, no outbox, no validation). Run by bench_baseline.py.

    python benchmarks/bare_ptb.py BASE_URL TOKEN GROUP_ID

/tiket: post a card with a button and delete the intake; a tap: answer it, edit the card.
"""

from __future__ import annotations

import itertools
import sys

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, filters

COUNTER = itertools.count(1)


async def on_tiket(update: Update, _: object) -> None:
    message = update.effective_message
    assert message is not None
    n = next(COUNTER)
    await message.get_bot().send_message(
        message.chat_id, f"📋 <b>Tiket #{n}</b> — Menunggu verifikasi Kasi",
        parse_mode=ParseMode.HTML,
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("✅ Verifikasi",
                                                                 callback_data=f"v:{n}")]]),
    )  # fmt: skip
    await message.delete()


async def on_tap(update: Update, _: object) -> None:
    query = update.callback_query
    assert query is not None
    assert query.data is not None
    await query.answer("Diverifikasi")
    await query.edit_message_text(f"📋 <b>Tiket #{query.data[2:]}</b> — Diverifikasi",
                                  parse_mode=ParseMode.HTML)  # fmt: skip


def main() -> None:
    base_url, token, group = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # No rate limiter: the floor of what python-telegram-bot itself costs per update.
    app = (
        Application.builder().token(token).base_url(base_url).concurrent_updates(True).build()
    )  # fmt: skip
    app.add_handler(CommandHandler("tiket", on_tiket, filters.Chat(group)))
    app.add_handler(CallbackQueryHandler(on_tap))
    app.run_polling(poll_interval=0, timeout=10, allowed_updates=["message", "callback_query"])


if __name__ == "__main__":
    main()
