"""Benchmark the live player on the virtual devices: time to first sound, cue timing over a long run.

Needs the private PulseAudio that tools/pulse.sh starts (`make bench` does). Run:
python -m bench.live_bench [--minutes N]. Figures only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from voice_guide.sound.align import find_clip
from voice_guide.sound.tones import synth_cue
from voice_guide.sound.wavfile import write_wav

RATE = 48_000
THRESHOLD = 1e-4


def _record(path: Path) -> tuple[subprocess.Popen[bytes], float]:
    """Start recording the output sink; return the recorder and when its first sample was heard."""
    proc = subprocess.Popen(
        [
            "parec",
            "-d",
            "vg_out.monitor",
            "--format=float32le",
            f"--rate={RATE}",
            "--channels=1",
            "--raw",
            "--latency-msec=10",
            str(path),
        ]
    )
    # parec takes a moment to connect; wait until samples arrive and date the first one.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        size = path.stat().st_size if path.exists() else 0
        if size > 0:
            return proc, time.monotonic() - size / 4 / RATE
        time.sleep(0.005)
    raise SystemExit("parec recorded nothing: is the PulseAudio from tools/pulse.sh running?")


def _first_sound_after_paplay_s(
    command: list[str], click: Path, scratch: Path, env: dict[str, str], listen_s: float = 2.5
) -> float:
    """Return how much later `command`'s first sound comes than paplay's, both timed from their launch.

    One recording holds a paplay click and then the command's first sound; the gap
    between them in the recording, less the gap between the two launches, is the
    command's start-up time beyond what paplay (a small C program) needs.
    """
    raw = scratch / "first.raw"
    raw.unlink(missing_ok=True)
    recorder, _ = _record(raw)
    time.sleep(0.3)
    click_at = time.monotonic()
    subprocess.run(["paplay", str(click)], env=env, check=True)
    time.sleep(1.0)
    command_at = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(listen_s)
    proc.terminate()
    proc.wait()
    recorder.terminate()
    recorder.wait()
    audio = np.abs(np.fromfile(raw, dtype="<f4"))
    loud = np.flatnonzero(audio > THRESHOLD)
    click_idx = int(loud[0])
    after_click = loud[loud > click_idx + RATE // 2]
    return float((after_click[0] - click_idx) / RATE - (command_at - click_at))


def _loud_from(audio: np.ndarray) -> int:
    """Return the first sample of the first 10 ms block louder than -40 dBFS."""
    blocks = audio[: len(audio) // 480 * 480].reshape(-1, 480)
    loud = np.flatnonzero(np.sqrt(np.mean(blocks * blocks, axis=1)) > 0.01)
    return int(loud[0] * 480) if loud.size else 0


def _cue_timing(minutes: float, scratch: Path, env: dict[str, str]) -> dict[str, float]:
    rounds = max(1, round(minutes * 60 / 20))
    script = scratch / "long.yaml"
    script.write_text(
        "title: Long\nsummary: Cue timing over a long live run.\nsteps:\n"
        f"  - repeat: {rounds}\n    steps:\n      - chime: start\n      - pause: 7.4s\n"
        "      - chime: swap\n      - pause: 5.8s\n      - chime: end\n      - pause: 2s\n"
    )
    raw, log = scratch / "long.raw", scratch / "long.json"
    recorder, _ = _record(raw)
    time.sleep(0.5)
    proc = subprocess.run(
        [sys.executable, "-m", "voice_guide", "run", str(script), "--no-mic", "--log", str(log)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    time.sleep(0.5)
    recorder.terminate()
    recorder.wait()
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    doc = json.loads(log.read_text())
    audio = np.fromfile(raw, dtype="<f4")
    events = [e for e in doc["events"] if e["kind"] == "chime"]
    clips = {name: synth_cue(name, RATE) for name in {e["name"] for e in events}}
    first = find_clip(audio, clips[events[0]["name"]], _loud_from(audio), RATE // 20)
    errors = []
    for e in events[1:]:
        expected = first + round((e["start_s"] - events[0]["start_s"]) * RATE)
        errors.append(abs(find_clip(audio, clips[e["name"]], expected, RATE // 10) - expected) / RATE * 1000)
    return {
        "cues": len(events),
        "median_ms": float(np.median(errors)),
        "worst_ms": float(np.max(errors)),
        "underruns": doc["underruns"],
        "minutes": doc["duration_s"] / 60,
    }


def main() -> None:
    """Print time to first sound and cue timing figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="vg-live-bench-"))
    env = {**os.environ, "VOICE_GUIDE_HOME": str(scratch / "home")}
    # Warm the cache the way a user's `voice-guide prepare` would.
    subprocess.run(
        [sys.executable, "-m", "voice_guide", "prepare", "timeout-breathing"], env=env, check=True, capture_output=True
    )
    click = scratch / "click.wav"
    write_wav(click, np.r_[np.full(480, 0.3, np.float32), np.zeros(4800, np.float32)], RATE)
    extra = [
        _first_sound_after_paplay_s([sys.executable, "-m", "voice_guide", "timeout", "--no-mic"], click, scratch, env)
        for _ in range(3)
    ]
    print(
        f"time to first sound, `voice-guide timeout` (warm cache): median {np.median(extra) * 1000:.0f} ms "
        f"(worst {np.max(extra) * 1000:.0f} ms) more than paplay playing a click, timed in the same recording"
    )
    timing = _cue_timing(args.minutes, scratch, env)
    print(
        f"live cue onsets over {timing['minutes']:.1f} min ({timing['cues']:.0f} cues) vs LOG.json: "
        f"median error {timing['median_ms']:.2f} ms, worst {timing['worst_ms']:.2f} ms, "
        f"underruns {timing['underruns']:.0f}"
    )


if __name__ == "__main__":
    main()
