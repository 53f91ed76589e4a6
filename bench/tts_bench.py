"""Benchmark speech: real-time factor, pace and loudness per engine, cold `prepare --all`, first sound.

Run: python -m bench.tts_bench [--first-sound] (the first-sound figures need the PulseAudio that
`make bench` starts and are skipped without it). Both engines speak the same prompts
in the same run, so their figures compare by ratio; nothing here asserts a time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import voice_guide
from bench.live_bench import _first_sound_after_paplay_s
from voice_guide.paths import UserDirs, builtin_scripts_dir
from voice_guide.script import Names, expand
from voice_guide.script import load as load_script
from voice_guide.script.library import Library
from voice_guide.sound.levels import loudness_lufs
from voice_guide.sound.speech import ClipCache, SpeechSettings, make_speaker
from voice_guide.sound.timeline import spoken_texts
from voice_guide.sound.wavfile import read_wav, write_wav

RATE = 48_000
ENGINES = ("piper", "espeak")
FIRST_SOUND_RUNS = 5
QUIET_CUES = ("remind", "soft")


def _library_prompts() -> list[str]:
    lib = Library(builtin_scripts_dir(), Path("/nonexistent"))
    steps = [s for path in lib.ids().values() for s in expand(load_script(path), Names(a="Ann", b="Ben"))]
    return spoken_texts(steps)


def _synthesis(engine: str, texts: list[str], scratch: Path) -> dict[str, float]:
    """Make every prompt from an empty cache; return load time, RTF, wpm and level spread."""
    dirs = UserDirs(scratch / engine / "scripts", scratch / engine / "cache", scratch / engine / "data")
    speaker = make_speaker(SpeechSettings(engine=engine), dirs)
    cache = ClipCache(dirs.cache / "speech", speaker, RATE)
    t0 = time.perf_counter()
    speaker.synthesize("Hello.")  # loads the model (Piper) or starts the engine (espeak-ng)
    load_s = time.perf_counter() - t0
    spent, heard, words, levels = 0.0, 0.0, 0, []
    for text in texts:
        t0 = time.perf_counter()
        clip = cache.get(text)
        spent += time.perf_counter() - t0
        heard += len(clip) / RATE
        words += len(text.split())
        levels.append(loudness_lufs(clip, RATE))
    return {
        "load_s": load_s,
        "rtf": heard / spent,
        "wpm": words / heard * 60,
        "audio_min": heard / 60,
        "level_dbfs": float(np.median(levels)),
        "level_spread_db": float(np.ptp(levels)),
    }


def _render_levels(engine: str, scratch: Path, env: dict[str, str]) -> tuple[float, float]:
    """Render timeout-breathing; return the median loudness of its prompts and of its full-level chimes (LUFS)."""
    out, cues = scratch / f"{engine}.wav", scratch / f"{engine}.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "voice_guide",
            "render",
            "timeout-breathing",
            "-o",
            str(out),
            "--cues",
            str(cues),
            "--engine",
            engine,
            "--set",
            "answer=30s",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    audio, rate = read_wav(out)
    levels: dict[str, list[float]] = {"say": [], "chime": []}
    for event in json.loads(cues.read_text())["events"]:
        # remind and soft are quieter on purpose (tones.QUIET_CUE_OFFSET_DB): leave them out.
        if event["kind"] in levels and event.get("name") not in QUIET_CUES:
            part = audio[round(event["start_s"] * rate) : round(event["end_s"] * rate)]
            levels[event["kind"]].append(loudness_lufs(part, rate))
    return float(np.median(levels["say"])), float(np.median(levels["chime"]))


def _prepare_all_s(engine: str, scratch: Path) -> float:
    home = scratch / f"prepare-{engine}"
    env = {**os.environ, "VOICE_GUIDE_HOME": str(home)}
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "voice_guide", "prepare", "--all", "--engine", engine],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def _first_sound(scratch: Path) -> dict[str, float]:
    """Time `voice-guide timeout` to its first sound, cold (empty cache) and warm, against paplay."""
    # An installed package has its bytecode compiled; a checkout run with
    # PYTHONDONTWRITEBYTECODE would compile every module on every launch (about 90 ms here).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(voice_guide.__file__).parent)], check=True)
    click = scratch / "click.wav"
    write_wav(click, np.r_[np.full(480, 0.3, np.float32), np.zeros(4800, np.float32)], RATE)
    command = [sys.executable, "-m", "voice_guide", "timeout", "--no-mic"]
    cold, warm = [], []
    for attempt in range(FIRST_SOUND_RUNS):
        home = scratch / f"first-{attempt}"
        env = {**os.environ, "VOICE_GUIDE_HOME": str(home)}
        cold.append(_first_sound_after_paplay_s(command, click, scratch, env, listen_s=6.0))
        subprocess.run(
            [sys.executable, "-m", "voice_guide", "prepare", "timeout-breathing"],
            env=env,
            check=True,
            capture_output=True,
        )
        warm.append(_first_sound_after_paplay_s(command, click, scratch, env, listen_s=3.0))
        shutil.rmtree(home, ignore_errors=True)
    return {
        "cold_ms": float(np.median(cold)) * 1000,
        "cold_worst_ms": max(cold) * 1000,
        "warm_ms": float(np.median(warm)) * 1000,
        "warm_worst_ms": max(warm) * 1000,
    }


def main() -> None:
    """Print the speech figures for the README's performance table (--first-sound: only time to first sound)."""
    scratch = Path(tempfile.mkdtemp(prefix="vg-tts-bench-"))
    if "--first-sound" in sys.argv[1:]:
        _print_first_sound(scratch)
        return
    env = {**os.environ, "VOICE_GUIDE_HOME": str(scratch / "home")}
    texts = _library_prompts()
    sample = [t for t in texts if len(t.split()) >= 6][::4]
    for engine in ENGINES:
        f = _synthesis(engine, sample, scratch)
        print(
            f"{engine:<6} {len(sample)} library prompts ({f['audio_min']:.1f} min of speech): "
            f"{f['rtf']:.0f}x real time, {f['wpm']:.0f} words/min at the default rate, "
            f"first prompt after {f['load_s'] * 1000:.0f} ms (load), "
            f"clip loudness {f['level_dbfs']:.1f} LUFS (spread {f['level_spread_db']:.1f} LU)",
            flush=True,
        )
    for engine in ENGINES:
        say_lufs, chime_lufs = _render_levels(engine, scratch, env)
        print(
            f"{engine:<6} render of timeout-breathing: prompts {say_lufs:.1f} LUFS, full-level chimes "
            f"{chime_lufs:.1f} LUFS (median)",
            flush=True,
        )
    for engine in ENGINES:
        print(
            f"{engine:<6} cold `prepare --all` ({len(texts)} prompts): {_prepare_all_s(engine, scratch):.1f} s",
            flush=True,
        )
    _print_first_sound(scratch)


def _print_first_sound(scratch: Path) -> None:
    if shutil.which("parec") and os.environ.get("PULSE_SERVER"):
        first = _first_sound(scratch)
        print(
            f"time to first sound, `voice-guide timeout` beyond paplay's: empty cache {first['cold_ms']:.0f} ms "
            f"(worst {first['cold_worst_ms']:.0f}), warm {first['warm_ms']:.0f} ms "
            f"(worst {first['warm_worst_ms']:.0f}), median of {FIRST_SOUND_RUNS}, same recording as the click"
        )
    else:
        print("time to first sound: skipped (no PulseAudio from tools/pulse.sh)")


if __name__ == "__main__":
    main()
