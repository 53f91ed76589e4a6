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


def spoken_duration(seconds: float) -> str:
    """Say a duration the way a person would: '2 minutes', '1 minute 30 seconds'."""
    total = round(seconds)
    minutes, secs = divmod(total, 60)
    parts = []
    if minutes:
        parts.append(f"{minutes} minute" + ("s" if minutes != 1 else ""))
    if secs or not parts:
        parts.append(f"{secs} second" + ("s" if secs != 1 else ""))
    return " ".join(parts)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """Return '1 session', '2 sessions' (`nouns` for irregular plurals, e.g. 'stretches')."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"
