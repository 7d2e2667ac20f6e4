"""The one clock the bot reads: replaced by a simulated one in the demo and the tests."""

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def now_utc() -> datetime:
    return datetime.now(UTC)
