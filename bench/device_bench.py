"""Benchmark the live audio path on the virtual devices: CPU with the microphone on and off, and recovery.

Needs the private PulseAudio that tools/pulse.sh starts (`make bench` does). Run:
python -m bench.device_bench [--minutes 2] [--bare-s 20]. Figures only; nothing here asserts.

- CPU: user+sys of `voice-guide run` over one long listen turn, with the microphone on
  (talk played into the virtual microphone all along) and with --no-mic, in the same run;
  beside it a bare sounddevice duplex stream driven PortAudio's way (callback) and ours
  (blocking mode, paced by our own thread), to show where the cost was.
- Recovery: a session's own PulseAudio killed and started again mid-pause: time from the
  restart to the session's "resumed" line; and with the server hung (SIGSTOP), time from
  Ctrl-C to the end of the process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from voice_guide.sound.wavfile import read_wav, write_wav

RATE = 48_000
REPO = Path(__file__).resolve().parent.parent
PULSE = REPO / "tools" / "pulse.sh"

# PortAudio's way: a duplex callback stream with its own choice of period.
BARE_CALLBACK = """
import sys, time, sounddevice as sd
def cb(i, o, f, t, s): o[:] = 0
with sd.Stream(channels=(1, 1), samplerate=48000, dtype="float32", latency=0.1, callback=cb):
    time.sleep(float(sys.argv[1]))
"""
# Ours: the same stream in blocking mode, moved by a loop that tops the buffer up in 10 ms
# blocks and sleeps 40 ms between wakes (as SoundDeviceIO's pump).
BARE_PACED = """
import sys, time, numpy as np, sounddevice as sd
zeros = np.zeros((48000, 1), np.float32)
with sd.Stream(channels=(1, 1), samplerate=48000, dtype="float32", latency=0.1) as st:
    end = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < end:
        if st.read_available >= 480:
            st.read(st.read_available)
        room = st.write_available // 480 * 480
        if room:
            st.write(zeros[:room])
        time.sleep(0.04)
"""


def _cpu_of(command: list[str], env: dict[str, str], feed: Path | None = None) -> tuple[float, float]:
    """Run `command`; return its user+sys CPU seconds and wall seconds (paplay feeds the mic meanwhile)."""
    feeder = None
    if feed is not None:
        feeder = subprocess.Popen(["paplay", "-d", "vg_mic", str(feed)], env=env)
    started = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    if feeder is not None:
        feeder.terminate()
        feeder.wait()
    if status != 0:
        raise SystemExit(f"{command[:4]} failed with status {status}")
    return usage.ru_utime + usage.ru_stime, wall


def _talk(seconds: float, scratch: Path) -> Path:
    """Write `seconds` of espeak-ng talk with pauses over faint noise, for the virtual microphone."""
    line = scratch / "line.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(line), "I had a long day at work, and I am glad to be home with you now."], check=True
    )
    speech, rate = read_wav(line)
    rng = np.random.default_rng(5)
    out = (0.001 * rng.standard_normal(round(seconds * rate))).astype(np.float32)
    at = 0
    while at + len(speech) < len(out):
        out[at : at + len(speech)] += speech
        at += len(speech) + 2 * rate
    path = scratch / "talk.wav"
    write_wav(path, out, rate)
    return path


def _session_cpu(minutes: float, scratch: Path, env: dict[str, str]) -> dict[str, float]:
    script = scratch / "long-turn.yaml"
    script.write_text(
        f"title: Long turn\nsummary: One listen turn.\nsteps:\n  - chime: start\n"
        f"  - listen: a\n    for: {minutes * 60:.0f}s\n  - chime: end\n",
        encoding="utf-8",
    )
    talk = _talk(minutes * 60 + 20, scratch)
    figures: dict[str, float] = {}
    for label, args, feed in (("mic", ["--headphones"], talk), ("no-mic", ["--no-mic"], None)):
        log = scratch / f"{label}.json"
        command = [sys.executable, "-m", "voice_guide", "run", str(script), *args, "--log", str(log)]
        cpu_s, wall_s = _cpu_of(command, env, feed)
        doc = json.loads(log.read_text())
        figures[f"{label}_pct"] = 100 * cpu_s / wall_s
        figures[f"{label}_wall_s"] = wall_s
        figures[f"{label}_underruns"] = doc["underruns"]
        figures[f"{label}_overruns"] = doc.get("overruns", 0)
    return figures


def _bare_cpu(seconds: float, tries: int, env: dict[str, str]) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {"callback": [], "paced": []}
    for _ in range(tries):
        for label, code in (("callback", BARE_CALLBACK), ("paced", BARE_PACED)):
            cpu_s, wall_s = _cpu_of([sys.executable, "-c", code, str(seconds)], env)
            found[label].append(100 * cpu_s / wall_s)
    return found


def _own_pulse(scratch: Path) -> tuple[dict[str, str], Path]:
    """Start a PulseAudio of the bench's own (it gets killed); return its env and pid file."""
    env = {**os.environ, "VG_PULSE_DIR": str(scratch / "pulse")}
    exports = subprocess.run([str(PULSE), "env"], env=env, capture_output=True, text=True, check=True).stdout
    for item in exports.replace("export ", "").split():
        key, _, value = item.partition("=")
        env[key] = value.strip("'")
    subprocess.run([str(PULSE), "start"], env=env, check=True, capture_output=True)
    return env, scratch / "pulse" / "pid"


def _run_until_pause(env: dict[str, str], script: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "voice_guide", "run", str(script), "--headphones"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "pause" in line:
            break
    time.sleep(1.0)
    return proc


def _recovery(scratch: Path, home_env: dict[str, str]) -> dict[str, float]:
    script = scratch / "slow.yaml"
    script.write_text("title: S\nsummary: S\nsteps:\n  - say: One.\n  - pause: 8s\n  - say: Two.\n", encoding="utf-8")
    env, pid_file = _own_pulse(scratch)
    env = {**env, "VOICE_GUIDE_HOME": home_env["VOICE_GUIDE_HOME"]}
    figures: dict[str, float] = {}
    try:
        proc = _run_until_pause(env, script)
        killed = time.monotonic()
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        pid_file.unlink()
        assert proc.stdout is not None
        noticed = restarted = resumed = None
        for line in proc.stdout:
            if "paused: device lost" in line and noticed is None:
                noticed = time.monotonic()
                time.sleep(max(0.0, killed + 3.0 - noticed))
                subprocess.run([str(PULSE), "start"], env=env, check=True, capture_output=True)
                restarted = time.monotonic()
            if "resumed: the sound device is back" in line:
                resumed = time.monotonic()
        proc.wait(timeout=60)
        if noticed is not None and restarted is not None and resumed is not None:
            figures["noticed_s"] = noticed - killed
            figures["back_after_restart_s"] = resumed - restarted
        figures["exit_code"] = proc.returncode
        # A hung server: calls into it block. Ctrl-C must still end the session at once.
        proc = _run_until_pause(env, script)
        server = int(pid_file.read_text())
        os.kill(server, signal.SIGSTOP)
        time.sleep(4.0)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        figures["ctrl_c_s"] = time.monotonic() - sent
        os.kill(server, signal.SIGCONT)
    finally:
        subprocess.run([str(PULSE), "stop"], env=env, capture_output=True)
    return figures


def main() -> None:
    """Print CPU and recovery figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--bare-s", type=float, default=20.0)
    parser.add_argument("--bare-tries", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="vg-device-bench-"))
    env = {**os.environ, "VOICE_GUIDE_HOME": str(scratch / "home")}
    cpu = _session_cpu(args.minutes, scratch, env)
    print(
        f"live session, one {args.minutes:.0f}-minute listen turn, user+sys per wall second: "
        f"mic on {cpu['mic_pct']:.1f}% of one core (talk played into the mic; "
        f"{cpu['mic_underruns']:.0f} underruns, {cpu['mic_overruns']:.0f} overruns), "
        f"--no-mic {cpu['no-mic_pct']:.1f}% ({cpu['no-mic_underruns']:.0f} underruns), same run"
    )
    bare = _bare_cpu(args.bare_s, args.bare_tries, env)
    print(
        f"bare duplex stream for {args.bare_s:.0f} s, {args.bare_tries} tries: PortAudio callback "
        f"{', '.join(f'{x:.1f}' for x in bare['callback'])}% ; blocking mode paced by our loop "
        f"{', '.join(f'{x:.1f}' for x in bare['paced'])}%"
    )
    recovery = _recovery(scratch, env)
    print(
        f"PulseAudio killed mid-session: noticed after {recovery.get('noticed_s', float('nan')):.1f} s, "
        f"playing again {recovery.get('back_after_restart_s', float('nan')):.1f} s after the restart, "
        f"exit {recovery['exit_code']:.0f}; Ctrl-C with the server hung: ended after {recovery['ctrl_c_s']:.2f} s"
    )


if __name__ == "__main__":
    main()
