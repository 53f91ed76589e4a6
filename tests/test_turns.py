"""Listen turns end at the right frame for each rule of the format's listen semantics."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bench import corpus as sc
from bench.signals import steady_noise
from tests import vad_signals as vs
from voice_guide.live.audio import FileIO
from voice_guide.live.records import SessionOptions
from voice_guide.live.session import Session
from voice_guide.live.turns import End, Remind, Turn, TurnTracker
from voice_guide.live.vad import ClapDetector, VoiceDetector
from voice_guide.script import Listen, Step
from voice_guide.sound.levels import Samples
from voice_guide.sound.wavfile import write_wav

RATE = 1000  # 1 frame = 1 ms keeps the arithmetic readable
TICK = 10  # one VAD decision per 10 ms


def run(
    step: Listen, speaking: Callable[[float], bool], mic: bool = True, start: int = 5000, limit_s: float = 600
) -> tuple[Turn, list[tuple[str, float]]]:
    """Drive a tracker with speech as a function of seconds since the turn began."""
    tracker = TurnTracker(step, start, RATE, mic=mic)
    seen: list[tuple[str, float]] = []
    frame = start
    while tracker.ended is None and frame < start + limit_s * RATE:
        frame += TICK
        for action in tracker.update(frame, speaking((frame - start) / RATE)):
            if isinstance(action, Remind):
                seen.append(("remind", (action.frame - start) / RATE))
    return tracker.record(), seen


def listen(**kw: float) -> Listen:
    return Listen(who="a", who_name="Ann", for_s=kw.pop("for_s", 60.0), line=1, **kw)


def test_no_mic_turn_lasts_for() -> None:
    turn, _ = run(listen(until_silence_s=5, wait_for_speech_s=10), lambda t: False, mic=False)
    assert (turn.ended_by, turn.end_s - turn.start_s, turn.first_speech_s, turn.talk_s) == ("time", 60.0, None, 0)


def test_until_silence_ends_after_quiet_once_speech_was_heard() -> None:
    turn, _ = run(listen(until_silence_s=8), lambda t: 3 <= t < 20)
    assert turn.ended_by == "silence"
    assert turn.end_s - turn.start_s == pytest.approx(28, abs=0.02)
    assert turn.first_speech_s == pytest.approx(3, abs=0.011)
    assert turn.talk_s == pytest.approx(17, abs=0.02)
    assert turn.longest_silence_s == pytest.approx(8, abs=0.02)
    assert turn.overrun_s == 0


def test_silence_before_any_speech_does_not_end_the_turn() -> None:
    turn, _ = run(listen(until_silence_s=8, for_s=30), lambda t: False)
    assert turn.ended_by == "time" and turn.end_s - turn.start_s == 30
    assert turn.longest_silence_s == 30


def test_wait_for_speech_starts_the_clock_at_first_speech() -> None:
    turn, _ = run(listen(for_s=30, wait_for_speech_s=15), lambda t: t >= 4)
    assert turn.ended_by == "time"
    assert turn.end_s - turn.start_s == pytest.approx(34, abs=0.011)


def test_wait_for_speech_runs_out_then_for_counts() -> None:
    turn, _ = run(listen(for_s=30, wait_for_speech_s=15), lambda t: False)
    assert turn.end_s - turn.start_s == pytest.approx(45, abs=0.011)


def test_grace_lets_a_sentence_finish_then_counts_overrun() -> None:
    turn, _ = run(listen(for_s=30, grace_s=10), lambda t: t < 34)
    assert turn.ended_by == "grace"
    assert turn.end_s - turn.start_s == pytest.approx(34, abs=0.02)
    assert turn.overrun_s == pytest.approx(4, abs=0.02)


def test_grace_runs_out() -> None:
    turn, _ = run(listen(for_s=30, grace_s=10), lambda t: True)
    assert turn.ended_by == "grace" and turn.overrun_s == pytest.approx(10, abs=0.011)


def test_no_grace_means_time_up_on_the_dot() -> None:
    turn, _ = run(listen(for_s=30), lambda t: True)
    assert turn.ended_by == "time" and turn.end_s - turn.start_s == 30 and turn.overrun_s == 0


def test_remind_fires_once_when_remind_remains() -> None:
    _, seen = run(listen(for_s=60, remind_s=20), lambda t: True)
    [(kind, at_s)] = seen
    assert kind == "remind" and at_s == pytest.approx(40, abs=0.011)


def test_skip_ends_at_once() -> None:
    tracker = TurnTracker(listen(), 0, RATE)
    tracker.update(10, True)
    assert tracker.stop(2500, "skip") == End(2500, "skip")
    assert tracker.update(2600, True) == []
    assert tracker.record().ended_by == "skip"


# ---------------------------------------------------------------- talk as the detector hears it


MIC_RATE = 48000
needs_corpus = pytest.mark.skipif(
    bool(set(sc.missing_packages()) & set(sc.SMALL_PACKAGES)), reason="the corpus's Debian packages are not installed"
)


def listen_to(step: Listen, mic: Samples) -> Turn:
    """Run a turn on a microphone signal through the real detector, as the session feeds it (10 ms blocks)."""
    detector = VoiceDetector(MIC_RATE)
    tracker = TurnTracker(step, 0, MIC_RATE)
    n = detector.frame_len
    for k in range(mic.size // n):
        (speaking,) = detector.push(mic[k * n : (k + 1) * n])
        voiced, began = detector.last_voiced_frame, detector.speech_start_frame
        quiet = (voiced + 1) * n if 0 <= voiced < k else None
        tracker.update((k + 1) * n, bool(speaking), quiet, None if began is None else began * n)
        if tracker.ended is not None:
            break
    tracker.stop(mic.size, "quit")
    return tracker.record()


@functools.cache
def utterance() -> Samples:
    """One real spoken prompt (en, about 5 s), cut to its speech."""
    return sc.prompt("en", "agent-alreadyon", MIC_RATE).samples


def room(seconds: float, seed: int = 4) -> Samples:
    rng = np.random.default_rng(seed)
    return (steady_noise(round(seconds * MIC_RATE), MIC_RATE, rng) * np.float32(10 ** (-60 / 20))).astype(np.float32)


def put(x: Samples, at_s: float, sound: Samples) -> Samples:
    at = round(at_s * MIC_RATE)
    x[at : at + sound.size] += sound[: x.size - at]
    return x


@needs_corpus
@pytest.mark.parametrize("kind", vs.TRANSIENTS)
def test_a_short_sound_before_the_partner_speaks_does_not_start_the_turn(kind: str) -> None:
    speech = utterance()
    x = put(room(12.0), 4.0, speech)
    for at_s, peak in ((1.0, 0.1), (2.5, 0.5)):  # a soft one and a loud one, before they speak
        put(x, at_s, vs.transient(kind, MIC_RATE, seed=1, peak=peak))
    turn = listen_to(listen(for_s=12.0, until_silence_s=2.0), x)
    assert turn.first_speech_s == pytest.approx(4.0, abs=0.06)
    # The turn ends 2 s after the talk, not 2 s after the sound.
    assert turn.ended_by == "silence"
    assert turn.end_s == pytest.approx(4.0 + speech.size / MIC_RATE + 2.0, abs=0.15)
    assert turn.talk_s == pytest.approx(speech.size / MIC_RATE, abs=0.15)


@needs_corpus
@pytest.mark.parametrize("kind", vs.TRANSIENTS)
def test_a_short_sound_between_answers_is_neither_talk_nor_the_end_of_silence(kind: str) -> None:
    speech = utterance()
    length_s = speech.size / MIC_RATE
    quiet = put(put(room(20.0), 1.0, speech), 1.0 + length_s + 4.0, speech)
    noisy = put(quiet.copy(), 1.0 + length_s + 2.0, vs.transient(kind, MIC_RATE, seed=2, peak=0.4))
    step = listen(for_s=20.0, until_silence_s=6.0)
    plain, heard = listen_to(step, quiet), listen_to(step, noisy)
    assert heard.talk_s == pytest.approx(plain.talk_s, abs=0.02)
    assert heard.longest_silence_s == pytest.approx(plain.longest_silence_s, abs=0.02)
    assert 4.0 <= plain.longest_silence_s <= 4.35  # the gap, and the clip's quiet edges
    assert heard.end_s == pytest.approx(plain.end_s, abs=0.02) and heard.ended_by == plain.ended_by


@needs_corpus
@pytest.mark.parametrize("kind", ["pink", "white", "brown"])
def test_steady_noise_at_5_db_does_not_cut_a_long_answer(kind: str) -> None:
    answer = sc.long_answer(MIC_RATE)
    laid = sc.lay_out([answer], MIC_RATE)
    # Three seconds of quiet after it.
    corpus = sc.Corpus(
        np.concatenate((laid.samples, np.zeros(3 * MIC_RATE, np.float32))),
        np.concatenate((laid.labels, np.zeros(300, np.bool_))),
        MIC_RATE,
        laid.sources,
    )
    x = sc.mix(corpus, kind, 5.0)
    spoken = np.flatnonzero(corpus.labels)
    start_s, end_s = spoken[0] * 0.01, (spoken[-1] + 1) * 0.01
    turn = listen_to(listen(for_s=120.0, until_silence_s=1.5), x)
    # Forty seconds of talk with pauses for breath, and the turn waits for its end.
    assert turn.ended_by == "silence"
    assert turn.end_s == pytest.approx(end_s + 1.5, abs=0.3)
    assert turn.first_speech_s == pytest.approx(start_s, abs=0.1)
    assert turn.talk_s >= 0.85 * corpus.labels.sum() * 0.01


# ---------------------------------------------------------------- left-out time (a pause by double clap)


def test_left_out_time_is_neither_talk_nor_silence_and_lengthens_the_turn() -> None:
    tracker = TurnTracker(listen(for_s=30.0, until_silence_s=5.0), 0, RATE)
    frame = 0
    while frame < 4000:  # talk 1-3 s, then quiet
        frame += TICK
        tracker.update(frame, 1000 <= frame <= 3000)
    tracker.exclude(3500, 4000)  # half a second of it left out
    while tracker.ended is None:
        frame += TICK
        tracker.update(frame, False)
    turn = tracker.record()
    assert turn.ended_by == "silence"
    assert turn.end_s == pytest.approx(3.0 + 0.5 + 5.0, abs=0.011)
    assert turn.longest_silence_s == pytest.approx(5.0, abs=0.011)
    assert turn.talk_s == pytest.approx(2.0, abs=0.011)
    assert turn.paused_s == pytest.approx(0.5)


def test_talk_is_counted_from_where_the_detector_says_it_began() -> None:
    tracker = TurnTracker(listen(for_s=30.0, until_silence_s=2.0), 0, RATE)
    frame = 0
    while tracker.ended is None:
        frame += TICK
        # Confirmed 150 ms after it began at 1.0 s; it stops at 3.0 s.
        speaking = 1150 <= frame <= 3000
        tracker.update(frame, speaking, None, 1000 if speaking else None)
    turn = tracker.record()
    assert turn.first_speech_s == pytest.approx(1.0, abs=0.011)
    assert turn.talk_s == pytest.approx(2.0, abs=0.011)
    assert turn.end_s == pytest.approx(5.0, abs=0.011)


def session_turn(tmp_path: Path, mic: Samples, rate: int) -> Turn:
    """Run a one-turn session offline (FileIO) with `mic` as the microphone and the double-clap detector on."""
    from tests.support import Bank, Quiet  # the session tests' stand-in clips and observer

    mic_path, out = tmp_path / "mic.wav", tmp_path / "out.wav"
    write_wav(mic_path, mic, rate)
    steps: list[Step] = [Listen("a", "Ann", 40.0, 1, until_silence_s=3.0)]
    session = Session(
        steps,
        Bank(),
        FileIO(mic_path, out, rate),
        Quiet(),
        gate_factory=lambda: VoiceDetector(rate),
        claps=ClapDetector(rate),
        options=SessionOptions(headphones=True),
    )
    (turn,) = session.run().turns
    return turn


@needs_corpus
@pytest.mark.parametrize("clap_at_s", [1.0, 0.4])
def test_a_pause_by_double_clap_mid_turn_leaves_the_turn_as_it_would_have_been(
    tmp_path: Path, clap_at_s: float
) -> None:
    rate = 16000
    speech = sc.prompt("en", "agent-alreadyon", rate).samples
    rng = np.random.default_rng(6)
    plain = (steady_noise(40 * rate, rate, rng) * np.float32(10 ** (-60 / 20))).astype(np.float32)
    first, second = round(1.0 * rate), round(1.0 * rate) + speech.size + 2 * rate
    plain[first : first + speech.size] += speech
    plain[second : second + speech.size] += speech
    # In the 2 s between the answers: clap twice (pause), stay paused 3 s, clap twice (resume).
    cut = first + speech.size + round(clap_at_s * rate) // 160 * 160
    claps = vs.claps_at([0.0, 0.35, 3.0, 3.35], 4.0, rate, noise_dbfs=None)
    # The claps and the paused time are over the room's quiet (the end of the recording is quiet).
    prefix = np.concatenate((plain[:cut], plain[-claps.size :] + claps))
    resumed = np.flatnonzero(ClapDetector(rate).push(prefix))
    assert resumed.size == 2
    resume_at = (int(resumed[1]) + 1) * 160
    clapped = np.concatenate((prefix[:resume_at], plain[cut:]))[: plain.size]

    reference, paused = session_turn(tmp_path, plain, rate), session_turn(tmp_path, clapped, rate)
    assert paused.paused_s == pytest.approx((resume_at - cut) / rate, abs=0.011)
    assert paused.ended_by == reference.ended_by == "silence"
    assert paused.first_speech_s == pytest.approx(reference.first_speech_s, abs=0.011)
    assert paused.talk_s == pytest.approx(reference.talk_s, abs=0.011)
    assert paused.longest_silence_s == pytest.approx(reference.longest_silence_s, abs=0.011)
    assert paused.end_s - paused.start_s - paused.paused_s == pytest.approx(
        reference.end_s - reference.start_s, abs=0.011
    )
