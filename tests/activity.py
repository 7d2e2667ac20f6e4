"""A month of office activity, written through the repository on chosen moments, and the
figures of the monthly report computed again from the plan, independently of the code
under test: working minutes are counted minute by minute against `holidays` directly,
percentiles come from numpy, deadlines from a rule of their own.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import numpy as np

from ticketbot.domain.lifecycle import SOP_09, Action, State
from ticketbot.domain.validation import TicketForm
from ticketbot.records import BOT_ACTOR, Actor
from ticketbot.store import Stores

TZ = ZoneInfo("Asia/Jakarta")
OPEN_AT, CLOSE_AT = time(8, 0), time(16, 0)  # the test's office hours (calendar.work_hours)
SETTINGS = {"calendar__work_hours": "08:00-16:00"}
HOLIDAYS = holidays.country_holidays(
    "ID", years=range(2025, 2028), categories=("public", "government")
)
KASI_MIN, INFORM_MIN = 10, 5
KASI = Actor(111111111, "Rina Kasi")
ADB = Actor(222222222, "Budi ADB")
STAF = Actor(333333333, "Sari Staf")
LEMBAGA = ("BPJS Kesehatan", "BPJS Ketenagakerjaan", "Bank BRI", "Telkomsel", "DJP")
REASONS = {
    Action.REJECT: ("Data tidak sesuai SIAK", "Dokumen tidak lengkap"),
    Action.RETURN_TO_KASI: ("KK tidak sesuai SIAK",),
    Action.CANCEL: ("Pemohon membatalkan",),
    Action.RESYNC: ("DWH masih belum terbaca",),
}
CLOSED = {State.DONE, State.CLOSED_REJECTED, State.CANCELLED}


def is_workday(day: date) -> bool:
    return day.weekday() < 5 and day not in HOLIDAYS


def next_workday(day: date) -> date:
    day += timedelta(days=1)
    while not is_workday(day):
        day += timedelta(days=1)
    return day


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), TZ)


def work_minutes(a: datetime, b: datetime) -> int:
    """Minute by minute: how many of [a, b) fall in office hours on working days."""
    count, m = 0, a
    while m < b:
        local = m.astimezone(TZ)
        if is_workday(local.date()) and OPEN_AT <= local.time() < CLOSE_AT:
            count += 1
        m += timedelta(minutes=1)
    return count


def plus_work_minutes(a: datetime, minutes: int) -> datetime:
    m, left = a, minutes
    while left > 0:
        local = m.astimezone(TZ)
        if is_workday(local.date()) and OPEN_AT <= local.time() < CLOSE_AT:
            left -= 1
        m += timedelta(minutes=1)
    return m


def within(step: int, start: datetime, end: datetime) -> bool:
    """Minute standards in work minutes; the ADB's day: the same time on the next working
    day (every start here lies inside office hours)."""
    if step == 3:
        return work_minutes(start, end) <= KASI_MIN
    if step == 5:
        return work_minutes(start, end) <= INFORM_MIN
    local = start.astimezone(TZ)
    return end <= datetime.combine(next_workday(local.date()), local.time(), TZ)


@dataclass
class Plan:
    """What was done, as the test knows it."""

    passages: list[tuple[int, int, datetime, datetime | None]] = field(default_factory=list)
    opened: dict[int, tuple[datetime, str, str]] = field(
        default_factory=dict
    )  # id -> (at, lembaga, nik)
    reasons: list[tuple[str, str, datetime]] = field(default_factory=list)
    closed: list[datetime] = field(default_factory=list)
    state: dict[int, State] = field(default_factory=dict)  # now
    history: list[tuple[int, datetime, State]] = field(default_factory=list)

    def state_at(self, ticket_id: int, moment: datetime) -> State:
        return [s for t, when, s in self.history if t == ticket_id and when < moment][-1]


def nik_of(n: int) -> str:
    return f"127301{(n % 28) + 1:02d}0590{n:04d}"


class Office:
    """Writes a ticket's life through the repository, as the office code would store it."""

    def __init__(self, repo: Stores) -> None:
        self.repo = repo
        self.plan = Plan()
        self.serial = 0

    async def open(self, when: datetime, lembaga: str) -> int:
        self.serial += 1
        nik = nik_of(self.serial)
        form = TicketForm(nik, f"1273010101{self.serial:06d}", lembaga, lembaga.lower(),
                          "+6281234567890", "Warga Uji", "uji")  # fmt: skip
        ticket, created = await self.repo.tickets.open_ticket(form, STAF, -100, when)
        assert created
        self.plan.opened[ticket.id] = (when, lembaga, nik)
        self.plan.state[ticket.id] = State.NEW
        self.plan.history.append((ticket.id, when, State.NEW))
        self._start(ticket.id, 3, when)
        return ticket.id

    def _start(self, ticket_id: int, step: int, when: datetime) -> None:
        self.plan.passages.append((ticket_id, step, when, None))

    def _end(self, ticket_id: int, when: datetime) -> None:
        for i, (t, step, start, end) in enumerate(self.plan.passages):
            if t == ticket_id and end is None:
                self.plan.passages[i] = (t, step, start, when)

    async def do(self, ticket_id: int, action: Action, actor: Actor, when: datetime,
                 reason: str | None = None) -> None:  # fmt: skip
        source = self.plan.state[ticket_id]
        transition = SOP_09.transition_for(action, source)
        assert transition is not None, (action, source)
        outcome = await self.repo.tickets.apply(ticket_id, transition, actor, when, reason)
        assert outcome.applied
        target = transition.target
        self.plan.state[ticket_id] = target
        self.plan.history.append((ticket_id, when, target))
        if reason:
            self.plan.reasons.append((action.value, reason, when))
        if target in CLOSED:
            self.plan.closed.append(when)
        if target == State.SYNCED:
            return  # the ADB's working day runs on until the recap leaves
        if action == Action.CANCEL and actor == STAF:
            # Withdrawn by its opener before the Kasi acted: step 3 never handled it.
            self.plan.passages = [p for p in self.plan.passages
                                  if not (p[0] == ticket_id and p[3] is None)]  # fmt: skip
            return
        self._end(ticket_id, when)
        step = {State.NEW: 3, State.VERIFIED: 4, State.READY_TO_INFORM: 5, State.REJECTED: 5}
        if target in step:
            self._start(ticket_id, step[target], when)


async def month_of_activity(repo: Stores, seed: int = 7) -> Office:
    """May 2026 (holidays 1, 14, 15, 27, 28 May), with tickets opened late in April and
    some still open at the end: fast and slow steps, rejections, a return to the Kasi, a
    cancellation, an "Ulang"."""
    rng = random.Random(seed)
    office = Office(repo)
    day = date(2026, 4, 27)
    while day <= date(2026, 5, 29):
        if is_workday(day):
            for _ in range(rng.randint(1, 3)):
                await life(office, rng, at(day, rng.randint(8, 12), rng.randint(0, 59)),
                           last=day >= date(2026, 5, 28))  # fmt: skip
        day += timedelta(days=1)
    return office


async def life(office: Office, rng: random.Random, opened: datetime, *, last: bool) -> None:
    t = await office.open(opened, rng.choice(LEMBAGA))
    kind = rng.choice(["fast", "fast", "slow_kasi", "slow_adb", "reject", "return", "resync",
                       "cancel", "slow_inform"])  # fmt: skip
    if last and rng.random() < 0.6:
        return  # still waiting on the Kasi at the end of the month
    if kind == "cancel":
        await office.do(t, Action.CANCEL, STAF, plus_work_minutes(opened, 2))
        return
    if kind == "reject":
        when = plus_work_minutes(opened, rng.choice([4, 12]))
        await office.do(t, Action.REJECT, KASI, when, rng.choice(REASONS[Action.REJECT]))
        await office.do(t, Action.INFORM, STAF, plus_work_minutes(when, rng.choice([3, 9])))
        return
    verified = plus_work_minutes(opened, 25 if kind == "slow_kasi" else rng.randint(2, 9))
    await office.do(t, Action.VERIFY, KASI, verified)
    if kind == "return":
        back = plus_work_minutes(verified, 60)
        await office.do(t, Action.RETURN_TO_KASI, ADB, back, REASONS[Action.RETURN_TO_KASI][0])
        verified = plus_work_minutes(back, 5)
        await office.do(t, Action.VERIFY, KASI, verified)
    if last:
        return  # waiting on the ADB
    local = verified.astimezone(TZ)
    if kind == "slow_adb":
        day = next_workday(next_workday(next_workday(local.date())))
        synced = at(day, 9, 30)
    else:
        synced = plus_work_minutes(verified, 90)
    await office.do(t, Action.SYNC_AT_KONSOLIDASI, ADB, synced)
    sent = (
        at(synced.astimezone(TZ).date(), 15, 30)
        if synced.astimezone(TZ).hour < 15
        else at(next_workday(synced.astimezone(TZ).date()), 15, 30)
    )
    await office.do(t, Action.SEND_TO_DWH, BOT_ACTOR, sent)
    confirmed = at(next_workday(sent.astimezone(TZ).date()), 10, 0)
    if kind == "resync":
        await office.do(t, Action.RESYNC, ADB, confirmed, REASONS[Action.RESYNC][0])
        again = plus_work_minutes(confirmed, 30)
        await office.do(t, Action.SYNC_AT_KONSOLIDASI, ADB, again)
        sent = at(again.astimezone(TZ).date(), 15, 30)
        await office.do(t, Action.SEND_TO_DWH, BOT_ACTOR, sent)
        confirmed = at(next_workday(sent.astimezone(TZ).date()), 10, 0)
    await office.do(t, Action.CONFIRM_DWH, ADB, confirmed)
    await office.do(
        t, Action.INFORM, STAF, plus_work_minutes(confirmed, 12 if kind == "slow_inform" else 3)
    )


@dataclass(frozen=True)
class Expected:
    steps: dict[int, tuple[int, float | None, float | None, int]]  # handled, median, p90, within
    opened: int
    closed: int
    lembaga: Counter[str]
    reasons: Counter[tuple[str, str]]
    open_at_end: dict[int, tuple[State, int, bool]]  # id -> (state, age days, overdue)


def expected_figures(office: Office, start: datetime, end: datetime) -> Expected:
    plan = office.plan
    steps = {}
    for step in (3, 4, 5):
        ended = [(s, e) for t, st, s, e in plan.passages
                 if st == step and e is not None and start <= e < end]  # fmt: skip
        minutes = [work_minutes(s, e) for s, e in ended]
        steps[step] = (
            len(ended),
            float(np.median(minutes)) if minutes else None,
            float(np.percentile(minutes, 90)) if minutes else None,
            sum(within(step, s, e) for s, e in ended),
        )
    open_at_end = {}
    for t, (opened_at, _, _) in plan.opened.items():
        if opened_at >= end or (state := plan.state_at(t, end)) in CLOSED:
            continue
        running = [(st, s) for tt, st, s, e in plan.passages
                   if tt == t and s < end and (e is None or e >= end)]  # fmt: skip
        overdue = bool(running) and not within(running[0][0], running[0][1], end)
        open_at_end[t] = (state, (end - opened_at).days, overdue)
    return Expected(
        steps=steps,
        opened=sum(1 for when, _, _ in plan.opened.values() if start <= when < end),
        closed=sum(1 for when in plan.closed if start <= when < end),
        lembaga=Counter(lem for when, lem, _ in plan.opened.values() if start <= when < end),
        reasons=Counter((a, r) for a, r, when in plan.reasons if start <= when < end),
        open_at_end=open_at_end,
    )
