"""The joiner's view of the host's clock: an offset estimated from the fastest of a few ping round trips."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class HostClock:
    """Map the joiner's clock to the host's: host_s = local_s + offset_s."""

    offset_s: float
    rtt_s: float
    samples: int

    def to_local_s(self, host_time_s: float) -> float:
        """Return a host-clock time in seconds on the joiner's clock."""
        return host_time_s - self.offset_s

    def to_host_s(self, local_time_s: float) -> float:
        """Return a joiner-clock time in seconds on the host's clock."""
        return local_time_s + self.offset_s


def estimate_clock(samples: Sequence[tuple[float, float, float]]) -> HostClock:
    """Return the offset from the fastest round trip among (t0_s, host_s, t1_s) samples."""
    if not samples:
        raise ValueError("no clock samples")
    # The fastest round trip leaves the least room for one-way delays to differ.
    t0_s, host_s, t1_s = min(samples, key=lambda sample: sample[2] - sample[0])
    return HostClock(offset_s=host_s - (t0_s + t1_s) / 2, rtt_s=t1_s - t0_s, samples=len(samples))
