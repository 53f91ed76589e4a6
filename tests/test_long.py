"""A 60-minute session offline: memory stays flat and not one frame of drift."""

from __future__ import annotations

import tracemalloc

import pytest

from voice_guide.live.audio import NullIO
from voice_guide.live.records import StepRecord
from voice_guide.live.session import Session
from voice_guide.script import Breathe, Chime, Listen, Pause, Say, Step
from voice_guide.sound.timeline import compile_timeline

from .support import RATE, Bank, Quiet

PATTERN: list[Step] = [
    Say("Your turn now.", 1),
    Chime("start", 2),
    Listen("a", "Ann", 40.0, 3, remind_s=10.0),
    Pause(7.3, 4),
    Breathe(4.0, 1.0, 6.0, 0.0, 1, "tones", 5),
    Chime("swap", 6),
]


class MemoryWatch(Quiet):
    """Sample traced memory at every step, to see whether it grows with the session."""

    def __init__(self) -> None:
        self.samples: list[int] = []

    def step_finished(self, record: StepRecord) -> None:
        self.samples.append(tracemalloc.get_traced_memory()[0])


@pytest.mark.slow
def test_an_hour_runs_flat_and_exact() -> None:
    steps = PATTERN * 63  # a little over an hour
    planned = compile_timeline(steps, Bank())
    assert planned.length_frames / RATE / 60 > 60
    watch = MemoryWatch()
    io = NullIO(RATE)
    tracemalloc.start()
    try:
        result = Session(steps, Bank(), io, watch).run()
    finally:
        tracemalloc.stop()
    # Zero drift: every step starts on the frame the plan gives it, to the last one.
    assert [round(r.start_s * RATE) for r in result.steps] == [p.start_frame for p in planned.steps]
    assert io.frames_out == planned.length_frames
    # Flat memory: after the first ten minutes, no more than 2 MB more by the end.
    per_step = len(PATTERN)
    after_ten_minutes = watch.samples[10 * per_step]
    assert max(watch.samples) - after_ten_minutes < 2_000_000, (after_ten_minutes, max(watch.samples))
