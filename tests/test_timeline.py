"""The timeline places every clip at an exact frame, pure: a fake clip bank stands in for speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voice_guide.script import Breathe, Chime, Listen, Pause, Say, Step
from voice_guide.sound.levels import Samples
from voice_guide.sound.timeline import (
    SPEECH_GAP_S,
    breath_number_text,
    compile_timeline,
    s_to_frames,
    spoken_texts,
)

RATE = 8000


class FakeBank:
    """Clips whose length encodes what they are, so placement can be checked by arithmetic."""

    sample_rate_hz = RATE

    def __init__(self) -> None:
        self.spoken: list[str] = []

    def speech(self, text: str) -> Samples:
        self.spoken.append(text)
        return np.full(100 * len(text), 0.1, dtype=np.float32)

    def cue(self, name: str, path: Path | None = None) -> Samples:
        return np.full(500 + len(name), 0.2, dtype=np.float32)

    def breath(self, direction: str, n_frames: int) -> Samples:
        return np.full(n_frames, 0.05, dtype=np.float32)


def test_steps_follow_each_other_exactly() -> None:
    steps: list[Step] = [
        Say("Hello.", 1),
        Chime("start", 2),
        Pause(1.5, 3),
        Listen("a", "Ann", 10.0, 4, remind_s=2.0),
        Say("Bye.", 5),
    ]
    timeline = compile_timeline(steps, FakeBank())
    gap = s_to_frames(SPEECH_GAP_S, RATE)
    starts = [p.start_frame for p in timeline.steps]
    assert starts == [0, 600 + gap, 600 + gap + 505, 600 + gap + 505 + 12000, 600 + gap + 505 + 12000 + 80000]
    remind = [e for e in timeline.events if e.name == "remind"]
    assert [e.start_frame for e in remind] == [starts[3] + 80000 - 16000]
    assert timeline.length_frames == starts[4] + 400 + gap


def test_breathing_pace_is_exact_to_the_sample() -> None:
    step = Breathe(in_s=4.0, hold_s=1.25, out_s=6.0, hold_out_s=0.5, count=5, counting="tones", line=1)
    timeline = compile_timeline([step], FakeBank())
    tones = [e for e in timeline.events if e.kind == "breathe"]
    breath = s_to_frames(11.75, RATE)
    ins = [e.start_frame for e in tones if e.name == "breath-in"]
    outs = [e.start_frame for e in tones if e.name == "breath-out"]
    assert ins == [k * breath for k in range(5)]
    assert outs == [k * breath + s_to_frames(5.25, RATE) for k in range(5)]
    assert timeline.length_frames == 5 * breath
    said = [e.text for e in timeline.events if e.kind == "say"]
    assert said == ["Breath one of five.", "Two.", "Three.", "Four.", "Last breath."]


def test_spoken_texts_lists_everything_the_timeline_asks_for() -> None:
    steps: list[Step] = [Say("Hi {a}.", 1), Breathe(4, 0, 6, 0, 3, "spoken", 2), Breathe(4, 2, 6, 0, 2, "tones", 3)]
    bank = FakeBank()
    compile_timeline(steps, bank)
    assert set(bank.spoken) == set(spoken_texts(steps))


def test_breath_numbers_only_where_they_help() -> None:
    assert breath_number_text(1, 2) is None
    assert breath_number_text(1, 10) == "Breath one of ten."
    assert breath_number_text(10, 10) == "Last breath."


def test_mix_sums_overlapping_clips_in_any_block_size() -> None:
    steps: list[Step] = [Breathe(1.0, 0, 1.0, 0, 3, "tones", 1), Say("x", 2)]
    timeline = compile_timeline(steps, FakeBank())
    whole = timeline.mix(0, timeline.length_frames)
    pieces = np.concatenate(
        [timeline.mix(s, min(333, timeline.length_frames - s)) for s in range(0, timeline.length_frames, 333)]
    )
    assert np.array_equal(whole, pieces)
    # The count is spoken over the first breath tone: both are in the mix there.
    assert whole[10] == np.float32(0.05) + np.float32(0.1)
