"""A labelled corpus of real recorded speech, built at run time from installed packages, and its noisy mixes.

Sources (all real human recordings; see bench/CORPUS.md for the licences):
- Debian asterisk-core-sounds-{en,fr,it,es,ru}-g722: telephone prompts read by five
  professional voices (en-US and es-MX Allison Smith, fr-CA June Wallack, it-IT Carlo
  Flora, ru-RU IVRvoice), 16 kHz G.722. CC-BY-SA-3.0 (en, es, fr), CC-BY-3.0 (it, ru).
- Debian codec2-examples: the codec's classic test sentences (several speakers, 8 kHz). LGPL-2.1.
- Debian alsa-utils: the spoken channel names of `speaker-test`. GPL-2+.
- PyPI pyannote.audio (wheel, MIT): `sample.wav`, 30 s of two people in conversation with
  its own speaker annotation (`sample.rttm`); used when the wheel can be fetched with pip.

Labels: a frame (10 ms) of a clean prompt is speech when it lies within `RANGE_DB` of the
clip's loudest frame and `ROOM_DB` above the clip's own room tone (its 10th percentile
level); pauses shorter than `BRIDGE_S` count as speech (a listener hears one utterance)
and runs shorter than 30 ms are dropped. The pyannote clip uses its own annotation, with the
same bridging. A prompt set is split by file: every third prompt of each voice is test
data, the others tuning data; babble is made only from the es and ru voices.

Nothing here is pure: it decodes files with ffmpeg and may call pip. The detectors under
test never see any of it but samples.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.signals import Frames, steady_noise
from voice_guide.sound.levels import Samples

FRAME_S = 0.01
RANGE_DB = 38.0
ROOM_DB = 10.0
BRIDGE_S = 0.3
GAP_RANGE_S = (0.8, 2.0)
ASTERISK = Path("/usr/share/asterisk/sounds")
VOICES = {
    "en": "en_US_f_Allison",
    "fr": "fr_CA_f_June",
    "it": "it_IT_m_Carlo",
    "es": "es_MX_f_Allison",
    "ru": "ru_RU_f_IvrvoiceRU",
}
CODEC2 = Path("/usr/share/codec2/wav")
# The clean studio sentences; the others are off-air radio recordings with their own noise.
CODEC2_CLIPS = ("hts1a", "hts2a", "morig", "forig", "big_dog", "cross")
ALSA = Path("/usr/share/sounds/alsa")
ALSA_SPEECH = (
    "Front_Center",
    "Front_Left",
    "Front_Right",
    "Rear_Center",
    "Rear_Left",
    "Rear_Right",
    "Side_Left",
    "Side_Right",
)
DEBS = (*(f"asterisk-core-sounds-{lang}-g722" for lang in VOICES), "codec2-examples", "alsa-utils")
PYANNOTE_CACHE = Path(tempfile.gettempdir()) / "voice-guide-bench" / "pyannote"
# How many prompts of each voice go into the test and the tuning corpus.
TEST_TAKE = {"en": 14, "fr": 10, "it": 10}
TUNE_TAKE = {"en": 30, "fr": 25, "it": 25}
ROOM_DBFS = -60.0
"""Every mix has at least a quiet room's hiss: a real microphone never sends exact zeros."""


def decode(path: Path, sample_rate_hz: int) -> Samples:
    """Return a sound file as mono float32 at `sample_rate_hz`, decoded and resampled by ffmpeg."""
    fmt = ["-f", "g722"] if path.suffix == ".g722" else []
    out = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", *fmt, "-i", str(path), "-f", "f32le", "-ac", "1", "-ar",
         str(sample_rate_hz), "-"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    return np.frombuffer(out.stdout, "<f4").copy()


def levels_db(x: Samples, sample_rate_hz: int) -> npt.NDArray[np.float64]:
    """Return the level in dBFS of each whole 10 ms frame."""
    n = round(sample_rate_hz * FRAME_S)
    f = x[: x.size // n * n].reshape(-1, n).astype(np.float64)
    return np.asarray(10.0 * np.log10(np.maximum((f * f).mean(axis=1), 1e-12)))


def bridge(on: Frames, gap: int, least: int = 0) -> Frames:
    """Fill False runs of at most `gap` frames between True ones; then drop True runs shorter than `least`."""
    out = on.copy()
    idx = np.flatnonzero(out)
    for a, b in zip(idx[:-1].tolist(), idx[1:].tolist(), strict=True):
        if 1 < b - a <= gap:
            out[a:b] = True
    if least:
        edges = np.flatnonzero(np.diff(out.astype(np.int8), prepend=0, append=0)).tolist()
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            if b - a < least:
                out[a:b] = False
    return out


def label_clip(x: Samples, sample_rate_hz: int) -> Frames:
    """Return the speech label of each 10 ms frame of a clean recording (see the module notes)."""
    lv = levels_db(x, sample_rate_hz)
    room = float(np.percentile(lv, 10))
    on = lv >= max(float(lv.max()) - RANGE_DB, room + ROOM_DB)
    return bridge(on, round(BRIDGE_S / FRAME_S), least=3)


def trimmed(x: Samples, labels: Frames, sample_rate_hz: int, margin_s: float = 0.05) -> tuple[Samples, Frames]:
    """Cut a prompt to its speech and `margin_s` either side, with 10 ms fades.

    Studio prompts carry their own room tone (up to 30 dB under the voice) that starts and
    stops with the file; laid into a longer signal it would be a sound the labels call
    silence. Cut this close, what is left of it lies next to the speech.
    """
    on = np.flatnonzero(labels)
    if not on.size:
        return x[:0], labels[:0]
    n = round(sample_rate_hz * FRAME_S)
    margin = round(margin_s / FRAME_S)
    lo, hi = max(0, int(on[0]) - margin), min(labels.size, int(on[-1]) + 1 + margin)
    cut = x[lo * n : hi * n].copy()
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    cut[:n] *= ramp
    cut[-n:] *= ramp[::-1]
    return cut, labels[lo:hi]


@dataclass(frozen=True)
class Clip:
    """One recording with a speech label per 10 ms frame."""

    samples: Samples
    labels: Frames
    source: str


def missing_packages() -> list[str]:
    """Return the Debian packages of the corpus that are not installed."""
    probes = {f"asterisk-core-sounds-{lang}-g722": ASTERISK / voice for lang, voice in VOICES.items()}
    probes |= {"codec2-examples": CODEC2, "alsa-utils": ALSA / "Front_Center.wav"}
    return [pkg for pkg, path in probes.items() if not path.exists()]


def prompt_files(lang: str) -> list[Path]:
    """Return a voice's prompts of 1.5-8 s (G.722 is 8000 bytes a second), sorted by name."""
    return sorted(p for p in (ASTERISK / VOICES[lang]).glob("*.g722") if 12000 <= p.stat().st_size <= 64000)


def split(files: list[Path], part: str) -> list[Path]:
    """Return the test part (every third file) or the tuning part (the others)."""
    return files[0::3] if part == "test" else [f for i, f in enumerate(files) if i % 3]


@functools.cache
def clips(sample_rate_hz: int, part: str = "test") -> tuple[Clip, ...]:
    """Return the labelled recordings of one part of the corpus."""
    out: list[Clip] = []
    for lang, n in (TEST_TAKE if part == "test" else TUNE_TAKE).items():
        for p in split(prompt_files(lang), part)[:n]:
            out.append(_clip(decode(p, sample_rate_hz), sample_rate_hz, f"{lang}:{p.stem}"))
    if part == "test":
        for name in CODEC2_CLIPS:
            out.append(_clip(decode(CODEC2 / f"{name}.wav", sample_rate_hz), sample_rate_hz, f"codec2:{name}"))
    if part == "test":
        for name in ALSA_SPEECH:
            out.append(_clip(decode(ALSA / f"{name}.wav", sample_rate_hz), sample_rate_hz, f"alsa:{name}"))
    return tuple(out)


def _clip(x: Samples, sample_rate_hz: int, source: str) -> Clip:
    cut, labels = trimmed(x, label_clip(x, sample_rate_hz), sample_rate_hz)
    return Clip(cut, labels, source)


def prompt(lang: str, name: str, sample_rate_hz: int) -> Clip:
    """Return one voice's prompt by file name, labelled and cut to its speech as the corpus has it."""
    return _clip(decode(ASTERISK / VOICES[lang] / f"{name}.g722", sample_rate_hz), sample_rate_hz, f"{lang}:{name}")


def pyannote_sample() -> tuple[Path, Path] | None:
    """Return the pyannote.audio sample (wav, rttm), fetching the wheel with pip once; None if it cannot be had."""
    wav, rttm = PYANNOTE_CACHE / "sample.wav", PYANNOTE_CACHE / "sample.rttm"
    if not wav.exists():
        PYANNOTE_CACHE.mkdir(parents=True, exist_ok=True)
        got = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(PYANNOTE_CACHE), "pyannote.audio"],
            capture_output=True, timeout=300, check=False,
        )  # fmt: skip
        wheels = sorted(PYANNOTE_CACHE.glob("pyannote_audio-*.whl"))
        if got.returncode != 0 or not wheels:
            return None
        with zipfile.ZipFile(wheels[-1]) as z:
            for member, target in (
                ("pyannote/audio/sample/sample.wav", wav),
                ("pyannote/audio/sample/sample.rttm", rttm),
            ):
                target.write_bytes(z.read(member))
    return wav, rttm


def conversation(sample_rate_hz: int) -> Clip | None:
    """Return the pyannote conversation labelled from its own annotation, or None without it."""
    found = pyannote_sample()
    if found is None:
        return None
    wav, rttm = found
    x = decode(wav, sample_rate_hz)
    on = np.zeros(x.size // round(sample_rate_hz * FRAME_S), dtype=np.bool_)
    for line in rttm.read_text().splitlines():
        fields = line.split()
        start, length = float(fields[3]), float(fields[4])
        on[round(start / FRAME_S) : round((start + length) / FRAME_S)] = True
    return Clip(x, bridge(on, round(BRIDGE_S / FRAME_S)), "pyannote:sample")


def long_answer(sample_rate_hz: int, part: str = "test", seconds: float = 40.0, seed: int = 5) -> Clip:
    """Return one voice's prompts back to back with breath-length pauses: a long answer that never stops."""
    rng = np.random.default_rng(seed)
    lang = "en" if part == "test" else "es"
    n = round(sample_rate_hz * FRAME_S)
    parts: list[Samples] = []
    labels: list[Frames] = []
    total_s = 0.0
    for p in split(prompt_files(lang), part)[::-1]:
        x = decode(p, sample_rate_hz)
        lab = label_clip(x, sample_rate_hz)
        on = np.flatnonzero(lab)
        if not on.size:
            continue
        x, lab = x[on[0] * n : (on[-1] + 1) * n], lab[on[0] : on[-1] + 1]
        gap = round(rng.uniform(0.12, 0.28) / FRAME_S)
        parts += [x, np.zeros(gap * n, np.float32)]
        labels += [lab, np.ones(gap, np.bool_)]
        total_s += x.size / sample_rate_hz
        if total_s >= seconds:
            break
    labels[-1] = np.zeros_like(labels[-1])
    return Clip(np.concatenate(parts), np.concatenate(labels), f"{lang}:long answer")


@dataclass(frozen=True)
class Corpus:
    """Clips laid end to end with silent gaps, and one speech label per 10 ms frame."""

    samples: Samples
    labels: Frames
    sample_rate_hz: int
    sources: tuple[str, ...]

    def speech_power(self) -> float:
        """Return the mean square of the clean signal over the labelled frames."""
        n = round(self.sample_rate_hz * FRAME_S)
        f = self.samples[: self.labels.size * n].reshape(-1, n)[self.labels].astype(np.float64)
        return float(np.mean(f * f))


def build(sample_rate_hz: int, part: str = "test", seed: int = 1, with_conversation: bool = True) -> Corpus:
    """Return one part of the corpus: its clips in a shuffled order, 0.8-2 s of silence between them."""
    items = list(clips(sample_rate_hz, part))
    talk = conversation(sample_rate_hz) if part == "test" and with_conversation else None
    if talk is not None:
        items.append(talk)
    items.append(long_answer(sample_rate_hz, part))
    return lay_out(items, sample_rate_hz, seed)


SMALL_PACKAGES = ("asterisk-core-sounds-en-g722", "alsa-utils")


@functools.cache
def small(sample_rate_hz: int, seed: int = 1) -> Corpus:
    """Return the part of the test corpus the unit tests use (SMALL_PACKAGES only): 8 en prompts, the alsa names."""
    items = [
        _clip(decode(p, sample_rate_hz), sample_rate_hz, f"en:{p.stem}") for p in split(prompt_files("en"), "test")[:8]
    ]
    items += [
        _clip(decode(ALSA / f"{name}.wav", sample_rate_hz), sample_rate_hz, f"alsa:{name}") for name in ALSA_SPEECH
    ]
    return lay_out(items, sample_rate_hz, seed)


def lay_out(items: list[Clip], sample_rate_hz: int, seed: int = 1) -> Corpus:
    """Lay clips end to end in a shuffled order after 1.5 s of silence, 0.8-2 s of silence between them."""
    rng = np.random.default_rng(seed)
    n = round(sample_rate_hz * FRAME_S)
    lead = round(1.5 / FRAME_S)
    xs: list[Samples] = [np.zeros(lead * n, np.float32)]
    ls: list[Frames] = [np.zeros(lead, np.bool_)]
    for i in rng.permutation(len(items)).tolist():
        c = items[i]
        frames = min(c.samples.size // n, c.labels.size)
        gap = round(rng.uniform(*GAP_RANGE_S) / FRAME_S)
        xs += [c.samples[: frames * n], np.zeros(gap * n, np.float32)]
        ls += [c.labels[:frames], np.zeros(gap, np.bool_)]
    return Corpus(np.concatenate(xs), np.concatenate(ls), sample_rate_hz, tuple(c.source for c in items))


# ---------------------------------------------------------------- conditions


@functools.cache
def _prompt(path: Path, sample_rate_hz: int) -> Samples:
    return decode(path, sample_rate_hz)


def babble(
    n: int, sample_rate_hz: int, rng: np.random.Generator, voices: int = 6, files: list[Path] | None = None
) -> Samples:
    """Return unit-power babble (a TV or a party next door): `voices` streams of prompts, each unbroken.

    The prompts are the es and ru voices' unless `files` are given (the unit tests, which have only en).
    """
    if files is None:
        files = [f for lang in ("es", "ru") for f in prompt_files(lang)]
    out = np.zeros(n, np.float64)
    for _ in range(voices):
        stream: list[Samples] = []
        total = 0
        while total < n:
            x = _prompt(files[int(rng.integers(len(files)))], sample_rate_hz)
            stream.append(x)
            total += x.size
        s = np.roll(np.concatenate(stream), int(rng.integers(total)))[:n].astype(np.float64)
        out += s / np.sqrt(np.mean(s * s))
    rms = float(np.sqrt(np.mean(out * out)))
    return (out / rms).astype(np.float32)


def room_impulse(sample_rate_hz: int, rt60_s: float = 0.5, seed: int = 11) -> npt.NDArray[np.float64]:
    """Return a synthetic room response: the direct sound, then diffuse noise decaying 60 dB in `rt60_s`."""
    rng = np.random.default_rng(seed)
    n = round(rt60_s * sample_rate_hz)
    t = np.arange(n) / sample_rate_hz
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60_s)
    tail[: round(0.005 * sample_rate_hz)] = 0.0
    # As much diffuse energy as direct: a talker a couple of metres from the microphone.
    tail /= np.sqrt(np.sum(tail * tail))
    tail[0] = 1.0
    return np.asarray(tail)


def convolve(x: Samples, h: npt.NDArray[np.float64]) -> Samples:
    """Return `x` convolved with `h`, cut to the length of `x`."""
    size = 1 << (x.size + h.size - 2).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: x.size].astype(np.float32)


CONDITIONS: tuple[tuple[str, str | None, float | None], ...] = (
    ("clean", None, None),
    ("pink 20 dB", "pink", 20),
    ("pink 10 dB", "pink", 10),
    ("pink 5 dB", "pink", 5),
    ("white 20 dB", "white", 20),
    ("white 10 dB", "white", 10),
    ("white 5 dB", "white", 5),
    ("brown 20 dB", "brown", 20),
    ("brown 10 dB", "brown", 10),
    ("brown 5 dB", "brown", 5),
    ("babble 10 dB", "babble", 10),
    ("babble 5 dB", "babble", 5),
    ("reverb", "reverb", None),
    ("reverb+pink 10", "reverb+pink", 10),
)
"""(name, noise kind, SNR in dB) of every benchmark condition."""


def mix(corpus: Corpus, kind: str | None, snr_db: float | None, seed: int = 7) -> Samples:
    """Return the corpus in one condition; SNR is speech power over the labelled frames against the noise's."""
    rng = np.random.default_rng(seed)
    rate = corpus.sample_rate_hz
    x = corpus.samples
    if kind is not None and kind.startswith("reverb"):
        x = convolve(x, room_impulse(rate))
        kind = "pink" if kind == "reverb+pink" else None
    x = x + steady_noise(x.size, rate, rng) * np.float32(10.0 ** (ROOM_DBFS / 20.0))
    if kind is None or snr_db is None:
        return x.astype(np.float32)
    noise = babble(x.size, rate, rng) if kind == "babble" else steady_noise(x.size, rate, rng, kind)
    gain = np.sqrt(corpus.speech_power() / 10.0 ** (snr_db / 10.0))
    return (x + noise * np.float32(gain)).astype(np.float32)
