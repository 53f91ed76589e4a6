"""A 60-minute session offline: memory stays flat and not one frame of drift."""

from __future__ import annotations

import os
import sys

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


PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    """This process's resident memory, from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_BYTES


class MemoryWatch(Quiet):
    """Sample memory at every step, to see whether it grows with the session.

    Two measures, both cheap (tracemalloc made the hour five times slower): the
    resident size catches numpy buffers kept alive, and the count of Python's allocated
    blocks catches lists or records that grow with every step.
    """

    def __init__(self) -> None:
        self.resident: list[int] = []
        self.blocks: list[int] = []

    def step_finished(self, record: StepRecord) -> None:
        self.resident.append(resident_bytes())
        self.blocks.append(sys.getallocatedblocks())


@pytest.mark.slow
def test_an_hour_runs_flat_and_exact() -> None:
    steps = PATTERN * 63  # a little over an hour
    planned = compile_timeline(steps, Bank())
    assert planned.length_frames / RATE / 60 > 60
    watch = MemoryWatch()
    io = NullIO(RATE)
    result = Session(steps, Bank(), io, watch).run()
    # Zero drift: every step starts on the frame the plan gives it, to the last one.
    assert [round(r.start_s * RATE) for r in result.steps] == [p.start_frame for p in planned.steps]
    assert io.frames_out == planned.length_frames
    # Flat memory: after the first ten minutes, no more than 2 MB more resident by the
    # end, and no more than a few objects per step (the records kept for the journal).
    ten_minutes = 10 * len(PATTERN)
    grown_bytes = max(watch.resident) - watch.resident[ten_minutes]
    assert grown_bytes < 2_000_000, grown_bytes
    steps_after = len(watch.blocks) - ten_minutes
    grown_blocks = max(watch.blocks) - watch.blocks[ten_minutes]
    assert grown_blocks < 60 * steps_after, (grown_blocks, steps_after)
