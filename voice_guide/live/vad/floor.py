"""The room's noise floor per band: the quietest level over the last few seconds, raised where the noise is babble.

Pure numpy. Every pause for breath pulls a minimum back down, so unlike a running mean
the floor cannot climb into a long answer. The minimum is kept as the minima of
sub-windows, so each frame costs a few element-wise minima, not a search of seconds.

Steady noise (a fan, hiss) barely dips under its mean, so its minimum plus a fixed bias
is its level. Babble (a television, other voices) dips far under its mean, and a minimum
there sits well under what the partner must rise above. `SpreadFloor` tells them apart by
how far a low percentile of the recent levels lies over their minimum, and there lifts
the floor to that percentile; the spread must be wide band, and while talk goes on it may rise only as
far as the minimum's floor may, so a long answer never becomes its percentile.
"""

from __future__ import annotations

import functools
from collections import deque

import numpy as np

from voice_guide.live.vad.frames import Power

_OVER = 10.0 ** (4.0 / 10.0)
"""4 dB over the babble floor: as loud as a frame must be to start talk (VadConfig.enter_db)."""
_MAX_OVER = 0.5
"""Babble has at most this share of the window that loud; a partner's words in it have more."""
_FLOOR_PARTS = 12
"""Sub-windows the floor's minimum is kept in."""


class MinimumFloor:
    """Track each band's quietest smoothed level over `window_s`, raised by the bias of a minimum."""

    def __init__(self, frame_s: float, window_s: float, bias_db: float) -> None:
        self._part_frames = max(1, round(window_s / _FLOOR_PARTS / frame_s))
        self._bias = 10.0 ** (bias_db / 10.0)
        self._parts: deque[Power] = deque(maxlen=_FLOOR_PARTS)
        self._part_min: Power | None = None
        self._part_count = 0
        # The minimum over the finished parts, kept so a frame costs one comparison, not one a part.
        self._parts_low: Power | None = None
        self.low: Power | None = None
        """The last minimum itself (mean-square, no bias)."""

    def update(self, smooth: Power) -> Power:
        """Take one frame's smoothed band levels; return the floors (mean-square, bias added)."""
        part = smooth if self._part_min is None else np.minimum(self._part_min, smooth)
        self._part_count += 1
        if self._part_count >= self._part_frames:
            self._parts.append(part)
            self._part_min, self._part_count = None, 0
            self._parts_low = functools.reduce(np.minimum, self._parts)
        else:
            self._part_min = part
        low = part if self._parts_low is None else np.minimum(part, self._parts_low)
        self.low = low
        floor: Power = low * self._bias
        return floor


class SpreadFloor:
    """Estimate each band's floor from how far a low percentile of its levels lies over its minimum.

    Keeps one smoothed level every few frames over `window_s`. Where the percentile
    `quantile` lies `spread_db` or more over the minimum in at least `min_bands` bands,
    and no more than half the window lies 4 dB over the result (babble stays mostly under
    its floor; a window holding the partner's words does not), the estimate is that
    percentile raised by `gain_db` (near babble's mean); a band short of the spread falls
    3 dB per dB missing, and with too few bands every band lies 30 dB under, so for steady
    noise it stays under the minimum's floor and changes nothing. No
    estimate until a whole window is heard: the percentile may be the partner's first words.
    """

    def __init__(
        self, frame_s: float, window_s: float, quantile: float, spread_db: float, gain_db: float, min_bands: int
    ) -> None:
        step = 5  # one level in five: the percentile of 3 s costs a sort of 60, not 300
        self._step = step
        self._size = max(4, round(window_s / frame_s / step))
        self._rank = int(quantile * (self._size - 1))
        self._spread = 10.0 ** (spread_db / 10.0)
        self._gain = 10.0 ** (gain_db / 10.0)
        self._min_bands = min_bands
        self._levels: Power | None = None
        self._stored = 0
        self._count = 0
        self._estimate: Power | None = None
        self.last_babble: Power | None = None
        """The last estimate that sounded like babble while no one was talking."""
        self._last_babble_at = 0

    @property
    def full(self) -> bool:
        """Return whether a whole window of levels has been heard."""
        return self._stored >= self._size

    @property
    def windows_heard(self) -> float:
        """Return how many windows of levels have been heard."""
        return self._stored / self._size

    def update(self, smooth: Power, low: Power, quiet: bool) -> Power | None:
        """Take one frame's smoothed band levels and their minimum (no bias); return the estimate (mean-square).

        `quiet` says no one is talking (no region open): an estimate that sounds like babble then is kept
        as `last_babble`, since it cannot be the partner's own words.
        """
        self._count += 1
        if self._count % self._step and self._levels is not None:
            return self._estimate
        if self._levels is None:
            self._levels = np.empty((self._size, smooth.size))
        self._levels[self._stored % self._size] = smooth
        self._stored += 1
        held = self._levels[: min(self._stored, self._size)]
        rank = min(self._rank, held.shape[0] - 1)
        level = np.partition(held, rank, axis=0)[rank]
        # The percentile raised by gain_db where it lies spread_db or more over the minimum; closer
        # than that, every dB less of spread lowers it 3 dB, so steady noise leaves it under the minimum's floor.
        short = np.clip(level / (low * self._spread), 0.1, 1.0)
        # Babble stays mostly under its own floor; a partner's words in the window rise far over it.
        over = np.mean(held > level * self._gain * _OVER, axis=0)
        spread_out = (short >= 1.0) & (over <= _MAX_OVER)
        babble = np.count_nonzero(spread_out) >= self._min_bands
        if not babble:
            # Babble is voices, wide band: one band's own flutter (a narrow low band of steady noise) is not it.
            short = np.full_like(short, 0.1)
        estimate: Power = level * self._gain * short**3
        # Until a whole window is heard the percentile may be the partner's first words: no estimate yet.
        self._estimate = estimate if self.full else None
        if babble and quiet and self.full:
            self.last_babble, self._last_babble_at = estimate, self._count
        return self._estimate

    def babble_within(self, frames: int) -> Power | None:
        """Return the last estimate heard as babble in a quiet moment, if it is at most `frames` old."""
        if self.last_babble is None or self._count - self._last_babble_at > frames:
            return None
        return self.last_babble
