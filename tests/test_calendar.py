"""Working calendar and SLA deadlines (pure)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticketbot.domain.calendar import Sla, SpecialPeriod, WorkCalendar, deadline
from ticketbot.domain.lifecycle import SOP_09, State

TZ = ZoneInfo("Asia/Jakarta")
CAL = WorkCalendar(TZ)
SLA = Sla({"kasi_minutes": 10, "adb_workdays": 1, "inform_minutes": 5})


def due(state: str, since: datetime, cal: WorkCalendar, sla: Sla) -> datetime | None:
    """The deadline of a ticket entering `state` at `since` (SOP 09's table)."""
    return deadline(SOP_09.step(state).standard, since, cal, sla)


def at(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


def test_minutes_inside_work_hours() -> None:
    assert due(State.NEW, at(2026, 11, 24, 9), CAL, SLA) == at(2026, 11, 24, 9, 10)


def test_minutes_across_the_end_of_work_hours() -> None:
    # 15:55 + 10 work minutes: 5 today, 5 from 07:30 on the next working day.
    assert due(State.NEW, at(2026, 11, 24, 15, 55), CAL, SLA) == at(2026, 11, 25, 7, 35)


def test_before_work_hours_starts_at_opening() -> None:
    assert due(State.NEW, at(2026, 11, 24, 6, 0), CAL, SLA) == at(2026, 11, 24, 7, 40)


def test_weekend_is_skipped() -> None:
    assert due(State.NEW, at(2026, 11, 28, 10), CAL, SLA) == at(2026, 11, 30, 7, 40)
    # Friday 15:00 + 1 working day = Monday 15:00.
    assert due(State.VERIFIED, at(2026, 11, 27, 15), CAL, SLA) == at(2026, 11, 30, 15)


def test_national_holiday_and_cuti_bersama() -> None:
    assert CAL.holiday_name(date(2026, 12, 25)) is not None  # Natal
    assert CAL.holiday_name(date(2026, 12, 24)) is not None  # cuti bersama Natal
    assert not CAL.is_workday(date(2026, 12, 24))
    # Wednesday 23 Dec 10:00 + 1 working day: 24 (cuti bersama), 25 (Natal), weekend → 28.
    assert due(State.VERIFIED, at(2026, 12, 23, 10), CAL, SLA) == at(2026, 12, 28, 10)
    assert due(State.NEW, at(2026, 12, 24, 9), CAL, SLA) == at(2026, 12, 28, 7, 40)


def test_holidays_off_and_extra_office_closures() -> None:
    no_holidays = WorkCalendar(TZ, country="")
    assert no_holidays.is_workday(date(2026, 12, 24))
    closed = WorkCalendar(TZ, extra_holidays=frozenset({date(2026, 11, 25)}))
    assert due(State.NEW, at(2026, 11, 24, 15, 55), closed, SLA) == at(2026, 11, 26, 7, 35)


def test_fractional_minutes() -> None:
    sla = Sla({"kasi_minutes": 0.5})
    assert due(State.NEW, at(2026, 11, 24, 9), CAL, sla) == datetime(
        2026, 11, 24, 9, 0, 30, tzinfo=TZ
    )


def test_dwh_pause_and_closed_states_have_no_clock() -> None:
    for state in (State.SENT_TO_DWH, State.DONE, State.CLOSED_REJECTED, State.CANCELLED):
        assert due(state, at(2026, 11, 24, 9), CAL, SLA) is None
    # After the DWH confirms, the desk's 5 minutes count from that moment.
    assert due(State.READY_TO_INFORM, at(2026, 11, 26, 10), CAL, SLA) == at(2026, 11, 26, 10, 5)


def test_six_day_week() -> None:
    saturday_office = WorkCalendar(TZ, workdays=frozenset(range(6)), start=time(8), end=time(12))
    assert due(State.NEW, at(2026, 11, 28, 11, 55), saturday_office, SLA) == at(2026, 11, 30, 8, 5)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)),
    st.floats(min_value=0, max_value=5000, allow_nan=False),
)
def test_work_time_added_is_work_time_between(start: datetime, minutes: float) -> None:
    begin = start.replace(tzinfo=TZ)
    end = CAL.add_work_time(begin, minutes)
    assert end >= begin
    assert CAL.work_minutes_between(begin, end) == pytest.approx(minutes, abs=1e-6)
    local = end.astimezone(TZ)
    assert CAL.is_workday(local.date())
    assert time(7, 30) <= local.time() <= time(16, 0)


# -- Ramadan: its own hours, its own Friday, and "the same time of day" ------------------

# Ramadan 1448 H as configured (no national holidays, to keep the arithmetic by hand):
# 08:00-15:00, Fridays 08:00-15:30; the usual days 07:30-16:00.
RAMADAN = SpecialPeriod(date(2027, 2, 8), date(2027, 3, 9), (time(8), time(15)),
                        ((4, (time(8), time(15, 30))),))  # fmt: skip
FASTING = WorkCalendar(TZ, country="", special=(RAMADAN,))


def test_a_special_period_gives_a_weekday_its_own_hours() -> None:
    assert FASTING.hours(date(2027, 3, 4)) == (time(8), time(15))  # Thursday
    assert FASTING.hours(date(2027, 3, 5)) == (time(8), time(15, 30))  # Friday
    assert FASTING.hours(date(2027, 3, 10)) == (time(7, 30), time(16))  # after Ramadan
    assert FASTING.hours(date(2027, 3, 6)) is None  # Saturday stays closed


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        # Inside Ramadan: Friday 10:00 + 1 working day = Monday 10:00.
        (at(2027, 3, 5, 10), at(2027, 3, 8, 10)),
        # Across the end of Ramadan (08:00 opening to 07:30): Tuesday 9 Mar 10:00 is
        # Wednesday 10:00, not 09:30 (the same distance from opening).
        (at(2027, 3, 9, 10), at(2027, 3, 10, 10)),
        # Across its start (07:30 to 08:00): Friday 5 Feb 09:00 is Monday 8 Feb 09:00.
        (at(2027, 2, 5, 9), at(2027, 2, 8, 9)),
        # Later than the next day closes: its closing (Friday 15:45 -> Monday 15:00).
        (at(2027, 2, 5, 15, 45), at(2027, 2, 8, 15)),
        # Thursday 14:00 -> Friday 14:00. At Thursday's closing the clock starts on Friday
        # morning: the whole Friday, to its own closing 15:30. Friday 15:20 -> Monday 15:00
        # (Monday closes at 15:00).
        (at(2027, 3, 4, 14), at(2027, 3, 5, 14)),
        (at(2027, 3, 4, 15), at(2027, 3, 5, 15, 30)),
        (at(2027, 3, 5, 15, 20), at(2027, 3, 8, 15)),
        # Before opening: the whole working day, to its close.
        (at(2027, 2, 8, 7, 45), at(2027, 2, 8, 15)),
    ],
)
def test_one_working_day_is_the_same_time_of_day(since: datetime, expected: datetime) -> None:
    assert FASTING.add_workdays(since, 1) == expected


def test_a_ramadan_coming_without_its_hours_is_named() -> None:
    plain = WorkCalendar(TZ)
    # Ramadan 1448 H begins about 8 Feb 2027 (30 days before Idul Fitri, 10 Mar 2027).
    assert plain.ramadan_uncovered(date(2026, 11, 24)) is None  # 76 days away
    assert plain.ramadan_uncovered(date(2026, 12, 15)) == (date(2027, 2, 8), date(2027, 3, 9))
    assert plain.ramadan_uncovered(date(2027, 3, 1)) == (date(2027, 2, 8), date(2027, 3, 9))
    covered = WorkCalendar(TZ, special=(RAMADAN,))
    assert covered.ramadan_uncovered(date(2026, 12, 15)) is None
    assert WorkCalendar(TZ, country="").ramadan_uncovered(date(2026, 12, 15)) is None
