"""Sending one email through SMTP with aiosmtplib; failures classified for the outbox."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from ticketbot.config import SmtpConfig


class DeliveryError(Exception):
    """`permanent`: the server said no (5xx); otherwise retry later."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


async def send_email(smtp: SmtpConfig, message: EmailMessage) -> None:
    """Returns only once the server accepted the message (250 after DATA)."""
    try:
        await aiosmtplib.send(
            message,
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username or None,
            password=smtp.password.reveal() if smtp.username else None,
            use_tls=smtp.security == "tls",
            # True: STARTTLS is required, never silently skipped; False: plain.
            start_tls=smtp.security == "starttls",
            timeout=smtp.timeout_seconds,
        )
    except aiosmtplib.SMTPRecipientsRefused as error:
        codes = [r.code for r in error.recipients]
        reason = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in error.recipients)
        raise DeliveryError(reason, permanent=all(c >= 500 for c in codes)) from error
    except aiosmtplib.SMTPResponseException as error:
        raise DeliveryError(
            f"{error.code} {error.message}", permanent=error.code >= 500
        ) from error
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        raise DeliveryError(f"{type(error).__name__}: {error}", permanent=False) from error
