"""The monthly report for the head of the office (SPEC §4b).

The figures come from the event log (domain/report.py); this module renders them as a chart
(PNG, sized for a phone), an XLSX and an email, all in a worker thread so the event loop
keeps answering taps, and delivers the monthly email exactly once: one `report_runs` row per
month, the same Message-ID on every attempt, retried with the recap's back-off, the group
told once when it cannot go.
"""

from __future__ import annotations

import asyncio
import email.utils
import io
import json
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING

from ticketbot.clock import Clock
from ticketbot.config import Config
from ticketbot.domain.calendar import Sla
from ticketbot.domain.lifecycle import Standard, Unit
from ticketbot.domain.province import summary
from ticketbot.domain.report import Month, MonthReport, build_report
from ticketbot.mailer import DeliveryError, FailureKind, send_email
from ticketbot.recap import XLSX_TYPE, Sender, domain_of, retry_delay
from ticketbot.records import Effect, ReportRun, send_effect
from ticketbot.store import Stores
from ticketbot.store.rows import histories
from ticketbot.texts import Texts, wrap_plain
from ticketbot.xlsx import Column, add_table, new_workbook, workbook_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure  # imported late: matplotlib is slow to import

log = logging.getLogger(__name__)
PROVINCE = "provinsi:"  # the key of the province's monthly run: "provinsi:2026-05"
CHART_INCHES = (7.2, 9.6)  # at 150 dpi: 1080 x 1440 px, a phone screen's width
CHART_DPI = 150


@dataclass(frozen=True)
class ReportFiles:
    month: Month
    title: str  # "Mei 2026"
    figures: MonthReport
    png: bytes
    xlsx: bytes
    caption: str  # Telegram HTML, under 1024 characters
    subject: str
    text: str
    html: str

    @property
    def png_name(self) -> str:
        return f"laporan-{self.month}.png"

    @property
    def xlsx_name(self) -> str:
        return f"laporan-{self.month}.xlsx"


def standard_text(standard: Standard | None, sla: Sla) -> str:
    if standard is None:
        return ""
    amount = sla.amount(standard)
    shown = f"{amount:g}"
    return f"{shown} hari kerja" if standard.unit == Unit.WORKDAYS else f"{shown} menit"


def month_title(texts: Texts, month: Month) -> str:
    return f"{texts.label('months', str(month.month))} {month.year}"


# -- rendering (CPU only: runs in a worker thread) -----------------------------------------


def chart_png(report: MonthReport, texts: Texts, office: str, sla: Sla) -> bytes:
    """The chart as a PNG (see `chart_figure`)."""
    buffer = io.BytesIO()
    chart_figure(report, texts, office, sla).savefig(
        buffer, format="png", metadata={"Software": None}
    )
    return buffer.getvalue()


def chart_figure(report: MonthReport, texts: Texts, office: str, sla: Sla) -> Figure:
    """Two panels a phone shows whole: share within the standard per step, and tickets
    opened and closed per week. matplotlib's object API with the Agg canvas: no pyplot,
    no global state, safe in a thread."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=CHART_INCHES, dpi=CHART_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1)
    title = f"Laporan {month_title(texts, report.month)}"
    if not report.complete:
        title += f" (s.d. {texts.day(report.end - timedelta(microseconds=1))})"
    fig.suptitle(f"{title}\n{office}", fontsize=14, fontweight="bold")

    names = [
        f"{s.sop_step}. {texts.label('sop_steps', str(s.sop_step))}\n"
        f"standar {standard_text(s.standard, sla)}"
        for s in report.steps
    ]
    shares = [100 * (s.within_share or 0) for s in report.steps]
    colours = [
        "#9e9e9e" if not s.handled else "#2e7d32" if share >= 90 else
        "#f9a825" if share >= 70 else "#c62828"
        for s, share in zip(report.steps, shares, strict=True)
    ]  # fmt: skip
    bars = top.barh(names, shares, color=colours)
    top.invert_yaxis()
    top.set_xlim(0, 100)
    top.set_xlabel("% tepat waktu", fontsize=12)
    top.set_title("Tepat waktu per langkah SOP", fontsize=13, loc="left")
    top.tick_params(axis="y", labelsize=12)
    for bar, step, share in zip(bars, report.steps, shares, strict=True):
        label = f"{share:.0f}% ({step.within}/{step.handled})" if step.handled else "belum ada"
        inside = share > 55
        top.text(
            share - 2 if inside else share + 2, bar.get_y() + bar.get_height() / 2, label,
            va="center", ha="right" if inside else "left", fontsize=13,
            color="white" if inside else "black", fontweight="bold",
        )  # fmt: skip

    weeks = report.weeks
    xs = list(range(len(weeks)))
    opened = bottom.bar([x - 0.2 for x in xs], [w.opened for w in weeks], 0.4, label="Dibuka",
                        color="#1565c0")  # fmt: skip
    closed = bottom.bar([x + 0.2 for x in xs], [w.closed for w in weeks], 0.4, label="Ditutup",
                        color="#90a4ae")  # fmt: skip
    # Numbers of three digits side by side would run into each other: upright then.
    wide = max((max(w.opened, w.closed) for w in weeks), default=0) >= 100
    for bars_ in (opened, closed):
        bottom.bar_label(bars_, fontsize=10 if wide else 11, rotation=90 if wide else 0,
                         padding=3)  # fmt: skip
    bottom.set_xticks(xs, [f"{w.first.day:d}/{w.first.month:d}" for w in weeks], fontsize=12)
    bottom.set_xlabel("minggu, mulai tanggal (tgl/bln)", fontsize=12)
    bottom.set_title(f"Tiket per minggu — dibuka {report.opened}, ditutup {report.closed}",
                     fontsize=13, loc="left")  # fmt: skip
    bottom.legend(fontsize=12)
    bottom.margins(y=0.25 if wide else 0.15)
    return fig


SUMMARY_COLUMNS = (
    Column("Langkah SOP", 28, wrap=True),
    Column("Standar", 16),
    Column("Ditangani", 11, "number"),
    Column("Median (menit kerja)", 14, "number"),
    Column("Persentil 90 (menit kerja)", 14, "number"),
    Column("Tepat waktu", 12, "number"),
    Column("% tepat waktu", 12, "number"),
)


def ticket_columns(steps: Sequence[int]) -> tuple[Column, ...]:
    """The ticket sheet: a working-time column for each timed step of the table."""
    return (
        Column("No. Tiket", 10, "number"),
        Column("NIK (tersamar)", 19),
        Column("Lembaga Pengguna", 22, wrap=True),
        Column("Dibuka", 17, "date"),
        Column("Status akhir periode", 30, wrap=True),
        *(Column(f"Langkah {n} (menit kerja)", 12, "number") for n in steps),
        Column("Lewat standar (langkah)", 12),
        Column("Alasan", 40, wrap=True),
    )


def report_workbook(report: MonthReport, texts: Texts, title: str, sla: Sla) -> bytes:
    """The same numbers as the chart and the email, and a row per ticket (masked NIK)."""
    tz = texts.tz
    wb = new_workbook()
    add_table(wb, "Ringkasan", SUMMARY_COLUMNS, [
        (f"2. {texts.label('sop_steps', '2')} (tiket dibuka)", "", report.opened, None, None,
         None, None),
        *((f"{s.sop_step}. {texts.label('sop_steps', str(s.sop_step))}",
           standard_text(s.standard, sla), s.handled, _round(s.median_minutes),
           _round(s.p90_minutes), s.within,
           _round(100 * s.within_share) if s.within_share is not None else None)
          for s in report.steps),
    ], print_header=title)  # fmt: skip
    add_table(wb, "Lembaga", (Column("Lembaga Pengguna", 30, wrap=True),
                              Column("Tiket dibuka", 12, "number")),
              report.lembaga, print_header=title)  # fmt: skip
    add_table(wb, "Sumber", (Column("Sumber permohonan", 20), Column("Tiket dibuka", 12,
              "number")), report.channels, print_header=title)  # fmt: skip
    resyncs, sent = report.resyncs
    add_table(wb, "Sinkron ulang", (Column("Tiket terkirim ke DWH", 16, "number"),
              Column("Sinkron ulang", 14, "number"), Column("% per tiket terkirim", 14,
              "number")), [(sent, resyncs, _round(100 * resyncs / sent) if sent else None)],
              print_header=title)  # fmt: skip
    add_table(wb, "Alasan", (Column("Jalur", 26), Column("Alasan", 50, wrap=True),
                             Column("Jumlah", 10, "number")),
              ((texts.label("actions", a), r, n) for a, r, n in report.reasons),
              print_header=title)  # fmt: skip
    add_table(wb, "Terbuka akhir periode", (
        Column("No. Tiket", 10, "number"), Column("NIK (tersamar)", 19),
        Column("Lembaga Pengguna", 22, wrap=True), Column("Status", 30, wrap=True),
        Column("Dibuka", 17, "date"), Column("Umur (hari)", 10, "number"),
        Column("Lewat standar", 12),
    ), ((t.ticket_id, t.nik_masked, t.lembaga, texts.label("states", t.state),
         t.opened_at.astimezone(tz), t.age_days, "Ya" if t.overdue else "")
        for t in report.open_at_end), print_header=title)  # fmt: skip
    # Named as the chart names them: the week's first day in the month.
    add_table(wb, "Per minggu", (Column("Minggu mulai (tanggal)", 22),
              Column("Dibuka", 10, "number"), Column("Ditutup", 10, "number")),
              ((w.first.isoformat(), w.opened, w.closed) for w in report.weeks),
              print_header=title)  # fmt: skip
    steps = [s.sop_step for s in report.steps]
    add_table(wb, "Tiket", ticket_columns(steps), (
        (t.ticket_id, t.nik_masked, t.lembaga, t.opened_at.astimezone(tz),
         texts.label("states", t.state_at_end), *(_round(t.minutes.get(n)) for n in steps),
         ", ".join(map(str, t.late_steps)), "; ".join(t.reasons))
        for t in report.tickets
    ), print_header=title)  # fmt: skip
    return workbook_bytes(wb)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def render_files(report: MonthReport, texts: Texts, office: str, sla: Sla) -> ReportFiles:
    title = month_title(texts, report.month)
    context = {
        "report": report, "office": office, "title": title,
        "standard": lambda s: standard_text(s, sla),
    }  # fmt: skip
    subject = " ".join(texts.render("email/report_subject.txt", **context).split())
    return ReportFiles(
        month=report.month,
        title=title,
        figures=report,
        png=chart_png(report, texts, office, sla),
        xlsx=report_workbook(report, texts, subject, sla),
        caption=texts.render("telegram/report_caption.html", **context),
        subject=subject,
        text=wrap_plain(texts.render("email/report.txt", subject=subject, **context)) + "\n",
        html=texts.render("email/report.html", subject=subject, **context) + "\n",
    )


# -- the desk ---------------------------------------------------------------------------


@dataclass
class ReportDesk:
    config: Config
    repo: Stores
    texts: Texts
    clock: Clock
    send: Sender = send_email
    rng: random.Random = field(default_factory=random.Random)
    group_id: Callable[[], int] | None = None  # where failures are told (office.group_id)
    _built: ReportFiles | None = None  # the last report emailed, reused by its retries
    _resumed: bool = False

    async def build(self, month: Month) -> ReportFiles:
        """The month's figures and files, computed and drawn in a worker thread."""
        start, end = month.bounds(self.config.calendar.tz)
        tickets, events = await self.repo.reports.report_rows(start, end)
        config, now = self.config, self.clock()

        def work() -> ReportFiles:
            found = histories(tickets, events)
            report = build_report(month, found, config.procedure, config.calendar, config.sla, now)
            return render_files(report, self.texts, config.office.name, config.sla)

        return await asyncio.to_thread(work)

    async def province_summary(self, files: ReportFiles) -> bytes:
        """The month for the province (SPEC §4b): counts and shares, no personal data."""
        cal, now = self.config.calendar, self.clock()
        ages = [
            cal.work_minutes_between(batch.sent_at, now) / cal.day_minutes
            for batch, _ in await self.repo.batches.unconfirmed_batches()
            if batch.sent_at is not None
        ]
        office = self.config.office
        data = summary(files.figures, office.name, office.kode_wilayah, ages)
        return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")

    def default_month(self, now: datetime) -> Month:
        """`/laporan` alone: the month running, or the last one on (and before the end
        of) the first working day of a month, when the head of office asks for it."""
        today = now.astimezone(self.config.calendar.tz).date()
        month = Month.of(today)
        first = self.first_work_moment(month)
        return month.previous() if today <= first.date() else month

    def first_work_moment(self, month: Month) -> datetime:
        start, _ = month.bounds(self.config.calendar.tz)
        return self.config.calendar.add_work_time(start, 0)

    def choose(self, text: str, now: datetime) -> Month | str:
        """The month asked for, or why not (a key of report_refused.html)."""
        if not text.strip():
            return self.default_month(now)
        try:
            month = Month.parse(text)
        except ValueError:
            return "format"
        if month > Month.of(now.astimezone(self.config.calendar.tz).date()):
            return "future"
        return month

    # -- the monthly email, exactly once -------------------------------------------------

    def due_month(self, now: datetime) -> Month | None:
        """The last month, once the first working moment of this one has passed."""
        this = Month.of(now.astimezone(self.config.calendar.tz).date())
        return this.previous() if now >= self.first_work_moment(this) else None

    async def tick(self) -> list[Effect]:
        """Record the month's report when due, deliver what is pending; returns the
        notices for the group (already recorded with the failure)."""
        if not self.config.report_to and not self.province_to:
            return []
        now = self.clock()
        if not self._resumed:
            # Refused for good last time (a bad address, a login): the operator fixes the
            # configuration and restarts; try once more then.
            await self.repo.reports.resume_failed_report_runs(now)
            self._resumed = True
        month = self.due_month(now)
        # Each email is a run of its own, exactly once: the office's report, and the
        # province's summary (its key names it).
        keys = [str(month)] if month is not None and self.config.report_to else []
        if month is not None and self.province_to:
            keys.append(f"{PROVINCE}{month}")
        for key in keys:
            if await self.repo.reports.report_run(key) is not None:
                continue
            first = await self.repo.reports.first_opened_at()
            assert month is not None
            _, end = month.bounds(self.config.calendar.tz)
            if first is not None and first < end:  # a new office has nothing to report yet
                message_id = email.utils.make_msgid(
                    idstring=f"laporan-{key.replace(':', '-')}.{uuid.uuid4().hex[:12]}",
                    domain=domain_of(self.config.smtp.sender),
                )
                await self.repo.reports.create_report_run(key, now, message_id)
        notices: list[Effect] = []
        for run in await self.repo.reports.due_report_runs(now):
            notices += await self._deliver(run)
        return notices

    @property
    def province_to(self) -> tuple[str, ...]:
        """The province's addresses, when the office has a region code to send under."""
        return self.config.province_to if self.config.office.kode_wilayah else ()

    async def _deliver(self, run: ReportRun) -> list[Effect]:
        province = run.month.startswith(PROVINCE)
        month = Month.parse(run.month.removeprefix(PROVINCE))
        to = self.province_to if province else self.config.report_to
        try:
            if self._built is None or self._built.month != month:
                self._built = await self.build(month)
            files = self._built
            if province:
                message = self.province_email(files, run, await self.province_summary(files))
            else:
                message = self.email(files, run)
            await self.send(self.config.smtp, message)
        except Exception as caught:
            error = caught if isinstance(caught, DeliveryError) else None
            if error is None:
                log.exception("the report of %s could not be built", run.month)
                error = DeliveryError(FailureKind.BUILD, f"{type(caught).__name__}: {caught}")
            log.warning("the report of %s was not delivered (%s): %s", run.month, error.kind,
                        error.reason)  # fmt: skip
            effects: Sequence[Effect] = ()
            if error.permanent and not run.notified:
                text = self.texts.render(
                    "telegram/report_failed.html", title=month_title(self.texts, month),
                    kind=error.kind, to=to,
                )  # fmt: skip
                group = self.group_id() if self.group_id else self.config.telegram.group_id
                effects = [send_effect(group, text, f"report-failed:{run.month}")]
            await self.repo.reports.report_run_deferred(
                run.month, self.clock() + retry_delay(run.attempts + 1, self.rng), error.kind,
                error.reason, failed=error.permanent, effects=effects,
            )  # fmt: skip
            return list(effects)
        await self.repo.reports.report_run_sent(run.month, self.clock())
        log.info("the report of %s was accepted by the mail server", run.month)
        return []

    def province_email(self, files: ReportFiles, run: ReportRun, summary: bytes) -> EmailMessage:
        """To the province: the month's figures as JSON, and nothing else (no chart, no
        ticket rows: no personal data)."""
        office = self.config.office
        message = EmailMessage()
        words = {"kode": office.kode_wilayah, "title": files.title, "office": office.name}
        message["Subject"] = self.texts.render("email/province_subject.txt", **words).strip()
        message["From"] = self.config.smtp.sender
        message["To"] = ", ".join(self.province_to)
        message["Date"] = email.utils.format_datetime(run.created_at)
        message["Message-ID"] = run.message_id
        message.set_content(wrap_plain(self.texts.render("email/province.txt", **words)))
        message.add_attachment(
            summary, maintype="application", subtype="json",
            filename=f"ringkasan-{office.kode_wilayah}-{files.month}.json",
        )  # fmt: skip
        return message

    def email(self, files: ReportFiles, run: ReportRun) -> EmailMessage:
        """The same Message-ID and Date on every attempt: the run's."""
        message = EmailMessage()
        message["Subject"] = files.subject
        message["From"] = self.config.smtp.sender
        message["To"] = ", ".join(self.config.report_to)
        message["Date"] = email.utils.format_datetime(run.created_at)
        message["Message-ID"] = run.message_id
        message.set_content(files.text)
        message.add_alternative(files.html, subtype="html")
        message.add_attachment(files.png, maintype="image", subtype="png",
                               filename=files.png_name)  # fmt: skip
        message.add_attachment(files.xlsx, maintype=XLSX_TYPE[0], subtype=XLSX_TYPE[1],
                               filename=files.xlsx_name)  # fmt: skip
        return message
