"""Turn an expanded plan into sound: gather the clips, compile the timeline, write files.

`prepare` fills the speech cache up front (with a progress callback) and
`SessionClips` serves clips from memory; `AheadClips` instead makes a session's prompts
on a background thread in play order, so a live session starts with the first and
`StepwiseRender` mixes and writes each step while later prompts are being made.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voice_guide.errors import AudioFileError
from voice_guide.outputs import write_text
from voice_guide.paths import audio_assets_dir
from voice_guide.script import Chime, Pause, Step, step_label
from voice_guide.sound.clips import condition, resample
from voice_guide.sound.encode import Chapter
from voice_guide.sound.levels import Samples
from voice_guide.sound.speech import ClipCache, SpeechIdentity
from voice_guide.sound.timeline import (
    ClipBank,
    Event,
    Mixer,
    Placed,
    Timeline,
    compile_timeline,
    frames_to_s,
    place_steps,
    spoken_texts,
    timeline_of,
)
from voice_guide.sound.tones import BREATH_DIRECTIONS, breath_tone, synth_cue
from voice_guide.sound.wavfile import read_wav

Progress = Callable[[int, int], None]
# Mixing and writing go block by block so the first samples reach the file at once.
BLOCK_FRAMES = 48_000
# Background speech runs this much nicer than the session, so the mixing loop and the
# audio callback win the CPU; Piper still makes speech 10x faster than it plays.
SPEECH_THREAD_NICE = 5
# How long `close` waits for the prompt being made. Not for all of it (up to 0.8 s with
# Piper): a quit or Ctrl-C must end the session at once, and the thread is a daemon.
CLOSE_WAIT_S = 0.05


@dataclass
class SessionClips:
    """A ClipBank for one session: speech from the cache, cues from assets or files, all in memory."""

    cache: ClipCache
    sample_rate_hz: int
    _memo: dict[tuple[str, str, int], Samples] = field(default_factory=dict)

    def speech(self, text: str) -> Samples:
        """Return the conditioned speech clip for `text`."""
        key = ("speech", text, 0)
        if key not in self._memo:
            self._memo[key] = self.cache.get(text)
        return self._memo[key]

    def cue(self, name: str, path: Path | None = None) -> Samples:
        """Return a cue: the shipped asset (or its generator) for a name, or a user's sound file."""
        key = ("cue", str(path or name), 0)
        if key not in self._memo:
            self._memo[key] = self._load_cue(name, path)
        return self._memo[key]

    def breath(self, direction: str, n_frames: int) -> Samples:
        """Return a breathing tone of exactly `n_frames`."""
        key = ("breath", direction, n_frames)
        if key not in self._memo:
            if direction not in BREATH_DIRECTIONS:
                raise ValueError(f"unknown breath direction {direction!r}")
            self._memo[key] = breath_tone(direction, n_frames / self.sample_rate_hz, self.sample_rate_hz)
        return self._memo[key]

    def _load_cue(self, name: str, path: Path | None) -> Samples:
        if path is not None:
            return condition(*_read_any(path), self.sample_rate_hz)
        asset = audio_assets_dir() / f"{name}.wav"
        if asset.is_file():
            samples, rate = read_wav(asset)
            return samples if rate == self.sample_rate_hz else resample(samples, rate, self.sample_rate_hz)
        return synth_cue(name, self.sample_rate_hz)


class AheadClips(SessionClips):
    """A ClipBank that synthesizes a session's prompts in play order on a background thread.

    `speech` waits for a prompt the thread has not reached yet; `ready(step)` says
    whether a step could start now, so a live session can hold at a step boundary
    (playing silence) instead of stalling inside a prompt. A failure on the thread is
    raised by the `speech` call that needed the clip. Use as a context manager, or
    `start` and `close`; `on_made` hears of each prompt made (apart mode tells the host).
    """

    def __init__(
        self,
        cache: ClipCache,
        sample_rate_hz: int,
        steps: Sequence[Step],
        on_made: Callable[[], None] | None = None,
        *,
        yield_cpu: bool = True,
    ) -> None:
        super().__init__(cache, sample_rate_hz)
        self._on_made = on_made  # called on the speech thread after each prompt is made
        # A live session's speech gives way to the audio after the first prompt; a render's
        # waits for nothing else, so it keeps its priority (it is what the render waits on).
        self._yield_cpu = yield_cpu
        self._steps = tuple(steps)
        self.texts = tuple(spoken_texts(steps))
        self._queued = frozenset(self.texts)
        self._done: dict[str, Samples] = {}
        self._failed: BaseException | None = None
        self._stop = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> AheadClips:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self) -> AheadClips:
        """Start synthesizing in the background; return self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="voice-guide-speech", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop after the prompt being made, waiting at most CLOSE_WAIT_S for it (it is cached if it finishes)."""
        with self._cond:
            self._stop = True
        if self._thread is not None:
            self._thread.join(timeout=CLOSE_WAIT_S)

    def wait_ready(self, step: Step) -> None:
        """Wait until every prompt of `step` is made; raise the thread's failure if making one failed.

        A live run waits here for its first step before it starts the device, so the
        first sound is the prompt itself, not silence queued while the prompt was read.
        """
        texts = [t for t in spoken_texts([step]) if t in self._queued]
        with self._cond:
            while self._failed is None and not all(t in self._done for t in texts):
                self._cond.wait(timeout=0.1)  # a timeout keeps Ctrl-C prompt on the main thread
            if self._failed is not None:
                raise self._failed

    def ready(self, step: Step) -> bool:
        """Return True when every prompt of `step` is made (or making it has failed, to be raised now)."""
        with self._cond:
            return self._failed is not None or all(t in self._done for t in spoken_texts([step]))

    @property
    def made(self) -> int:
        """Return how many of the session's prompts are made so far."""
        with self._cond:
            return len(self._done)

    def speech(self, text: str) -> Samples:
        """Return the clip of `text`, waiting for the background thread when it has the text queued."""
        if text in self._queued and self._thread is not None:
            with self._cond:
                while text not in self._done and self._failed is None:
                    self._cond.wait()
                if text in self._done:
                    return self._done[text]
                assert self._failed is not None
                raise self._failed
        return super().speech(text)  # not one of the steps' (a closing line): make it here

    def _work(self) -> None:
        # Nothing plays before the first prompt is made, so nothing needs the CPU more: the
        # thread gives way to the session only after it (while nice, it also gave way to
        # every other program on a busy machine, and the first sound waited for them).
        first_count = next((len(spoken_texts([s])) for s in self._steps if spoken_texts([s])), 0)
        for index, text in enumerate(self.texts):
            if index == first_count and self._yield_cpu:
                _lower_priority()
            with self._cond:
                if self._stop:
                    return
            try:
                clip = self.cache.get(text)
            except BaseException as exc:  # handed to the thread that needs the clip
                with self._cond:
                    self._failed = exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._done[text] = clip
                self._cond.notify_all()
            if self._on_made is not None:
                self._on_made()


def _lower_priority() -> None:
    """Let the speech thread yield the CPU to the audio and the session loop (Linux: a per-thread nice)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SPEECH_THREAD_NICE)


def _read_any(path: Path) -> tuple[Samples, int]:
    if path.suffix.lower() == ".wav":
        return read_wav(path)
    from pydub import AudioSegment  # only for a user's OGG cue; needs ffmpeg

    try:
        seg = AudioSegment.from_file(str(path)).set_channels(1).set_sample_width(2)
    except Exception as exc:  # pydub surfaces ffmpeg failures as assorted exceptions
        raise AudioFileError(f"cannot read cue file {path}: {exc}", "a WAV or OGG file that ffmpeg can read") from None
    return np.array(seg.get_array_of_samples(), dtype=np.float32) / 32768.0, int(seg.frame_rate)


def prepare(steps: Sequence[Step], cache: ClipCache, progress: Progress | None = None) -> int:
    """Synthesize every prompt the steps will need that is not cached yet; return how many there are."""
    texts = spoken_texts(steps)
    cache.prepare(texts, progress)
    return len(texts)


def build(steps: Sequence[Step], cache: ClipCache, progress: Progress | None = None) -> Timeline:
    """Prepare all clips, then compile the session's timeline."""
    prepare(steps, cache, progress)
    return compile_timeline(steps, SessionClips(cache, cache.sample_rate_hz))


class StepwiseRender:
    """A session placed one step at a time and mixed block by block as it is placed (what `render` writes).

    `blocks()` places each step, asking the bank for its clips (an AheadClips bank waits
    there for speech still being made), and yields every block that ends before the end
    of what is placed: nothing placed later starts before it, so the block is final. The
    blocks are the same, sample for sample, as mixing the whole compiled timeline; the
    Timeline itself (for cues and chapters) is `timeline` once every block is out.
    """

    def __init__(
        self, steps: Sequence[Step], bank: ClipBank, progress: Progress | None = None, block_frames: int = BLOCK_FRAMES
    ) -> None:
        self.steps = tuple(steps)
        self.bank = bank
        self.progress = progress  # (steps placed, steps)
        self.block_frames = block_frames
        self._timeline: Timeline | None = None

    @property
    def timeline(self) -> Timeline:
        """Return the whole placed timeline; only once `blocks()` has yielded its last block."""
        if self._timeline is None:
            raise RuntimeError("the render has not finished placing its steps")
        return self._timeline

    def blocks(self) -> Iterator[Samples]:
        """Yield the mixed session in blocks of `block_frames` (the last may be shorter), placing as it goes."""
        mixer = Mixer()
        placed: list[tuple[Placed, list[Event]]] = []
        done_frames = 0
        total = len(self.steps)
        if self.progress is not None:
            self.progress(0, total)
        for step, events in place_steps(self.steps, self.bank):
            # Added in placing order, so clips starting on the same frame sum in the order
            # the compiled timeline sums them (float sums depend on it).
            for event in events:
                mixer.add(event)
            placed.append((step, events))
            while done_frames + self.block_frames <= step.end_frame:
                yield mixer.mix(done_frames, self.block_frames)
                done_frames += self.block_frames
            if self.progress is not None:
                self.progress(len(placed), total)
        end_frame = placed[-1][0].end_frame if placed else 0
        while done_frames < end_frame:
            n_frames = min(self.block_frames, end_frame - done_frames)
            yield mixer.mix(done_frames, n_frames)
            done_frames += n_frames
        self._timeline = timeline_of(self.bank.sample_rate_hz, placed)


def blocks(timeline: Timeline, block_frames: int = BLOCK_FRAMES) -> Iterator[Samples]:
    """Yield the mixed session in blocks of `block_frames` (the last may be shorter)."""
    for start in range(0, timeline.length_frames, block_frames):
        yield timeline.mix(start, min(block_frames, timeline.length_frames - start))


def event_json(event: Event, rate: int) -> dict[str, object]:
    """Describe one event as CUES.json does."""
    row: dict[str, object] = {
        "kind": event.kind,
        "step": event.step,
        "start_s": frames_to_s(event.start_frame, rate),
        "end_s": frames_to_s(event.end_frame, rate),
    }
    for key in ("text", "name", "who"):
        value = getattr(event, key)
        if value is not None:
            row[key] = value
    return row


def cues_json(timeline: Timeline, speech: SpeechIdentity | None = None) -> dict[str, object]:
    """Return the CUES.json document: every placed clip or window, exact to the sample, and what spoke."""
    rate = timeline.sample_rate_hz
    doc: dict[str, object] = {"sample_rate": rate, "duration_s": frames_to_s(timeline.length_frames, rate)}
    if speech is not None:
        doc["speech"] = speech.as_json()
    doc["events"] = [event_json(e, rate) for e in timeline.events]
    return doc


def write_cues(path: Path, timeline: Timeline, speech: SpeechIdentity | None = None) -> None:
    """Write CUES.json."""
    write_text(path, json.dumps(cues_json(timeline, speech), indent=1, ensure_ascii=False) + "\n")


def chapters(timeline: Timeline) -> list[Chapter]:
    """Return one chapter per prompt, turn and breathing exercise.

    Chimes and pauses belong to the chapter before them, so a phone shows a
    short list: where each instruction and each turn starts.
    """
    rate = timeline.sample_rate_hz
    marks: list[tuple[int, str]] = []
    for placed in timeline.steps:
        if isinstance(placed.step, (Chime, Pause)) and marks:
            continue
        marks.append((placed.start_frame, _chapter_title(placed.step)))
    ends = [start for start, _ in marks[1:]] + [timeline.length_frames]
    return [
        Chapter(frames_to_s(s, rate), frames_to_s(e, rate), title) for (s, title), e in zip(marks, ends, strict=True)
    ]


def _chapter_title(step: Step) -> str:
    label = step_label(step)
    return label if len(label) <= 60 else label[:57].rsplit(" ", 1)[0] + "..."
