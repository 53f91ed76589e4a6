"""The microphone's own state during a session: whether it can be listened to, and its recording (`--record`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from voice_guide.outputs import PRIVATE_MODE, StreamedFile, write_failed
from voice_guide.sound.wavfile import to_pcm16, wav_writer


class MicHealth:
    """Watch the microphone all session: it goes unheard on digital silence or clipping, and comes back.

    Digital silence (exact zeros: a muted source, a closed noise gate) over a whole window
    makes it unheard; the first block with any sound in it brings it back at once.
    Clipping over a share of a window makes it unheard until a window without it.
    """

    # Judge over this much audio: long enough not to trip on one shout, or on a virtual
    # microphone (a sound server's monitor) that is exactly silent until someone talks.
    WINDOW_S = 10.0
    CLIPPED_SHARE = 0.05

    def __init__(self, sample_rate_hz: int) -> None:
        self.window = round(self.WINDOW_S * sample_rate_hz)
        self._start_window()
        self.problem: Literal["silent", "clipping"] | None = None

    def _start_window(self) -> None:
        """Begin a new judging window."""
        self.seen = self.clipped = 0  # frames
        self.sounded = False  # whether any sample in the window was not exactly zero

    def check(self, samples: npt.NDArray[np.float32]) -> bool:
        """Take mic samples (frames x channels); return True when `problem` has just changed."""
        peak = float(np.max(np.abs(samples), initial=0.0))
        if self.problem == "silent" and peak > 0.0:
            self.problem = None
            self._start_window()
            return True
        self.seen += samples.shape[0]
        # Whether anything at all sounded is all the silence test needs; frames are counted only
        # for clipping, and only when the block reaches full scale (a hundred blocks a second).
        self.sounded = self.sounded or peak > 0.0
        if peak >= 0.999:
            self.clipped += int(np.count_nonzero(np.any(np.abs(samples) >= 0.999, axis=1)))
        if self.seen < self.window:
            return False
        verdict: Literal["silent", "clipping"] | None = None
        if not self.sounded:
            verdict = "silent"
        elif self.clipped > self.CLIPPED_SHARE * self.seen:
            verdict = "clipping"
        self._start_window()
        changed = verdict != self.problem
        self.problem = verdict
        return changed

    def describe(self) -> str:
        """Return the current problem in words (for the screen)."""
        if self.problem == "silent":
            return "the microphone sends only silence (is it muted?)"
        if self.problem == "clipping":
            return "the microphone is clipping (turn its level down)"
        return "the microphone is heard again"


class MicRecorder:
    """Append microphone blocks to a private (0600) 16-bit WAV as they arrive; it appears at `path` on close."""

    def __init__(self, path: Path, sample_rate_hz: int, channels: int) -> None:
        self._file = StreamedFile(path, PRIVATE_MODE)
        self._wav = wav_writer(self._file.file, channels, sample_rate_hz)

    def write(self, samples: npt.NDArray[np.float32]) -> None:
        """Append frames x channels samples."""
        try:
            self._wav.writeframes(to_pcm16(samples.reshape(-1)))
        except OSError as exc:  # a full disk: one line, exit 1
            raise write_failed(self._file.path, exc) from None

    def close(self) -> None:
        """Finish the file and rename it into place (a session cut short keeps what was recorded)."""
        try:
            self._wav.close()
        except OSError:
            self._file.discard()
            raise
        self._file.commit()
