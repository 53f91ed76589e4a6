"""Run a session on the output frame clock: place each step's clips, listen, obey controls.

Two clocks, both in frames:
- the output clock counts every frame handed to the audio device (or file);
- the session clock counts frames of the exercise itself and stands still while paused.
Clips live on the session clock; feedback sounds (pause, skip) on the output clock.
Decisions are made here, between blocks, never in the audio callback, and a step
ends at a frame, never after a sleep, so a long session cannot drift.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from voice_guide.errors import AudioDeviceError
from voice_guide.live.audio import AudioIO, DeviceLost, MicBlock
from voice_guide.live.gates import ClapGate, Scheduler, SpeechGate
from voice_guide.live.mic import MicHealth, MicRecorder
from voice_guide.live.records import (
    PAUSED_NOTE,
    RESUMED_NOTE,
    Command,
    Heard,
    LoggedEvent,
    Observer,
    SessionEnd,
    SessionOptions,
    SessionResult,
    StepRecord,
)
from voice_guide.live.turns import End, Remind, Turn, TurnTracker
from voice_guide.script import Listen, Step, step_kind, step_label
from voice_guide.sound.levels import Samples, rms_dbfs
from voice_guide.sound.timeline import AheadBank, ClipBank, Event, Mixer, place_step, remind_event, s_to_frames

log = logging.getLogger(__name__)

VAD_FRAME_S = 0.01
# Pause and resume fade rather than cut, so nobody is startled.
FADE_S = 0.03
# Talking over the other partner for this long counts as an interruption.
INTERRUPTION_S = 1.0
# Session time with no microphone block at all after which a turn keeps its time without
# the mic: a capture that stalls while the output plays on must not hold a turn open. (A
# capture that drops frames still sends blocks; its decisions only lag, and are waited for,
# and a gap of MIC_GAP_S or more in their stamps is moved over.)
MIC_LATE_S = 2.0
# A mic block stamped this much past where the last one ended follows frames the capture
# lost; the count of mic frames is moved up to it, so what comes after keeps its true time.
MIC_GAP_S = 0.2
# On quit the feedback sound is faded out over this, so q ends at once.
QUIT_TICK_S = 0.05
# The feedback sound each command makes, so eyes-closed partners know what happened.
FEEDBACK_CUE = {"pause": "pause", "resume": "resume", "skip": "soft", "back": "soft", "quit": "soft"}
# A lost sound device is tried again this often, for this long, before the session ends
# (VOICE_GUIDE_REOPEN_S shortens the wait for tests of the giving-up path).
REOPEN_EVERY_S = 0.5
REOPEN_FOR_S = float(os.environ.get("VOICE_GUIDE_REOPEN_S", "60"))
# Said softly at the start of a listen turn while the microphone cannot be listened to.
MIC_LINES = {
    "silent": "I can't hear the microphone; this turn will run its full time.",
    "clipping": "The microphone is too loud to listen to; this turn will run its full time.",
}
MIC_LINE_GAIN = 0.5


class _Clock:
    """Maps session frames to output frames across pauses."""

    def __init__(self) -> None:
        self.out = 0
        self.session = 0
        self._offsets: list[tuple[int, int]] = [(0, 0)]  # (session frame, output - session from there)

    def advance(self, n: int, running: bool) -> None:
        self.out += n
        if running:
            self.session += n
        elif self._offsets[-1][0] == self.session:
            self._offsets[-1] = (self.session, self.out - self.session)
        else:
            self._offsets.append((self.session, self.out - self.session))

    def to_out(self, session_frame: int) -> int:
        offset = 0
        for start, value in self._offsets:
            if start > session_frame:
                break
            offset = value
        return session_frame + offset

    def to_session(self, out_frame: int) -> int:
        return out_frame - (self.out - self.session)


class Session:
    """Plays expanded steps through an AudioIO, making every decision on the frame clock."""

    def __init__(
        self,
        steps: Sequence[Step],
        bank: ClipBank,
        io: AudioIO,
        observer: Observer,
        gate_factory: Callable[[], SpeechGate] | None = None,
        claps: ClapGate | None = None,
        options: SessionOptions = SessionOptions(),
        commands: Callable[[], list[Command]] = lambda: [],
        closing: Callable[[SessionResult], str | None] | None = None,
        record_to: Path | None = None,
        preroll_frames: int = 0,
        preroll_text: str | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.steps = list(steps)
        # Apart mode: another device shares the timeline; None plays the steps back to back.
        self.scheduler = scheduler
        self.bank = bank
        self.io = io
        self.observer = observer
        self.options = options
        self.commands = commands
        self.closing = closing
        self.preroll_frames = preroll_frames
        self.preroll_text = preroll_text
        # Microphone audio reaches disk only when the user asked for it (--record).
        self._recorder = (
            MicRecorder(record_to, bank.sample_rate_hz, io.input_channels) if record_to and io.input_channels else None
        )
        self.rate = bank.sample_rate_hz
        self.block = s_to_frames(VAD_FRAME_S, self.rate)
        self.mic = io.input_channels > 0 and gate_factory is not None
        self._gates: dict[str, SpeechGate] = {}
        if self.mic and gate_factory is not None:
            channels = options.mic_channels or {"mic": 0}
            self._gates = {who: gate_factory() for who in channels}
        self.claps = claps if self.mic else None
        self.clock = _Clock()
        self.mixer = Mixer()
        self.feedback = Mixer()
        self.paused = False
        # True while the sound device is lost and being opened again (the panel shows it).
        self.device_lost = False
        self._fade: Literal["in", "out"] | None = None
        self._log: list[LoggedEvent] = []
        self._records: list[StepRecord] = []
        self._speaking: dict[str, bool] = {who: False for who in self._gates}
        self._overlap_frames = 0
        self._mic_origin: int | None = None
        self._mic_health = MicHealth(self.rate)
        # Whether the present spell of an unusable microphone has been said aloud yet.
        self._mic_announced = False
        self._mic_file_ended = False
        # After a lost device comes back, mic stamps jump over the output that was lost.
        self._mic_realign = False
        # The output frame the last mic block ended at, to see a gap in the capture.
        self._mic_next: int | None = None
        self._tracker: TurnTracker | None = None
        self._vad_frames = 0
        # What had happened when run() was interrupted (Ctrl-C, a device failure): saved, then re-raised.
        self.result_so_far: SessionResult | None = None
        self._interruption_frames = s_to_frames(INTERRUPTION_S, self.rate) // self.block * self.block
        self._mic_late_frames = s_to_frames(MIC_LATE_S, self.rate)
        self._mic_block_at = 0  # the session frame when the last microphone block came

    # ---------------------------------------------------------------- the loop

    def run(self) -> SessionResult:
        """Play every step; return what happened. Ctrl-C propagates after the partial result is kept."""
        self.io.start()
        ended_by: SessionEnd = "complete"
        try:
            self._preroll()
            index = 0
            while index < len(self.steps):
                outcome = self._play_step(index)
                if outcome == "quit":
                    ended_by = "quit"
                    break
                index = max(0, index - 1) if outcome == "back" else index + 1
            if ended_by == "complete" and self._wait_for_start(len(self.steps)) == "quit":
                ended_by = "quit"
            if ended_by == "complete" and self.closing is not None:
                self._say_closing(self.closing(self._result(ended_by)))
            if ended_by == "quit":
                # Quit at once: the soft cue's onset, faded, not its 1.8 s ring (which made q take 2.3 s),
                # played next rather than after the lead of session audio already queued.
                self.feedback.cut(self.clock.out, s_to_frames(QUIT_TICK_S, self.rate))
                self.io.drop_queued()
            self._pump_feedback()
            self.io.finish()
        except BaseException:
            self.io.abort()
            self.result_so_far = self._result("quit")
            raise
        finally:
            if self._recorder is not None:
                self._recorder.close()
        return self._result(ended_by)

    def _preroll(self) -> None:
        """Play `preroll_frames` before the first step (a countdown for --start-at), exact to the frame."""
        if self.preroll_text:
            clip = self.bank.speech(self.preroll_text)
            self.mixer.add(Event("say", -1, 0, len(clip), clip, text=self.preroll_text))
        while self.clock.session < self.preroll_frames:
            self._pump(min(self.block, self.preroll_frames - self.clock.session))

    def _say_closing(self, text: str | None) -> None:
        """Speak one closing line after the last step (not part of the exercise's steps)."""
        if not text:
            return
        clip = self.bank.speech(text)
        self.mixer.add(Event("say", len(self.steps), self.clock.session, len(clip), clip, text=text))
        end = self.clock.session + len(clip)
        while self.clock.session < end:
            self._pump(min(self.block, end - self.clock.session))

    @property
    def threshold_dbfs(self) -> float | None:
        """Return the lowest level (dBFS) at which any partner's detector would hear talk now; None without a mic."""
        return min((gate.threshold_dbfs for gate in self._gates.values()), default=None)

    def _result(self, ended_by: SessionEnd) -> SessionResult:
        return SessionResult(
            ended_by,
            tuple(self._records),
            tuple(self._log),
            self.clock.out / self.rate,
            self.io.stats.underruns,
            self.io.stats.overruns,
            self.mic,
            self.io.stats.drift_ppm,
        )

    def _wait_for_start(self, index: int) -> str:
        """Apart mode: play silence until the scheduler's start frame for step `index`; return "quit" or "go"."""
        if self.scheduler is None:
            return "go"
        step = self.steps[index] if index < len(self.steps) else None
        while True:
            command = self._next_command()
            if command == "quit":
                return "quit"
            target = None if self.paused else self.scheduler.step_start(index, step, self.clock.out)
            if target is not None and target <= self.clock.out:
                return "go"
            n = self.block if target is None else min(self.block, target - self.clock.out)
            self.report(self._pump(n))

    def report(self, heard: list[Heard]) -> list[Heard]:
        """Apart mode: let the scheduler see this device's own verdicts; return them."""
        if self.scheduler is not None and heard:
            self.scheduler.report(heard)
        return heard

    def _wait_for_clips(self, step: Step) -> str:
        """Play silence at this step boundary while speech made in the background is behind; "quit" or "go"."""
        bank = self.bank
        while isinstance(bank, AheadBank) and not bank.ready(step):
            if self._next_command() == "quit":
                return "quit"
            self.report(self._pump(self.block))
        return "go"

    def _play_step(self, index: int) -> str:
        step = self.steps[index]
        if self._wait_for_start(index) == "quit" or self._wait_for_clips(step) == "quit":
            return "quit"
        scheduler = self.scheduler
        start = self.clock.session
        events, length = place_step(step, index, start, self.bank)
        remote = isinstance(step, Listen) and scheduler is not None and scheduler.hears(step.who)
        tracker = TurnTracker(step, start, self.rate, mic=self.mic or remote) if isinstance(step, Listen) else None
        # Apart mode: on the joining device the host's decision ends a listen step.
        decides = tracker is None or scheduler is None or scheduler.decides_turn(tracker.step)
        self._tracker = tracker
        if tracker is not None:
            # A live turn plays its remind tick when the tracker says, not at a fixed place.
            events = [e for e in events if e.name != "remind"]
        self.mixer.forget_before(start)
        self.feedback.forget_before(self.clock.out)
        for event in events:
            self.mixer.add(event)
        if tracker is not None and self.mic:
            self._say_mic_line(index, start)
        self.observer.step_started(index, len(self.steps), step, self.clock.to_out(start) / self.rate)
        end = start + length if tracker is None else None
        if scheduler is not None:
            scheduler.step_placed(
                index, step, self.clock.to_out(start), None if end is None else self.clock.to_out(end)
            )
        outcome = "done"
        while end is None or self.clock.session < end or self.paused:
            command = self._next_command()
            if command is not None:
                end, outcome = self._cut(tracker, command), command
                break
            limit = end if end is not None else (tracker.deadline if tracker is not None else None)
            n = self.block
            if limit is not None and limit > self.clock.session and not self.paused:
                n = min(n, limit - self.clock.session)
            heard = self.report(self._pump(n))
            if tracker is None:
                continue
            if not self.mic:
                heard = [Heard(self.clock.session, {}, {})]
            late = self.clock.session - self._mic_late_frames
            if self.mic and decides and self._mic_block_at < late and late > tracker.last_frame:
                # The capture stalled while the output plays on: no decision would ever reach the
                # turn's end. Until blocks come again the turn hears nobody, by the session clock.
                heard = [*heard, Heard(late, {}, {})]
            if scheduler is not None:
                heard = [scheduler.merge(verdict) for verdict in heard]
            for verdict in heard:
                self._feed_turn(tracker, index, verdict)
            if not decides and scheduler is not None:
                told = scheduler.turn_end(index)
                if told is not None and not self.paused:
                    end = max(self.clock.session, self.clock.to_session(told))
            elif tracker.ended is not None:
                end = max(self.clock.session, tracker.ended.frame)
        if not decides and tracker is not None and outcome == "done" and end is not None:
            # Ended elsewhere: keep this device's own reason (its mic heard the same talk), but that end.
            tracker.ended = End(end, tracker.ended.ended_by if tracker.ended is not None else "time")
        turn = tracker.record() if tracker is not None else None
        self._finish_step(index, step, events, start, end, turn, outcome != "done")
        return outcome

    def _cut(self, tracker: TurnTracker | None, command: Command) -> int:
        """Stop the current step now (skip, back, quit); return the frame it ends at."""
        stop = self.clock.session
        self.mixer.cut(stop, s_to_frames(FADE_S, self.rate))
        if tracker is not None:
            tracker.stop(stop, "quit" if command == "quit" else "skip")
        return stop

    def _feed_turn(self, tracker: TurnTracker, index: int, heard: Heard) -> None:
        channels = self.options.mic_channels
        step = tracker.step
        if channels and step.who in ("a", "b"):
            own = heard.speaking.get(step.who, False)
            quiet_since = heard.quiet_since.get(step.who)
            talk_since = heard.talk_since.get(step.who)
            other = heard.speaking.get("b" if step.who == "a" else "a", False)
            # Count each stretch of talking-over once, when it reaches INTERRUPTION_S.
            self._overlap_frames = self._overlap_frames + self.block if other else 0
            if self._overlap_frames == self._interruption_frames:
                tracker.count_interruption()
        else:
            own = any(heard.speaking.values())
            quiet = [q for q in heard.quiet_since.values() if q is not None]
            quiet_since = max(quiet) if quiet else None
            began = [heard.talk_since.get(w) for w, on in heard.speaking.items() if on]
            talk_since = min((b for b in began if b is not None), default=None)
        for action in tracker.update(heard.frame, own, quiet_since, talk_since):
            if isinstance(action, Remind):
                self.mixer.add(remind_event(index, self.clock.session, self.bank))

    # ---------------------------------------------------------------- blocks

    def _pump(self, n_frames: int) -> list[Heard]:
        """Send one block out; return speech decisions (session frame, who is speaking)."""
        while True:
            out, running = self._next_block(n_frames)
            try:
                mic = self.io.exchange(out)
                break
            except DeviceLost as lost:
                # Neither clock moved: the block is made again (with the resume cue) once it is back.
                self._recover(lost)
        self.clock.advance(n_frames, running)
        if mic:
            self._mic_block_at = self.clock.session
        return self._listen(mic) if self._gates else []

    def _next_block(self, n_frames: int) -> tuple[Samples, bool]:
        """Mix the next output block; return it and whether it moves the session clock."""
        running = not self.paused
        out = (
            self.mixer.mix(self.clock.session, n_frames)
            if running or self._fade == "out"
            else np.zeros(n_frames, np.float32)
        )
        if self._fade is not None:
            ramp = np.linspace(0.0, 1.0, n_frames, dtype=np.float32)
            out *= ramp if self._fade == "in" else ramp[::-1]
            if self._fade == "out":
                running = True  # the fading block still belongs to the session
            self._fade = None
        out = out + self.feedback.mix(self.clock.out, n_frames)
        np.clip(out, -1.0, 1.0, out=out)
        return out, running

    def _pump_feedback(self) -> None:
        """Let a last feedback sound (e.g. after quit) play out."""
        while self.feedback.sounding(self.clock.out, 1):
            try:
                self.io.exchange(self.feedback.mix(self.clock.out, self.block))
            except DeviceLost as lost:
                self._recover(lost)
                continue
            self.clock.advance(self.block, False)

    def _recover(self, lost: DeviceLost) -> None:
        """Stand still on both clocks while the device is gone; reopen it, or end after REOPEN_FOR_S.

        No block is pumped while waiting, so the step and its turn resume where they were
        (less the output that was queued in the lost device), fading in under the resume cue.
        """
        self.observer.note(f"paused: device lost ({lost.message}); trying to open it again")
        log.info("sound device lost: %s", lost.one_line())
        began = time.monotonic()
        self.device_lost = True
        while not self.io.reopen():
            if time.monotonic() - began >= REOPEN_FOR_S:
                raise AudioDeviceError(
                    f"{lost.message}, and it did not come back within {REOPEN_FOR_S:.0f} s", lost.hint
                ) from None
            time.sleep(REOPEN_EVERY_S)
        self.device_lost = False
        waited_s = time.monotonic() - began
        log.info("sound device back after %.1f s", waited_s)
        self.observer.note(f"resumed: the sound device is back after {waited_s:.1f} s")
        self._mic_realign = True
        self._feedback("resume")
        if not self.paused:
            self._fade = "in"

    def _listen(self, blocks: list[MicBlock]) -> list[Heard]:
        """Run the detectors over new mic blocks; return their verdict per 10 ms frame."""
        decisions: list[Heard] = []
        for block in blocks:
            if self._recorder is not None:
                self._recorder.write(block.samples)
            self._watch_mic(block)
            gap = 0 if self._mic_next is None else block.start_frame - self._mic_next
            if self._mic_origin is None:
                self._mic_origin = block.start_frame
            elif self._mic_realign or gap > MIC_GAP_S * self.rate:
                # Mic frames are counted as they arrive; those lost (with the device, or by
                # a capture that overflowed) never came, and the time they took goes on.
                self._mic_origin = block.start_frame - self._vad_frames * self.block
            self._mic_realign = False
            self._mic_next = block.start_frame + len(block.samples)
            if self.claps is not None and self.claps.push(block.samples.mean(axis=1)).any():
                self._double_clap()
            ignore = self._guide_mask(block)
            per_who = {
                who: gate.push(block.samples[:, self.options.mic_channels.get(who, 0)], ignore)
                for who, gate in self._gates.items()
            }
            count = min(len(v) for v in per_who.values())
            first = self._vad_frames
            for k in range(count):
                # Mic blocks arrive back to back, so the n-th 10 ms frame ends n frames after the first block.
                self._vad_frames += 1
                quiet: dict[str, int | None] = {}
                since: dict[str, int | None] = {}
                for who, gate in self._gates.items():
                    voiced = gate.last_voiced_frame
                    quiet[who] = self._to_session_frame(voiced + 1) if 0 <= voiced < first + k else None
                    began = gate.speech_start_frame
                    since[who] = self._to_session_frame(began) if began is not None else None
                if self._mic_health.problem is not None:
                    # An unusable microphone hears nobody (clipping would look like endless talk).
                    per_who = {w: np.zeros_like(v) for w, v in per_who.items()}
                    quiet = dict.fromkeys(quiet)
                    since = dict.fromkeys(since)
                speaking = {w: bool(v[k]) for w, v in per_who.items()}
                decisions.append(Heard(self._to_session_frame(self._vad_frames), speaking, quiet, since))
            if count:
                self._speaking = dict(decisions[-1].speaking)
                self.observer.heard(rms_dbfs(block.samples), self._speaking)
        return decisions

    def _watch_mic(self, block: MicBlock) -> None:
        """Keep the microphone's health up to date; say on screen when it changes."""
        if block.past_end:
            # The end of a --mic-file is silence, not a dead microphone.
            if not self._mic_file_ended:
                self._mic_file_ended = True
                log.info("the mic file ended at %.1f s; silence from there", block.start_frame / self.rate)
            return
        if not self._mic_health.check(block.samples):
            return
        health = self._mic_health
        if health.problem is not None:
            self.observer.note(f"{health.describe()}; turns run their full time until it is heard again")
            return
        self.observer.note("the microphone is heard again; listening")
        if self._mic_announced:
            self._feedback("resume")
        self._mic_announced = False

    def _say_mic_line(self, index: int, start: int) -> None:
        """Say softly, once per spell, that this turn cannot be listened to."""
        problem = self._mic_health.problem
        if problem is None or self._mic_announced:
            return
        self._mic_announced = True
        text = MIC_LINES[problem]
        clip = self.bank.speech(text) * np.float32(MIC_LINE_GAIN)
        self.mixer.add(Event("say", index, start, len(clip), clip, text=text))

    def _to_session_frame(self, vad_frames: int) -> int:
        """Return the session frame where the given count of 10 ms mic frames ends."""
        assert self._mic_origin is not None
        return self.clock.to_session(self._mic_origin + vad_frames * self.block)

    def _guide_mask(self, block: MicBlock) -> bool | npt.NDArray[np.bool_]:
        """Mark the mic samples heard while the guide itself was sounding (speakers mode) or paused."""
        if self.paused:
            return True
        if self.options.headphones:
            return False
        mask = np.zeros(len(block.samples), dtype=bool)
        start = self.clock.to_session(block.start_frame)
        for at in range(0, len(mask), self.block):
            mask[at : at + self.block] = self.mixer.sounding(start + at, self.block)
        return mask

    # ---------------------------------------------------------------- controls

    def _next_command(self) -> Command | None:
        for command in self.commands():
            if command == "pause":
                self._toggle_pause()
                continue
            self._feedback(command)
            return command
        return None

    def _double_clap(self) -> None:
        """Pause or resume on a double clap; the claps that paused are neither talk nor silence."""
        if not self.paused and self.claps is not None and self._mic_origin is not None:
            onset = self.claps.pair_start_frame
            for gate in self._gates.values():
                gate.cut(onset)
            if self._tracker is not None:
                self._tracker.exclude(self._to_session_frame(onset), self.clock.session)
        self._toggle_pause()

    def _toggle_pause(self) -> None:
        self.paused = not self.paused
        self._fade = "out" if self.paused else "in"
        self._feedback("pause" if self.paused else "resume")
        # Alone, space or a double clap resumes; in apart mode the link does.
        hint = " (space or a double clap resumes)" if self.scheduler is None else ""
        self.observer.note(PAUSED_NOTE + hint if self.paused else RESUMED_NOTE)

    def _feedback(self, command: str) -> None:
        cue = self.bank.cue(FEEDBACK_CUE[command])
        self.feedback.add(Event("chime", -1, self.clock.out, len(cue), cue, name=FEEDBACK_CUE[command]))

    # ---------------------------------------------------------------- records

    def _finish_step(
        self, index: int, step: Step, events: list[Event], start: int, end: int, turn: Turn | None, cut: bool
    ) -> None:
        to_s = self.rate
        out_start, out_end = self.clock.to_out(start) / to_s, self.clock.to_out(end) / to_s
        if turn is not None:
            turn = _on_output(turn, self.clock, self.rate)
        for event in events:
            ev_end = min(event.end_frame, end) if cut or event.kind == "listen" else event.end_frame
            # The log keeps when and what, not the samples: a long session must not hold its audio.
            self._log.append(
                LoggedEvent(
                    replace(event, samples=None),
                    self.clock.to_out(event.start_frame) / to_s,
                    self.clock.to_out(ev_end) / to_s,
                    turn if event.kind == "listen" else None,
                )
            )
        record = StepRecord(index, step_kind(step), step_label(step), out_start, out_end, turn, cut)
        self._records.append(record)
        self.observer.step_finished(record)


def _on_output(turn: Turn, clock: _Clock, rate: int) -> Turn:
    """Move a turn's start and end from the session clock to the output timeline."""
    start_s = clock.to_out(round(turn.start_s * rate)) / rate
    end_s = clock.to_out(round(turn.end_s * rate)) / rate
    # Time paused adds to the time the turn left out (the claps that paused it).
    paused_s = turn.paused_s + (end_s - start_s) - (turn.end_s - turn.start_s)
    return replace(turn, start_s=start_s, end_s=end_s, paused_s=paused_s)
