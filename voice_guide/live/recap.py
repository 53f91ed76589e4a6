"""What a session adds up to: talk time per partner, balance, pauses; and one gentle line to say.

`recap()` is the one place these figures are computed. The run's printout, LOG.json, the
spoken closing line, `history`, `history show`, plots and exports all read a `Recap`, so
they cannot disagree. No scores and no streaks: the figures describe, they do not grade.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from voice_guide.script.durations import spoken_duration

# Within this share of each other, the talking counts as even.
EVEN_BALANCE = (0.4, 0.6)
# Below this much talk in a whole session there is nothing kind and true to say about it.
CLOSING_MIN_TALK_S = 5.0


class TurnFigures(Protocol):
    """What the recap needs of one listen turn: a live `Turn` or a journal row both have it."""

    @property
    def who(self) -> str: ...
    @property
    def talk_s(self) -> float: ...
    @property
    def longest_silence_s(self) -> float: ...
    @property
    def overrun_s(self) -> float: ...
    @property
    def interruptions(self) -> int: ...


@dataclass(frozen=True)
class Recap:
    """A session's figures: seconds talked per partner (a first), a's share, longest pause, overrun."""

    name_a: str
    name_b: str
    talk_s: Mapping[str, float]
    balance: float | None  # a's share of the talking, None when nobody talked
    longest_pause_s: float  # the longest silence inside a turn in which someone spoke
    overrun_s: float
    interruptions: int

    @property
    def total_talk_s(self) -> float:
        """Return the seconds both partners talked together."""
        return sum(self.talk_s.values())

    def as_json(self) -> dict[str, object]:
        """Describe the figures as LOG.json and `history --json` print them."""
        return {
            "talk_s": dict(self.talk_s),
            "balance": self.balance,
            "longest_pause_s": self.longest_pause_s,
            "overrun_s": self.overrun_s,
            "interruptions": self.interruptions,
        }


def recap(turns: Iterable[TurnFigures], name_a: str, name_b: str) -> Recap:
    """Add up the listen turns of one session, in seconds."""
    talk = {name_a: 0.0, name_b: 0.0}
    longest_pause_s = overrun_s = 0.0
    interruptions = 0
    for turn in turns:
        if turn.who in talk:
            talk[turn.who] += turn.talk_s
        # A turn nobody spoke in is an unanswered turn, not a pause in talking.
        if turn.talk_s > 0:
            longest_pause_s = max(longest_pause_s, turn.longest_silence_s)
        overrun_s += turn.overrun_s
        interruptions += turn.interruptions
    total = sum(talk.values())
    return Recap(
        name_a=name_a,
        name_b=name_b,
        talk_s=MappingProxyType(talk),
        balance=None if total == 0 else talk[name_a] / total,
        longest_pause_s=longest_pause_s,
        overrun_s=overrun_s,
        interruptions=interruptions,
    )


def _about(seconds: float) -> str:
    # Round to what a person would say: half minutes above a minute, 10 s below.
    if seconds >= 60:
        return spoken_duration(round(seconds / 30) * 30)
    return spoken_duration(max(10, round(seconds / 10) * 10))


def closing_line(figures: Recap) -> str | None:
    """Return one kind sentence about how the talking went, or None when nobody was heard."""
    if figures.total_talk_s < CLOSING_MIN_TALK_S:
        return None
    ta, tb = figures.talk_s[figures.name_a], figures.talk_s[figures.name_b]
    balance = figures.balance
    if balance is not None and EVEN_BALANCE[0] <= balance <= EVEN_BALANCE[1]:
        return f"You each spoke for about {_about((ta + tb) / 2)}. Thank you both."
    a, b = figures.name_a, figures.name_b
    return f"{a} spoke for about {_about(ta)}, and {b} for about {_about(tb)}. Thank you both."
