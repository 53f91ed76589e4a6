"""Decide, 10 ms frame by 10 ms frame, whether someone is talking: the rules from band levels to talk.

Pure numpy. A frame is `frame_length(rate)` samples (10 ms rounded to whole samples).
Inside this module time is counted in those frames; at the edges it is in seconds.

How `VoiceDetector` decides (each figure chosen on the real recordings of bench/corpus.py):
1. Band levels (bands.py): a 30 ms Hann window ending at each frame, its power in five
   bands from 150 Hz to 4 kHz (rumble, hum and hiss lie outside), smoothed over ~30 ms.
2. A floor per band by minimum statistics (floor.py): the quietest smoothed level over the
   last `floor_window_s`, plus the bias of a minimum. Every pause for breath pulls it back
   down, so it cannot climb into a long answer; while talk goes on the floors may rise
   only `floor_hold_rise_db` (a voice held without a pause), for up to `floor_hold_s`.
   Exact zeros (a muted microphone, a noise gate) are no room and leave them alone.
   Babble (other voices: a television, a party) dips far under its mean, so its minimum
   is no floor for it: where `spread_bands` bands have a low percentile of their recent
   levels `spread_db` or more over their minimum, the floor is that percentile raised by
   `spread_gain_db`; while talk goes on it too may rise only `floor_hold_rise_db`, over where
   it was when the talk was confirmed or, if higher, over babble heard in a pause within
   `babble_memory_s` (talk confirmed on a moment the estimate dipped keeps the babble floor).
3. A frame's score is the mean SNR of its best `top_bands` bands: speech stands out
   where the noise is weak, whatever its colour. A region opens once `start_s` of frames
   score `enter_db` (a click is too short), stays open while the score is over `exit_db`,
   and closes after `hangover_s` under it (breaths and gaps between words do not end it).
   It runs from the first frame of its rise to its last frame within `tail_db` of its
   loudest (a fading echo is not talk): the hangover delays the decision, it is not talk.
4. Talk is a region with `talk_voiced_s` of voiced frames within `talk_window_s`
   (periodic at a pitch period of 2.5-12.5 ms, from the autocorrelation of the spectrum
   whitened by the floors; bands.py). Until then its frames are reported as silence; once
   it is talk, `speech_start_frame` gives where it began. A region that never gets there
   (a breath, a cough, a knock, a clap, a chair) is listed in `sounds()`, never as talk.
5. Frames marked as ignored (the guide's own voice in speakers mode, plus
   `ignore_tail_s` of room echo) are reported as silence and change nothing; `cut`
   forgets what was heard from a frame on (the double clap that paused a session).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voice_guide.live.vad.bands import BandAnalyzer, band_levels_dbfs
from voice_guide.live.vad.floor import MinimumFloor, SpreadFloor
from voice_guide.live.vad.frames import SILENT_POWER, Decisions, Framer, IgnoreMask, Levels, Power, frame_length
from voice_guide.sound.levels import SILENCE_DBFS, Samples

# In-band power under which a frame is taken for digital silence (-110 dBFS).
_DIGITAL_SILENCE = 1e-11


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
    spread_quantile: float = 0.2
    """Percentile of the levels over `floor_window_s` that babble's floor is read from (floor.py)."""
    spread_db: float = 3.0
    """How far that percentile must lie over the minimum for a band to sound like babble (steady noise:
    0.7-2.4 dB, six voices: 4.5-8 dB)."""
    spread_bands: int = 3
    """Bands that must sound like babble at once before it counts: other voices are wide band, one band's
    flutter (the narrow low band of a steady noise, a long answer's own levels) is not babble."""
    spread_gain_db: float = 3.0
    """Babble's floor lies this far over that percentile."""
    babble_memory_s: float = 6.0
    """Babble heard in a pause this recently holds the babble floor, while talk goes on, at no less than its
    level: talk confirmed just as the estimate dipped must not switch the babble floor off for a whole answer."""
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
        if not 1 <= self.spread_bands <= len(self.bands_hz) or not 0.0 <= self.spread_quantile < 1.0:
            raise ValueError(f"spread_bands must lie in 1-{len(self.bands_hz)} and spread_quantile in [0, 1)")
        if min(self.start_s, self.hangover_s, self.smooth_s, self.calibration_s, self.floor_window_s) <= 0.0:
            raise ValueError("start_s, hangover_s, smooth_s, calibration_s and floor_window_s must be positive")
        if self.babble_memory_s < 0.0:
            raise ValueError(f"babble_memory_s must not be negative, got {self.babble_memory_s}")


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
    """Stream microphone samples in; get one talk decision per completed 10 ms frame."""

    def __init__(self, sample_rate_hz: int, config: VadConfig | None = None) -> None:
        cfg = config if config is not None else VadConfig()
        self.config = cfg
        self.sample_rate_hz = sample_rate_hz
        self.frame_len = frame_length(sample_rate_hz)
        self.frame_s = self.frame_len / sample_rate_hz
        self._analyzer = BandAnalyzer(sample_rate_hz, self.frame_len, cfg.bands_hz, cfg.voiced_ratio)
        self._alpha = 1.0 - math.exp(-self.frame_s / cfg.smooth_s)
        self._release = 1.0 - math.exp(-self.frame_s / cfg.release_s) if cfg.release_s > 0 else 1.0
        self._start_frames = self._frames_of(cfg.start_s)
        self._voiced_frames = self._frames_of(cfg.talk_voiced_s) if cfg.talk_voiced_s > 0 else 0
        self._talk_window = self._frames_of(cfg.talk_window_s)
        self._hold_frames = self._frames_of(cfg.floor_hold_s)
        self._babble_memory = self._frames_of(cfg.babble_memory_s)
        self._hold_rise = 10.0 ** (cfg.floor_hold_rise_db / 10.0)
        self._hang_frames = self._frames_of(cfg.hangover_s)
        self._calib_frames = self._frames_of(cfg.calibration_s)
        self._tail_frames = round(cfg.ignore_tail_s / self.frame_s)
        self._min_power = 10.0 ** (cfg.min_speech_dbfs / 10.0)

        self._framer = Framer(self.frame_len)
        self._minimum = MinimumFloor(self.frame_s, cfg.floor_window_s, cfg.floor_bias_db)
        self._spread = SpreadFloor(
            self.frame_s, cfg.floor_window_s, cfg.spread_quantile, cfg.spread_db, cfg.spread_gain_db, cfg.spread_bands
        )
        self._smooth: Power | None = None
        self._level: Power | None = None
        self._floor = np.zeros(len(cfg.bands_hz))
        self._held = self._floor  # the minimum's floors when the talk in progress was confirmed
        self._min_floor = self._floor
        self._spread_now: Power | None = None
        self._spread_held: Power | None = None  # the babble floors when the talk in progress was confirmed
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
        return 10.0 * math.log10(total) if total > SILENT_POWER else SILENCE_DBFS

    @property
    def threshold_dbfs(self) -> float:
        """Return the level (dBFS) a voiced sound must reach to open talk now: what a meter marks."""
        return self.noise_floor_dbfs + self.config.enter_db

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
        return band_levels_dbfs(samples, self.sample_rate_hz, self.frame_len, self.config.bands_hz)

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
        full = self._analyzer.take(x)
        frame = self._frame
        self._frame += 1
        if skip or self._tail > 0:
            self._tail = self._tail_frames if skip else self._tail - 1
            return False
        if not full:
            return False
        power, bands = self._analyzer.powers()
        if float(bands.sum()) < _DIGITAL_SILENCE:
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
        floor = self._minimum.update(smooth)
        talking = self._open and self._talk
        if talking and frame - self._region_start < self._hold_frames:
            floor = np.minimum(floor, self._held * self._hold_rise)
        self._min_floor = floor
        assert self._minimum.low is not None
        holding = talking and frame - self._region_start < self._hold_frames
        spread = self._spread.update(smooth, self._minimum.low, quiet=not self._open)
        self._spread_now = spread
        if spread is not None and holding:
            # As the minimum's: while talk goes on the babble floor may rise only so far over where
            # it was, so a long answer never becomes its percentile. Talk confirmed before a whole
            # window was heard has none to hold: a television already on when listening began
            # takes the estimate once two windows are heard (a first answer is seldom longer).
            if self._spread_held is None and self._spread.windows_heard >= 2.0:
                self._spread_held = spread
            held = self._spread_held
            spread = np.minimum(spread, held * self._hold_rise) if held is not None else None
        if spread is not None:
            floor = np.maximum(floor, spread)
        self._floor = floor
        self._counted += 1
        if self._counted <= self._calib_frames:
            return False
        top = self.config.top_bands
        # The score: the mean of the top bands' dB over their floors. The same without smoothing
        # (`now`) places a region's end: where the sound really stopped. Both in one go.
        over_db = np.sort(10.0 * np.log10(np.stack((level, bands)) / floor), axis=1)[:, -top:]
        score, now = (float(v) for v in over_db.mean(axis=1))
        if float(level.sum()) < self._min_power:
            score = now = 0.0
        return self._decide(frame, score, now, power, floor)

    def _decide(self, frame: int, score: float, now: float, power: Power, floor: Power) -> bool:
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

    def _count_voiced(self, frame: int, power: Power, floor: Power) -> bool:
        """Note whether `frame` is voiced; return whether the talk window now holds enough voiced frames."""
        voiced = self._voiced
        if self._analyzer.is_voiced(power, floor):
            voiced.append(frame)
        while voiced and voiced[0] <= frame - self._talk_window:
            voiced.popleft()
        return len(voiced) >= self._voiced_frames

    def _confirm(self) -> None:
        self._held = self._min_floor
        self._spread_held = self._spread_now
        babble = self._spread.babble_within(self._babble_memory)
        if babble is not None and self._spread_held is not None:
            # The estimate can dip for a moment (a window that held the last words); were that held,
            # the babble floor would be off for the whole answer and babble after it taken for talk.
            self._spread_held = np.maximum(self._spread_held, babble)
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
