"""Generated signals with known answers for the VAD tests: espeak-ng lines, claps, short sounds, onset scores.

Noise and frame F1 come from bench/signals.py and the corpus of real speech from
bench/corpus.py, so the tests and the benchmark score one way. Here, the speech of a
clean espeak-ng clip is every 10 ms frame within `LABEL_RANGE_DB` of its loudest
frame, with pauses shorter than the detector's hangover (`BRIDGE_S`) filled in: the
gaps between words of one phrase count as speech.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.signals import Frames, steady_noise
from voice_guide.live.vad import VadConfig, frame_length, frame_levels_dbfs
from voice_guide.sound.clips import resample
from voice_guide.sound.levels import Samples
from voice_guide.sound.wavfile import read_wav

ALSA_DIR = Path("/usr/share/sounds/alsa")
ESPEAK_LINES = (
    ("en-us", "When you looked at your phone, I felt alone."),
    ("en-gb", "What I hear you saying is that you felt unseen."),
    ("en-us+f3", "Thank you for telling me. That makes sense to me."),
    ("en+m3", "I need to know that my feelings matter to you."),
    ("en-gb-scotland", "Take a slow breath, and tell me what you noticed."),
    ("en-029+f2", "I am sorry. I did not realise how much it hurt."),
)
# Recordings carry room tone and reverberation 40-45 dB under their peaks (the alsa-utils names
# do); 35 dB keeps that out and soft consonants ("f", "th", a final "t") in.
LABEL_RANGE_DB = 35.0
# Pauses shorter than the detector's hangover belong to the utterance (it bridges them by design).
BRIDGE_S = VadConfig().hangover_s


def speech_spans(
    clip: Samples, sample_rate_hz: int, range_db: float = LABEL_RANGE_DB, bridge_s: float = BRIDGE_S
) -> list[tuple[int, int]]:
    """Return (start, end) samples of a clean clip's speech.

    Speech is every 10 ms frame within `range_db` of the clip's loudest frame, with
    pauses shorter than `bridge_s` filled in.
    """
    levels = frame_levels_dbfs(clip, sample_rate_hz)
    loud = np.flatnonzero(levels >= levels.max() - range_db)
    frame_len = frame_length(sample_rate_hz)
    bridge = round(bridge_s * sample_rate_hz / frame_len)
    spans: list[tuple[int, int]] = []
    start = prev = int(loud[0])
    for i in loud[1:].tolist():
        if i - prev - 1 >= bridge:
            spans.append((start * frame_len, (prev + 1) * frame_len))
            start = i
        prev = i
    spans.append((start * frame_len, (prev + 1) * frame_len))
    return spans


def espeak_clips(sample_rate_hz: int) -> list[Samples]:
    """Return ESPEAK_LINES spoken by espeak-ng, resampled to `sample_rate_hz`."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (voice, text) in enumerate(ESPEAK_LINES):
            path = Path(tmp) / f"line{i}.wav"
            subprocess.run(
                ["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True, timeout=60
            )
            x, rate = read_wav(path)
            out.append(resample(x, rate, sample_rate_hz))
    return out


def segments_to_frames(segments: list[tuple[float, float]], n_frames: int, sample_rate_hz: int) -> Frames:
    """Turn (start_s, end_s) segments into one bool per 10 ms frame."""
    frame_s = frame_length(sample_rate_hz) / sample_rate_hz
    out = np.zeros(n_frames, dtype=np.bool_)
    for start_s, end_s in segments:
        out[round(start_s / frame_s) : round(end_s / frame_s)] = True
    return out


def onset_errors_s(
    predicted: Frames, reference: Frames, sample_rate_hz: int, quiet_before_s: float = 0.5
) -> list[float]:
    """Return detected minus true onset in seconds for each utterance onset (after `quiet_before_s` of silence).

    The detected onset is the nearest one within 0.5 s; inf if there is none.
    """
    frame_s = frame_length(sample_rate_hz) / sample_rate_hz
    n = min(predicted.size, reference.size)
    ref = reference[:n].astype(np.int8)
    true_on = np.flatnonzero(np.diff(ref, prepend=0) == 1)
    got_on = np.flatnonzero(np.diff(predicted[:n].astype(np.int8), prepend=0) == 1)
    quiet = round(quiet_before_s / frame_s)
    errors = []
    for t in true_on.tolist():
        if ref[max(0, t - quiet) : t].any():
            continue
        if got_on.size == 0:
            errors.append(float("inf"))
            continue
        nearest = int(got_on[np.argmin(np.abs(got_on - t))])
        errors.append((nearest - t) * frame_s if abs(nearest - t) * frame_s <= 0.5 else float("inf"))
    return errors


def clap(
    sample_rate_hz: int, rng: np.random.Generator, decay_s: float = 0.03, attack_s: float = 0.001, peak: float = 0.5
) -> Samples:
    """Return one synthetic hand clap: broadband noise, linear `attack_s` rise, exponential fall.

    `decay_s` is the time the envelope takes to fall 40 dB.
    """
    attack = max(1, round(attack_s * sample_rate_hz))
    tail = round(4 * decay_s * sample_rate_hz)
    t = np.arange(tail) / sample_rate_hz
    envelope = np.concatenate((np.linspace(0.0, 1.0, attack, endpoint=False), np.exp(-t * np.log(100.0) / decay_s)))
    burst: npt.NDArray[np.float64] = rng.standard_normal(envelope.size) * envelope
    top = float(np.max(np.abs(burst)))
    return (peak * burst / top).astype(np.float32)


def claps_at(
    times_s: list[float],
    duration_s: float,
    sample_rate_hz: int,
    seed: int = 3,
    noise_dbfs: float | None = -60.0,
    **clap_args: float,
) -> Samples:
    """Return a signal of `duration_s` with a clap starting at each of `times_s`, over faint steady noise."""
    rng = np.random.default_rng(seed)
    n = round(duration_s * sample_rate_hz)
    out = np.zeros(n, dtype=np.float32)
    if noise_dbfs is not None:
        out += steady_noise(n, sample_rate_hz, rng, "pink") * np.float32(10.0 ** (noise_dbfs / 20.0))
    for t in times_s:
        c = clap(sample_rate_hz, rng, **clap_args)
        at = round(t * sample_rate_hz)
        out[at : at + c.size] += c[: n - at]
    return out


# ---------------------------------------------------------------- short sounds that are not talk

TRANSIENTS = ("breath", "cough", "knock", "click", "clap", "chair")


def _shaped_noise(n: int, sample_rate_hz: int, rng: np.random.Generator, lo_hz: float, hi_hz: float) -> Samples:
    """Return unit-peak noise with its spectrum cut to lo_hz-hi_hz."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate_hz)
    spectrum[(freqs < lo_hz) | (freqs > hi_hz)] = 0.0
    x = np.fft.irfft(spectrum, n)
    top = float(np.max(np.abs(x)))
    return (x / top).astype(np.float32)


def transient(kind: str, sample_rate_hz: int, seed: int = 0, peak: float = 0.3) -> Samples:
    """Return one generated short sound that a person would not call talking.

    breath: 0.5 s of 300-4000 Hz noise, swelling and fading (an audible in-breath);
    cough: two 0.12 s noise bursts (200-6000 Hz, sharp onset, fast decay) 0.1 s apart;
    knock: two damped 180 Hz/420 Hz rings 0.15 s apart (a knuckle on a table);
    click: a 2 ms impulse (a phone line, a mouse); clap: one hand clap;
    chair: 0.6 s of rough 100-3000 Hz noise, modulated at 20-30 Hz (a chair scraping the floor).
    """
    rng = np.random.default_rng(seed)
    rate = sample_rate_hz

    def env(length_s: float, attack_s: float, decay_s: float) -> npt.NDArray[np.float64]:
        t = np.arange(round(length_s * rate)) / rate
        return np.minimum(t / attack_s, 1.0) * np.exp(-t / decay_s)

    if kind == "breath":
        n = round(0.5 * rate)
        x = _shaped_noise(n, rate, rng, 300, 4000) * np.sin(np.pi * np.arange(n) / n) ** 2
    elif kind == "cough":
        burst = env(0.12, 0.004, 0.04)
        one = _shaped_noise(burst.size, rate, rng, 200, 6000) * burst
        x = np.zeros(round(0.34 * rate), np.float32)
        x[: one.size] += one
        x[round(0.22 * rate) : round(0.22 * rate) + one.size] += 0.7 * one
    elif kind == "knock":
        t = np.arange(round(0.12 * rate)) / rate
        ring = (np.sin(2 * np.pi * 180 * t) + 0.5 * np.sin(2 * np.pi * 420 * t)) * np.exp(-t / 0.015)
        x = np.zeros(round(0.3 * rate), np.float32)
        x[: ring.size] += ring
        x[round(0.15 * rate) : round(0.15 * rate) + ring.size] += ring
    elif kind == "click":
        x = np.zeros(round(0.05 * rate), np.float32)
        x[: round(0.002 * rate)] = rng.choice([-1.0, 1.0], round(0.002 * rate))
    elif kind == "clap":
        x = clap(rate, rng)
    elif kind == "chair":
        n = round(0.6 * rate)
        t = np.arange(n) / rate
        rough = 0.6 + 0.4 * np.sign(np.sin(2 * np.pi * (20 + 10 * t) * t))
        x = _shaped_noise(n, rate, rng, 100, 3000) * rough * np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    else:
        raise ValueError(f"unknown transient {kind!r}; expected one of {', '.join(TRANSIENTS)}")
    x = np.asarray(x, dtype=np.float64)
    top = float(np.max(np.abs(x)))
    return (peak * x / top).astype(np.float32)
