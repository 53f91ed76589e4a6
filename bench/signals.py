"""Generated noise and frame scoring shared by the VAD benchmark and the tests (tests import bench, never the reverse).

Pure numpy: no files, no packages. The corpus of real speech is bench/corpus.py; the
tests' own generated sounds (claps, coughs, knocks) are tests/vad_signals.py.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voice_guide.sound.levels import Samples

Frames = npt.NDArray[np.bool_]
"""One decision or label per 10 ms frame."""


def steady_noise(n: int, sample_rate_hz: int, rng: np.random.Generator, kind: str = "pink") -> Samples:
    """Return `n` samples of unit-power stationary noise: "white", "pink" (1/f) or "brown" (1/f^2)."""
    white = rng.standard_normal(n)
    if kind == "white":
        shaped = white
    else:
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n, 1.0 / sample_rate_hz)
        # Below 20 Hz the slope stops, as a real room's noise does (and no DC blows up).
        spectrum /= np.maximum(freqs, 20.0) ** {"pink": 0.5, "brown": 1.0}[kind]
        shaped = np.fft.irfft(spectrum, n)
    rms = float(np.sqrt(np.mean(shaped * shaped)))
    return (shaped / rms).astype(np.float32)


def frame_f1(predicted: Frames, reference: Frames, collar_s: float = 0.0, frame_s: float = 0.01) -> float:
    """Return the F1 score of frame decisions against labels, leaving out frames within `collar_s` of a label edge."""
    n = min(predicted.size, reference.size)
    p, r = predicted[:n], reference[:n]
    reach = round(collar_s / frame_s)
    if reach:
        scored = np.ones(n, dtype=np.bool_)
        for edge in np.flatnonzero(np.diff(r.astype(np.int8), prepend=0, append=0)).tolist():
            scored[max(0, edge - reach) : edge + reach] = False
        p, r = p[scored], r[scored]
    hits = int(np.count_nonzero(p & r))
    total = int(np.count_nonzero(p)) + int(np.count_nonzero(r))
    return 2.0 * hits / total if total else 1.0
