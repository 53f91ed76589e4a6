"""The environment a command runs in: its streams and the user's folders (tests pass their own)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

from voice_guide.paths import UserDirs
from voice_guide.script.library import Library

PROG = "voice-guide"


@dataclass(frozen=True)
class Env:
    """Everything a command touches outside itself; tests pass their own."""

    stdout: TextIO
    stderr: TextIO
    dirs: UserDirs

    @classmethod
    def from_process(cls) -> Env:
        """Return the environment of this process."""
        return cls(stdout=sys.stdout, stderr=sys.stderr, dirs=UserDirs.from_environ())

    def out(self, text: str = "") -> None:
        """Print a line of results."""
        print(text, file=self.stdout)

    def note(self, text: str) -> None:
        """Print a line of commentary (not results) to stderr."""
        print(text, file=self.stderr)

    def library(self) -> Library:
        """Return the script library for this user."""
        return Library.default(self.dirs)
