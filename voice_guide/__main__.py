"""The process's entry point (`voice-guide`, `python -m voice_guide`): the CLI, then a prompt exit.

Kept free of heavy imports so that Ctrl-C while the program is still loading is one line,
not a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from typing import NoReturn

INTERRUPTED_EXIT = 130  # as voice_guide.cli.INTERRUPTED, which may not be imported yet


def run() -> NoReturn:
    """Run the command line; end the process as soon as it has finished."""
    try:
        from voice_guide.cli import main

        main()
    except SystemExit as done:
        code = done.code
    except KeyboardInterrupt:  # still importing: main's own handler is not in place yet
        print("voice-guide: error: interrupted", file=sys.stderr)
        code = INTERRUPTED_EXIT
    _exit(code if isinstance(code, int) else (0 if code is None else 1))


def _exit(code: int) -> NoReturn:
    """Exit with `code` without the interpreter's teardown once only daemon threads are left.

    Everything a command writes is closed by the time it returns, and what is left are
    daemon threads: speech made ahead, the link, a stuck audio call. Tearing the
    interpreter down around them cost about 0.1 s after `q`, and when one was inside
    onnxruntime it aborted the process ("terminate called without an active exception",
    exit -6) after the session had been saved.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream has nothing to lose
            stream.flush()
    logging.shutdown()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)  # someone still works: let Python wait for it as usual
    os._exit(code)


if __name__ == "__main__":
    run()
