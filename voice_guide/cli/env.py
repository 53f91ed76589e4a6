"""The environment a command runs in: its streams and the user's folders (tests pass their own)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

import typer

from voice_guide.errors import UsageError
from voice_guide.paths import UserDirs
from voice_guide.script.library import Library
from voice_guide.script.model import printable

PROG = "voice-guide"


@dataclass(frozen=True)
class Env:
    """Everything a command touches outside itself; tests pass their own."""

    stdout: TextIO
    stderr: TextIO
    dirs: UserDirs
    stdin: TextIO = field(default_factory=lambda: sys.stdin)

    @classmethod
    def from_process(cls) -> Env:
        """Return the environment of this process."""
        return cls(stdout=sys.stdout, stderr=sys.stderr, dirs=UserDirs.from_environ())

    def out(self, text: str = "") -> None:
        """Print a line of results (control characters escaped)."""
        print(printable(text), file=self.stdout)

    def note(self, text: str) -> None:
        """Print a line of commentary (not results) to stderr (control characters escaped)."""
        print(printable(text), file=self.stderr)

    def warn(self, text: str) -> None:
        """Print one line from the program itself about the run, a warning or a notice: "voice-guide: TEXT"."""
        self.note(f"{PROG}: {text}")

    def confirm(self, question: str) -> bool:
        """Ask a yes/no question on the terminal; with no terminal to ask, fail asking for --yes."""
        if not self.stdin.isatty():
            raise UsageError(f"{question} There is no terminal to ask", "add --yes to go ahead without asking")
        return typer.confirm(question, default=False)

    def library(self) -> Library:
        """Return the script library for this user."""
        return Library.default(self.dirs)
