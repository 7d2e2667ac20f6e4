"""The monthly report (SPEC §4b), computed from the event log. Pure code.

A ticket's way through the SOP is a sequence of *passages*: a step's clock starts when the
ticket enters a state whose clock rule is START (the table of steps says which), runs on
through KEEP states, and ends when the ticket enters the next START or STOP state. The
report counts the passages that ended in the month, per SOP step: how many, the median and
90th percentile of their working time, and the share that ended by their deadline (the same
deadline the card shows). After "Kembalikan" or "Ulang" a step is passed again: each passage
counts.

Working time is counted in work minutes (work hours on working days, holidays and cuti
bersama excluded) for every step; the day-long standard's deadline is whole working days.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from ticketbot.domain.calendar import Sla, WorkCalendar, deadline
from ticketbot.domain.lifecycle import Clock, Procedure, Standard


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """'2026-11' -> Month(2026, 11); ValueError for anything else."""
        year, sep, month = text.strip().partition("-")
        if not (sep and len(year) == 4 and year.isdigit() and len(month) == 2 and month.isdigit()):
            raise ValueError(f"not a month in the form YYYY-MM: {text!r}")
        value = cls(int(year), int(month))
        if not 1 <= value.month <= 12 or value.year < 2000:
            raise ValueError(f"not a month in the form YYYY-MM: {text!r}")
        return value

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """[start, end) of the month in the office's time zone."""
        start = datetime.combine(self.first_day, datetime.min.time(), tz)
        return start, datetime.combine(self.next().first_day, datetime.min.time(), tz)


@dataclass(frozen=True, slots=True)
class Change:
    """One event of a ticket, as the report needs it."""

    at: datetime
    action: str
    from_state: str | None
    to_state: str | None
    detail: str | None = None
    actor_id: int | None = None


@dataclass(frozen=True, slots=True)
class TicketHistory:
    ticket_id: int
    nik_masked: str  # never the full NIK: the report has no use for it
    lembaga: str
    opened_at: datetime
    changes: tuple[Change, ...]  # in event order
    opened_by: int | None = None
    sumber: str = "loket"  # how the request came


@dataclass(frozen=True, slots=True)
class Passage:
    ticket_id: int
    sop_step: int
    state: str  # the state whose entry started the clock
    started: datetime
    ended: datetime | None  # None: still running at the end of the period
    work_minutes: float | None
    within: bool | None  # ended by its deadline (None while running)


@dataclass(frozen=True)
class StepFigures:
    sop_step: int
    standard: Standard | None
    handled: int
    median_minutes: float | None
    p90_minutes: float | None
    within: int  # passages that ended by their deadline

    @property
    def within_share(self) -> float | None:
        return self.within / self.handled if self.handled else None


@dataclass(frozen=True, slots=True)
class OpenTicket:
    ticket_id: int
    nik_masked: str
    lembaga: str
    state: str
    opened_at: datetime
    age_days: int  # calendar days from opening to the end of the period
    overdue: bool  # its current step is past its deadline at the end of the period


@dataclass(frozen=True, slots=True)
class TicketLine:
    """One row of the report's ticket sheet."""

    ticket_id: int
    nik_masked: str
    lembaga: str
    opened_at: datetime
    state_at_end: str
    minutes: dict[int, float]  # per SOP step: working minutes of passages ended in the month
    late_steps: tuple[int, ...]  # steps with a passage that ended after its deadline
    reasons: tuple[str, ...]  # reasons recorded in the month (reject, return, cancel, resync)


@dataclass(frozen=True)
class WeekVolume:
    monday: date
    opened: int
    closed: int
    first: date  # the week's first day in the month: how the chart and the XLSX name it


@dataclass(frozen=True)
class MonthReport:
    month: Month
    start: datetime
    end: datetime  # the end of the month, or "now" for the month still running
    complete: bool  # the month is over
    opened: int
    closed: int
    steps: tuple[StepFigures, ...]
    lembaga: tuple[tuple[str, int], ...]  # tickets opened in the month, most first
    reasons: tuple[tuple[str, str, int], ...]  # (action, reason, count), most first
    open_at_end: tuple[OpenTicket, ...]
    weeks: tuple[WeekVolume, ...]
    tickets: tuple[TicketLine, ...] = field(default=())
    channels: tuple[tuple[str, int], ...] = ()  # tickets opened in the month by `Sumber`
    actions: tuple[tuple[str, int], ...] = ()  # transitions made in the month, by action
    entered: tuple[tuple[str, int], ...] = ()  # transitions made in the month, by new state

    @property
    def resyncs(self) -> tuple[int, int]:
        """("Ulang" made, tickets sent to the DWH) in the month: how often the DWH could
        not read a ticket it was sent."""
        actions = dict(self.actions)
        return actions.get("resync", 0), actions.get("send_to_dwh", 0)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile, linear between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def passages(
    history: TicketHistory, procedure: Procedure, calendar: WorkCalendar, sla: Sla,
    until: datetime,
) -> list[Passage]:  # fmt: skip
    """Every passage of the ticket through a timed step, up to `until`."""
    found: list[Passage] = []
    running: tuple[str, datetime] | None = None

    def close(at: datetime | None, by: int | None = None) -> None:
        if running is None:
            return
        state, started = running
        step = procedure.step(state)
        if step.standard is None or step.sop_step is None:
            return
        if at is not None and by is not None and by == history.opened_by and not step.turn_opener:
            return  # withdrawn by its opener before the step's people acted: not handled
        due = deadline(step.standard, started, calendar, sla)
        if at is None:
            found.append(Passage(history.ticket_id, step.sop_step, state, started, None, None,
                                 None))  # fmt: skip
            return
        found.append(Passage(
            history.ticket_id, step.sop_step, state, started, at,
            calendar.work_minutes_between(started, at), due is None or at <= due,
        ))  # fmt: skip

    for change in history.changes:
        if change.to_state is None or change.at >= until:
            continue
        rule = procedure.step(change.to_state).clock
        if rule == Clock.KEEP:
            continue
        close(change.at, change.actor_id)
        running = (change.to_state, change.at) if rule == Clock.START else None
    close(None)
    return found


def state_at(history: TicketHistory, until: datetime) -> str | None:
    state = None
    for change in history.changes:
        if change.to_state is not None and change.at < until:
            state = change.to_state
    return state


def build_report(
    month: Month,
    histories: Iterable[TicketHistory],
    procedure: Procedure,
    calendar: WorkCalendar,
    sla: Sla,
    now: datetime,
) -> MonthReport:
    """The figures of `month` (up to `now` while it runs) from the tickets' histories.
    `histories` may hold any ticket; only what falls in the month counts."""
    start, month_end = month.bounds(calendar.tz)
    end = min(month_end, now)
    # Stored moments are UTC: compared with UTC bounds, no time zone is consulted.
    utc_start, utc_end = start.astimezone(UTC), end.astimezone(UTC)

    def in_month(moment: datetime) -> bool:
        return utc_start <= moment < utc_end

    by_step: dict[int, list[Passage]] = {}
    lembaga: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    entered: Counter[str] = Counter()
    reasons: Counter[tuple[str, str]] = Counter()
    weeks: dict[date, list[int]] = {}
    monday = start.date() - timedelta(days=start.weekday())
    last_day = (end - timedelta(microseconds=1)).astimezone(calendar.tz).date()
    while monday <= last_day:  # a running month shows no weeks still to come
        weeks[monday] = [0, 0]
        monday += timedelta(days=7)
    opened = closed = 0
    open_at_end: list[OpenTicket] = []
    lines: list[TicketLine] = []

    def week_of(moment: datetime) -> list[int]:
        day = moment.astimezone(calendar.tz).date()
        return weeks[day - timedelta(days=day.weekday())]

    for history in histories:
        if history.opened_at >= utc_end:
            continue
        mine = passages(history, procedure, calendar, sla, utc_end)
        ended = [p for p in mine if p.ended is not None and in_month(p.ended)]
        for p in ended:
            by_step.setdefault(p.sop_step, []).append(p)
        touched = bool(ended)
        noted: list[str] = []
        if in_month(history.opened_at):
            opened += 1
            lembaga[history.lembaga] += 1
            channels[history.sumber] += 1
            week_of(history.opened_at)[0] += 1
            touched = True
        for change in history.changes:
            if change.to_state is None or not in_month(change.at):
                continue
            touched = True
            actions[change.action] += 1
            entered[change.to_state] += 1
            if change.to_state in procedure.closed_states:
                closed += 1
                week_of(change.at)[1] += 1
            # The exception paths, counted with their reasons beside the rejections.
            if change.action in procedure.reasoned_actions and change.detail:
                reasons[(change.action, change.detail)] += 1
                noted.append(change.detail)
        state = state_at(history, end)
        if state is not None and procedure.step(state).is_open:
            touched = True
            running = next((p for p in mine if p.ended is None), None)
            due = None
            if running is not None:
                standard = procedure.step(running.state).standard
                due = deadline(standard, running.started, calendar, sla)
            open_at_end.append(OpenTicket(
                history.ticket_id, history.nik_masked, history.lembaga, state,
                history.opened_at, (end - history.opened_at).days,
                due is not None and due < end,
            ))  # fmt: skip
        if touched and state is not None:
            minutes: dict[int, float] = {}
            for p in ended:
                minutes[p.sop_step] = minutes.get(p.sop_step, 0.0) + (p.work_minutes or 0.0)
            lines.append(TicketLine(
                history.ticket_id, history.nik_masked, history.lembaga, history.opened_at,
                state, minutes, tuple(sorted({p.sop_step for p in ended if not p.within})),
                tuple(noted),
            ))  # fmt: skip

    steps = []
    for sop_step, standard in procedure.timed_steps:
        found = by_step.get(sop_step, [])
        times = [p.work_minutes for p in found if p.work_minutes is not None]
        steps.append(StepFigures(
            sop_step, standard, len(found),
            statistics.median(times) if times else None,
            percentile(times, 90) if times else None,
            sum(1 for p in found if p.within),
        ))  # fmt: skip
    return MonthReport(
        month=month, start=start, end=end, complete=now >= month_end,
        opened=opened, closed=closed, steps=tuple(steps),
        lembaga=tuple(sorted(lembaga.items(), key=lambda kv: (-kv[1], kv[0]))),
        channels=tuple(sorted(channels.items(), key=lambda kv: (-kv[1], kv[0]))),
        actions=tuple(sorted(actions.items())),
        entered=tuple(sorted(entered.items())),
        reasons=tuple(
            (action, reason, n)
            for (action, reason), n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        ),
        open_at_end=tuple(sorted(open_at_end, key=lambda t: t.opened_at)),
        weeks=tuple(
            WeekVolume(m, o, c, max(m, month.first_day)) for m, (o, c) in sorted(weeks.items())
        ),
        tickets=tuple(sorted(lines, key=lambda t: t.ticket_id)),
    )  # fmt: skip
