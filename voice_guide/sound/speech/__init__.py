"""Speech: the Speaker protocol, the engines (Piper, espeak-ng through pyttsx3) and the on-disk clip cache.

Piper comes from the optional `neural` extra (GPL-3.0-or-later) and is imported only
when a Piper voice first speaks, so the core stays MIT and starts fast without it.
"""

from voice_guide.sound.speech.base import (
    DEFAULT_RATE_WPM,
    ENGINES,
    Speaker,
    SpeechIdentity,
    SpeechSettings,
    VoiceError,
    VoiceInfo,
)
from voice_guide.sound.speech.cache import ClipCache, default_cache_dir, sentences, speech_identity
from voice_guide.sound.speech.engines import all_voices, default_engine, engine_for, make_speaker
from voice_guide.sound.speech.espeak import Pyttsx3Speaker, list_voices

__all__ = [
    "DEFAULT_RATE_WPM",
    "ENGINES",
    "ClipCache",
    "Pyttsx3Speaker",
    "Speaker",
    "SpeechIdentity",
    "SpeechSettings",
    "VoiceError",
    "VoiceInfo",
    "all_voices",
    "default_cache_dir",
    "default_engine",
    "engine_for",
    "list_voices",
    "make_speaker",
    "sentences",
    "speech_identity",
]
