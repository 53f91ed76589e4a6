"""The room's noise floor per band, by minimum statistics: the quietest level over the last few seconds.

Pure numpy. Every pause for breath pulls a minimum back down, so unlike a running mean
the floor cannot climb into a long answer. The minimum is kept as the minima of
sub-windows, so each frame costs a few element-wise minima, not a search of seconds.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from voice_guide.live.vad.frames import Power

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

    def update(self, smooth: Power) -> Power:
        """Take one frame's smoothed band levels; return the floors (mean-square, bias added)."""
        part = smooth if self._part_min is None else np.minimum(self._part_min, smooth)
        self._part_count += 1
        if self._part_count >= self._part_frames:
            self._parts.append(part)
            self._part_min, self._part_count = None, 0
        else:
            self._part_min = part
        low = part
        for old in self._parts:
            low = np.minimum(low, old)
        floor: Power = low * self._bias
        return floor
