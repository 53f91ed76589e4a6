"""Fakes and generated signals shared by the session-level tests (unit tests of the layers above the engines)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voice_guide.live.records import QuietObserver
from voice_guide.sound.levels import Samples

RATE = 16_000


class Bank:
    """Deterministic stand-in clips (the speech engine has its own tests)."""

    sample_rate_hz = RATE

    def speech(self, text: str) -> Samples:
        t = np.arange(int(0.05 * RATE * len(text.split()) + 0.2 * RATE)) / RATE
        return (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)

    def cue(self, name: str, path: Path | None = None) -> Samples:
        t = np.arange(int(0.3 * RATE)) / RATE
        return (0.2 * np.sin(2 * np.pi * (500 + 10 * len(name)) * t) * np.exp(-8 * t)).astype(np.float32)

    def breath(self, direction: str, n_frames: int) -> Samples:
        return np.full(n_frames, 0.01 if direction == "in" else -0.01, dtype=np.float32)


class Quiet(QuietObserver):
    """A session observer that hears nothing (tests read the result instead)."""


def speech_like(duration_s: float, seed: int = 1) -> Samples:
    """A voiced buzz (harmonics of a gliding pitch) with syllable-rate modulation: the detector's idea of talk."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * RATE)
    t = np.arange(n) / RATE
    pitch_hz = rng.uniform(110, 180) * (1.0 + 0.05 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(pitch_hz) / RATE
    buzz = sum(np.sin(k * phase) / k for k in range(1, 16))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    x = np.asarray(buzz) * envelope
    rms = float(np.sqrt(np.mean(x * x)))
    return (0.05 * x / rms).astype(np.float32)


def mic_with_speech(total_s: float, spans: list[tuple[float, float]]) -> Samples:
    rng = np.random.default_rng(7)
    mic = (0.0005 * rng.standard_normal(int(total_s * RATE))).astype(np.float32)
    for i, (a, b) in enumerate(spans):
        seg = speech_like(b - a, seed=i)
        mic[int(a * RATE) : int(a * RATE) + len(seg)] += seg
    return mic
