"""Find where a known clip sits in a recording (matched filter); pure numpy.

The tests and benchmarks use it to check timing from the audio itself, never from
what the code says it did.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def find_clip(
    audio: npt.ArrayLike, clip: npt.ArrayLike, around: int, search: int, template_frames: int = 48_000
) -> int:
    """Return the frame in `audio` within `around` ± `search` where `clip` fits best.

    The first `template_frames` of the clip are cross-correlated with the audio
    through the FFT; the highest peak wins.
    """
    template = np.asarray(clip, dtype=np.float64)[:template_frames]
    signal = np.asarray(audio, dtype=np.float64)
    lo = max(0, around - search)
    window = signal[lo : around + search + len(template)]
    size = 1 << (len(window) + len(template) - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(window, size) * np.conj(np.fft.rfft(template, size)), size)
    return lo + int(np.argmax(corr[: max(1, len(window) - len(template) + 1)]))
