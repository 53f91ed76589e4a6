"""Commands to get ready: mic-test (hear the microphone against the detector's threshold) and setup."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, TextIO

import numpy as np
import typer

from voice_guide.cli.app import app, env_of
from voice_guide.cli.build import clip_cache, open_io, settings
from voice_guide.cli.env import PROG, Env
from voice_guide.cli.options import HeadphonesOpt, InputDeviceOpt, JsonOpt, OutputDeviceOpt
from voice_guide.cli.settings import KEYS, SessionSettings, Value, parse_value, read_prefs, write_prefs
from voice_guide.errors import AudioDeviceError, UsageError
from voice_guide.live.audio import AudioIO
from voice_guide.live.display import meter_line
from voice_guide.live.mictest import MicCheck, Reading, Report, spoken_verdict
from voice_guide.sound.levels import Samples
from voice_guide.sound.render import SessionClips
from voice_guide.sound.tones import breath_tone

BLOCK_S = 0.01
TONE_S = 1.0
# The room's echo of the test sound dies away before listening starts.
SETTLE_S = 0.3
PROMPT = "Microphone test. After the tone, say a few words in your normal voice."


def _meter(reading: Reading) -> str:
    return "mic " + meter_line(reading.level_dbfs, reading.threshold_dbfs, reading.speaking)


def _play(io: AudioIO, clip: Samples, block: int) -> list[Samples]:
    """Play `clip` block by block; return the mono mic blocks heard meanwhile."""
    heard: list[Samples] = []
    for at in range(0, len(clip), block):
        out = np.zeros(block, np.float32)
        piece = clip[at : at + block]
        out[: len(piece)] = piece
        heard += [b.samples.mean(axis=1).astype(np.float32) for b in io.exchange(out)]
    return heard


def run_mic_test(env: Env, chosen: SessionSettings, seconds: float, mic_file: Path | None, speak: bool) -> Report:
    """Play a prompt and a test tone, listen for `seconds`, show the level live; return the report."""
    rate = chosen.sample_rate_hz
    io = open_io(env, chosen, mic_file=mic_file)
    if io.input_channels == 0:
        raise AudioDeviceError(
            "no microphone found", "connect one, or pick one with --input-device (see: voice-guide devices)"
        )
    bank = SessionClips(clip_cache(env, chosen), rate)
    block = round(BLOCK_S * rate)
    check = MicCheck(rate)
    live = env.stderr.isatty()
    io.start()
    try:
        # A recording is checked from its first sample: it cannot hear the prompt or the tone,
        # and playing them first would skip its opening seconds (as long as the prompt is).
        if mic_file is None:
            if speak:
                _play(io, bank.speech(PROMPT), block)
            for heard in _play(io, breath_tone("in", TONE_S, rate), block):
                check.push(heard, tone_playing=True)
            _play(io, np.zeros(round(SETTLE_S * rate), np.float32), block)
        env.warn(f"listening for {seconds:g} s: say a few words")
        silence = np.zeros(block, np.float32)
        shown = 0
        for n in range(round(seconds / BLOCK_S)):
            for mic in io.exchange(silence):
                reading = check.push(mic.samples.mean(axis=1).astype(np.float32))
                if live and n - shown >= 10:
                    shown = n
                    env.stderr.write("\r" + _meter(reading))
                    env.stderr.flush()
        if live:
            env.stderr.write("\r\x1b[2K")
        report = check.report()
        if speak:
            _play(io, bank.speech(spoken_verdict(report)), block)
        io.finish()
    except BaseException:
        io.abort()
        raise
    return report


def _print_report(env: Env, report: Report) -> None:
    env.out(f"{report.verdict}: {report.message}")
    env.out(
        f"  loudest {report.peak_dbfs:.1f} dBFS, speech detected for {report.speech_s:.1f} s, "
        f"threshold {report.threshold_dbfs:.1f} dBFS"
    )
    for fix in report.fixes:
        env.out(f"  - {fix}")


@app.command("mic-test")
def mic_test(
    ctx: typer.Context,
    seconds: Annotated[float, typer.Option("--seconds", min=1.0, max=60.0, help="How long to listen.")] = 6.0,
    input_device: InputDeviceOpt = None,
    output_device: OutputDeviceOpt = None,
    headphones: HeadphonesOpt = None,
    mic_file: Annotated[
        Path | None, typer.Option("--mic-file", help="Check a recording (WAV) instead of the live microphone.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Do not speak the prompt and the verdict.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check the microphone: its live level against the speech threshold, and what to fix (exit 1 if it fails)."""
    env = env_of(ctx)
    if mic_file is not None and not mic_file.is_file():
        raise UsageError(f"--mic-file {mic_file}: no such file", "a WAV recording to check")
    flags = {"input_device": input_device, "output_device": output_device, "headphones": headphones}
    report = run_mic_test(env, settings(env, flags), seconds, mic_file, speak=not quiet)
    if as_json:
        env.out(json.dumps(report.as_json(), indent=1))
    else:
        _print_report(env, report)
    if report.verdict != "speech":
        raise typer.Exit(1)


def _ask(env: Env, stdin: TextIO, question: str, default: str) -> str:
    """Ask one question on stderr; an empty answer (or the end of input) keeps the default."""
    env.stderr.write(f"{question} [{default}]: ")
    env.stderr.flush()
    answer = stdin.readline()
    if not answer or not stdin.isatty():
        env.stderr.write("\n")  # piped answers are not echoed: end the question's line
    return answer.strip() or default


@app.command()
def setup(
    ctx: typer.Context,
    seconds: Annotated[
        float, typer.Option("--seconds", min=1.0, max=60.0, help="How long the mic check listens.")
    ] = 6.0,
    mic_file: Annotated[
        Path | None, typer.Option("--mic-file", help="Check a recording (WAV) instead of the live microphone.")
    ] = None,
) -> None:
    """First run: your names, a test sound, the microphone check; then save the answers (see 'config list')."""
    env = env_of(ctx)
    stdin = env.stdin
    path = env.dirs.config_file
    prefs: dict[str, Value] = dict(read_prefs(path))
    env.note(f"{PROG} setup: a few questions; press Enter to keep the value in brackets.")
    for key, question in (("a", "Name of the partner who starts"), ("b", "Name of the other partner")):
        prefs[key] = parse_value(key, _ask(env, stdin, question, str(prefs.get(key, KEYS[key].default))))
    phones = _ask(env, stdin, "Do you listen on headphones? (yes/no)", "yes" if prefs.get("headphones") else "no")
    prefs["headphones"] = parse_value("headphones", phones)
    chosen = settings(env, {k: v for k, v in prefs.items() if k in ("a", "b", "headphones")})
    env.warn(f"playing a test sound and checking the microphone ({seconds:g} s)")
    try:
        report = run_mic_test(env, chosen, seconds, mic_file, speak=True)
    except AudioDeviceError as exc:
        env.warn(f"microphone check skipped: {exc.one_line()}")
    else:
        _print_report(env, report)
    write_prefs(path, prefs)
    env.out(f"saved in {path}: a = {prefs['a']}, b = {prefs['b']}, headphones = {str(prefs['headphones']).lower()}")
    env.warn(f"change any of it with '{PROG} config set KEY VALUE'; try: {PROG} timeout")
