"""Loudness arithmetic on float32 sample arrays (full scale = 1.0); pure, no I/O."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]

# Every clip the guide plays (speech and cues) is brought to this RMS level so
# nothing jumps out at a listener whose eyes are closed.
TARGET_RMS_DBFS = -20.0
# Nothing the guide plays peaks above this; headroom for mixing and resampling.
PEAK_LIMIT_DBFS = -3.0
# Below this a signal counts as digital silence (log of zero guard).
SILENCE_DBFS = -120.0


def db_to_gain(db: float) -> float:
    """Convert decibels to a linear amplitude factor."""
    return float(10.0 ** (db / 20.0))


def gain_to_db(gain: float) -> float:
    """Convert a linear amplitude factor to decibels (SILENCE_DBFS for zero)."""
    if gain <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, float(20.0 * np.log10(gain)))


def rms_dbfs(samples: npt.ArrayLike) -> float:
    """Return the RMS level of `samples` in dBFS (a full-scale sine is -3.01)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return SILENCE_DBFS
    return gain_to_db(float(np.sqrt(np.mean(x * x))))


def peak_dbfs(samples: npt.ArrayLike) -> float:
    """Return the absolute peak of `samples` in dBFS."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return SILENCE_DBFS
    return gain_to_db(float(np.max(np.abs(x))))


def normalize(
    samples: Samples, rms_target_dbfs: float = TARGET_RMS_DBFS, peak_limit_dbfs: float = PEAK_LIMIT_DBFS
) -> Samples:
    """Scale to `rms_target_dbfs`, backing off so the peak stays under `peak_limit_dbfs`."""
    level = rms_dbfs(samples)
    if level <= SILENCE_DBFS:
        return samples.astype(np.float32, copy=True)
    gain_db = rms_target_dbfs - level
    headroom_db = peak_limit_dbfs - peak_dbfs(samples)
    gain = db_to_gain(min(gain_db, headroom_db))
    return (samples * gain).astype(np.float32)
