"""Every value a session hands to others: step records, the result, observer hooks, commands, options.

The journal, the panel, the keys and the recap read these; none of them imports the session engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from voice_guide.live.turns import Turn
from voice_guide.script import Step
from voice_guide.sound.timeline import Event

Command = Literal["pause", "skip", "back", "quit"]
# The notes a session gives when it pauses and resumes (the panel shows these as a state instead).
PAUSED_NOTE = "paused"
RESUMED_NOTE = "resumed"
SessionEnd = Literal["complete", "quit"]


class Observer(Protocol):
    """Who wants to know as the session goes: the display and the journal."""

    def step_started(self, index: int, total: int, step: Step, start_s: float) -> None: ...

    def step_finished(self, record: StepRecord) -> None: ...

    def heard(self, level_dbfs: float, speaking: Mapping[str, bool]) -> None: ...

    def note(self, message: str) -> None: ...


class QuietObserver:
    """An Observer that ignores everything: listeners inherit it and override only what they use."""

    def step_started(self, index: int, total: int, step: Step, start_s: float) -> None:
        """Ignore a step's start."""

    def step_finished(self, record: StepRecord) -> None:
        """Ignore a finished step."""

    def heard(self, level_dbfs: float, speaking: Mapping[str, bool]) -> None:
        """Ignore the levels."""

    def note(self, message: str) -> None:
        """Ignore a note."""


@dataclass(frozen=True)
class Heard:
    """The detectors' verdict for one 10 ms frame, in session frames."""

    frame: int  # where the 10 ms frame ends
    speaking: Mapping[str, bool]  # per partner ("mic" with one microphone)
    quiet_since: Mapping[str, int | None]  # where each one's last voiced sound was
    talk_since: Mapping[str, int | None] = field(default_factory=dict)  # where each one's talk now began


@dataclass(frozen=True)
class SessionOptions:
    """How to run: microphone use, speakers or headphones, channel mapping."""

    headphones: bool = False
    # partner ("a"/"b") -> zero-based input channel; empty: one mic for whoever's turn it is
    mic_channels: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StepRecord:
    """One finished step: when it played on the output timeline and, for listen steps, the turn."""

    index: int
    kind: str
    label: str
    start_s: float
    end_s: float
    turn: Turn | None = None
    skipped: bool = False


@dataclass(frozen=True)
class LoggedEvent:
    """A placed clip or window with its actual place on the output timeline."""

    event: Event
    start_s: float
    end_s: float
    turn: Turn | None = None

    def as_json(self) -> dict[str, object]:
        """Describe the event as LOG.json does."""
        row: dict[str, object] = {
            "kind": self.event.kind,
            "step": self.event.step,
            "start_s": self.start_s,
            "end_s": self.end_s,
        }
        for key in ("text", "name", "who"):
            value = getattr(self.event, key)
            if value is not None:
                row[key] = value
        if self.turn is not None:
            row.update({k: v for k, v in self.turn.as_json().items() if k not in ("start_s", "end_s")})
            row["start_s"], row["end_s"] = self.turn.start_s, self.turn.end_s
        return row


@dataclass(frozen=True)
class SessionResult:
    """Everything a finished (or quit) session leaves behind."""

    ended_by: SessionEnd
    steps: tuple[StepRecord, ...]
    events: tuple[LoggedEvent, ...]
    length_s: float
    underruns: int
    overruns: int
    mic_used: bool
    drift_ppm: float | None = None

    @property
    def turns(self) -> list[Turn]:
        """Return the listen turns in order."""
        return [r.turn for r in self.steps if r.turn is not None]
