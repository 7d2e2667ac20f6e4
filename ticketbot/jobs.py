"""Scheduled work (APScheduler through PTB's JobQueue): the recap and overdue cards."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram.ext import Application

from ticketbot import group
from ticketbot.services import Context, services_of

AnyApp = Application[Any, Any, Any, Any, Any, Any]
KEEP_DELIVERED = timedelta(days=7)
log = logging.getLogger(__name__)


def schedule_jobs(app: AnyApp) -> None:
    """The recap's rule lives in one place, `RecapDesk.schedule` (recap.time on working
    days, holidays and cuti bersama skipped, a missed day caught up): the daily job wakes
    the desk at that minute, the tick every minute for retries, late notices and catch-up.
    Both ask the same rule what is due, so neither can send a recap the other would not."""
    assert app.job_queue is not None
    schedule = services_of(app).desk.schedule
    app.job_queue.run_daily(
        on_recap_job,
        time=schedule.at_time,
        days=schedule.cron_days(),
        name="recap-daily",
        job_kwargs={"misfire_grace_time": 3600, "coalesce": True},
    )
    for callback, every, first, name in REPEATING:
        app.job_queue.run_repeating(
            callback, interval=every, first=first, name=name,
            job_kwargs={"misfire_grace_time": every, "coalesce": True},
        )  # fmt: skip


async def run_recap(app: AnyApp) -> None:
    """One pass of the recap desk, then the group is told what it did."""
    s = services_of(app)
    await group.announce(s, await s.desk.tick())


async def sweep_overdue(app: AnyApp) -> None:
    """Re-render cards once when their step's deadline passes, so they say TERLAMBAT."""
    await services_of(app).office.newly_overdue()


async def on_recap_job(context: Context) -> None:
    await run_recap(context.application)


async def on_overdue_job(context: Context) -> None:
    await sweep_overdue(context.application)


async def on_prune_job(context: Context) -> None:
    repo = services_of(context.application).repo
    effects, updates = await repo.prune_delivered(datetime.now(UTC) - KEEP_DELIVERED)
    if effects or updates:
        log.info("pruned %s delivered effects and %s handled updates", effects, updates)


async def on_reminder_job(context: Context) -> None:
    await services_of(context.application).reminders.tick()


async def on_report_job(context: Context) -> None:
    s = services_of(context.application)
    await s.reports.tick()  # a failure's notice is queued with the failure itself


async def on_purge_job(context: Context) -> None:
    await services_of(context.application).retention.purge()


# The jobs that repeat: (callback, every so many seconds, first after start-up, name).
REPEATING: tuple[tuple[Callable[[Context], Coroutine[Any, Any, None]], int, int, str], ...] = (
    # Retries, late notices and catch-up of the recap (the daily job sends it on time).
    (on_recap_job, 60, 1, "recap-tick"),
    # Cards say TERLAMBAT once their step's deadline passes.
    (on_overdue_job, 60, 5, "overdue"),
    # Overdue steps, unconfirmed recaps and the morning summary: the rules and their memory
    # are the reminder desk's (reminders.py).
    (on_reminder_job, 60, 10, "reminders"),
    # The monthly report by email (first working day of a month; retries).
    (on_report_job, 300, 20, "report"),
    # Delivered effects and handled updates are kept a week, then forgotten.
    (on_prune_job, 3600, 30, "prune"),
    # Retention: personal data of tickets closed longer than privacy.retention_days.
    (on_purge_job, 24 * 3600, 40, "purge"),
)
