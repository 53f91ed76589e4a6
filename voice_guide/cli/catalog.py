"""Commands that read the library and the machine: list, show, check, new, voices, devices, analyze."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from voice_guide.cli.app import app, env_of
from voice_guide.cli.build import plan, settings
from voice_guide.cli.env import PROG
from voice_guide.cli.options import JsonOpt, NameA, NameB, ScriptArg, SetOpt
from voice_guide.errors import ScriptError, UsageError, VoiceGuideError
from voice_guide.live.audio import list_devices
from voice_guide.live.vad import analyze as analyze_speech
from voice_guide.outputs import write_text
from voice_guide.script import Script, expand, step_details, step_kind, step_label
from voice_guide.script import load as load_script
from voice_guide.script.durations import format_duration, plural
from voice_guide.script.library import Library
from voice_guide.sound.speech import all_voices, default_engine
from voice_guide.sound.timeline import DEFAULT_RATE_HZ, estimated_length_frames, frames_to_s, place, total_s
from voice_guide.sound.wavfile import read_wav


def estimated_duration_s(script: Script) -> float:
    placed = place(expand(script), estimated_length_frames(DEFAULT_RATE_HZ))
    return total_s(placed, DEFAULT_RATE_HZ)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    tag: Annotated[str | None, typer.Option("--tag", help="Only exercises with this tag.")] = None,
) -> None:
    """List the exercises: built in and your own."""
    env = env_of(ctx)
    library = env.library()
    builtin = _builtin_ids(library)
    rows: list[_Listed] = []
    for script_id, path in library.ids().items():
        try:
            script = load_script(path)
        except ScriptError as exc:
            env.warn(f"warning: skipping {exc.one_line()}")
            continue
        if tag and tag not in script.tags:
            continue
        yours = path.parent != library.builtin
        rows.append(
            _Listed(script_id, script, path, round(estimated_duration_s(script), 1), yours, script_id in builtin)
        )
    if as_json:
        env.out(json.dumps([row.as_json() for row in rows], indent=2, ensure_ascii=False))
        return
    if not rows:
        env.note(f"no exercises{' tagged ' + repr(tag) if tag else ''}")
        return
    width = max(len(r.script_id) for r in rows)
    for r in rows:
        mark = "  [yours, replaces the built-in]" if r.overrides_builtin else ""
        env.out(f"{r.script_id:<{width}}  {format_duration(r.duration_s):>6}  {r.script.title}{mark}")


@dataclass(frozen=True)
class _Listed:
    """One exercise in `list`: where it comes from, and its estimated length."""

    script_id: str
    script: Script
    path: Path
    duration_s: float
    yours: bool
    same_id_built_in: bool

    @property
    def overrides_builtin(self) -> bool:
        return self.yours and self.same_id_built_in

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.script_id,
            "title": self.script.title,
            "summary": self.script.summary,
            "tags": list(self.script.tags),
            "duration_s": self.duration_s,
            "path": str(self.path),
            "source": "yours" if self.yours else "built-in",
            "overrides_builtin": self.overrides_builtin,
        }


@app.command()
def show(
    ctx: typer.Context,
    script: ScriptArg,
    as_json: JsonOpt = False,
    a: NameA = None,
    b: NameB = None,
    sets: SetOpt = None,
) -> None:
    """Show the planned schedule of an exercise (speech lengths are estimated)."""
    env = env_of(ctx)
    chosen = settings(env, {"a": a, "b": b}, sets=sets)
    loaded, steps = plan(env, script, chosen.names, chosen.sets)
    placed = place(steps, estimated_length_frames(DEFAULT_RATE_HZ))
    rate = DEFAULT_RATE_HZ
    rows = [
        {
            "index": p.index,
            "kind": step_kind(p.step),
            "start_s": round(frames_to_s(p.start_frame, rate), 3),
            "duration_s": round(frames_to_s(p.length_frames, rate), 3),
            **step_details(p.step),
        }
        for p in placed
    ]
    duration_s = total_s(placed, rate)
    if as_json:
        env.out(
            json.dumps(
                {"id": loaded.id, "title": loaded.title, "duration_s": round(duration_s, 3), "steps": rows},
                indent=2,
                ensure_ascii=False,
            )
        )
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
    env = env_of(ctx)
    bad = 0
    for name in paths:
        try:
            path = env.library().resolve(name)
            script = load_script(path)
        except VoiceGuideError as exc:
            bad += 1
            env.warn(f"error: {exc.one_line()}")
            continue
        steps = expand(script)
        env.out(f"ok {path}: {plural(len(steps), 'step')}, {format_duration(estimated_duration_s(script))}")
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


def _builtin_ids(library: Library) -> set[str]:
    return {file.stem for file in library.builtin.glob("*.yaml")} if library.builtin.is_dir() else set()


@app.command()
def new(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The new script's id: lowercase letters, digits and dashes.")],
    source: Annotated[
        str | None, typer.Option("--from", metavar="ID", help="Start from a copy of this exercise (an id or a path).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Allow a built-in's id: your script then replaces the built-in everywhere.")
    ] = False,
) -> None:
    """Write a commented starter script (or a copy of an exercise) into your script folder and say where."""
    env = env_of(ctx)
    if not _ID.match(name):
        raise UsageError(f"bad script name '{name}'", "lowercase letters, digits and dashes, e.g. our-check-in")
    library = env.library()
    if name in _builtin_ids(library) and not force:
        raise UsageError(
            f"'{name}' is a built-in exercise; a script of yours with that id would replace it everywhere",
            f"pick another name, e.g. '{PROG} new our-{name} --from {name}', or add --force to replace it",
        )
    folder = env.dirs.scripts
    path = folder / f"{name}.yaml"
    if path.exists():
        raise UsageError(f"{path} already exists", "pick another name or edit that file")
    if source is None:
        text = STARTER.format(name=name, path=path, title=name.replace("-", " ").capitalize())
    else:
        origin = library.resolve(source)
        load_script(origin)  # copy only a script that works
        text = f"# {name}: your copy of {source}; check it with:  {PROG} check {path}\n"
        text += origin.read_text(encoding="utf-8")
    folder.mkdir(parents=True, exist_ok=True)
    write_text(path, text)
    env.out(f"wrote {path}")
    if name in _builtin_ids(library):
        env.warn(f"your {name} now replaces the built-in one (remove {path} to bring it back)")
    env.note(f"edit it, then try: {PROG} show {name}")


@app.command()
def voices(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List every engine's voices, with language and where each comes from."""
    env = env_of(ctx)
    found = all_voices(env.dirs)
    if as_json:
        rows = [
            {"engine": v.engine, "id": v.id, "name": v.name, "languages": list(v.languages), "source": v.source}
            for v in found
        ]
        env.out(json.dumps(rows, indent=2))
        return
    env.out(f"default engine: {default_engine()}")
    for v in found:
        env.out(f"{v.engine:<7} {v.name:<30} {','.join(v.languages):<12} {v.id:<24} {v.source}")


@app.command()
def devices(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List sound devices (the default input is marked <, the default output >)."""
    env = env_of(ctx)
    found = list_devices()
    if as_json:
        env.out(json.dumps([vars(d) for d in found], indent=2))
        return
    if not found:
        env.note("no sound devices found")
    for d in found:
        marks = ("<" if d.is_default_input else " ") + (">" if d.is_default_output else " ")
        env.out(f"{marks} {d.index:3d} {d.name:<40} in {d.inputs:2d}  out {d.outputs:2d}  {d.default_rate_hz:.0f} Hz")


@app.command()
def analyze(
    ctx: typer.Context,
    wav: Annotated[Path, typer.Argument(help="A WAV file of speech.")],
    as_json: JsonOpt = False,
) -> None:
    """Find the speech in a recording with the same detector the live player uses."""
    env = env_of(ctx)
    samples, rate = read_wav(wav)
    report = analyze_speech(samples, rate)
    if as_json:
        env.out(json.dumps(report.as_json(), indent=1))
        return
    env.out(
        f"{wav}: {format_duration(report.duration_s)}, speech {report.talk_s:.1f}s "
        f"in {plural(len(report.speech), 'stretch', 'stretches')}, "
        f"longest silence {report.longest_silence_s:.1f}s"
    )
    for seg in report.speech:
        env.out(f"  {seg.start_s:8.2f} - {seg.end_s:8.2f}")
