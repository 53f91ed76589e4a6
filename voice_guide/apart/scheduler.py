"""Apart mode: one session for two partners on two devices, in step over a link.

The host's device decides when each step starts and tells the joining device over
`link` (at host-clock times, at least LEAD_S ahead); each device renders its own speech
and maps those times onto its own output frame clock, so the same cue sounds on both
within a few milliseconds. By convention partner "a" is at the host's device and
partner "b" at the joiner's: a listen turn for b ends on the joiner's microphone (its
speech/silence changes stream to the host), and talking over the other partner's turn
from either device counts as an interruption.

The link speaks asyncio; the session runs on the frame clock in the main thread. A
`LinkThread` runs the link's event loop in a background thread, and the schedulers
below read what arrived between blocks from thread-safe inboxes, never waiting on the
network or on the link's loop (a loop busy with a flood cannot hold a step back).

Faults: when the link drops, both devices pause (the soft pause cue) and resume when
it is restored; if it is not restored within the link's reconnect window the session
ends, is saved, and LinkLost is raised. If one side quits, the other ends cleanly.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from voice_guide.apart.link import Host, Joiner, LinkError, Speech, StepStart
from voice_guide.apart.linkthread import LinkThread
from voice_guide.live.records import Command, Heard
from voice_guide.script import Listen, Names, Script, Step, expand, parse, parse_overrides

log = logging.getLogger(__name__)

# A step that starts after a decision is announced this far ahead: the link's 300 ms
# minimum plus room for the joiner's queued output (up to SoundDeviceIO's lead).
LEAD_S = 0.6
# The first step starts this long after both devices are ready: room for a device whose first
# blocks are slow (a busy machine), which would otherwise start the whole session late.
FIRST_LEAD_S = 2.0
# The partner at the joining device (by convention) and at the hosting one.
JOINER_WHO = "b"
HOST_WHO = "a"


class TimedIO(Protocol):
    """An AudioIO that can map the monotonic clock onto its output frames."""

    def time_of_frame(self, frame: int) -> float | None: ...

    def frame_at_time(self, t_s: float) -> int | None: ...


class SessionClock(Protocol):
    """The session's map between session and output frames."""

    def to_out(self, session_frame: int) -> int: ...

    def to_session(self, out_frame: int) -> int: ...


# ---------------------------------------------------------------- the host's setup message


@dataclass(frozen=True)
class Setup:
    """What the host sends the joiner so it needs no copy of the script: its text and the settings."""

    script_id: str
    script_text: str
    a: str
    b: str
    sets: tuple[str, ...]
    voice: str | None
    rate_wpm: int
    sample_rate_hz: int

    def as_dict(self) -> dict[str, object]:
        """Return the setup as the link's hello carries it."""
        return {
            "id": self.script_id,
            "script": self.script_text,
            "a": self.a,
            "b": self.b,
            "set": list(self.sets),
            "voice": self.voice,
            "rate": self.rate_wpm,
            "sample_rate": self.sample_rate_hz,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> Setup:
        """Read a setup received from the host; raise LinkError if it is not one."""

        def text(name: str) -> str:
            value = raw[name]
            if not isinstance(value, str):
                raise TypeError(name)
            return value

        def whole(name: str) -> int:
            value = raw[name]
            if type(value) is not int:
                raise TypeError(name)
            return value

        try:
            sets = raw.get("set") or []
            voice = raw.get("voice")
            if not isinstance(sets, list) or not all(isinstance(s, str) for s in sets):
                raise TypeError("set")
            if voice is not None and not isinstance(voice, str):
                raise TypeError("voice")
            setup = cls(
                text("id"),
                text("script"),
                text("a"),
                text("b"),
                tuple(sets),
                voice,
                whole("rate"),
                whole("sample_rate"),
            )
        except (KeyError, TypeError) as exc:
            raise LinkError(
                "the host sent a setup this version cannot read",
                hint="install the same voice-guide version on both devices",
            ) from exc
        # The id only names the script in messages ("<host>/ID.yaml"); it must not look like a path.
        if not 0 < len(setup.script_id) <= 200 or any(c in setup.script_id for c in "/\\\0"):
            raise LinkError(
                "the host sent a bad script id", hint="install the same voice-guide version on both devices"
            )
        return setup

    def plan(self) -> tuple[Script, tuple[Step, ...]]:
        """Parse the script text and expand it exactly as the host did."""
        script = parse(self.script_text.encode("utf-8"), Path(f"<host>/{self.script_id}.yaml"))
        return script, expand(script, Names(a=self.a, b=self.b), parse_overrides(self.sets, script))


# ---------------------------------------------------------------- schedulers


class _Base:
    """What both ends share: the IO's time map, the session's clock, link events as commands."""

    def __init__(self, link: LinkThread, io: TimedIO, note: Callable[[str], None]) -> None:
        self.link = link
        self.io = io
        self.note = note
        self.clock: SessionClock | None = None  # set once the session exists
        self.paused_by_link = False
        self.ended: str | None = None  # "lost" or "peer_quit" once the link ended
        self.finished = False  # the session reached its end

    def attach(self, clock: SessionClock) -> None:
        """Give the scheduler the session's clock (session and output frames)."""
        self.clock = clock

    def _ended_by(self) -> str | None:
        raise NotImplementedError

    def _forget(self) -> None:
        raise NotImplementedError

    def commands(self, keys: Callable[[], list[Command]]) -> Callable[[], list[Command]]:
        """Return a command source: quit from the keys (pause, skip and back are not shared), link faults."""

        def poll() -> list[Command]:
            out: list[Command] = [c for c in keys() if c == "quit"]
            while True:
                try:
                    event = self.link.events.get_nowait()
                except queue.Empty:
                    break
                if event == "lost":
                    # Each device pauses when it notices, not at one moment: forget every announced
                    # start, so the host decides the next step afresh and both meet there again.
                    self._forget()
                if event == "lost" and not self.paused_by_link:
                    self.paused_by_link = True
                    self.note("lost the link to your partner's device; paused while it reconnects")
                    out.append("pause")
                elif event == "restored" and self.paused_by_link:
                    self.paused_by_link = False
                    self.note("the link is back; resuming")
                    out.append("pause")
            ended = self._ended_by()
            if ended is not None and self.ended is None and not self.finished:
                self.ended = ended
                self.note(
                    "your partner ended the session"
                    if ended == "peer_quit"
                    else "the link to your partner's device is lost; ending the session"
                )
                out.append("quit")
            return out

        return poll

    def step_placed(self, index: int, step: Step, start_out: int, end_out: int | None) -> None:
        """Nothing by default."""

    def decides_turn(self, step: Listen) -> bool:
        return True

    def turn_end(self, index: int) -> int | None:
        return None

    def hears(self, who: str) -> bool:
        return False

    def report(self, heard: list[Heard]) -> None:
        """Nothing by default."""

    def merge(self, heard: Heard) -> Heard:
        return heard


class HostScheduler(_Base):
    """The host decides: each step's start at host time, announced to the joiner ahead of it.

    `clips_ready(index)` says whether this device's speech for step `index` is made (speech
    made in the background), and the joiner tells for how many steps its own is: a step is
    announced only once both have it, so when synthesis falls behind on either device both
    hold at the same step boundary instead of one starting late.
    """

    def __init__(
        self,
        link: LinkThread,
        host: Host,
        io: TimedIO,
        total_steps: int,
        note: Callable[[str], None],
        clips_ready: Callable[[int], bool] | None = None,
    ) -> None:
        super().__init__(link, io, note)
        self.host = host
        self.total = total_steps
        self.clips_ready = clips_ready
        self.announced: dict[int, int] = {}  # step index -> output frame
        self.ready = False
        self._waiting_noted = False
        self._speaking = False
        self._quiet_since: int | None = None
        self._talk_since: int | None = None

    def _ended_by(self) -> str | None:
        ended = self.host.ended_by
        return None if ended in (None, "quit") else ended

    def _forget(self) -> None:
        self.announced.clear()

    def _announce(self, index: int, out_frame: int) -> None:
        at_s = self.io.time_of_frame(out_frame)
        if at_s is None or index > self.total:
            return
        self.announced[index] = out_frame
        self.link.submit(self.host.send_step(index, at_s))

    def _joiner_ready(self) -> bool:
        # The joiner says it is ready (speech prepared, output running); read without waiting on the link.
        if not self.ready:
            self.ready = self.host.ready
            if not self.ready and not self._waiting_noted:
                self._waiting_noted = True
                self.note("waiting for your partner's device to get ready")
        return self.ready

    def step_start(self, index: int, step: Step | None, earliest_out: int) -> int | None:
        """Return the announced start, or decide one now (LEAD_S ahead) and announce it."""
        if index >= self.total:
            self.finished = True
        known = self.announced.get(index)
        if known is not None and known >= earliest_out:
            return known
        if not self._joiner_ready() or not self._clips_ready(index):
            return None
        lead_s = FIRST_LEAD_S if index == 0 else LEAD_S
        soonest = self.io.frame_at_time(time.monotonic() + lead_s)
        if soonest is None:
            return None
        target = max(earliest_out, soonest)
        self._announce(index, target)
        return target

    def step_placed(self, index: int, step: Step, start_out: int, end_out: int | None) -> None:
        """A step whose end is known: announce the next one now, so there is no gap (if its speech is made)."""
        if end_out is not None and self._clips_ready(index + 1):
            self._announce(index + 1, end_out)

    def _clips_ready(self, index: int) -> bool:
        """Return whether both devices have step `index`'s speech made (a joiner that never said has it all)."""
        if index >= self.total:
            return True
        made = self.host.partner_made
        return (self.clips_ready is None or self.clips_ready(index)) and (made is None or made > index)

    def hears(self, who: str) -> bool:
        return who == JOINER_WHO

    def merge(self, heard: Heard) -> Heard:
        """Add the joiner's partner, as their device last told, to a verdict."""
        if self.clock is not None:
            speeches: list[Speech] = self.host.speech.drain()
            for speech in speeches:
                self._speaking = speech.speaking
                out = self.io.frame_at_time(speech.at_host_s)
                at = None if out is None else self.clock.to_session(out)
                # Where the talk began and where it last sounded, as the joiner heard it: the
                # change itself arrives later (the detector confirms talk after hearing some of it).
                if speech.speaking:
                    self._talk_since = at
                else:
                    self._quiet_since = at
        return Heard(
            heard.frame,
            {**heard.speaking, JOINER_WHO: self._speaking},
            {**heard.quiet_since, JOINER_WHO: None if self._speaking else self._quiet_since},
            {**heard.talk_since, JOINER_WHO: self._talk_since if self._speaking else None},
        )


class JoinScheduler(_Base):
    """The joiner follows: each step starts at the host's time, mapped onto this device's output clock.

    `steps_made()` counts the leading steps whose speech is made here (speech made in the
    background); it is told to the host before this device says it is ready, which it
    does once the first step's speech is made. Later counts go with `tell_made`.
    """

    def __init__(
        self,
        link: LinkThread,
        joiner: Joiner,
        io: TimedIO,
        total_steps: int,
        note: Callable[[str], None],
        sample_rate_hz: int,
        steps_made: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(link, io, note)
        self.joiner = joiner
        self.steps_made = steps_made
        self.rate = sample_rate_hz
        self.total = total_steps
        self.starts: dict[int, float] = {}  # step index -> local monotonic seconds
        self._said_ready = False
        self._late_noted = False
        self._speaking = False

    def _ended_by(self) -> str | None:
        ended = self.joiner.ended_by
        return None if ended in (None, "quit") else ended

    def _forget(self) -> None:
        self._take_steps()
        self.starts.clear()

    def _take_steps(self) -> None:
        steps: list[StepStart] = self.joiner.steps.drain()
        for step in steps:
            self.starts[step.index] = step.at_local_s  # a later word on the same step wins

    def _frame_of(self, index: int) -> int | None:
        self._take_steps()
        at_s = self.starts.get(index)
        return None if at_s is None else self.io.frame_at_time(at_s)

    def step_start(self, index: int, step: Step | None, earliest_out: int) -> int | None:
        """Return the output frame the host set for step `index`; None until it has said."""
        if not self._said_ready and self.io.time_of_frame(0) is not None:
            made = None if self.steps_made is None else self.steps_made()
            if made is None or made > 0:
                self._said_ready = True
                if made is not None:
                    self.link.submit(self.joiner.send_made(made))
                self.link.submit(self.joiner.send_ready())
        target = self._frame_of(index)
        if target is None:
            return None
        if index >= self.total:
            self.finished = True
        # A frame or two of rounding is not late; a block (10 ms) is.
        if earliest_out - target > self.rate // 100 and not self._late_noted:
            self._late_noted = True
            self.note(
                f"step {index + 1} started {(earliest_out - target) / self.rate * 1000:.0f} ms late here "
                "(slow network?)"
            )
        return max(target, earliest_out)

    def tell_made(self) -> None:
        """Tell the host how many steps' speech is made here now (safe from any thread)."""
        if self.steps_made is not None:
            self.link.submit(self.joiner.send_made(self.steps_made()))

    def decides_turn(self, step: Listen) -> bool:
        return False

    def turn_end(self, index: int) -> int | None:
        return self._frame_of(index + 1)

    def report(self, heard: list[Heard]) -> None:
        """Tell the host when this device's partner starts or stops talking."""
        if self.clock is None:
            return
        for verdict in heard:
            speaking = bool(verdict.speaking.get(JOINER_WHO, False))
            if speaking == self._speaking:
                continue
            self._speaking = speaking
            frame = verdict.frame
            quiet = verdict.quiet_since.get(JOINER_WHO)
            began = verdict.talk_since.get(JOINER_WHO)
            if not speaking and quiet is not None:
                frame = quiet
            elif speaking and began is not None:
                frame = began  # talk is confirmed after some of it was heard: say where it began
            at_s = self.io.time_of_frame(self.clock.to_out(frame))
            if at_s is not None:
                self.link.submit(self.joiner.send_speech(speaking, at_s))
