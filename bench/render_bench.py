"""Benchmark rendering: warm-cache render speed, cold synthesis per prompt, time to first sample, cold render.

Run: python -m bench.render_bench [--cold-only]. Each figure is printed with a baseline
measured in the same run (writing the same length of silence; for the cold render, making
its prompts alone and encoding from a warm cache alone), so machines compare by ratio.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from voice_guide.paths import UserDirs
from voice_guide.script import expand
from voice_guide.script.library import Library
from voice_guide.sound.encode import write_audio
from voice_guide.sound.render import blocks, build
from voice_guide.sound.speech import ClipCache, Pyttsx3Speaker
from voice_guide.sound.timeline import DEFAULT_RATE_HZ


def _best_of(runs: int, fn: object) -> float:
    assert callable(fn)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


COLD_SCRIPT = "timeout-breathing"
COLD_RUNS = 3


def _cli_s(args: list[str], home: Path) -> float:
    """Return the wall time of one `voice-guide` command run as its own process in `home`."""
    env = {**os.environ, "VOICE_GUIDE_HOME": str(home)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "voice_guide", *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def cold_render(scratch: Path, out_name: str = "cold.ogg") -> dict[str, float]:
    """Time a cold render (empty cache, default engine) against making its prompts alone and encoding alone."""
    cold, synth, encode = [], [], []
    for run in range(COLD_RUNS):
        out = scratch / out_name
        cold.append(_cli_s(["render", COLD_SCRIPT, "-o", str(out)], scratch / f"cold-{run}"))
        warm_home = scratch / f"warm-{run}"
        synth.append(_cli_s(["prepare", COLD_SCRIPT], warm_home))
        encode.append(_cli_s(["render", COLD_SCRIPT, "-o", str(out)], warm_home))
    return {"cold_s": sorted(cold)[1], "synth_s": sorted(synth)[1], "encode_s": sorted(encode)[1]}


def _print_cold(scratch: Path) -> None:
    figures = cold_render(scratch)
    print(
        f"cold render of {COLD_SCRIPT} to OGG (default engine, empty cache, median of {COLD_RUNS}): "
        f"{figures['cold_s']:.1f} s; making its prompts alone (prepare) {figures['synth_s']:.1f} s, "
        f"rendering from the warm cache alone {figures['encode_s']:.1f} s (sum "
        f"{figures['synth_s'] + figures['encode_s']:.1f} s), each as its own process"
    )


def main() -> None:
    """Print the render figures for the README's performance table."""
    scratch = Path(tempfile.mkdtemp(prefix="vg-bench-"))
    if "--cold-only" in sys.argv[1:]:
        _print_cold(scratch)
        return
    os.environ["VOICE_GUIDE_HOME"] = str(scratch)
    library = Library.default(UserDirs.from_environ())
    rate = DEFAULT_RATE_HZ
    cache = ClipCache(scratch / "cache", Pyttsx3Speaker(), rate)

    plans = {sid: expand(library.load(sid)) for sid in library.ids()}
    # Cold synthesis: every prompt of one script, from an empty cache.
    steps = plans["active-listening-relay"]
    t0 = time.perf_counter()
    build(steps, cache)
    cold_s = time.perf_counter() - t0
    prompts = cache.synth_calls

    # Warm render of the longest script to WAV.
    timelines = {sid: build(s, cache) for sid, s in plans.items()}
    longest = max(timelines, key=lambda sid: timelines[sid].length_frames)
    timeline = build(plans[longest], cache)
    minutes = timeline.length_frames / rate / 60
    out = scratch / "longest.wav"
    render_s = _best_of(3, lambda: write_audio(out, blocks(build(plans[longest], cache)), rate))
    silence = np.zeros(rate, np.float32)
    n_blocks = -(-timeline.length_frames // rate)
    baseline_s = _best_of(3, lambda: write_audio(scratch / "silence.wav", (silence for _ in range(n_blocks)), rate))

    # Time from the start of a render to its first sample on disk (warm cache).
    first: list[float] = []
    for _ in range(5):
        t0 = time.perf_counter()
        tl = build(plans["timeout-breathing"], cache)
        next(blocks(tl))
        first.append(time.perf_counter() - t0)

    print(f"cold synthesis: {prompts} prompts in {cold_s:.2f} s = {cold_s / prompts * 1000:.0f} ms per prompt")
    print(
        f"warm render of {longest} ({minutes:.1f} min) to WAV: {render_s:.3f} s = "
        f"{render_s / minutes:.4f} s per session minute (target 0.05); "
        f"{render_s / baseline_s:.1f}x writing the same length of silence ({baseline_s:.3f} s)"
    )
    print(f"render start to first sample (warm, timeout-breathing): median {sorted(first)[2] * 1000:.0f} ms")
    _print_cold(scratch)


if __name__ == "__main__":
    main()
