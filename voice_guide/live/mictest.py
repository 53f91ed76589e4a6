"""Judge a microphone before a session: its level against the speech detector's threshold, and a verdict.

Pure: it takes microphone samples and what the speaker played; the command plays and records.
The detector is used through its public interface only (push, noise floor, config).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from voice_guide.live.vad import VoiceDetector
from voice_guide.sound.levels import Samples, rms_dbfs

Verdict = Literal["speech", "silence", "muted", "clipping"]
# Below this the mic sends nothing at all: a muted device or a dead input, not a quiet room.
DIGITAL_SILENCE = 1e-6
CLIPPED = 0.999
CLIPPED_SHARE = 0.02
# This much detected speech counts as "heard you"; less is a cough or a click.
SPEECH_NEEDED_S = 0.3
# Speech peaking less than this above the threshold is heard, but only just.
FAINT_MARGIN_DB = 6.0
# The test tone must lift the mic this much above the room for the mic to "hear the speaker".
HEARS_SPEAKER_DB = 6.0


@dataclass(frozen=True)
class Reading:
    """The mic right now: level and threshold in dBFS, and whether the detector hears speech."""

    level_dbfs: float
    threshold_dbfs: float
    speaking: bool


@dataclass(frozen=True)
class Report:
    """What the test found and what to do about it."""

    verdict: Verdict
    message: str
    fixes: tuple[str, ...]
    speech_s: float
    peak_dbfs: float
    threshold_dbfs: float
    hears_speaker: bool | None  # None: no test sound was played

    def as_json(self) -> dict[str, object]:
        """Describe the report for --json."""
        return {
            "verdict": self.verdict,
            "message": self.message,
            "fixes": list(self.fixes),
            "speech_s": round(self.speech_s, 2),
            "peak_dbfs": round(self.peak_dbfs, 1),
            "threshold_dbfs": round(self.threshold_dbfs, 1),
            "hears_speaker": self.hears_speaker,
        }


class MicCheck:
    """Feed mic blocks in (while the test listens); read the level as it goes; get a verdict at the end."""

    def __init__(self, sample_rate_hz: int) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.detector = VoiceDetector(sample_rate_hz)
        self.frames = self.nonzero = self.clipped = 0
        self.speech_frames = 0
        self.peak_speech_dbfs = -120.0
        self.peak_dbfs = -120.0
        self.threshold_dbfs = -120.0
        self.speaking = False
        self._tone: list[float] = []
        self._room: list[float] = []

    def push(self, samples: Samples, *, tone_playing: bool = False) -> Reading:
        """Take mono mic samples; return the reading after them."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        level = rms_dbfs(x) if len(x) else -120.0
        (self._tone if tone_playing else self._room).append(level)
        self.frames += len(x)
        self.nonzero += int(np.count_nonzero(np.abs(x) > DIGITAL_SILENCE))
        self.clipped += int(np.count_nonzero(np.abs(x) >= CLIPPED))
        decisions = self.detector.push(x, ignore=tone_playing)
        frame_len = max(1, round(0.01 * self.sample_rate_hz))
        voiced = int(np.count_nonzero(decisions))
        self.speech_frames += voiced * frame_len
        if len(decisions):
            self.speaking = bool(decisions[-1])
        self.threshold_dbfs = self.detector.threshold_dbfs
        if not tone_playing:
            self.peak_dbfs = max(self.peak_dbfs, level)
            if voiced:
                self.peak_speech_dbfs = max(self.peak_speech_dbfs, level)
        return Reading(level, self.threshold_dbfs, self.speaking)

    def report(self) -> Report:
        """Return the verdict on everything pushed so far, with the fixes to try."""
        speech_s = self.speech_frames / self.sample_rate_hz
        hears = None
        if self._tone and self._room:
            hears = float(np.median(self._tone)) - float(np.median(self._room)) >= HEARS_SPEAKER_DB
        device_fix = "pick another microphone with --input-device (see: voice-guide devices)"
        if self.frames == 0 or self.nonzero == 0:
            return Report(
                "muted",
                "the microphone sends only silence: it is muted, turned to zero, or not the one you speak into",
                ("unmute it or raise its level (pavucontrol or alsamixer)", device_fix),
                speech_s,
                self.peak_dbfs,
                self.threshold_dbfs,
                hears,
            )
        if self.clipped > CLIPPED_SHARE * self.frames:
            return Report(
                "clipping",
                "the microphone is too loud: it clips, so speech and silence blur",
                ("turn the microphone's gain down", "or sit a little farther from it"),
                speech_s,
                self.peak_dbfs,
                self.threshold_dbfs,
                hears,
            )
        fixes: list[str] = []
        if speech_s >= SPEECH_NEEDED_S:
            verdict: Verdict = "speech"
            message = "I hear speech: the microphone works"
            if self.peak_speech_dbfs < self.threshold_dbfs + FAINT_MARGIN_DB:
                message += ", but only just"
                fixes.append("move closer to the microphone or raise its gain")
        else:
            verdict = "silence"
            message = "I hear only the room, no speech"
            fixes += ["talk during the test; if you did, move closer or raise the microphone's gain", device_fix]
        if hears is False:
            fixes.append(
                "the microphone did not hear the test sound: with headphones on, save it: voice-guide config set"
                " headphones true"
            )
        elif hears:
            fixes.append("the microphone hears the speaker: play through speakers as is (without --headphones)")
        return Report(verdict, message, tuple(fixes), speech_s, self.peak_dbfs, self.threshold_dbfs, hears)


def spoken_verdict(report: Report) -> str:
    """Return one sentence to say aloud, for eyes-closed use."""
    return {
        "speech": "The microphone hears you.",
        "silence": "I heard no speech. Move closer, or raise the microphone's level.",
        "muted": "The microphone sends only silence. It may be muted.",
        "clipping": "The microphone is too loud. Turn its level down.",
    }[report.verdict]
