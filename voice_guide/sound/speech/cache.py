"""Keep every prompt's conditioned clip on disk, made once per engine, voice file, rate and text.

A prompt is spoken sentence by sentence and the sentences joined with a short pause,
the same way for every engine, so the pause (and with it the pace) does not depend on
how an engine phrases a paragraph.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from voice_guide.errors import AudioFileError, SpeechEngineError
from voice_guide.paths import UserDirs, audio_assets_dir
from voice_guide.sound.clips import condition, trim_silence
from voice_guide.sound.levels import Samples, loudness_lufs
from voice_guide.sound.speech.base import Speaker, SpeechIdentity
from voice_guide.sound.speech.pieces import speakable_pieces
from voice_guide.sound.tones import CUE_NAMES, synth_cue
from voice_guide.sound.wavfile import read_wav, wav_bytes, write_wav

# Part of every cache key: bump it whenever `clips.condition`, the sentence joining, the
# loudness target or the stored format changes, so old clips are not played as if new.
CLIP_FORMAT_VERSION = 3
# Quiet between two sentences of one prompt: long enough to hear the full stop, short
# enough that the prompt still sounds like one thought.
SENTENCE_PAUSE_S = 0.45
# A sentence ends at . ! or ? (with closing quotes) followed by a space.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"')\]])\s+")
_TERMINAL = (".", "!", "?")
# How far under the loudness target a clip may land before it is aimed again (LU).
LOUDNESS_TOLERANCE_DB = 0.2
# The rate cues are generated at when their files are missing (Hz).
CUE_RATE_HZ = 48_000
# Cues quieter than the rest on purpose (tones.QUIET_CUE_OFFSET_DB).
QUIET_CUES = ("remind", "soft")


def sentences(text: str) -> list[str]:
    """Split a prompt into its sentences; the last one ends with a full stop if it had no end mark.

    Without an end mark, engines keep the pitch up as if more were coming, so the
    prompt would end on a dangling word.
    """
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip()) if p and p.strip()]
    if parts and not parts[-1].rstrip("\"')]").endswith(_TERMINAL):
        parts[-1] += "."
    return parts


def speech_loudness_lufs() -> float:
    """Return the loudness prompts are brought to: that of the full-level cues (median, LUFS).

    Both engines then sound as loud as each other and as the chimes; cues are
    normalized by their own RMS measure, so their loudness is measured, not assumed.
    """
    levels = [loudness_lufs(*_cue(name)) for name in CUE_NAMES if name not in QUIET_CUES]
    return float(np.median(levels))


def _cue(name: str) -> tuple[Samples, int]:
    """Return a cue as sessions play it: the shipped file (quick to read), else its generator."""
    asset = audio_assets_dir() / f"{name}.wav"
    if asset.is_file():
        with contextlib.suppress(AudioFileError):
            return read_wav(asset)
    return synth_cue(name, CUE_RATE_HZ), CUE_RATE_HZ


def speech_identity(speaker: Speaker) -> SpeechIdentity:
    """Return what a speaker's clips are made with."""
    return SpeechIdentity(speaker.engine_id, speaker.voice_id, speaker.voice_digest, speaker.rate_wpm)


SEED_INDEX = "index.json"


def read_seed_index(folder: Path) -> dict[str, str]:
    """Return {text: clip file name} of a seeds folder (empty when it has no readable index)."""
    try:
        data = json.loads((folder / SEED_INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def default_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Return the user's cache folder: <VOICE_GUIDE_HOME>/cache, else the platform's cache dir."""
    return UserDirs.from_environ(environ).cache


class ClipCache:
    """Conditioned speech clips at `sample_rate_hz`, one WAV per prompt in `folder`.

    A clip is synthesized once per (engine, voice digest, rate, sample rate, text);
    files are written atomically, so processes sharing the folder never read half a
    clip. One prompt is synthesized at a time, so the cache may be used from a
    background thread and the main thread together. `synth_calls` counts how often the
    engine was asked to speak a prompt. `seeds` is a folder of clips made ahead and
    shipped, named by the same key: one found there is copied in instead of synthesized.
    """

    def __init__(self, folder: Path, speaker: Speaker, sample_rate_hz: int, seeds: Path | None = None) -> None:
        if sample_rate_hz <= 0:
            raise ValueError(f"sample_rate_hz must be positive, got {sample_rate_hz}")
        self.folder = Path(folder)
        self.speaker = speaker
        self.sample_rate_hz = int(sample_rate_hz)
        self.seeds = seeds
        self._seed_texts: frozenset[str] | None = None
        self.synth_calls = 0
        self._lock = threading.Lock()
        self._identity: list[object] | None = None
        self._loudness_lufs: float | None = None

    def key(self, text: str) -> str:
        """Return the hex sha256 naming the clip of `text` with this engine, voice, rate and sample rate."""
        if self._identity is None:
            s = self.speaker
            self._identity = [
                CLIP_FORMAT_VERSION,
                s.engine_id,
                s.voice_id,
                s.voice_digest,
                s.rate_wpm,
                self.sample_rate_hz,
            ]
        # JSON keeps field boundaries unambiguous ("a|b" + "c" never equals "a" + "b|c").
        return hashlib.sha256(json.dumps([*self._identity, text], ensure_ascii=False).encode("utf-8")).hexdigest()

    def path_for(self, text: str) -> Path:
        """Return where the clip of `text` is (or will be) stored."""
        return self.folder / f"{self.key(text)}.wav"

    def cached(self, text: str) -> bool:
        """Return True when the clip of `text` is on disk already (in the cache or the seeds)."""
        path = self.path_for(text)
        return path.is_file() or self._seed_of(path) is not None

    def get(self, text: str) -> Samples:
        """Return the conditioned clip of `text` at sample_rate_hz: cached, else seeded, else synthesized."""
        if self._identity is None and text in self._seeded_texts():
            # A shipped clip may serve this prompt: check the voice without loading its model
            # too (the load would slow the first sound; it starts when a prompt needs it).
            check = getattr(self.speaker, "check", None)
            if callable(check):
                check(load_meanwhile=False)
        path = self.path_for(text)
        cached = self._load(path)
        if cached is None:
            cached = self._from_seed(path)
        if cached is not None:
            return cached
        return self._synthesize(text, path)

    def prepare(self, texts: Iterable[str], progress: Callable[[int, int], None] | None = None) -> None:
        """Synthesize every text not cached yet, each once.

        `progress(done, total)` is called with (0, total) first and after each clip;
        `total` counts only the clips that need the engine.
        """
        unique = list(dict.fromkeys(texts))
        paths = [self.path_for(text) for text in unique]
        # Existence is enough here (files are written atomically); `get` still remakes
        # a clip that something outside damaged, so a whole library is not read twice.
        missing = [
            (text, path)
            for text, path in zip(unique, paths, strict=True)
            if not path.is_file() and self._from_seed(path) is None
        ]
        if progress is not None:
            progress(0, len(missing))
        for done, (text, path) in enumerate(missing, start=1):
            self._synthesize(text, path)
            if progress is not None:
                progress(done, len(missing))

    def _seeded_texts(self) -> frozenset[str]:
        """Return the texts the seeds folder has clips of (its index.json; empty when absent or damaged)."""
        if self._seed_texts is None:
            self._seed_texts = frozenset(read_seed_index(self.seeds)) if self.seeds is not None else frozenset()
        return self._seed_texts

    def _seed_of(self, path: Path) -> Path | None:
        seed = None if self.seeds is None else self.seeds / path.name
        return seed if seed is not None and seed.is_file() else None

    def _from_seed(self, path: Path) -> Samples | None:
        """Copy the shipped clip named like `path` into the cache; return it, or None when there is none."""
        seed = self._seed_of(path)
        clip = None if seed is None else self._load(seed)
        if clip is None:
            return None
        # Copied, so the cache alone holds every clip a session used (a later run finds it there).
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
            write_wav(path, clip, self.sample_rate_hz)
        return clip

    def _load(self, path: Path) -> Samples | None:
        if not path.is_file():
            return None
        try:
            samples, rate = read_wav(path)
        except AudioFileError:
            return None  # damaged by something outside us: make it again
        if rate != self.sample_rate_hz or samples.size == 0:
            return None
        return samples

    def _synthesize(self, text: str, path: Path) -> Samples:
        if not text.strip():
            raise SpeechEngineError("cannot speak an empty prompt", "give the prompt some words")
        with self._lock:
            self.synth_calls += 1
            raw, rate = self._spoken(text)
            target = self._target_lufs()
            clip = condition(raw, rate, self.sample_rate_hz, target_lufs=target)
            # Peak limiting takes a little loudness off speech with high peaks (Piper's):
            # aim once more, that much higher.
            short_db = target - loudness_lufs(clip, self.sample_rate_hz)
            if clip.size and short_db > LOUDNESS_TOLERANCE_DB:
                clip = condition(raw, rate, self.sample_rate_hz, target_lufs=target + short_db)
        if clip.size == 0:
            raise SpeechEngineError(
                f"engine produced no audio for prompt {text!r}",
                "check the prompt has words the voice can say, or try another voice",
            )
        # Return exactly what a later run reads back (16-bit), so first and cached runs match.
        data = wav_bytes(clip, self.sample_rate_hz)
        stored, _ = read_wav(io.BytesIO(data))
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_wav(path, stored, self.sample_rate_hz)
        except OSError as exc:
            raise AudioFileError(
                f"cannot write to the speech cache {self.folder}: {exc.strerror or exc}",
                "make that folder writable, or set VOICE_GUIDE_HOME to one that is",
            ) from None
        return stored

    def _target_lufs(self) -> float:
        if self._loudness_lufs is None:
            self._loudness_lufs = speech_loudness_lufs()
        return self._loudness_lufs

    def _spoken(self, text: str) -> tuple[Samples, int]:
        """Speak each sentence and join them with SENTENCE_PAUSE_S of quiet; return (samples, rate)."""
        pieces: list[Samples] = []
        rate = 0
        # A sentence too long for an engine to take in one go is cut further (speakable_pieces).
        for sentence in (piece for whole in sentences(text) for piece in speakable_pieces(whole)):
            raw, sentence_rate = self.speaker.synthesize(sentence)
            if rate and sentence_rate != rate:
                raise SpeechEngineError(f"engine changed its sample rate within prompt {text!r}", "try another voice")
            rate = sentence_rate
            spoken = trim_silence(raw, rate)
            if spoken.size:
                if pieces:
                    pieces.append(np.zeros(round(SENTENCE_PAUSE_S * rate), dtype=np.float32))
                pieces.append(spoken)
        if not pieces:
            return np.zeros(0, dtype=np.float32), rate or self.sample_rate_hz
        return np.concatenate(pieces).astype(np.float32, copy=False), rate
