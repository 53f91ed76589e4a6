"""What a session needs from the parts that listen and schedule for it: speech and clap detectors, and
the apart scheduler. Protocols only, so the engine, its fakes in tests and apart/ share one contract."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from voice_guide.live.records import Heard
from voice_guide.script import Listen, Step
from voice_guide.sound.levels import Samples


class SpeechGate(Protocol):
    """A streaming voice-activity detector: one decision per 10 ms frame of what it is fed."""

    def push(self, samples: Samples, ignore: bool | npt.NDArray[np.bool_] = False) -> npt.NDArray[np.bool_]:
        """Take samples (`ignore` per sample, or for all); return a decision per 10 ms frame completed."""
        ...

    @property
    def last_voiced_frame(self) -> int:
        """Return the last 10 ms frame (counted from the first) that had voice in it; -1 if none."""
        ...

    @property
    def speech_start_frame(self) -> int | None:
        """Return the 10 ms frame where the current (or last) talk began; None if none yet."""
        ...

    def cut(self, frame: int) -> None:
        """End any talk as of 10 ms frame `frame`: what was heard from there on is not talk."""
        ...

    @property
    def threshold_dbfs(self) -> float:
        """Return the level (dBFS) at which a voiced sound would open talk now."""
        ...


class ClapGate(Protocol):
    """A streaming double-clap detector."""

    def push(self, samples: Samples) -> npt.NDArray[np.bool_]:
        """Take samples; return True for each 10 ms frame at which a double clap completed."""
        ...

    @property
    def pair_start_frame(self) -> int:
        """Return the 10 ms frame in which the last double clap's first clap began; -1 if none."""
        ...


class Scheduler(Protocol):
    """Who decides when steps start, when another device shares the timeline (apart mode; see apart.py).

    Frames here are output frames. Index `len(steps)` stands for the end of the session,
    so both devices finish together.
    """

    def step_start(self, index: int, step: Step | None, earliest_out: int) -> int | None:
        """Return the output frame step `index` starts at (silence until then); None: not known yet, ask again."""
        ...

    def step_placed(self, index: int, step: Step, start_out: int, end_out: int | None) -> None:
        """Hear that step `index` started; `end_out` is where it ends when that is already known."""
        ...

    def decides_turn(self, step: Listen) -> bool:
        """Return True if this device's turn tracker ends the listen step, False if `turn_end` does."""
        ...

    def turn_end(self, index: int) -> int | None:
        """Return the output frame a listen step that ends elsewhere ends at; None: not known yet."""
        ...

    def hears(self, who: str) -> bool:
        """Return True if `who` is heard on the other device (their speech arrives through `merge`)."""
        ...

    def report(self, heard: list[Heard]) -> None:
        """Take this device's own verdicts as they come (to tell the other device)."""
        ...

    def merge(self, heard: Heard) -> Heard:
        """Return the verdict with the partners heard on the other device added."""
        ...
