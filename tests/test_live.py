"""Live runs on real sound devices: PulseAudio null sinks stand in for speakers and a microphone.

vg_out is the default output: recording its monitor hears what the guide played.
vg_mic is a virtual microphone: whatever a test plays into it, the guide hears.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from bench import corpus as sc
from voice_guide.live.vad import analyze, detect_speech
from voice_guide.sound.align import find_clip
from voice_guide.sound.render import SessionClips
from voice_guide.sound.speech import ClipCache
from voice_guide.sound.wavfile import read_wav

from .conftest import default_speaker, record_monitor, spawn_cli, write

RATE = 48_000
CUES_ONLY = """\
title: Cue timing
summary: Chimes and breaths with known gaps, for the live timing test.
steps:
  - chime: start
  - pause: 0.7s
  - chime: swap
  - breathe: {in: 1s, hold: 0.5s, out: 1s, count: 2, counting: tones}
  - chime: time-up
  - pause: 0.4s
  - chime: end
"""
ONE_TURN = """\
title: One turn
summary: A single listen turn that ends on silence.
steps:
  - chime: start
  - listen: a
    for: 30s
    until_silence: 2s
  - chime: end
"""


def test_live_cue_onsets_match_the_log(pulse: dict[str, str], tmp_path: Path, home: Path) -> None:
    script = write(tmp_path, "cues.yaml", CUES_ONLY)
    log = tmp_path / "log.json"
    raw = tmp_path / "rec.raw"
    recorder = record_monitor(pulse, raw, "vg_out.monitor")
    proc = spawn_cli(["run", str(script), "--no-mic", "--log", str(log)], pulse, home)
    _, err = proc.communicate(timeout=120)
    time.sleep(0.5)
    recorder.terminate()
    recorder.wait(timeout=10)
    assert proc.returncode == 0, err
    doc = json.loads(log.read_text())
    assert doc["underruns"] == 0
    audio = np.fromfile(raw, dtype="<f4")
    bank = SessionClips(ClipCache(home / "cache" / "speech", default_speaker(home), RATE), RATE)
    # The breath-hold tone is a faint steady hum with no onset to speak of; the others are clear.
    events = [e for e in doc["events"] if e["kind"] == "chime" or e.get("name") in ("breath-in", "breath-out")]
    clips = [
        bank.cue(e["name"])
        if e["kind"] == "chime"
        else bank.breath(e["name"].removeprefix("breath-"), round((e["end_s"] - e["start_s"]) * RATE))
        for e in events
    ]
    # The first sound in the recording is the first cue; it anchors the rest.
    rough = int(np.argmax(np.abs(audio) > 1e-4))
    first = find_clip(audio, clips[0], rough, RATE // 20)
    onsets = [first] + [
        find_clip(audio, clip, first + round((e["start_s"] - events[0]["start_s"]) * RATE), RATE // 4)
        for e, clip in zip(events[1:], clips[1:], strict=True)
    ]
    heard = np.diff(onsets) / RATE
    logged = np.diff([e["start_s"] for e in events])
    assert len(heard) >= 6
    assert np.max(np.abs(heard - logged)) < 0.010, list(zip(heard, logged, strict=True))


def test_live_turn_ends_on_the_virtual_microphone(pulse: dict[str, str], tmp_path: Path, home: Path) -> None:
    speech = tmp_path / "speech.wav"
    subprocess.run(
        [
            "espeak-ng",
            "-w",
            str(speech),
            "I had a long day at work and I am glad to be home now. Thank you for asking me about it.",
        ],
        check=True,
    )
    samples, rate = read_wav(speech)
    talk = analyze(samples, rate)
    spoken_s = talk.speech[-1].end_s - talk.speech[0].start_s
    script = write(tmp_path, "turn.yaml", ONE_TURN)
    log = tmp_path / "log.json"
    proc = spawn_cli(["run", str(script), "--headphones", "--log", str(log)], pulse, home)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "listen" in line:
            break
    time.sleep(1.0)
    subprocess.run(["paplay", "-d", "vg_mic", str(speech)], env=pulse, check=True, timeout=60)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    doc = json.loads(log.read_text())
    turn = next(e for e in doc["events"] if e["kind"] == "listen")
    assert turn["ended_by"] == "silence", turn
    assert turn["first_speech_s"] is not None
    expected_end = turn["start_s"] + turn["first_speech_s"] + spoken_s + 2.0
    assert turn["end_s"] == pytest.approx(expected_end, abs=0.3), (turn, spoken_s)


def test_devices_lists_the_virtual_devices(pulse: dict[str, str], home: Path) -> None:
    proc = spawn_cli(["devices", "--json"], pulse, home)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    found = json.loads(out)
    assert any(d["outputs"] > 0 and d["is_default_output"] for d in found)
    assert any(d["inputs"] > 0 and d["is_default_input"] for d in found)
    bad = spawn_cli(["run", "mindful-pause", "--output-device", "no-such-speaker"], pulse, home)
    _, err = bad.communicate(timeout=60)
    assert bad.returncode == 2 and "no such output device" in err and err.count("\n") == 1
    assert os.environ.get("PULSE_SERVER")


PAUSE_TURN = """\
title: Pause turn
summary: A listen turn paused and resumed by double claps between two answers.
steps:
  - chime: start
  - listen: a
    for: 60s
    until_silence: 3s
  - chime: end
"""


@pytest.mark.skipif(
    bool(set(sc.missing_packages()) & set(sc.SMALL_PACKAGES)), reason="the corpus's Debian packages are not installed"
)
def test_live_pause_by_double_clap_is_left_out_of_the_turn(pulse: dict[str, str], tmp_path: Path, home: Path) -> None:
    from tests.vad_signals import claps_at
    from voice_guide.sound.wavfile import write_wav

    rate = 48000
    answer = sc.prompt("en", "agent-alreadyon", rate).samples
    quiet = np.zeros(rate, np.float32)
    claps = claps_at([0.0, 0.35, 3.5, 3.85], 4.3, rate, noise_dbfs=None)
    mic = np.concatenate((answer, quiet, claps, quiet, answer, quiet))
    played = tmp_path / "mic.wav"
    write_wav(played, mic, rate)
    # What the detector makes of the answer alone, offline: the claps and the pause add nothing to it.
    talked_s = 2 * sum(s.duration_s for s in detect_speech(answer, rate))
    script = write(tmp_path, "pause.yaml", PAUSE_TURN)
    log = tmp_path / "log.json"
    proc = spawn_cli(["run", str(script), "--headphones", "--log", str(log)], pulse, home)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "listen" in line:
            break
    time.sleep(1.0)
    subprocess.run(["paplay", "-d", "vg_mic", str(played)], env=pulse, check=True, timeout=60)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    turn = next(e for e in json.loads(log.read_text())["events"] if e["kind"] == "listen")
    # Paused from the first clap to the resume (about 4 s), and that time is neither talk nor silence:
    # the quiet around the claps (about 2 s) stays under until_silence, so the turn waits for the second answer.
    assert turn["ended_by"] == "silence", turn
    assert 3.5 <= turn["paused_s"] <= 4.6, turn
    # Claps or the pause taken for talk would add seconds. The live capture can lose a little of the
    # answers on this two-core machine (0.2-0.6 s short in 6 of 13 runs, clean-clone and by hand: 9.99-10.25 s
    # against 10.62), so the lower bound is looser; tests/test_faults.py checks the same to 10 ms offline.
    assert talked_s - 0.8 <= turn["talk_s"] <= talked_s + 0.3, (turn, talked_s)
    assert turn["longest_silence_s"] == pytest.approx(3.0, abs=0.05), turn
    # Its end: the answers (as heard, or as offline), the 2 s between them, the pause, then until_silence.
    before_s = turn["start_s"] + turn["first_speech_s"] + 2.0 + turn["paused_s"] + 3.0
    assert before_s + turn["talk_s"] - 0.4 <= turn["end_s"] <= before_s + talked_s + 0.4, turn
