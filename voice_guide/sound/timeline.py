"""Place a script's steps on one frame clock; pure (no audio, no engine, no clock).

The same placement drives `show` (with estimated speech lengths), `render` and the
live player (with the real clip lengths).
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from voice_guide.script import Breathe, Chime, Listen, Pause, Say, Step
from voice_guide.script.durations import number_words
from voice_guide.sound.levels import Samples

DEFAULT_RATE_HZ = 48_000
# Quiet after each spoken prompt so a sentence can land before the next thing starts.
SPEECH_GAP_S = 0.6
# Used by estimates only: espeak-ng at 150 words a minute plus the sentence pause.
ESTIMATE_CUE_S = 2.0

LengthFn = Callable[[Step], int]


def s_to_frames(seconds: float, sample_rate_hz: int) -> int:
    """Convert seconds to a whole number of frames (nearest)."""
    return round(seconds * sample_rate_hz)


def frames_to_s(frames: int, sample_rate_hz: int) -> float:
    """Convert frames to seconds."""
    return frames / sample_rate_hz


@dataclass(frozen=True)
class Placed:
    """One step at its place on the timeline."""

    index: int
    step: Step
    start_frame: int
    length_frames: int

    @property
    def end_frame(self) -> int:
        """Return the first frame after the step."""
        return self.start_frame + self.length_frames


def place(steps: Sequence[Step], length_frames: LengthFn) -> tuple[Placed, ...]:
    """Lay the steps end to end from frame 0 using `length_frames` for each."""
    placed: list[Placed] = []
    cursor = 0
    for index, step in enumerate(steps):
        length = length_frames(step)
        placed.append(Placed(index, step, cursor, length))
        cursor += length
    return tuple(placed)


def fixed_length_frames(step: Step, sample_rate_hz: int) -> int | None:
    """Return the length of a step whose length does not depend on a clip, else None."""
    if isinstance(step, Pause):
        return s_to_frames(step.duration_s, sample_rate_hz)
    if isinstance(step, Listen):
        return s_to_frames(step.for_s, sample_rate_hz)
    if isinstance(step, Breathe):
        return step.count * breath_frames(step, sample_rate_hz)
    return None


def breath_frames(step: Breathe, sample_rate_hz: int) -> int:
    """Return the frames of one breath; each phase is rounded on its own so pacing is exact."""
    return sum(s_to_frames(s, sample_rate_hz) for s in (step.in_s, step.hold_s, step.out_s, step.hold_out_s))


def estimated_length_frames(sample_rate_hz: int = DEFAULT_RATE_HZ, rate_wpm: int = 150) -> LengthFn:
    """Return a length function that estimates speech from its word count (for `show`)."""

    def length(step: Step) -> int:
        fixed = fixed_length_frames(step, sample_rate_hz)
        if fixed is not None:
            return fixed
        if isinstance(step, Say):
            words = max(1, len(step.text.split()))
            return s_to_frames(words * 60.0 / rate_wpm + SPEECH_GAP_S, sample_rate_hz)
        assert isinstance(step, Chime)
        return s_to_frames(ESTIMATE_CUE_S, sample_rate_hz)

    return length


def total_s(placed: Sequence[Placed], sample_rate_hz: int) -> float:
    """Return the length of the whole placed timeline in seconds."""
    return frames_to_s(placed[-1].end_frame, sample_rate_hz) if placed else 0.0


# ---------------------------------------------------------------- the compiled timeline


class ClipBank(Protocol):
    """Where the timeline gets its sounds; all at one sample rate."""

    sample_rate_hz: int

    def speech(self, text: str) -> Samples:
        """Return the spoken clip for `text`."""
        ...

    def cue(self, name: str, path: Path | None = None) -> Samples:
        """Return a named cue, or the sound file at `path` when given."""
        ...

    def breath(self, direction: str, n_frames: int) -> Samples:
        """Return a breathing tone ("in", "out" or "hold") of exactly `n_frames`."""
        ...


@runtime_checkable
class AheadBank(ClipBank, Protocol):
    """A ClipBank that makes its speech ahead, in the background, while the session plays."""

    def ready(self, step: Step) -> bool:
        """Return True when every clip `step` needs is made, so it can start without waiting."""
        ...


@dataclass(frozen=True, eq=False)
class Event:
    """One placed clip or window: what CUES.json lists and the mixer plays."""

    kind: str  # say, chime, pause, listen, breathe
    step: int  # index of the step in the expanded plan
    start_frame: int
    length_frames: int
    samples: Samples | None = None  # None for windows (pause, listen)
    text: str | None = None
    name: str | None = None
    who: str | None = None

    @property
    def end_frame(self) -> int:
        """Return the first frame after the event."""
        return self.start_frame + self.length_frames


class Mixer:
    """Sum the clips of placed events into blocks of output; events may be added as a session goes."""

    def __init__(self, events: Sequence[Event] = ()) -> None:
        self._events: list[Event] = []
        self._starts: list[int] = []
        self._longest = 0
        for event in events:
            self.add(event)

    def add(self, event: Event) -> None:
        """Place one more event (a window without samples adds nothing to the sound)."""
        if event.samples is None:
            return
        at = bisect.bisect_right(self._starts, event.start_frame)
        self._events.insert(at, event)
        self._starts.insert(at, event.start_frame)
        self._longest = max(self._longest, len(event.samples))

    def drop_from(self, frame: int) -> None:
        """Forget every event that starts at or after `frame` (used to skip or go back)."""
        at = bisect.bisect_left(self._starts, frame)
        del self._events[at:], self._starts[at:]

    def forget_before(self, frame: int) -> None:
        """Let go of clips that finished before `frame`, so a long session holds only what still plays."""
        keep = [
            (e, s)
            for e, s in zip(self._events, self._starts, strict=True)
            if e.samples is not None and e.start_frame + len(e.samples) > frame
        ]
        self._events = [e for e, _ in keep]
        self._starts = [s for _, s in keep]
        self._longest = max((len(e.samples) for e in self._events if e.samples is not None), default=0)

    def cut(self, frame: int, fade_frames: int) -> None:
        """Stop everything at `frame`: drop later events, fade out clips still sounding."""
        self.drop_from(frame)
        for event, clip in list(self._overlapping(frame, frame + 1)):
            keep = frame - event.start_frame
            short = clip[: keep + fade_frames].copy()
            short[keep:] *= np.linspace(1.0, 0.0, len(short) - keep, dtype=np.float32)
            at = self._events.index(event)
            self._events[at] = Event(
                event.kind, event.step, event.start_frame, len(short), short, event.text, event.name, event.who
            )

    def sounding(self, start_frame: int, n_frames: int) -> bool:
        """Return True if any clip plays within [start_frame, start_frame + n_frames)."""
        return any(True for _ in self._overlapping(start_frame, start_frame + n_frames))

    def mix(self, start_frame: int, n_frames: int) -> Samples:
        """Return the mixed output for frames [start_frame, start_frame + n_frames)."""
        out = np.zeros(n_frames, dtype=np.float32)
        end = start_frame + n_frames
        for event, clip in self._overlapping(start_frame, end):
            a = max(start_frame, event.start_frame)
            b = min(end, event.start_frame + len(clip))
            out[a - start_frame : b - start_frame] += clip[a - event.start_frame : b - event.start_frame]
        np.clip(out, -1.0, 1.0, out=out)
        return out

    def _overlapping(self, start: int, end: int) -> Iterator[tuple[Event, Samples]]:
        # Events are sorted by start; the longest clip bounds how far back to look.
        lo = bisect.bisect_left(self._starts, start - self._longest)
        hi = bisect.bisect_left(self._starts, end)
        for event in self._events[lo:hi]:
            clip = event.samples
            if clip is not None and event.start_frame + len(clip) > start:
                yield event, clip


@dataclass(frozen=True, eq=False)
class Timeline:
    """A whole session laid out on one frame clock (listen steps at their full `for`)."""

    sample_rate_hz: int
    steps: tuple[Placed, ...]
    events: tuple[Event, ...]

    @property
    def length_frames(self) -> int:
        """Return the session length in frames."""
        return self.steps[-1].end_frame if self.steps else 0

    def mix(self, start_frame: int, n_frames: int) -> Samples:
        """Return the mixed output for frames [start_frame, start_frame + n_frames)."""
        return self._mixer.mix(start_frame, n_frames)

    @functools.cached_property
    def _mixer(self) -> Mixer:
        return Mixer(self.events)


# Breath numbers up to this are spelled, so every engine reads them alike.
SPELLED_BREATHS_MAX = 20
_PHASE_WORDS = {"in": "in", "hold": "hold", "out": "out", "hold_out": "rest"}


def breath_number_text(breath: int, count: int) -> str | None:
    """Return what the guide says at the start of breath `breath` (1-based), or None.

    A count only helps when there are several breaths: the first says how many,
    the last says it is the last, the others just their number.
    """
    if count < 3:
        return None
    if breath == 1:
        return f"Breath one of {_number(count)}."
    if breath == count:
        return "Last breath."
    return f"{_number(breath).capitalize()}."


def _number(n: int) -> str:
    return number_words(n) if 1 <= n <= SPELLED_BREATHS_MAX else str(n)


def _breath_phases(step: Breathe, sample_rate_hz: int) -> list[tuple[str, int]]:
    phases = (("in", step.in_s), ("hold", step.hold_s), ("out", step.out_s), ("hold_out", step.hold_out_s))
    return [(name, s_to_frames(s, sample_rate_hz)) for name, s in phases if s_to_frames(s, sample_rate_hz) > 0]


def spoken_texts(steps: Sequence[Step]) -> list[str]:
    """Return every distinct text the timeline will ask the speech engine for, in order."""
    texts: dict[str, None] = {}
    for step in steps:
        if isinstance(step, Say):
            texts[step.text] = None
        elif isinstance(step, Breathe) and step.counting != "silent":
            for breath in range(1, step.count + 1):
                number = breath_number_text(breath, step.count)
                if number:
                    texts[number] = None
            if step.counting == "spoken":
                for name, _ in _breath_phases(step, DEFAULT_RATE_HZ):
                    texts[_PHASE_WORDS[name]] = None
    return list(texts)


def place_step(step: Step, index: int, start_frame: int, bank: ClipBank) -> tuple[list[Event], int]:
    """Return the events of one step placed from `start_frame`, and the step's length in frames.

    A listen step is a window of its full `for`; a live session may end it sooner.
    """
    rate = bank.sample_rate_hz
    if isinstance(step, Say):
        clip = bank.speech(step.text)
        return [Event("say", index, start_frame, len(clip), clip, text=step.text)], len(clip) + s_to_frames(
            SPEECH_GAP_S, rate
        )
    if isinstance(step, Chime):
        clip = bank.cue(step.name, step.path)
        return [Event("chime", index, start_frame, len(clip), clip, name=step.name)], len(clip)
    if isinstance(step, Pause):
        length = s_to_frames(step.duration_s, rate)
        return [Event("pause", index, start_frame, length)], length
    if isinstance(step, Listen):
        length = s_to_frames(step.for_s, rate)
        who = step.who_name if step.who in ("a", "b") else step.who
        events = [Event("listen", index, start_frame, length, who=who)]
        if step.remind_s:
            events.append(remind_event(index, start_frame + length - s_to_frames(step.remind_s, rate), bank))
        return events, length
    return _breathe_events(step, index, start_frame, bank), step.count * breath_frames(step, rate)


def remind_event(index: int, frame: int, bank: ClipBank) -> Event:
    """Return the soft remind tick placed at `frame`."""
    tick = bank.cue("remind")
    return Event("chime", index, frame, len(tick), tick, name="remind")


def place_steps(steps: Sequence[Step], bank: ClipBank) -> Iterator[tuple[Placed, list[Event]]]:
    """Place the steps end to end from frame 0, yielding each with its events as soon as it is placed.

    Every event of a later step starts at or after this step's end, so the sound before
    that frame is final: a render can mix and write it while later prompts are made.
    """
    cursor = 0
    for index, step in enumerate(steps):
        step_events, length = place_step(step, index, cursor, bank)
        yield Placed(index, step, cursor, length), step_events
        cursor += length


def timeline_of(sample_rate_hz: int, placed: Sequence[tuple[Placed, list[Event]]]) -> Timeline:
    """Return the Timeline of steps placed by `place_steps`, events sorted by start (ties in placing order)."""
    events = [event for _, step_events in placed for event in step_events]
    events.sort(key=lambda e: e.start_frame)
    return Timeline(sample_rate_hz, tuple(p for p, _ in placed), tuple(events))


def compile_timeline(steps: Sequence[Step], bank: ClipBank) -> Timeline:
    """Place every step and clip at its frame, end to end from frame 0."""
    return timeline_of(bank.sample_rate_hz, list(place_steps(steps, bank)))


def _breathe_events(step: Breathe, index: int, start_frame: int, bank: ClipBank) -> list[Event]:
    events: list[Event] = []
    phases = _breath_phases(step, bank.sample_rate_hz)
    cursor = start_frame
    for breath in range(1, step.count + 1):
        number = breath_number_text(breath, step.count) if step.counting != "silent" else None
        number_frames = 0
        if number:
            clip = bank.speech(number)
            events.append(Event("say", index, cursor, len(clip), clip, text=number))
            number_frames = len(clip)
        for name, n_frames in phases:
            if step.counting == "tones" and name != "hold_out":
                tone = bank.breath(name, n_frames)
                events.append(Event("breathe", index, cursor, n_frames, tone, name=f"breath-{name}"))
            elif step.counting == "spoken":
                word = bank.speech(_PHASE_WORDS[name])
                # The breath's number, when there is one, is said first; "in" follows it.
                delay = number_frames if name == "in" else 0
                events.append(Event("say", index, cursor + delay, len(word), word, text=_PHASE_WORDS[name]))
            cursor += n_frames
    return events
