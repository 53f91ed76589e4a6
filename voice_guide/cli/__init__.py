"""The command line: the only place that builds concrete objects and turns errors into exit codes.

Exit codes: 0 ok, 1 failure, 2 bad input (script, option, file), 130 Ctrl-C.
Each command group lives in its own module and registers on the one `app`."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

import typer

from voice_guide.cli import apart, catalog, config, history, mictest, play, render  # noqa: F401  (registers the commands)
from voice_guide.cli.app import app
from voice_guide.cli.env import PROG, Env
from voice_guide.errors import VoiceGuideError

INTERRUPTED = 130  # the exit status of Ctrl-C, as shells report it


def main(argv: Sequence[str] | None = None, env: Env | None = None) -> NoReturn:
    """Run the CLI and exit with its status; map every error to one line on stderr."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or bool(os.environ.get("VOICE_GUIDE_DEBUG"))
    args = [a for a in args if a != "--debug"]
    env = env or Env.from_process()
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name=PROG, standalone_mode=False, obj=env)
        code = result if isinstance(result, int) else 0
        if code == INTERRUPTED:
            # Typer turns Ctrl-C inside a command into a silent exit 130: say it, as below.
            code = _fail(env, "interrupted", INTERRUPTED, debug)
    except VoiceGuideError as exc:
        code = _fail(env, exc.one_line(), exc.exit_code, debug)
    except KeyboardInterrupt:
        code = _fail(env, "interrupted", INTERRUPTED, debug)
    except Exception as exc:
        code = _map_other(env, exc, debug)
    sys.exit(code)


def _map_other(env: Env, exc: Exception, debug: bool) -> int:
    # Typer's parser errors (bad option, missing argument) carry an exit code and
    # a message; match them by shape, since Typer has moved where they live.
    if type(exc).__name__ == "NoArgsIsHelpError":
        # A bare `voice-guide` (or `voice-guide config`) has printed its help: that is what was asked.
        return 0
    if type(exc).__name__ == "Abort":
        return _fail(env, "interrupted", INTERRUPTED, debug)
    if isinstance(exc, BrokenPipeError):
        # `voice-guide list | head`: the reader left; nothing to report.
        return 0
    message = getattr(exc, "format_message", None)
    exit_code = getattr(exc, "exit_code", None)
    if callable(message) and isinstance(exit_code, int):
        ctx = getattr(exc, "ctx", None)
        path = str(getattr(ctx, "command_path", "")).split(" ", 1)
        hint = f" (see '{PROG} {path[1]} --help')" if len(path) == 2 else f" (see '{PROG} --help')"
        return _fail(env, str(message()).replace("\n", " ") + hint, exit_code, debug)
    if isinstance(exc, MemoryError):
        return _fail(env, "out of memory (close other programs, or try a shorter session)", 1, debug)
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return _fail(env, f"the system refused{where}: {exc.strerror or exc} (check the disk and the device)", 1, debug)
    # A fault of ours: still one line, with where to look.
    return _fail(env, f"unexpected {type(exc).__name__}: {exc} (please report it; --debug shows where)", 1, debug)


def _fail(env: Env, line: str, code: int, debug: bool) -> int:
    if debug and sys.exc_info()[0] is not None:
        traceback.print_exc(file=env.stderr)
    env.note(f"{PROG}: error: {' '.join(line.split())}")  # the contract is one line
    return code


__all__ = ["Env", "app", "main"]
