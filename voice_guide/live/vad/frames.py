"""The 10 ms decision frame: its length at a sample rate, frame levels, and blocks cut into whole frames.

Pure numpy. Both detectors count time in these frames inside and in seconds at the edges.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import numpy.typing as npt

from voice_guide.sound.levels import SILENCE_DBFS, Samples

FRAME_S = 0.01
"""Nominal length of one decision frame in seconds."""

Decisions = npt.NDArray[np.bool_]
Levels = npt.NDArray[np.float32]
Power = npt.NDArray[np.float64]
IgnoreMask = bool | npt.NDArray[np.bool_]

SILENT_POWER = 10.0 ** (SILENCE_DBFS / 10.0)
"""Mean-square floor matching SILENCE_DBFS, so log10 never sees zero."""


def frame_length(sample_rate_hz: int) -> int:
    """Return the number of samples in one 10 ms frame at `sample_rate_hz`."""
    if sample_rate_hz < 1000:
        raise ValueError(f"sample rate must be at least 1000 Hz, got {sample_rate_hz}")
    return round(sample_rate_hz * FRAME_S)


def frame_levels_dbfs(samples: Samples, sample_rate_hz: int) -> Levels:
    """Return the RMS level in dBFS of every complete 10 ms frame (a trailing partial frame is left out)."""
    frames = whole_frames(np.asarray(samples, dtype=np.float32).reshape(-1), frame_length(sample_rate_hz))
    power = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / frames.shape[1]
    return power_to_db(power)


def whole_frames(x: Samples, frame_len: int) -> npt.NDArray[np.float32]:
    """Return `x` as (n, frame_len) frames, a trailing partial frame left out (a view, not a copy)."""
    n = x.size // frame_len
    return x[: n * frame_len].reshape(n, frame_len)


def power_to_db(power: Power) -> Levels:
    """Return mean-square powers as dBFS, SILENCE_DBFS at the least."""
    db: Levels = (10.0 * np.log10(np.maximum(power, SILENT_POWER))).astype(np.float32)
    return db


class Framer:
    """Cut pushed blocks into whole frames, carrying a partial frame and its ignore flag over."""

    def __init__(self, frame_len: int) -> None:
        self.frame_len = frame_len
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_ignored = False

    def split(self, samples: Samples, ignore: IgnoreMask) -> tuple[npt.NDArray[np.float32], list[bool]]:
        """Return the frames completed by `samples` (n, frame_len) and whether each holds an ignored sample."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        size = self.frame_len
        if isinstance(ignore, bool | np.bool_):
            flag = bool(ignore)
            if not self._pending.size and x.size % size == 0:
                # The common case (blocks of whole frames) without copying.
                return x.reshape(-1, size), [flag] * (x.size // size)
            buf = np.concatenate((self._pending, x))
            n = buf.size // size
            # Only the first completed frame holds samples pushed before.
            ignored = [flag or self._pending_ignored] + [flag] * (n - 1) if n else []
            if buf.size > n * size:
                self._pending_ignored = flag or (self._pending_ignored and n == 0)
        else:
            flags = np.asarray(ignore, dtype=np.bool_).reshape(-1)
            if flags.size != x.size:
                raise ValueError(f"ignore mask has {flags.size} entries for {x.size} samples")
            buf = np.concatenate((self._pending, x))
            marks = np.concatenate((np.full(self._pending.size, self._pending_ignored), flags))
            n = buf.size // size
            ignored = cast(list[bool], marks[: n * size].reshape(n, size).any(axis=1).tolist())
            self._pending_ignored = bool(marks[n * size :].any())
        self._pending = buf[n * size :]
        if not self._pending.size:
            self._pending_ignored = False
        return buf[: n * size].reshape(n, size), ignored
