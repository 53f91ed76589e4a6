"""Build the concrete objects a command needs from its options: the plan, the speech cache, the audio IO."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from voice_guide.cli.env import PROG, Env
from voice_guide.errors import AudioDeviceError, UsageError
from voice_guide.live.audio import AudioIO, FileIO, SoundDeviceIO, find_device, list_devices
from voice_guide.script import Names, Script, expand, parse_overrides
from voice_guide.sound.speech.tts import ClipCache, Pyttsx3Speaker


def plan(env: Env, name: str, a: str, b: str, sets: Sequence[str] | None) -> tuple[Script, tuple[Any, ...]]:
    script = env.library().load(name)
    steps = expand(script, Names(a=a, b=b), parse_overrides(sets or (), script))
    return script, steps


def clip_cache(env: Env, voice: str | None, rate_wpm: int, sample_rate_hz: int) -> ClipCache:
    return ClipCache(env.dirs.cache / "speech", Pyttsx3Speaker(voice=voice, rate_wpm=rate_wpm), sample_rate_hz)


@contextlib.contextmanager
def progress(env: Env, label: str) -> Iterator[Callable[[int, int], None]]:
    """Show a progress bar on a terminal; stay quiet when stderr is a file or pipe."""
    shown = env.stderr.isatty()
    console = Console(file=env.stderr)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not shown,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def parse_mic_channels(spec: str | None) -> dict[str, int]:
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


def open_io(
    env: Env,
    *,
    mic_file: Path | None,
    out: Path | None,
    realtime: bool,
    no_mic: bool,
    input_device: str | None,
    output_device: str | None,
    channels: int,
    sample_rate_hz: int,
) -> AudioIO:
    if mic_file is not None or out is not None:
        if mic_file is None and not no_mic:
            env.note(f"{PROG}: no --mic-file; turns will last their full time")
        return FileIO(None if no_mic else mic_file, out, sample_rate_hz, realtime=realtime)
    devices = list_devices()
    output = find_device(output_device, "output", devices)
    if output is None:
        raise AudioDeviceError(
            "no sound output device found", "connect one, or render to a file: voice-guide render SCRIPT -o session.wav"
        )
    mic = None if no_mic else find_device(input_device, "input", devices)
    if mic is None and not no_mic:
        env.note(f"{PROG}: no microphone found; turns will last their full time")
    return SoundDeviceIO(output, mic, sample_rate_hz, input_channels=max(channels, 1))
