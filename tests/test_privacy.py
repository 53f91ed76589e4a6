"""Privacy as tests: microphone audio reaches disk only with --record; no network without apart mode."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from voice_guide.sound.wavfile import read_wav, to_pcm16, write_wav

from .conftest import CliResult, write

Cli = Callable[..., CliResult]
RATE = 16_000
SCRIPT = "title: T\nsummary: S\nsteps:\n  - say: Go.\n  - listen: a\n    for: 4s\n  - chime: end\n"


def _mic(tmp_path: Path) -> tuple[Path, bytes]:
    rng = np.random.default_rng(11)
    voice = (0.2 * rng.standard_normal(RATE * 8)).astype(np.float32)
    path = tmp_path / "mic.wav"
    write_wav(path, voice, RATE)
    # A stretch of the microphone's own bytes: if any file holds it, mic audio reached disk.
    return path, to_pcm16(voice)[RATE * 6 : RATE * 6 + 2000]


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to open a network socket (unix sockets stay allowed)."""
    real = socket.socket

    def guarded(family: int = socket.AF_INET, *args: object, **kwargs: object) -> socket.socket:
        if family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError("a network socket was opened")
        return real(family, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "socket", guarded)


def test_no_mic_audio_on_disk_without_record(cli: Cli, tmp_path: Path, home: Path, no_network: None) -> None:
    mic, needle = _mic(tmp_path)
    script = write(tmp_path, "t.yaml", SCRIPT)
    result = cli(
        "run",
        str(script),
        "--mic-file",
        str(mic),
        "--out",
        str(tmp_path / "out.wav"),
        "--sample-rate",
        str(RATE),
        "--headphones",
        "--quiet-summary",
    )
    assert result.code == 0, result.err
    assert _files_holding(home, needle) == []
    assert _files_holding(tmp_path / "out.wav", needle) == []


def test_record_writes_the_microphone_and_says_so(cli: Cli, tmp_path: Path, home: Path, no_network: None) -> None:
    mic, needle = _mic(tmp_path)
    script = write(tmp_path, "t.yaml", SCRIPT)
    record = tmp_path / "rec.wav"
    result = cli(
        "run",
        str(script),
        "--mic-file",
        str(mic),
        "--out",
        str(tmp_path / "out.wav"),
        "--sample-rate",
        str(RATE),
        "--record",
        str(record),
        "--quiet-summary",
    )
    assert result.code == 0, result.err
    assert f"recording the microphone to {record}" in result.err
    recorded, rate = read_wav(record)
    original, _ = read_wav(mic)
    assert rate == RATE
    assert np.array_equal(recorded[: len(original)], original[: len(recorded)])
    assert _files_holding(home, needle) == []


def test_render_and_history_open_no_network(cli: Cli, tmp_path: Path, no_network: None) -> None:
    assert cli("render", "mindful-pause", "-o", str(tmp_path / "m.wav"), "--sample-rate", "16000").code == 0
    assert cli("history", "--json").code == 0
    assert cli("list").code == 0
