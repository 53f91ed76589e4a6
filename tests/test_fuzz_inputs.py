"""Bad input of every kind gets one line and exit 2, or a correct result; never a traceback."""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from voice_guide.errors import AudioFileError, ScriptError, UsageError
from voice_guide.outputs import Output, check_outputs
from voice_guide.script import load
from voice_guide.script.durations import parse_duration_s
from voice_guide.sound.speech import ClipCache
from voice_guide.sound.speech.pieces import MAX_PIECE_CHARS, speakable_pieces
from voice_guide.sound.wavfile import MAX_CHANNELS, MAX_RATE_HZ, MIN_RATE_HZ, read_wav, read_wav_channels

from .conftest import CliResult, write
from .test_tts import FakeSpeaker

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
@example(pair="--debug")
def test_set_pairs(cli: Cli, pair: str) -> None:
    # Joined with "=", so a value such as "--debug" is the option's value, never a flag of its own.
    _one_line_or_ok(cli("show", "mindful-pause", f"--set={pair}"))


@FUZZ
@given(name=st.text(min_size=1, max_size=12).filter(lambda s: "\x00" not in s))
def test_device_names(cli: Cli, name: str) -> None:
    # A prefix no real device has, so a lucky match never starts a real session. The
    # device is looked up while the first prompt is made; espeak makes it in a few ms
    # where Piper's model load made this test take most of a minute.
    result = cli("run", "mindful-pause", "--no-mic", "--engine", "espeak", "--output-device", f"zz-{name}")
    assert result.code == 2 and result.err.count("\n") == 1, result.err


@FUZZ
@given(spec=st.text(max_size=12).filter(lambda s: "\x00" not in s))
@example(spec="--debug")
def test_mic_channel_specs(cli: Cli, spec: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("mc")
    result = cli(
        "run",
        "mindful-pause",
        f"--mic-channels={spec}",  # as --set=: "--debug" here is a value, not the flag
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
    # A voiced buzz (140 Hz and its harmonics, syllable-modulated): noise alone is not talk.
    t = np.arange(b - a) / rate
    buzz = sum(np.sin(2 * np.pi * k * 140 * t) / k for k in range(1, 12))
    x[a:b] += 0.05 * np.asarray(buzz) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
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


# ---------------------------------------------------------------- lying headers, FIFOs, devices, outputs onto inputs


def _lying_wav(channels: int, rate: int, width: int, data_bytes: int, body: bytes) -> bytes:
    fmt = struct.pack(
        "<HHIIHH", 1, channels, rate, (rate * channels * width) & 0xFFFFFFFF, (channels * width) & 0xFFFF, width * 8
    )
    chunks = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_bytes) + body
    return b"RIFF" + struct.pack("<I", len(chunks) & 0xFFFFFFFF) + chunks


@settings(max_examples=300, deadline=None)
@given(
    channels=st.one_of(st.integers(0, 20), st.integers(0, 65535)),
    rate=st.one_of(st.sampled_from([0, 1, 3999, 8000, 48000, 384_001]), st.integers(0, 2**32 - 1)),
    width=st.integers(0, 8),
    data_bytes=st.one_of(st.integers(0, 4096), st.integers(0, 2**32 - 1)),
    body=st.binary(max_size=4096),
)
def test_a_lying_wav_header_is_refused_or_read_within_the_file(
    channels: int, rate: int, width: int, data_bytes: int, body: bytes
) -> None:
    raw = _lying_wav(channels, rate, width, data_bytes, body)
    try:
        frames, got_rate = read_wav_channels(io.BytesIO(raw))
    except AudioFileError as exc:
        assert "\n" not in exc.one_line()
        return
    # Whatever the header claimed, nothing beyond the bytes really there was allocated.
    assert 1 <= frames.shape[1] <= MAX_CHANNELS and MIN_RATE_HZ <= got_rate <= MAX_RATE_HZ
    assert frames.size * width <= len(body)


def _ends_within(seconds: float, call: Callable[[], object]) -> BaseException | None:
    """Run `call` on a thread; fail if it is still running after `seconds`; return what it raised."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:
            raised.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "it hung"
    return raised[0] if raised else None


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "/dev/urandom", "/dev/null", "folder"])
def test_fifos_and_devices_are_refused_at_once(kind: str, tmp_path: Path) -> None:
    if kind == "fifo":
        path = tmp_path / "pipe.yaml"
        os.mkfifo(path)
    elif kind == "folder":
        path = tmp_path / "folder.yaml"
        path.mkdir()
    else:
        path = Path(kind)
    script_error = _ends_within(30, lambda: load(path))
    assert isinstance(script_error, ScriptError), script_error
    wav_error = _ends_within(30, lambda: read_wav(path))
    assert isinstance(wav_error, AudioFileError), wav_error


@FUZZ
@given(
    option=st.sampled_from(["--out", "--record", "--log", "--cues", "-o"]),
    alias=st.sampled_from(["same", "relative", "dot-dot", "symlink", "hard-link"]),
    target=st.sampled_from(["script", "mic"]),
)
def test_an_output_that_names_an_input_is_refused(
    option: str, alias: str, target: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("alias")
    ext = "json" if option in ("--log", "--cues") else "wav"
    source = folder / f"input.{ext}"  # an input the output option could legally name
    source.write_bytes(b"the user's own file")
    inputs = [source] if target == "mic" else [folder / "my.yaml", source]
    (folder / "sub").mkdir()
    path = {
        "same": source,
        "relative": Path(os.path.relpath(source)),
        "dot-dot": folder / "sub" / ".." / source.name,
        "symlink": folder / f"link.{ext}",
        "hard-link": folder / f"hard.{ext}",
    }[alias]
    if alias == "symlink":
        path.symlink_to(source)
    elif alias == "hard-link":
        os.link(source, path)
    with pytest.raises(UsageError, match="own input"):
        check_outputs([Output(option, path, (ext,))], inputs)
    assert source.read_bytes() == b"the user's own file"


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.sampled_from("ab .,!?;:\n\t"), max_size=3000), limit=st.integers(5, 500))
def test_speech_pieces_are_bounded_and_keep_every_word(text: str, limit: int) -> None:
    pieces = speakable_pieces(text, limit)
    assert all(0 < len(p) <= limit for p in pieces)
    assert "".join("".join(p.split()) for p in pieces) == "".join(text.split())


def test_the_speech_engine_never_gets_a_long_text(tmp_path: Path) -> None:
    speaker = FakeSpeaker()
    # One sentence of 60,000 characters: no full stop to cut at until the very end.
    # Long words keep the fake engine's audio (one tone per word) short.
    text = " ".join(f"and {'lengthy' * 6}{n}" for n in range(1200)) + "."
    clip = ClipCache(tmp_path, speaker, 16_000).get(text)
    assert len(text) > 50_000 and clip.size > 0
    assert max(len(t) for t in speaker.calls) <= MAX_PIECE_CHARS and len(speaker.calls) > 100
    assert " ".join(speaker.calls) == text
