"""Command-line conventions people expect: --version, -h, completion, help on a bare call, exit codes, plurals."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult
from voice_guide import __version__
from voice_guide.script.durations import plural

Cli = Callable[..., CliResult]


def test_version_and_short_help(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("--version").out.strip() == f"voice-guide {__version__}"
    for args in (("-h",), ("run", "-h"), ("history", "forget", "-h"), ("config", "set", "-h")):
        capsys.readouterr()
        result = cli(*args)
        assert result.code == 0, args
        assert "Usage: voice-guide" in capsys.readouterr().out


def test_bare_command_prints_help_and_exits_0(home: Path) -> None:
    for args in ([], ["config"]):
        done = subprocess.run(
            [sys.executable, "-m", "voice_guide", *args],
            capture_output=True,
            text=True,
            env={"VOICE_GUIDE_HOME": str(home), "PATH": "/usr/bin:/bin"},
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "Usage: voice-guide" in done.stdout
        assert "error" not in done.stderr


def test_shell_completion_is_offered(home: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "voice_guide", "--show-completion", "bash"],
        capture_output=True,
        text=True,
        env={"VOICE_GUIDE_HOME": str(home), "PATH": "/usr/bin:/bin", "SHELL": "/bin/bash"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "complete" in done.stdout and "voice_guide" in done.stdout.replace("-", "_").lower()
    assert (
        "--install-completion"
        in subprocess.run(
            [sys.executable, "-m", "voice_guide", "--help"], capture_output=True, text=True, timeout=60
        ).stdout
    )


def test_an_unknown_voice_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    result = cli("render", "timeout-breathing", "-o", str(tmp_path / "t.wav"), "--voice", "zzzz")
    assert result.code == 2
    assert "--voice zzzz: no" in result.err and "voice matches" in result.err


def test_a_confirmation_without_a_terminal_asks_for_yes(cli: Cli, tmp_path: Path) -> None:
    assert cli("run", "timeout-breathing", "--no-mic", "--out", str(tmp_path / "t.wav")).code == 0
    result = cli("history", "forget", "1")
    assert result.code == 2
    assert "no terminal to ask (add --yes" in result.err
    assert json.loads(cli("history", "--json", "--tests").out)[0]["id"] == 1
    assert cli("history", "forget", "1", "--yes").out == "deleted 1 session\n"


def test_plurals() -> None:
    assert [plural(n, "session") for n in (0, 1, 2)] == ["0 sessions", "1 session", "2 sessions"]
    assert plural(1, "stretch", "stretches") == "1 stretch"
    assert plural(3, "stretch", "stretches") == "3 stretches"
    assert [plural(n, "minute", spoken=True) for n in (1, 2)] == ["one minute", "two minutes"]


def test_analyze_says_1_stretch(cli: Cli, tmp_path: Path) -> None:
    import numpy as np

    from voice_guide.sound.wavfile import write_wav

    rate = 16000
    t = np.arange(rate * 4) / rate
    signal = np.zeros_like(t, dtype=np.float32)
    burst = (t > 1.0) & (t < 2.5)
    rng = np.random.default_rng(1)
    signal[burst] = (0.3 * np.sin(2 * np.pi * 220 * t[burst]) * (1 + 0.5 * np.sin(2 * np.pi * 4 * t[burst]))).astype(
        np.float32
    )
    signal += (0.001 * rng.standard_normal(len(t))).astype(np.float32)
    write_wav(tmp_path / "one.wav", signal.astype(np.float32), rate)
    out = cli("analyze", str(tmp_path / "one.wav")).out
    assert "in 1 stretch," in out


def test_new_refuses_a_builtin_id_without_force(cli: Cli, home: Path) -> None:
    refused = cli("new", "timeout-breathing")
    assert refused.code == 2
    assert "is a built-in exercise" in refused.err and "--force" in refused.err and "--from" in refused.err
    assert not (home / "scripts" / "timeout-breathing.yaml").exists()
    forced = cli("new", "timeout-breathing", "--force")
    assert forced.code == 0
    assert "replaces the built-in" in forced.err
    listed = cli("list").out
    line = next(line for line in listed.splitlines() if line.startswith("timeout-breathing "))
    assert "[yours, replaces the built-in]" in line
    rows = {r["id"]: r for r in json.loads(cli("list", "--json").out)}
    assert rows["timeout-breathing"]["overrides_builtin"] is True
    assert rows["high-low"]["overrides_builtin"] is False and rows["high-low"]["source"] == "built-in"


def test_new_from_copies_an_exercise_that_then_checks(cli: Cli, home: Path) -> None:
    made = cli("new", "our-timeout", "--from", "timeout-breathing")
    assert made.code == 0, made.err
    copy = home / "scripts" / "our-timeout.yaml"
    assert "Timeout breathing" in copy.read_text(encoding="utf-8")
    assert cli("check", "our-timeout").code == 0
    assert cli("show", "our-timeout").out.startswith("Timeout breathing (our-timeout)")
    assert cli("new", "x", "--from", "no-such-thing").code == 2


@pytest.mark.parametrize("name", ["Bad Name", "-x"])
def test_new_rejects_bad_ids(cli: Cli, name: str) -> None:
    assert cli("new", name).code == 2
