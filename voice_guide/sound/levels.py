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


# ITU-R BS.1770 loudness: K-weighting (a high shelf, then a high-pass), mean square over
# 400 ms blocks with 75 % overlap, an absolute gate at -70 LUFS and a relative one 10 LU
# under the mean of the blocks left. Speech and cues are matched on this, since the
# ear weighs a bright bell and a dark voice of one RMS level differently.
LOUDNESS_BLOCK_S = 0.4
LOUDNESS_HOP_S = 0.1
_ABSOLUTE_GATE_LUFS = -70.0
_RELATIVE_GATE_LU = 10.0
_K_SHELF_GAIN_DB = 4.0
_K_SHELF_HZ = 1681.974450955533
_K_SHELF_Q = 0.7071752369554196
_K_HIGHPASS_HZ = 38.13547087602444
_K_HIGHPASS_Q = 0.5003270373238773


def k_weighting_power(freqs_hz: npt.ArrayLike, sample_rate_hz: int) -> npt.NDArray[np.float64]:
    """Return |H(f)|^2 of the BS.1770 K-weighting filter (its two biquads) at `freqs_hz`."""
    z = np.exp(-2j * np.pi * np.asarray(freqs_hz, dtype=np.float64) / sample_rate_hz)
    # High shelf (the head's effect), from the filter's analogue prototype by the bilinear transform.
    k = np.tan(np.pi * _K_SHELF_HZ / sample_rate_hz)
    vh = 10.0 ** (_K_SHELF_GAIN_DB / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / _K_SHELF_Q + k * k
    shelf = (
        (vh + vb * k / _K_SHELF_Q + k * k) + 2.0 * (k * k - vh) * z + (vh - vb * k / _K_SHELF_Q + k * k) * z * z
    ) / (a0 + 2.0 * (k * k - 1.0) * z + (1.0 - k / _K_SHELF_Q + k * k) * z * z)
    k = np.tan(np.pi * _K_HIGHPASS_HZ / sample_rate_hz)
    high = (1.0 - 2.0 * z + z * z) / (
        (1.0 + k / _K_HIGHPASS_Q + k * k) + 2.0 * (k * k - 1.0) * z + (1.0 - k / _K_HIGHPASS_Q + k * k) * z * z
    )
    return np.asarray(np.abs(shelf * high) ** 2, dtype=np.float64)


def loudness_lufs(samples: npt.ArrayLike, sample_rate_hz: int) -> float:
    """Return the gated loudness in LUFS (BS.1770, mono); SILENCE_DBFS when nothing passes the gates.

    Each block's K-weighted power is taken from its spectrum, which gives the
    filter's energy without running it sample by sample.
    """
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    block = max(1, round(LOUDNESS_BLOCK_S * sample_rate_hz))
    hop = max(1, round(LOUDNESS_HOP_S * sample_rate_hz))
    if x.size < block:
        block, hop = max(1, x.size), max(1, x.size)
    if x.size == 0:
        return SILENCE_DBFS
    starts = np.arange(0, x.size - block + 1, hop)
    frames = np.lib.stride_tricks.sliding_window_view(x, block)[starts]
    weight = k_weighting_power(np.fft.rfftfreq(block, 1.0 / sample_rate_hz), sample_rate_hz)
    spectrum = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    spectrum[:, 1 : (block + 1) // 2] *= 2.0  # the negative frequencies' half of the energy
    power = (spectrum * weight).sum(axis=1) / (block * block)
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10.0 * np.log10(power)
    kept = power[levels > _ABSOLUTE_GATE_LUFS]
    if kept.size == 0:
        return SILENCE_DBFS
    relative = -0.691 + 10.0 * np.log10(kept.mean()) - _RELATIVE_GATE_LU
    with np.errstate(divide="ignore"):
        kept = kept[-0.691 + 10.0 * np.log10(kept) > relative]
    return float(-0.691 + 10.0 * np.log10(kept.mean()))
