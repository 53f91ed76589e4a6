"""Real sound devices through PortAudio (sounddevice, imported when first needed): listing, choosing, and
SoundDeviceIO, which plays and records with time limits on every call that can hang."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from voice_guide.errors import AudioDeviceError, UsageError
from voice_guide.live.audio.base import DeviceLost, IOStats, MicBlock
from voice_guide.sound.levels import Samples

log = logging.getLogger(__name__)

# Measure drift between two devices only over a stretch long enough to mean something.
DRIFT_AFTER_S = 10.0
# How many seconds of recent writes the output clock's time estimate is taken over (apart
# mode). The sound server reports room in steps, so most writes see the buffer fuller than
# it is and only a few land just after a step; 3 s at 25 writes a second holds some.
ZERO_WINDOW_S = 3.0
# For this long after a start or a run dry the pump wakes four times as often, so the
# estimate is good from the first cue.
DENSE_S = 1.5
# Stopping a stream can hang for good inside PortAudio when the sound server dies under
# it; stop and close get this long in a helper thread, then the stream is abandoned, so
# neither a lost device nor Ctrl-C can leave the session stuck.
CLOSE_TIMEOUT_S = 0.5
# How long `exchange` waits for the device to take output before calling it lost.
STALL_S = 2.0
# Opening or starting a stream normally takes milliseconds; longer means the server hangs.
OPEN_TIMEOUT_S = 3.0
# The pump thread moves audio in multiples of this.
BLOCK_S = 0.01
# How long it sleeps between wakes at most: each wake costs CPU (the calls into the stream,
# 0.2-0.3 ms in all), and the device's buffer (about 0.13 s on the pulse plugin), topped up
# at each, still has 90 ms to spare.
PUMP_IDLE_S = 0.04
# Its real-time priority where allowed (1-99; low: it needs to come before ordinary work only).
AUDIO_PRIORITY = 10
# A duplex capture whose frame count falls this far behind the output clock has lost frames.
MIC_LOST_S = 0.25


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


def _prefer_this_thread() -> None:
    """Ask for real-time scheduling for the calling thread, as PortAudio does for its own audio thread.

    On a loaded machine a plain thread can wait longer than the device's buffer lasts;
    where the system does not allow it (most user accounts), the thread simply stays as it was.
    """
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(AUDIO_PRIORITY))


def _bounded(work: Callable[[], object], timeout_s: float) -> bool:
    """Run `work` in a daemon thread; return False if it was still running after `timeout_s`.

    PortAudio calls can block for good when the sound server dies under them; the
    main thread only waits (interruptibly, so Ctrl-C still works), never blocks in them.
    """
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name="audio-call", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        return False
    if failure:
        raise failure[0]
    return True


class SoundDeviceIO:
    """Play and record through PortAudio; one duplex stream when input and output share a device.

    The streams run in PortAudio's blocking mode, driven by one pump thread of ours that
    only copies: queued output blocks to the device as it has room, microphone blocks in,
    each stamped with the output frame it belongs to. It sleeps while the device is busy and
    never waits inside PortAudio, whose ALSA poll loop can spin a whole core on the pulse
    plugin (see the README's performance notes). A stream that stops or fails makes
    `exchange` raise DeviceLost; `reopen` then tries the same device, then the default.
    """

    def __init__(
        self,
        output: DeviceInfo,
        input_: DeviceInfo | None,
        sample_rate_hz: int = 48_000,
        input_channels: int = 1,
        lead_s: float = 0.2,
        latency_s: float = 0.1,
        block_s: float = BLOCK_S,
    ) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.stats = IOStats()
        self.output = output
        self.input = input_
        self.input_channels = min(input_channels, input_.inputs) if input_ else 0
        self.latency_s = latency_s
        self._block_frames = round(block_s * sample_rate_hz)
        self._sd = _sounddevice()
        # Output is produced at most `lead_s` ahead of what is playing: enough to ride
        # out scheduling hiccups, little enough that pause and skip feel immediate.
        self._lead_frames = round(lead_s * sample_rate_hz)
        self._out: queue.Queue[Samples] = queue.Queue()
        self._queued = 0
        self._current: Samples = np.zeros(0, np.float32)
        self._played = 0
        self._handed = 0
        self._in: queue.Queue[MicBlock] = queue.Queue()
        self._room = threading.Condition()
        self._draining = False
        self._streams: list[Any] = []
        self._running = False
        self._heard = 0
        # Duplex: input frames are stamped in step with output from this output frame on.
        self._heard_base = 0
        # Each opening of the device gets a number; a pump thread of an older, abandoned
        # stream (stuck in PortAudio, then woken) must not touch this one's queues.
        self._generation = 0
        self._pump_thread: threading.Thread | None = None
        self._pump_failed: str | None = None
        # How much the device's output buffer holds when full (the pump measures it).
        self._buffer_s = latency_s
        self._abandoned = False
        # Apart mode: when output frame 0 reached (or would have reached) the speaker, in
        # time.monotonic() seconds. Each write gives an estimate (its time plus what the
        # device still holds, less the frames before it); a late one only errs late,
        # so the earliest estimate among recent writes wins (recent: a stall restarts it).
        self._zero_s: float | None = None
        self._zero_window: deque[tuple[float, float]] = deque()

    # ---------------------------------------------------------------- the pump thread

    def _take(self, frames: int) -> tuple[Samples, int]:
        """Return up to `frames` of queued output (padded with silence) and how many were queued."""
        buf = np.zeros((frames, 1), np.float32)
        filled = 0
        while filled < frames:
            if len(self._current) == 0:
                try:
                    self._current = self._out.get_nowait()
                except queue.Empty:
                    break
            n = min(frames - filled, len(self._current))
            buf[filled : filled + n, 0] = self._current[:n]
            self._current = self._current[n:]
            filled += n
        return buf, filled

    def _pump(self, generation: int, out_stream: Any, in_stream: Any | None, duplex: bool) -> None:
        """Move audio between the queues and the device until told to stop or the device fails."""
        block = self._block_frames
        rate = self.sample_rate_hz
        latency = out_stream.latency
        out_latency_s = latency[1] if isinstance(latency, tuple) else latency
        # What the device's output buffer holds when full; what it holds now is this less its room.
        capacity = max(out_stream.write_available, round(out_latency_s * rate), 2 * block)
        # Each wake tops the buffer up; asleep, it still lasts two thirds of itself.
        idle_s = min(PUMP_IDLE_S, capacity / rate / 3)
        self._buffer_s = capacity / rate
        _prefer_this_thread()
        # Wake often until the time estimate has a few good writes in it (apart mode's first cues).
        dense_until = time.monotonic() + DENSE_S
        try:
            while generation == self._generation:
                # Every call into the stream costs 50-130 us on the pulse plugin, so each is made once a wake.
                room = out_stream.write_available
                held = max(0, capacity - room)
                if in_stream is not None:
                    ready = in_stream.read_available
                    if ready >= block:
                        data, overflowed = in_stream.read(ready)
                        if generation != self._generation:
                            return
                        if overflowed:
                            self.stats.overruns += 1
                        self._heard_block(data, ready, duplex, self._played - held)
                with self._room:
                    queued = self._queued
                if queued >= block:
                    frames = min(room, queued) // block * block
                elif held < 2 * block:
                    frames = block  # nearly dry: what is queued, padded with silence
                else:
                    frames = 0
                if frames:
                    buf, filled = self._take(frames)
                    underflowed = out_stream.write(buf)
                    if generation != self._generation:
                        return
                    if (underflowed or filled < frames) and not self._draining:
                        self.stats.underruns += 1
                    if underflowed:
                        self._zero_window.clear()  # the device ran dry: from here on, frames play later
                        dense_until = time.monotonic() + DENSE_S
                    with self._room:
                        self._queued -= filled
                        self._played += frames
                        self._room.notify()
                    self._note_time(time.monotonic() + (held + frames) / rate)
                short = frames < room // 2 or time.monotonic() < dense_until
                time.sleep(idle_s / 4 if short else idle_s)
        except Exception as exc:  # PortAudioError and friends: the device is gone
            if generation == self._generation:
                self._pump_failed = str(exc) or type(exc).__name__
                with self._room:
                    self._room.notify()

    def _heard_block(self, data: Any, frames: int, duplex: bool, sounding: int) -> None:
        """Queue a microphone block read just now, while output frame `sounding` played.

        One device, one clock: a duplex stream's input frame n was heard as output frame
        n played, counted from the start. Counting goes wrong when the capture loses frames
        (it overflowed while this thread waited for the CPU), so a count more than MIC_LOST_S
        behind the output clock is moved up to it: the session then sees a gap, not a
        shifted timeline. A separate input device is stamped with the output clock
        directly, so drift between the two devices never accumulates.
        """
        samples = np.asarray(data[:, : self.input_channels], dtype=np.float32).copy()
        by_clock = max(0, sounding - frames)
        if duplex:
            stamp = self._heard_base + self._heard
            lost = by_clock - stamp
            if lost > MIC_LOST_S * self.sample_rate_hz:
                log.info("the microphone lost %.2f s of capture; its timeline moved up", lost / self.sample_rate_hz)
                self._heard_base += lost
                stamp = by_clock
        else:
            stamp = by_clock
        self._heard += frames
        self._in.put(MicBlock(stamp, samples))
        if not duplex and self._played >= DRIFT_AFTER_S * self.sample_rate_hz:
            self.stats.drift_ppm = (self._heard / max(1, self._played - self._heard_base) - 1.0) * 1e6

    def _note_time(self, heard_at_s: float) -> None:
        """Take the time at which the last frame written so far will be heard."""
        estimate = heard_at_s - self._played / self.sample_rate_hz
        window = self._zero_window
        window.append((heard_at_s, estimate))
        while heard_at_s - window[0][0] > ZERO_WINDOW_S:
            window.popleft()
        self._zero_s = min(e for _, e in window)

    def time_of_frame(self, frame: int) -> float | None:
        """Return the monotonic time in seconds at which output frame `frame` is heard; None before start."""
        zero = self._zero_s
        return None if zero is None else zero + frame / self.sample_rate_hz

    def frame_at_time(self, t_s: float) -> int | None:
        """Return the output frame heard at monotonic time `t_s` (nearest); None before start."""
        zero = self._zero_s
        return None if zero is None else round((t_s - zero) * self.sample_rate_hz)

    # ---------------------------------------------------------------- opening and closing

    def start(self) -> None:
        """Open the stream(s); they start once the first `lead_s` of output is queued."""
        try:
            self._open(self.output, self.input)
        except (self._sd.PortAudioError, ValueError, DeviceLost) as exc:
            self.abort()
            raise AudioDeviceError(
                f"cannot open the sound device '{self.output.name}': {exc}",
                "check 'voice-guide devices' and that nothing else holds the device",
            ) from None

    def _open(self, output: DeviceInfo, input_: DeviceInfo | None) -> None:
        """Build the stream(s) for these devices (not started); raise PortAudioError or ValueError."""
        sd = self._sd
        # Blocking mode (no callback): the pump thread moves the audio.
        common = {"samplerate": self.sample_rate_hz, "dtype": "float32", "latency": self.latency_s}
        built: list[Any] = []

        def build() -> None:
            if input_ is not None and input_.index == output.index:
                built.append(
                    sd.Stream(device=(input_.index, output.index), channels=(self.input_channels, 1), **common)
                )
                return
            built.append(sd.OutputStream(device=output.index, channels=1, **common))
            if input_ is not None:
                built.append(sd.InputStream(device=input_.index, channels=self.input_channels, **common))

        try:
            done = _bounded(build, OPEN_TIMEOUT_S)
        finally:
            self._streams = built
        if not done:
            self._close_streams()
            raise DeviceLost(f"opening '{output.name}' did not finish within {OPEN_TIMEOUT_S:.0f} s")

    def exchange(self, block: Samples) -> list[MicBlock]:
        """Queue `block`, waiting while the lead is full; return the mic blocks that arrived.

        Raise DeviceLost when the device stops taking output (see `reopen`).
        """
        with self._room:
            while self._running and self._queued >= self._lead_frames:
                if not self._room.wait(timeout=STALL_S) or not self._alive():
                    raise DeviceLost(
                        "the sound device stopped responding", "was it unplugged, or did the sound server stop?"
                    )
            self._queued += len(block)
        self._handed += len(block)
        self._out.put(block.astype(np.float32, copy=False))
        if not self._running and self._queued >= self._lead_frames:
            self._start_streams()
        return self._drain_input()

    def _start_streams(self) -> None:
        # Starting on a primed queue means the device never begins with an underrun.
        self._running = True
        streams = list(self._streams)

        def start() -> None:
            for stream in streams:
                stream.start()

        try:
            done = _bounded(start, OPEN_TIMEOUT_S)
        except self._sd.PortAudioError as exc:
            raise DeviceLost(
                f"cannot start the sound device '{self.output.name}': {exc}", "check 'voice-guide devices'"
            ) from None
        if not done:
            raise DeviceLost(f"starting '{self.output.name}' did not finish within {OPEN_TIMEOUT_S:.0f} s")
        duplex = len(streams) == 1 and isinstance(streams[0], self._sd.Stream)
        out_stream = streams[0]
        in_stream = streams[0] if duplex else (streams[1] if len(streams) > 1 else None)
        self._heard_base, self._heard = self._played, 0
        self._pump_failed = None
        self._generation += 1
        self._pump_thread = threading.Thread(
            target=self._pump, args=(self._generation, out_stream, in_stream, duplex), name="audio-pump", daemon=True
        )
        self._pump_thread.start()

    def _alive(self) -> bool:
        thread = self._pump_thread
        return self._pump_failed is None and thread is not None and thread.is_alive()

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

    def reopen(self) -> bool:
        """Close what is left of the lost stream(s); try once to open the same device, then the default.

        Returns True when a device is open again; output queued for the lost one is dropped,
        and the frames handed out so far count as played, so the timeline goes on unbroken.
        """
        self._close_streams()
        with self._room:
            self._out = queue.Queue()
            self._current = np.zeros(0, np.float32)
            self._queued = 0
            self._played = self._handed
            self._draining = False
        self._zero_window.clear()
        for output, input_ in self._candidates():
            try:
                self._open(output, input_)
            except (self._sd.PortAudioError, ValueError, DeviceLost) as exc:
                log.info("reopening %s failed: %s", output.name, exc)
                self._close_streams()
                continue
            if (output.name, input_ and input_.name) != (self.output.name, self.input and self.input.name):
                log.info("now playing on %s", output.name)
            self.output, self.input = output, input_
            return True
        return False

    def _candidates(self) -> list[tuple[DeviceInfo, DeviceInfo | None]]:
        """Return (output, input) pairs to try: the same devices by name first, then the defaults."""
        if not self._abandoned:
            # A replugged USB headset gets a new ALSA card: PortAudio must list devices again.
            # Never with a stream left stuck inside it: terminating would wait on that stream.
            sd = self._sd

            def relist() -> None:
                sd._terminate()
                sd._initialize()

            try:
                if not _bounded(relist, OPEN_TIMEOUT_S):
                    self._abandon("listing sound devices")
            except sd.PortAudioError as exc:
                log.info("cannot list sound devices: %s", exc)
                return []
        devices = list_devices()

        def by_name(old: DeviceInfo | None, kind: str) -> DeviceInfo | None:
            if old is None:
                return None
            same = [d for d in devices if d.name == old.name and (d.inputs if kind == "input" else d.outputs)]
            return same[0] if same else None

        pairs: list[tuple[DeviceInfo, DeviceInfo | None]] = []
        same_out = by_name(self.output, "output")
        same_in = by_name(self.input, "input")
        if same_out is not None and (self.input is None or same_in is not None):
            pairs.append((same_out, same_in))
        default_out = find_device(None, "output", devices)
        default_in = None if self.input is None else find_device(None, "input", devices)
        if default_out is not None and (self.input is None or default_in is not None):
            pair = (default_out, default_in)
            if not pairs or (pair[0].index, pair[1] and pair[1].index) != (
                pairs[0][0].index,
                pairs[0][1] and pairs[0][1].index,
            ):
                pairs.append(pair)
        return pairs

    def finish(self) -> None:
        """Wait until everything queued has played, then close."""
        if not self._running and self._streams:
            self._start_streams()  # a session shorter than the lead
        self._draining = True
        deadline = time.monotonic() + self._queued / self.sample_rate_hz + 2 * self.latency_s + 1.0
        with self._room:
            while self._queued > 0 and time.monotonic() < deadline and self._alive():
                self._room.wait(timeout=0.1)
        time.sleep(max(self.latency_s, self._buffer_s))  # the device's own buffer
        self.abort()

    def drop_queued(self) -> None:
        """Forget the output queued ahead of the device (up to `lead_s`), so the next block plays at once.

        Only for the end of a session: frames dropped are never played, so the output frame
        count no longer matches the device's clock afterwards.
        """
        with self._room:
            while True:
                try:
                    block = self._out.get_nowait()
                except queue.Empty:
                    break
                # The pump may take a block meanwhile; each side subtracts only what it took.
                self._queued -= len(block)
            self._room.notify()

    def abort(self) -> None:
        """Stop and close the stream(s) now, waiting at most CLOSE_TIMEOUT_S."""
        self._draining = True
        self._close_streams()

    def _close_streams(self) -> None:
        streams, self._streams = self._streams, []
        self._running = False
        self._generation += 1  # tells the pump thread to stop
        thread, self._pump_thread = self._pump_thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(CLOSE_TIMEOUT_S)
            if thread.is_alive():
                self._abandon("the audio pump")
        if not streams:
            return

        def close() -> None:
            for stream in streams:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)

        try:
            if not _bounded(close, CLOSE_TIMEOUT_S):
                self._abandon("closing the sound device")
        except Exception as exc:  # a failing close of a lost device changes nothing
            log.debug("closing the sound device: %s", exc)

    def _abandon(self, doing: str) -> None:
        """Leave a PortAudio call stuck in its helper thread; keep PortAudio from waiting on it at exit."""
        log.info("%s did not finish within its time; left it behind", doing)
        if not self._abandoned:
            self._abandoned = True
            atexit.unregister(self._sd._exit_handler)
