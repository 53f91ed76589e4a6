"""Whole sessions offline through FileIO: placement, turns from a scripted microphone, controls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voice_guide.live.audio import FileIO, NullIO
from voice_guide.live.recap import recap
from voice_guide.live.records import Command, SessionOptions
from voice_guide.live.session import Session
from voice_guide.live.vad import ClapDetector, VoiceDetector
from voice_guide.script import Breathe, Chime, Listen, Pause, Say, Step
from voice_guide.sound.levels import Samples
from voice_guide.sound.timeline import compile_timeline
from voice_guide.sound.wavfile import read_wav, write_wav

from .support import RATE, Bank, Quiet, mic_with_speech

STEPS: list[Step] = [
    Say("Welcome both of you.", 1),
    Chime("start", 2),
    Pause(1.0, 3),
    Listen("a", "Ann", 6.0, 4, until_silence_s=1.5, remind_s=2.0),
    Breathe(1.0, 0.5, 1.5, 0.0, 2, "tones", 5),
    Chime("end", 6),
]


def run(
    tmp_path: Path,
    steps: list[Step],
    mic: Samples | None = None,
    commands: dict[int, Command] | None = None,
    headphones: bool = True,
) -> tuple[Session, object, Samples]:
    mic_path = None
    if mic is not None:
        mic_path = tmp_path / "mic.wav"
        write_wav(mic_path, mic, RATE)
    out = tmp_path / "out.wav"
    io = FileIO(mic_path, out, RATE)
    calls = {"n": 0}

    def poll() -> list[Command]:
        calls["n"] += 1
        return [commands[calls["n"]]] if commands and calls["n"] in commands else []

    session = Session(
        steps,
        Bank(),
        io,
        Quiet(),
        gate_factory=lambda: VoiceDetector(RATE),
        options=SessionOptions(headphones=headphones),
        commands=poll,
    )
    result = session.run()
    audio, rate = read_wav(out)
    assert rate == RATE
    return session, result, audio


def test_without_a_mic_the_session_is_the_rendered_timeline(tmp_path: Path) -> None:
    _, result, audio = run(tmp_path, STEPS)
    timeline = compile_timeline(STEPS, Bank())
    assert len(audio) == timeline.length_frames
    expected = timeline.mix(0, timeline.length_frames)
    assert np.max(np.abs(audio - expected)) < 2 / 32768  # 16-bit rounding only
    starts = [round(r.start_s * RATE) for r in result.steps]  # type: ignore[attr-defined]
    assert starts == [p.start_frame for p in timeline.steps]
    assert result.turns[0].ended_by == "time"  # type: ignore[attr-defined]


def test_until_silence_ends_the_turn_from_the_microphone(tmp_path: Path) -> None:
    timeline = compile_timeline(STEPS, Bank())
    listen_start = timeline.steps[3].start_frame / RATE
    mic = mic_with_speech(30, [(listen_start + 0.5, listen_start + 2.5)])
    _, result, _ = run(tmp_path, STEPS, mic)
    turn = result.turns[0]  # type: ignore[attr-defined]
    assert turn.ended_by == "silence"
    assert turn.first_speech_s == pytest.approx(0.5, abs=0.1)
    # Speech stops 2.5 s into the turn; 1.5 s of quiet later the turn is over.
    assert turn.end_s - turn.start_s == pytest.approx(2.5 + 1.5, abs=0.1)
    assert turn.talk_s == pytest.approx(2.0, abs=0.4)
    # The next step starts where the turn ended: no waiting for the full six seconds.
    nxt = result.steps[4]  # type: ignore[attr-defined]
    assert nxt.start_s == pytest.approx(turn.end_s, abs=0.011)


def test_skip_and_quit_commands(tmp_path: Path) -> None:
    _, result, _ = run(tmp_path, STEPS, commands={3: "skip", 40: "quit"})
    assert result.steps[0].skipped  # type: ignore[attr-defined]
    assert result.ended_by == "quit"  # type: ignore[attr-defined]
    assert len(result.steps) < len(STEPS)  # type: ignore[attr-defined]


def test_pause_inserts_silence_and_shifts_the_rest(tmp_path: Path) -> None:
    _, plain, _ = run(tmp_path, STEPS)
    _, paused, audio = run(tmp_path, STEPS, commands={5: "pause", 105: "pause"})
    shift = paused.steps[-1].start_s - plain.steps[-1].start_s  # type: ignore[attr-defined]
    assert shift == pytest.approx(1.0, abs=0.02)  # 100 blocks of 10 ms
    assert len(audio) / RATE == pytest.approx(plain.length_s + 1.0, abs=0.2)  # type: ignore[attr-defined]


def test_summary_balances_talk(tmp_path: Path) -> None:
    _, result, _ = run(tmp_path, STEPS, mic_with_speech(30, [(8, 9)]))
    figures = recap(result.turns, "Ann", "Bo")  # type: ignore[attr-defined]
    assert figures.balance in (None, 1.0)


def test_null_io_runs_as_fast_as_possible() -> None:
    io = NullIO(RATE)
    session = Session(STEPS, Bank(), io, Quiet())
    result = session.run()
    assert io.frames_out == round(result.length_s * RATE)


TWO_MIC_STEPS: list[Step] = [Say("Go.", 1), Listen("a", "Ann", 8.0, 2, until_silence_s=2.0), Chime("end", 3)]


def test_two_microphones_attribute_turns_and_count_interruptions(tmp_path: Path) -> None:
    timeline = compile_timeline(TWO_MIC_STEPS, Bank())
    t0 = timeline.steps[1].start_frame / RATE
    ann = mic_with_speech(20, [(t0 + 0.5, t0 + 4.0)])
    # Bo talks over Ann for 1.5 s in the middle of her turn, and briefly (0.3 s) once more.
    bo = mic_with_speech(20, [(t0 + 1.5, t0 + 3.0), (t0 + 3.4, t0 + 3.7)])
    mic_path, out = tmp_path / "mic2.wav", tmp_path / "out.wav"
    import wave

    with wave.open(str(mic_path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.round(np.stack([ann, bo], axis=1) * 32767).astype("<i2").tobytes())
    io = FileIO(mic_path, out, RATE)
    assert io.input_channels == 2
    session = Session(
        TWO_MIC_STEPS,
        Bank(),
        io,
        Quiet(),
        gate_factory=lambda: VoiceDetector(RATE),
        options=SessionOptions(headphones=True, mic_channels={"a": 0, "b": 1}),
    )
    turn = session.run().turns[0]
    assert turn.who == "Ann" and turn.ended_by == "silence"
    assert turn.talk_s == pytest.approx(3.5, abs=0.2)  # Ann's own channel, not Bo's
    assert turn.interruptions == 1


def test_a_double_clap_pauses_and_another_resumes(tmp_path: Path) -> None:
    from tests.vad_signals import claps_at

    steps: list[Step] = [Say("One two three.", 1), Pause(6.0, 2), Chime("end", 3)]
    plain = compile_timeline(steps, Bank()).length_frames / RATE
    mic = claps_at([1.0, 1.4, 4.0, 4.4], 20, RATE)
    mic_path, out = tmp_path / "claps.wav", tmp_path / "out.wav"
    write_wav(mic_path, mic, RATE)
    session = Session(
        steps,
        Bank(),
        FileIO(mic_path, out, RATE),
        Quiet(),
        gate_factory=lambda: VoiceDetector(RATE),
        claps=ClapDetector(RATE),
        options=SessionOptions(headphones=True),
    )
    result = session.run()
    # Paused from the first double clap to the second: about 3 s longer than planned.
    assert result.length_s - plain == pytest.approx(3.0, abs=0.1)


def test_speakers_mode_does_not_take_the_guide_for_a_partner(tmp_path: Path) -> None:
    steps: list[Step] = [Listen("a", "Ann", 6.0, 1, remind_s=4.0)]
    # The microphone hears a loud burst exactly while the remind tick plays, and nothing else.
    mic = mic_with_speech(10, [(2.0, 2.3)])
    speakers = run(tmp_path, steps, mic, headphones=False)[1]
    headphones = run(tmp_path, steps, mic, headphones=True)[1]
    assert speakers.turns[0].talk_s == 0  # type: ignore[attr-defined]
    assert headphones.turns[0].talk_s > 0.2  # type: ignore[attr-defined]
