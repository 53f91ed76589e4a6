"""Choose the speech engine and voice a command asked for, and list every voice there is.

Piper (the `neural` extra) is the default when it is installed, espeak-ng through
pyttsx3 otherwise. A `--voice` alone picks its engine: a Piper voice name or an .onnx
path means Piper, anything else an espeak voice.
"""

from __future__ import annotations

from pathlib import Path

from voice_guide.errors import UsageError
from voice_guide.paths import UserDirs
from voice_guide.sound.speech import piper
from voice_guide.sound.speech.base import ENGINES, Speaker, SpeechSettings, VoiceInfo
from voice_guide.sound.speech.espeak import Pyttsx3Speaker, list_voices


def voices_folder(dirs: UserDirs) -> Path:
    """Return where a user's own Piper voices (.onnx with .onnx.json) are looked for by name."""
    return dirs.data / "voices"


def default_engine() -> str:
    """Return "piper" when the neural extra (engine and bundled voice) is installed, else "espeak"."""
    return "piper" if piper.available() and piper.bundled_voice() is not None else "espeak"


def engine_for(settings: SpeechSettings, dirs: UserDirs) -> str:
    """Return the engine `settings` mean: the one named, the one the voice belongs to, or the default."""
    if settings.engine is not None:
        engine = settings.engine.strip().lower()
        if engine not in ENGINES:
            raise UsageError(f"--engine {settings.engine}: unknown engine", f"expected one of: {', '.join(ENGINES)}")
        return engine
    if settings.voice is not None and _is_piper_voice(settings.voice, dirs):
        return "piper"
    if settings.voice is not None:
        return "espeak"
    return default_engine()


def make_speaker(settings: SpeechSettings, dirs: UserDirs) -> Speaker:
    """Build the speaker `settings` ask for; nothing is loaded until it first speaks."""
    engine = engine_for(settings, dirs)
    if engine == "piper":
        if not piper.available():
            raise UsageError("--engine piper: the Piper engine is not installed", piper.INSTALL_HINT)
        voice = piper.find_voice(settings.voice, voices_folder(dirs))
        return piper.PiperSpeaker(voice, settings.rate_wpm, stamps=dirs.cache / "voice-digests.json")
    return Pyttsx3Speaker(voice=settings.voice, rate_wpm=settings.rate_wpm)


def all_voices(dirs: UserDirs) -> list[VoiceInfo]:
    """List every voice of every installed engine: Piper's first, then espeak-ng's."""
    found = [piper.voice_info(v) for v in piper.list_voice_files(voices_folder(dirs))] if piper.available() else []
    return found + list_voices()


def _is_piper_voice(request: str, dirs: UserDirs) -> bool:
    if request.lower().endswith(".onnx") or ("/" in request and Path(request).expanduser().is_file()):
        return True
    wanted = request.strip().lower()
    return any(v.name.lower() == wanted for v in piper.list_voice_files(voices_folder(dirs)))
