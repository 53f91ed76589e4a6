"""Benchmark apart mode: how closely host and joiner sound the same cues over a long session.

Both devices play on loopback into the two channels of one stereo null sink, so a single
recording holds both on one clock. Needs the PulseAudio of tools/pulse.sh (`make bench`).
Before that, the link alone on loopback: how long pairing (SPAKE2 and key confirmation)
and a resume take against a plain WebSocket connection with one round trip, and what
sealing a message costs against only encoding it.
Run: python -m bench.apart_bench [--minutes N] [--link-only]. Figures only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import launch
from voice_guide.sound.align import find_clip
from voice_guide.sound.tones import synth_cue

RATE = 48_000


def _pactl(*args: str) -> str:
    return subprocess.run(["pactl", *args], check=True, capture_output=True, text=True).stdout.strip()


def _link_figures(rounds: int = 15) -> None:
    """Print pairing and resume times and the cost of sealing, each with its baseline from this run."""
    import asyncio
    import os

    from websockets.asyncio.client import connect

    from voice_guide.apart.link import Host, Joiner, encode_message, make_code
    from voice_guide.apart.link.channel import Opener, Sealer

    async def measure() -> tuple[list[float], list[float], list[float]]:
        plain_s, pair_s, resume_s = [], [], []
        for _ in range(rounds):
            code = make_code()
            async with Host(code, setup={"script": "x" * 4000}) as host:
                started = time.perf_counter()
                async with connect(host.url, proxy=None, compression=None) as ws:
                    await ws.ping()
                    plain_s.append(time.perf_counter() - started)
                joiner = Joiner(host.url, code)
                started = time.perf_counter()
                wire = await joiner._open()  # pair: SPAKE2, both proofs, the sealed hello
                pair_s.append(time.perf_counter() - started)
                await wire.ws.close()
                started = time.perf_counter()
                wire = await joiner._open()  # resume: a challenge and both proofs
                resume_s.append(time.perf_counter() - started)
                await wire.ws.close()
        return plain_s, pair_s, resume_s

    logging.getLogger("voice_guide.apart").setLevel(logging.ERROR)  # each round drops its link on purpose
    plain_s, pair_s, resume_s = asyncio.run(measure())
    plain_ms, pair_ms, resume_ms = (1000 * float(np.median(s)) for s in (plain_s, pair_s, resume_s))
    print(
        f"link pairing on loopback: median {pair_ms:.1f} ms, resume {resume_ms:.1f} ms "
        f"(a plain WebSocket connect and ping: {plain_ms:.1f} ms; x{np.median(pair_s) / np.median(plain_s):.1f} "
        f"and x{np.median(resume_s) / np.median(plain_s):.1f}; {rounds} rounds)"
    )
    key, count = os.urandom(32), 20_000
    started = time.perf_counter()
    for n in range(count):
        encode_message("step", index=n, at_host_s=1234.5 + n)
    encode_s = (time.perf_counter() - started) / count
    sealer, opener = Sealer(key), Opener(key)
    started = time.perf_counter()
    for n in range(count):
        opener.open(sealer.seal(encode_message("step", index=n, at_host_s=1234.5 + n)))
    sealed_s = (time.perf_counter() - started) / count
    print(
        f"link message: encode {encode_s * 1e6:.1f} us, encode+seal+open {sealed_s * 1e6:.1f} us "
        f"(x{sealed_s / encode_s:.1f}; a step is sent at most a few times a second)"
    )


def main() -> None:
    """Print the link's own figures, then the median and worst cue alignment between host and joiner."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--link-only", action="store_true")
    args = parser.parse_args()
    _link_figures()
    if args.link_only:
        return
    scratch = Path(tempfile.mkdtemp(prefix="vg-apart-bench-"))
    modules = [_pactl("load-module", *module) for module in launch.PAIR_SINK_MODULES]
    try:
        rounds = max(1, round(args.minutes * 60 / 15))
        script = scratch / "long.yaml"
        script.write_text(
            "title: Long apart\nsummary: Cue alignment between two devices.\nsteps:\n"
            f"  - repeat: {rounds}\n    steps:\n      - chime: start\n      - pause: 5s\n"
            "      - chime: swap\n      - pause: 4.5s\n"
        )
        base = {**os.environ, "VOICE_GUIDE_HOME": str(scratch / "home")}
        raw = scratch / "pair.raw"
        recorder = subprocess.Popen(
            [
                "parec",
                "-d",
                "vg_pair.monitor",
                "--format=float32le",
                f"--rate={RATE}",
                "--channels=2",
                "--raw",
                "--latency-msec=20",
                str(raw),
            ]
        )
        time.sleep(1.0)
        log = scratch / "host.json"
        host = launch.spawn_cli(
            ["host", str(script), "--port", "0", "--no-mic", "--log", str(log)], {**base, "PULSE_SINK": "vg_host_out"}
        )
        shown = launch.read_address(host)
        if shown is None:
            raise SystemExit("the host printed no address")
        address, code = shown
        joiner = launch.spawn_cli(["join", address, "--code", code, "--no-mic"], {**base, "PULSE_SINK": "vg_join_out"})
        for proc in (host, joiner):
            _, err = proc.communicate(timeout=args.minutes * 60 + 300)
            if proc.returncode != 0:
                raise SystemExit(err)
        time.sleep(0.3)
        recorder.terminate()
        recorder.wait()
    finally:
        for module in reversed(modules):
            subprocess.run(["pactl", "unload-module", module], check=False)
    events = [e for e in json.loads(log.read_text())["events"] if e["kind"] == "chime"]
    audio = np.fromfile(raw, dtype="<f4").reshape(-1, 2)
    clips = {name: synth_cue(name, RATE) for name in {e["name"] for e in events}}
    onsets = []
    for channel in (audio[:, 0], audio[:, 1]):
        first = find_clip(channel, clips[events[0]["name"]], int(np.argmax(np.abs(channel) > 1e-4)), RATE // 20)
        onsets.append(
            np.array(
                [first]
                + [
                    find_clip(
                        channel,
                        clips[e["name"]],
                        first + round((e["start_s"] - events[0]["start_s"]) * RATE),
                        RATE // 4,
                    )
                    for e in events[1:]
                ]
            )
        )
    apart_ms = np.abs(onsets[1] - onsets[0]) / RATE * 1000
    print(
        f"apart cue alignment over {events[-1]['start_s'] / 60:.1f} min ({len(events)} cues, loopback): "
        f"median {np.median(apart_ms):.1f} ms, worst {np.max(apart_ms):.1f} ms (target 20 ms)"
    )


if __name__ == "__main__":
    main()
