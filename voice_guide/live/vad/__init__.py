"""Listening: whether someone is talking, 10 ms frame by 10 ms frame, and the double clap that pauses.

Pure numpy: no device, no file, no clock. Callers push microphone blocks of any size and
get one decision per completed frame; the same detectors serve live turns and offline
analysis, and any split of the input into blocks gives identical decisions.

- frames: the 10 ms frame, frame levels, blocks cut into whole frames
- bands: band powers over a 30 ms window and the voicing test (what a frame sounds like)
- floor: each band's noise floor by minimum statistics
- detector: `VoiceDetector`, the rules from scores to talk regions (see its notes)
- report: `analyze`, a whole recording's speech as a `SpeechReport`
- claps: `ClapDetector`, the double hand clap
"""

from voice_guide.live.vad.claps import ClapConfig, ClapDetector, detect_double_claps
from voice_guide.live.vad.detector import Segment, VadConfig, VoiceDetector, detect_speech
from voice_guide.live.vad.frames import FRAME_S, Decisions, IgnoreMask, Levels, frame_length, frame_levels_dbfs
from voice_guide.live.vad.report import SpeechReport, analyze

__all__ = [
    "FRAME_S",
    "ClapConfig",
    "ClapDetector",
    "Decisions",
    "IgnoreMask",
    "Levels",
    "Segment",
    "SpeechReport",
    "VadConfig",
    "VoiceDetector",
    "analyze",
    "detect_double_claps",
    "detect_speech",
    "frame_length",
    "frame_levels_dbfs",
]
