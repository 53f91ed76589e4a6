"""Clip conditioning on generated signals with known answers: trim, resample, loudness, fades."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voice_guide.sound.clips import (
    FADE_S,
    TRIM_MARGIN_S,
    condition,
    fade_edges,
    resample,
    trim_silence,
    voiced_rms_dbfs,
)
from voice_guide.sound.levels import PEAK_LIMIT_DBFS, TARGET_RMS_DBFS, Samples, peak_dbfs, rms_dbfs

RATE = 48_000


def tone(freq_hz: float, duration_s: float, rate_hz: int, amplitude: float = 0.5) -> Samples:
    t = np.arange(round(duration_s * rate_hz)) / rate_hz
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def silence(duration_s: float, rate_hz: int) -> Samples:
    return np.zeros(round(duration_s * rate_hz), dtype=np.float32)


def bursts(rate_hz: int, amplitude: float, n: int = 4, on_s: float = 0.2, gap_s: float = 0.3) -> Samples:
    """Tone bursts with silent gaps, like words with pauses between them."""
    parts: list[Samples] = [silence(0.1, rate_hz)]
    for i in range(n):
        parts += [tone(300 + 100 * i, on_s, rate_hz, amplitude), silence(gap_s, rate_hz)]
    return np.concatenate(parts)


def dominant_hz(x: Samples, rate_hz: int) -> float:
    window = np.hanning(x.size)
    spectrum = np.abs(np.fft.rfft(x * window))
    return float(np.fft.rfftfreq(x.size, 1 / rate_hz)[int(np.argmax(spectrum))])


# ---------------------------------------------------------------- trim


def test_trim_removes_silence_to_within_a_few_ms() -> None:
    x = np.concatenate([silence(0.3, RATE), tone(440, 0.5, RATE), silence(0.4, RATE)])
    y = trim_silence(x, RATE)
    expected = round((0.5 + 2 * TRIM_MARGIN_S) * RATE)
    assert abs(y.size - expected) <= round(0.002 * RATE)
    assert TRIM_MARGIN_S <= 0.015  # "a few ms": the margin itself stays small


def test_trim_keeps_a_quiet_onset_that_belongs_to_the_sound() -> None:
    # A soft "h" 35 dB under the vowel must not be cut off.
    soft = tone(3000, 0.05, RATE, amplitude=0.5 * 10 ** (-35 / 20))
    x = np.concatenate([silence(0.2, RATE), soft, tone(300, 0.3, RATE), silence(0.2, RATE)])
    y = trim_silence(x, RATE)
    assert y.size >= round((0.05 + 0.3) * RATE)


def test_trim_of_silence_is_empty() -> None:
    assert trim_silence(silence(0.5, RATE), RATE).size == 0
    assert trim_silence(np.zeros(0, dtype=np.float32), RATE).size == 0


# ---------------------------------------------------------------- resample


def test_resample_keeps_frequency_and_length() -> None:
    x = tone(1000, 1.0, 22_050)
    y = resample(x, 22_050, 48_000)
    assert y.dtype == np.float32
    assert abs(y.size - x.size * 48_000 / 22_050) <= 1
    assert dominant_hz(y, 48_000) == pytest.approx(1000, abs=2)
    # Amplitude survives (away from the edges, where the filter rings in).
    middle = y[4800:-4800]
    assert peak_dbfs(middle) == pytest.approx(peak_dbfs(x), abs=0.1)


@pytest.mark.parametrize(("from_hz", "to_hz"), [(22_050, 48_000), (48_000, 16_000), (44_100, 48_000), (16_000, 44_100)])
def test_resample_length_ratio_is_exact_within_one_sample(from_hz: int, to_hz: int) -> None:
    for n in (1, 7, 1001, 22_051):
        y = resample(np.ones(n, dtype=np.float32) * 0.1, from_hz, to_hz)
        assert abs(y.size - n * to_hz / from_hz) <= 1, (n, y.size)


def test_resample_filters_out_what_the_new_rate_cannot_hold() -> None:
    # A 9 kHz tone has no place at 16 kHz (Nyquist 8 kHz); a good resampler removes it
    # instead of folding it back as a 7 kHz whistle.
    y = resample(tone(9000, 1.0, 48_000, amplitude=0.5), 48_000, 16_000)
    assert rms_dbfs(y[1600:-1600]) < rms_dbfs(tone(9000, 1.0, 48_000, amplitude=0.5)) - 80


def test_resample_same_rate_is_a_copy() -> None:
    x = tone(440, 0.1, RATE)
    y = resample(x, RATE, RATE)
    assert np.array_equal(x, y)
    assert y is not x


def test_resample_rejects_bad_rates_and_stereo() -> None:
    with pytest.raises(ValueError):
        resample(tone(440, 0.1, RATE), 0, RATE)
    with pytest.raises(ValueError):
        resample(np.zeros((10, 2), dtype=np.float32), RATE, 22_050)


# ---------------------------------------------------------------- loudness


def test_voiced_rms_ignores_pauses() -> None:
    x = bursts(RATE, amplitude=0.1, gap_s=1.0)
    burst_level = rms_dbfs(tone(300, 0.2, RATE, 0.1))
    assert rms_dbfs(x) < burst_level - 5  # plain RMS is dragged down by the pauses...
    assert voiced_rms_dbfs(x, RATE) == pytest.approx(burst_level, abs=0.5)  # ...voiced RMS is not


@pytest.mark.parametrize("amplitude", [0.003, 0.05, 0.3, 0.99])
def test_condition_brings_any_level_to_the_target(amplitude: float) -> None:
    y = condition(bursts(22_050, amplitude), 22_050, RATE)
    assert voiced_rms_dbfs(y, RATE) == pytest.approx(TARGET_RMS_DBFS, abs=1.0)
    assert peak_dbfs(y) <= PEAK_LIMIT_DBFS + 0.01


def test_condition_of_a_steady_tone_hits_the_target_in_plain_rms_too() -> None:
    y = condition(tone(500, 1.0, 22_050, amplitude=0.02), 22_050, RATE)
    assert rms_dbfs(y) == pytest.approx(TARGET_RMS_DBFS, abs=0.5)


def test_condition_limits_rare_peaks_instead_of_lowering_the_whole_clip() -> None:
    # Crest factor about 20 dB: a quiet tone with a few sharp clicks on top.
    x = tone(300, 1.0, 22_050, amplitude=0.05)
    x[::5000] = 0.35
    assert peak_dbfs(x) - rms_dbfs(x) == pytest.approx(20, abs=0.5)
    y = condition(x, 22_050, RATE)
    assert peak_dbfs(y) <= PEAK_LIMIT_DBFS + 0.01
    assert voiced_rms_dbfs(y, RATE) == pytest.approx(TARGET_RMS_DBFS, abs=1.0)


def test_condition_backs_off_when_peaks_are_far_too_high() -> None:
    # Crest factor about 40 dB: limiting that much would mangle the clip, so the gain gives way.
    x = tone(300, 1.0, 22_050, amplitude=0.005)
    x[10_000] = 0.99
    y = condition(x, 22_050, RATE)
    assert peak_dbfs(y) <= PEAK_LIMIT_DBFS + 0.01
    assert voiced_rms_dbfs(y, RATE) < TARGET_RMS_DBFS - 5


# ---------------------------------------------------------------- edges and silence


def test_condition_starts_and_ends_at_zero_with_fades() -> None:
    # A tone at full level right from the first sample: without fades this would click.
    y = condition(tone(440, 0.5, 22_050, amplitude=0.8), 22_050, RATE)
    assert abs(float(y[0])) < 1e-3
    assert abs(float(y[-1])) < 1e-3
    fade = round(FADE_S * RATE)
    assert np.max(np.abs(y[: fade // 4])) < np.max(np.abs(y[fade : 2 * fade]))


def test_fade_edges_is_a_raised_cosine() -> None:
    x = np.ones(RATE, dtype=np.float32)
    y = fade_edges(x, RATE)
    n = round(FADE_S * RATE)
    assert y[0] == 0.0
    assert y[n // 2] == pytest.approx(0.5, abs=0.01)
    assert y[n] == 1.0
    assert y[-1] == 0.0
    assert np.allclose(y[-n:], y[:n][::-1])  # mirror image


def test_fade_of_a_very_short_clip_does_not_fail() -> None:
    assert fade_edges(np.ones(3, dtype=np.float32), RATE).size == 3
    assert fade_edges(np.ones(1, dtype=np.float32), RATE).size == 1


@pytest.mark.parametrize(
    "x",
    [
        np.zeros(22_050, dtype=np.float32),
        np.zeros(0, dtype=np.float32),
        (np.random.default_rng(1).standard_normal(22_050) * 1e-5).astype(np.float32),  # about -100 dBFS
    ],
)
def test_condition_of_silence_is_empty(x: Samples) -> None:
    y = condition(x, 22_050, RATE)
    assert y.size == 0
    assert y.dtype == np.float32


def test_condition_output_is_float32_at_the_target_rate() -> None:
    x = np.concatenate([silence(0.2, 22_050), tone(440, 0.5, 22_050), silence(0.2, 22_050)]).astype(np.float64)
    y = condition(x, 22_050, RATE)  # type: ignore[arg-type]
    assert y.dtype == np.float32
    assert abs(y.size - round((0.5 + 2 * TRIM_MARGIN_S) * RATE)) <= round(0.002 * RATE)


@settings(max_examples=40, deadline=None)
@given(
    amplitude=st.floats(min_value=1e-2, max_value=1.0),
    words=st.integers(min_value=1, max_value=5),
    gap_s=st.floats(min_value=0.0, max_value=0.5),
    lead_s=st.floats(min_value=0.0, max_value=0.5),
    source_hz=st.sampled_from([16_000, 22_050, 44_100, 48_000]),
)
def test_condition_properties(amplitude: float, words: int, gap_s: float, lead_s: float, source_hz: int) -> None:
    x = np.concatenate([silence(lead_s, source_hz), bursts(source_hz, amplitude, n=words, gap_s=gap_s)])
    y = condition(x, source_hz, RATE)
    assert y.dtype == np.float32
    assert np.all(np.isfinite(y))
    assert peak_dbfs(y) <= PEAK_LIMIT_DBFS + 0.01
    assert voiced_rms_dbfs(y, RATE) == pytest.approx(TARGET_RMS_DBFS, abs=1.0)
    assert abs(float(y[0])) < 1e-3 and abs(float(y[-1])) < 1e-3
    # Leading silence is gone: the first burst begins within the margin.
    assert np.flatnonzero(np.abs(y) > 0.01)[0] <= round((TRIM_MARGIN_S + 0.002) * RATE)
