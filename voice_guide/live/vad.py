"""Decide, 10 ms frame by 10 ms frame, whether someone is talking; spot a double hand clap.

Pure numpy: no device, no file, no clock. Callers push microphone blocks of any size
and get one decision per completed frame; the same detectors serve live turns and
offline analysis, and any split of the input into blocks gives identical decisions.

A frame is `frame_length(rate)` samples (10 ms rounded to whole samples). Inside this
module time is counted in those frames; at the edges it is in seconds.

How `VoiceDetector` decides (each figure chosen on the real recordings of bench/corpus.py):
1. Band levels: a 30 ms Hann window ending at each frame, its power in five bands from
   150 Hz to 4 kHz (rumble, hum and hiss lie outside), smoothed over ~30 ms.
2. A floor per band by minimum statistics: the quietest smoothed level over the last
   `floor_window_s`, plus the bias of a minimum. Every pause for breath pulls it back
   down, so it cannot climb into a long answer; while talk goes on the floors may rise
   only `floor_hold_rise_db` (a voice held without a pause), for up to `floor_hold_s`.
   Exact zeros (a muted microphone, a noise gate) are no room and leave them alone.
3. A frame's score is the mean SNR of its best `top_bands` bands: speech stands out
   where the noise is weak, whatever its colour. A region opens once `start_s` of frames
   score `enter_db` (a click is too short), stays open while the score is over `exit_db`,
   and closes after `hangover_s` under it (breaths and gaps between words do not end it).
   It runs from the first frame of its rise to its last frame within `tail_db` of its
   loudest (a fading echo is not talk): the hangover delays the decision, it is not talk.
4. Talk is a region with `talk_voiced_s` of voiced frames within `talk_window_s`
   (periodic at a pitch period of 2.5-12.5 ms, from the autocorrelation of the spectrum
   whitened by the floors). Until then its frames are reported as silence; once it is
   talk, `speech_start_frame` gives where it began. A region that never gets there (a
   breath, a cough, a knock, a clap, a chair) is listed in `sounds()`, never as talk.
5. Frames marked as ignored (the guide's own voice in speakers mode, plus
   `ignore_tail_s` of room echo) are reported as silence and change nothing; `cut`
   forgets what was heard from a frame on (the double clap that paused a session).

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
# In-band power under which a frame is taken for digital silence (-110 dBFS).
_DIGITAL_SILENCE = 1e-11


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
    """Tuning of `VoiceDetector`; levels in dB, durations in seconds (chosen on bench/corpus.py's tuning part)."""

    bands_hz: tuple[tuple[float, float], ...] = ((150, 300), (300, 600), (600, 1200), (1200, 2400), (2400, 4000))
    """Frequency bands whose levels are tracked apart; rumble, hum and hiss lie outside them."""
    top_bands: int = 3
    """A frame's score is the mean of its best this many band SNRs: speech is loud where noise is not."""
    enter_db: float = 4.0
    """Score above which a frame counts towards starting speech."""
    exit_db: float = 1.5
    """Score that keeps speech going (below `enter_db`)."""
    tail_db: float = 30.0
    """A region ends at its last frame within this many dB of its loudest score: a fading echo is not talk."""
    min_speech_dbfs: float = -65.0
    """Nothing quieter than this in-band level is speech, however quiet the room (digital silence)."""
    start_s: float = 0.03
    """Loud time needed to open a region; clicks are shorter."""
    talk_voiced_s: float = 0.1
    """Voiced (periodic) time within `talk_window_s` a region needs before it counts as talk; a breath,
    cough, knock or clap has less. A region that never gets it is a sound, not talk."""
    talk_window_s: float = 0.5
    """Window in which that voiced time must be heard: stray voiced frames in a long noise do not add up."""
    voiced_ratio: float = 0.8
    """Normalized autocorrelation at the pitch period above which a frame counts as voiced."""
    hangover_s: float = 0.3
    """Time under the exit score before speech ends; bridges breaths and gaps between words."""
    smooth_s: float = 0.03
    """Time constant with which the band levels (that floors and scores are taken from) rise."""
    release_s: float = 0.01
    """Time constant with which they fall: a sound that stops is gone at once, not 40 dB later."""
    floor_window_s: float = 3.0
    """Each band's floor is its quietest smoothed level over this long (minimum statistics), so it
    cannot climb into talk that goes on for minutes: every pause for breath pulls it back down."""
    floor_hold_s: float = 60.0
    """While talk goes on the floors may fall but rise at most `floor_hold_rise_db` over where they were
    when it was confirmed (a voice held without a pause must not become the floor), for at most this long."""
    floor_hold_rise_db: float = 3.0
    """How far over the held floors they may rise meanwhile (a voice's own quietest moments)."""
    floor_bias_db: float = 2.0
    """The quietest level sits under the noise's mean by about this much; it is added back."""
    calibration_s: float = 0.01
    """Opening stretch (ignored frames not counted) heard before anything is decided."""
    ignore_tail_s: float = 0.15
    """Extra time ignored after ignored samples, for the room's echo of the guide's voice."""

    def __post_init__(self) -> None:
        if not self.exit_db < self.enter_db:
            raise ValueError(f"exit_db ({self.exit_db}) must be below enter_db ({self.enter_db})")
        if not self.bands_hz or any(not 0.0 < lo < hi for lo, hi in self.bands_hz):
            raise ValueError(f"bands_hz must be (low, high) pairs with 0 < low < high, got {self.bands_hz}")
        if not 1 <= self.top_bands <= len(self.bands_hz):
            raise ValueError(f"top_bands must lie in 1-{len(self.bands_hz)}, got {self.top_bands}")
        if min(self.start_s, self.hangover_s, self.smooth_s, self.calibration_s, self.floor_window_s) <= 0.0:
            raise ValueError("start_s, hangover_s, smooth_s, calibration_s and floor_window_s must be positive")


@dataclass(frozen=True)
class Segment:
    """One stretch of speech, in seconds from the start of the signal."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        """Return the length of the segment in seconds."""
        return self.end_s - self.start_s


# Frames in the analysis window (30 ms: a low voice's pitch period fits twice), and the
# number of sub-windows the floor's minimum is kept in.
_WINDOW_FRAMES = 3
_FLOOR_PARTS = 12
# Pitch periods looked for: 2.5-12.5 ms (80-400 Hz), on 80-1000 Hz of the spectrum.
_PITCH_S = (0.0025, 0.0125)
_VOICE_HZ = (80.0, 1000.0)


class VoiceDetector:
    """Stream microphone samples in; get one talk decision per completed 10 ms frame."""

    def __init__(self, sample_rate_hz: int, config: VadConfig | None = None) -> None:
        cfg = config if config is not None else VadConfig()
        self.config = cfg
        self.sample_rate_hz = sample_rate_hz
        self.frame_len = frame_length(sample_rate_hz)
        self.frame_s = self.frame_len / sample_rate_hz
        win = _WINDOW_FRAMES * self.frame_len
        self._win = win
        self._window = np.hanning(win + 2)[1:-1]
        # One zero-padded FFT serves the band levels and the autocorrelation (no wrap-around).
        self._nfft = 2 * win
        freqs = np.fft.rfftfreq(self._nfft, 1.0 / sample_rate_hz)
        self._bands = np.zeros((len(cfg.bands_hz), freqs.size))
        for i, (lo, hi) in enumerate(cfg.bands_hz):
            self._bands[i, (freqs >= lo) & (freqs < hi)] = 1.0
        # Parseval with the Hann window's energy: band sums become mean-square levels.
        self._scale = 1.0 / (float(np.sum(self._window**2)) * self._nfft / 2.0)
        self._voice = np.flatnonzero((freqs >= _VOICE_HZ[0]) & (freqs < _VOICE_HZ[1]))
        tops = np.array([hi for _, hi in cfg.bands_hz])
        self._voice_band = np.minimum(np.searchsorted(tops, freqs[self._voice], side="right"), len(tops) - 1)
        self._band_bins = np.maximum(self._bands.sum(axis=1), 1.0)
        wac = np.fft.irfft(np.abs(np.fft.rfft(self._window, self._nfft)) ** 2, self._nfft)[:win]
        self._lag_lo, self._lag_hi = (round(s * sample_rate_hz) for s in _PITCH_S)
        self._window_ac = wac[self._lag_lo : self._lag_hi] / wac[0]

        self._alpha = 1.0 - math.exp(-self.frame_s / cfg.smooth_s)
        self._release = 1.0 - math.exp(-self.frame_s / cfg.release_s) if cfg.release_s > 0 else 1.0
        self._part_frames = max(1, round(cfg.floor_window_s / _FLOOR_PARTS / self.frame_s))
        self._bias = 10.0 ** (cfg.floor_bias_db / 10.0)
        self._start_frames = self._frames_of(cfg.start_s)
        self._voiced_frames = self._frames_of(cfg.talk_voiced_s) if cfg.talk_voiced_s > 0 else 0
        self._talk_window = self._frames_of(cfg.talk_window_s)
        self._hold_frames = self._frames_of(cfg.floor_hold_s)
        self._hold_rise = 10.0 ** (cfg.floor_hold_rise_db / 10.0)
        self._hang_frames = self._frames_of(cfg.hangover_s)
        self._calib_frames = self._frames_of(cfg.calibration_s)
        self._tail_frames = round(cfg.ignore_tail_s / self.frame_s)
        self._min_power = 10.0 ** (cfg.min_speech_dbfs / 10.0)

        self._framer = _Framer(self.frame_len)
        self._hist = np.zeros(win, dtype=np.float64)
        self._filled = 0
        self._smooth: npt.NDArray[np.float64] | None = None
        self._level: npt.NDArray[np.float64] | None = None
        self._parts: deque[npt.NDArray[np.float64]] = deque(maxlen=_FLOOR_PARTS)
        self._part_min: npt.NDArray[np.float64] | None = None
        self._part_count = 0
        self._floor = np.zeros(len(cfg.bands_hz))
        self._held = self._floor  # the floors when the talk in progress was confirmed
        self._frame = 0
        self._counted = 0
        self._tail = 0
        self._open = False  # inside a region (talk or not yet)
        self._talk = False  # the open region is confirmed talk
        self._hang = 0
        self._streak = 0
        self._loud = 0
        self._voiced: deque[int] = deque()  # frames of the open region heard voiced, within the talk window
        self._streak_start = 0
        self._region_start = 0
        self._region_last = -1
        self._peak = 0.0
        self._talk_start: int | None = None
        self._last_voiced = -1
        self._regions: list[tuple[int, int]] = []
        self._sounds: list[tuple[int, int]] = []

    def _frames_of(self, seconds: float) -> int:
        return max(1, round(seconds / self.frame_s))

    @property
    def frames_done(self) -> int:
        """Return how many 10 ms frames have been decided so far."""
        return self._frame

    @property
    def noise_floor_dbfs(self) -> float:
        """Return the current noise floor over all bands (dBFS); SILENCE_DBFS before the first floor."""
        total = float(np.sum(self._floor))
        return 10.0 * math.log10(total) if total > _SILENT_POWER else SILENCE_DBFS

    @property
    def in_speech(self) -> bool:
        """Return whether the last decided frame was talk."""
        return self._open and self._talk

    @property
    def speech_start_frame(self) -> int | None:
        """Return the frame where the current (or last) talk began, back-dated to the start of its rise."""
        return self._talk_start

    @property
    def last_voiced_frame(self) -> int:
        """Return the last frame (counted from the first) of talk loud enough to keep it going; -1 if none yet."""
        return self._last_voiced

    def regions(self) -> list[tuple[int, int]]:
        """Return every talk region so far as (start, end) frames, end exclusive; the hangover is not included."""
        done = list(self._regions)
        if self._open and self._talk:
            done.append((self._region_start, self._region_last + 1))
        return done

    def sounds(self) -> list[tuple[int, int]]:
        """Return the regions heard that were not talk (too little voice: a cough, a knock), as (start, end) frames."""
        return list(self._sounds)

    def cut(self, frame: int) -> None:
        """End whatever is open as of `frame`: what was heard from `frame` on (a double clap) is not talk."""
        if self._open:
            if self._talk and self._region_start < frame:
                end = min(self._region_last, frame - 1) + 1
                self._regions.append((self._region_start, end))
                self._last_voiced = end - 1
            elif self._talk:
                self._talk_start = self._regions[-1][0] if self._regions else None
                self._last_voiced = self._regions[-1][1] - 1 if self._regions else -1
        self._open = self._talk = False
        self._streak = self._hang = 0

    def band_levels_dbfs(self, samples: Samples) -> Levels:
        """Return the level in dBFS of every complete frame over the tracked bands; the detector is not touched."""
        frames = _frames(np.asarray(samples, dtype=np.float32).reshape(-1), self.frame_len)
        n = self.frame_len
        freqs = np.fft.rfftfreq(n, 1.0 / self.sample_rate_hz)
        inside = np.zeros(freqs.size, dtype=np.bool_)
        for lo, hi in self.config.bands_hz:
            inside |= (freqs >= lo) & (freqs < hi)
        spectrum = np.abs(np.fft.rfft(frames.astype(np.float64), axis=1)) ** 2
        return _power_to_db(2.0 * spectrum[:, inside].sum(axis=1) / (n * n))

    def push(self, samples: Samples, ignore: IgnoreMask = False) -> Decisions:
        """Add mono samples; return a talk decision for each 10 ms frame they complete.

        `ignore` is True for the whole block or one bool per sample. A frame holding any
        ignored sample, and `ignore_tail_s` after it, is reported as silence and leaves
        the floors and any region in progress as they were.
        """
        frames, ignored = self._framer.split(samples, ignore)
        out = np.zeros(len(ignored), dtype=np.bool_)
        for i, skip in enumerate(ignored):
            out[i] = self._step(frames[i], skip)
        return out

    def _step(self, x: npt.NDArray[np.float32], skip: bool) -> bool:
        # One frame at a time with the same operations, so any split of the input
        # gives bit-identical decisions.
        n, hist = self.frame_len, self._hist
        hist[:-n] = hist[n:]
        hist[-n:] = x
        self._filled = min(self._filled + 1, _WINDOW_FRAMES)
        frame = self._frame
        self._frame += 1
        if skip or self._tail > 0:
            self._tail = self._tail_frames if skip else self._tail - 1
            return False
        if self._filled < _WINDOW_FRAMES:
            return False
        spectrum = np.fft.rfft(hist * self._window, self._nfft)
        power = spectrum.real**2 + spectrum.imag**2
        bands = (self._bands @ power) * self._scale + _SILENT_POWER
        if float(np.sum(bands)) < _DIGITAL_SILENCE:
            # Exact zeros (a muted microphone, a noise gate) are no room: they neither set
            # the floors nor count towards calibration, which starts with the first sound;
            # but they are silence, and end what was open as silence does.
            return self._decide(frame, 0.0, 0.0, power, self._floor) if self._counted else False
        smooth, level = self._smooth, self._level
        if smooth is None or level is None:
            smooth = level = bands
        else:
            # The floor follows evenly smoothed levels (their minimum must not dip with each
            # quick fall); the score follows levels that rise as slowly but fall fast.
            smooth = smooth + self._alpha * (bands - smooth)
            level = level + np.where(bands > level, self._alpha, self._release) * (bands - level)
        self._smooth, self._level = smooth, level
        floor = self._track_floor(smooth) * self._bias
        if self._open and self._talk and frame - self._region_start < self._hold_frames:
            floor = np.minimum(floor, self._held * self._hold_rise)
        self._floor = floor
        self._counted += 1
        if self._counted <= self._calib_frames:
            return False
        top = self.config.top_bands
        score = float(np.mean(np.sort(10.0 * np.log10(level / floor))[-top:]))
        # The same score without smoothing places a region's end: where the sound really stopped.
        now = float(np.mean(np.sort(10.0 * np.log10(bands / floor))[-top:]))
        if float(np.sum(level)) < self._min_power:
            score = now = 0.0
        return self._decide(frame, score, now, power, floor)

    def _track_floor(self, smooth: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        # Minimum statistics: the quietest level of each band over the last floor_window_s,
        # kept as the minima of _FLOOR_PARTS sub-windows.
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
        return low

    def _is_voiced(self, power: npt.NDArray[np.float64], floor: npt.NDArray[np.float64]) -> bool:
        # Autocorrelation of the 80-1000 Hz spectrum whitened by the band floors (so a
        # rumble or a fan's hum is not a pitch), corrected for the window's own
        # autocorrelation; periodic at a pitch period means voiced.
        white = np.zeros_like(power)
        voice = self._voice
        white[voice] = power[voice] / (floor[self._voice_band] / self._band_bins[self._voice_band])
        ac = np.fft.irfft(white, self._nfft)
        if ac[0] <= 0.0:
            return False
        best = float(np.max(ac[self._lag_lo : self._lag_hi] / self._window_ac)) / float(ac[0])
        return best >= self.config.voiced_ratio

    def _decide(
        self, frame: int, score: float, now: float, power: npt.NDArray[np.float64], floor: npt.NDArray[np.float64]
    ) -> bool:
        cfg = self.config
        if self._open:
            if not self._talk and self._count_voiced(frame, power, floor):
                self._confirm()
            self._peak = max(self._peak, score)
            if score >= cfg.exit_db:
                self._hang = self._hang_frames
                if now >= max(cfg.exit_db, self._peak - cfg.tail_db):
                    self._region_last = frame
                    if self._talk:
                        self._last_voiced = frame
            else:
                self._hang -= 1
                if self._hang <= 0:
                    self._open = False
                    region = (self._region_start, self._region_last + 1)
                    (self._regions if self._talk else self._sounds).append(region)
                    self._talk = False
        elif score >= cfg.exit_db:
            if self._streak == 0:
                self._streak_start, self._loud = frame, 0
                self._voiced.clear()
            self._streak += 1
            enough = self._count_voiced(frame, power, floor)
            if score >= cfg.enter_db:
                self._loud += 1
                if self._loud >= self._start_frames:
                    self._open, self._hang, self._streak = True, self._hang_frames, 0
                    self._region_start, self._region_last, self._peak = self._streak_start, frame, score
                    self._talk = False
                    if enough:
                        self._confirm()
        else:
            self._streak = 0
        return self._open and self._talk

    def _count_voiced(self, frame: int, power: npt.NDArray[np.float64], floor: npt.NDArray[np.float64]) -> bool:
        """Note whether `frame` is voiced; return whether the talk window now holds enough voiced frames."""
        voiced = self._voiced
        if self._is_voiced(power, floor):
            voiced.append(frame)
        while voiced and voiced[0] <= frame - self._talk_window:
            voiced.popleft()
        return len(voiced) >= self._voiced_frames

    def _confirm(self) -> None:
        self._held = self._floor
        self._talk = True
        self._talk_start = self._region_start
        self._last_voiced = self._region_last


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
        self._pair_start = -1

    def _subs(self, seconds: float) -> int:
        return max(1, round(seconds / self._sub_s))

    @property
    def frames_done(self) -> int:
        """Return how many 10 ms frames have been pushed so far."""
        return self._pushed // self.frame_len

    @property
    def pair_start_frame(self) -> int:
        """Return the frame in which the first clap of the last double clap began; -1 before any."""
        return self._pair_start

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
            # The frame holding the first clap's onset (its peak is at most one frame in).
            self._pair_start = max(0, (first.peak - self._attack) // _SUBBLOCKS)
            return True
        self._claps.append(clap)
        return False


def detect_double_claps(samples: Samples, sample_rate_hz: int, config: ClapConfig | None = None) -> list[float]:
    """Return the times in seconds at which double claps are recognised in a whole signal."""
    detector = ClapDetector(sample_rate_hz, config)
    hits = np.flatnonzero(detector.push(samples))
    return [float(i + 1) * detector.frame_s for i in hits]
