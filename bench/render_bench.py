"""Benchmark rendering: warm-cache render speed, cold synthesis per prompt, time to first sample.

Run: python -m bench.render_bench. Each figure is printed with a baseline measured in
the same run (writing the same length of silence), so machines can be compared by ratio.
"""

from __future__ import annotations

import os
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


def main() -> None:
    """Print the render figures for the README's performance table."""
    scratch = Path(tempfile.mkdtemp(prefix="vg-bench-"))
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


if __name__ == "__main__":
    main()
