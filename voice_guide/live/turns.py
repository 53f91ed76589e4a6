"""A listen turn as a state machine over speech/silence decisions; pure.

The session feeds one decision per VAD frame, stamped with the session frame at
which that VAD frame ends (the session clock, which stands still while the session is
paused, not the output clock, which runs on), and acts on what `update` returns: a
remind tick, or the end of the turn. Semantics follow docs/SCRIPT_FORMAT.md ("Listen semantics").

Talk is what the detector confirms as talking (a cough or a knock is not; see
live/vad/), counted from where the detector says it began (`talk_since`), which lies
before the frame at which it was confirmed. Stretches the session leaves out (the
double clap that paused it) are neither talk nor silence, and the turn's clock runs
that much longer, so a pause leaves the turn's figures as they would have been.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from voice_guide.script import Listen
from voice_guide.sound.timeline import s_to_frames

EndedBy = Literal["time", "silence", "grace", "skip", "quit"]


@dataclass(frozen=True)
class Turn:
    """What happened in one listen turn, in seconds.

    `start_s` and `end_s` are on the session clock as `TurnTracker.record` returns them; the
    session moves them onto the output timeline before it hands the record to others.
    """

    who: str
    planned_s: float
    start_s: float
    end_s: float
    talk_s: float
    first_speech_s: float | None  # from the turn's start; None if nobody spoke
    longest_silence_s: float
    overrun_s: float
    ended_by: EndedBy
    interruptions: int = 0
    paused_s: float = 0.0  # time left out: paused, and the double clap that paused it

    def as_json(self) -> dict[str, object]:
        """Return the record as LOG.json and the journal store it."""
        return {
            "who": self.who,
            "planned_s": self.planned_s,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "talk_s": self.talk_s,
            "first_speech_s": self.first_speech_s,
            "longest_silence_s": self.longest_silence_s,
            "overrun_s": self.overrun_s,
            "ended_by": self.ended_by,
            "interruptions": self.interruptions,
            "paused_s": self.paused_s,
        }


@dataclass(frozen=True)
class Remind:
    """Play the soft remind tick now."""

    frame: int


@dataclass(frozen=True)
class End:
    """The turn is over at `frame`."""

    frame: int
    ended_by: EndedBy


Action = Remind | End


class TurnTracker:
    """Decide when a listen turn ends from speech decisions; frames are session-clock frames."""

    def __init__(self, step: Listen, start_frame: int, sample_rate_hz: int, mic: bool = True) -> None:
        self.step = step
        self.rate = sample_rate_hz
        self.mic = mic
        self.start_frame = start_frame
        self.for_frames = s_to_frames(step.for_s, sample_rate_hz)

        def frames(seconds: float | None) -> int | None:
            return None if seconds is None or not mic else s_to_frames(seconds, sample_rate_hz)

        self.until_silence = frames(step.until_silence_s)
        self.wait = frames(step.wait_for_speech_s)
        self.grace = frames(step.grace_s)
        self.remind = None if step.remind_s is None else s_to_frames(step.remind_s, sample_rate_hz)
        # With wait_for_speech the turn's clock starts at the first speech (or when the wait runs out).
        self.clock_start: int | None = None if self.wait else start_frame
        self.first_speech: int | None = None
        self.silence_since: int | None = start_frame
        self.talk_frames = 0
        self.longest_closed = 0  # longest silence between two stretches of talk, so far
        # Spans (start, end) of session frames left out of the turn, in order.
        self.excluded: list[tuple[int, int]] = []
        self.interruptions = 0
        self.reminded = False
        self.grace_until: int | None = None
        self.ended: End | None = None
        self.last_frame = start_frame

    @property
    def deadline(self) -> int | None:
        """Return the frame at which `for` runs out, once the clock has started (left-out time added)."""
        if self.clock_start is None:
            return None
        return self.clock_start + self.for_frames + self._left_out(self.clock_start, None)

    @property
    def longest_silence(self) -> int:
        """Return the longest silence after first speech so far, in frames (left-out time not counted)."""
        if self.first_speech is None:
            return 0
        return max(self.longest_closed, self._silence(self.last_frame))

    def _left_out(self, lo: int, hi: int | None) -> int:
        """Return how many frames of [lo, hi) lie in excluded spans (hi None: no end)."""
        total = 0
        for a, b in self.excluded:
            top = b if hi is None else min(b, hi)
            total += max(0, top - max(a, lo))
        return total

    def _silence(self, frame: int) -> int:
        if self.silence_since is None:
            return 0
        return frame - self.silence_since - self._left_out(self.silence_since, frame)

    def exclude(self, start_frame: int, end_frame: int) -> None:
        """Leave session frames [start_frame, end_frame) out of the turn: neither talk nor silence."""
        lo = max(start_frame, self.start_frame)
        if end_frame > lo:
            self.excluded.append((lo, end_frame))

    def update(
        self, frame: int, speaking: bool, quiet_since: int | None = None, talk_since: int | None = None
    ) -> list[Action]:
        """Take the decision for the VAD frame ending at `frame`; return what to do now.

        `quiet_since` is where the detector heard the last voiced sound: its hangover
        reports silence late, and the turn counts silence from when talking really stopped.
        `talk_since` is where the talk now reported began: the detector confirms talk
        only after hearing enough of it, and the turn counts it from its start.
        """
        if self.ended is not None:
            return []
        tick = max(0, frame - self.last_frame)
        self.last_frame = frame
        speaking = speaking and self.mic
        actions: list[Action] = []
        if speaking:
            began = frame - tick
            if self.silence_since is not None:
                if talk_since is not None:
                    began = min(began, max(talk_since, self.silence_since, self.start_frame))
                if self.first_speech is not None:
                    self.longest_closed = max(self.longest_closed, self._silence(began))
                self.talk_frames += frame - began - self._left_out(began, frame)
            else:
                self.talk_frames += tick - self._left_out(began, frame)
            if self.first_speech is None:
                self.first_speech = began
                if self.clock_start is None:
                    self.clock_start = self.first_speech
            self.silence_since = None
        elif self.silence_since is None:
            self.silence_since = frame - tick
            if quiet_since is not None and self.first_speech is not None:
                backdated = max(self.first_speech, min(quiet_since, frame - tick))
                self.talk_frames -= self.silence_since - backdated - self._left_out(backdated, self.silence_since)
                self.silence_since = backdated
        if self.clock_start is None and self.wait is not None:
            wait_end = self.start_frame + self.wait + self._left_out(self.start_frame, None)
            if frame >= wait_end:
                self.clock_start = wait_end
        silence = self._silence(frame)
        deadline = self.deadline
        if deadline is None:
            return actions
        if self.remind and not self.reminded and frame >= deadline - self.remind and self.grace_until is None:
            self.reminded = True
            actions.append(Remind(frame))
        if self.grace_until is not None:
            if not speaking or frame >= self.grace_until:
                actions.append(self._end(frame, "grace"))
        elif self.until_silence is not None and self.first_speech is not None and silence >= self.until_silence:
            actions.append(self._end(frame, "silence"))
        elif frame >= deadline:
            if speaking and self.grace:
                self.grace_until = deadline + self.grace
            else:
                actions.append(self._end(deadline, "time"))
        return actions

    def lose_mic(self) -> None:
        """Carry on without the microphone: from now on the turn simply lasts `for`."""
        self.mic = False
        self.until_silence = self.grace = self.wait = None
        if self.clock_start is None:
            self.clock_start = self.start_frame

    def count_interruption(self) -> None:
        """Note that the listener talked over the speaker (two-microphone sessions)."""
        self.interruptions += 1

    def stop(self, frame: int, ended_by: EndedBy) -> End:
        """End the turn from outside (a skip or quit) at `frame`."""
        return self.ended or self._end(frame, ended_by)

    def _end(self, frame: int, ended_by: EndedBy) -> End:
        self.ended = End(frame, ended_by)
        return self.ended

    def record(self) -> Turn:
        """Return the finished turn's record, times on the session clock; call after the turn has ended."""
        end = self.ended or End(self.last_frame, "quit")
        rate = self.rate
        clock = self.clock_start if self.clock_start is not None else self.start_frame
        planned_end = clock + self.for_frames + self._left_out(clock, None)
        left_out = self._left_out(self.start_frame, end.frame)
        if self.first_speech is not None:
            silence = max(self.longest_closed, self._silence(end.frame))
        else:
            silence = end.frame - self.start_frame - left_out
        return Turn(
            who=self.step.who_name if self.step.who in ("a", "b") else self.step.who,
            planned_s=self.step.for_s,
            start_s=self.start_frame / rate,
            end_s=end.frame / rate,
            talk_s=self.talk_frames / rate,
            first_speech_s=None if self.first_speech is None else (self.first_speech - self.start_frame) / rate,
            longest_silence_s=silence / rate,
            overrun_s=max(0, end.frame - planned_end) / rate,
            ended_by=end.ended_by,
            interruptions=self.interruptions,
            paused_s=left_out / rate,
        )
