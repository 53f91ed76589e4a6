"""What the program needs from a speech engine: the Speaker protocol, voice descriptions, settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from voice_guide.errors import UsageError
from voice_guide.sound.levels import Samples

# The pace prompts are spoken at unless told otherwise, in words per minute as measured
# on the library's clips (pauses included); each engine maps it onto its own knob.
DEFAULT_RATE_WPM = 135
ENGINES = ("piper", "espeak")


class VoiceError(UsageError):
    """A voice that was asked for and cannot be used: unknown, missing or not the published file."""

    exit_code = 2


class Speaker(Protocol):
    """A text-to-speech engine with one voice and rate, as the clip cache needs it."""

    @property
    def engine_id(self) -> str:
        """Name the engine, e.g. "piper" or "pyttsx3-espeak"."""
        ...

    @property
    def voice_id(self) -> str:
        """Name the voice in the engine's own terms, e.g. "en_US-joe-medium" or "gmw/en-us"."""
        ...

    @property
    def voice_digest(self) -> str:
        """Return a hex digest that changes whenever the voice's files (or identity) change."""
        ...

    @property
    def rate_wpm(self) -> int:
        """Return the speaking rate in words per minute."""
        ...

    def synthesize(self, text: str) -> tuple[Samples, int]:
        """Speak `text` into memory; return raw (samples, sample_rate_hz)."""
        ...


@dataclass(frozen=True)
class VoiceInfo:
    """One voice an engine offers; `languages` are lower-case tags such as "en-us".

    `source` says where it comes from: "system" (espeak-ng's data), "bundled" (the
    neural extra's voice) or the path of a voice file.
    """

    id: str
    name: str
    languages: tuple[str, ...]
    engine: str = "espeak"
    source: str = "system"


@dataclass(frozen=True)
class SpeechSettings:
    """The speech choices of one command: engine ("piper", "espeak" or None for the default), voice, pace."""

    engine: str | None = None
    voice: str | None = None
    rate_wpm: int = DEFAULT_RATE_WPM


@dataclass(frozen=True)
class SpeechIdentity:
    """What a session's speech was made with, for LOG.json and the cue JSON."""

    engine: str
    voice: str
    voice_digest: str
    rate_wpm: int

    def as_json(self) -> dict[str, str | int]:
        """Return the fields as a JSON object."""
        return {
            "engine": self.engine,
            "voice": self.voice,
            "voice_digest": self.voice_digest,
            "rate_wpm": self.rate_wpm,
        }
