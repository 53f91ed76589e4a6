"""Listen turns end at the right frame for each rule of the format's listen semantics."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from voice_guide.live.turns import End, Remind, Turn, TurnTracker
from voice_guide.script import Listen

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
    return Listen(who="a", who_name="Ann", for_s=kw.pop("for_s", 60.0), line=1, **kw)  # type: ignore[arg-type]


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
    assert seen == [("remind", pytest.approx(40, abs=0.011))]


def test_skip_ends_at_once() -> None:
    tracker = TurnTracker(listen(), 0, RATE)
    tracker.update(10, True)
    assert tracker.stop(2500, "skip") == End(2500, "skip")
    assert tracker.update(2600, True) == []
    assert tracker.record().ended_by == "skip"
