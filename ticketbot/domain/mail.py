"""What a mail from the central DWH side says (SPEC §4c). Pure code: bytes in, facts out.

Read with the standard library's parser, which never raises on a malformed message (it
records defects); every part is read on its own so one broken part spoils only itself.
Helpdesks that handle mail learnt the rules the hard way (Zammad, RT, FreeScout): thread
by the ids the mail carries before trusting a subject; tell automatic replies by their
headers (RFC 3834 and what Exchange and Gmail actually send), never by guessing at the
text; read delivery reports (RFC 3464) by their machine-readable part; and never trust a
From header alone.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from enum import StrEnum
from html.parser import HTMLParser

from ticketbot.domain.privacy import redact_personal

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TAG = re.compile(r"\[SINKRON\s+(\S+)\s+B(\d{1,9})\]", re.IGNORECASE)
_MSGID = re.compile(r"<[^<>\s]+>")
ANSWER_LINES = 6  # of the answer itself, shown in the group
LINE_CHARS = 300


class Kind(StrEnum):
    REPLY = "reply"  # a person's answer about a recap
    AUTO = "auto"  # an automatic reply (out of office and the like)
    BOUNCE = "bounce"  # a delivery report: the recap did not arrive (5.x.x)
    DELAY = "delay"  # a delivery report: still trying (4.x.x)
    REPORT = "report"  # a delivery report that says nothing went wrong
    OVERSIZE = "oversize"  # over mailbox.max_bytes: recorded, not read


class Verdict(StrEnum):
    REPLY = "reply"  # a trusted answer: shown, with "Terapkan" when it proposes anything
    UNTRUSTED = "untrusted"  # "tidak terverifikasi": shown, never a button
    AUTO = "auto"
    BOUNCE = "bounce"
    DELAY = "delay"
    REPORT = "report"
    OVERSIZE = "oversize"
    UNMATCHED = "unmatched"  # no recap of ours: left alone
    MALFORMED = "malformed"  # could not be read at all: recorded


# What the group is told of only once per batch: automatic replies and delays once per batch.
ONCE_PER_BATCH = frozenset({Verdict.AUTO, Verdict.DELAY, Verdict.REPORT})


@dataclass(frozen=True)
class Bounce:
    permanent: bool
    recipients: tuple[str, ...]  # the addresses that refused (or are delayed)
    status: str  # the first one's RFC 3463 code, e.g. 5.1.1
    diagnostic: str  # the remote server's words, shortened


@dataclass(frozen=True)
class Mail:
    message_id: str
    sender: str  # the From address, lower case
    sender_name: str
    subject: str
    date: datetime | None
    refs: tuple[str, ...]  # In-Reply-To, then References, newest first
    kind: Kind
    text: str = ""  # the body as plain text (HTML turned into text)
    xlsx: bytes | None = None  # a returned recap workbook, if attached
    bounce: Bounce | None = None
    auth_results: tuple[str, ...] = ()  # Authentication-Results headers, topmost first

    def tag(self, kode_wilayah: str) -> int | None:
        """The batch the subject's [SINKRON <kode> B<n>] names, when the kode is ours."""
        for match in TAG.finditer(self.subject):
            if match.group(1) == (kode_wilayah or "-"):
                return int(match.group(2))
        return None


# -- reading ----------------------------------------------------------------------------


def read_mail(raw: bytes, size: int, max_bytes: int) -> Mail:
    """Everything the bot uses from one message of `size` bytes (over `max_bytes`, only its
    header was fetched: it is recorded, not read); never raises."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    head = _headers(message)
    if size > max_bytes:
        return replace(head, kind=Kind.OVERSIZE)
    bounce = _delivery_report(message)
    text, xlsx = _body(message)
    if bounce is not None:
        kind = Kind.REPORT
        if bounce.recipients:
            kind = Kind.BOUNCE if bounce.permanent else Kind.DELAY
        refs = tuple(dict.fromkeys((*_original_ids(message), *head.refs)))
        return replace(head, refs=refs, kind=kind, bounce=bounce)
    kind = Kind.AUTO if is_automatic(message) else Kind.REPLY
    return replace(head, kind=kind, text=text, xlsx=xlsx)


def message_id_of(raw: bytes) -> str:
    """The Message-ID in a mail's header ("" when it has none), reading the header only."""
    try:
        headers = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    except (ValueError, TypeError, IndexError):
        return ""
    return (_MSGID.findall(_header(headers, "Message-ID")) or [""])[0]


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
        return " ".join(str(value).split()) if value is not None else ""
    except (ValueError, TypeError, IndexError, AttributeError):  # a header the parser chokes on
        return ""


def _headers(message: Message) -> Mail:
    name, address = email.utils.parseaddr(_header(message, "From"))
    try:
        date = email.utils.parsedate_to_datetime(_header(message, "Date"))
    except (ValueError, TypeError):
        date = None
    refs = _MSGID.findall(_header(message, "In-Reply-To"))
    refs += reversed(_MSGID.findall(_header(message, "References")))
    auth = []
    try:
        auth = [" ".join(str(v).split()) for v in message.get_all("Authentication-Results") or ()]
    except (ValueError, TypeError, IndexError, AttributeError):
        auth = []
    return Mail(
        message_id=(_MSGID.findall(_header(message, "Message-ID")) or [""])[0],
        sender=address.strip().lower(),
        sender_name=name.strip(),
        subject=_header(message, "Subject"),
        date=date,
        refs=tuple(dict.fromkeys(refs)),
        kind=Kind.REPLY,
        auth_results=tuple(auth),
    )


AUTO_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto(matic)?[- ]?reply|out of (the )?office|abwesenheit|"
    r"balasan otomatis|pesan otomatis|sedang cuti|di luar kantor)\b", re.IGNORECASE,
)  # fmt: skip


def is_automatic(message: Message) -> bool:
    """RFC 3834's Auto-Submitted, and what Exchange, Gmail and list servers send instead."""
    auto = _header(message, "Auto-Submitted").lower()
    if auto and auto != "no":
        return True
    if _header(message, "Precedence").lower() in {"bulk", "junk", "list", "auto_reply"}:
        return True
    if any(
        _header(message, h) for h in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")
    ):
        return True
    if _header(message, "X-MS-Exchange-Inbox-Rules-Loop") or _header(message, "List-Id"):
        return True
    return AUTO_SUBJECT.match(_header(message, "Subject")) is not None


def _delivery_report(message: Message) -> Bounce | None:
    """RFC 3464: the per-recipient blocks of the message/delivery-status part."""
    if message.get_content_type() != "multipart/report":
        return None
    if message.get_param("report-type", "").lower() != "delivery-status":  # type: ignore[union-attr]
        return None
    failed: list[str] = []
    delayed: list[str] = []
    status = diagnostic = ""
    for part in message.walk():
        if part.get_content_type() not in (
            "message/delivery-status",
            "message/global-delivery-status",
        ):
            continue
        for block in _status_blocks(part):
            action = _header(block, "Action").lower()
            code = _header(block, "Status").split(" ")[0]
            recipient = _header(block, "Final-Recipient") or _header(block, "Original-Recipient")
            recipient = recipient.partition(";")[2].strip() or recipient
            if not recipient:
                continue
            if action == "failed" or code.startswith("5"):
                failed.append(recipient.lower())
            elif action == "delayed" or code.startswith("4"):
                delayed.append(recipient.lower())
            else:
                continue
            if not status:
                status = code
                diagnostic = _header(block, "Diagnostic-Code").partition(";")[2].strip()
    recipients = failed or delayed
    return Bounce(bool(failed), tuple(dict.fromkeys(recipients)), status, diagnostic[:200])


def _status_blocks(part: Message) -> list[Message]:
    """The per-message and per-recipient field blocks, however the parser stored them."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = payload if isinstance(payload, str) else ""
    if not text:
        return []
    return [email.message_from_string(b.strip() + "\n\n") for b in re.split(r"\r?\n\s*\r?\n", text)
            if b.strip()]  # fmt: skip


def _original_ids(message: Message) -> list[str]:
    """The Message-ID of the returned original (message/rfc822 or text/rfc822-headers)."""
    ids: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            for m in inner if isinstance(inner, list) else [inner]:
                if isinstance(m, Message):
                    ids += _MSGID.findall(_header(m, "Message-ID"))
        elif kind == "text/rfc822-headers":
            headers = email.message_from_string(_text_of(part) or "")
            ids += _MSGID.findall(_header(headers, "Message-ID"))
    return ids


def _text_of(part: Message) -> str | None:
    try:
        if isinstance(part, EmailMessage):
            content = part.get_content()
            return content if isinstance(content, str) else None
        payload = part.get_payload(decode=True)
        return payload.decode(part.get_content_charset() or "utf-8", "replace") if isinstance(
            payload, bytes) else None  # fmt: skip
    except (LookupError, ValueError, TypeError, AttributeError, UnicodeError, KeyError):
        return None


def _body(message: Message) -> tuple[str, bytes | None]:
    """The first readable plain-text part (else the first HTML part as text) and the first
    XLSX; a part that cannot be read is passed over."""
    plain = rich = None
    xlsx = None
    for part in message.walk():
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        filename = (part.get_filename() or "").lower()
        if kind == XLSX_TYPE or filename.endswith(".xlsx"):
            try:
                data = part.get_payload(decode=True)
            except (ValueError, TypeError):
                data = None
            if isinstance(data, bytes) and data and xlsx is None:
                xlsx = data
            continue
        if part.get_content_disposition() == "attachment" or kind not in (
            "text/plain",
            "text/html",
        ):
            continue
        text = _text_of(part)
        if text is None:
            continue
        if kind == "text/plain" and plain is None:
            plain = text
        elif kind == "text/html" and rich is None:
            rich = html_text(text)
    return (plain if plain is not None else rich or ""), xlsx


class _Text(HTMLParser):
    BLOCK = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "table", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.quote = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "head"):
            self.skip += 1
        classes = " ".join(v or "" for k, v in attrs if k in ("class", "id"))
        if tag == "blockquote" or "gmail_quote" in classes or "divRplyFwdMsg" in classes:
            self.quote += 1  # the quoted recap: Gmail and Outlook mark it
        if tag in self.BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head"):
            self.skip = max(self.skip - 1, 0)
        if tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append("> " + data if self.quote else data)


def html_text(markup: str) -> str:
    parser = _Text()
    try:
        parser.feed(markup)
        parser.close()
    except (AssertionError, ValueError):
        return html.unescape(re.sub(r"<[^>]+>", " ", markup))
    return "".join(parser.out)


# -- the answer itself ------------------------------------------------------------------

# Where the quoted recap (or a signature) begins, in the shapes Gmail, Outlook/Exchange and
# Thunderbird write, in Indonesian and English.
_QUOTE_HEAD = re.compile(
    r"^\s*(on .{3,200} wrote:?|pada .{3,200} menulis:?|.{3,200} (wrote|menulis):$|"
    r"-{2,}\s*(original message|pesan asli|forwarded message|pesan yang diteruskan)\s*-{2,}|"
    r"_{10,}|(from|dari)\s*:\s*.+|(sent|dikirim)\s*:\s*.+)\s*$", re.IGNORECASE,
)  # fmt: skip
_SIGNATURE = re.compile(r"^(--|—|salam,?|hormat saya,?|regards,?|terima kasih,?|sent from my .*|"
                        r"dikirim dari .*)\s*$", re.IGNORECASE)  # fmt: skip


def answer_lines(text: str, limit: int = ANSWER_LINES) -> tuple[str, ...]:
    """The answer the person wrote: no quoted recap, no signature, no blank lines; masked."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = " ".join(raw.split())
        if _QUOTE_HEAD.match(line):
            break  # what follows is the recap (or a forwarded mail), not the answer
        if line.startswith(">"):
            if lines:
                break
            continue  # answers written below the quote are read too
        if _SIGNATURE.match(line) and lines:
            break
        if line:
            lines.append(redact_personal(line)[:LINE_CHARS])
    return tuple(lines[:limit])


# -- what it proposes -------------------------------------------------------------------

_DONE = re.compile(r"\b(sudah|selesai|berhasil|ok|oke|done|sukses|beres)\b", re.IGNORECASE)
_FAILED = re.compile(r"\b(gagal|belum|tidak|tdk|blm)\b", re.IGNORECASE)
_TICKET = re.compile(r"#\s?(\d{1,9})\b")


@dataclass(frozen=True)
class Proposal:
    confirm: tuple[int, ...] = ()  # tickets the DWH admin says are done
    failed: tuple[tuple[int, str], ...] = ()  # (ticket, the admin's reason), masked

    @property
    def empty(self) -> bool:
        return not self.confirm and not self.failed


@dataclass(frozen=True)
class SheetRow:
    ticket_id: int
    status: str  # the "Status DWH" cell
    note: str  # the "Catatan DWH" cell


@dataclass
class _Draft:
    failed: dict[int, str] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)
    all_done: bool = False


def propose(lines: Iterable[str], rows: Sequence[SheetRow], batch: Sequence[int]) -> Proposal:
    """From the answer's words and the returned sheet's rows: which of the batch's tickets
    to confirm and which to send back with the admin's reason. Lines naming a ticket decide
    for that ticket; a line saying "sudah/selesai/berhasil/OK" without a ticket confirms
    the rest; sheet rows decide for their tickets. Tickets outside the batch are ignored."""
    members = set(batch)
    draft = _Draft()
    for line in lines:
        named = [int(n) for n in _TICKET.findall(line) if int(n) in members]
        failed = _FAILED.search(line) is not None
        for ticket in named:
            if failed:
                draft.failed[ticket] = _reason(line)
            elif _DONE.search(line):
                draft.done.add(ticket)
        if not named and not failed and _DONE.search(line):
            draft.all_done = True
    sheet = [r for r in rows if r.ticket_id in members and r.status.strip()]
    for row in sheet:
        status = row.status.strip().lower()
        if _FAILED.search(status) or status.startswith("gagal"):
            draft.failed[row.ticket_id] = redact_personal(" ".join(row.note.split()))[:200] or (
                row.status.strip())  # fmt: skip
        elif _DONE.search(status):
            draft.done.add(row.ticket_id)
    if sheet and all(r.ticket_id in draft.done for r in sheet) and len(sheet) == len(members):
        draft.all_done = True
    confirm = members if draft.all_done else draft.done
    return Proposal(
        confirm=tuple(sorted(t for t in confirm if t not in draft.failed)),
        failed=tuple(sorted(draft.failed.items())),
    )


def _reason(line: str) -> str:
    """The admin's words about one ticket, without the ticket number."""
    words = " ".join(_TICKET.sub(" ", line).split()).strip(" :-–,.")
    return redact_personal(words)[:200] or "gagal menurut admin DWH"


# -- trust ------------------------------------------------------------------------------

_RESULT = re.compile(r"\b(dmarc|dkim)=(\w+)([^;]*)", re.IGNORECASE)
_HEADER_D = re.compile(r"header\.(?:d|i)=@?([\w.-]+)", re.IGNORECASE)


def authenticated(mail: Mail, authserv_id: str) -> bool:
    """The topmost Authentication-Results of our own server (authserv-id) says DMARC pass,
    or DKIM pass with a signing domain aligned with the From domain (RFC 7489, relaxed).
    Headers of other servers, lower down, were written by whoever sent the mail."""
    domain = mail.sender.rpartition("@")[2]
    for header in mail.auth_results:
        server = header.split(";", 1)[0].split()[0].lower() if header.strip() else ""
        if server != authserv_id.lower():
            continue
        for method, result, props in _RESULT.findall(header):
            if result.lower() != "pass":
                continue
            if method.lower() == "dmarc":
                return True
            signer = _HEADER_D.search(props)
            if signer and _aligned(signer.group(1).lower(), domain):
                return True
        return False  # only the topmost of our server counts
    return False


def _aligned(signer: str, domain: str) -> bool:
    return bool(domain) and (domain == signer or domain.endswith("." + signer)
                             or signer.endswith("." + domain))  # fmt: skip


def trusted_sender(mail: Mail, trusted: Iterable[str], authserv_id: str) -> bool:
    addresses = {email.utils.parseaddr(a)[1].lower() for a in trusted}
    if mail.sender not in addresses:
        return False
    return not authserv_id or authenticated(mail, authserv_id)


def batch_of_refs(mail: Mail, known: dict[str, int]) -> int | None:
    """The batch whose recap Message-ID the mail names (In-Reply-To first)."""
    for ref in mail.refs:
        if ref in known:
            return known[ref]
    return None
