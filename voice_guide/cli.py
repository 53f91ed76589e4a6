"""The command line: the only place that builds concrete objects and turns errors into exit codes.

Exit codes: 0 ok, 1 failure, 2 bad input (script, option, file), 130 Ctrl-C.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn, TextIO

import typer

from .durations import format_duration
from .errors import ScriptError, UsageError, VoiceGuideError
from .library import Library
from .paths import UserDirs
from .script import Names, Script, expand, parse_overrides, step_details, step_kind, step_label
from .timeline import DEFAULT_RATE_HZ, estimated_length_frames, frames_to_s, place, total_s

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


app = typer.Typer(
    name=PROG,
    help="A hands-free guide for couples' empathy exercises: spoken prompts, chimes, breathing and listening turns.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback when something fails.")] = False,
) -> None:
    """voice-guide: eyes-closed empathy exercises for two."""


def _env(ctx: typer.Context) -> Env:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Env) else Env.from_process()


# ---------------------------------------------------------------- shared options

NameA = Annotated[str, typer.Option("--a", help="Name of the partner who starts (spoken as {a}).")]
NameB = Annotated[str, typer.Option("--b", help="Name of the other partner (spoken as {b}).")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="NAME=VALUE", help="Override a script param, e.g. --set share=90s (repeatable)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _plan(env: Env, name: str, a: str, b: str, sets: Sequence[str] | None) -> tuple[Script, tuple[Any, ...]]:
    script = env.library().load(name)
    steps = expand(script, Names(a=a, b=b), parse_overrides(sets or (), script))
    return script, steps


def _estimated_duration_s(script: Script) -> float:
    placed = place(expand(script), estimated_length_frames(DEFAULT_RATE_HZ))
    return total_s(placed, DEFAULT_RATE_HZ)


# ---------------------------------------------------------------- commands

@app.command("list")
def list_cmd(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    tag: Annotated[str | None, typer.Option("--tag", help="Only exercises with this tag.")] = None,
) -> None:
    """List the exercises: built in and your own."""
    env = _env(ctx)
    rows: list[dict[str, Any]] = []
    for script_id, path in env.library().ids().items():
        try:
            script = env.library().load(str(path))
        except ScriptError as exc:
            env.note(f"{PROG}: warning: skipping {exc.one_line()}")
            continue
        if tag and tag not in script.tags:
            continue
        rows.append({"id": script_id, "title": script.title, "summary": script.summary,
                     "tags": list(script.tags), "duration_s": round(_estimated_duration_s(script), 1),
                     "path": str(path)})
    if as_json:
        env.out(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        env.note(f"no exercises{' tagged ' + repr(tag) if tag else ''}")
        return
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        env.out(f"{r['id']:<{width}}  {format_duration(r['duration_s']):>6}  {r['title']}")


@app.command()
def show(
    ctx: typer.Context,
    script: Annotated[str, typer.Argument(help="A built-in id, one of your script ids, or a path.")],
    as_json: JsonOpt = False,
    a: NameA = Names.a,
    b: NameB = Names.b,
    sets: SetOpt = None,
) -> None:
    """Show the planned schedule of an exercise (speech lengths are estimated)."""
    env = _env(ctx)
    loaded, steps = _plan(env, script, a, b, sets)
    placed = place(steps, estimated_length_frames(DEFAULT_RATE_HZ))
    rate = DEFAULT_RATE_HZ
    rows = [{"index": p.index, "kind": step_kind(p.step), "start_s": round(frames_to_s(p.start_frame, rate), 3),
             "duration_s": round(frames_to_s(p.length_frames, rate), 3), **step_details(p.step)} for p in placed]
    duration_s = total_s(placed, rate)
    if as_json:
        env.out(json.dumps({"id": loaded.id, "title": loaded.title, "duration_s": round(duration_s, 3),
                            "steps": rows}, indent=2, ensure_ascii=False))
        return
    env.out(f"{loaded.title} ({loaded.id}), about {format_duration(duration_s)}")
    env.out(loaded.summary)
    env.out()
    for p in placed:
        start = frames_to_s(p.start_frame, rate)
        env.out(f"{int(start // 60):3d}:{int(start % 60):02d}  {step_kind(p.step):<7} {step_label(p.step)}")


@app.command()
def check(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Script files or ids to validate.")],
) -> None:
    """Validate scripts: 'ok' per good file, one error line per bad one (exit 2 if any is bad)."""
    env = _env(ctx)
    bad = 0
    for name in paths:
        try:
            path = env.library().resolve(name)
            script = env.library().load(str(path))
        except VoiceGuideError as exc:
            bad += 1
            env.note(f"{PROG}: error: {exc.one_line()}")
            continue
        steps = expand(script)
        plural = "" if len(steps) == 1 else "s"
        env.out(f"ok {path}: {len(steps)} step{plural}, {format_duration(_estimated_duration_s(script))}")
    if bad:
        raise typer.Exit(2)


_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")

STARTER = """\
# {name}: your own exercise. The format is in docs/SCRIPT_FORMAT.md;
# check it with:  voice-guide check {path}
title: {title}
summary: A short exercise of our own. One of us talks while the other listens, then we swap.
tags: [mine]
params:
  share: 90s            # change it for one run with --set share=2m
steps:
  - say: Settle in and close your eyes if you like. {{a}} begins.
  - chime: start
  - repeat: 2
    swap: true          # speaker and listener trade places after each pass
    steps:
      - say: "{{speaker}}, share what is on your mind. {{listener}}, just listen."
      - listen: speaker
        for: "{{share}}"
        until_silence: 8s   # move on after 8 seconds of quiet
        remind: 15s         # soft tick when 15 seconds remain
      - chime: swap
  - breathe: {{in: 4s, out: 6s, count: 3}}
  - say: Thank each other.
  - chime: end
"""


@app.command()
def new(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The new script's id: lowercase letters, digits and dashes.")],
) -> None:
    """Write a commented starter script into your script folder and say where."""
    env = _env(ctx)
    if not _ID.match(name):
        raise UsageError(f"bad script name '{name}'", "lowercase letters, digits and dashes, e.g. our-check-in")
    folder = env.dirs.scripts
    path = folder / f"{name}.yaml"
    if path.exists():
        raise UsageError(f"{path} already exists", "pick another name or edit that file")
    folder.mkdir(parents=True, exist_ok=True)
    title = name.replace("-", " ").capitalize()
    path.write_text(STARTER.format(name=name, path=path, title=title), encoding="utf-8")
    env.out(f"wrote {path}")
    env.note(f"edit it, then try: {PROG} show {name}")


# ---------------------------------------------------------------- entry point

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
    except VoiceGuideError as exc:
        code = _fail(env, exc.one_line(), exc.exit_code, debug)
    except KeyboardInterrupt:
        code = _fail(env, "interrupted", 130, debug)
    except Exception as exc:
        code = _map_other(env, exc, debug)
    sys.exit(code)


def _map_other(env: Env, exc: Exception, debug: bool) -> int:
    # Typer's parser errors (bad option, missing argument) carry an exit code and
    # a message; match them by shape, since Typer has moved where they live.
    if type(exc).__name__ == "Abort":
        return _fail(env, "interrupted", 130, debug)
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
    return _fail(env, f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)", 1, debug)


def _fail(env: Env, line: str, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc(file=env.stderr)
    env.note(f"{PROG}: error: {line}")
    return code


__all__ = ["Env", "app", "main"]
