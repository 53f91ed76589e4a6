"""Condition a raw clip for playback: trim, resample, loudness-normalize, fade; pure numpy + soxr.

Every spoken prompt (and any user cue file) goes through `condition`, so clips start
and end cleanly and sit at one loudness whatever the engine or file delivered.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from voice_guide.sound.levels import (
    PEAK_LIMIT_DBFS,
    SILENCE_DBFS,
    TARGET_RMS_DBFS,
    Samples,
    db_to_gain,
    gain_to_db,
    loudness_lufs,
    peak_dbfs,
)

# Trimming keeps everything within this many dB of the clip's peak: soft onsets such as
# "h" or "f" sit 30-40 dB under the loudest vowel and must survive.
TRIM_THRESHOLD_DB = -50.0
# Room kept before the first and after the last sound; it also holds the fades, so
# the fades never eat into speech.
TRIM_MARGIN_S = 0.010
# Raised-cosine fade length at each end, long enough that nothing clicks.
FADE_S = 0.005
# A clip whose peak stays under this is treated as silence: boosting it to the target
# would only make noise audible.
SILENT_PEAK_DBFS = -60.0
# Loudness is measured over blocks of this length; pauses between words are left out
# by the two gates below (in the spirit of EBU R128 gating).
LOUDNESS_BLOCK_S = 0.020
# Blocks further than this under the loudest block are silence (pauses, breaths).
SILENCE_GATE_DB = 50.0
# Blocks further than this under the mean of the sounding blocks do not count as voiced.
RELATIVE_GATE_DB = 20.0
# Speech from espeak-ng has a crest factor of 17-19 dB, a little more than the 17 dB
# between TARGET_RMS_DBFS and PEAK_LIMIT_DBFS; a few dB of peak limiting keeps such clips
# at the target instead of backing the whole clip off. Beyond this, the gain backs off.
MAX_LIMITING_DB = 6.0
# The limiter's gain is held per block of this length and ramps between blocks.
LIMITER_BLOCK_S = 0.005


def resample(samples: Samples, from_hz: int, to_hz: int) -> Samples:
    """Resample mono float32 `samples` from `from_hz` to `to_hz` (soxr, high quality)."""
    if from_hz <= 0 or to_hz <= 0:
        raise ValueError(f"sample rates must be positive, got {from_hz} Hz -> {to_hz} Hz")
    x = _mono(samples)
    if from_hz == to_hz or x.size == 0:
        return x.copy()
    return np.asarray(soxr.resample(x, from_hz, to_hz, quality="HQ"), dtype=np.float32)


def trim_silence(
    samples: Samples, sample_rate_hz: int, threshold_db: float = TRIM_THRESHOLD_DB, margin_s: float = TRIM_MARGIN_S
) -> Samples:
    """Cut leading and trailing silence (under `threshold_db` relative to the peak), keeping `margin_s`."""
    x = _mono(samples)
    if x.size == 0:
        return x.copy()
    magnitude = np.abs(x)
    peak = float(magnitude.max())
    if peak <= 0.0:
        return x[:0].copy()
    loud = np.flatnonzero(magnitude >= peak * db_to_gain(threshold_db))
    margin = round(margin_s * sample_rate_hz)
    start = max(0, int(loud[0]) - margin)
    stop = min(x.size, int(loud[-1]) + 1 + margin)
    return x[start:stop].copy()


def voiced_rms_dbfs(samples: Samples, sample_rate_hz: int) -> float:
    """Return the RMS level in dBFS over the voiced blocks only, so pauses do not lower it."""
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return SILENCE_DBFS
    block = max(1, round(LOUDNESS_BLOCK_S * sample_rate_hz))
    starts = np.arange(0, x.size, block)
    energy = np.add.reduceat(x * x, starts)
    counts = np.diff(np.append(starts, x.size)).astype(np.float64)
    power = energy / counts
    loudest = float(power.max())
    if loudest <= 0.0:
        return SILENCE_DBFS
    sounding = power >= loudest * 10.0 ** (-SILENCE_GATE_DB / 10.0)
    mean_power = float(energy[sounding].sum() / counts[sounding].sum())
    voiced = sounding & (power >= mean_power * 10.0 ** (-RELATIVE_GATE_DB / 10.0))
    return gain_to_db(float(np.sqrt(energy[voiced].sum() / counts[voiced].sum())))


def fade_edges(samples: Samples, sample_rate_hz: int, fade_s: float = FADE_S) -> Samples:
    """Apply raised-cosine fades of `fade_s` seconds at both ends; the end samples become 0."""
    x = _mono(samples).copy()
    n = min(round(fade_s * sample_rate_hz), x.size // 2)
    if n <= 0:
        return x
    ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)).astype(np.float32)
    x[:n] *= ramp
    x[-n:] *= ramp[::-1]
    return x


def condition(samples: Samples, source_rate_hz: int, target_rate_hz: int, target_lufs: float | None = None) -> Samples:
    """Trim, resample to `target_rate_hz`, bring to TARGET_RMS_DBFS (voiced) or to `target_lufs`, fade; float32.

    Peaks stay under PEAK_LIMIT_DBFS. A silent clip (peak under SILENT_PEAK_DBFS)
    comes back as an empty array; the caller decides whether that is an error.
    """
    if source_rate_hz <= 0 or target_rate_hz <= 0:
        raise ValueError(f"sample rates must be positive, got {source_rate_hz} Hz -> {target_rate_hz} Hz")
    x = _mono(samples)
    if x.size == 0 or peak_dbfs(x) < SILENT_PEAK_DBFS:
        return np.zeros(0, dtype=np.float32)
    x = resample(trim_silence(x, source_rate_hz), source_rate_hz, target_rate_hz)
    x = _normalize_voiced(x, target_rate_hz, target_lufs)
    return fade_edges(x, target_rate_hz)


def _normalize_voiced(x: Samples, sample_rate_hz: int, target_lufs: float | None = None) -> Samples:
    level = voiced_rms_dbfs(x, sample_rate_hz)
    if level <= SILENCE_DBFS:
        return x.copy()
    gain_db = TARGET_RMS_DBFS - level if target_lufs is None else target_lufs - loudness_lufs(x, sample_rate_hz)
    over_db = peak_dbfs(x) + gain_db - PEAK_LIMIT_DBFS
    if over_db > MAX_LIMITING_DB:
        gain_db -= over_db - MAX_LIMITING_DB
    scaled = (x.astype(np.float64) * db_to_gain(gain_db)).astype(np.float32)
    return _limit_peaks(scaled, db_to_gain(PEAK_LIMIT_DBFS), sample_rate_hz)


def _limit_peaks(x: Samples, ceiling: float, sample_rate_hz: int) -> Samples:
    # Per block, the gain that brings its peak to the ceiling; each dip is widened to the
    # neighbouring blocks so that the gain interpolated between block centres is never
    # above what a block needs, hence no sample ends up over the ceiling.
    if x.size == 0:
        return x
    block = max(1, round(LIMITER_BLOCK_S * sample_rate_hz))
    starts = np.arange(0, x.size, block)
    peaks = np.maximum.reduceat(np.abs(x).astype(np.float64), starts)
    needed = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-30))
    if float(needed.min()) >= 1.0:
        return x
    padded = np.pad(needed, 1, mode="edge")
    held = np.minimum(np.minimum(padded[:-2], padded[1:-1]), padded[2:])
    ends = np.append(starts[1:], x.size)
    centres = (starts + ends - 1) / 2.0
    gain = np.interp(np.arange(x.size, dtype=np.float64), centres, held)
    limited: Samples = (x.astype(np.float64) * gain).astype(np.float32)
    return limited


def _mono(samples: Samples | npt.ArrayLike) -> Samples:
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected mono samples (a 1-D array), got shape {x.shape}")
    return np.ascontiguousarray(x)
