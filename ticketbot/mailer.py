"""Sending one email through SMTP with aiosmtplib; failures classified for the outbox.

Every failure gets a `kind` that the group is told about in Indonesian (templates), and the
raw English detail goes to the log and the CLI only. Permanent kinds wait for a person;
the others are retried with back-off.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from enum import StrEnum
from pathlib import Path

import aiosmtplib

from ticketbot.config import SmtpConfig


class FailureKind(StrEnum):
    REFUSED = "refused"  # 5xx for the sender, a recipient or the content: permanent
    AUTH = "auth"  # the login was refused: permanent
    TLS = "tls"  # the server's certificate is not trusted: permanent
    TEMPORARY = "temporary"  # 4xx: the server asks to try later
    UNREACHABLE = "unreachable"  # no connection, or no answer in time
    BUILD = "build"  # the email could not be built (never the server's fault)


PERMANENT = frozenset({FailureKind.REFUSED, FailureKind.AUTH, FailureKind.TLS, FailureKind.BUILD})


class DeliveryError(Exception):
    def __init__(self, kind: FailureKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason

    @property
    def permanent(self) -> bool:
        return self.kind in PERMANENT


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The system's trusted CAs (Python's default context, which honours SSL_CERT_FILE),
    plus the office's own CA when `ca_file` (smtp.ca_file, mailbox.ca_file) names one."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def classify(error: Exception) -> DeliveryError:
    if _caused_by(error, ssl.SSLCertVerificationError):
        return DeliveryError(FailureKind.TLS, f"certificate not trusted: {error}")
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return DeliveryError(FailureKind.AUTH, f"{error.code} {error.message}")
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in error.recipients]
        reason = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in error.recipients)
        permanent = all(c >= 500 for c in codes)
        return DeliveryError(FailureKind.REFUSED if permanent else FailureKind.TEMPORARY, reason)
    if isinstance(error, aiosmtplib.SMTPResponseException) and error.code >= 400:
        kind = FailureKind.REFUSED if error.code >= 500 else FailureKind.TEMPORARY
        return DeliveryError(kind, f"{error.code} {error.message}")
    if _caused_by(error, ssl.SSLError):
        return DeliveryError(FailureKind.TLS, f"TLS failed: {error}")
    return DeliveryError(FailureKind.UNREACHABLE, f"{type(error).__name__}: {error}")


async def send_email(smtp: SmtpConfig, message: EmailMessage) -> None:
    """Returns only once the server accepted the message (250 after DATA)."""
    secure = smtp.security in ("tls", "starttls")
    try:
        await aiosmtplib.send(
            message,
            hostname=smtp.host,
            port=smtp.port,
            # Never a login over a plain connection (check-config refuses it too).
            username=smtp.username if secure and smtp.username else None,
            password=smtp.password.get_secret_value() if secure and smtp.username else None,
            use_tls=smtp.security == "tls",
            # True: STARTTLS is required, never silently skipped; False: plain.
            start_tls=smtp.security == "starttls",
            tls_context=tls_context(smtp.ca_file) if secure else None,
            timeout=smtp.timeout_seconds,
        )
    except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as error:
        raise classify(error) from error
