"""Bad input of every kind gets one line and exit 2, or a correct result; never a traceback."""

from __future__ import annotations

import json
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voice_guide.script.durations import parse_duration_s

from .conftest import CliResult, write

Cli = Callable[..., CliResult]
FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def _one_line_or_ok(result: CliResult) -> None:
    assert result.code in (0, 2), result.err
    assert "Traceback" not in result.err
    if result.code:
        assert result.err.count("\n") == 1 and result.err.startswith("voice-guide: error: ")


@FUZZ
@given(text=st.text(max_size=20))
def test_durations_never_raise(text: str) -> None:
    value = parse_duration_s(text)
    assert value is None or value >= 0


@FUZZ
@given(value=st.text(max_size=16).filter(lambda s: "\x00" not in s))
def test_set_values(cli: Cli, value: str) -> None:
    _one_line_or_ok(cli("show", "active-listening-relay", "--json", "--set", f"share={value}"))


@FUZZ
@given(pair=st.text(max_size=16).filter(lambda s: "\x00" not in s))
def test_set_pairs(cli: Cli, pair: str) -> None:
    _one_line_or_ok(cli("show", "mindful-pause", "--set", pair))


@FUZZ
@given(name=st.text(min_size=1, max_size=12).filter(lambda s: "\x00" not in s))
def test_device_names(cli: Cli, name: str) -> None:
    # A prefix no real device has, so a lucky match never starts a real session.
    result = cli("run", "mindful-pause", "--no-mic", "--output-device", f"zz-{name}")
    assert result.code == 2 and result.err.count("\n") == 1, result.err


@FUZZ
@given(spec=st.text(max_size=12).filter(lambda s: "\x00" not in s))
def test_mic_channel_specs(cli: Cli, spec: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("mc")
    result = cli(
        "run",
        "mindful-pause",
        "--mic-channels",
        spec,
        "--out",
        str(folder / "o.wav"),
        "--no-mic",
        "--sample-rate",
        "8000",
        "--quiet-summary",
    )
    _one_line_or_ok(result)


def _wav(path: Path, data: np.ndarray, rate: int, width: int = 2, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        if width == 1:
            w.writeframes(np.round(data * 127 + 128).astype(np.uint8).tobytes())
        else:
            w.writeframes(np.round(data * 32767).astype("<i2").tobytes())
    return path


def _speechy(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(5)
    n = int(seconds * rate)
    x = 0.0005 * rng.standard_normal(n)
    a, b = int(1 * rate), int(min(seconds, 3) * rate)
    x[a:b] += 0.2 * np.convolve(rng.standard_normal(b - a), np.ones(6) / 6, mode="same")
    return np.repeat(x[:, None], channels, axis=1).reshape(-1) if channels > 1 else x


def audio_cases(folder: Path) -> dict[str, Path]:
    """Every kind of audio file a user might hand over, good and bad."""
    cases = {
        "empty": write(folder, "empty.wav", ""),
        "not-audio": write(folder, "text.wav", "RIFF but not really a wave file"),
        "8-bit": _wav(folder / "u8.wav", _speechy(5, 16000), 16000, width=1),
        "stereo": _wav(folder / "st.wav", _speechy(5, 16000, 2), 16000, channels=2),
        "8kHz": _wav(folder / "8k.wav", _speechy(5, 8000), 8000),
        "96kHz": _wav(folder / "96k.wav", _speechy(5, 96000), 96000),
        "silent": _wav(folder / "zero.wav", np.zeros(16000 * 3), 16000),
        "no-frames": _wav(folder / "none.wav", np.zeros(0), 16000),
    }
    full = (folder / "st.wav").read_bytes()
    (folder / "cut.wav").write_bytes(full[: len(full) // 3 + 1])
    cases["truncated"] = folder / "cut.wav"
    (folder / "header.wav").write_bytes(full[:30])
    cases["header-only"] = folder / "header.wav"
    return cases


def test_analyze_takes_every_kind_of_file(cli: Cli, tmp_path: Path) -> None:
    for kind, path in audio_cases(tmp_path).items():
        result = cli("analyze", str(path), "--json")
        _one_line_or_ok(result)
        if kind in ("8-bit", "stereo", "8kHz", "96kHz"):
            assert result.code == 0, (kind, result.err)
            speech = json.loads(result.out)["speech"]
            assert len(speech) == 1 and speech[0]["start_s"] == pytest.approx(1.0, abs=0.15), (kind, speech)
        if kind in ("empty", "not-audio", "header-only"):
            assert result.code == 2, kind


def test_mic_file_takes_every_kind_of_file(cli: Cli, tmp_path: Path) -> None:
    script = write(
        tmp_path, "t.yaml", "title: T\nsummary: S\nsteps:\n  - listen: a\n    for: 4s\n    until_silence: 1s\n"
    )
    for kind, path in audio_cases(tmp_path).items():
        result = cli(
            "run",
            str(script),
            "--mic-file",
            str(path),
            "--out",
            str(tmp_path / "o.wav"),
            "--sample-rate",
            "16000",
            "--headphones",
            "--quiet-summary",
        )
        _one_line_or_ok(result)
        if kind in ("stereo", "8kHz", "96kHz", "8-bit"):
            assert result.code == 0, (kind, result.err)


@pytest.mark.slow
def test_an_hour_long_recording_is_analyzed(cli: Cli, tmp_path: Path) -> None:
    rate = 8000
    hour = np.zeros(rate * 3600, np.float32)
    for start in range(60, 3600, 300):
        hour[start * rate : (start + 2) * rate] = _speechy(2, rate)[: 2 * rate]
    path = _wav(tmp_path / "hour.wav", hour, rate)
    result = cli("analyze", str(path), "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["duration_s"] == pytest.approx(3600)
    assert len(report["speech"]) == len(range(60, 3600, 300))
