"""Decide, 10 ms frame by 10 ms frame, whether someone is talking; spot a double hand clap.

Pure numpy: no device, no file, no clock. Callers push microphone blocks of any size
and get one decision per completed frame; the same detectors serve live turns and
offline analysis, and any split of the input into blocks gives identical decisions.

A frame is `frame_length(rate)` samples (10 ms rounded to whole samples). Inside this
module time is counted in those frames; at the edges it is in seconds.

How `VoiceDetector` decides, on a "band level" of each frame: its power less the DFT
bins under 150 Hz (rumble, traffic, mains hum) and, at 32 kHz sample rates and up,
after a [1 2 1] smoother that takes the top octave of hiss down (-6 dB at 12 kHz
for 48 kHz audio). Computed from a few dot products, it costs less than an FFT.
1. A noise floor: the quietest 40 ms seen during the first `calibration_s`; afterwards
   it follows quieter stretches down within ~50 ms and creeps up at most 1 dB/s through
   frames that are not speech. A background that holds its level for `steady_s` (a fan
   switched on) becomes the floor at once: speech never holds its level that evenly.
2. Speech starts once `start_s` worth of single frames stand `enter_db` above the floor
   (a click is too short) and carries on while the 40 ms mean level stays `exit_db`
   above it (hysteresis); in a rough background both margins widen so that the exit
   margin is `exit_sigmas` standard deviations of the background around the floor.
3. Speech ends after `hangover_s` under the exit threshold, so breaths and the gaps
   between words do not end it. A region runs from the first frame of its rise to
   its last voiced frame: the hangover delays the decision but is not counted as talk.
4. Frames marked as ignored (the guide's own voice in speakers mode, plus
   `ignore_tail_s` of room echo) are reported as silence and change nothing.

`ClapDetector` looks for two sharp, broadband, quickly decaying bursts with silence
around and between them; see `ClapConfig`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from voice_guide.sound.levels import SILENCE_DBFS, Samples

FRAME_S = 0.01
"""Nominal length of one decision frame in seconds."""

Decisions = npt.NDArray[np.bool_]
Levels = npt.NDArray[np.float32]
Power = npt.NDArray[np.float64]
IgnoreMask = bool | npt.NDArray[np.bool_]

# Mean-square floor matching SILENCE_DBFS, so log10 never sees zero.
_SILENT_POWER = 10.0 ** (SILENCE_DBFS / 10.0)
# Starting guess of the background's mean squared distance from the floor (dB^2), and
# how slowly that estimate follows the room.
_START_SPREAD_DB2 = 1.0
_SPREAD_TIME_S = 2.0


def frame_length(sample_rate_hz: int) -> int:
    """Return the number of samples in one 10 ms frame at `sample_rate_hz`."""
    if sample_rate_hz < 1000:
        raise ValueError(f"sample rate must be at least 1000 Hz, got {sample_rate_hz}")
    return round(sample_rate_hz * FRAME_S)


def frame_levels_dbfs(samples: Samples, sample_rate_hz: int) -> Levels:
    """Return the RMS level in dBFS of every complete 10 ms frame (a trailing partial frame is left out)."""
    frames = _frames(np.asarray(samples, dtype=np.float32).reshape(-1), frame_length(sample_rate_hz))
    power = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / frames.shape[1]
    return _power_to_db(power)


def _frames(x: Samples, frame_len: int) -> npt.NDArray[np.float32]:
    n = x.size // frame_len
    return x[: n * frame_len].reshape(n, frame_len)


def _power_to_db(power: Power) -> Levels:
    db: Levels = (10.0 * np.log10(np.maximum(power, _SILENT_POWER))).astype(np.float32)
    return db


class _Framer:
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


@dataclass(frozen=True)
class VadConfig:
    """Tuning of `VoiceDetector`; levels in dB, durations in seconds."""

    enter_db: float = 7.0
    """Single-frame level above the noise floor that counts towards starting speech."""
    exit_db: float = 2.0
    """40 ms mean level above the noise floor that keeps speech going (below `enter_db`)."""
    exit_sigmas: float = 2.5
    """In a rough background the margins widen so the exit one is this many of its standard deviations."""
    min_speech_dbfs: float = -62.0
    """Nothing quieter than this band level is speech, however quiet the room (digital silence)."""
    start_s: float = 0.03
    """Loud time needed to start speech; clicks and taps are shorter."""
    hangover_s: float = 0.3
    """Time under the exit threshold before speech ends; bridges breaths and gaps between words."""
    smooth_s: float = 0.04
    """Averaging time of the level that keeps speech going and that the floor follows."""
    calibration_s: float = 1.0
    """Opening stretch (ignored frames not counted) whose quietest moment sets the first floor."""
    floor_fall_s: float = 0.05
    """Time constant with which the floor follows quieter frames down."""
    floor_rise_db_per_s: float = 1.0
    """How fast the floor may creep up through frames that are not speech."""
    steady_s: float = 1.5
    """A background whose level holds this long (spread under `steady_spread_db`) becomes the floor."""
    steady_spread_db: float = 2.0
    """Standard deviation of 40 ms levels under which a stretch counts as steady."""
    ignore_tail_s: float = 0.15
    """Extra time ignored after ignored samples, for the room's echo of the guide's voice."""
    band_low_hz: float = 150.0
    """Sound under this is left out of the level (rumble, traffic, mains hum); whole 100 Hz DFT bins."""

    def __post_init__(self) -> None:
        if not self.exit_db < self.enter_db:
            raise ValueError(f"exit_db ({self.exit_db}) must be below enter_db ({self.enter_db})")
        if not 0.0 <= self.band_low_hz <= 1000.0:
            raise ValueError(f"band_low_hz must lie in 0-1000 Hz, got {self.band_low_hz}")
        if min(self.start_s, self.hangover_s, self.smooth_s, self.calibration_s, self.steady_s) <= 0.0:
            raise ValueError("start_s, hangover_s, smooth_s, calibration_s and steady_s must be positive")


@dataclass(frozen=True)
class Segment:
    """One stretch of speech, in seconds from the start of the signal."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        """Return the length of the segment in seconds."""
        return self.end_s - self.start_s


class VoiceDetector:
    """Stream microphone samples in; get one speech decision per completed 10 ms frame."""

    def __init__(self, sample_rate_hz: int, config: VadConfig | None = None) -> None:
        cfg = config if config is not None else VadConfig()
        self.config = cfg
        self.sample_rate_hz = sample_rate_hz
        self.frame_len = frame_length(sample_rate_hz)
        self.frame_s = self.frame_len / sample_rate_hz
        self._start_frames = self._frames_of(cfg.start_s)
        self._hang_frames = self._frames_of(cfg.hangover_s)
        self._calib_frames = self._frames_of(cfg.calibration_s)
        self._tail_frames = round(cfg.ignore_tail_s / self.frame_s)
        self._steady_frames = self._frames_of(cfg.steady_s)
        self._smooth_frames = self._frames_of(cfg.smooth_s)
        self._fall = 1.0 - math.exp(-self.frame_s / cfg.floor_fall_s) if cfg.floor_fall_s > 0 else 1.0
        self._rise = cfg.floor_rise_db_per_s * self.frame_s
        self._spread_coef = 1.0 - math.exp(-self.frame_s / _SPREAD_TIME_S)
        # DC and the DFT bins of a frame under band_low_hz (100 Hz apart), as cos/sin rows.
        bins = max(1, math.ceil(cfg.band_low_hz * self.frame_s - 1e-9))
        t = 2.0 * np.pi * np.arange(self.frame_len) / self.frame_len
        # Parseval: the bins' share of the frame's energy is (DC^2 + 2 |X_k|^2) / N.
        rows = [np.ones(self.frame_len)]
        for k in range(1, bins):
            rows += [math.sqrt(2.0) * np.cos(k * t), math.sqrt(2.0) * np.sin(k * t)]
        self._low = np.asarray(rows, dtype=np.float32) / np.float32(math.sqrt(self.frame_len))
        # The hiss smoother's tap spacing: its null sits at 24 kHz or above, and below
        # 32 kHz sample rates it would eat into speech, so it is left out there.
        self._lag = round(sample_rate_hz / 48000.0)

        self._framer = _Framer(self.frame_len)
        self._recent: list[float] = []
        self._frame = 0
        self._counted = 0
        self._floor = math.inf
        self._spread = _START_SPREAD_DB2
        self._margin = max(cfg.exit_db, cfg.exit_sigmas * math.sqrt(_START_SPREAD_DB2))
        self._speaking = False
        self._hang = 0
        self._tail = 0
        self._streak = 0
        self._loud = 0
        self._streak_start = 0
        self._region_start = 0
        self._last_voiced = -1
        self._regions: list[tuple[int, int]] = []
        self._window: deque[float] = deque()
        self._win_sum = 0.0
        self._win_sq = 0.0

    def _frames_of(self, seconds: float) -> int:
        return max(1, round(seconds / self.frame_s))

    @property
    def frames_done(self) -> int:
        """Return how many 10 ms frames have been decided so far."""
        return self._frame

    @property
    def noise_floor_dbfs(self) -> float:
        """Return the current noise floor (band level, dBFS); SILENCE_DBFS before the first frame."""
        return self._floor if math.isfinite(self._floor) else SILENCE_DBFS

    @property
    def in_speech(self) -> bool:
        """Return whether the last decided frame was speech."""
        return self._speaking

    @property
    def speech_start_frame(self) -> int | None:
        """Return the frame where the current (or last) speech region began, back-dated to the start of its rise."""
        return self._region_start if self._last_voiced >= 0 else None

    @property
    def last_voiced_frame(self) -> int:
        """Return the last frame (counted from the first) loud enough to keep speech going; -1 if none yet."""
        return self._last_voiced

    def regions(self) -> list[tuple[int, int]]:
        """Return every speech region so far as (start, end) frames, end exclusive; the hangover is not included."""
        done = list(self._regions)
        if self._speaking:
            done.append((self._region_start, self._last_voiced + 1))
        return done

    def band_levels_dbfs(self, samples: Samples) -> Levels:
        """Return the band level (see the module notes) in dBFS of every complete frame; the detector is not touched."""
        frames = _frames(np.asarray(samples, dtype=np.float32).reshape(-1), self.frame_len)
        return _power_to_db(np.asarray(self._band_power(frames), dtype=np.float64).reshape(-1))

    def push(self, samples: Samples, ignore: IgnoreMask = False) -> Decisions:
        """Add mono samples; return a speech decision for each 10 ms frame they complete.

        `ignore` is True for the whole block or one bool per sample. A frame holding any
        ignored sample, and `ignore_tail_s` after it, is reported as silence and leaves
        the floor and any speech region in progress as they were.
        """
        frames, ignored = self._framer.split(samples, ignore)
        if not ignored:
            return np.zeros(0, dtype=np.bool_)
        return np.array(self._decide(self._band_power(frames), ignored), dtype=np.bool_)

    def _band_power(self, frames: npt.NDArray[np.float32]) -> list[float]:
        # Frame by frame with the same few dot products, so any split of the input gives
        # bit-identical levels; cheaper than an FFT at one frame per block, which is how
        # the session feeds us (a hundred times a second).
        dot, lag, low, n = np.dot, self._lag, self._low, self.frame_len
        out = []
        for x in frames:
            if lag:
                # Power after a [1 2 1]/4 smoother (a gentle roll-off against hiss), from
                # the frame's autocorrelation at lags 0, lag and 2 lag.
                total = (
                    6.0 * float(dot(x, x))
                    + 8.0 * float(dot(x[lag:], x[:-lag]))
                    + 2.0 * float(dot(x[2 * lag :], x[: -2 * lag]))
                ) / 16.0
            else:
                total = float(dot(x, x))
            # Less the DFT bins under band_low_hz (rows scaled so the sum of squares is their power).
            proj = low @ x
            out.append(max(total - float(dot(proj, proj)), 0.0) / n)
        return out

    def _decide(self, powers: list[float], ignored: list[bool]) -> list[bool]:
        # Plain Python floats: per-frame numpy calls would cost more than the whole budget.
        cfg = self.config
        log10 = math.log10
        out: list[bool] = []
        recent, k = self._recent, self._smooth_frames
        if not recent:
            recent.extend([powers[0]] * k)
        floor, spread, margin = self._floor, self._spread, self._margin
        speaking, hang, tail = self._speaking, self._hang, self._tail
        frame, counted = self._frame, self._counted
        streak, loud, streak_start = self._streak, self._loud, self._streak_start
        window, wsum, wsq = self._window, self._win_sum, self._win_sq
        steady_n, steady_var = self._steady_frames, cfg.steady_spread_db**2
        fall, rise, spread_coef = self._fall, self._rise, self._spread_coef
        min_dbfs, silent = cfg.min_speech_dbfs, _SILENT_POWER
        exit_db, exit_sigmas, hysteresis = cfg.exit_db, cfg.exit_sigmas, cfg.enter_db - cfg.exit_db
        for power, skip in zip(powers, ignored, strict=True):
            recent.append(power)
            del recent[0]
            if skip or tail > 0:
                tail = self._tail_frames if skip else tail - 1
                out.append(False)
                frame += 1
                continue
            level = 10.0 * log10(power if power > silent else silent)
            mean_power = sum(recent) / k
            slow = 10.0 * log10(mean_power if mean_power > silent else silent)
            counted += 1
            quiet = not speaking and level < floor + margin + hysteresis
            if counted <= self._calib_frames:
                floor = min(floor, slow)
            elif slow < floor:
                floor += fall * (slow - floor)
            elif quiet:
                floor = min(slow, floor + rise)
            if quiet:
                # Spread around the floor, not around the background's mean: a floor that
                # sits low widens the margin by as much, so noise still rarely crosses it.
                spread += spread_coef * ((slow - floor) ** 2 - spread)
                margin = max(exit_db, exit_sigmas * math.sqrt(spread))
            window.append(slow)
            wsum += slow
            wsq += slow * slow
            if len(window) > steady_n:
                old = window.popleft()
                wsum -= old
                wsq -= old * old
                mean = wsum / steady_n
                if mean > floor and wsq / steady_n - mean * mean < steady_var:
                    floor = mean
            exit_at = floor + margin
            enter_at = exit_at + hysteresis
            if exit_at < min_dbfs:
                exit_at = min_dbfs
                enter_at = max(enter_at, min_dbfs)
            if speaking:
                if slow >= exit_at:
                    hang = self._hang_frames
                    self._last_voiced = frame
                else:
                    hang -= 1
                    if hang <= 0:
                        speaking = False
                        self._regions.append((self._region_start, self._last_voiced + 1))
            elif slow >= exit_at:
                if streak == 0:
                    streak_start, loud = frame, 0
                streak += 1
                if level >= enter_at:
                    loud += 1
                    if loud >= self._start_frames:
                        speaking, hang, streak = True, self._hang_frames, 0
                        self._region_start, self._last_voiced = streak_start, frame
            else:
                streak = 0
            out.append(speaking)
            frame += 1
        self._floor, self._spread, self._margin = floor, spread, margin
        self._speaking, self._hang, self._tail = speaking, hang, tail
        self._frame, self._counted = frame, counted
        self._streak, self._loud, self._streak_start = streak, loud, streak_start
        self._win_sum, self._win_sq = wsum, wsq
        return out


def detect_speech(samples: Samples, sample_rate_hz: int, config: VadConfig | None = None) -> list[Segment]:
    """Return the speech segments of a whole signal, in seconds.

    Runs the streaming `VoiceDetector`; a segment runs from the first frame of its rise
    to the end of its last voiced frame, so the hangover is not counted as talk.
    """
    detector = VoiceDetector(sample_rate_hz, config)
    detector.push(samples)
    return [Segment(start * detector.frame_s, end * detector.frame_s) for start, end in detector.regions()]


def analyze(samples: Samples, sample_rate_hz: int, config: VadConfig | None = None) -> dict[str, Any]:
    """Summarize a recording as JSON-ready values, times in seconds rounded to 1 ms.

    `talk_s` is the summed length of the speech segments. `longest_silence_s` is the
    longest stretch without speech inside the recording: before the first segment,
    between two segments or after the last one (the whole duration if nobody spoke).
    """
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    segments = detect_speech(x, sample_rate_hz, config)
    duration_s = x.size / sample_rate_hz
    edges = [0.0, *(t for s in segments for t in (s.start_s, s.end_s)), duration_s]
    silences = [max(0.0, b - a) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    return {
        "sample_rate": sample_rate_hz,
        "duration_s": round(duration_s, 3),
        "speech": [{"start_s": round(s.start_s, 3), "end_s": round(s.end_s, 3)} for s in segments],
        "talk_s": round(sum(s.duration_s for s in segments), 3),
        "longest_silence_s": round(max(silences), 3),
    }


# A clap is judged on a ~1 ms energy envelope: this many sub-blocks per frame.
_SUBBLOCKS = 10
# A candidate peak is the loudest sub-block within this many on either side.
_PEAK_REACH = 3
# The clap detector works in hops of this many frames (50 ms): cheap at a hundred
# pushes a second, and its ring of raw samples always holds what a hop needs.
_HOP_FRAMES = 5


@dataclass(frozen=True)
class ClapConfig:
    """Tuning of `ClapDetector`; levels in dB, times in seconds."""

    min_gap_s: float = 0.2
    """Shortest time between the two claps of a double clap (peak to peak)."""
    max_gap_s: float = 0.7
    """Longest time between the two claps of a double clap (peak to peak)."""
    min_peak_dbfs: float = -45.0
    """A clap's loudest millisecond reaches at least this level."""
    attack_s: float = 0.002
    """The envelope rises by `rise_db` to within 6 dB of its peak within this time."""
    rise_db: float = 20.0
    """Rise of the envelope over `attack_s`."""
    quiet_before_s: float = 0.1
    """Stretch before the attack that must be quiet (`quiet_db` under the peak); a word-final
    "t" follows its vowel closely, a clap follows a pause."""
    quiet_db: float = 25.0
    """How far under the peak the envelope sits before the attack, and (less 10 dB) between two claps."""
    decay_after_s: float = 0.04
    """From this long after the peak ..."""
    decay_until_s: float = 0.1
    """... to this long after it the clap must have died away (mean energy `decay_db` under the
    peak); speech goes on into a vowel."""
    decay_db: float = 20.0
    """Fall of the envelope from the peak over the decay window."""
    crest_db: float = 10.0
    """Peak over the mean energy from `quiet_before_s` before the attack to `decay_until_s` after the peak."""
    min_centroid_hz: float = 1000.0
    """A clap is broadband: the energy-weighted mean frequency of its first ms is at least this."""
    match_db: float = 10.0
    """The two claps' energies and initial decays differ by at most this."""
    ignore_tail_s: float = 0.15
    """Extra time ignored after ignored samples (the guide's own chimes have sharp attacks)."""


@dataclass(frozen=True)
class _Clap:
    peak: int  # sub-block index
    energy_db: float
    drop_db: float
    ceiling: float  # power the gap before the next clap must stay under


class ClapDetector:
    """Stream microphone samples in; get True at the frame where a double clap is recognised."""

    def __init__(self, sample_rate_hz: int, config: ClapConfig | None = None) -> None:
        cfg = config if config is not None else ClapConfig()
        self.config = cfg
        self.sample_rate_hz = sample_rate_hz
        self.frame_len = frame_length(sample_rate_hz)
        self.frame_s = self.frame_len / sample_rate_hz
        self._sub_s = self.frame_s / _SUBBLOCKS
        # Sub-block edges inside a frame; uneven by a sample when the frame does not divide by ten.
        self._edges = np.round(np.arange(_SUBBLOCKS + 1) * self.frame_len / _SUBBLOCKS).astype(np.intp)
        self._even = self.frame_len % _SUBBLOCKS == 0
        self._attack = self._subs(cfg.attack_s)
        self._before = self._subs(cfg.quiet_before_s)
        self._decay_from = self._subs(cfg.decay_after_s)
        self._decay_to = self._subs(cfg.decay_until_s)
        self._min_gap = self._subs(cfg.min_gap_s)
        self._max_gap = self._subs(cfg.max_gap_s)
        self._tail_subs = round(cfg.ignore_tail_s / self._sub_s)
        self._min_peak = 10.0 ** (cfg.min_peak_dbfs / 10.0)
        # Offsets of a candidate's neighbours: a peak is the loudest among them.
        self._around = np.concatenate((np.arange(-_PEAK_REACH, 0), np.arange(1, _PEAK_REACH + 1)))
        # Enough envelope to look back over a whole double clap from its second peak.
        self._keep = self._max_gap + self._before + self._attack + self._decay_to + 3 * _SUBBLOCKS
        # Raw samples are only needed around a peak, a little over `decay_until_s` ago.
        need = (self._decay_to + (3 + _HOP_FRAMES) * _SUBBLOCKS) * self.frame_len // _SUBBLOCKS
        self._ring = np.zeros(1 << max(10, (2 * need - 1).bit_length()), dtype=np.float32)
        self._written = 0  # samples written to the ring so far
        # Samples gathered for the next hop, and whether any of them is to be ignored.
        self._hop = np.zeros(self.frame_len * _HOP_FRAMES, dtype=np.float32)
        self._hop_fill = 0
        self._hop_ignored = False
        self._pushed = 0  # samples pushed so far
        self._hops = 0  # hops of _HOP_FRAMES frames handled so far
        # Envelope history in preallocated buffers (a hundred pushes a second must not
        # each copy a second of history); the oldest is dropped in one move when full.
        capacity = 2 * self._keep + _HOP_FRAMES * _SUBBLOCKS
        self._pbuf = np.zeros(capacity, dtype=np.float64)
        self._mbuf = np.zeros(capacity, dtype=np.bool_)
        self._fill = 0
        self._base = 0  # sub-block index of self._pbuf[0]
        self._next = 0  # first sub-block not yet considered as a peak
        self._tail = 0
        self._claps: list[_Clap] = []

    def _subs(self, seconds: float) -> int:
        return max(1, round(seconds / self._sub_s))

    @property
    def frames_done(self) -> int:
        """Return how many 10 ms frames have been pushed so far."""
        return self._pushed // self.frame_len

    def push(self, samples: Samples, ignore: IgnoreMask = False) -> Decisions:
        """Add mono samples; return, per completed 10 ms frame, whether a double clap was recognised in it.

        A double clap is recognised 100-150 ms after the peak of its second clap, once
        that clap's decay has been heard. Ignored samples work as for `VoiceDetector`.
        """
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        whole = isinstance(ignore, bool | np.bool_)
        flags = None if whole else np.asarray(ignore, dtype=np.bool_).reshape(-1)
        if flags is not None and flags.size != x.size:
            raise ValueError(f"ignore mask has {flags.size} entries for {x.size} samples")
        before = self._pushed // self.frame_len
        self._pushed += x.size
        out = np.zeros(self._pushed // self.frame_len - before, dtype=np.bool_)
        at, size = 0, self._hop.size
        while at < x.size:
            take = min(size - self._hop_fill, x.size - at)
            self._hop[self._hop_fill : self._hop_fill + take] = x[at : at + take]
            skip = bool(ignore) if flags is None else bool(flags[at : at + take].any())
            self._hop_ignored = self._hop_ignored or skip
            self._hop_fill += take
            at += take
            if self._hop_fill == size:
                self._hops += 1
                if self._hop_step(self._hop, self._hop_ignored):
                    out[self._hops * _HOP_FRAMES - 1 - before] = True
                self._hop_fill, self._hop_ignored = 0, False
        return out

    def _hop_step(self, samples: npt.NDArray[np.float32], ignored: bool) -> bool:
        # Work is done once per hop of frames, at hop boundaries counted from the
        # first sample, so the outcome does not depend on the block sizes pushed.
        self._store(samples)
        self._append(samples.reshape(_HOP_FRAMES, self.frame_len), ignored)
        total = self._base + self._fill
        # A peak is judged once everything it is compared with has arrived.
        last = total - self._decay_to - 1
        hit = False
        for peak in self._candidates(last):
            hit = self._pair(peak) or hit
        self._next = max(self._next, last + 1)
        return hit

    def _store(self, x: npt.NDArray[np.float32]) -> None:
        size = self._ring.size
        at = self._written % size
        first = min(x.size, size - at)
        self._ring[at : at + first] = x[:first]
        self._ring[: x.size - first] = x[first:]
        self._written += x.size

    def _samples(self, sub_start: int, sub_stop: int) -> npt.NDArray[np.float64]:
        """Return the raw samples of sub-blocks [sub_start, sub_stop), plus the one before them."""
        lo = self._sample_at(sub_start) - 1
        hi = self._sample_at(sub_stop)
        idx = np.arange(max(lo, 0), hi) % self._ring.size
        return self._ring[idx].astype(np.float64)

    def _sample_at(self, sub: int) -> int:
        frame, part = divmod(sub, _SUBBLOCKS)
        return frame * self.frame_len + int(self._edges[part])

    def _append(self, frames: npt.NDArray[np.float32], ignored: bool) -> None:
        if self._even:
            blocks = frames.reshape(-1, self.frame_len // _SUBBLOCKS)
            power = np.einsum("ij,ij->i", blocks, blocks) / np.float32(blocks.shape[1])
        else:
            sq = np.cumsum(frames.astype(np.float64) ** 2, axis=1)
            ends = sq[:, self._edges[1:] - 1]
            starts = np.concatenate((np.zeros((sq.shape[0], 1)), ends[:, :-1]), axis=1)
            power = ((ends - starts) / np.diff(self._edges)).reshape(-1)
        muted: npt.NDArray[np.bool_] | bool = ignored
        if ignored:
            self._tail = self._tail_subs
        elif self._tail:
            muted = np.arange(power.size) < self._tail
            self._tail = max(0, self._tail - power.size)
        fill, size = self._fill, power.size
        if fill + size > self._pbuf.size:
            drop = fill - self._keep
            self._pbuf[: self._keep] = self._pbuf[drop:fill]
            self._mbuf[: self._keep] = self._mbuf[drop:fill]
            self._base += drop
            fill = self._keep
        self._pbuf[fill : fill + size] = power
        self._mbuf[fill : fill + size] = muted
        self._fill = fill + size

    @property
    def _power(self) -> Power:
        return self._pbuf[: self._fill]

    @property
    def _muted(self) -> npt.NDArray[np.bool_]:
        return self._mbuf[: self._fill]

    def _candidates(self, last: int) -> list[int]:
        # Loud local maxima that rose 20 dB within the few ms before them; elementwise
        # comparisons only, so the result does not depend on how blocks were split.
        lo = max(self._next, self._base + self._before + self._attack + 2 * _SUBBLOCKS)
        if last < lo:
            return []
        p = self._power
        start, stop = lo - self._base, last + 1 - self._base
        here = p[start:stop]
        if here.max() < self._min_peak:
            return []
        # Lowest envelope over the 16 sub-blocks ending `attack` before each sub-block,
        # by doubling (four vector ops): the attack test in _judge looks there, since an
        # onset lies at most _SUBBLOCKS before its peak.
        reach = start - self._attack - 15
        low = p[reach : stop - self._attack]
        for width in (1, 2, 4, 8):
            low = np.minimum(low[width:], low[:-width])
        rise = 10.0 ** (self.config.rise_db / 10.0)
        idx = np.flatnonzero((here >= self._min_peak) & (low * rise <= here)) + start
        if not idx.size:
            return []
        top = p[idx]
        around = p[idx[:, None] + self._around]
        ok = (top >= around[:, :_PEAK_REACH].max(axis=1)) & (top > around[:, _PEAK_REACH:].max(axis=1))
        found = cast(list[int], (idx[ok] + self._base).tolist())
        return found

    def _judge(self, peak: int) -> _Clap | None:
        cfg = self.config
        i = peak - self._base
        p = self._power
        top = float(p[i])
        # The burst may peak a few ms in; its onset is where it first came within 6 dB of the peak.
        onset = i
        while onset > i - _SUBBLOCKS and p[onset - 1] * 4.0 >= top:
            onset -= 1
        start = onset - self._attack - self._before
        end = i + self._decay_to + 1
        if start < 0 or self._muted[start:end].any():
            return None
        checks = (
            (float(p[onset - self._attack]), cfg.rise_db),  # sharp attack
            (float(np.mean(p[start : onset - self._attack])), cfg.quiet_db),  # silence before
            (float(np.mean(p[i + self._decay_from : end])), cfg.decay_db),  # died away
            (float(np.mean(p[start:end])), cfg.crest_db),  # stands out of its surroundings
        )
        if any(level * 10.0 ** (db / 10.0) > top for level, db in checks):
            return None
        # First differences weigh energy by (2 sin(pi f / rate))^2, which gives the mean
        # frequency of the burst without an FFT.
        x = self._samples(peak, peak + self._attack + 1)
        d = np.diff(x)
        ratio = float(np.dot(d, d)) / max(float(np.dot(x[1:], x[1:])), _SILENT_POWER)
        centroid_hz = math.asin(min(1.0, math.sqrt(ratio) / 2.0)) * self.sample_rate_hz / math.pi
        if centroid_hz < cfg.min_centroid_hz:
            return None
        body = float(np.sum(p[i : i + self._decay_from]))
        early = float(np.mean(p[i + self._attack : i + self._decay_from]))
        return _Clap(
            peak,
            10.0 * math.log10(max(body, _SILENT_POWER)),
            10.0 * math.log10(top / max(early, _SILENT_POWER)),
            top * 10.0 ** (-cfg.quiet_db / 10.0),
        )

    def _pair(self, peak: int) -> bool:
        clap = self._judge(peak)
        if clap is None:
            return False
        cfg = self.config
        self._claps = [c for c in self._claps if peak - c.peak <= self._max_gap]
        for first in self._claps:
            if peak - first.peak < self._min_gap:
                continue
            if abs(first.energy_db - clap.energy_db) > cfg.match_db or abs(first.drop_db - clap.drop_db) > cfg.match_db:
                continue
            # Between the two, the room must stay nearly as quiet as before a clap: talk is no gap.
            lo = first.peak + self._decay_to - self._base
            hi = peak - self._attack - _SUBBLOCKS - self._base
            if hi > lo and float(np.max(self._power[lo:hi])) > min(first.ceiling, clap.ceiling) * 10.0:
                continue
            self._claps = []
            return True
        self._claps.append(clap)
        return False


def detect_double_claps(samples: Samples, sample_rate_hz: int, config: ClapConfig | None = None) -> list[float]:
    """Return the times in seconds at which double claps are recognised in a whole signal."""
    detector = ClapDetector(sample_rate_hz, config)
    hits = np.flatnonzero(detector.push(samples))
    return [float(i + 1) * detector.frame_s for i in hits]
