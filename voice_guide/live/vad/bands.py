"""What the voice detector hears in each frame: band powers over a 30 ms window, and whether it is voiced.

Pure numpy. One zero-padded FFT per frame serves both: the band powers (Parseval with
the Hann window's energy makes band sums mean-square levels) and the autocorrelation
of the spectrum that the voicing test reads a pitch period from.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voice_guide.live.vad.frames import SILENT_POWER, Levels, Power, power_to_db, whole_frames
from voice_guide.sound.levels import Samples

WINDOW_FRAMES = 3
"""Frames in the analysis window (30 ms: a low voice's pitch period fits twice)."""
# Pitch periods looked for: 2.5-12.5 ms (80-400 Hz), on 80-1000 Hz of the spectrum.
_PITCH_S = (0.0025, 0.0125)
_VOICE_HZ = (80.0, 1000.0)

Bands = tuple[tuple[float, float], ...]


class BandAnalyzer:
    """Keep the last 30 ms of samples; give its power per band and per FFT bin, and a voicing test."""

    def __init__(self, sample_rate_hz: int, frame_len: int, bands_hz: Bands, voiced_ratio: float) -> None:
        self.frame_len = frame_len
        self.voiced_ratio = voiced_ratio
        win = WINDOW_FRAMES * frame_len
        self._window = np.hanning(win + 2)[1:-1]
        # Zero-padded to twice the window, so the autocorrelation does not wrap around.
        self._nfft = 2 * win
        freqs = np.fft.rfftfreq(self._nfft, 1.0 / sample_rate_hz)
        self._bands = np.zeros((len(bands_hz), freqs.size))
        for i, (lo, hi) in enumerate(bands_hz):
            self._bands[i, (freqs >= lo) & (freqs < hi)] = 1.0
        # Parseval with the Hann window's energy: band sums become mean-square levels.
        self._scale = 1.0 / (float(np.sum(self._window**2)) * self._nfft / 2.0)
        self._voice = np.flatnonzero((freqs >= _VOICE_HZ[0]) & (freqs < _VOICE_HZ[1]))
        tops = np.array([hi for _, hi in bands_hz])
        self._voice_band = np.minimum(np.searchsorted(tops, freqs[self._voice], side="right"), len(tops) - 1)
        self._band_bins = np.maximum(self._bands.sum(axis=1), 1.0)
        wac = np.fft.irfft(np.abs(np.fft.rfft(self._window, self._nfft)) ** 2, self._nfft)[:win]
        self._lag_lo, self._lag_hi = (round(s * sample_rate_hz) for s in _PITCH_S)
        self._window_ac = wac[self._lag_lo : self._lag_hi] / wac[0]
        self._hist = np.zeros(win, dtype=np.float64)
        self._filled = 0

    def take(self, x: npt.NDArray[np.float32]) -> bool:
        """Add one frame of samples; return whether the window is full (three frames heard)."""
        n, hist = self.frame_len, self._hist
        hist[:-n] = hist[n:]
        hist[-n:] = x
        self._filled = min(self._filled + 1, WINDOW_FRAMES)
        return self._filled == WINDOW_FRAMES

    def powers(self) -> tuple[Power, Power]:
        """Return the window's power per FFT bin and its mean-square level per band (never zero)."""
        spectrum = np.fft.rfft(self._hist * self._window, self._nfft)
        power = spectrum.real**2 + spectrum.imag**2
        bands = (self._bands @ power) * self._scale + SILENT_POWER
        return power, bands

    def is_voiced(self, power: Power, floor: Power) -> bool:
        """Return whether the window is periodic at a pitch period, seen through the band floors."""
        # Autocorrelation of the 80-1000 Hz spectrum whitened by the band floors (so a
        # rumble or a fan's hum is not a pitch), corrected for the window's own
        # autocorrelation; periodic at a pitch period means voiced.
        white = np.zeros_like(power)
        voice = self._voice
        white[voice] = power[voice] / (floor[self._voice_band] / self._band_bins[self._voice_band])
        ac = np.fft.irfft(white, self._nfft)
        if ac[0] <= 0.0:
            return False
        best = float(np.max(ac[self._lag_lo : self._lag_hi] / self._window_ac)) / float(ac[0])
        return best >= self.voiced_ratio


def band_levels_dbfs(samples: Samples, sample_rate_hz: int, frame_len: int, bands_hz: Bands) -> Levels:
    """Return the level in dBFS of every complete frame over all of `bands_hz` (one FFT per frame, no window)."""
    frames = whole_frames(np.asarray(samples, dtype=np.float32).reshape(-1), frame_len)
    n = frame_len
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate_hz)
    inside = np.zeros(freqs.size, dtype=np.bool_)
    for lo, hi in bands_hz:
        inside |= (freqs >= lo) & (freqs < hi)
    spectrum = np.abs(np.fft.rfft(frames.astype(np.float64), axis=1)) ** 2
    return power_to_db(2.0 * spectrum[:, inside].sum(axis=1) / (n * n))
