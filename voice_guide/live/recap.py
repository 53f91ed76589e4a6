"""What a session adds up to: talk time per partner, balance, pauses; and one gentle line to say.

No scores and no streaks: the figures describe, they do not grade.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voice_guide.live.records import SessionResult
from voice_guide.script.durations import spoken_duration

# Within this share of each other, the talking counts as even.
EVEN_BALANCE = (0.4, 0.6)


def summary(result: SessionResult, names: Mapping[str, str]) -> dict[str, Any]:
    """Return talk seconds per partner, balance (a's share, None if nobody talked) and the longest pause."""
    talk = {names["a"]: 0.0, names["b"]: 0.0}
    for turn in result.turns:
        if turn.who in talk:
            talk[turn.who] += turn.talk_s
    total = sum(talk.values())
    return {
        "talk_s": talk,
        "balance": None if total == 0 else talk[names["a"]] / total,
        "longest_pause_s": max((t.longest_silence_s for t in result.turns if t.talk_s > 0), default=0.0),
        "overrun_s": sum(t.overrun_s for t in result.turns),
        "interruptions": sum(t.interruptions for t in result.turns),
    }


def _about(seconds: float) -> str:
    # Round to what a person would say: half minutes above a minute, 10 s below.
    if seconds >= 60:
        return spoken_duration(round(seconds / 30) * 30)
    return spoken_duration(max(10, round(seconds / 10) * 10))


def closing_line(figures: Mapping[str, Any]) -> str | None:
    """Return one kind sentence about how the talking went, or None when nobody was heard."""
    talk: dict[str, float] = dict(figures["talk_s"])
    if sum(talk.values()) < 5:
        return None
    (a, ta), (b, tb) = talk.items()
    balance = figures["balance"]
    if balance is not None and EVEN_BALANCE[0] <= balance <= EVEN_BALANCE[1]:
        return f"You each spoke for about {_about((ta + tb) / 2)}. Thank you both."
    return f"{a} spoke for about {_about(ta)}, and {b} for about {_about(tb)}. Thank you both."
