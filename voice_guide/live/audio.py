"""Audio in and out behind one small protocol: real devices, WAV files, or nothing.

The session hands `exchange` one block of output at a time and gets back the
microphone blocks that have arrived, each stamped with the output frame at which
it was heard. Stamping input with the output clock keeps one timeline even when
input and output are different devices whose clocks drift apart.
Only `SoundDeviceIO` imports sounddevice, and only when it is built.
"""

from __future__ import annotations

import queue
import threading
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from voice_guide.errors import AudioDeviceError, UsageError
from voice_guide.sound.clips import resample
from voice_guide.sound.levels import Samples
from voice_guide.sound.wavfile import read_wav_channels, to_pcm16

MicSamples = npt.NDArray[np.float32]  # frames x channels
# Measure drift between two devices only over a stretch long enough to mean something.
DRIFT_AFTER_S = 10.0
# How many recent callbacks the output clock's time estimate is taken over (apart mode).
ZERO_WINDOW = 32


@dataclass(frozen=True)
class MicBlock:
    """Microphone samples heard while output frames [start_frame, start_frame + len) played."""

    start_frame: int
    samples: MicSamples


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


# ---------------------------------------------------------------- no audio


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
        self._frames = 0
        self._t0 = 0.0

    def start(self) -> None:
        """Open the output WAV."""
        if self.out_path is not None:
            self._writer = wave.open(str(self.out_path), "wb")  # noqa: SIM115 - closed in finish/abort
            self._writer.setnchannels(1)
            self._writer.setsampwidth(2)
            self._writer.setframerate(self.sample_rate_hz)
        self._t0 = time.monotonic()

    def exchange(self, block: Samples) -> list[MicBlock]:
        """Write `block`; return the mic samples for the same frames."""
        start = self._frames
        self._frames += len(block)
        if self._writer is not None:
            self._writer.writeframes(to_pcm16(block))
        if self.realtime:
            ahead_s = self._frames / self.sample_rate_hz - (time.monotonic() - self._t0)
            if ahead_s > 0:
                time.sleep(ahead_s)
        if self._mic is None:
            return []
        mic = self._mic[start : start + len(block)]
        if len(mic) < len(block):
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
        """Close the output WAV."""
        self.abort()

    def abort(self) -> None:
        """Close the output WAV (what was written stays valid)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


# ---------------------------------------------------------------- real devices


@dataclass(frozen=True)
class DeviceInfo:
    """One sound device as PortAudio lists it."""

    index: int
    name: str
    inputs: int
    outputs: int
    default_rate_hz: float
    is_default_input: bool
    is_default_output: bool


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio library itself is missing
        raise AudioDeviceError(
            f"cannot load the audio library: {exc}", "install it: sudo apt-get install libportaudio2"
        ) from None
    return sounddevice


def list_devices() -> list[DeviceInfo]:
    """Return the sound devices PortAudio sees (empty when there are none)."""
    sd = _sounddevice()
    try:
        found = sd.query_devices()
    except sd.PortAudioError:
        return []
    default_in, default_out = sd.default.device
    return [
        DeviceInfo(
            i,
            d["name"],
            d["max_input_channels"],
            d["max_output_channels"],
            d["default_samplerate"],
            i == default_in,
            i == default_out,
        )
        for i, d in enumerate(found)
    ]


def find_device(spec: str | None, kind: str, devices: Sequence[DeviceInfo]) -> DeviceInfo | None:
    """Pick a device by index or name substring (None: the default); raise UsageError if absent."""
    wanted = [d for d in devices if (d.inputs if kind == "input" else d.outputs) > 0]
    if spec is None:
        default = [d for d in wanted if (d.is_default_input if kind == "input" else d.is_default_output)]
        candidates = default or wanted
        return candidates[0] if candidates else None
    if spec.isdigit():
        match = [d for d in wanted if d.index == int(spec)]
    else:
        match = [d for d in wanted if spec.lower() in d.name.lower()]
    if not match:
        listing = "; ".join(f"{d.index}: {d.name}" for d in wanted) or "none"
        raise UsageError(f"--{kind}-device {spec}: no such {kind} device", f"{kind} devices: {listing}")
    return match[0]


class SoundDeviceIO:
    """Play and record through PortAudio; one duplex stream when input and output share a device.

    The callback only copies: queued output blocks out, microphone blocks in,
    each stamped with the output frame being played.
    """

    def __init__(
        self,
        output: DeviceInfo,
        input_: DeviceInfo | None,
        sample_rate_hz: int = 48_000,
        input_channels: int = 1,
        lead_s: float = 0.2,
        latency_s: float = 0.1,
    ) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.stats = IOStats()
        self.output = output
        self.input = input_
        self.input_channels = min(input_channels, input_.inputs) if input_ else 0
        self.latency_s = latency_s
        self._sd = _sounddevice()
        # Output is produced at most `lead_s` ahead of what is playing: enough to ride
        # out scheduling hiccups, little enough that pause and skip feel immediate.
        self._lead_frames = round(lead_s * sample_rate_hz)
        self._out: queue.Queue[Samples] = queue.Queue()
        self._queued = 0
        self._current: Samples = np.zeros(0, np.float32)
        self._played = 0
        self._in: queue.Queue[MicBlock] = queue.Queue()
        self._room = threading.Condition()
        self._draining = False
        self._streams: list[Any] = []
        self._running = False
        self._heard = 0
        # Apart mode: when output frame 0 reached (or would have reached) the speaker, in
        # time.monotonic() seconds. Each callback gives an estimate (its time plus the DAC
        # delay PortAudio reports, less the frames before it); a late callback only errs late,
        # so the earliest estimate among recent callbacks wins (recent: a stall restarts it).
        self._zero_s: float | None = None
        self._zero_window: list[float] = []

    # The audio thread: copy only.
    def _fill(self, outdata: Any, frames: int) -> int:
        stamp = self._played
        filled = 0
        while filled < frames:
            if len(self._current) == 0:
                try:
                    self._current = self._out.get_nowait()
                except queue.Empty:
                    break
            n = min(frames - filled, len(self._current))
            outdata[filled : filled + n, 0] = self._current[:n]
            self._current = self._current[n:]
            filled += n
        if filled < frames:
            outdata[filled:, 0] = 0.0
            if not self._draining:
                self.stats.underruns += 1
        with self._room:
            self._queued -= filled
            self._room.notify()
        self._played += frames
        return stamp

    def _stamp_time(self, time_info: Any) -> None:
        try:
            delay_s = float(time_info.outputBufferDacTime - time_info.currentTime)
        except (AttributeError, TypeError):
            delay_s = 0.0
        if not 0.0 <= delay_s < 2.0:  # some host APIs report nothing useful
            delay_s = self.latency_s
        estimate = time.monotonic() + delay_s - self._played / self.sample_rate_hz
        window = self._zero_window
        window.append(estimate)
        if len(window) > ZERO_WINDOW:
            del window[0]
        self._zero_s = min(window)

    def time_of_frame(self, frame: int) -> float | None:
        """Return the monotonic time in seconds at which output frame `frame` is heard; None before start."""
        zero = self._zero_s
        return None if zero is None else zero + frame / self.sample_rate_hz

    def frame_at_time(self, t_s: float) -> int | None:
        """Return the output frame heard at monotonic time `t_s` (nearest); None before start."""
        zero = self._zero_s
        return None if zero is None else round((t_s - zero) * self.sample_rate_hz)

    def _duplex_callback(self, indata: Any, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        self._count(status)
        self._stamp_time(time_info)
        stamp = self._fill(outdata, frames)
        self._in.put(MicBlock(stamp, indata[:, : self.input_channels].copy()))

    def _output_callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        self._count(status)
        self._stamp_time(time_info)
        self._fill(outdata, frames)

    def _input_callback(self, indata: Any, frames: int, _time: Any, status: Any) -> None:
        self._count(status)
        # A separate input device: stamp with the output clock now, so drift between
        # the two devices never accumulates on the session's timeline.
        self._in.put(MicBlock(max(0, self._played - frames), indata[:, : self.input_channels].copy()))
        self._heard += frames
        if self._played >= DRIFT_AFTER_S * self.sample_rate_hz:
            self.stats.drift_ppm = (self._heard / self._played - 1.0) * 1e6

    def _count(self, status: Any) -> None:
        if status.input_overflow:
            self.stats.overruns += 1
        if status.output_underflow and not self._draining:
            self.stats.underruns += 1

    def start(self) -> None:
        """Open the stream(s); they start once the first `lead_s` of output is queued."""
        sd = self._sd
        common = {"samplerate": self.sample_rate_hz, "dtype": "float32", "latency": self.latency_s}
        try:
            if self.input is not None and self.input.index == self.output.index:
                self._streams = [
                    sd.Stream(
                        device=(self.input.index, self.output.index),
                        channels=(self.input_channels, 1),
                        callback=self._duplex_callback,
                        **common,
                    )
                ]
            else:
                self._streams = [
                    sd.OutputStream(device=self.output.index, channels=1, callback=self._output_callback, **common)
                ]
                if self.input is not None:
                    self._streams.append(
                        sd.InputStream(
                            device=self.input.index,
                            channels=self.input_channels,
                            callback=self._input_callback,
                            **common,
                        )
                    )
        except (sd.PortAudioError, ValueError) as exc:
            self.abort()
            raise AudioDeviceError(
                f"cannot open the sound device '{self.output.name}': {exc}",
                "check 'voice-guide devices' and that nothing else holds the device",
            ) from None

    def exchange(self, block: Samples) -> list[MicBlock]:
        """Queue `block`, waiting while the lead is full; return the mic blocks that arrived."""
        with self._room:
            while self._running and self._queued >= self._lead_frames:
                if not self._room.wait(timeout=2.0) or not self._alive():
                    raise AudioDeviceError(
                        "the sound device stopped responding", "was it unplugged, or did the sound server stop?"
                    )
            self._queued += len(block)
        self._out.put(block.astype(np.float32, copy=False))
        if not self._running and self._queued >= self._lead_frames:
            self._start_streams()
        return self._drain_input()

    def _start_streams(self) -> None:
        # Starting on a primed queue means the device never begins with an underrun.
        self._running = True
        try:
            for stream in self._streams:
                stream.start()
        except self._sd.PortAudioError as exc:
            self.abort()
            raise AudioDeviceError(
                f"cannot start the sound device '{self.output.name}': {exc}", "check 'voice-guide devices'"
            ) from None

    def _alive(self) -> bool:
        return all(stream.active for stream in self._streams)

    def _drain_input(self) -> list[MicBlock]:
        blocks = []
        while True:
            try:
                blocks.append(self._in.get_nowait())
            except queue.Empty:
                return blocks

    @property
    def played_frames(self) -> int:
        """Return how many frames the device has taken so far."""
        return self._played

    def finish(self) -> None:
        """Wait until everything queued has played, then close."""
        if not self._running and self._streams:
            self._start_streams()  # a session shorter than the lead
        self._draining = True
        deadline = time.monotonic() + self._queued / self.sample_rate_hz + 2 * self.latency_s + 1.0
        with self._room:
            while self._queued > 0 and time.monotonic() < deadline:
                self._room.wait(timeout=0.1)
        time.sleep(self.latency_s)  # the device's own buffer
        self.abort()

    def abort(self) -> None:
        """Stop and close the stream(s) now."""
        self._draining = True
        for stream in self._streams:
            try:
                stream.stop()
                stream.close()
            except Exception:
                pass
        self._streams = []
