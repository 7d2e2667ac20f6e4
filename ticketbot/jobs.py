"""Scheduled work (APScheduler through PTB's JobQueue): the recap and overdue cards."""

from __future__ import annotations

import logging
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
    app.job_queue.run_repeating(
        on_recap_job, interval=60, first=1, name="recap-tick",
        job_kwargs={"misfire_grace_time": 60, "coalesce": True},
    )  # fmt: skip
    # Overdue steps, unconfirmed recaps and the morning summary: every minute, the rules and
    # their memory are the reminder desk's (reminders.py).
    app.job_queue.run_repeating(
        on_reminder_job, interval=60, first=10, name="reminders",
        job_kwargs={"coalesce": True},
    )  # fmt: skip
    # Delivered effects and handled updates are kept a week, then forgotten.
    app.job_queue.run_repeating(
        on_prune_job, interval=3600, first=30, name="prune",
        job_kwargs={"coalesce": True},
    )  # fmt: skip
    # The monthly report by email (first working day of a month; retries) and retention.
    app.job_queue.run_repeating(
        on_report_job, interval=300, first=20, name="report",
        job_kwargs={"coalesce": True},
    )  # fmt: skip
    app.job_queue.run_repeating(
        on_purge_job, interval=24 * 3600, first=40, name="purge",
        job_kwargs={"coalesce": True},
    )  # fmt: skip
    # Cards say TERLAMBAT once their step's deadline passes.
    app.job_queue.run_repeating(
        on_overdue_job, interval=60, first=5, name="overdue",
        job_kwargs={"coalesce": True},
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
