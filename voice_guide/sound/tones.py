"""Synthesize the guide's cue sounds and breathing tones as mono float32 arrays; pure numpy.

Every fixed cue is a few strikes of a small bowl, bell or chime bar: each strike is a sum
of inharmonic partials with exponential decays, a raised-cosine attack (no click) and a
raised-cosine fade to exactly zero at the end. Cues differ in pitch, number and direction
of strikes, length and timbre, so they can be told apart with eyes closed:

    start    three strikes rising (C5 E5 G5), singing bowl
    swap     two strikes "ding-dong" falling a fourth (A5 E5), chime bar
    time-up  three quick strikes on one pitch (C6), bright bell
    remind   one short high glassy tick (G6), quiet
    end      three slow strikes falling (G4 E4 C4), bowl, longest ring
    soft     one low bowl strike (A3), quiet
    pause    two quick damped strikes falling (D5 A4), church-bell timbre
    resume   two quick damped strikes rising (A5 D6), chime bar

Breathing tones are a warm hummed tone (harmonics 1-3) whose length is exact to the
sample: breath-in glides up a fifth (220 -> 330 Hz) and swells, breath-out glides down and
fades, breath-hold is a very quiet steady tone at the top pitch (330 Hz, 20 dB below the
breathing tones) so a listener with closed eyes knows the pacer is still running without
being prompted to breathe.

Levels: each cue's RMS over its sounding part (10 ms blocks within 40 dB of the loudest
block) is brought to `TARGET_RMS_DBFS`, backing off so the peak stays under
`PEAK_LIMIT_DBFS`. remind and soft sit `QUIET_CUE_OFFSET_DB` lower because they must not
interrupt someone who is talking.

Run `python -m voice_guide.sound.tones [FOLDER]` to write `<name>.wav` for every fixed cue.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import numpy as np
import numpy.typing as npt

from voice_guide.sound.levels import PEAK_LIMIT_DBFS, TARGET_RMS_DBFS, Samples, db_to_gain, peak_dbfs, rms_dbfs

CUE_NAMES: tuple[str, ...] = ("start", "swap", "time-up", "remind", "end", "soft", "pause", "resume")
BREATH_CUE_NAMES: tuple[str, ...] = ("breath-in", "breath-out", "breath-hold")
BreathDirection = Literal["in", "out", "hold"]
BREATH_DIRECTIONS: tuple[BreathDirection, ...] = ("in", "out", "hold")

DEFAULT_SAMPLE_RATE_HZ = 48000
# Long enough that a mallet strike has no click, short enough to still sound struck.
ATTACK_S = 0.008
# Ringing is cut with this raised-cosine fade so the last sample is exactly zero.
END_FADE_S = 0.25
# Partials above this are left out: small speakers turn them into hiss. (Partials above
# 0.45 of the sample rate are also left out, so low rates never alias.)
MAX_PARTIAL_HZ = 9000.0
# Blocks quieter than this below the loudest block are decay tail, not the cue's loudness.
SOUNDING_RANGE_DB = 40.0
SOUNDING_BLOCK_S = 0.010
# remind and soft are heard while someone talks; 8 dB below speech is noticeable but polite.
QUIET_CUE_OFFSET_DB = -8.0
# A steady tone at speech RMS sounds more insistent than speech, which has gaps.
BREATH_RMS_DBFS = TARGET_RMS_DBFS - 4.0
# Barely audible: a sign of life during a hold, not a prompt.
BREATH_HOLD_RMS_DBFS = BREATH_RMS_DBFS - 20.0
BREATH_LOW_HZ = 220.0
BREATH_HIGH_HZ = 330.0
# Breath tones fade in and out over this much (or a quarter of the tone if shorter).
BREATH_EDGE_S = 0.15
# Quantization to 16 bits may round a peak up by half a step; stay clear of the limit.
_PEAK_MARGIN_DB = 0.05
# -60 dB in nepers: exp(-_T60_NEPERS * t / t60_s) falls 60 dB at t = t60_s.
_T60_NEPERS = 3.0 * math.log(10.0)


@dataclass(frozen=True)
class Partial:
    """One mode of a struck body: frequency ratio to the fundamental, amplitude, decay scale."""

    ratio: float
    amplitude: float
    decay_scale: float  # multiplies the strike's t60_s; higher modes die sooner


@dataclass(frozen=True)
class Strike:
    """One mallet strike: onset in seconds, fundamental in Hz, timbre, gain and ring time."""

    onset_s: float
    fundamental_hz: float
    timbre: tuple[Partial, ...]
    t60_s: float
    gain: float = 1.0


@dataclass(frozen=True)
class CueSpec:
    """A fixed cue: its strikes, total length in seconds and level offset from speech in dB."""

    strikes: tuple[Strike, ...]
    duration_s: float
    level_offset_db: float = 0.0


# Singing bowl: strongly inharmonic modes; the 1.003 twin gives the slow beating of a real bowl.
BOWL: tuple[Partial, ...] = (
    Partial(1.0, 1.0, 1.0),
    Partial(1.003, 0.35, 1.0),
    Partial(2.71, 0.45, 0.6),
    Partial(5.15, 0.2, 0.35),
    Partial(8.43, 0.08, 0.2),
)
# Free bar (chime, glockenspiel): modes of a free-free beam, 1 : 2.756 : 5.404 : 8.933.
CHIME: tuple[Partial, ...] = (
    Partial(1.0, 1.0, 1.0),
    Partial(2.756, 0.3, 0.45),
    Partial(5.404, 0.12, 0.25),
    Partial(8.933, 0.05, 0.15),
)
# Church bell: hum, prime, minor-third tierce, quint, nominal; the tierce gives the bell colour.
BELL: tuple[Partial, ...] = (
    Partial(0.5, 0.35, 1.3),
    Partial(1.0, 1.0, 1.0),
    Partial(1.19, 0.5, 0.8),
    Partial(1.5, 0.3, 0.7),
    Partial(2.0, 0.45, 0.6),
    Partial(2.51, 0.18, 0.4),
    Partial(3.01, 0.1, 0.3),
)
# Bright bell for time-up: fewer low modes, strong upper ones, so it cuts through talk.
BRIGHT_BELL: tuple[Partial, ...] = (
    Partial(1.0, 1.0, 1.0),
    Partial(2.32, 0.55, 0.7),
    Partial(4.25, 0.3, 0.45),
    Partial(6.63, 0.12, 0.3),
)
# Glass: nearly a pure tone with one faint high mode; used for the quiet remind tick.
GLASS: tuple[Partial, ...] = (
    Partial(1.0, 1.0, 1.0),
    Partial(2.76, 0.12, 0.4),
)


def _note(midi: int) -> float:
    """Return the frequency in Hz of a MIDI note number (A4 = 69 = 440 Hz)."""
    return float(440.0 * 2.0 ** ((midi - 69) / 12.0))


A3, C4, E4, G4, A4, C5, D5, E5, G5, A5, C6, D6, G6 = (
    _note(m) for m in (57, 60, 64, 67, 69, 72, 74, 76, 79, 81, 84, 86, 91)
)

# Read-only so no caller can retune a cue for everyone else.
CUES: Mapping[str, CueSpec] = MappingProxyType(
    {
        "start": CueSpec(
            (Strike(0.0, C5, BOWL, 2.4), Strike(0.22, E5, BOWL, 2.4), Strike(0.44, G5, BOWL, 2.4, 1.1)),
            2.6,
        ),
        "swap": CueSpec((Strike(0.0, A5, CHIME, 1.6), Strike(0.4, E5, CHIME, 1.8)), 2.2),
        "time-up": CueSpec(
            (Strike(0.0, C6, BRIGHT_BELL, 1.2), Strike(0.16, C6, BRIGHT_BELL, 1.2), Strike(0.32, C6, BRIGHT_BELL, 1.4)),
            1.8,
        ),
        "remind": CueSpec((Strike(0.0, G6, GLASS, 0.5),), 0.6, QUIET_CUE_OFFSET_DB),
        "end": CueSpec(
            (Strike(0.0, G4, BOWL, 2.6), Strike(0.45, E4, BOWL, 2.6), Strike(0.9, C4, BOWL, 2.4, 1.2)),
            3.0,
        ),
        "soft": CueSpec((Strike(0.0, A3, BOWL, 1.8),), 1.8, QUIET_CUE_OFFSET_DB),
        "pause": CueSpec((Strike(0.0, D5, BELL, 0.8), Strike(0.14, A4, BELL, 0.9)), 1.1),
        "resume": CueSpec((Strike(0.0, A5, CHIME, 0.7), Strike(0.14, D6, CHIME, 0.8)), 1.0),
    }
)


def _check_rate(sample_rate_hz: int) -> None:
    if sample_rate_hz < 8000:
        raise ValueError(f"sample rate {sample_rate_hz} Hz is too low (need at least 8000 Hz)")


def _raised_cosine_rise(n_frames: int) -> npt.NDArray[np.float64]:
    """Return `n_frames` gains rising from exactly 0 towards 1 (the 1 itself comes next)."""
    return 0.5 - 0.5 * np.cos(np.pi * np.arange(n_frames) / max(n_frames, 1))


def _strike(strike: Strike, start_frame: int, n_frames: int, sample_rate_hz: int) -> npt.NDArray[np.float64]:
    """Render one strike into `n_frames` frames starting at `start_frame`."""
    t = np.arange(n_frames) / sample_rate_hz
    # Phase runs on the cue's clock, so repeated strikes of one pitch add up instead of cancelling.
    t_cue = t + start_frame / sample_rate_hz
    out = np.zeros(n_frames)
    nyquist_hz = 0.45 * sample_rate_hz
    for p in strike.timbre:
        freq_hz = strike.fundamental_hz * p.ratio
        if freq_hz > min(MAX_PARTIAL_HZ, nyquist_hz):
            continue
        decay = np.exp(-_T60_NEPERS * t / (strike.t60_s * p.decay_scale))
        out += p.amplitude * decay * np.sin(2.0 * np.pi * freq_hz * t_cue)
    attack = min(n_frames, round(ATTACK_S * sample_rate_hz))
    out[:attack] *= _raised_cosine_rise(attack)
    return out * strike.gain


def _fade_out(x: npt.NDArray[np.float64], n_frames: int) -> None:
    """Fade the last `n_frames` of `x` in place so the final frame is exactly zero."""
    n = min(n_frames, x.size)
    if n == 0:
        return
    x[-n:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(1, n + 1) / n)
    x[-1] = 0.0  # cos(pi) is exactly -1, but make the promise independent of libm


def sounding_rms_dbfs(samples: npt.ArrayLike, sample_rate_hz: int, range_db: float = SOUNDING_RANGE_DB) -> float:
    """Return the RMS in dBFS over the 10 ms blocks within `range_db` of the loudest block."""
    x = np.asarray(samples, dtype=np.float64)
    block = max(1, round(SOUNDING_BLOCK_S * sample_rate_hz))
    n_blocks = x.size // block
    if n_blocks == 0:
        return rms_dbfs(x)
    power = np.mean(x[: n_blocks * block].reshape(n_blocks, block) ** 2, axis=1)
    loudest = float(power.max())
    if loudest <= 0.0:
        return rms_dbfs(x)
    sounding = power >= loudest * 10.0 ** (-range_db / 10.0)
    return 10.0 * math.log10(float(power[sounding].mean()))


def _level(x: npt.NDArray[np.float64], sample_rate_hz: int, target_rms_dbfs: float) -> Samples:
    """Scale to `target_rms_dbfs` over the sounding part, keeping the peak under the limit."""
    if not np.any(x):
        return x.astype(np.float32)
    gain_db = target_rms_dbfs - sounding_rms_dbfs(x, sample_rate_hz)
    headroom_db = PEAK_LIMIT_DBFS - _PEAK_MARGIN_DB - peak_dbfs(x)
    return (x * db_to_gain(min(gain_db, headroom_db))).astype(np.float32)


def render_cue(spec: CueSpec, sample_rate_hz: int = DEFAULT_SAMPLE_RATE_HZ) -> Samples:
    """Render a cue spec to float32 samples at `sample_rate_hz`, levelled and zero at both ends."""
    _check_rate(sample_rate_hz)
    n_total = round(spec.duration_s * sample_rate_hz)
    out = np.zeros(n_total)
    for strike in spec.strikes:
        start = round(strike.onset_s * sample_rate_hz)
        if start < n_total:
            out[start:] += _strike(strike, start, n_total - start, sample_rate_hz)
    _fade_out(out, round(END_FADE_S * sample_rate_hz))
    return _level(out, sample_rate_hz, TARGET_RMS_DBFS + spec.level_offset_db)


def synth_cue(name: str, sample_rate_hz: int = DEFAULT_SAMPLE_RATE_HZ) -> Samples:
    """Return the fixed cue `name` (one of CUE_NAMES) as float32 samples at `sample_rate_hz`."""
    try:
        spec = CUES[name]
    except KeyError:
        raise ValueError(f"unknown cue {name!r}; expected one of {', '.join(CUE_NAMES)}") from None
    return render_cue(spec, sample_rate_hz)


def breath_tone(direction: BreathDirection, duration_s: float, sample_rate_hz: int = DEFAULT_SAMPLE_RATE_HZ) -> Samples:
    """Return a breathing tone of exactly round(duration_s * sample_rate_hz) frames.

    "in" glides up from BREATH_LOW_HZ to BREATH_HIGH_HZ and swells; "out" glides down and
    ebbs; "hold" is a very quiet steady tone at BREATH_HIGH_HZ. Both ends are exactly zero.
    """
    if direction not in BREATH_DIRECTIONS:
        raise ValueError(f"unknown breath direction {direction!r}; expected in, out or hold")
    if not math.isfinite(duration_s) or duration_s < 0.0:
        raise ValueError(f"breath duration must be a finite number of seconds >= 0, not {duration_s}")
    _check_rate(sample_rate_hz)
    n = round(duration_s * sample_rate_hz)
    if n < 3:
        return np.zeros(n, dtype=np.float32)
    progress = np.arange(n) / (n - 1)
    # A raised-cosine path: the glide starts and ends gently, like a breath does.
    smooth = 0.5 - 0.5 * np.cos(np.pi * progress)
    if direction == "in":
        freq_hz = BREATH_LOW_HZ + (BREATH_HIGH_HZ - BREATH_LOW_HZ) * smooth
        swell = 0.55 + 0.45 * smooth
    elif direction == "out":
        freq_hz = BREATH_HIGH_HZ - (BREATH_HIGH_HZ - BREATH_LOW_HZ) * smooth
        swell = 1.0 - 0.45 * smooth
    else:
        freq_hz = np.full(n, BREATH_HIGH_HZ)
        swell = np.ones(n)
    # Integrate frequency to phase so the glide has no phase jumps.
    phase = 2.0 * np.pi * np.concatenate(([0.0], np.cumsum(freq_hz[:-1]))) / sample_rate_hz
    harmonics = ((1, 1.0), (2, 0.3), (3, 0.1)) if direction != "hold" else ((1, 1.0), (2, 0.15))
    tone = sum(a * np.sin(k * phase) for k, a in harmonics)
    edge = min(round(BREATH_EDGE_S * sample_rate_hz), n // 4)
    envelope = swell.copy()
    if edge > 0:
        envelope[:edge] *= _raised_cosine_rise(edge)
    _fade_out(envelope, edge)
    envelope[0] = envelope[-1] = 0.0
    level = BREATH_HOLD_RMS_DBFS if direction == "hold" else BREATH_RMS_DBFS
    return _level(np.asarray(tone * envelope, dtype=np.float64), sample_rate_hz, level)
