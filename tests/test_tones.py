"""Tests for voice_guide.sound.tones: levels, clicks, distinctness, exact breath lengths, shipped assets."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voice_guide.sound import assets, tones
from voice_guide.sound.levels import PEAK_LIMIT_DBFS, TARGET_RMS_DBFS, peak_dbfs
from voice_guide.sound.wavfile import read_wav, wav_bytes

RATE_HZ = 48000
ASSETS = Path(__file__).resolve().parent.parent / "audio_assets"
Floats = npt.NDArray[np.float64]

# What each cue promises a listener with closed eyes: number of strikes and pitch direction.
DESIGN = {
    "start": (3, "up"),
    "swap": (2, "down"),
    "time-up": (3, "same"),
    "remind": (1, "same"),
    "end": (3, "down"),
    "soft": (1, "same"),
    "pause": (2, "down"),
    "resume": (2, "up"),
}
QUIET = {"remind", "soft"}


@pytest.fixture(scope="module")
def cues() -> dict[str, npt.NDArray[np.float32]]:
    return {name: tones.synth_cue(name, RATE_HZ) for name in tones.CUE_NAMES}


# ---- measuring helpers (independent of the module's own) ---------------------------------


def sounding_rms_dbfs(x: npt.ArrayLike, rate_hz: int, range_db: float = 40.0) -> float:
    """RMS in dBFS over the 10 ms blocks within `range_db` of the loudest block."""
    a = np.asarray(x, dtype=np.float64)
    block = rate_hz // 100
    power = (a[: a.size // block * block].reshape(-1, block) ** 2).mean(axis=1)
    keep = power >= power.max() * 10 ** (-range_db / 10)
    return 10 * math.log10(power[keep].mean())


def _mel(f_hz: Floats | float) -> Floats:
    return np.asarray(2595.0 * np.log10(1.0 + np.asarray(f_hz) / 700.0))


def _mel_bank(rate_hz: int, n_fft: int, n_bands: int = 40, lo_hz: float = 80.0, hi_hz: float = 7500.0) -> Floats:
    edges_hz = 700.0 * (10 ** (np.linspace(_mel(lo_hz), _mel(hi_hz), n_bands + 2) / 2595.0) - 1.0)
    f_hz = np.fft.rfftfreq(n_fft, 1.0 / rate_hz)
    bank = np.zeros((n_bands, f_hz.size))
    for i in range(n_bands):
        lo, mid, hi = edges_hz[i : i + 3]
        bank[i] = np.clip(np.minimum((f_hz - lo) / (mid - lo), (hi - f_hz) / (hi - mid)), 0.0, None)
    return bank


def log_mel_spectrogram(x: npt.ArrayLike, rate_hz: int, total_s: float = 3.2, range_db: float = 60.0) -> Floats:
    """Log-mel spectrogram (40 ms Hann, 10 ms hop, 40 bands 80 Hz-7.5 kHz), dB above peak-60 dB.

    Frames are counted from the start of the sound and padded to `total_s`, so the matrix
    encodes register, timbre, when each strike comes, their order and the length of the ring.
    """
    n_fft, hop = round(0.04 * rate_hz), round(0.01 * rate_hz)
    a = np.zeros(round(total_s * rate_hz) + n_fft)
    a[: len(np.asarray(x))] = x
    frames = np.lib.stride_tricks.sliding_window_view(a, n_fft)[::hop][: round(total_s * 100)]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2
    db = 10 * np.log10(power @ _mel_bank(rate_hz, n_fft).T + 1e-20)
    return np.asarray(np.maximum(db - (db.max() - range_db), 0.0))


def cosine_distance(a: Floats, b: Floats) -> float:
    u, v = a.ravel(), b.ravel()
    return float(1.0 - u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def cue_distance(x: npt.ArrayLike, rate_x_hz: int, y: npt.ArrayLike, rate_y_hz: int) -> float:
    return cosine_distance(log_mel_spectrogram(x, rate_x_hz), log_mel_spectrogram(y, rate_y_hz))


# Cosine distance between the log-mel spectrograms above is 0 for the same sound and 1 for
# sounds sharing no time-frequency cell. Changes a listener ignores stay far below 0.05 (the
# nuisance test measures them: 20 ms later start, noise 60 dB down, another sample rate).
# Requiring 0.2 between cues, four times that, means every pair differs in register,
# timbre, rhythm or length by much more than a cue differs from itself.
MIN_CUE_DISTANCE = 0.2
NUISANCE_LIMIT = MIN_CUE_DISTANCE / 4


def onset_frames(x: npt.ArrayLike, rate_hz: int) -> list[int]:
    """Frames where strikes begin: peaks of log-mel spectral flux above 30 % of the largest.

    Flux (the summed rise in dB of every band over 20 ms) ignores the beating of a ringing
    chord, which shifts energy between blocks but adds no new partials.
    """
    spec = log_mel_spectrogram(x, rate_hz)
    spec = np.vstack([np.zeros((2, spec.shape[1])), spec])  # silence before, so the first strike counts
    flux = np.maximum(spec[2:] - spec[:-2], 0.0).sum(axis=1)
    strong = np.flatnonzero(flux > 0.3 * flux.max())
    clusters = np.split(strong, np.flatnonzero(np.diff(strong) > 5) + 1)  # 50 ms apart
    hop, half_window = round(0.01 * rate_hz), round(0.02 * rate_hz)
    return [int(c[np.argmax(flux[c])]) * hop + half_window for c in clusters]


def dominant_hz(x: npt.ArrayLike, rate_hz: int) -> float:
    a = np.asarray(x, dtype=np.float64)
    n_fft = max(1 << 16, a.size)
    spectrum = np.abs(np.fft.rfft(a * np.hanning(a.size), n_fft))
    spectrum[np.fft.rfftfreq(n_fft, 1.0 / rate_hz) < 60.0] = 0.0
    return float(np.argmax(spectrum) * rate_hz / n_fft)


def local_click_ratio(x: npt.ArrayLike, rate_hz: int, window_s: float = 0.01) -> float:
    """Largest |x[n+1]-x[n]| relative to the largest step within `window_s` on either side.

    A smooth sound's step size changes slowly, so the ratio stays near 1; a discontinuity
    is a single step much larger than its neighbours.
    """
    d = np.abs(np.diff(np.asarray(x, dtype=np.float64)))
    k = round(window_s * rate_hz)
    padded = np.concatenate([np.zeros(k), d, np.zeros(k)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, k)
    left = windows[: d.size].max(axis=1)
    right = windows[k + 1 : k + 1 + d.size].max(axis=1)
    neighbours = np.maximum(left, right)
    loud = d > 1e-4 * d.max()
    return float(np.max(d[loud] / np.maximum(neighbours[loud], 1e-12)))


# ---- the fixed cues ----------------------------------------------------------------------


def test_cue_names_are_the_documented_set() -> None:
    assert tones.CUE_NAMES == ("start", "swap", "time-up", "remind", "end", "soft", "pause", "resume")
    assert set(tones.CUES) == set(tones.CUE_NAMES)
    assert tones.BREATH_CUE_NAMES == ("breath-in", "breath-out", "breath-hold")


@pytest.mark.parametrize("name", tones.CUE_NAMES)
def test_cue_is_mono_float32_short_and_deterministic(name: str, cues: dict[str, npt.NDArray[np.float32]]) -> None:
    x = cues[name]
    assert x.dtype == np.float32 and x.ndim == 1
    assert 0.3 * RATE_HZ <= x.size <= 3.0 * RATE_HZ
    assert np.all(np.isfinite(x))
    np.testing.assert_array_equal(x, tones.synth_cue(name, RATE_HZ))


@pytest.mark.parametrize("name", tones.CUE_NAMES)
def test_cue_peak_stays_under_limit(name: str, cues: dict[str, npt.NDArray[np.float32]]) -> None:
    assert peak_dbfs(cues[name]) <= PEAK_LIMIT_DBFS


@pytest.mark.parametrize("name", tones.CUE_NAMES)
def test_cue_loudness_matches_speech_or_is_deliberately_quieter(
    name: str, cues: dict[str, npt.NDArray[np.float32]]
) -> None:
    level = sounding_rms_dbfs(cues[name], RATE_HZ)
    if name in QUIET:
        assert TARGET_RMS_DBFS - 10.0 <= level <= TARGET_RMS_DBFS - 6.0
    else:
        assert abs(level - TARGET_RMS_DBFS) <= 1.5


@pytest.mark.parametrize("name", tones.CUE_NAMES)
def test_cue_starts_and_ends_at_zero(name: str, cues: dict[str, npt.NDArray[np.float32]]) -> None:
    assert cues[name][0] == 0.0
    assert cues[name][-1] == 0.0


@pytest.mark.parametrize("name", tones.CUE_NAMES)
def test_cue_edges_are_gentler_than_body(name: str, cues: dict[str, npt.NDArray[np.float32]]) -> None:
    d = np.abs(np.diff(cues[name].astype(np.float64)))
    edge = RATE_HZ // 200  # 5 ms
    body = d[edge:-edge].max()
    assert d[:edge].max() < body
    assert d[-edge:].max() < body


@pytest.mark.parametrize("name", tones.CUE_NAMES)
def test_cue_has_no_click(name: str, cues: dict[str, npt.NDArray[np.float32]]) -> None:
    assert local_click_ratio(cues[name], RATE_HZ) < 1.5


def test_click_detector_finds_a_click(cues: dict[str, npt.NDArray[np.float32]]) -> None:
    x = cues["soft"].copy()
    middle = x.size // 2
    x[middle:] += 0.02  # a small DC step, about a tenth of the peak
    assert local_click_ratio(x, RATE_HZ) > 1.5


@pytest.mark.parametrize("rate_hz", [16000, 22050, 44100, 96000])
def test_cues_at_other_rates(rate_hz: int) -> None:
    for name in tones.CUE_NAMES:
        x = tones.synth_cue(name, rate_hz)
        assert x[0] == 0.0 and x[-1] == 0.0
        assert peak_dbfs(x) <= PEAK_LIMIT_DBFS
        assert local_click_ratio(x, rate_hz) < 1.5


def test_unknown_cue_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown cue 'chime'"):
        tones.synth_cue("chime")


# ---- distinctness ------------------------------------------------------------------------


@pytest.mark.parametrize("name", tones.CUE_NAMES)
def test_nuisance_changes_stay_close(name: str, cues: dict[str, npt.NDArray[np.float32]]) -> None:
    """Calibrate the distance: the same cue heard slightly differently must stay close."""
    x = cues[name]
    late = np.concatenate([np.zeros(RATE_HZ // 50, dtype=np.float32), x])
    noisy = x + np.random.default_rng(1).normal(0.0, 1e-3, x.size)
    assert cue_distance(x, RATE_HZ, late, RATE_HZ) < NUISANCE_LIMIT
    assert cue_distance(x, RATE_HZ, noisy, RATE_HZ) < NUISANCE_LIMIT
    assert cue_distance(x, RATE_HZ, tones.synth_cue(name, 44100), 44100) < NUISANCE_LIMIT


def test_every_pair_of_cues_is_far_apart(cues: dict[str, npt.NDArray[np.float32]]) -> None:
    spectrograms = {name: log_mel_spectrogram(x, RATE_HZ) for name, x in cues.items()}
    distances = {
        (a, b): cosine_distance(spectrograms[a], spectrograms[b]) for a, b in itertools.combinations(tones.CUE_NAMES, 2)
    }
    closest = min(distances, key=lambda pair: distances[pair])
    assert distances[closest] > MIN_CUE_DISTANCE, f"{closest} too similar: {distances[closest]:.3f}"


@pytest.mark.parametrize("name", tones.CUE_NAMES)
def test_strike_count_and_pitch_direction_match_design(name: str, cues: dict[str, npt.NDArray[np.float32]]) -> None:
    x = cues[name]
    onsets = onset_frames(x, RATE_HZ)
    n_strikes, direction = DESIGN[name]
    assert len(onsets) == n_strikes, f"{name}: strikes at {[f / RATE_HZ for f in onsets]} s"
    # The pitch a listener hears for each strike: just after its attack, before the next one.
    pitches = [dominant_hz(x[f + RATE_HZ // 100 : f + RATE_HZ // 100 + RATE_HZ // 10], RATE_HZ) for f in onsets]
    steps = np.diff(12 * np.log2(pitches))  # semitones
    if direction == "up":
        assert np.all(steps >= 2.0), pitches
    elif direction == "down":
        assert np.all(steps <= -2.0), pitches
    else:
        assert np.all(np.abs(steps) < 0.5), pitches


# ---- breathing tones ---------------------------------------------------------------------


@pytest.mark.parametrize("rate_hz", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("duration_s", [0.0, 0.00002, 0.001, 0.5, 1.0, 2.345, 4.0, 7.5])
@pytest.mark.parametrize("direction", tones.BREATH_DIRECTIONS)
def test_breath_tone_length_is_exact(direction: tones.BreathDirection, duration_s: float, rate_hz: int) -> None:
    x = tones.breath_tone(direction, duration_s, rate_hz)
    assert x.dtype == np.float32 and x.ndim == 1
    assert x.size == round(duration_s * rate_hz)
    if x.size:
        assert x[0] == 0.0 and x[-1] == 0.0


@settings(max_examples=60, deadline=None)
@given(
    direction=st.sampled_from(tones.BREATH_DIRECTIONS),
    duration_s=st.floats(min_value=0.0, max_value=12.0, allow_nan=False),
    rate_hz=st.integers(min_value=8000, max_value=96000),
)
def test_breath_tone_length_is_exact_for_any_duration(
    direction: tones.BreathDirection, duration_s: float, rate_hz: int
) -> None:
    x = tones.breath_tone(direction, duration_s, rate_hz)
    assert x.size == round(duration_s * rate_hz)
    assert np.all(np.isfinite(x))
    if x.size:
        assert x[0] == 0.0 and x[-1] == 0.0
        assert peak_dbfs(x) <= PEAK_LIMIT_DBFS


@pytest.mark.parametrize("rate_hz", [16000, 48000])
@pytest.mark.parametrize("duration_s", [0.8, 2.0, 4.0, 8.0])
def test_breath_in_rises_and_out_falls(duration_s: float, rate_hz: int) -> None:
    def quarters(x: npt.NDArray[np.float32]) -> tuple[float, float]:
        q = x.size // 4
        return dominant_hz(x[:q], rate_hz), dominant_hz(x[-q:], rate_hz)

    first, last = quarters(tones.breath_tone("in", duration_s, rate_hz))
    assert last > first * 2 ** (3 / 12), (first, last)  # at least three semitones up
    first, last = quarters(tones.breath_tone("out", duration_s, rate_hz))
    assert last < first * 2 ** (-3 / 12), (first, last)


@pytest.mark.parametrize("duration_s", [0.8, 4.0])
def test_breath_in_swells_and_out_ebbs(duration_s: float) -> None:
    def halves(x: npt.NDArray[np.float32]) -> tuple[float, float]:
        h = x.size // 2
        return sounding_rms_dbfs(x[:h], RATE_HZ), sounding_rms_dbfs(x[h:], RATE_HZ)

    early, late = halves(tones.breath_tone("in", duration_s, RATE_HZ))
    assert late > early + 1.0
    early, late = halves(tones.breath_tone("out", duration_s, RATE_HZ))
    assert late < early - 1.0


def test_breath_hold_is_a_very_quiet_steady_tone() -> None:
    x = tones.breath_tone("hold", 4.0, RATE_HZ)
    assert sounding_rms_dbfs(x, RATE_HZ) <= TARGET_RMS_DBFS - 15.0
    body = x[RATE_HZ // 2 : -RATE_HZ // 2].astype(np.float64)
    block_rms = np.sqrt((body[: body.size // 4800 * 4800].reshape(-1, 4800) ** 2).mean(axis=1))
    assert block_rms.max() / block_rms.min() < 1.05  # steady: no swell, no pulse
    q = x.size // 4
    assert abs(dominant_hz(x[:q], RATE_HZ) - dominant_hz(x[-q:], RATE_HZ)) < 2.0


@pytest.mark.parametrize("direction", ["in", "out"])
def test_breath_tone_level_and_clicks(direction: tones.BreathDirection) -> None:
    x = tones.breath_tone(direction, 4.0, RATE_HZ)
    assert peak_dbfs(x) <= PEAK_LIMIT_DBFS
    assert TARGET_RMS_DBFS - 8.0 <= sounding_rms_dbfs(x, RATE_HZ) <= TARGET_RMS_DBFS
    assert local_click_ratio(x, RATE_HZ) < 1.5
    d = np.abs(np.diff(x.astype(np.float64)))
    edge = RATE_HZ // 200
    assert d[:edge].max() < d[edge:-edge].max() and d[-edge:].max() < d[edge:-edge].max()


def test_breath_in_ends_where_hold_and_out_begin() -> None:
    in_end = dominant_hz(tones.breath_tone("in", 4.0, RATE_HZ)[-RATE_HZ // 4 :], RATE_HZ)
    hold = dominant_hz(tones.breath_tone("hold", 1.0, RATE_HZ), RATE_HZ)
    out_start = dominant_hz(tones.breath_tone("out", 4.0, RATE_HZ)[: RATE_HZ // 4], RATE_HZ)
    assert abs(in_end - hold) < 5.0 and abs(out_start - hold) < 5.0


@pytest.mark.parametrize(
    ("direction", "duration_s", "rate_hz"),
    [
        ("sideways", 1.0, 48000),
        ("in", -1.0, 48000),
        ("in", math.nan, 48000),
        ("in", math.inf, 48000),
        ("out", 1.0, 0),
    ],
)
def test_breath_tone_refuses_bad_arguments(direction: str, duration_s: float, rate_hz: int) -> None:
    with pytest.raises(ValueError):
        tones.breath_tone(direction, duration_s, rate_hz)  # type: ignore[arg-type]


# ---- files -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", tones.CUE_NAMES)
def test_shipped_asset_matches_generator(name: str, cues: dict[str, npt.NDArray[np.float32]]) -> None:
    samples, rate_hz = read_wav(ASSETS / f"{name}.wav")
    assert rate_hz == RATE_HZ, "regenerate with: python -m voice_guide.sound.assets audio_assets"
    assert samples.size == cues[name].size
    assert np.max(np.abs(samples - cues[name])) < 2 / 32768


def test_write_assets_round_trips(tmp_path: Path) -> None:
    paths = assets.write_assets(tmp_path / "new", 16000)
    assert [p.name for p in paths] == [f"{n}.wav" for n in tones.CUE_NAMES]
    for name, path in zip(tones.CUE_NAMES, paths, strict=True):
        samples, rate_hz = read_wav(path)
        assert rate_hz == 16000
        assert np.max(np.abs(samples - tones.synth_cue(name, 16000))) < 2 / 32768
        assert path.read_bytes() == wav_bytes(tones.synth_cue(name, 16000), 16000)


def test_main_writes_folder_and_rejects_extra_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert assets.main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.wav" for n in tones.CUE_NAMES)
    assert assets.main(["a", "b"]) == 2
    assert "usage" in capsys.readouterr().err


# ---- purity ------------------------------------------------------------------------------


def test_module_imports_no_device_or_speech_engine() -> None:
    code = (
        "import sys, voice_guide.sound.tones; "
        "bad = {'sounddevice', 'pyttsx3'} & set(sys.modules); "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    root = Path(tones.__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr or result.stdout
