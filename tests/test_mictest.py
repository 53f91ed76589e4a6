"""The microphone check (mic-test) and the first-run walk-through (setup).

Speech for the tests is made by espeak-ng (GPL-3, Debian) with a little generated noise added."""

from __future__ import annotations

import io
import json
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import CliResult, spawn_cli
from voice_guide.cli import Env, main
from voice_guide.live.mictest import MicCheck
from voice_guide.paths import UserDirs
from voice_guide.sound.clips import resample
from voice_guide.sound.wavfile import read_wav, write_wav

RATE = 48_000
Cli = Callable[..., CliResult]


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three seconds of room, a spoken sentence, three seconds of room (48 kHz WAV)."""
    folder = tmp_path_factory.mktemp("talk")
    raw = folder / "speech.wav"
    sentence = "Hello, this is a test of the microphone. I am talking in my normal voice for a few seconds."
    subprocess.run(["espeak-ng", "-w", str(raw), sentence], check=True, timeout=60)
    samples, rate = read_wav(raw)
    speech = resample(samples, rate, RATE) * np.float32(0.5)
    pad = np.zeros(3 * RATE, np.float32)
    room = np.random.default_rng(0).standard_normal(2 * len(pad) + len(speech)).astype(np.float32) * np.float32(0.003)
    path = folder / "talk.wav"
    write_wav(path, np.concatenate([pad, speech, pad]) + room, RATE)
    return path


def _blocks(signal: np.ndarray) -> list[np.ndarray]:
    block = RATE // 100
    return [signal[i : i + block].astype(np.float32) for i in range(0, len(signal), block)]


def test_check_tells_speech_silence_muted_and_clipping(talk: Path) -> None:
    speech, _ = read_wav(talk)
    rng = np.random.default_rng(1)
    cases = {
        "speech": speech,
        "silence": (0.003 * rng.standard_normal(4 * RATE)).astype(np.float32),
        "muted": np.zeros(4 * RATE, np.float32),
        "clipping": np.clip(3.0 * np.sin(np.arange(4 * RATE) * 0.05), -1, 1).astype(np.float32),
    }
    for expected, signal in cases.items():
        check = MicCheck(RATE)
        for block in _blocks(signal):
            reading = check.push(block)
        report = check.report()
        assert report.verdict == expected, (expected, report)
        assert report.fixes or expected == "speech"
        assert reading.threshold_dbfs < 0 or expected == "clipping"  # a loud tone lifts the floor itself
    check = MicCheck(RATE)
    for block in _blocks(speech):
        check.push(block)
    assert check.report().speech_s > 1.0


def test_the_test_sound_tells_speakers_from_headphones() -> None:
    rng = np.random.default_rng(2)
    room = (0.003 * rng.standard_normal(RATE)).astype(np.float32)
    tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)).astype(np.float32)
    for hears, during_tone in ((True, room + tone), (False, room)):
        check = MicCheck(RATE)
        for block in _blocks(during_tone):
            check.push(block, tone_playing=True)
        for block in _blocks(room):
            check.push(block)
        report = check.report()
        assert report.hears_speaker is hears
        assert any("headphones" in fix for fix in report.fixes)


def test_mic_test_on_a_recording_says_what_it_hears(cli: Cli, talk: Path, tmp_path: Path) -> None:
    heard = cli("mic-test", "--mic-file", str(talk), "--quiet", "--seconds", "9", "--json")
    assert heard.code == 0, heard.err
    doc = json.loads(heard.out)
    assert doc["verdict"] == "speech" and doc["speech_s"] > 1.0
    assert doc["hears_speaker"] is None  # a recording cannot hear the speaker
    muted = tmp_path / "muted.wav"
    write_wav(muted, np.zeros(5 * RATE, np.float32), RATE)
    result = cli("mic-test", "--mic-file", str(muted), "--quiet", "--seconds", "3")
    assert result.code == 1
    assert result.out.startswith("muted: the microphone sends only silence")
    assert "--input-device" in result.out
    assert cli("mic-test", "--mic-file", str(tmp_path / "nope.wav")).code == 2
    assert cli("mic-test", "--seconds", "0").code == 2


def test_setup_asks_checks_and_saves_with_piped_answers(home: Path, talk: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    env = Env(
        stdout=out,
        stderr=err,
        dirs=UserDirs.from_environ({"VOICE_GUIDE_HOME": str(home)}),
        stdin=io.StringIO("Ann\nBen\nyes\n"),
    )
    with pytest.raises(SystemExit) as exited:
        main(["setup", "--mic-file", str(talk), "--seconds", "9"], env)
    assert exited.value.code == 0, err.getvalue()
    saved = tomllib.loads((home / "config.toml").read_text(encoding="utf-8"))
    assert saved == {"a": "Ann", "b": "Ben", "headphones": True}
    assert "speech: I hear speech" in out.getvalue()
    assert "Name of the partner who starts [Partner A]:" in err.getvalue()
    # Run again with nothing typed: every answer keeps what was saved.
    env = Env(stdout=io.StringIO(), stderr=io.StringIO(), dirs=env.dirs, stdin=io.StringIO(""))
    with pytest.raises(SystemExit) as exited:
        main(["setup", "--mic-file", str(talk), "--seconds", "2"], env)
    assert exited.value.code == 0
    assert tomllib.loads((home / "config.toml").read_text(encoding="utf-8")) == saved


def test_setup_refuses_a_bad_answer_with_one_line(home: Path, talk: Path) -> None:
    err = io.StringIO()
    env = Env(
        stdout=io.StringIO(),
        stderr=err,
        dirs=UserDirs.from_environ({"VOICE_GUIDE_HOME": str(home)}),
        stdin=io.StringIO("Ann\nBen\nmaybe\n"),
    )
    with pytest.raises(SystemExit) as exited:
        main(["setup", "--mic-file", str(talk)], env)
    assert exited.value.code == 2
    assert "headphones = 'maybe': expected true or false" in err.getvalue()
    assert not (home / "config.toml").exists()


def test_mic_test_live_hears_the_virtual_microphone(pulse: dict[str, str], home: Path, talk: Path) -> None:
    proc = spawn_cli(["mic-test", "--seconds", "12", "--json"], pulse, home)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "listening for" in line:
            break
    subprocess.run(["paplay", "-d", "vg_mic", str(talk)], env=pulse, check=True, timeout=60)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (out, err)
    doc = json.loads(out)
    assert doc["verdict"] == "speech"
    # The virtual mic is a separate sink: it never hears the speaker, as with headphones.
    assert doc["hears_speaker"] is False


def test_mic_test_live_with_nobody_talking_is_not_speech(pulse: dict[str, str], home: Path) -> None:
    proc = spawn_cli(["mic-test", "--seconds", "2", "--quiet"], pulse, home)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    assert out.split(":")[0] in ("muted", "silence")


def test_a_saved_device_that_is_missing_is_named_as_the_config_key(pulse: dict[str, str], home: Path, cli: Cli) -> None:
    assert cli("config", "set", "input_device", "no-such-mic").code == 0
    proc = spawn_cli(["mic-test", "--quiet", "--seconds", "1"], pulse, home)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "config input_device no-such-mic: no such input device" in err
    assert "config unset input_device" in err
    flagged = spawn_cli(["mic-test", "--quiet", "--seconds", "1", "--input-device", "no-such-either"], pulse, home)
    _, err = flagged.communicate(timeout=120)
    assert flagged.returncode == 2
    assert "--input-device no-such-either: no such input device" in err
