"""Start a session at an agreed wall-clock time, so two people with synced clocks begin together."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from voice_guide.errors import UsageError

# The countdown is spoken this long before the start; the session clock runs it, so the
# first step lands on the agreed second to the frame.
COUNTDOWN_S = 10.0
COUNTDOWN_TEXT = "We begin in ten seconds."
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def parse_start_at(text: str, now: datetime) -> datetime:
    """Return today's local time HH:MM[:SS] as a datetime; raise UsageError if it is bad or past."""
    match = _CLOCK.match(text.strip())
    if not match:
        raise UsageError(f"--start-at {text}: expected HH:MM or HH:MM:SS", "local time, e.g. --start-at 21:30")
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise UsageError(f"--start-at {text}: not a time of day", "hours 0-23, minutes and seconds 0-59")
    target = now.replace(hour=hour, minute=minute, second=second, microsecond=0)
    if target < now - timedelta(seconds=1):
        raise UsageError(f"--start-at {text}: that time has passed", "give a time later today")
    return target


def wait_for_countdown(
    target: datetime,
    note: Callable[[str], None],
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Sleep until the countdown should begin, showing the time left; return seconds still to go (<= COUNTDOWN_S)."""
    goal = target.timestamp()
    last_shown = None
    while True:
        left = goal - clock()
        if left <= COUNTDOWN_S:
            return max(0.0, left)
        minutes = int((left - COUNTDOWN_S) // 60)
        if minutes != last_shown:
            note(f"starting at {target:%H:%M:%S}, in {int(left // 60)} min {int(left % 60)} s")
            last_shown = minutes
        sleep(min(1.0, left - COUNTDOWN_S))
