"""Place a script's steps on one frame clock; pure (no audio, no engine, no clock).

The same placement drives `show` (with estimated speech lengths), `render` and the
live player (with the real clip lengths).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .script import Breathe, Chime, Listen, Pause, Say, Step

DEFAULT_RATE_HZ = 48_000
# Quiet after each spoken prompt so a sentence can land before the next thing starts.
SPEECH_GAP_S = 0.6
# Used by estimates only: espeak-ng at 150 words a minute plus the sentence pause.
ESTIMATE_CUE_S = 2.0

LengthFn = Callable[[Step], int]


def s_to_frames(seconds: float, sample_rate_hz: int) -> int:
    """Convert seconds to a whole number of frames (nearest)."""
    return round(seconds * sample_rate_hz)


def frames_to_s(frames: int, sample_rate_hz: int) -> float:
    """Convert frames to seconds."""
    return frames / sample_rate_hz


@dataclass(frozen=True)
class Placed:
    """One step at its place on the timeline."""

    index: int
    step: Step
    start_frame: int
    length_frames: int

    @property
    def end_frame(self) -> int:
        """Return the first frame after the step."""
        return self.start_frame + self.length_frames


def place(steps: Sequence[Step], length_frames: LengthFn) -> tuple[Placed, ...]:
    """Lay the steps end to end from frame 0 using `length_frames` for each."""
    placed: list[Placed] = []
    cursor = 0
    for index, step in enumerate(steps):
        length = length_frames(step)
        placed.append(Placed(index, step, cursor, length))
        cursor += length
    return tuple(placed)


def fixed_length_frames(step: Step, sample_rate_hz: int) -> int | None:
    """Return the length of a step whose length does not depend on a clip, else None."""
    if isinstance(step, Pause):
        return s_to_frames(step.duration_s, sample_rate_hz)
    if isinstance(step, Listen):
        return s_to_frames(step.for_s, sample_rate_hz)
    if isinstance(step, Breathe):
        return step.count * breath_frames(step, sample_rate_hz)
    return None


def breath_frames(step: Breathe, sample_rate_hz: int) -> int:
    """Return the frames of one breath; each phase is rounded on its own so pacing is exact."""
    return sum(s_to_frames(s, sample_rate_hz) for s in (step.in_s, step.hold_s, step.out_s, step.hold_out_s))


def estimated_length_frames(sample_rate_hz: int = DEFAULT_RATE_HZ, rate_wpm: int = 150) -> LengthFn:
    """Return a length function that estimates speech from its word count (for `show`)."""

    def length(step: Step) -> int:
        fixed = fixed_length_frames(step, sample_rate_hz)
        if fixed is not None:
            return fixed
        if isinstance(step, Say):
            words = max(1, len(step.text.split()))
            return s_to_frames(words * 60.0 / rate_wpm + SPEECH_GAP_S, sample_rate_hz)
        assert isinstance(step, Chime)
        return s_to_frames(ESTIMATE_CUE_S, sample_rate_hz)

    return length


def total_s(placed: Sequence[Placed], sample_rate_hz: int) -> float:
    """Return the length of the whole placed timeline in seconds."""
    return frames_to_s(placed[-1].end_frame, sample_rate_hz) if placed else 0.0
