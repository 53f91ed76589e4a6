"""The command line: the only place that builds concrete objects and turns errors into exit codes.

Exit codes: 0 ok, 1 failure, 2 bad input (script, option, file), 130 Ctrl-C.
Each command group lives in its own module and registers on the one `app`; a run of
one command imports only its module, so `timeout` starts without the two-device link
and the catalog (about 0.1 s of imports)."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import NoReturn

import typer

from voice_guide.cli.app import app
from voice_guide.cli.env import PROG, Env
from voice_guide.errors import VoiceGuideError

INTERRUPTED = 130  # the exit status of Ctrl-C, as shells report it

# Every module that registers commands, in the order help lists them.
COMMAND_MODULES = ("apart", "catalog", "config", "history", "mictest", "play", "render")
# Which module registers each command (tests/test_cli.py holds this to what the modules register).
MODULE_OF_COMMAND = {
    "host": "apart",
    "join": "apart",
    "list": "catalog",
    "show": "catalog",
    "check": "catalog",
    "new": "catalog",
    "voices": "catalog",
    "devices": "catalog",
    "analyze": "catalog",
    "config": "config",
    "history": "history",
    "mic-test": "mictest",
    "setup": "mictest",
    "run": "play",
    "timeout": "play",
    "render": "render",
    "prepare": "render",
}


def register_commands(args: Sequence[str] = ()) -> None:
    """Import the module of the command `args` name, or every command module when they name none."""
    words = [a for a in args if not a.startswith("-")]
    known = MODULE_OF_COMMAND.get(words[0]) if words else None
    # Help and shell completion list every command, so they need them all.
    wanted = (known,) if known and not any(k.endswith("_COMPLETE") for k in os.environ) else COMMAND_MODULES
    for name in wanted:
        importlib.import_module(f"voice_guide.cli.{name}")


# Commands that open the sound card unless told to use files: PortAudio starts up (about
# 30 ms of C that releases the GIL) on a thread while Python imports and parses the options.
LIVE_COMMANDS = ("run", "timeout", "host", "join", "mic-test")
OFFLINE_FLAGS = ("--out", "--mic-file", "--help", "-h")


def _start_audio_library(args: Sequence[str]) -> None:
    words = [a for a in args if not a.startswith("-")]
    if words and words[0] in LIVE_COMMANDS and not any(a.split("=")[0] in OFFLINE_FLAGS for a in args):
        threading.Thread(target=_import_sounddevice, name="voice-guide-audio-init", daemon=True).start()


def _import_sounddevice() -> None:
    # A failure here is raised again, with its one-line message, where the command opens the device.
    with contextlib.suppress(Exception):
        importlib.import_module("sounddevice")


def main(argv: Sequence[str] | None = None, env: Env | None = None) -> NoReturn:
    """Run the CLI and exit with its status; map every error to one line on stderr."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or bool(os.environ.get("VOICE_GUIDE_DEBUG"))
    args = [a for a in args if a != "--debug"]
    env = env or Env.from_process()
    _start_audio_library(args)
    register_commands(args)
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
