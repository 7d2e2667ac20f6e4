"""Working calendar and SLA deadlines (SPEC §2). Pure code.

Every standard is counted in *work time*: minutes inside work hours on working days.
A minute standard (Kasi 10 min, inform 5 min) adds that many work minutes; a day standard
(ADB 1 working day) lands at the same time of day that many working days later, so a ticket
verified Tuesday 10:00 is due Wednesday 10:00 and one verified Friday 15:00 is due Monday
15:00. Outside work hours the clock stands still.

Hours may differ by weekday (Friday 07:30-16:30, Perpres 21/2023) and for special periods
(Ramadan hours, or a closure); `open_on` names national days off on which the office serves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from ticketbot.domain.lifecycle import Standard, Unit

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@cache
def _national_holidays(country: str, year: int) -> dict[date, str]:
    found = holidays_lib.country_holidays(
        country, years=year, categories=("public", "government"), language="id"
    )
    return dict(found.items())


@cache
def _cuti_bersama(country: str, year: int) -> int:
    return len(holidays_lib.country_holidays(country, years=year, categories=("government",)))


@cache
def ramadan(country: str, year: int) -> tuple[date, date] | None:
    """About when Ramadan falls in `year`: the 30 days before Idul Fitri as the holidays
    package dates it (the decision may move it a day)."""
    found = holidays_lib.country_holidays(
        country, years=year, categories=("public",), language="en_US"
    )
    eid = min(
        (d for d, name in found.items()
         if name.startswith("Eid al-Fitr") and "Second" not in name and "Joint" not in name),
        default=None,
    )  # fmt: skip
    return None if eid is None else (eid - timedelta(days=30), eid - timedelta(days=1))


Hours = tuple[time, time]


@dataclass(frozen=True)
class SpecialPeriod:
    """From `first` to `last` (inclusive) the office keeps `hours`, or is closed (None);
    a weekday may have its own hours in the period (Ramadan Fridays, Perpres 21/2023)."""

    first: date
    last: date
    hours: Hours | None
    day_hours: tuple[tuple[int, Hours], ...] = ()  # weekday (Monday = 0) -> hours


@dataclass(frozen=True)
class WorkCalendar:
    tz: ZoneInfo
    workdays: frozenset[int] = frozenset(range(5))  # Monday = 0
    start: time = time(7, 30)
    end: time = time(16, 0)
    country: str = "ID"  # "" turns national holidays off
    extra_holidays: frozenset[date] = field(default_factory=frozenset)
    day_hours: tuple[tuple[int, Hours], ...] = ()  # weekday -> hours, where they differ
    special: tuple[SpecialPeriod, ...] = ()
    open_on: frozenset[date] = field(default_factory=frozenset)
    # hours() per day, remembered: every deadline and every working-time sum asks it (a few
    # hundred distinct days a year).
    _hours: dict[date, Hours | None] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def holiday_name(self, day: date) -> str | None:
        if day in self.extra_holidays:
            return "Libur kantor"
        if self.country:
            return _national_holidays(self.country, day.year).get(day)
        return None

    def has_cuti_bersama(self, year: int) -> bool:
        """Whether the holidays package knows that year's cuti bersama (a decree each year)."""
        return not self.country or _cuti_bersama(self.country, year) > 0

    def ramadan_uncovered(self, today: date, ahead: int = 60) -> tuple[date, date] | None:
        """A Ramadan starting within `ahead` days (or running) that no special period
        covers: its shorter hours would be missed."""
        if not self.country:
            return None
        for year in (today.year, today.year + 1):
            period = ramadan(self.country, year)
            if period is None or period[1] < today or period[0] > today + timedelta(ahead):
                continue
            if not any(p.first <= period[1] and p.last >= period[0] for p in self.special):
                return period
        return None

    def hours(self, day: date) -> Hours | None:
        """The office's hours on `day`; None when it does not serve."""
        try:
            return self._hours[day]
        except KeyError:
            found = self._hours[day] = self._find_hours(day)
            return found

    def _find_hours(self, day: date) -> Hours | None:
        if day in self.extra_holidays:
            return None
        period = next((p for p in self.special if p.first <= day <= p.last), None)
        if period is not None and period.hours is None:
            return None
        regular = dict(self.day_hours).get(day.weekday(), (self.start, self.end))
        if day not in self.open_on and (
            day.weekday() not in self.workdays or self.holiday_name(day) is not None
        ):
            return None
        if period is None or period.hours is None:
            return regular
        return dict(period.day_hours).get(day.weekday(), period.hours)

    def is_workday(self, day: date) -> bool:
        return self.hours(day) is not None

    @property
    def day_minutes(self) -> float:
        """Length of a usual working day (the default hours)."""
        return _minutes(self.end) - _minutes(self.start)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def _window(self, day: date) -> tuple[datetime, datetime]:
        start, end = self.hours(day) or (self.start, self.start)
        return datetime.combine(day, start, self.tz), datetime.combine(day, end, self.tz)

    def add_workdays(self, start: datetime, days: float) -> datetime:
        """The same time of day `days` working days later (clamped to that day's closing;
        a fraction of a day counts in minutes of the day it ends on)."""
        whole = int(days)
        moment = self.local(start)
        day = moment.date()
        open_, close = self._window(day)
        if not self.is_workday(day) or moment >= close:
            day = self.next_workday(day)
            moment = self._window(day)[0]
        moment = max(moment, self._window(day)[0])
        elapsed = moment - self._window(day)[0]
        if whole and not elapsed:
            # Starting at opening: due at the close of the last day, not the next opening.
            for _ in range(whole - 1):
                day = self.next_workday(day)
            target = self._window(day)[1]
        else:
            for _ in range(whole):
                day = self.next_workday(day)
            open_, close = self._window(day)
            # The same time of day (SPEC §2), not the same distance from opening: days
            # with other hours (Ramadan, a Friday) open at other times.
            same = datetime.combine(day, moment.time(), self.tz)
            target = min(max(same, open_), close)
        fraction = days - whole
        if fraction > 0:
            open_, close = self._window(target.date())
            target = self.add_work_time(target, fraction * (close - open_).total_seconds() / 60)
        return target

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
    """The office's time standards, by the procedure's setting names (`[sla]`)."""

    amounts: Mapping[str, float] = field(default_factory=dict)

    def amount(self, standard: Standard) -> float:
        return self.amounts.get(standard.setting, standard.default)

    def __repr__(self) -> str:  # what the stored deadlines were computed with
        return f"Sla({sorted(self.amounts.items())!r})"


def deadline(
    standard: Standard | None, since: datetime | None, calendar: WorkCalendar, sla: Sla
) -> datetime | None:
    """Deadline of a step under `standard` whose clock started at `since` (the table of
    steps says which standard applies; None when no clock runs)."""
    if since is None or standard is None:
        return None
    amount = sla.amount(standard)
    if standard.unit == Unit.WORKDAYS:
        return calendar.add_workdays(since, amount)
    return calendar.add_work_time(since, amount)


def parse_workdays(names: Iterable[str]) -> frozenset[int]:
    return frozenset(WEEKDAYS.index(n) for n in names)
