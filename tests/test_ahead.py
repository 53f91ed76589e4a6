"""Speech made ahead of the playhead: a session starts with its first prompt and waits only between steps."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from voice_guide.errors import SpeechEngineError
from voice_guide.live.audio import FileIO
from voice_guide.live.records import LoggedEvent, StepRecord
from voice_guide.live.session import Session
from voice_guide.script import Chime, Pause, Say, Step
from voice_guide.sound.levels import Samples
from voice_guide.sound.render import AheadClips, SessionClips, StepwiseRender, blocks
from voice_guide.sound.speech import ClipCache, Pyttsx3Speaker, Speaker
from voice_guide.sound.timeline import compile_timeline
from voice_guide.sound.wavfile import read_wav

from .conftest import default_speaker

RATE = 16_000


class SlowSpeaker:
    """A real engine that takes `delay_s` longer per sentence, as a loaded machine might."""

    def __init__(self, inner: Speaker, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.threads: set[str] = set()

    @property
    def engine_id(self) -> str:
        return self.inner.engine_id

    @property
    def voice_id(self) -> str:
        return self.inner.voice_id

    @property
    def voice_digest(self) -> str:
        return self.inner.voice_digest

    @property
    def rate_wpm(self) -> int:
        return self.inner.rate_wpm

    def synthesize(self, text: str) -> tuple[Samples, int]:
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        return self.inner.synthesize(text)


class Starts:
    """Notes when each step starts, and how many prompts were made by then."""

    def __init__(self, bank: AheadClips) -> None:
        self.bank = bank
        self.made_at_start: list[int] = []

    def step_started(self, index: int, total: int, step: Step, start_s: float) -> None:
        self.made_at_start.append(self.bank.made)

    def step_finished(self, record: StepRecord) -> None: ...
    def heard(self, level_dbfs: float, speaking: Mapping[str, bool]) -> None: ...
    def note(self, message: str) -> None: ...


STEPS: list[Step] = [
    Say("Sit down.", 1),
    Say("Take one breath. Then rest.", 3),
    Say("Now the other. Slowly. Good.", 4),
]


def run_session(tmp_path: Path, speaker: Speaker, realtime: bool) -> tuple[Samples, tuple[LoggedEvent, ...], Starts]:
    cache = ClipCache(tmp_path / "cache", speaker, RATE)
    out = tmp_path / "out.wav"
    with AheadClips(cache, RATE, STEPS) as bank:
        starts = Starts(bank)
        result = Session(STEPS, bank, FileIO(None, out, RATE, realtime=realtime), starts).run()
    assert result.ended_by == "complete"
    audio, _ = read_wav(out)
    return audio, result.events, starts


def test_falling_behind_waits_at_step_boundaries_never_inside_a_prompt(tmp_path: Path) -> None:
    # Each sentence takes 1.2 s longer to make than these short prompts last, so the
    # session, playing in real time, catches up with the speech thread at every prompt.
    slow = SlowSpeaker(Pyttsx3Speaker(), delay_s=1.2)
    audio, events, starts = run_session(tmp_path, slow, realtime=True)
    assert slow.threads == {"voice-guide-speech"}  # every prompt was made in the background
    # It started with the first prompt made and the rest still to come.
    assert starts.made_at_start[0] < 3
    says = [e for e in events if e.event.kind == "say"]
    assert len(says) == 3
    cache = ClipCache(tmp_path / "cache", slow.inner, RATE)
    planned = {e.step: e.start_frame / RATE for e in compile_timeline(STEPS, SessionClips(cache, RATE)).events}
    late = [e.start_s - planned[e.event.step] for e in says]
    assert late[0] > 0  # the stream started before the first prompt was made
    assert late[-1] > late[0] + 0.5, late  # it fell behind later too, and held between steps
    assert all(b >= a - 1e-6 for a, b in itertools.pairwise(late))
    for event in says:
        # Each prompt is in the output whole and unbroken, exactly where the log says.
        clip = cache.get(str(event.event.text))
        start = round(event.start_s * RATE)
        assert np.array_equal(audio[start : start + len(clip)], clip), event.event.text


def test_a_failure_in_the_background_reaches_the_session(tmp_path: Path) -> None:
    class Broken(SlowSpeaker):
        def synthesize(self, text: str) -> tuple[Samples, int]:
            if "breath" in text:
                raise SpeechEngineError(f"cannot speak {text!r}")
            return super().synthesize(text)

    with pytest.raises(SpeechEngineError, match=r"cannot speak 'Take one breath\.'"):
        run_session(tmp_path, Broken(Pyttsx3Speaker(), 0.0), realtime=False)


def test_the_real_default_engine_starts_before_the_rest_is_made(tmp_path: Path, home: Path) -> None:
    # With Piper (the default here) a session's first step starts once its own prompt
    # is made, long before the other prompts are: the session does not wait for them.
    speaker = default_speaker(home)
    steps: list[Step] = [Say(f"Prompt number {n}. Take your time with this one, and breathe.", n) for n in range(6)]
    cache = ClipCache(tmp_path / "cache", speaker, RATE)
    out = tmp_path / "out.wav"
    with AheadClips(cache, RATE, steps) as bank:
        starts = Starts(bank)
        result = Session(steps, bank, FileIO(None, out, RATE), starts).run()
    assert result.ended_by == "complete"
    assert 1 <= starts.made_at_start[0] <= 2
    audio, _ = read_wav(out)
    for event in result.events:
        clip = cache.get(str(event.event.text))
        start = round(event.start_s * RATE)
        assert np.array_equal(audio[start : start + len(clip)], clip)


def test_waiting_for_the_first_step_returns_with_its_prompt_made_or_raises(tmp_path: Path) -> None:
    # A live run waits here before it starts the device, so its first sound is the prompt.
    slow = SlowSpeaker(Pyttsx3Speaker(), delay_s=0.3)
    steps: list[Step] = [Chime("start", 1), *STEPS]
    with AheadClips(ClipCache(tmp_path / "cache", slow, RATE), RATE, steps) as bank:
        bank.wait_ready(steps[0])  # a chime needs no speech: at once
        bank.wait_ready(steps[1])
        assert bank.ready(steps[1])
        assert bank.made < len(bank.texts)  # the rest is still being made

    class Broken(SlowSpeaker):
        def synthesize(self, text: str) -> tuple[Samples, int]:
            raise SpeechEngineError(f"cannot speak {text!r}")

    broken = ClipCache(tmp_path / "broken", Broken(Pyttsx3Speaker(), 0.0), RATE)
    with AheadClips(broken, RATE, STEPS) as bank, pytest.raises(SpeechEngineError, match=r"cannot speak 'Sit down\.'"):
        bank.wait_ready(STEPS[0])


def test_a_render_mixes_each_step_while_later_prompts_are_still_being_made(tmp_path: Path) -> None:
    # The same blocks, sample for sample, as the timeline compiled after every prompt was
    # made; but the first block is out when only the first prompt is made (the real espeak
    # engine, slowed as a loaded machine might be, on the background thread).
    speaker = SlowSpeaker(Pyttsx3Speaker(), delay_s=0.2)
    steps: list[Step] = [*STEPS[:1], Pause(2.5, 2), Chime("start", 0), *STEPS[1:], Pause(1.0, 5)]
    with AheadClips(ClipCache(tmp_path / "cache", speaker, RATE), RATE, steps, yield_cpu=False) as bank:
        render = StepwiseRender(steps, bank, block_frames=RATE // 3)
        made_at_block = []
        streamed = []
        for block in render.blocks():
            made_at_block.append(bank.made)
            streamed.append(block)
    assert made_at_block[0] < len(bank.texts) == 3
    assert "voice-guide-speech" in speaker.threads
    whole = compile_timeline(steps, SessionClips(ClipCache(tmp_path / "cache", Pyttsx3Speaker(), RATE), RATE))
    expected = list(blocks(whole, RATE // 3))
    assert [len(b) for b in streamed] == [len(b) for b in expected]
    assert all(np.array_equal(a, b) for a, b in zip(streamed, expected, strict=True))
    assert render.timeline.steps == whole.steps
    assert [(e.kind, e.start_frame, e.length_frames, e.text) for e in render.timeline.events] == [
        (e.kind, e.start_frame, e.length_frames, e.text) for e in whole.events
    ]
