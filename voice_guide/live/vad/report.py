"""A whole recording's speech in figures: what `voice-guide analyze` prints, from the live detector."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voice_guide.live.vad.detector import Segment, VadConfig, detect_speech
from voice_guide.sound.levels import Samples


@dataclass(frozen=True)
class SpeechReport:
    """The speech found in a recording; times in seconds rounded to 1 ms.

    `talk_s` is the summed length of the speech segments. `longest_silence_s` is the
    longest stretch without speech inside the recording: before the first segment,
    between two segments or after the last one (the whole duration if nobody spoke).
    """

    sample_rate_hz: int
    duration_s: float
    speech: tuple[Segment, ...]
    talk_s: float
    longest_silence_s: float

    def as_json(self) -> dict[str, object]:
        """Describe the report as `analyze --json` prints it."""
        return {
            "sample_rate": self.sample_rate_hz,
            "duration_s": self.duration_s,
            "speech": [{"start_s": s.start_s, "end_s": s.end_s} for s in self.speech],
            "talk_s": self.talk_s,
            "longest_silence_s": self.longest_silence_s,
        }


def analyze(samples: Samples, sample_rate_hz: int, config: VadConfig | None = None) -> SpeechReport:
    """Find the speech in a whole recording with the live detector; return its figures."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    segments = detect_speech(x, sample_rate_hz, config)
    duration_s = x.size / sample_rate_hz
    edges = [0.0, *(t for s in segments for t in (s.start_s, s.end_s)), duration_s]
    silences = [max(0.0, b - a) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    return SpeechReport(
        sample_rate_hz=sample_rate_hz,
        duration_s=round(duration_s, 3),
        speech=tuple(Segment(round(s.start_s, 3), round(s.end_s, 3)) for s in segments),
        talk_s=round(sum(s.duration_s for s in segments), 3),
        longest_silence_s=round(max(silences), 3),
    )
