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
    """Voiced-ish noise: band-limited bursts with syllable-rate modulation."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * RATE)
    noise = rng.standard_normal(n)
    smooth = np.convolve(noise, np.ones(8) / 8, mode="same")
    t = np.arange(n) / RATE
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    return (0.15 * smooth * envelope).astype(np.float32)


def mic_with_speech(total_s: float, spans: list[tuple[float, float]]) -> Samples:
    rng = np.random.default_rng(7)
    mic = (0.0005 * rng.standard_normal(int(total_s * RATE))).astype(np.float32)
    for i, (a, b) in enumerate(spans):
        seg = speech_like(b - a, seed=i)
        mic[int(a * RATE) : int(a * RATE) + len(seg)] += seg
    return mic
