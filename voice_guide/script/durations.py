"""Parse and format the durations scripts and options use: 90s, 2m, 1m30s, 1.5s, 1h, 45."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")
DURATION_HINT = "expected a duration like 90s, 2m, 1m30s, 1.5s or a number of seconds"


def parse_duration_s(value: object) -> float | None:
    """Return `value` as seconds, or None when it is not a duration (negative counts as not)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if not text:
            return None
        try:
            seconds = float(text)
        except ValueError:
            match = _DURATION.match(text)
            if match is None or not any(match.groups()):
                return None
            hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
            seconds = hours * 3600 + minutes * 60 + secs
    else:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def format_duration(seconds: float) -> str:
    """Format seconds compactly for people: 45s, 2m, 1m30s, 1h05m, 1.5s."""
    if seconds < 60:
        whole = round(seconds)
        return f"{whole}s" if abs(seconds - whole) < 0.05 else f"{seconds:.1f}s"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"


_ONES = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_words(n: int) -> str:
    """Say a whole number from 0 to 999 999 in words: 45 -> 'forty-five', 120 -> 'a hundred and twenty'."""
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        head = "a hundred" if hundreds == 1 else f"{_ONES[hundreds]} hundred"
        return head + (f" and {number_words(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    head = "a thousand" if thousands == 1 else f"{number_words(thousands)} thousand"
    if not rest:
        return head
    return head + (" and " if rest < 100 else " ") + number_words(rest)


def _count(n: int, unit: str) -> str:
    return plural(n, unit, spoken=True)


def _in_seconds(written: str | None) -> bool:
    """Return True when the author wrote the duration in seconds (90s, or a bare 90)."""
    if written is None:
        return False
    text = written.strip().lower().replace(" ", "")
    return bool(text) and "m" not in text and "h" not in text


def spoken_duration(seconds: float, written: str | None = None) -> str:
    """Say a duration as people do: 'two minutes', 'a minute and a half', 'ninety seconds'.

    Under two minutes, a duration the author wrote in seconds (`written` "90s" or a bare
    "90") stays in seconds; otherwise whole and half minutes are said as such and hours
    come to the nearest minute.
    """
    total = max(0, round(seconds))
    if total < 60 or (total < 120 and _in_seconds(written)):
        return _count(total, "second")
    if total >= 3600:
        hours, minutes = divmod(round(total / 60), 60)
        if minutes == 0:
            return _count(hours, "hour")
        if minutes == 30:
            return "an hour and a half" if hours == 1 else f"{number_words(hours)} and a half hours"
        return f"{'an hour' if hours == 1 else _count(hours, 'hour')} and {_count(minutes, 'minute')}"
    minutes, secs = divmod(total, 60)
    if secs == 0:
        return _count(minutes, "minute")
    if secs == 30:
        return "a minute and a half" if minutes == 1 else f"{number_words(minutes)} and a half minutes"
    if minutes == 1:
        return _count(total, "second")  # 75 s: 'seventy-five seconds' beats 'one minute and fifteen seconds'
    return f"{_count(minutes, 'minute')} and {_count(secs, 'second')}"


def plural(count: int, noun: str, nouns: str | None = None, spoken: bool = False) -> str:
    """Return '1 session', '2 sessions' (`nouns` for irregular plurals, e.g. 'stretches'); `spoken`: 'two sessions'."""
    return f"{number_words(count) if spoken else count} {noun if count == 1 else (nouns or noun + 's')}"
