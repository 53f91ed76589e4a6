"""One error hierarchy: every failure a user can meet carries a message and a hint.

The CLI is the only place that turns these into text and exit codes
(`<where>: <message> (<hint>)`), so modules below it just raise.
"""

from __future__ import annotations


class VoiceGuideError(Exception):
    """A failure the user can act on; `exit_code` is what the CLI returns."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "", where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.where = where

    def one_line(self) -> str:
        """Render as `<where>: <message> (<hint>)`, leaving out empty parts."""
        text = f"{self.where}: {self.message}" if self.where else self.message
        text = f"{text} ({self.hint})" if self.hint else text
        # Messages may quote library text with line breaks; the contract is one line.
        return " ".join(text.split())


class UsageError(VoiceGuideError):
    """A bad command-line option or value."""

    exit_code = 2


class ScriptError(VoiceGuideError):
    """An exercise script that cannot be used; names file and line."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "", file: str = "", line: int | None = None) -> None:
        where = f"{file}:{line}" if file and line is not None else file
        super().__init__(message, hint, where)
        self.file = file
        self.line = line


class AudioDeviceError(VoiceGuideError):
    """A sound device that is missing, busy or failed mid-stream."""


class AudioFileError(VoiceGuideError):
    """An audio file that cannot be read or written."""

    exit_code = 2


class SpeechEngineError(VoiceGuideError):
    """The text-to-speech engine is missing or produced nothing usable."""
