"""Read single key presses from a terminal without Enter, for hands-light control."""

from __future__ import annotations

import os
import select
import sys
import termios
import tty
from types import TracebackType
from typing import Any, TextIO

from voice_guide.live.records import Command

KEYMAP: dict[str, Command] = {" ": "pause", "n": "skip", "b": "back", "q": "quit"}


class KeyReader:
    """Poll stdin for keys in cbreak mode; restores the terminal on exit. Inert when not a TTY."""

    def __init__(self, stream: TextIO = sys.stdin) -> None:
        self.stream = stream
        self.active = stream.isatty()
        self._saved: list[Any] | None = None

    def __enter__(self) -> KeyReader:
        if self.active:
            fd = self.stream.fileno()
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.active and self._saved is not None:
            termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._saved)

    def poll(self) -> list[Command]:
        """Return the commands typed since the last poll (never blocks)."""
        if not self.active:
            return []
        commands: list[Command] = []
        fd = self.stream.fileno()
        while select.select([fd], [], [], 0)[0]:
            key = os.read(fd, 1).decode(errors="ignore").lower()
            if not key:
                break
            if key in KEYMAP:
                commands.append(KEYMAP[key])
        return commands
