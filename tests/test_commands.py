"""The smaller commands: analyze, voices, prepare, devices without a server, custom cues, closing line."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from voice_guide.live.recap import closing_line, recap
from voice_guide.sound.tones import synth_cue
from voice_guide.sound.wavfile import write_wav

from .conftest import CliResult, write

Cli = Callable[..., CliResult]


def test_analyze_finds_the_spoken_stretch(cli: Cli, tmp_path: Path) -> None:
    speech = tmp_path / "s.wav"
    subprocess.run(["espeak-ng", "-w", str(speech), "Tell me how your day was."], check=True)
    from voice_guide.sound.wavfile import read_wav

    samples, rate = read_wav(speech)
    padded = np.concatenate([np.zeros(rate * 2, np.float32), samples, np.zeros(rate * 3, np.float32)])
    write_wav(tmp_path / "p.wav", padded, rate)
    result = cli("analyze", str(tmp_path / "p.wav"), "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert set(report) == {"sample_rate", "duration_s", "speech", "talk_s", "longest_silence_s"}
    assert report["speech"][0]["start_s"] == pytest.approx(2.0, abs=0.15)
    assert report["talk_s"] == pytest.approx(len(samples) / rate, abs=0.4)
    assert report["longest_silence_s"] >= 2.5


def test_analyze_rejects_a_file_that_is_not_audio(cli: Cli, tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.wav", "not audio at all")
    result = cli("analyze", str(bad))
    assert result.code == 2 and "not a readable WAV file" in result.err and result.err.count("\n") == 1


def test_voices_lists_english_ones(cli: Cli) -> None:
    result = cli("voices", "--json")
    assert result.code == 0, result.err
    voices = json.loads(result.out)
    assert any(lang.startswith("en") for v in voices for lang in v["languages"])


def test_prepare_synthesizes_once_then_nothing(cli: Cli) -> None:
    first = cli("prepare", "mindful-pause", "--sample-rate", "22050")
    assert first.code == 0, first.err
    again = cli("prepare", "mindful-pause", "--sample-rate", "22050")
    assert "(0 newly synthesized)" in again.out
    assert cli("prepare").code == 2


def test_unknown_voice_is_one_line(cli: Cli, tmp_path: Path) -> None:
    result = cli("render", "mindful-pause", "-o", str(tmp_path / "x.wav"), "--voice", "no-such-voice-xyz")
    assert result.code != 0 and result.err.count("\n") == 1 and "no-such-voice-xyz" in result.err


def test_a_script_may_bring_its_own_cue_file(cli: Cli, tmp_path: Path) -> None:
    gong = synth_cue("end", 44_100)[:44_100]
    write_wav(tmp_path / "gong.wav", gong, 44_100)
    script = write(tmp_path, "own.yaml", "title: T\nsummary: S\nsteps:\n  - chime: gong.wav\n  - say: Done.\n")
    out, cues = tmp_path / "o.wav", tmp_path / "o.json"
    result = cli("render", str(script), "-o", str(out), "--cues", str(cues))
    assert result.code == 0, result.err
    events = json.loads(cues.read_text())["events"]
    assert events[0]["name"] == "gong.wav"
    assert events[0]["end_s"] == pytest.approx(1.0, abs=0.05)  # resampled to 48 kHz, trimmed at most a little


def test_closing_line_is_kind_and_plain() -> None:
    def turns(ann_s: float, bo_s: float) -> list[_Turn]:
        return [_Turn("Ann", ann_s), _Turn("Bo", bo_s)]

    assert (
        closing_line(recap(turns(118.0, 125.0), "Ann", "Bo")) == "You each spoke for about two minutes. Thank you both."
    )
    assert closing_line(recap(turns(200.0, 40.0), "Ann", "Bo")) == (
        "Ann spoke for about three and a half minutes, and Bo for about forty seconds. Thank you both."
    )
    assert closing_line(recap(turns(0.0, 1.0), "Ann", "Bo")) is None


@dataclass(frozen=True)
class _Turn:
    who: str
    talk_s: float
    longest_silence_s: float = 0.0
    overrun_s: float = 0.0
    interruptions: int = 0
