"""Commands that turn a script into sound ahead of time: render, prepare."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from voice_guide.cli.app import app, env_of
from voice_guide.cli.build import check_paths, clip_cache, plan, progress, settings
from voice_guide.cli.options import EngineOpt, NameA, NameB, RateOpt, SampleRateOpt, ScriptArg, SetOpt, VoiceOpt
from voice_guide.errors import UsageError
from voice_guide.script import Step, expand
from voice_guide.script.durations import format_duration, plural
from voice_guide.sound.encode import EMBEDS_CHAPTERS, FORMATS, write_audio
from voice_guide.sound.render import AheadClips, SessionClips, StepwiseRender, chapters, write_cues
from voice_guide.sound.render import prepare as prepare_clips
from voice_guide.sound.speech import Pyttsx3Speaker, speech_identity
from voice_guide.sound.timeline import frames_to_s


@app.command()
def render(
    ctx: typer.Context,
    script: ScriptArg,
    out: Annotated[Path, typer.Option("-o", "--out", help="Output file: .wav, .flac, .ogg, .mp3 or .m4a.")],
    cues: Annotated[Path | None, typer.Option("--cues", help="Also write every event's timing as JSON.")] = None,
    with_chapters: Annotated[bool, typer.Option("--chapters", help="Mark each step as a chapter.")] = False,
    a: NameA = None,
    b: NameB = None,
    sets: SetOpt = None,
    engine: EngineOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = None,
    sample_rate: SampleRateOpt = None,
) -> None:
    """Render a whole session to an audio file (listen turns last their full 'for')."""
    env = env_of(ctx)
    flags = {"a": a, "b": b, "engine": engine, "voice": voice, "rate": rate, "sample_rate": sample_rate}
    chosen = settings(env, flags, sets=sets)
    loaded, steps = plan(env, script, chosen.names, chosen.sets)
    vtt = out.with_suffix(".vtt") if with_chapters and out.suffix.lower().lstrip(".") not in EMBEDS_CHAPTERS else None
    named = [("-o", out, tuple(FORMATS)), ("--cues", cues, ("json",)), ("--chapters", vtt, ("vtt",))]
    check_paths(named, loaded, steps)
    cache = clip_cache(env, chosen)
    rate_hz = chosen.sample_rate_hz
    # Piper makes the prompts on a thread ahead of the steps being mixed, and ffmpeg encodes
    # as they are written, so a cold render takes about as long as the slower of the two.
    # espeak-ng speaks on this thread, as each step needs it (it silences stdout while it
    # speaks, and makes a whole session in well under a second).
    ahead = not isinstance(cache.speaker, Pyttsx3Speaker)
    with contextlib.ExitStack() as stack:
        bank = stack.enter_context(AheadClips(cache, rate_hz, steps, yield_cpu=False)) if ahead else None
        update = stack.enter_context(progress(env, "Rendering"))
        session = StepwiseRender(steps, bank or SessionClips(cache, rate_hz), update)
        marks = (lambda: chapters(session.timeline)) if with_chapters else ()
        written = write_audio(out, session.blocks(), rate_hz, marks, title=loaded.title)
    timeline = session.timeline
    if cues is not None:
        write_cues(cues, timeline, speech_identity(cache.speaker))
        written.append(cues)
    duration = format_duration(frames_to_s(timeline.length_frames, timeline.sample_rate_hz))
    env.out(f"wrote {', '.join(str(p) for p in written)} ({duration})")


@app.command()
def prepare(
    ctx: typer.Context,
    script: Annotated[str | None, typer.Argument(help="A script id or path; leave out with --all.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Prepare every exercise in the library.")] = False,
    a: NameA = None,
    b: NameB = None,
    engine: EngineOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = None,
    sample_rate: SampleRateOpt = None,
) -> None:
    """Synthesize every spoken prompt ahead of time so sessions start at once."""
    env = env_of(ctx)
    if every == (script is not None):
        raise UsageError("give one SCRIPT or --all", "for example: voice-guide prepare timeout-breathing")
    chosen = settings(env, {"a": a, "b": b, "engine": engine, "voice": voice, "rate": rate, "sample_rate": sample_rate})
    ids = list(env.library().ids()) if every else [script or ""]
    steps: list[Step] = []
    for name in ids:
        steps += expand(env.library().load(name), chosen.names)
    cache = clip_cache(env, chosen)
    before = cache.synth_calls
    with progress(env, "Preparing speech") as update:
        count = prepare_clips(steps, cache, update)
    env.out(f"{plural(count, 'prompt')} ready ({cache.synth_calls - before} newly synthesized) in {cache.folder}")
