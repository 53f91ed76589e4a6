"""Speak through pyttsx3 with espeak-ng (the core engine, and the fallback when Piper is missing).

`Pyttsx3Speaker` is the only code that imports pyttsx3, and only when it first needs
the engine.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import hashlib
import io
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voice_guide.errors import AudioFileError, SpeechEngineError
from voice_guide.sound.levels import Samples
from voice_guide.sound.speech.base import DEFAULT_RATE_WPM, VoiceError, VoiceInfo
from voice_guide.sound.wavfile import read_wav

ENGINE_ID = "espeak"
# Words per minute heard above espeak-ng's rate setting, measured over 95 of the
# library's prompts as the clip cache makes them (sentence pauses included): setting
# 110 -> 121.7, 130 -> 142.6, 150 -> 162.0 wpm. Taking it off makes --rate the pace a
# listener hears, as it is for Piper.
HEARD_WPM_ABOVE_SETTING = 12.0
# Preferred default voices, best first (languages as BCP 47 tags, lower case).
ENGLISH_TAGS = ("en-us", "en-gb", "en")
# espeak-ng speaks several hundred times faster than real time here; a prompt that
# takes this long means the engine is stuck, not busy.
SYNTH_TIMEOUT_S = 20.0
# How many voices an "unknown voice" error suggests.
_SUGGESTED_VOICES = 6


@dataclass(frozen=True)
class _Resolved:
    driver: str
    voice: VoiceInfo


class Pyttsx3Speaker:
    """Speak through pyttsx3 (espeak-ng on Linux) with one voice and rate.

    `voice` is a voice id, a language tag ("en-gb") or a case-insensitive part of a
    voice name; None picks an English voice. Nothing is imported or started until the
    engine is first needed. One prompt at a time per process: espeak-ng is a single
    global engine, and stdout is silenced process-wide while it speaks (about 15 ms).
    """

    def __init__(self, voice: str | None = None, rate_wpm: int = DEFAULT_RATE_WPM) -> None:
        if rate_wpm <= 0:
            raise ValueError(f"rate_wpm must be positive, got {rate_wpm}")
        self._voice_request = voice
        self._rate_wpm = int(rate_wpm)
        self._resolved: _Resolved | None = None

    @property
    def engine_id(self) -> str:
        """Name the engine as "pyttsx3-<driver>", e.g. "pyttsx3-espeak"."""
        return f"pyttsx3-{self._ready().driver}"

    @property
    def voice(self) -> VoiceInfo:
        """Return the voice this speaker uses (starts the engine to find it)."""
        return self._ready().voice

    @property
    def voice_id(self) -> str:
        """Return the engine's id of the voice, e.g. "gmw/en-us"."""
        return self._ready().voice.id

    @property
    def voice_digest(self) -> str:
        """Return the sha256 of the voice's id: espeak-ng's voices come with the system and are named by id."""
        return hashlib.sha256(f"espeak-ng voice {self.voice_id}".encode()).hexdigest()

    @property
    def rate_wpm(self) -> int:
        """Return the speaking rate in words per minute, as heard."""
        return self._rate_wpm

    @property
    def engine_rate(self) -> int:
        """Return the rate setting handed to espeak-ng for `rate_wpm`."""
        return max(1, round(self._rate_wpm - HEARD_WPM_ABOVE_SETTING))

    def synthesize(self, text: str) -> tuple[Samples, int]:
        """Speak `text` into memory; return (samples, sample_rate_hz) as the engine made them."""
        if not text.strip():
            raise SpeechEngineError("cannot speak an empty prompt", "give the prompt some words")
        ready = self._ready()
        # One retry with a fresh engine: an attempt only comes back empty-handed when
        # the engine never reported the utterance finished.
        for _attempt in range(2):
            result = self._synthesize_once(text, ready)
            if result is not None:
                return result
        raise SpeechEngineError(
            f"text-to-speech engine produced no audio for prompt {text!r}",
            f"it did not finish within {SYNTH_TIMEOUT_S:g} s; try again or reinstall espeak-ng",
        )

    def _ready(self) -> _Resolved:
        if self._resolved is None:
            engine = _new_engine()
            driver = str(getattr(engine, "driver_name", None) or engine)
            voices = _voices_of(engine)
            current = engine.getProperty("voice")
            del engine
            chosen = _choose_voice(voices, self._voice_request, current if isinstance(current, str) else None)
            self._resolved = _Resolved(driver=driver, voice=chosen)
        return self._resolved

    def _synthesize_once(self, text: str, ready: _Resolved) -> tuple[Samples, int] | None:
        with tempfile.TemporaryDirectory(prefix="voice-guide-tts-") as folder:
            path = Path(folder) / "prompt.wav"
            errors = self._run_engine(text, ready, path)
            if errors:
                raise SpeechEngineError(
                    f"text-to-speech engine failed on prompt {text!r}: {errors[0]}",
                    "try another voice (see 'voice-guide voices')",
                )
            if not path.is_file():
                return None
            try:
                return read_wav(path)
            except AudioFileError as exc:
                raise SpeechEngineError(
                    f"text-to-speech engine wrote an unreadable file: {exc.message}", "reinstall espeak-ng"
                ) from None

    def _run_engine(self, text: str, ready: _Resolved, path: Path) -> list[str]:
        # A fresh engine for every prompt, never pyttsx3.init()'s shared one: the espeak
        # driver routes all audio to the most recently created engine and keeps stale
        # state (last text, last file) between runs, so a reused engine can hang in
        # runAndWait or write the wrong prompt once anything else has created one.
        # A fresh engine also starts busy, so runAndWait's end-of-loop command runs
        # inside its loop and the loop cannot spin forever.
        engine = _new_engine(ready.driver)
        errors: list[str] = []
        finished = threading.Event()

        def on_error(**event: Any) -> None:
            # Keep only the text: an exception would hold the engine alive via its traceback.
            errors.append(str(event.get("exception")))

        def on_finished(**_event: Any) -> None:
            finished.set()

        engine.connect("error", on_error)
        engine.connect("finished-utterance", on_finished)
        # pyttsx3's espeak driver sets espeak-ng's one global synth callback to NULL when any
        # engine object is destroyed; an old engine freed by the cyclic collector while
        # espeak-ng's thread makes this prompt made it call a null pointer (a segfault in
        # Synth, seen once in three full test runs). No automatic collection meanwhile.
        collecting = gc.isenabled()
        gc.disable()
        try:
            with _stdout_silenced():
                _apply_settings(engine, ready, self.engine_rate)
                engine.save_to_file(text, str(path))
                engine.runAndWait()
                # The espeak driver hands the text to espeak-ng's own thread and returns
                # after 10 ms; the file is complete (and its "Audio saved" line printed)
                # only when that thread reports the utterance finished.
                if not finished.wait(SYNTH_TIMEOUT_S):
                    engine.stop()  # cancel, so a late tail cannot land in the next prompt
        except SpeechEngineError:
            raise
        except Exception as exc:  # pyttsx3 and its drivers raise assorted types
            raise SpeechEngineError(
                f"text-to-speech engine failed on prompt {text!r}: {exc}",
                "try again; if it persists, reinstall espeak-ng",
            ) from None
        finally:
            del engine
            if collecting:
                gc.enable()
        return errors


def _apply_settings(engine: Any, ready: _Resolved, rate_wpm: int) -> None:
    """Set the voice and the engine's rate setting and, with espeak, wait until they are in force."""
    engine.setProperty("voice", ready.voice.id)
    engine.setProperty("rate", rate_wpm)
    if ready.driver != "espeak":
        return  # the settings go in with the run loop
    # espeak-ng applies a rate change later, on its own thread, and the first thing the
    # run loop does (endLoop -> stop -> espeak_Cancel) throws away commands still
    # waiting there: about 3 prompts in 100 came out at the previous rate. So run the
    # queued settings now, wait until espeak's queue is empty, then hold pyttsx3's queue
    # again so save_to_file and endLoop run inside the loop, as on any fresh engine.
    # pyttsx3 offers no public way to do this (its getProperty("rate") passes espeak
    # one argument too few and may read the default), hence the driver's own module.
    proxy: Any = getattr(engine, "proxy", None)
    try:
        from pyttsx3.drivers import _espeak
    except ImportError:
        return
    is_playing = getattr(_espeak, "IsPlaying", None)
    if not callable(is_playing) or not callable(getattr(proxy, "setBusy", None)):
        return
    proxy.setBusy(False)
    deadline = time.monotonic() + SYNTH_TIMEOUT_S
    while is_playing():
        if time.monotonic() > deadline:
            raise SpeechEngineError(
                f"text-to-speech engine did not take the rate {rate_wpm} wpm",
                "try again; if it persists, reinstall espeak-ng",
            )
        time.sleep(0.001)
    proxy.setBusy(True)


def list_voices() -> list[VoiceInfo]:
    """List the voices espeak-ng offers through pyttsx3, in the engine's order."""
    return _voices_of(_new_engine())


def _new_engine(driver: str | None = None) -> Any:
    try:
        import pyttsx3
    except ImportError as exc:
        raise SpeechEngineError(
            f"text-to-speech engine not available: {exc}", "install the Python package: pip install pyttsx3"
        ) from None
    try:
        return pyttsx3.Engine(driver)
    except Exception as exc:  # missing libespeak-ng shows up as OSError, RuntimeError or ImportError
        raise SpeechEngineError(f"text-to-speech engine not available: {exc}", _install_hint()) from None


def _install_hint() -> str:
    if sys.platform.startswith("linux"):
        return "install it: sudo apt-get install espeak-ng"
    return "check that the system's speech engine works"


def _voices_of(engine: Any) -> list[VoiceInfo]:
    found: list[VoiceInfo] = []
    for v in engine.getProperty("voices") or []:
        voice_id = str(getattr(v, "id", "") or "")
        # MBROLA voices speak at 16 kHz, but pyttsx3's espeak driver labels every file
        # 22050 Hz, so they would play too fast and too high.
        if not voice_id or voice_id.startswith("mb/"):
            continue
        name = str(getattr(v, "name", "") or voice_id)
        languages = tuple(_language_tag(lang) for lang in (getattr(v, "languages", None) or []))
        found.append(VoiceInfo(id=voice_id, name=name, languages=tuple(t for t in languages if t)))
    return found


def _language_tag(raw: object) -> str:
    # espeak gives "en-us", NSSpeechSynthesizer "en_US", some drivers bytes.
    text = raw.decode("utf-8", "ignore") if isinstance(raw, bytes) else str(raw)
    return text.strip().lower().replace("_", "-")


def _english_rank(voice: VoiceInfo) -> int | None:
    """Rank how well `voice` fits as the default English voice (lower is better, None: not English)."""
    id_tail = voice.id.lower().rsplit("/", 1)[-1]
    for rank, tag in enumerate(ENGLISH_TAGS):
        if tag in voice.languages or id_tail == tag:
            return rank
    if any(lang.startswith("en-") for lang in voice.languages) or "english" in voice.name.lower():
        return len(ENGLISH_TAGS)
    return None


def _choose_voice(voices: Sequence[VoiceInfo], request: str | None, current_id: str | None) -> VoiceInfo:
    if not voices:
        raise SpeechEngineError("text-to-speech engine offers no voices", "reinstall espeak-ng (espeak-ng-data)")
    if request is None:
        ranked = [(rank, i) for i, v in enumerate(voices) if (rank := _english_rank(v)) is not None]
        if ranked:
            return voices[min(ranked)[1]]
        # No English voice installed: the engine's own default beats an arbitrary first one.
        return next((v for v in voices if v.id == current_id), voices[0])
    wanted = request.strip().lower()
    exact = [
        v
        for v in voices
        if wanted in (v.id.lower(), v.id.lower().rsplit("/", 1)[-1], v.name.lower()) or wanted in v.languages
    ]
    if exact:
        return exact[0]
    partial = [v for v in voices if wanted and wanted in v.name.lower()]
    if partial:
        # "english" matches a dozen; the shortest name is the plainest variant.
        return min(partial, key=lambda v: len(v.name))
    suggestions = sorted(voices, key=lambda v: (_english_rank(v) is None, _english_rank(v) or 0))[:_SUGGESTED_VOICES]
    listed = ", ".join(f"{v.name} ({v.id})" for v in suggestions)
    raise VoiceError(f"--voice {request}: no espeak-ng voice matches", f"available voices include: {listed}")


@contextlib.contextmanager
def _stdout_silenced() -> Iterator[None]:
    """Discard whatever is written to stdout meanwhile, by Python code or by C (file descriptor 1)."""
    # pyttsx3's espeak driver prints "Audio saved to ..." after every file.
    _flush_python_stdout()
    _flush_c_stdio()
    saved_fd: int | None
    try:
        saved_fd = os.dup(1)
    except OSError:  # no stdout at all (a detached process): nothing to protect
        saved_fd = None
    if saved_fd is not None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        # Push out what was buffered during the call while stdout still leads nowhere.
        _flush_python_stdout()
        _flush_c_stdio()
        if saved_fd is not None:
            os.dup2(saved_fd, 1)
            os.close(saved_fd)


def _flush_python_stdout() -> None:
    for stream in (sys.stdout, sys.__stdout__):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()


def _flush_c_stdio() -> None:
    # fflush(NULL) flushes every C stdio stream; not available on every platform.
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(None).fflush(None)
