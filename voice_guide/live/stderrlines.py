"""Catch what native libraries write to stderr, a line at a time, while a panel is drawn in place.

The panel is redrawn by moving the cursor up over its last frame. A line written straight to
file descriptor 2 (alsa-lib's "underrun occurred", a warning from the sound server's client or
the speech engine) moves the cursor down under it, and from then on every frame is drawn that
much lower, leaving the top of an old frame on screen. Python's own `sys.stderr` is taken care
of by the panel; native code writes to the descriptor, so the descriptor is what is caught.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

# On closing, wait this long for the last lines; a child process that kept a copy of the
# descriptor would otherwise hold the close up for as long as it runs.
DRAIN_S = 0.5


class StderrLines:
    """While open, file descriptor 2 is a pipe and each line written into it is handed to `show`."""

    def __init__(self, show: Callable[[str], None]) -> None:
        self.show = show
        self._saved_fd: int | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> StderrLines:
        sys.stderr.flush()
        read_fd, write_fd = os.pipe()
        self._saved_fd = os.dup(2)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._reader = threading.Thread(target=self._read, args=(read_fd,), name="stderr-lines", daemon=True)
        self._reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved_fd is None:
            return
        sys.stderr.flush()
        os.dup2(self._saved_fd, 2)  # drops the pipe's last write end here, so the reader sees its end
        os.close(self._saved_fd)
        self._saved_fd = None
        if self._reader is not None:
            self._reader.join(DRAIN_S)

    def _read(self, read_fd: int) -> None:
        with os.fdopen(read_fd, "rb") as pipe:
            for raw in pipe:
                line = raw.decode(errors="replace").rstrip()
                if not line:
                    continue
                try:
                    self.show(line)
                except Exception:  # keep draining: a writer must never block on a full pipe
                    continue
