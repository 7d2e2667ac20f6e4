"""The daily recap to the central DWH admin (SOP step 4, SPEC §4): exactly once.

A batch is frozen in one transaction when first built; it is delivered with the same
Message-ID on every attempt; its tickets move to sent_to_dwh only after the SMTP server
accepted it (250). The outbox is the batch table, so a restart resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import multiprocessing
import random
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo
from email.message import EmailMessage
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ticketbot.clock import Clock
from ticketbot.config import Config, SmtpConfig
from ticketbot.domain.calendar import WorkCalendar
from ticketbot.domain.lifecycle import Action, State
from ticketbot.domain.mail import XLSX_TYPE as XLSX_MEDIA_TYPE
from ticketbot.mailer import DeliveryError, FailureKind, send_email
from ticketbot.records import Batch, Event, Ticket, card_effect, summary_carries, summary_effect
from ticketbot.store import Stores
from ticketbot.store.rows import events_by_ticket
from ticketbot.store.snapshot import recap_snapshot
from ticketbot.texts import Texts, wrap_plain
from ticketbot.xlsx import RecapRow, recap_workbook

Sender = Callable[[SmtpConfig, EmailMessage], Awaitable[None]]
# The workbook's media type as EmailMessage.add_attachment takes it (main, sub).
XLSX_TYPE = tuple(XLSX_MEDIA_TYPE.split("/", 1))
LATE_AFTER = timedelta(hours=1)
FIRST_RETRY_SECONDS = 60
MAX_RETRY_SECONDS = 3600
log = logging.getLogger(__name__)


class NewsKind(StrEnum):
    SENT = "sent"  # accepted by the SMTP server; the group gets a summary
    LATE = "late"  # still not accepted an hour after it was frozen
    FAILED = "failed"  # refused for good (5xx)


@dataclass(frozen=True)
class RecapNews:
    kind: NewsKind
    batch: Batch
    moved: tuple[int, ...] = ()  # tickets that just moved to sent_to_dwh


@dataclass(frozen=True)
class Email:
    subject: str
    text: str
    html: str
    xlsx: bytes
    filename: str


@dataclass(frozen=True)
class RecapSchedule:
    """When a recap is due: `at` (office time) on every working day of the calendar. The
    one rule: the scheduled job and the catch-up tick both read it (jobs.schedule_jobs)."""

    calendar: WorkCalendar
    at: time

    @property
    def at_time(self) -> time:
        return self.at.replace(tzinfo=self.calendar.tz)

    def cron_days(self) -> tuple[int, ...]:
        """The weekdays for PTB's run_daily (Sunday = 0); holidays are skipped by
        latest_due(), which the job asks."""
        return tuple(sorted((d + 1) % 7 for d in self.calendar.workdays))

    def latest_due(self, now: datetime) -> date | None:
        """The latest working day whose recap time has passed (catch-up after downtime)."""
        day = now.astimezone(self.calendar.tz).date()
        for back in range(31):
            candidate = day - timedelta(days=back)
            moment = datetime.combine(candidate, self.at, self.calendar.tz)
            if self.calendar.is_workday(candidate) and moment <= now:
                return candidate
        return None

    def next_run(self, now: datetime) -> datetime:
        today = now.astimezone(self.calendar.tz).date()
        moment = self.calendar.next_work_moment(today, self.at)
        if moment <= now:
            moment = datetime.combine(self.calendar.next_workday(today), self.at, self.calendar.tz)
        return moment


def retry_delay(attempts: int, rng: random.Random) -> timedelta:
    """Exponential back-off with ±20 % jitter: 1, 2, 4 … minutes, at most an hour."""
    seconds = min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)
    return timedelta(seconds=seconds * rng.uniform(0.8, 1.2))


@dataclass
class RecapDesk:
    config: Config
    repo: Stores
    texts: Texts
    clock: Clock
    send: Sender = send_email
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._lock = asyncio.Lock()  # one delivery at a time: /rekap kirim twice at once
        self._built: tuple[int, EmailMessage] | None = None  # the last batch's message
        self._pool: ProcessPoolExecutor | None = None  # renders large recaps

    @property
    def schedule(self) -> RecapSchedule:
        return RecapSchedule(self.config.calendar, self.config.recap.time)

    async def free_within(self, seconds: float) -> bool:
        """True once no recap is being built or handed to the mail server, waiting at
        most `seconds` (a mail server that never answers must not hold a person up)."""
        try:
            async with asyncio.timeout(seconds), self._lock:
                return True
        except TimeoutError:
            return False

    # -- the job -----------------------------------------------------------------------

    async def tick(self) -> list[RecapNews]:
        """Run whatever is due: today's batch, retries, late notices, lost summaries."""
        async with self._lock:
            now = self.clock()
            due = self.schedule.latest_due(now)
            if due is not None and not await self.repo.batches.recap_ran(due):
                await self.repo.batches.freeze_batch(
                    due, now, self._domain(), allow_empty=self.config.recap.send_empty, run=True
                )
            news: list[RecapNews] = []
            for batch in await self.repo.batches.batches("pending"):
                if batch.next_attempt_at <= now:
                    news += await self._deliver(batch)
            news += await self._late_notices(now)
            return news

    async def send_now(self) -> tuple[int, list[RecapNews], Batch | None]:
        """`/rekap kirim`: freeze what is pending and deliver it now, retrying failed ones.
        Returns (tickets in the attempted batches, news, a batch that did not go)."""
        async with self._lock:
            now = self.clock()
            for batch in await self.repo.batches.batches("failed"):
                await self.repo.batches.retry_failed_batch(batch.id, now)
            await self.repo.batches.freeze_batch(
                now.astimezone(self.config.calendar.tz).date(), now, self._domain(),
                allow_empty=False, run=False,
            )  # fmt: skip
            count, news, problem = 0, [], None
            for batch in await self.repo.batches.batches("pending"):
                count += len(await self.repo.batches.batch_tickets(batch.id))
                news += await self._deliver(batch)
                after = await self.repo.batches.get_batch(batch.id)
                if after is not None and after.status != "sent":
                    problem = after
            return count, news, problem

    async def _deliver(self, batch: Batch) -> list[RecapNews]:
        try:
            message = await self.build_message(batch)
        except Exception:
            # Content is cleaned at the door and the writers cannot raise on it; should
            # anything still fail, the batch stops here (later batches go on) and the
            # group is told once. /rekap kirim tries it again after the fix.
            log.exception("recap batch %s could not be built", batch.id)
            await self.repo.batches.defer_batch(
                batch.id, self.clock(), FailureKind.BUILD, "could not build", failed=True
            )
            failed = await self.repo.batches.get_batch(batch.id)
            assert failed is not None
            return [RecapNews(NewsKind.FAILED, failed)]
        try:
            await self.send(self.config.smtp, message)
        except Exception as caught:
            error = caught if isinstance(caught, DeliveryError) else None
            if error is None:  # not the server's answer: a bug or a bad header
                log.exception("recap batch %s could not be handed to the mailer", batch.id)
                error = DeliveryError(FailureKind.BUILD, f"{type(caught).__name__}: {caught}")
            log.warning("recap batch %s not delivered (%s): %s", batch.id, error.kind,
                        error.reason)  # fmt: skip
            now = self.clock()
            attempts = batch.attempts + 1
            await self.repo.batches.defer_batch(
                batch.id, now + retry_delay(attempts, self.rng), error.kind, error.reason,
                failed=error.permanent,
            )  # fmt: skip
            if error.permanent:
                failed = await self.repo.batches.get_batch(batch.id)
                assert failed is not None
                return [RecapNews(NewsKind.FAILED, failed)]
            return []
        # The recap machine's own move: whatever step leads to it, synced -> sent_to_dwh.
        send = self.config.procedure.transition_for(Action.SEND_TO_DWH, State.SYNCED)
        assert send is not None
        moved = await self.repo.batches.mark_batch_sent(
            batch.id, send, self.clock(), f"rekap {batch.due_date.isoformat()}",
            # The cards that moved and the batch's summary, committed with the move.
            effects=lambda moved: [*map(card_effect, moved), summary_effect(batch.id)],
            carries=summary_carries,
        )  # fmt: skip
        sent = await self.repo.batches.get_batch(batch.id)
        assert sent is not None
        return [RecapNews(NewsKind.SENT, sent, tuple(moved))]

    async def _late_notices(self, now: datetime) -> list[RecapNews]:
        news = []
        for batch in await self.repo.batches.batches("pending"):
            if not batch.late_notified and now - batch.created_at > LATE_AFTER:
                await self.repo.batches.mark_batch_late_notified(batch.id)
                news.append(RecapNews(NewsKind.LATE, batch))
        return news

    # -- the email -----------------------------------------------------------------------

    def _domain(self) -> str:
        return domain_of(self.config.smtp.sender)

    async def render(self, due: date, tickets: list[Ticket], batch_id: int | None = None) -> Email:
        """The email of `tickets`: their events in one query per thousands, then the rows,
        the templates and the XLSX away from the event loop: a worker thread for a small
        recap, a worker process for a large one (a thread holds the GIL for long stretches:
        the loop would stall for 100 ms and more while people tap)."""
        job = RenderJob(
            office=self.config.office.name, kode=self.config.office.kode_wilayah,
            tz=self.config.calendar.tz, at=self.config.recap.time,
            words={k: dict(v) for k, v in self.config.procedure.words.items()},
            due=due, tickets=[], event_rows=[], batch_id=batch_id,
        )  # fmt: skip
        if len(tickets) < PROCESS_FROM:
            rows = await self.repo.events.event_rows([t.id for t in tickets], ROW_ACTIONS)
            return await asyncio.to_thread(
                render_email, replace(job, tickets=tickets, event_rows=rows)
            )
        if self._pool is None:
            # One process, started on first need and kept (forkserver: a clean child, not a
            # fork of this threaded process).
            self._pool = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("forkserver")
            )
        # The worker reads the tickets itself: pickling 10k of them would hold the GIL (and
        # so the loop) for 100 ms; their ids are all it is sent.
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, render_email_from, job, self.repo.db.path, [t.id for t in tickets]
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def build_message(self, batch: Batch) -> EmailMessage:
        """The same bytes-to-be on every attempt: Message-ID and Date come from the batch, and
        a batch is built once (a frozen batch does not change), then reused by its retries."""
        if self._built is not None and self._built[0] == batch.id:
            return self._built[1]
        content = await self.render(
            batch.due_date, await self.repo.batches.batch_tickets(batch.id), batch.id
        )
        # Encoding the attachment and the parts is CPU too: also off the loop.
        message = await asyncio.to_thread(self._compose, batch, content)
        self._built = (batch.id, message)
        return message

    def _compose(self, batch: Batch, content: Email) -> EmailMessage:
        recap = self.config.recap
        message = EmailMessage()
        message["Subject"] = content.subject
        message["From"] = self.config.smtp.sender
        message["To"] = ", ".join(recap.to)
        if recap.cc:
            message["Cc"] = ", ".join(recap.cc)
        message["Date"] = email.utils.format_datetime(batch.created_at)
        message["Message-ID"] = batch.message_id
        message.set_content(content.text)
        message.add_alternative(content.html, subtype="html")
        message.add_attachment(
            content.xlsx, maintype=XLSX_TYPE[0], subtype=XLSX_TYPE[1], filename=content.filename
        )
        return message

    async def preview(self) -> str:
        """`/rekap`: batches still going out, and what the next recap would take (masked)."""
        batches = self.repo.batches
        pending = [
            {"due_date": b.due_date, "status": b.status, "attempts": b.attempts,
             "error_kind": b.error_kind, "count": len(await batches.batch_tickets(b.id))}
            for b in await batches.batches("pending") + await batches.batches("failed")
        ]  # fmt: skip
        waiting = await self.repo.batches.unbatched_synced()
        return self.texts.render_fitting(
            "telegram/recap_preview.html", waiting, pending=pending, total=len(waiting),
            next_run=self.schedule.next_run(self.clock()),
        )  # fmt: skip

    async def preview_email(self) -> Email | None:
        """What the next recap would contain (the pending batch, else the unbatched); None
        when it would not be sent at all (nothing pending, and `send_empty` off)."""
        now = self.clock()
        pending = await self.repo.batches.batches("pending")
        if pending:
            tickets = await self.repo.batches.batch_tickets(pending[0].id)
            return await self.render(pending[0].due_date, tickets, pending[0].id)
        due = self.schedule.next_run(now).date()
        tickets = await self.repo.batches.unbatched_synced()
        if not tickets and not self.config.recap.send_empty:
            return None
        return await self.render(due, tickets)


PROCESS_FROM = 500  # tickets: a smaller recap renders in a thread in a few milliseconds


@dataclass(frozen=True)
class RenderJob:
    """Everything a recap's rendering needs, picklable (it may run in another process)."""

    office: str
    kode: str
    tz: ZoneInfo
    at: time
    words: dict[str, dict[str, str]]
    due: date
    tickets: list[Ticket]
    event_rows: list[Any]
    batch_id: int | None


def render_email(job: RenderJob) -> Email:
    """The recap's subject, texts and XLSX (in a worker thread or process)."""
    texts = Texts(job.tz, job.words)
    events = events_by_ticket(job.event_rows)
    rows = [recap_row(t, events.get(t.id, []), job.tz) for t in job.tickets]
    day = texts.day(datetime.combine(job.due, job.at, job.tz))
    context = {"office": job.office, "day": day, "rows": rows}
    # The tag is how the central admin's reply finds its batch (SPEC §4c).
    subject = texts.render(
        "email/subject.txt", count=len(rows), batch_id=job.batch_id, kode=job.kode, **context
    )
    return Email(
        subject=" ".join(subject.split()),
        text=wrap_plain(texts.render("email/recap.txt", subject=subject, **context)) + "\n",
        html=texts.render("email/recap.html", subject=subject, **context) + "\n",
        xlsx=recap_workbook(rows, subject),
        filename=f"rekap-sinkronisasi-nik-{job.due.isoformat()}.xlsx",
    )


def render_email_from(job: RenderJob, path: Path, ticket_ids: list[int]) -> Email:
    """In the worker process: the tickets and events from the database file, then render."""
    tickets, rows = recap_snapshot(path, ticket_ids, ROW_ACTIONS)
    return render_email(replace(job, tickets=tickets, event_rows=rows))


def _at(event: Event | None, tz: tzinfo) -> datetime | None:
    return event.at.astimezone(tz) if event else None


# The events a recap row is made of.
ROW_ACTIONS = tuple(
    a.value for a in (Action.OPEN, Action.VERIFY, Action.SYNC_AT_KONSOLIDASI, Action.RESYNC)
)


def recap_row(t: Ticket, events: list[Event], tz: tzinfo) -> RecapRow:
    # The latest of each step: after an "Ulang" the ticket was synced again.
    done = {e.action: e for e in events if e.to_state}
    opened, verified, synced = (
        done.get(a.value) for a in (Action.OPEN, Action.VERIFY, Action.SYNC_AT_KONSOLIDASI)
    )
    return RecapRow(
        ticket_id=t.id, nik=t.nik, kk=t.kk, nama=t.nama or "", lembaga=t.lembaga,
        keterangan=t.keterangan,
        opened_at=_at(opened, tz), opened_by=opened.actor_name if opened else "",
        verified_at=_at(verified, tz), verified_by=verified.actor_name if verified else "",
        synced_at=_at(synced, tz), synced_by=synced.actor_name if synced else "",
        repeat=Action.RESYNC.value in done,
        repeat_reason=(done[Action.RESYNC.value].detail or "") if Action.RESYNC.value in done
        else "",
    )  # fmt: skip


def test_email(config: Config) -> EmailMessage:
    """`ticketbot recap --test`: the recap's envelope and path, with no personal data."""
    texts = Texts(config.office.timezone)
    message = EmailMessage()
    message["Subject"] = texts.render("email/test_subject.txt", office=config.office.name)
    message["From"] = config.smtp.sender
    message["To"] = ", ".join(config.recap.to)
    if config.recap.cc:
        message["Cc"] = ", ".join(config.recap.cc)
    message["Date"] = email.utils.formatdate(localtime=True)
    message["Message-ID"] = email.utils.make_msgid(domain=domain_of(config.smtp.sender))
    message.set_content(texts.render("email/test.txt", office=config.office.name) + "\n")
    return message


def domain_of(sender: str) -> str:
    _, address = email.utils.parseaddr(sender)
    return address.rpartition("@")[2] or "ticketbot.invalid"
