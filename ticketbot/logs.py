"""Logging that never carries the bot token, a full NIK/KK, a phone number or a name.

The filter sits on the one handler, so it sees every record of every library at every
level (python-telegram-bot logs whole updates at DEBUG, aiosqlite its SQL parameters).
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

from ticketbot.domain.privacy import redact_log

TOKEN_IN_TEXT = re.compile(r"\d{3,12}:[A-Za-z0-9_-]{20,}")


def redact(text: str) -> str:
    return redact_log(TOKEN_IN_TEXT.sub("<token>", text))


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a library's bad format string must not hide the record
            message = f"{record.msg!r} {record.args!r}"
        cleaned = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(level: int = logging.INFO, stream: TextIO | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL, and the URL carries the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # aiosqlite logs every statement with its parameters (a resident's name, keterangan):
    # nothing there an operator needs, and not ours to redact field by field.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    # The demo's SMTP sink (aiosmtpd) logs each mail's data at DEBUG: a recap is personal.
    logging.getLogger("mail.log").setLevel(logging.INFO)
    return handler
