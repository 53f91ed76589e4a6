"""Benchmark the voice detector against WebRTC's VAD on the same speech, in the same run.

Run: python -m bench.vad_bench   (webrtcvad comes from `pip install webrtcvad-wheels`;
without it only our own figures are printed).

The speech is the test corpus (espeak-ng lines and the alsa-utils channel names, placed
with pauses between them, labelled from the clean signal; see tests/vad_signals.py) at
48 kHz, clean and with steady pink noise at 20/10/5 dB SNR, plus white and brown
noise at 10 dB, each with three noise seeds. Frame F1 at 10 ms is printed strict and
with the 50 ms collar the tests use. WebRTC's raw frame decisions drop the gaps between words that the labels
count as speech, so it is also scored after the same smoothing our detector applies
(gaps under the hangover filled, runs under the start time dropped): "+h".
CPU is wall time of a single thread per second of audio, best of three.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from tests import vad_signals as vs
from voice_guide.live.vad import ClapDetector, VadConfig, VoiceDetector, detect_speech
from voice_guide.sound.levels import Samples
from voice_guide.sound.wavfile import to_pcm16

RATE = 48000
FRAME = RATE // 100
CONDITIONS: list[tuple[str, float | None, str]] = [
    ("clean", None, "pink"),
    ("20 dB pink", 20, "pink"),
    ("10 dB pink", 10, "pink"),
    ("5 dB pink", 5, "pink"),
    ("10 dB white", 10, "white"),
    ("10 dB brown", 10, "brown"),
]
WEBRTC_MODE = 3  # of 0-3, the one that scores best on this corpus
NOISE_SEEDS = (7, 8, 9)

Frames = npt.NDArray[np.bool_]


def ours(x: Samples, n: int) -> Frames:
    segments = [(s.start_s, s.end_s) for s in detect_speech(x, RATE)]
    return vs.segments_to_frames(segments, n, RATE)


def webrtc(x: Samples, mode: int = WEBRTC_MODE) -> Frames:
    import webrtcvad  # a bench-only dependency, imported only when present

    vad = webrtcvad.Vad(mode)
    pcm = to_pcm16(x)
    step = 2 * FRAME
    return np.array(
        [vad.is_speech(pcm[i : i + step], RATE) for i in range(0, len(pcm) - step + 1, step)], dtype=np.bool_
    )


def smoothed(decisions: Frames) -> Frames:
    """Apply our hangover (fill short gaps) and start time (drop short runs) to raw frame decisions."""
    config = VadConfig()
    bridge = round(config.hangover_s / 0.01)
    least = round(config.start_s / 0.01)
    out = decisions.copy()
    on = np.flatnonzero(out)
    for a, b in zip(on[:-1].tolist(), on[1:].tolist(), strict=True):
        if 1 < b - a <= bridge:
            out[a:b] = True
    edges = np.flatnonzero(np.diff(out.astype(np.int8), prepend=0, append=0)).tolist()
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if b - a < least:
            out[a:b] = False
    return out


def onset_ms(found: Frames, labels: Frames) -> str:
    errors = np.abs(vs.onset_errors_s(found, labels, RATE)) * 1000
    hit = errors[np.isfinite(errors)]
    text = f"{np.median(hit):3.0f}/{np.max(hit):4.0f}" if hit.size else "   -/   -"
    missed = errors.size - hit.size
    return text + (f" ({missed} missed)" if missed else "")


def best_of(runs: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def in_blocks(make: Callable[[], VoiceDetector | ClapDetector], x: Samples, block: int) -> Callable[[], None]:
    def run() -> None:
        detector = make()
        for i in range(0, x.size, block):
            detector.push(x[i : i + block])

    return run


def webrtc_blocks(x: Samples) -> Callable[[], None]:
    import webrtcvad

    def run() -> None:
        vad = webrtcvad.Vad(WEBRTC_MODE)
        for i in range(0, x.size - FRAME + 1, FRAME):
            vad.is_speech(to_pcm16(x[i : i + FRAME]), RATE)  # float to 16-bit, as a live caller must

    return run


def main() -> None:
    """Print frame F1, onset error and CPU for our detector and WebRTC's on the same audio."""
    try:
        import webrtcvad  # noqa: F401

        have_webrtc = True
    except ImportError:
        have_webrtc = False
    corpus = vs.speech_corpus(RATE)
    labels = corpus.labels()
    seconds = corpus.samples.size / RATE
    print(
        f"speech corpus: {len(vs.ESPEAK_LINES)} espeak-ng lines + {len(vs.ALSA_SPEECH)} alsa names, "
        f"{seconds:.0f} s at {RATE} Hz, {labels.mean():.0%} of frames speech"
    )
    print(
        f"frame F1 at 10 ms, mean (lowest) over noise seeds {NOISE_SEEDS}; onset error ms median/max on "
        f"seed {NOISE_SEEDS[0]}"
    )
    head = f"{'condition':<12} {'ours':>13} {'ours collar':>13} {'onset':>9}"
    if have_webrtc:
        head += f" | {'webrtc raw':>10} {'webrtc +h':>13} {'+h collar':>9} {'onset':>9}"
    print(head)
    print("-" * len(head))
    for name, snr, kind in CONDITIONS:
        rows: dict[str, list[float]] = {k: [] for k in ("ours", "ours_c", "raw", "h", "h_c")}
        onsets = ["", ""]
        for seed in NOISE_SEEDS:
            x = corpus.with_noise(snr, seed=seed, kind=kind)
            mine = ours(x, labels.size)
            rows["ours"].append(vs.frame_f1(mine, labels))
            rows["ours_c"].append(vs.frame_f1(mine, labels, vs.COLLAR_S))
            if seed == NOISE_SEEDS[0]:
                onsets[0] = onset_ms(mine, labels)
            if have_webrtc:
                raw = webrtc(x)
                theirs = smoothed(raw)
                rows["raw"].append(vs.frame_f1(raw, labels))
                rows["h"].append(vs.frame_f1(theirs, labels))
                rows["h_c"].append(vs.frame_f1(theirs, labels, vs.COLLAR_S))
                if seed == NOISE_SEEDS[0]:
                    onsets[1] = onset_ms(theirs, labels)

        def spread(values: list[float]) -> str:
            return f"{np.mean(values):.3f} ({min(values):.3f})"

        row = f"{name:<12} {spread(rows['ours']):>13} {spread(rows['ours_c']):>13} {onsets[0]:>9}"
        if have_webrtc:
            row += f" | {np.mean(rows['raw']):10.3f} {spread(rows['h']):>13} {np.mean(rows['h_c']):9.3f} {onsets[1]:>9}"
        print(row)

    x = corpus.with_noise(10)
    print(f"\nCPU, ms per second of audio (10 dB pink, {seconds:.0f} s, best of 3):")
    figures = [
        ("ours, 10 ms blocks (as the session feeds it)", in_blocks(lambda: VoiceDetector(RATE), x, FRAME)),
        ("ours, 1024-sample blocks", in_blocks(lambda: VoiceDetector(RATE), x, 1024)),
        ("ours, whole file (analyze)", in_blocks(lambda: VoiceDetector(RATE), x, x.size)),
        ("clap detector, 10 ms blocks", in_blocks(lambda: ClapDetector(RATE), x, FRAME)),
    ]
    if have_webrtc:
        figures.append(("webrtcvad, 10 ms frames incl. 16-bit conversion", webrtc_blocks(x)))
    cost = {label: best_of(3, fn) / seconds * 1000 for label, fn in figures}
    for label, ms in cost.items():
        print(f"  {label:<50} {ms:6.3f}")
    if have_webrtc:
        base = cost["webrtcvad, 10 ms frames incl. 16-bit conversion"]
        print(f"  ratio ours / webrtcvad at 10 ms blocks: {cost[figures[0][0]] / base:.2f}")
    else:
        print("  (webrtcvad not installed: pip install webrtcvad-wheels for the baseline)")


if __name__ == "__main__":
    main()
