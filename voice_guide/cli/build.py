"""Build the concrete objects a command needs from its options: the plan, the speech cache, the audio IO."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from voice_guide.cli.env import PROG, Env
from voice_guide.cli.settings import SessionSettings, Value, read_prefs, resolve
from voice_guide.errors import AudioDeviceError, UsageError
from voice_guide.live.audio import AudioIO, DeviceInfo, FileIO, SoundDeviceIO, find_device, list_devices
from voice_guide.outputs import Output, check_outputs
from voice_guide.paths import audio_assets_dir
from voice_guide.script import Chime, Names, Script, Step, expand, parse_overrides
from voice_guide.sound.speech import ClipCache, SpeechSettings, make_speaker


def speech_seeds_dir() -> Path:
    """Return the shipped clips of the prompts `timeout` opens with (tools/speech_seeds.py makes them)."""
    return audio_assets_dir() / "speech"


def settings(
    env: Env,
    flags: Mapping[str, Value | None],
    *,
    mic: bool = True,
    sets: Sequence[str] | None = None,
    offline: bool = False,
) -> SessionSettings:
    """Build a command's one settings value: defaults, then saved preferences, then the flags given."""
    return SessionSettings.from_resolved(
        resolve(read_prefs(env.dirs.config_file), flags), mic=mic, sets=tuple(sets or ()), offline=offline
    )


def plan(env: Env, name: str, names: Names, sets: Sequence[str]) -> tuple[Script, tuple[Step, ...]]:
    """Load a script and expand it with the partners' names and --set overrides."""
    script = env.library().load(name)
    steps = expand(script, names, parse_overrides(sets, script))
    return script, tuple(steps)


def check_paths(
    named: Sequence[tuple[str, Path | None, tuple[str, ...]]],
    script: Script | None = None,
    steps: Sequence[Step] = (),
    inputs: Sequence[Path | None] = (),
) -> None:
    """Refuse bad output paths before anything plays: (option, path or None, extensions) against every input.

    The inputs are the script file, the sound files its chimes name, and `inputs`.
    """
    read = [p for p in inputs if p is not None]
    if script is not None:
        read.append(script.path)
    read += [s.path for s in steps if isinstance(s, Chime) and s.path is not None]
    check_outputs([Output(option, path, exts) for option, path, exts in named if path is not None], read)


def clip_cache(env: Env, chosen: SessionSettings) -> ClipCache:
    """Return the speech cache for the chosen engine, voice, rate and sample rate (nothing loads yet)."""
    speaker = make_speaker(SpeechSettings(chosen.engine, chosen.voice, chosen.rate_wpm), env.dirs)
    return ClipCache(env.dirs.cache / "speech", speaker, chosen.sample_rate_hz, seeds=speech_seeds_dir())


@contextlib.contextmanager
def progress(env: Env, label: str) -> Iterator[Callable[[int, int], None]]:
    """Show a progress bar on a terminal; stay quiet when stderr is a file or pipe."""
    # Imported here: a session that starts without preparing never draws a bar (50 ms less to its first sound).
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

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


def open_io(
    env: Env,
    chosen: SessionSettings,
    *,
    mic_file: Path | None = None,
    out: Path | None = None,
    realtime: bool = False,
    channels: int = 1,
) -> AudioIO:
    """Open the session's audio: files when offline, else the chosen (or default) devices."""
    no_mic = not chosen.mic
    sample_rate_hz = chosen.sample_rate_hz
    if mic_file is not None or out is not None:
        if mic_file is None and not no_mic:
            env.warn("no --mic-file; turns will last their full time")
        return FileIO(None if no_mic else mic_file, out, sample_rate_hz, realtime=realtime)
    devices = list_devices()
    output = _device(chosen, "output", devices)
    if output is None:
        raise AudioDeviceError(
            "no sound output device found", "connect one, or render to a file: voice-guide render SCRIPT -o session.wav"
        )
    mic = None if no_mic else _device(chosen, "input", devices)
    if mic is None and not no_mic:
        env.warn("no microphone found; turns will last their full time")
    return SoundDeviceIO(output, mic, sample_rate_hz, input_channels=max(channels, 1))


def _device(chosen: SessionSettings, kind: str, devices: Sequence[DeviceInfo]) -> DeviceInfo | None:
    """Find the chosen device; when the choice came from the config file, the error says so."""
    key = f"{kind}_device"
    try:
        return find_device(chosen.input_device if kind == "input" else chosen.output_device, kind, devices)
    except UsageError as exc:
        if key not in chosen.saved:
            raise
        message = exc.message.replace(f"--{kind}-device", f"config {key}", 1)
        raise UsageError(message, f"{exc.hint}; or forget it: {PROG} config unset {key}") from None
