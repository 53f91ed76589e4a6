"""The command line: the only place that builds concrete objects and turns errors into exit codes.

Exit codes: 0 ok, 1 failure, 2 bad input (script, option, file), 130 Ctrl-C.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import re
import sqlite3
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn, TextIO, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .apart import HOST_WHO, JOINER_WHO, HostScheduler, JoinScheduler, LinkThread, Setup, TimedIO
from .audio import AudioIO, FileIO, SoundDeviceIO, find_device, list_devices
from .display import Fanout, LiveDisplay, PlainDisplay
from .durations import format_duration
from .encode import format_of, write_audio
from .errors import AudioDeviceError, ScriptError, UsageError, VoiceGuideError
from .history import Journal, SessionInfo, connect, forget, get_session, journal_path, list_sessions
from .journal_views import EXPORT_FORMATS, export_turns, plot_history, plot_session
from .keys import KeyReader
from .levels import Samples
from .library import Library
from .link import Host, Joiner, LinkLost, make_code, normalize_code
from .link import join as join_link
from .paths import UserDirs
from .recap import closing_line, summary
from .render import SessionClips, blocks, build, chapters, write_cues
from .render import prepare as prepare_clips
from .script import Names, Script, Step, expand, parse_overrides, step_details, step_kind, step_label
from .script import load as load_script
from .session import Command, Session, SessionOptions, SessionResult
from .startat import COUNTDOWN_TEXT, parse_start_at, wait_for_countdown
from .timeline import DEFAULT_RATE_HZ, estimated_length_frames, frames_to_s, place, total_s
from .tts import ClipCache, Pyttsx3Speaker, list_voices
from .vad import ClapDetector, VoiceDetector
from .vad import analyze as analyze_speech
from .wavfile import read_wav

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
ScriptArg = Annotated[str, typer.Argument(help="A built-in id, one of your script ids, or a path.")]


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
            script = load_script(path)
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
    script: ScriptArg,
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
            script = load_script(path)
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


VoiceOpt = Annotated[str | None, typer.Option("--voice", help="Speech voice: an id or part of a name (see 'voices').")]
RateOpt = Annotated[int, typer.Option("--rate", min=60, max=400, help="Speaking rate in words per minute.")]
SampleRateOpt = Annotated[int, typer.Option("--sample-rate", min=8000, max=192000, help="Session sample rate in Hz.")]
NoMicOpt = Annotated[bool, typer.Option("--no-mic", help="Do not listen; turns last their full time.")]
HeadphonesOpt = Annotated[bool, typer.Option("--headphones", help="The mic cannot hear the guide: listen even "
                                             "while it speaks.")]
InputDeviceOpt = Annotated[str | None, typer.Option("--input-device", help="Microphone: index or part of its name.")]
OutputDeviceOpt = Annotated[str | None, typer.Option("--output-device", help="Speaker: index or part of its name.")]
LogOpt = Annotated[Path | None, typer.Option("--log", help="Write what happened, with exact times, as JSON.")]
DEFAULT_WPM = 150


def _cache(env: Env, voice: str | None, rate_wpm: int, sample_rate_hz: int) -> ClipCache:
    return ClipCache(env.dirs.cache / "speech", Pyttsx3Speaker(voice=voice, rate_wpm=rate_wpm), sample_rate_hz)


@contextlib.contextmanager
def _progress(env: Env, label: str) -> Iterator[Callable[[int, int], None]]:
    """Show a progress bar on a terminal; stay quiet when stderr is a file or pipe."""
    shown = env.stderr.isatty()
    console = Console(file=env.stderr)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True, disable=not shown) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@app.command()
def render(
    ctx: typer.Context,
    script: ScriptArg,
    out: Annotated[Path, typer.Option("-o", "--out", help="Output file: .wav, .flac, .ogg, .mp3 or .m4a.")],
    cues: Annotated[Path | None, typer.Option("--cues", help="Also write every event's timing as JSON.")] = None,
    with_chapters: Annotated[bool, typer.Option("--chapters", help="Mark each step as a chapter.")] = False,
    a: NameA = Names.a,
    b: NameB = Names.b,
    sets: SetOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = DEFAULT_WPM,
    sample_rate: SampleRateOpt = DEFAULT_RATE_HZ,
) -> None:
    """Render a whole session to an audio file (listen turns last their full 'for')."""
    env = _env(ctx)
    format_of(out)  # fail on a bad extension before any work
    loaded, steps = _plan(env, script, a, b, sets)
    cache = _cache(env, voice, rate, sample_rate)
    with _progress(env, "Preparing speech") as update:
        timeline = build(steps, cache, update)
    with _progress(env, "Rendering") as update:
        total = timeline.length_frames

        def tracked() -> Iterator[Samples]:
            done = 0
            for block in blocks(timeline):
                done += len(block)
                update(done, total)
                yield block

        marks = chapters(timeline) if with_chapters else []
        written = write_audio(out, tracked(), timeline.sample_rate_hz, marks, title=loaded.title)
    if cues is not None:
        write_cues(cues, timeline)
        written.append(cues)
    duration = format_duration(frames_to_s(timeline.length_frames, timeline.sample_rate_hz))
    env.out(f"wrote {', '.join(str(p) for p in written)} ({duration})")


@app.command()
def prepare(
    ctx: typer.Context,
    script: Annotated[str | None, typer.Argument(help="A script id or path; leave out with --all.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Prepare every exercise in the library.")] = False,
    a: NameA = Names.a,
    b: NameB = Names.b,
    voice: VoiceOpt = None,
    rate: RateOpt = DEFAULT_WPM,
    sample_rate: SampleRateOpt = DEFAULT_RATE_HZ,
) -> None:
    """Synthesize every spoken prompt ahead of time so sessions start at once."""
    env = _env(ctx)
    if every == (script is not None):
        raise UsageError("give one SCRIPT or --all", "for example: voice-guide prepare timeout-breathing")
    names = list(env.library().ids()) if every else [script or ""]
    steps: list[Step] = []
    for name in names:
        steps += expand(env.library().load(name), Names(a=a, b=b))
    cache = _cache(env, voice, rate, sample_rate)
    before = cache.synth_calls
    with _progress(env, "Preparing speech") as update:
        count = prepare_clips(steps, cache, update)
    env.out(f"{count} prompts ready ({cache.synth_calls - before} newly synthesized) in {cache.folder}")


@app.command()
def voices(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the voices the speech engine offers."""
    env = _env(ctx)
    found = list_voices()
    if as_json:
        env.out(json.dumps([{"id": v.id, "name": v.name, "languages": list(v.languages)} for v in found], indent=2))
        return
    for v in found:
        env.out(f"{v.name:<30} {','.join(v.languages):<12} {v.id}")


def _mic_channels(spec: str | None) -> dict[str, int]:
    """Parse --mic-channels a=1,b=2 into zero-based channels per partner."""
    if not spec:
        return {}
    result: dict[str, int] = {}
    for part in spec.split(","):
        who, sep, channel = part.partition("=")
        if not sep or who.strip() not in ("a", "b") or not channel.strip().isdigit() or int(channel) < 1:
            raise UsageError(f"--mic-channels {spec}: expected a=N,b=M", "input channels count from 1, e.g. a=1,b=2")
        result[who.strip()] = int(channel) - 1
    if len(set(result.values())) != len(result):
        raise UsageError(f"--mic-channels {spec}: two partners on one channel", "give each partner their own channel")
    return result


def _open_io(env: Env, *, mic_file: Path | None, out: Path | None, realtime: bool, no_mic: bool,
             input_device: str | None, output_device: str | None, channels: int, sample_rate_hz: int) -> AudioIO:
    if mic_file is not None or out is not None:
        if mic_file is None and not no_mic:
            env.note(f"{PROG}: no --mic-file; turns will last their full time")
        return FileIO(None if no_mic else mic_file, out, sample_rate_hz, realtime=realtime)
    devices = list_devices()
    output = find_device(output_device, "output", devices)
    if output is None:
        raise AudioDeviceError("no sound output device found",
                               "connect one, or render to a file: voice-guide render SCRIPT -o session.wav")
    mic = None if no_mic else find_device(input_device, "input", devices)
    if mic is None and not no_mic:
        env.note(f"{PROG}: no microphone found; turns will last their full time")
    return SoundDeviceIO(output, mic, sample_rate_hz, input_channels=max(channels, 1))


def _print_summary(env: Env, result: SessionResult, names: Names) -> dict[str, Any]:
    figures = summary(result, {"a": names.a, "b": names.b})
    talk = figures["talk_s"]
    if result.turns and result.mic_used:
        parts = [f"{who} talked {format_duration(seconds)}" for who, seconds in talk.items()]
        if figures["balance"] is not None:
            parts.append(f"{names.a}'s share {figures['balance'] * 100:.0f}%")
        parts.append(f"longest pause {format_duration(figures['longest_pause_s'])}")
        if figures["overrun_s"]:
            parts.append(f"{format_duration(figures['overrun_s'])} over time")
        if figures["interruptions"]:
            parts.append(f"{figures['interruptions']} interruptions")
        env.note("summary: " + ", ".join(parts))
    if result.underruns or result.overruns:
        env.note(f"{PROG}: audio: {result.underruns} underruns, {result.overruns} overruns")
    return figures


def _write_log(path: Path, result: SessionResult, figures: dict[str, Any], script: Script, rate: int) -> None:
    doc = {"script": script.id, "title": script.title, "sample_rate": rate, "ended_by": result.ended_by,
           "duration_s": result.length_s, "underruns": result.underruns, "overruns": result.overruns,
           "input_drift_ppm": result.drift_ppm,
           "mic": result.mic_used, "events": [e.as_json() for e in result.events], "summary": figures}
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


@app.command()
def run(
    ctx: typer.Context,
    script: ScriptArg,
    a: NameA = Names.a,
    b: NameB = Names.b,
    sets: SetOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = DEFAULT_WPM,
    sample_rate: SampleRateOpt = DEFAULT_RATE_HZ,
    no_mic: NoMicOpt = False,
    headphones: HeadphonesOpt = False,
    mic_file: Annotated[Path | None, typer.Option("--mic-file", help="Run offline: read the microphone from "
                                                  "this WAV.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run offline: write the output to this WAV.")] = None,
    realtime: Annotated[bool, typer.Option("--realtime", help="Offline runs at real-time pace.")] = False,
    log: LogOpt = None,
    input_device: InputDeviceOpt = None,
    output_device: OutputDeviceOpt = None,
    mic_channels: Annotated[str | None, typer.Option("--mic-channels", help="Two mics on one interface, "
                                                     "e.g. a=1,b=2.")] = None,
    quiet_summary: Annotated[bool, typer.Option("--quiet-summary", help="Do not speak the closing line about "
                                                "who talked how long.")] = False,
    record: Annotated[Path | None, typer.Option("--record", help="Also save the microphone to this WAV "
                                                "(the only way mic audio reaches disk).")] = None,
    start_at: Annotated[str | None, typer.Option("--start-at", help="Wait and start exactly at this local time, "
                                                 "HH:MM[:SS] (partners apart with synced clocks).")] = None,
) -> None:
    """Play an exercise, listening to the microphone to know when each turn is over."""
    env = _env(ctx)
    target = parse_start_at(start_at, datetime.now().astimezone()) if start_at else None
    names = Names(a=a, b=b)
    loaded, steps = _plan(env, script, a, b, sets)
    channels = _mic_channels(mic_channels)
    if mic_file is not None and not mic_file.is_file():
        raise UsageError(f"--mic-file {mic_file}: no such file", "a WAV file to use as the microphone")
    cache = _cache(env, voice, rate, sample_rate)
    with _progress(env, "Preparing speech") as update:
        prepare_clips(steps, cache, update)
        if target is not None:
            cache.get(COUNTDOWN_TEXT)
    io = _open_io(env, mic_file=mic_file, out=out, realtime=realtime, no_mic=no_mic, input_device=input_device,
                  output_device=output_device, channels=max(channels.values(), default=0) + 1,
                  sample_rate_hz=sample_rate)
    if record is not None:
        env.note(f"{PROG}: recording the microphone to {record}, as asked (--record)" if io.input_channels
                 else f"{PROG}: --record: there is no microphone to record")
    settings = {"voice": voice, "rate_wpm": rate, "sample_rate": sample_rate, "mic": not no_mic,
                "headphones": headphones, "set": list(sets or []), "offline": mic_file is not None}

    def closing(result: SessionResult) -> str | None:
        return None if quiet_summary else closing_line(summary(result, {"a": names.a, "b": names.b}))

    preroll_frames = 0
    if target is not None:
        preroll_frames = round(wait_for_countdown(target, env.note) * sample_rate)
    _play(env, loaded, steps, names, cache, io, settings, live=env.stdout.isatty() and mic_file is None and out is None,
          options=SessionOptions(headphones=headphones, mic_channels=channels), log=log, closing=closing,
          record=record, preroll_frames=preroll_frames)


def _play(env: Env, loaded: Script, steps: Sequence[Step], names: Names, cache: ClipCache, io: AudioIO,
          settings: dict[str, Any], *, live: bool, options: SessionOptions, log: Path | None,
          closing: Callable[[SessionResult], str | None] | None = None, record: Path | None = None,
          preroll_frames: int = 0, scheduler: HostScheduler | JoinScheduler | None = None,
          commands: Callable[[Callable[[], list[Command]]], Callable[[], list[Command]]] | None = None
          ) -> SessionResult | None:
    """Run one session with display, keys and journal; print the summary and write the log (run, host, join).

    `scheduler` (apart mode) is attached to the session's clock; `commands` wraps the key reader.
    Apart sessions do not listen for double claps: a pause on one device alone would part them.
    """
    sample_rate = cache.sample_rate_hz
    display: Any = LiveDisplay(Console(file=env.stdout), None) if live else PlainDisplay(env.stdout)
    journal = Journal(journal_path(env.dirs.data), SessionInfo(loaded.id, loaded.title, names.a, names.b, settings),
                      env.note)
    ended_by, result = "error", None
    with KeyReader() as keys, (display if live else contextlib.nullcontext()):
        session = Session(steps, SessionClips(cache, sample_rate), io, Fanout([display, journal]),
                          gate_factory=lambda: VoiceDetector(sample_rate),
                          claps=ClapDetector(sample_rate) if scheduler is None else None,
                          options=options, commands=keys.poll if commands is None else commands(keys.poll),
                          closing=closing, record_to=record, preroll_frames=preroll_frames,
                          preroll_text=COUNTDOWN_TEXT if preroll_frames else None, scheduler=scheduler)
        if scheduler is not None:
            scheduler.attach(session.clock)
        try:
            result = session.run()
            ended_by = result.ended_by
        except KeyboardInterrupt:
            result, ended_by = session.result_so_far, "quit"
            raise
        finally:
            partial = result or session.result_so_far
            journal.close(ended_by, partial.length_s if partial else 0.0, partial.underruns if partial else 0)
            if partial is not None:
                figures = _print_summary(env, partial, names)
                if log is not None:
                    _write_log(log, partial, figures, loaded, sample_rate)
    return result


@app.command()
def timeout(
    ctx: typer.Context,
    a: NameA = Names.a,
    b: NameB = Names.b,
    no_mic: NoMicOpt = False,
) -> None:
    """Start the timeout breathing exercise at once, for a heated moment."""
    ctx.invoke(run, ctx=ctx, script="timeout-breathing", a=a, b=b, sets=None, voice=None, rate=DEFAULT_WPM,
               sample_rate=DEFAULT_RATE_HZ, no_mic=no_mic, headphones=False, mic_file=None, out=None,
               realtime=False, log=None, input_device=None, output_device=None, mic_channels=None,
               quiet_summary=False, record=None, start_at=None)


@app.command()
def devices(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List sound devices (the default input is marked <, the default output >)."""
    env = _env(ctx)
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
    env = _env(ctx)
    samples, rate = read_wav(wav)
    report = analyze_speech(samples, rate)
    if as_json:
        env.out(json.dumps(report, indent=1))
        return
    env.out(f"{wav}: {format_duration(report['duration_s'])}, speech {report['talk_s']:.1f}s "
            f"in {len(report['speech'])} stretches, longest silence {report['longest_silence_s']:.1f}s")
    for seg in report["speech"]:
        env.out(f"  {seg['start_s']:8.2f} - {seg['end_s']:8.2f}")


history_app = typer.Typer(help="Look back at past sessions: summaries, pictures, exports.",
                          invoke_without_command=True, no_args_is_help=False)
app.add_typer(history_app, name="history")


def _journal(env: Env) -> sqlite3.Connection:
    return connect(journal_path(env.dirs.data))


def _since(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--since {value}: not a date", "use YYYY-MM-DD, e.g. --since 2026-11-01") from None
    # The journal stores UTC; a plain date means midnight UTC.
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


@history_app.callback()
def history(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of text.")] = False,
    since: Annotated[str | None, typer.Option("--since", help="Only sessions from this date (YYYY-MM-DD).")] = None,
    script: Annotated[str | None, typer.Option("--script", help="Only sessions of this exercise id.")] = None,
) -> None:
    """List past sessions, newest first, with a line for the last 30 days on top."""
    if ctx.invoked_subcommand is not None:
        return
    env = _env(ctx)
    rows = list_sessions(_journal(env), _since(since), script)
    if as_json:
        env.out(json.dumps(rows, indent=1, ensure_ascii=False))
        return
    if as_csv:
        writer = csv.writer(env.stdout)
        writer.writerow(["id", "started_at", "script", "ended_by", "duration_s", "a", "a_talk_s", "b", "b_talk_s",
                         "balance", "longest_pause_s"])
        for r in rows:
            writer.writerow([r["id"], r["started_at"], r["script"], r["ended_by"], r["duration_s"], r["a"],
                             r["talk_s"][r["a"]], r["b"], r["talk_s"][r["b"]], r["balance"], r["longest_pause_s"]])
        return
    month_ago = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    recent = [r for r in rows if r["started_at"] >= month_ago]
    minutes = sum((r["duration_s"] or 0.0) for r in recent) / 60
    balances = [r["balance"] for r in recent if r["balance"] is not None]
    line = f"last 30 days: {len(recent)} sessions, {minutes:.0f} minutes"
    if balances:
        line += f", first partner's share of talking {sum(balances) / len(balances) * 100:.0f}% on average"
    env.out(line)
    for r in rows:
        talk = ", ".join(f"{who} {format_duration(sec)}" for who, sec in r["talk_s"].items())
        env.out(f"{r['id']:4d}  {r['started_at'][:16].replace('T', ' ')}  {r['script']:<24} {r['ended_by']:<10} "
                f"{format_duration(r['duration_s'] or 0):>6}  {talk}")


@history_app.command("show")
def history_show(
    ctx: typer.Context,
    session_id: Annotated[int, typer.Argument(help="The session's id (see 'voice-guide history').")],
    as_json: JsonOpt = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw who talked when to this PNG.")] = None,
) -> None:
    """Show one session step by step."""
    env = _env(ctx)
    session = get_session(_journal(env), session_id)
    if plot is not None:
        plot_session(session, plot)
        env.note(f"wrote {plot}")
    if as_json:
        env.out(json.dumps(session, indent=1, ensure_ascii=False))
        return
    env.out(f"{session['title']} ({session['script']}), {session['started_at']}, {session['ended_by']}")
    for step in session["steps"]:
        line = f"{format_duration(step['start_s']):>6}  {step['kind']:<7} {step['label']}"
        if step["kind"] == "listen":
            line += f"  [{step['who']} talked {step['talk_s'] or 0:.0f}s, {step['ended_by']}]"
        elif step["skipped"]:
            line += "  (skipped)"
        env.out(line)


@history_app.command("plot")
def history_plot(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("-o", "--out", help="The PNG to write.")] = Path("history.png"),
    since: Annotated[str | None, typer.Option("--since", help="Only sessions from this date (YYYY-MM-DD).")] = None,
) -> None:
    """Draw talk minutes per partner per session over time, with the balance line."""
    env = _env(ctx)
    rows = list_sessions(_journal(env), _since(since))
    if not rows:
        raise UsageError("no sessions to draw yet", "run an exercise first")
    plot_history(rows, out)
    env.out(f"wrote {out}")


@history_app.command("export")
def history_export(
    ctx: typer.Context,
    session_id: Annotated[int, typer.Argument(help="The session's id.")],
    fmt: Annotated[str, typer.Option("--format", help="rttm, vtt or csv.")] = "csv",
) -> None:
    """Print one session's turns in a standard format."""
    env = _env(ctx)
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"--format {fmt}: unknown format", "one of " + ", ".join(EXPORT_FORMATS))
    env.stdout.write(export_turns(get_session(_journal(env), session_id), fmt))


@history_app.command("forget")
def history_forget(
    ctx: typer.Context,
    session_id: Annotated[int | None, typer.Argument(help="The session to delete.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Delete every session.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete sessions from the journal for good."""
    env = _env(ctx)
    if every == (session_id is not None):
        raise UsageError("give one session id or --all", "for example: voice-guide history forget 3")
    db = _journal(env)
    if session_id is not None:
        get_session(db, session_id)  # a clear error for an unknown id
    what = "every session" if every else f"session {session_id}"
    if not yes and not typer.confirm(f"Delete {what} for good?", default=False):
        env.note("nothing deleted")
        return
    count = forget(db, None if every else [session_id or 0])
    env.out(f"deleted {count} session{'s' if count != 1 else ''}")


# ---------------------------------------------------------------- apart: two devices, one session

PortOpt = Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port to listen on (0: any free one).")]
BindOpt = Annotated[str, typer.Option("--bind", help="Address to listen on: 127.0.0.1 (this device only, e.g. "
                                      "through an SSH tunnel), or this device's LAN or VPN address.")]
CodeOpt = Annotated[str | None, typer.Option("--code", help="Pairing code (default: a fresh six-digit one).")]


@contextlib.contextmanager
def _apart_link(env: Env) -> Iterator[LinkThread]:
    """Run the link's event loop in a thread, with its warnings as one line each on stderr."""
    handler = _NoteHandler(env)
    loggers = [logging.getLogger("voice_guide.link"), logging.getLogger("voice_guide.apart")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    link = LinkThread()
    try:
        yield link
    finally:
        link.close()
        for logger in loggers:
            logger.removeHandler(handler)
            logger.propagate = True


class _NoteHandler(logging.Handler):
    def __init__(self, env: Env) -> None:
        super().__init__(logging.WARNING)
        self.env = env

    def emit(self, record: logging.LogRecord) -> None:
        self.env.note(f"{PROG}: link: {record.getMessage()}")


def _apart_note(env: Env) -> Callable[[str], None]:
    return lambda message: env.note(f"{PROG}: {message}")


def _timed(io: AudioIO) -> TimedIO:
    if not hasattr(io, "frame_at_time"):
        raise UsageError("apart sessions need a sound device", "leave out --out and --mic-file")
    return cast(TimedIO, io)


def _apart_end(scheduler: HostScheduler | JoinScheduler) -> None:
    """Fail (after the journal is saved) when the link was lost for good; a partner quitting is a clean end."""
    if scheduler.ended == "lost":
        raise LinkLost("the link to your partner's device was lost and did not come back",
                       hint="the session so far is saved; check the network, then start a new one")


@app.command("host")
def host_cmd(
    ctx: typer.Context,
    script: ScriptArg,
    port: PortOpt = 8765,
    bind: BindOpt = "127.0.0.1",
    code: CodeOpt = None,
    a: NameA = Names.a,
    b: NameB = Names.b,
    sets: SetOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = DEFAULT_WPM,
    no_mic: NoMicOpt = False,
    headphones: HeadphonesOpt = False,
    input_device: InputDeviceOpt = None,
    output_device: OutputDeviceOpt = None,
    log: LogOpt = None,
) -> None:
    """Host an apart session: your partner joins from their device and both play it in step.

    You are partner A (--a) at this device; the partner who joins is partner B (--b).
    """
    env = _env(ctx)
    names = Names(a=a, b=b)
    loaded, steps = _plan(env, script, a, b, sets)
    text = env.library().resolve(script).read_bytes().decode("utf-8")
    sample_rate = DEFAULT_RATE_HZ
    setup = Setup(loaded.id, text, a, b, tuple(sets or ()), voice, rate, sample_rate)
    cache = _cache(env, voice, rate, sample_rate)
    with _progress(env, "Preparing speech") as update:
        prepare_clips(steps, cache, update)
    io = _open_io(env, mic_file=None, out=None, realtime=False, no_mic=no_mic, input_device=input_device,
                  output_device=output_device, channels=1, sample_rate_hz=sample_rate)
    pairing = normalize_code(code) if code else make_code()
    with _apart_link(env) as link:
        async def start() -> Host:
            return await Host(pairing, bind, port, setup=setup.as_dict(), on_link_lost=link.lost,
                              on_link_restored=link.restored).start()

        try:
            host = link.call(start())
        except OSError as exc:
            raise UsageError(f"cannot listen on {bind}:{port}: {exc.strerror or exc}",
                             "pick another --port, or check --bind is this device's address") from None
        try:
            env.out(f"pairing code: {pairing}")
            env.out(f"your partner joins with: {PROG} join {host.url.removeprefix('ws://').rstrip('/')} "
                    f"--code {pairing}")
            if bind in ("0.0.0.0", "::"):
                env.note(f"{PROG}: listening on every interface; give your partner this device's own address")
            env.stdout.flush()
            link.call(host.wait_joined())
            env.note(f"{PROG}: your partner joined")
            scheduler = HostScheduler(link, host, _timed(io), len(steps), _apart_note(env))
            settings = {"voice": voice, "rate_wpm": rate, "sample_rate": sample_rate, "mic": not no_mic,
                        "headphones": headphones, "set": list(sets or []), "apart": "host"}
            _play(env, loaded, steps, names, cache, io, settings, live=env.stdout.isatty(),
                  options=SessionOptions(headphones=headphones, mic_channels={HOST_WHO: 0}), log=log,
                  scheduler=scheduler, commands=scheduler.commands)
        finally:
            link.call(host.quit(), 10.0)
    _apart_end(scheduler)


@app.command("join")
def join_cmd(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="The host's address as it shows it, HOST:PORT.")],
    code: Annotated[str, typer.Option("--code", help="The pairing code the host shows.")],
    no_mic: NoMicOpt = False,
    headphones: HeadphonesOpt = False,
    input_device: InputDeviceOpt = None,
    output_device: OutputDeviceOpt = None,
    log: LogOpt = None,
) -> None:
    """Join an apart session hosted on your partner's device; it sends the script and settings.

    You are partner B at this device.
    """
    env = _env(ctx)
    url = address if address.startswith(("ws://", "wss://")) else f"ws://{address}/"
    with _apart_link(env) as link:
        async def connect_link() -> Joiner:
            return await join_link(url, code, on_link_lost=link.lost, on_link_restored=link.restored)

        joiner = link.call(connect_link())
        try:
            setup = Setup.from_dict(joiner.setup)
            loaded, steps = setup.plan()
            names = Names(a=setup.a, b=setup.b)
            env.note(f"{PROG}: joined {loaded.title!r}; you are {setup.b}")
            cache = _cache(env, setup.voice, setup.rate_wpm, setup.sample_rate_hz)
            with _progress(env, "Preparing speech") as update:
                prepare_clips(steps, cache, update)
            io = _open_io(env, mic_file=None, out=None, realtime=False, no_mic=no_mic, input_device=input_device,
                          output_device=output_device, channels=1, sample_rate_hz=setup.sample_rate_hz)
            scheduler = JoinScheduler(link, joiner, _timed(io), len(steps), _apart_note(env),
                                      setup.sample_rate_hz)
            settings = {"voice": setup.voice, "rate_wpm": setup.rate_wpm, "sample_rate": setup.sample_rate_hz,
                        "mic": not no_mic, "headphones": headphones, "set": list(setup.sets), "apart": "join"}
            _play(env, loaded, steps, names, cache, io, settings, live=env.stdout.isatty(),
                  options=SessionOptions(headphones=headphones, mic_channels={JOINER_WHO: 0}), log=log,
                  scheduler=scheduler, commands=scheduler.commands)
        finally:
            link.call(joiner.quit(), 10.0)
    _apart_end(scheduler)


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
