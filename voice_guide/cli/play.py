"""Commands that play a session live or offline: run, timeout; and the session runner host/join share."""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from voice_guide.cli.app import app, env_of
from voice_guide.cli.build import check_paths, clip_cache, open_io, plan, progress, settings
from voice_guide.cli.env import PROG, Env
from voice_guide.cli.options import (
    EngineOpt,
    HeadphonesOpt,
    InputDeviceOpt,
    LogOpt,
    MicChannelsOpt,
    NameA,
    NameB,
    NoMicOpt,
    OutputDeviceOpt,
    RateOpt,
    SampleRateOpt,
    ScriptArg,
    SetOpt,
    VoiceOpt,
)
from voice_guide.cli.settings import SessionSettings
from voice_guide.errors import UsageError
from voice_guide.journal.store import Journal, SessionInfo, journal_path
from voice_guide.live.audio import AudioIO
from voice_guide.live.display import Fanout, LiveDisplay, PanelSource, PlainDisplay
from voice_guide.live.keys import KeyReader
from voice_guide.live.recap import Recap, closing_line, recap
from voice_guide.live.records import Command, SessionOptions, SessionResult
from voice_guide.live.session import Session
from voice_guide.live.startat import COUNTDOWN_TEXT, parse_start_at, wait_for_countdown
from voice_guide.live.vad import ClapDetector, VoiceDetector
from voice_guide.outputs import write_text
from voice_guide.script import Names, Say, Script, Step
from voice_guide.script.durations import format_duration, plural
from voice_guide.sound.render import AheadClips, SessionClips
from voice_guide.sound.render import prepare as prepare_clips
from voice_guide.sound.speech import ClipCache, Pyttsx3Speaker, SpeechIdentity, speech_identity
from voice_guide.sound.timeline import ClipBank, spoken_texts

if TYPE_CHECKING:  # the two-device link is imported by host/join only
    from voice_guide.apart.scheduler import HostScheduler, JoinScheduler


def _print_summary(env: Env, result: SessionResult, names: Names) -> Recap:
    figures = recap(result.turns, names.a, names.b)
    if result.turns and result.mic_used:
        parts = [f"{who} talked {format_duration(seconds)}" for who, seconds in figures.talk_s.items()]
        if figures.balance is not None:
            parts.append(f"{names.a}'s share {figures.balance * 100:.0f}%")
        parts.append(f"longest pause {format_duration(figures.longest_pause_s)}")
        if figures.overrun_s:
            parts.append(f"{format_duration(figures.overrun_s)} over time")
        if figures.interruptions:
            parts.append(plural(figures.interruptions, "interruption"))
        env.note("summary: " + ", ".join(parts))
    if result.underruns or result.overruns:
        env.warn(f"audio: {plural(result.underruns, 'underrun')}, {plural(result.overruns, 'overrun')}")
    return figures


def _write_log(
    path: Path, result: SessionResult, figures: Recap, script: Script, rate: int, speech: SpeechIdentity
) -> None:
    doc = {
        "script": script.id,
        "title": script.title,
        "sample_rate": rate,
        "speech": speech.as_json(),
        "ended_by": result.ended_by,
        "duration_s": result.length_s,
        "underruns": result.underruns,
        "overruns": result.overruns,
        "input_drift_ppm": result.drift_ppm,
        "mic": result.mic_used,
        "events": [e.as_json() for e in result.events],
        "summary": figures.as_json(),
    }
    write_text(path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


@app.command()
def run(
    ctx: typer.Context,
    script: ScriptArg,
    a: NameA = None,
    b: NameB = None,
    sets: SetOpt = None,
    engine: EngineOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = None,
    sample_rate: SampleRateOpt = None,
    no_mic: NoMicOpt = False,
    headphones: HeadphonesOpt = None,
    mic_file: Annotated[
        Path | None, typer.Option("--mic-file", help="Run offline: read the microphone from this WAV.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run offline: write the output to this WAV.")] = None,
    realtime: Annotated[bool, typer.Option("--realtime", help="Offline runs at real-time pace.")] = False,
    log: LogOpt = None,
    input_device: InputDeviceOpt = None,
    output_device: OutputDeviceOpt = None,
    mic_channels: MicChannelsOpt = None,
    quiet_summary: Annotated[
        bool, typer.Option("--quiet-summary", help="Do not speak the closing line about who talked how long.")
    ] = False,
    record: Annotated[
        Path | None,
        typer.Option("--record", help="Also save the microphone to this WAV (the only way mic audio reaches disk)."),
    ] = None,
    start_at: Annotated[
        str | None,
        typer.Option(
            "--start-at",
            help="Wait and start exactly at this local time, HH:MM[:SS] (partners apart with synced clocks).",
        ),
    ] = None,
) -> None:
    """Play an exercise, listening to the microphone to know when each turn is over."""
    env = env_of(ctx)
    target = parse_start_at(start_at, datetime.now().astimezone()) if start_at else None
    flags = {
        "a": a,
        "b": b,
        "engine": engine,
        "voice": voice,
        "rate": rate,
        "sample_rate": sample_rate,
        "headphones": headphones,
        "input_device": input_device,
        "output_device": output_device,
        "mic_channels": mic_channels,
    }
    chosen = settings(env, flags, mic=not no_mic, sets=sets, offline=mic_file is not None or out is not None)
    loaded, steps = plan(env, script, chosen.names, chosen.sets)
    if script == TIMEOUT_ID and chosen.default_names:
        steps = _who_is_who(env, steps)
    if mic_file is not None and not mic_file.is_file():
        raise UsageError(f"--mic-file {mic_file}: no such file", "a WAV file to use as the microphone")
    check_paths(
        [("--out", out, ("wav",)), ("--record", record, ("wav",)), ("--log", log, ("json",))],
        loaded,
        steps,
        [mic_file],
    )
    cache = clip_cache(env, chosen)
    # Played live with Piper, the session starts with its first prompt and the rest is made
    # in the background. espeak-ng makes a whole session in well under a second, and
    # silences stdout process-wide while it speaks (it would swallow the display's lines
    # from another thread), so it, offline runs and --start-at countdowns prepare first.
    ahead = mic_file is None and out is None and target is None and not isinstance(cache.speaker, Pyttsx3Speaker)
    with contextlib.ExitStack() as stack:
        # Speech starts now, so the voice check, the model and the first prompt are made
        # while the device opens; the session then starts on its first step's clips.
        bank = stack.enter_context(AheadClips(cache, chosen.sample_rate_hz, steps)) if ahead else None
        if not ahead:
            with progress(env, "Preparing speech") as update:
                prepare_clips(steps, cache, update)
                if target is not None:
                    cache.get(COUNTDOWN_TEXT)
        io = open_io(env, chosen, mic_file=mic_file, out=out, realtime=realtime, channels=chosen.input_channels)
        channels = chosen.mic_channels
        if channels and io.input_channels and max(channels.values()) >= io.input_channels:
            raise UsageError(
                f"--mic-channels: partner channels {', '.join(str(c + 1) for c in channels.values())},"
                f" but the input has {plural(io.input_channels, 'channel')}",
                f"count channels from 1 to {io.input_channels}",
            )
        if record is not None:
            env.warn(
                f"recording the microphone to {record}, as asked (--record)"
                if io.input_channels
                else "--record: there is no microphone to record"
            )

        def closing(result: SessionResult) -> str | None:
            names = chosen.names
            return None if quiet_summary else closing_line(recap(result.turns, names.a, names.b))

        preroll_frames = 0
        if target is not None:
            preroll_frames = round(wait_for_countdown(target, env.note) * chosen.sample_rate_hz)
        if bank is not None and steps:
            bank.wait_ready(steps[0])
        live = env.stdout.isatty() and mic_file is None and out is None
        play_session(
            env,
            loaded,
            steps,
            chosen,
            cache,
            io,
            live=live,
            log=log,
            closing=closing,
            record=record,
            preroll_frames=preroll_frames,
            bank=bank,
        )


TIMEOUT_ID = "timeout-breathing"
WHO_IS_WHO = "Whoever is nearer the speaker is partner A; the other is partner B."


def opening_prompts(env: Env) -> tuple[str, ...]:
    """Return the first prompt `timeout` says, without saved names and with them (shipped ready-made)."""
    _, steps = plan(env, TIMEOUT_ID, Names(), ())
    first = next(t for step in steps for t in spoken_texts([step]))
    return (WHO_IS_WHO, first)


def _who_is_who(env: Env, steps: Sequence[Step]) -> tuple[Step, ...]:
    """Say once, spoken and printed, who is who when the partners have no names."""
    env.warn(f"{WHO_IS_WHO} (save your names with: {PROG} config set a NAME)")
    return (Say(WHO_IS_WHO, 0), *steps)


def play_session(
    env: Env,
    loaded: Script,
    steps: Sequence[Step],
    chosen: SessionSettings,
    cache: ClipCache,
    io: AudioIO,
    *,
    live: bool,
    log: Path | None,
    closing: Callable[[SessionResult], str | None] | None = None,
    record: Path | None = None,
    preroll_frames: int = 0,
    scheduler: HostScheduler | JoinScheduler | None = None,
    commands: Callable[[Callable[[], list[Command]]], Callable[[], list[Command]]] | None = None,
    bank: ClipBank | None = None,
) -> SessionResult | None:
    """Run one session with display, keys and journal; print the summary and write the log (run, host, join).

    `scheduler` (apart mode) is attached to the session's clock; `commands` wraps the key reader;
    `bank` serves the clips (default: from the cache, prepared beforehand).
    Apart sessions do not listen for double claps: a pause on one device alone would part them.
    """
    display: LiveDisplay | PlainDisplay
    if live:
        from rich.console import Console  # only a terminal's panel needs rich

        display = LiveDisplay(Console(file=env.stdout), mic=chosen.mic, apart=scheduler is not None)
    else:
        display = PlainDisplay(env.stdout)
    journal_problems: list[str] = []

    def journal_warning(message: str) -> None:
        journal_problems.append(message)
        env.warn(message)

    info = SessionInfo(
        loaded.id, loaded.title, chosen.names.a, chosen.names.b, chosen.journal_settings(), is_test=chosen.offline
    )
    journal = Journal(journal_path(env.dirs.data), info, journal_warning)
    try:
        return _play(
            env,
            loaded,
            steps,
            chosen,
            cache,
            io,
            display,
            journal,
            live=live,
            log=log,
            closing=closing,
            record=record,
            preroll_frames=preroll_frames,
            scheduler=scheduler,
            commands=commands,
            bank=bank,
        )
    finally:
        env.warn(_saved_line(journal.session_id, journal_problems))


def _saved_line(session_id: int | None, problems: Sequence[str]) -> str:
    """Say in one line where the session was saved, or why it was not."""
    if session_id is not None and not problems:
        return f"saved as session {session_id} (see: {PROG} history show {session_id})"
    if not problems:
        return "not saved: the journal could not be opened"
    # The warning reads "the journal is not being written (WHY); ...": say WHY once more, briefly.
    last = problems[-1]
    why = last[last.find("(") + 1 : last.rfind(")")] if "(" in last else last
    return f"not saved: the journal could not be written ({why})"


def _play(
    env: Env,
    loaded: Script,
    steps: Sequence[Step],
    chosen: SessionSettings,
    cache: ClipCache,
    io: AudioIO,
    display: LiveDisplay | PlainDisplay,
    journal: Journal,
    *,
    live: bool,
    log: Path | None,
    closing: Callable[[SessionResult], str | None] | None,
    record: Path | None,
    preroll_frames: int,
    scheduler: HostScheduler | JoinScheduler | None,
    commands: Callable[[Callable[[], list[Command]]], Callable[[], list[Command]]] | None,
    bank: ClipBank | None,
) -> SessionResult | None:
    sample_rate = cache.sample_rate_hz
    names = chosen.names
    options = SessionOptions(headphones=chosen.headphones, mic_channels=chosen.mic_channels)
    ended_by, result = "error", None
    with KeyReader() as keys, display if isinstance(display, LiveDisplay) else contextlib.nullcontext():
        session = Session(
            steps,
            SessionClips(cache, sample_rate) if bank is None else bank,
            io,
            Fanout([display, journal]),
            gate_factory=lambda: VoiceDetector(sample_rate),
            claps=ClapDetector(sample_rate) if scheduler is None else None,
            options=options,
            commands=keys.poll if commands is None else commands(keys.poll),
            closing=closing,
            record_to=record,
            preroll_frames=preroll_frames,
            preroll_text=COUNTDOWN_TEXT if preroll_frames else None,
            scheduler=scheduler,
        )
        if scheduler is not None:
            scheduler.attach(session.clock)
        if isinstance(display, LiveDisplay):
            linked = scheduler

            def link_up() -> bool:
                return linked is not None and not linked.paused_by_link

            display.follow(
                PanelSource(
                    session_s=lambda: session.clock.session / sample_rate,
                    paused=lambda: session.paused,
                    device_lost=lambda: session.device_lost,
                    linked=None if scheduler is None else link_up,
                    threshold_dbfs=lambda: session.threshold_dbfs,
                )
            )
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
                    _write_log(log, partial, figures, loaded, sample_rate, speech_identity(cache.speaker))
    return result


def timeout(ctx: typer.Context, **options: Any) -> None:
    """Start the timeout breathing exercise at once, for a heated moment (takes every option of 'run')."""
    run(ctx, script=TIMEOUT_ID, **options)


# One definition of the live options: timeout takes exactly run's, less the script argument.
_run_signature = inspect.signature(run, eval_str=True)
timeout.__signature__ = _run_signature.replace(  # type: ignore[attr-defined]
    parameters=[p for p in _run_signature.parameters.values() if p.name != "script"]
)
timeout.__annotations__ = {k: v for k, v in run.__annotations__.items() if k != "script"}
app.command()(timeout)
