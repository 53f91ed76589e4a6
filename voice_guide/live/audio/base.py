"""What a session needs from audio (the AudioIO protocol) and what it gets back: mic blocks, counts, a lost device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from voice_guide.errors import AudioDeviceError
from voice_guide.sound.levels import Samples

MicSamples = npt.NDArray[np.float32]  # frames x channels


class DeviceLost(AudioDeviceError):
    """A stream stopped or failed mid-session (unplugged, sound server restarted, poll failure)."""


@dataclass(frozen=True)
class MicBlock:
    """Microphone samples heard while output frames [start_frame, start_frame + len) played."""

    start_frame: int
    samples: MicSamples
    # True when these samples are padding past the end of a --mic-file, not something heard.
    past_end: bool = False


@dataclass
class IOStats:
    """Counts the session reports: a healthy run has zero underruns and overruns."""

    underruns: int = 0
    overruns: int = 0
    # How far the input device's clock runs from the output's, in parts per million
    # (two devices only; None until measured). Mic blocks are stamped with the output
    # clock as they arrive, so this drift never accumulates on the session timeline.
    drift_ppm: float | None = None


class AudioIO(Protocol):
    """What a session needs from audio hardware (or its stand-in)."""

    sample_rate_hz: int
    input_channels: int  # 0 when there is no microphone
    stats: IOStats

    def start(self) -> None:
        """Open the devices or files."""
        ...

    def exchange(self, block: Samples) -> list[MicBlock]:
        """Queue `block` for output; return the microphone blocks that arrived meanwhile."""
        ...

    def finish(self) -> None:
        """Let queued output play out, then close."""
        ...

    def abort(self) -> None:
        """Close at once (Ctrl-C, errors)."""
        ...

    def drop_queued(self) -> None:
        """Forget output queued but not yet played, so the next block plays at once (the end of a quit)."""
        ...

    def reopen(self) -> bool:
        """After `exchange` raised DeviceLost: try once to open the device again; return True if it plays."""
        ...
