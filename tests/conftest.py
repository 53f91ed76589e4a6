"""Shared fixtures: an isolated user home and an in-process CLI runner."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench import launch
from voice_guide.cli import Env, main
from voice_guide.paths import UserDirs
from voice_guide.sound.speech import Speaker, SpeechSettings, make_speaker

REPO = Path(__file__).resolve().parent.parent

# A shell without job control starts background commands with SIGINT ignored, and an
# ignored signal stays ignored in every child: the Ctrl-C tests' sessions would never
# see theirs. Python's own handler here is reset to the default in each child instead.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One speech cache for the whole run: each prompt is synthesized once, not once per test."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, shared_cache: Path) -> Path:
    """Point VOICE_GUIDE_HOME at a fresh folder so no test touches a real home."""
    # Outside tmp_path, so tests that list their tmp_path see only their own files.
    folder = tmp_path_factory.mktemp("home")
    (folder / "cache").symlink_to(shared_cache, target_is_directory=True)
    monkeypatch.setenv("VOICE_GUIDE_HOME", str(folder))
    return folder


@pytest.fixture
def cli(home: Path) -> Callable[..., CliResult]:
    """Run the CLI in-process with captured output; return code, stdout, stderr."""

    def run(*args: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        env = Env(stdout=out, stderr=err, dirs=UserDirs.from_environ({"VOICE_GUIDE_HOME": str(home)}))
        with pytest.raises(SystemExit) as exited:
            main(list(args), env)
        code = exited.value.code
        return CliResult(code if isinstance(code, int) else 1, out.getvalue(), err.getvalue())

    return run


def write(folder: Path, name: str, text: str) -> Path:
    """Write a script file and return its path."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def pulse() -> Iterator[dict[str, str]]:
    """Make sure the private PulseAudio with the vg_out and vg_mic null sinks is up; return its env.

    `make test` starts it; a bare `pytest` starts it here and stops it at the end.
    """
    import subprocess

    script = REPO / "tools" / "pulse.sh"
    env = dict(os.environ)
    env.setdefault("VG_PULSE_DIR", str(REPO / ".pulse"))
    exports = subprocess.run([str(script), "env"], env=env, capture_output=True, text=True, check=True).stdout
    for item in exports.replace("export ", "").split():
        key, _, value = item.partition("=")
        env[key] = value.strip("'")
    started = subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0
    if started:
        subprocess.run([str(script), "start"], env=env, check=True)
    os.environ.update({k: env[k] for k in ("PULSE_SERVER", "PULSE_RUNTIME_PATH")})
    yield env
    if started:
        subprocess.run([str(script), "stop"], env=env, check=False)


def spawn_cli(args: list[str], env: dict[str, str], home: Path) -> subprocess.Popen[str]:
    """Start `voice-guide ARGS` as its own process with text pipes, in the test's home."""
    return launch.spawn_cli(args, {**env, "VOICE_GUIDE_HOME": str(home)})


def finish(*procs: subprocess.Popen[str], timeout_s: float = 60) -> list[tuple[int, str, str]]:
    """Wait for each process in turn (killing one that outlives `timeout_s`); return (exit code, stdout, stderr)."""
    done = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        done.append((proc.returncode, out, err))
    return done


@pytest.fixture(scope="module")
def pair(pulse: dict[str, str]) -> Iterator[dict[str, dict[str, str]]]:
    """Add a stereo sink, one mono channel of it per device, and the joiner's microphone; return each side's env.

    The host plays on the left of vg_pair and the joiner on the right, so one recording of
    vg_pair.monitor holds both on one clock; the joiner hears the vg_join_mic sink.
    """
    modules = []

    def load(*args: str) -> None:
        out = subprocess.run(["pactl", "load-module", *args], env=pulse, check=True, capture_output=True, text=True)
        modules.append(out.stdout.strip())

    for sink in launch.PAIR_SINK_MODULES:
        load(*sink)
    load("module-null-sink", "sink_name=vg_join_mic", "rate=48000")
    yield {
        "host": {**pulse, "PULSE_SINK": "vg_host_out"},
        "join": {**pulse, "PULSE_SINK": "vg_join_out", "PULSE_SOURCE": "vg_join_mic.monitor"},
    }
    for module in reversed(modules):
        subprocess.run(["pactl", "unload-module", module], env=pulse, check=False)


@dataclass(frozen=True)
class Hosting:
    """A `voice-guide host` process and what it printed for its partner."""

    proc: subprocess.Popen[str]
    address: str
    code: str


class Apart:
    """Start `voice-guide host` and `voice-guide join` as processes, each on its side of the pair's sinks."""

    def __init__(self, envs: dict[str, dict[str, str]], home: Path) -> None:
        self.envs = envs
        self.home = home
        self.started: list[subprocess.Popen[str]] = []

    def host(self, script: Path, *flags: str) -> Hosting:
        """Run `host SCRIPT --port 0 FLAGS`; return once it has printed its pairing code and address."""
        proc = spawn_cli(["host", str(script), "--port", "0", *flags], self.envs["host"], self.home)
        self.started.append(proc)
        shown = launch.read_address(proc)
        if shown is None:
            raise AssertionError("the host printed no address: " + (proc.stderr.read() if proc.stderr else ""))
        return Hosting(proc, *shown)

    def join(self, address: str, code: str, *flags: str) -> subprocess.Popen[str]:
        """Run `join ADDRESS --code CODE FLAGS`."""
        proc = spawn_cli(["join", address, "--code", code, *flags], self.envs["join"], self.home)
        self.started.append(proc)
        return proc

    def close(self) -> None:
        """Kill whatever a failed test left running."""
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


@pytest.fixture
def apart(pair: dict[str, dict[str, str]], home: Path) -> Iterator[Apart]:
    """Start host and joiner processes for one test; none outlives it."""
    starter = Apart(pair, home)
    yield starter
    starter.close()


def record_monitor(
    env: dict[str, str], path: Path, source: str, channels: int = 1, rate: int = 48_000
) -> subprocess.Popen[bytes]:
    """Record `source` as raw float32 with parec; return once it is really recording."""
    proc = subprocess.Popen(
        [
            "parec",
            "-d",
            source,
            "--format=float32le",
            f"--rate={rate}",
            f"--channels={channels}",
            "--raw",
            "--latency-msec=20",
            str(path),
        ],
        env=env,
    )
    # parec takes a moment to connect; timing tests need it listening before anything plays.
    for _ in range(1000):
        if path.exists() and path.stat().st_size > 0:
            return proc
        time.sleep(0.01)
    raise AssertionError(f"parec recorded nothing from {source}")


def default_speaker(home: Path) -> Speaker:
    """Return the speaker a command uses with no speech options, as the CLI builds it for `home`."""
    return make_speaker(SpeechSettings(), UserDirs.from_environ({"VOICE_GUIDE_HOME": str(home)}))
