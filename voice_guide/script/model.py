"""The exercise script as written (`Script` and its step specs) and as expanded (`Step`, `Names`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# The cues a script may name in a chime step (feedback cues such as pause/resume are the player's own).
SCRIPT_CUES = ("start", "swap", "time-up", "remind", "end", "soft")
CUE_FILE_SUFFIXES = (".wav", ".ogg")
LISTENERS = ("a", "b", "speaker", "listener", "both", "anyone")
COUNTING = ("tones", "spoken", "silent")
STEP_KINDS = ("say", "chime", "pause", "listen", "breathe", "repeat")
TOP_KEYS = ("title", "summary", "tags", "params", "steps")
LISTEN_OPTIONS = ("for", "until_silence", "wait_for_speech", "remind", "grace")
BREATHE_KEYS = ("in", "hold", "out", "hold_out", "count", "counting")
REPEAT_OPTIONS = ("swap", "steps")
BUILTIN_PLACEHOLDERS = ("a", "b", "speaker", "listener", "round", "rounds")
MAX_REPEAT = 100
# Bounds that keep a hostile or mistaken script cheap: checked at load, so `check` says
# what `run` would. A script file is read only if it is a regular file this small.
MAX_SCRIPT_BYTES = 1_000_000
# An expanded session: steps after unrolling every repeat (nested repeats multiply), and
# the planned length in seconds (a day; any single duration is bounded by it too).
MAX_STEPS = 5000
MAX_SESSION_S = 24 * 3600.0
# Text lengths in characters. A prompt is spoken sentence by sentence, and no prompt is
# long enough to reach what a speech engine cannot take (espeak-ng crashes near 50,000).
MAX_PROMPT_CHARS = 2000
MAX_TITLE_CHARS = 200
MAX_SUMMARY_CHARS = 2000
MAX_NAME_CHARS = 60
# Characters no text of ours may hold: C0/C1 controls but tab and newline (they move a
# terminal's cursor or inject escape sequences), DEL, and lone UTF-16 surrogates (they
# cannot be printed or encoded at all).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def first_unsafe_char(text: str) -> str | None:
    """Return the first control character or lone surrogate in `text`, written as an escape; None if clean."""
    found = _UNSAFE.search(text)
    return None if found is None else ascii(found.group())[1:-1]


def printable(text: str) -> str:
    """Escape control characters and lone surrogates (not tab, newline) so no title can drive the terminal."""
    if first_unsafe_char(text) is None:
        return text
    return "".join(ch if first_unsafe_char(ch) is None else ascii(ch)[1:-1] for ch in text)


Who = Literal["a", "b", "both", "anyone"]


# ---------------------------------------------------------------- the script as written


@dataclass(frozen=True)
class Duration:
    """A duration as written: fixed seconds, or the name of a param that holds one."""

    seconds: float | None = None
    param: str | None = None


@dataclass(frozen=True)
class SayStep:
    text: str
    line: int


@dataclass(frozen=True)
class ChimeStep:
    cue: str  # a cue name, or the path of a sound file (then `path` is set)
    line: int
    path: Path | None = None


@dataclass(frozen=True)
class PauseStep:
    duration: Duration
    line: int


@dataclass(frozen=True)
class ListenStep:
    who: str  # one of LISTENERS
    for_: Duration
    line: int
    until_silence: Duration | None = None
    wait_for_speech: Duration | None = None
    remind: Duration | None = None
    grace: Duration | None = None


@dataclass(frozen=True)
class BreatheStep:
    in_: Duration
    out: Duration
    line: int
    hold: Duration = Duration(0.0)
    hold_out: Duration = Duration(0.0)
    count: int = 1
    counting: str = "tones"


@dataclass(frozen=True)
class RepeatStep:
    count: int
    steps: tuple[StepSpec, ...]
    line: int
    swap: bool = False


StepSpec = SayStep | ChimeStep | PauseStep | ListenStep | BreatheStep | RepeatStep


@dataclass(frozen=True)
class Param:
    """A script parameter's default: a duration in seconds, or text."""

    raw: str
    duration_s: float | None
    line: int


@dataclass(frozen=True)
class Script:
    id: str
    path: Path
    title: str
    summary: str
    steps: tuple[StepSpec, ...]
    tags: tuple[str, ...] = ()
    params: Mapping[str, Param] = field(default_factory=dict)


# ---------------------------------------------------------------- the expanded plan


@dataclass(frozen=True)
class Say:
    text: str
    line: int


@dataclass(frozen=True)
class Chime:
    name: str  # cue name, or the file's name for a custom cue
    line: int
    path: Path | None = None


@dataclass(frozen=True)
class Pause:
    duration_s: float
    line: int


@dataclass(frozen=True)
class Listen:
    who: Who
    who_name: str  # the partner's name, or "both" / "anyone"
    for_s: float
    line: int
    until_silence_s: float | None = None
    wait_for_speech_s: float | None = None
    remind_s: float | None = None
    grace_s: float | None = None


@dataclass(frozen=True)
class Breathe:
    in_s: float
    hold_s: float
    out_s: float
    hold_out_s: float
    count: int
    counting: str
    line: int

    @property
    def breath_s(self) -> float:
        """Return the length of one breath cycle in seconds."""
        return self.in_s + self.hold_s + self.out_s + self.hold_out_s


Step = Say | Chime | Pause | Listen | Breathe


@dataclass(frozen=True)
class Names:
    """The partners' names as spoken by the guide."""

    a: str = "Partner A"
    b: str = "Partner B"
