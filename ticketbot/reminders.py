"""Reminders, escalation, the morning summary and chasing unconfirmed recaps (SPEC §3).

Decided here, worded by views, delivered by the outbox: a round's messages and the record of
what was reminded commit in one transaction, so a restart neither repeats nor skips one.
- An overdue step reminds the people whose turn it is, in work hours only, and again every
  `reminders.repeat_minutes` working minutes while it stays overdue; one message per
  audience per round lists all its overdue tickets.
- From the `reminders.escalate_after`-th reminder on, the Kasi (for ADB and desk steps) and
  the `kadis` role are mentioned too.
- A recap batch the ADB has not confirmed after `recap.chase_workdays` working days is named
  in the ADB's reminders, with its age.
- At `reminders.morning_summary` on working days: open tickets per step, overdue first, and
  unconfirmed batches with their age.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ticketbot.clock import Clock
from ticketbot.config import Config
from ticketbot.domain.lifecycle import State
from ticketbot.office import Office, Overdue, Person, Reminder, Unconfirmed
from ticketbot.records import Effect, send_effect
from ticketbot.store import Stores
from ticketbot.views import Views

# A summary later than this after its time is a catch-up (the bot was down at the time).
MORNING_CATCH_UP = timedelta(minutes=15)


@dataclass
class ReminderDesk:
    config: Config
    repo: Stores
    office: Office
    views: Views
    clock: Clock

    def in_work_hours(self, now: datetime) -> bool:
        cal = self.config.calendar
        local = cal.local(now)
        hours = cal.hours(local.date())
        return hours is not None and hours[0] <= local.time().replace(tzinfo=None) < hours[1]

    async def tick(self) -> None:
        now = self.clock()
        effects: list[Effect] = []
        records: list[tuple[str, str, int]] = []
        if self.in_work_hours(now):
            for reminder in await self.round(now, records):
                text = self.views.reminder(reminder)
                key = f"reminder:{','.join(str(p.user_id) for p in reminder.people)}:{now}"
                effects.append(send_effect(self.office.group_id, text, key))
        morning = await self._morning(now)
        if morning is not None:
            effects += morning[0]
            records.append(morning[1])
        if effects or records:
            await self.repo.people.record_reminders(records, now, effects)

    async def round(self, now: datetime, records: list[tuple[str, str, int]]) -> list[Reminder]:
        """This round's reminders, by audience; `records` gets what they remind."""
        cal, repeat = self.config.calendar, self.config.reminders.repeat_minutes
        state = await self.repo.people.reminder_state()

        def due_round(key: str, about: str) -> int | None:
            """The round number if `key` (about `about`) is due for a reminder now."""
            seen = state.get(key)
            if seen is None or seen[0] != about:
                return 1
            if cal.work_minutes_between(seen[2], now) < repeat:
                return None
            return seen[1] + 1

        audiences: dict[tuple[int, ...], Reminder] = {}
        for t in await self.repo.tickets.overdue_tickets(now):
            due = self.office.due(t)
            if due is None or due >= now:
                continue
            key, about = f"ticket:{t.id}", due.isoformat()
            n = due_round(key, about)
            if n is None:
                continue  # reminded lately: nothing to look up
            people = await self.office.turn(t)
            if not people:
                continue
            late = cal.work_minutes_between(due, now)
            audience = await self._audience(audiences, people, t.state, n)
            audience.overdue.append(Overdue(t, due, late, n))
            records.append((key, about, n))
        for batch, waiting in await self.repo.batches.unconfirmed_batches():
            if batch.sent_at is None:
                continue
            age = cal.work_minutes_between(batch.sent_at, now) / cal.day_minutes
            if age < self.config.recap.chase_workdays:
                continue
            key, about = f"batch:{batch.id}", batch.sent_at.isoformat()
            n = due_round(key, about)
            if n is None:
                continue
            waiting_on = self.config.procedure.step(State.SENT_TO_DWH)
            adb = await self.office.people_of(waiting_on.turn)
            audience = await self._audience(audiences, adb, State.SENT_TO_DWH, n)
            audience.unconfirmed.append(Unconfirmed(batch, waiting, age, n))
            records.append((key, about, n))
        return list(audiences.values())

    async def _audience(
        self,
        audiences: dict[tuple[int, ...], Reminder],
        people: list[Person],
        state: str,
        round_: int,
    ) -> Reminder:
        key = tuple(sorted(p.user_id for p in people))
        reminder = audiences.setdefault(key, Reminder(people))
        if round_ >= self.config.reminders.escalate_after and not reminder.escalated_to:
            # Who else hears of it, as the step's row says (the Kasi for the ADB's and the
            # desk's steps, the head of office for all).
            step = self.config.procedure.step(state)
            above = await self.office.people_of(step.escalate_to)
            reminder.escalated_to = [p for p in above if p.user_id not in key]
        return reminder

    async def _morning(self, now: datetime) -> tuple[list[Effect], tuple[str, str, int]] | None:
        at = self.config.reminders.morning_summary
        cal = self.config.calendar
        today = cal.local(now).date()
        if at is None or not cal.is_workday(today):
            return None
        if cal.local(now).time().replace(tzinfo=None) < at:
            return None
        state = await self.repo.people.reminder_state()
        if state.get("morning", ("",))[0] == today.isoformat():
            return None
        record = ("morning", today.isoformat(), 1)
        late = cal.local(now) - datetime.combine(today, at, cal.tz) > MORNING_CATCH_UP
        if "morning" not in state and late:
            # A bot started for the first time (in setup, at any hour) owes no summary of
            # this morning: the first one goes at the next morning's time.
            return [], record
        unconfirmed = [
            (b, waiting, cal.work_minutes_between(b.sent_at, now) / cal.day_minutes)
            for b, waiting in await self.repo.batches.unconfirmed_batches()
            if b.sent_at is not None
        ]
        text = self.views.morning(await self.office.queue(), unconfirmed, today)
        effect = send_effect(self.office.group_id, text, f"morning:{today.isoformat()}")
        return [effect], record
