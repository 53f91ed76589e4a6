"""find_clip locates a known clip to the sample, even under noise and another sound."""

from __future__ import annotations

import numpy as np

from voice_guide.sound.align import find_clip
from voice_guide.sound.tones import breath_tone, synth_cue


def test_finds_a_clip_exactly_under_noise_and_overlap() -> None:
    rate = 16_000
    rng = np.random.default_rng(2)
    audio = 0.01 * rng.standard_normal(rate * 6)
    cue = synth_cue("swap", rate)
    at = 2 * rate + 123
    audio[at : at + len(cue)] += cue
    audio[at + 500 : at + 500 + rate] += breath_tone("in", 1.0, rate)
    assert find_clip(audio, cue, at + 300, 1000, rate) == at
    assert find_clip(audio, cue, at - 700, 1000, rate) == at
