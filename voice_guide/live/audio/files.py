"""Audio without a device: nothing at all (NullIO), or WAV files for the microphone and the output (FileIO)."""

from __future__ import annotations

import contextlib
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voice_guide.live.audio.base import IOStats, MicBlock, MicSamples
from voice_guide.outputs import StreamedFile, write_failed
from voice_guide.sound.clips import resample
from voice_guide.sound.levels import Samples
from voice_guide.sound.wavfile import read_wav_channels, to_pcm16, wav_writer


@dataclass
class NullIO:
    """Plays nothing and hears nothing, as fast as the CPU goes (dry runs, tests)."""

    sample_rate_hz: int = 48_000
    input_channels: int = 0
    stats: IOStats = field(default_factory=IOStats)
    frames_out: int = 0

    def start(self) -> None:
        """Nothing to open."""

    def exchange(self, block: Samples) -> list[MicBlock]:
        """Count the frames and hear nothing."""
        self.frames_out += len(block)
        return []

    def finish(self) -> None:
        """Nothing to close."""

    def abort(self) -> None:
        """Nothing to close."""

    def drop_queued(self) -> None:
        """Nothing is queued."""

    def reopen(self) -> bool:
        """Nothing can be lost."""
        return True


# ---------------------------------------------------------------- files


class FileIO:
    """The microphone read from a WAV (silence after its end), the output written to a WAV.

    The mic file's first sample is what the microphone hears at the session's first
    output frame, so tests can place speech at known session times. Runs as fast
    as the CPU allows, or at the pace of real time with `realtime=True`.
    """

    def __init__(
        self, mic_path: Path | None, out_path: Path | None, sample_rate_hz: int = 48_000, realtime: bool = False
    ) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.stats = IOStats()
        self.realtime = realtime
        self.out_path = out_path
        self._mic: MicSamples | None = None
        if mic_path is not None:
            samples, rate = read_wav_channels(mic_path)
            if rate != sample_rate_hz:
                samples = np.stack(
                    [resample(samples[:, c], rate, sample_rate_hz) for c in range(samples.shape[1])], axis=1
                )
            self._mic = samples.astype(np.float32)
        self.input_channels = 0 if self._mic is None else self._mic.shape[1]
        self._writer: wave.Wave_write | None = None
        self._out_file: StreamedFile | None = None
        self._frames = 0
        self._t0 = 0.0

    def start(self) -> None:
        """Open the output WAV (a temp file beside it until `finish`)."""
        if self.out_path is not None:
            self._out_file = StreamedFile(self.out_path)
            self._writer = wav_writer(self._out_file.file, 1, self.sample_rate_hz)
        self._t0 = time.monotonic()

    def exchange(self, block: Samples) -> list[MicBlock]:
        """Write `block`; return the mic samples for the same frames."""
        start = self._frames
        self._frames += len(block)
        if self._writer is not None:
            try:
                self._writer.writeframes(to_pcm16(block))
            except OSError as exc:  # a full disk: one line, exit 1
                raise write_failed(self.out_path or Path("--out"), exc) from None
        if self.realtime:
            ahead_s = self._frames / self.sample_rate_hz - (time.monotonic() - self._t0)
            if ahead_s > 0:
                time.sleep(ahead_s)
        if self._mic is None:
            return []
        mic = self._mic[start : start + len(block)]
        if len(mic) < len(block):
            if start >= len(self._mic):
                return [MicBlock(start, np.zeros((len(block), self.input_channels), np.float32), past_end=True)]
            mic = np.concatenate([mic, np.zeros((len(block) - len(mic), self.input_channels), np.float32)])
        return [MicBlock(start, mic)]

    # Apart mode maps the shared timeline onto the output clock (realtime runs only mean much).
    def time_of_frame(self, frame: int) -> float | None:
        """Return the monotonic time in seconds at which output frame `frame` is written; None before start."""
        return self._t0 + frame / self.sample_rate_hz if self._t0 else None

    def frame_at_time(self, t_s: float) -> int | None:
        """Return the output frame written at monotonic time `t_s` (nearest); None before start."""
        return round((t_s - self._t0) * self.sample_rate_hz) if self._t0 else None

    def finish(self) -> None:
        """Complete the output WAV and rename it over the target."""
        writer, out = self._writer, self._out_file
        self._writer = self._out_file = None
        if writer is not None and out is not None:
            try:
                writer.close()
            except OSError:
                out.discard()
                raise
            out.commit()

    def abort(self) -> None:
        """Drop the unfinished output WAV: an old file at the target stays whole."""
        writer, out = self._writer, self._out_file
        self._writer = self._out_file = None
        if writer is not None:
            with contextlib.suppress(OSError):
                writer.close()
        if out is not None:
            out.discard()

    def drop_queued(self) -> None:
        """Every block is written as it comes: nothing waits."""

    def reopen(self) -> bool:
        """A file cannot be lost."""
        return True
