"""Working calendar and SLA deadlines (SPEC §2). Pure code.

Every standard is counted in *work time*: minutes inside work hours on working days.
A minute standard (Kasi 10 min, inform 5 min) adds that many work minutes; a day standard
(ADB 1 working day) adds that many whole working days' worth of work minutes, so a ticket
verified Tuesday 10:00 is due Wednesday 10:00 and one verified Friday 15:00 is due Monday
15:00. Outside work hours the clock stands still.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from ticketbot.domain.lifecycle import State

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@cache
def _national_holidays(country: str, year: int) -> dict[date, str]:
    found = holidays_lib.country_holidays(
        country, years=year, categories=("public", "government"), language="id"
    )
    return dict(found.items())


@dataclass(frozen=True)
class WorkCalendar:
    tz: ZoneInfo
    workdays: frozenset[int] = frozenset(range(5))  # Monday = 0
    start: time = time(7, 30)
    end: time = time(16, 0)
    country: str = "ID"  # "" turns national holidays off
    extra_holidays: frozenset[date] = field(default_factory=frozenset)

    def holiday_name(self, day: date) -> str | None:
        if day in self.extra_holidays:
            return "Libur kantor"
        if self.country:
            return _national_holidays(self.country, day.year).get(day)
        return None

    def is_workday(self, day: date) -> bool:
        return day.weekday() in self.workdays and self.holiday_name(day) is None

    @property
    def day_minutes(self) -> float:
        return _minutes(self.end) - _minutes(self.start)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def _window(self, day: date) -> tuple[datetime, datetime]:
        return (
            datetime.combine(day, self.start, self.tz),
            datetime.combine(day, self.end, self.tz),
        )

    def next_workday(self, day: date) -> date:
        """The first working day strictly after `day` (a year without one is a config error)."""
        for offset in range(1, 366):
            candidate = day + timedelta(days=offset)
            if self.is_workday(candidate):
                return candidate
        raise ValueError("no working day within a year: check [calendar]")

    def add_work_time(self, start: datetime, minutes: float) -> datetime:
        """The moment when `minutes` of work time have passed after `start`."""
        moment = self.local(start)
        remaining = timedelta(minutes=minutes)
        day = moment.date()
        if not self.is_workday(day):
            day = self.next_workday(day)
            moment = self._window(day)[0]
        while True:
            open_, close = self._window(day)
            moment = max(moment, open_)
            if moment < close:
                available = close - moment
                if remaining <= available:
                    return moment + remaining
                remaining -= available
            day = self.next_workday(day)
            moment = self._window(day)[0]

    def work_minutes_between(self, a: datetime, b: datetime) -> float:
        """Work minutes from a to b (negative when b is before a)."""
        if b < a:
            return -self.work_minutes_between(b, a)
        a, b = self.local(a), self.local(b)
        total = timedelta()
        day = a.date()
        while day <= b.date():
            if self.is_workday(day):
                open_, close = self._window(day)
                lo, hi = max(open_, a), min(close, b)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total.total_seconds() / 60

    def next_work_moment(self, day: date, at: time) -> datetime:
        """`at` on `day` if that is a working day, else on the next working day."""
        if not self.is_workday(day):
            day = self.next_workday(day)
        return datetime.combine(day, at, self.tz)


def _minutes(t: time) -> float:
    return t.hour * 60 + t.minute + t.second / 60


@dataclass(frozen=True)
class Sla:
    kasi_minutes: float = 10
    adb_workdays: float = 1
    inform_minutes: float = 5


def deadline(
    state: State, since: datetime | None, calendar: WorkCalendar, sla: Sla
) -> datetime | None:
    """Deadline of the step the ticket is in, its clock started at `since`.

    None when no clock runs: closed, or waiting on the central DWH admin, who is outside
    the office. The ADB's day runs from verification through `synced` until the recap left.
    """
    if since is None:
        return None
    if state == State.NEW:
        return calendar.add_work_time(since, sla.kasi_minutes)
    if state in (State.VERIFIED, State.SYNCED):
        return calendar.add_work_time(since, sla.adb_workdays * calendar.day_minutes)
    if state in (State.READY_TO_INFORM, State.REJECTED):
        return calendar.add_work_time(since, sla.inform_minutes)
    return None


def parse_workdays(names: Iterable[str]) -> frozenset[int]:
    return frozenset(WEEKDAYS.index(n) for n in names)
