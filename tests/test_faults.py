"""Faults a couple might meet mid-session: a dead or clipping microphone, a device that fails, a
sound server that dies. The session says so in one line and the journal stays whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from voice_guide.errors import AudioDeviceError
from voice_guide.journal.store import Journal, SessionInfo, SessionRow, connect, journal_path, list_sessions
from voice_guide.live import session as session_module
from voice_guide.live.audio import DeviceLost, FileIO, IOStats, MicBlock, NullIO
from voice_guide.live.records import SessionOptions
from voice_guide.live.session import MIC_LINE_GAIN, MIC_LINES, Session
from voice_guide.live.vad import ClapDetector, VoiceDetector
from voice_guide.script import Listen, Pause, Say, Step
from voice_guide.sound.align import find_clip
from voice_guide.sound.levels import Samples
from voice_guide.sound.wavfile import read_wav, write_wav

from .conftest import REPO, write
from .support import RATE, Bank, Quiet

STEPS: list[Step] = [Say("Go.", 1), Listen("a", "Ann", 15.0, 2, until_silence_s=1.0), Say("Done.", 3)]


class Notes(Quiet):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)


def _run_with_mic(tmp_path: Path, mic: Samples) -> tuple[Notes, object]:
    write_wav(tmp_path / "mic.wav", mic, RATE)
    notes = Notes()
    session = Session(
        STEPS,
        Bank(),
        FileIO(tmp_path / "mic.wav", None, RATE),
        notes,
        gate_factory=lambda: VoiceDetector(RATE),
        options=SessionOptions(headphones=True),
    )
    return notes, session.run()


def test_a_silent_microphone_is_noted_once_and_turns_last_their_time(tmp_path: Path) -> None:
    notes, result = _run_with_mic(tmp_path, np.zeros(RATE * 20, np.float32))
    assert sum("only silence" in n for n in notes.notes) == 1
    turn = result.turns[0]  # type: ignore[attr-defined]
    assert turn.ended_by == "time" and turn.end_s - turn.start_s == pytest.approx(15.0)


class StalledCapture(FileIO):
    """A microphone whose blocks stop coming after `stall_s` while the output plays on (a hung capture)."""

    def __init__(self, mic_path: Path, stall_s: float) -> None:
        super().__init__(mic_path, None, RATE)
        self.stall_frame = round(stall_s * RATE)
        self.handed = 0

    def exchange(self, block: Samples) -> list[MicBlock]:
        heard = super().exchange(block)
        self.handed += len(block)
        if self.handed > 120 * RATE:
            raise RuntimeError("the session still plays after 120 s")  # a failing test must not spin for good
        return heard if self.handed < self.stall_frame else []


@pytest.mark.parametrize(("stall_s", "talk", "ended_by"), [(0.0, False, "time"), (3.0, False, "time"),
                                                           (5.0, True, "silence")])  # fmt: skip
def test_a_capture_that_stops_delivering_still_ends_the_turn(
    tmp_path: Path, stall_s: float, talk: bool, ended_by: str
) -> None:
    # The output plays on, so the session clock moves: the turn keeps its time by that clock
    # instead of waiting for decisions that never come (the session used to hang in the turn).
    # With talk just before the stall (1.5-4.8 s), what follows it is silence and ends the turn.
    from .support import mic_with_speech

    write_wav(tmp_path / "mic.wav", mic_with_speech(20.0, [(1.5, 4.8)] if talk else []), RATE)
    io = StalledCapture(tmp_path / "mic.wav", stall_s)
    options = SessionOptions(headphones=True)
    session = Session(STEPS, Bank(), io, Notes(), gate_factory=lambda: VoiceDetector(RATE), options=options)
    result = session.run()
    assert result.ended_by == "complete"
    turn = result.turns[0]
    assert turn.ended_by == ended_by, turn
    if talk:
        assert turn.first_speech_s is not None
        # until_silence is 1 s: about where it would have ended had the microphone gone on.
        assert turn.end_s <= stall_s + 1.5, turn
    else:
        assert turn.end_s - turn.start_s == pytest.approx(15.0)


class DroppingCapture(FileIO):
    """A microphone that loses one block in eight (a capture overflowing under load): blocks still come."""

    def __init__(self, mic_path: Path) -> None:
        super().__init__(mic_path, None, RATE)
        self.calls = 0

    def exchange(self, block: Samples) -> list[MicBlock]:
        heard = super().exchange(block)
        self.calls += 1
        return [] if self.calls % 8 == 0 else heard


def test_a_capture_that_drops_blocks_is_waited_for_not_overtaken(tmp_path: Path) -> None:
    # Its decisions fall behind the session clock by an eighth of the time (past MIC_LATE_S
    # from 16 s on, while the talk goes on to 40 s), but they keep coming: the turn follows
    # them, and counts the talk they carry.
    from .support import mic_with_speech

    write_wav(tmp_path / "mic.wav", mic_with_speech(50.0, [(1.5, 40.0)]), RATE)
    steps: list[Step] = [Say("Go.", 1), Listen("a", "Ann", 60.0, 2, until_silence_s=1.0), Say("Done.", 3)]
    options = SessionOptions(headphones=True)
    io = DroppingCapture(tmp_path / "mic.wav")
    session = Session(steps, Bank(), io, Notes(), gate_factory=lambda: VoiceDetector(RATE), options=options)
    turn = session.run().turns[0]
    assert turn.ended_by == "silence", turn
    # Seven eighths of 38.5 s of talk arrive (33.7 s); nearly all of it is counted.
    assert turn.talk_s >= 32.0, turn


class LosingCapture(FileIO):
    """A microphone that loses `lost_s` of capture at `at_s` (an overflow under load); its stamps stay true."""

    def __init__(self, mic_path: Path, at_s: float, lost_s: float) -> None:
        super().__init__(mic_path, None, RATE)
        self.lost = range(round(at_s * RATE), round((at_s + lost_s) * RATE))

    def exchange(self, block: Samples) -> list[MicBlock]:
        return [b for b in super().exchange(block) if b.start_frame not in self.lost]


@pytest.mark.parametrize("lost_s", [0.5, 1.7])
def test_capture_lost_in_an_answer_leaves_what_follows_at_its_true_time(tmp_path: Path, lost_s: float) -> None:
    # Counting the frames that came would put everything after the loss lost_s early: the
    # answer's end, and the turn's end by silence, too soon.
    from .support import mic_with_speech

    write_wav(tmp_path / "mic.wav", mic_with_speech(30.0, [(1.5, 12.0)]), RATE)
    steps: list[Step] = [Say("Go.", 1), Listen("a", "Ann", 25.0, 2, until_silence_s=1.0), Say("Done.", 3)]
    options = SessionOptions(headphones=True)
    io = LosingCapture(tmp_path / "mic.wav", 6.0, lost_s)
    session = Session(steps, Bank(), io, Notes(), gate_factory=lambda: VoiceDetector(RATE), options=options)
    result = session.run()
    turn = result.turns[0]
    clean = (
        Session(
            steps,
            Bank(),
            FileIO(tmp_path / "mic.wav", None, RATE),
            Notes(),
            gate_factory=lambda: VoiceDetector(RATE),
            options=options,
        )
        .run()
        .turns[0]
    )
    assert turn.ended_by == clean.ended_by == "silence", (turn, clean)
    assert turn.end_s == pytest.approx(clean.end_s, abs=0.05), (turn, clean)
    assert turn.talk_s == pytest.approx(clean.talk_s, abs=0.05), (turn, clean)


class Voices(Bank):
    """Each line its own noise, so a matched filter tells the lines apart in the output."""

    def speech(self, text: str) -> Samples:
        rng = np.random.default_rng(sum(map(ord, text)))
        return (0.2 * rng.standard_normal(int(0.6 * RATE))).astype(np.float32)


def _match_at(audio: Samples, clip: Samples, at: int) -> float:
    """Return how closely `audio` from `at` matches `clip` (correlation, 1.0 for the clip itself)."""
    seg = audio[at : at + len(clip)].astype(np.float64)
    ref = clip.astype(np.float64)
    return float(seg @ ref / (np.linalg.norm(seg) * np.linalg.norm(ref) + 1e-12))


def test_a_microphone_silent_at_first_is_heard_again_when_sound_arrives(tmp_path: Path) -> None:
    from tests.vad_signals import claps_at

    from .support import speech_like

    # Exact zeros for 12 s (muted at the start), then talk, then a room's faint noise with
    # a double clap to pause and another to resume.
    mic = np.zeros(RATE * 40, np.float32)
    mic[12 * RATE :] = claps_at([14.0, 14.4, 17.0, 17.4], 28, RATE)  # 26 s and 29 s into the session
    talk = speech_like(3.0)
    mic[12 * RATE : 12 * RATE + len(talk)] += talk
    write_wav(tmp_path / "mic.wav", mic, RATE)
    steps: list[Step] = [
        Pause(11.0, 1),
        Listen("a", "Ann", 20.0, 2, until_silence_s=1.0),
        Say("Done.", 3),
        Pause(12.0, 4),
    ]
    notes = Notes()
    out = tmp_path / "out.wav"
    session = Session(
        steps,
        Voices(),
        FileIO(tmp_path / "mic.wav", out, RATE),
        notes,
        gate_factory=lambda: VoiceDetector(RATE),
        claps=ClapDetector(RATE),
        options=SessionOptions(headphones=True),
        record_to=tmp_path / "rec.wav",
    )
    result = session.run()
    assert sum("only silence" in n for n in notes.notes) == 1
    assert sum("heard again; listening" in n for n in notes.notes) == 1, notes.notes
    turn = result.turns[0]
    # The turn heard the talk once the microphone came back and ended on the silence after it.
    assert turn.ended_by == "silence"
    assert turn.first_speech_s == pytest.approx(12.0 - turn.start_s, abs=0.2)
    assert 15.0 + 1.0 <= turn.end_s < 15.0 + 3.0
    audio, _ = read_wav(out)
    bank = Voices()
    # Said softly where the turn began, since the microphone had been silent for 10 s by then.
    line = bank.speech(MIC_LINES["silent"]) * MIC_LINE_GAIN
    at = round(turn.start_s * RATE)
    assert find_clip(audio, line, at, RATE // 10) == pytest.approx(at, abs=2)
    assert _match_at(audio, line, at) > 0.99
    assert np.max(np.abs(audio[at : at + len(line)])) == pytest.approx(np.max(np.abs(line)), rel=0.01)
    # The resume cue when it was heard again, 12 s in (the mic's first sample is the session's first frame).
    cue = bank.cue("resume")
    back = find_clip(audio, cue, 12 * RATE, RATE // 5)
    assert back == pytest.approx(12 * RATE, abs=RATE // 20)
    assert _match_at(audio, cue, back) > 0.9
    # Double claps work again: the pause between them made the session about 3 s longer.
    last = result.steps[-1]
    assert last.end_s - last.start_s - 12.0 == pytest.approx(3.0, abs=0.15)
    # And --record kept recording: the talk is in the file where it was heard.
    recorded, _ = read_wav(tmp_path / "rec.wav")
    assert not recorded[: 12 * RATE].any()
    assert np.allclose(recorded[12 * RATE : 12 * RATE + len(talk)], mic[12 * RATE : 12 * RATE + len(talk)], atol=1e-4)


def test_the_end_of_a_mic_file_is_silence_not_a_dead_microphone(tmp_path: Path) -> None:
    from .support import speech_like

    write_wav(tmp_path / "mic.wav", speech_like(1.0), RATE)
    steps: list[Step] = [Pause(14.0, 1), Listen("a", "Ann", 3.0, 2, until_silence_s=1.0)]
    notes = Notes()
    out = tmp_path / "out.wav"
    session = Session(
        steps,
        Voices(),
        FileIO(tmp_path / "mic.wav", out, RATE),
        notes,
        gate_factory=lambda: VoiceDetector(RATE),
        options=SessionOptions(headphones=True),
    )
    result = session.run()
    assert not any("silence" in n for n in notes.notes), notes.notes
    audio, _ = read_wav(out)
    assert not audio.any()  # nothing said: a pause and a turn
    assert result.turns[0].ended_by == "time"


def test_a_clipping_microphone_is_dropped(tmp_path: Path) -> None:
    t = np.arange(RATE * 20) / RATE
    notes, result = _run_with_mic(tmp_path, np.clip(3 * np.sin(2 * np.pi * 300 * t), -1, 1).astype(np.float32))
    assert sum("clipping" in n for n in notes.notes) == 1
    assert result.turns[0].ended_by == "time"  # type: ignore[attr-defined]


class FlakyIO:
    """Plays a while, then loses the device the way an unplugged one is lost; back after some tries."""

    sample_rate_hz = RATE
    input_channels = 0

    def __init__(self, fail_at_block: int, back_at_try: int | None) -> None:
        self.stats = IOStats()
        self.fail_at = fail_at_block
        self.back_at = back_at_try
        self.blocks = self.tries = 0
        self.lost = False
        self.played: list[Samples] = []
        self.resumed_at: int | None = None

    def start(self) -> None: ...

    def exchange(self, block: Samples) -> list[MicBlock]:
        assert not self.lost, "exchange on a lost device"
        self.blocks += 1
        if self.blocks == self.fail_at:
            self.lost = True
            raise DeviceLost("the sound device stopped responding", "was it unplugged?")
        self.played.append(block.copy())
        return []

    def finish(self) -> None: ...

    def abort(self) -> None: ...

    def drop_queued(self) -> None: ...

    def reopen(self) -> bool:
        self.tries += 1
        if self.back_at is None or self.tries < self.back_at:
            return False
        self.lost = False
        self.resumed_at = sum(len(b) for b in self.played)
        return True


STEPS_4: list[Step] = [Say("One.", 1), Pause(1.0, 2), Say("Two.", 3), Pause(2.0, 4)]


def test_a_lost_device_is_reopened_and_the_session_resumes_where_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_module, "REOPEN_EVERY_S", 0.001)
    planned = Session(STEPS_4, Bank(), NullIO(RATE), Quiet()).run().length_s
    io = FlakyIO(fail_at_block=150, back_at_try=4)
    notes = Notes()
    result = Session(STEPS_4, Bank(), io, notes).run()
    assert result.ended_by == "complete"
    assert [r.kind for r in result.steps] == ["say", "pause", "say", "pause"]
    assert io.tries == 4
    assert [n.split(":")[0] for n in notes.notes] == ["paused", "resumed"]
    assert "device lost" in notes.notes[0]
    # Both clocks stood still while the device was gone, and the block in flight was made again.
    played = np.concatenate(io.played)
    assert result.length_s == pytest.approx(planned, abs=1e-9)
    assert len(played) == round(result.length_s * RATE)
    # The resume cue comes first when it is back.
    cue = Bank().cue("resume")
    assert io.resumed_at is not None
    assert _match_at(played, cue, io.resumed_at) > 0.99
    assert not played[io.resumed_at - RATE // 2 : io.resumed_at].any()  # it fell in the silent pause


def test_a_device_that_stays_lost_ends_the_session_with_the_journal_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_module, "REOPEN_EVERY_S", 0.001)
    monkeypatch.setattr(session_module, "REOPEN_FOR_S", 0.05)
    steps: list[Step] = [Say("One.", 1), Pause(1.0, 2), Say("Two.", 3), Pause(30.0, 4)]
    journal = Journal(journal_path(tmp_path), SessionInfo("t", "T", "A", "B", None), print)
    io = FlakyIO(fail_at_block=300, back_at_try=None)
    session = Session(steps, Bank(), io, journal)
    with pytest.raises(AudioDeviceError, match="did not come back within 0 s"):
        session.run()
    assert io.tries > 1
    partial = session.result_so_far
    assert partial is not None
    journal.close("error", partial.length_s, partial.underruns)
    db = connect(journal_path(tmp_path))
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    row = list_sessions(db)[0]
    assert row.ended_by == "error"
    assert [r["kind"] for r in db.execute("SELECT kind FROM steps ORDER BY start_s")] == ["say", "pause", "say"]


def _own_pulse(tmp_path: Path, home: Path) -> dict[str, str]:
    """Start a PulseAudio of this test's own (so breaking it spares the rest of the suite); return its env."""
    env = {**os.environ, "VG_PULSE_DIR": str(tmp_path / "pulse"), "VOICE_GUIDE_HOME": str(home)}
    exports = subprocess.run(
        [str(REPO / "tools" / "pulse.sh"), "env"], env=env, capture_output=True, text=True, check=True
    ).stdout
    for item in exports.replace("export ", "").split():
        key, _, value = item.partition("=")
        env[key] = value.strip("'")
    subprocess.run([str(REPO / "tools" / "pulse.sh"), "start"], env=env, check=True, capture_output=True)
    return env


def _start_then_break(
    tmp_path: Path, env: dict[str, str], args: list[str], steps: str
) -> tuple[subprocess.Popen[str], list[str]]:
    """Run the CLI on a script; return it and the stdout lines read once its long pause has begun."""
    script = write(tmp_path, "slow.yaml", f"title: S\nsummary: S\nsteps:\n{steps}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "voice_guide", "run", str(script), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "pause" in line:
            break
    time.sleep(1.0)
    return proc, lines


def _kill_pulse(tmp_path: Path) -> None:
    pid_file = tmp_path / "pulse" / "pid"
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    pid_file.unlink()


def _journal_row(home: Path) -> SessionRow:
    db = connect(journal_path(home / "data"))
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return list_sessions(db)[0]


SLOW = "  - say: One.\n  - pause: 6s\n  - say: Two.\n"


@pytest.mark.parametrize("mic", [False, True], ids=["no-mic", "duplex"])
def test_a_restarted_sound_server_is_recovered_and_the_session_completes(tmp_path: Path, home: Path, mic: bool) -> None:
    env = _own_pulse(tmp_path, home)
    try:
        proc, lines = _start_then_break(tmp_path, env, ["--headphones" if mic else "--no-mic"], SLOW)
        _kill_pulse(tmp_path)
        time.sleep(3.0)
        subprocess.run([str(REPO / "tools" / "pulse.sh"), "start"], env=env, check=True, capture_output=True)
        rest, err = proc.communicate(timeout=120)
        out = "".join(lines) + rest
    finally:
        subprocess.run([str(REPO / "tools" / "pulse.sh"), "stop"], env=env, capture_output=True)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "paused: device lost" in out and "resumed: the sound device is back" in out
    assert "step 3/3" in out
    assert _journal_row(home).ended_by == "complete"


@pytest.mark.parametrize("mic", [False, True], ids=["no-mic", "duplex"])
def test_unloaded_sinks_are_recovered_and_the_session_completes(tmp_path: Path, home: Path, mic: bool) -> None:
    env = _own_pulse(tmp_path, home)
    try:
        modules = subprocess.run(
            ["pactl", "list", "short", "modules"], env=env, capture_output=True, text=True, check=True
        ).stdout
        # Both sinks: with one left PulseAudio itself moves the stream there and nothing is lost.
        sinks = [line.split("\t") for line in modules.splitlines() if line.split("\t")[1] == "module-null-sink"]
        assert len(sinks) == 2
        proc, lines = _start_then_break(tmp_path, env, ["--headphones" if mic else "--no-mic"], SLOW)
        for sink in sinks:
            subprocess.run(["pactl", "unload-module", sink[0]], env=env, check=True)
        time.sleep(2.0)
        for sink in sinks:
            subprocess.run(
                ["pactl", "load-module", "module-null-sink", sink[2]], env=env, check=True, capture_output=True
            )
        subprocess.run(["pactl", "set-default-sink", "vg_out"], env=env, check=True)
        subprocess.run(["pactl", "set-default-source", "vg_mic.monitor"], env=env, check=True)
        rest, err = proc.communicate(timeout=120)
        out = "".join(lines) + rest
    finally:
        subprocess.run([str(REPO / "tools" / "pulse.sh"), "stop"], env=env, capture_output=True)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "paused: device lost" in out and "resumed: the sound device is back" in out
    assert "step 3/3" in out
    assert _journal_row(home).ended_by == "complete"


def test_a_sound_server_that_stays_dead_is_one_line_exit_1(tmp_path: Path, home: Path) -> None:
    env = {**_own_pulse(tmp_path, home), "VOICE_GUIDE_REOPEN_S": "3"}
    proc, _ = _start_then_break(tmp_path, env, ["--headphones"], "  - say: One.\n  - pause: 30s\n")
    _kill_pulse(tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in err
    ours = [line for line in err.splitlines() if line.startswith("voice-guide:") and "error" in line]
    assert ours == [
        "voice-guide: error: the sound device stopped responding, and it did not come back within 3 s"
        " (was it unplugged, or did the sound server stop?)"
    ]
    assert _journal_row(home).ended_by == "error"


def test_ctrl_c_ends_a_session_whose_sound_server_hangs(tmp_path: Path, home: Path) -> None:
    env = _own_pulse(tmp_path, home)
    pid = int((tmp_path / "pulse" / "pid").read_text())
    try:
        proc, _ = _start_then_break(tmp_path, env, ["--headphones"], "  - say: One.\n  - pause: 30s\n")
        os.kill(pid, signal.SIGSTOP)  # a server that hangs: calls into it block instead of failing
        time.sleep(4.0)
        proc.send_signal(signal.SIGINT)
        # Bounded, not timed (bench/device_bench.py times it): a hang fails here.
        proc.communicate(timeout=30)
    finally:
        os.kill(pid, signal.SIGCONT)
        subprocess.run([str(REPO / "tools" / "pulse.sh"), "stop"], env=env, capture_output=True)
    assert proc.returncode == 130
    assert _journal_row(home).ended_by == "quit"


def test_the_panel_says_paused_while_the_device_is_lost() -> None:
    import io

    from rich.console import Console

    from voice_guide.live.display import LiveDisplay, PanelSource

    lost = [False]
    display = LiveDisplay(Console(file=io.StringIO()), mic=False)
    display.follow(PanelSource(session_s=lambda: 0.0, paused=lambda: False, device_lost=lambda: lost[0]))
    display.step_started(0, 1, Pause(20.0, 1), 0.0)

    def drawn() -> str:
        console = Console(width=100, record=True, file=io.StringIO(), color_system=None)
        console.print(display.live.renderable)
        return console.export_text()

    assert "device lost" not in drawn()
    lost[0] = True
    display.note("paused: device lost (the sound device stopped responding); trying to open it again")
    assert drawn().count("paused: device lost") == 1
    lost[0] = False
    display.note("resumed: the sound device is back after 3.2 s")
    assert "device lost" not in drawn()


def test_a_duplex_capture_that_lost_frames_is_stamped_by_the_output_clock_again() -> None:
    # The pump counts a duplex stream's input frames; an overflow loses some, and the count
    # would fall behind the output for the rest of the session. Past MIC_LOST_S it is moved up.
    from voice_guide.live.audio.devices import MIC_LOST_S, DeviceInfo, SoundDeviceIO

    device = DeviceInfo(0, "test", 1, 1, RATE, True, True)
    io = SoundDeviceIO(device, device, RATE)
    block = np.zeros((480, 1), np.float32)
    io._heard_block(block, 480, True, sounding=480)  # in step: stamped by the count
    io._heard_block(block, 480, True, sounding=960 + round(0.1 * RATE))  # 0.1 s behind: kept
    lost = round(2 * MIC_LOST_S * RATE)
    io._heard_block(block, 480, True, sounding=1440 + lost)  # lost more: moved up to the clock
    io._heard_block(block, 480, True, sounding=1920 + lost)
    stamps = [b.start_frame for b in io._drain_input()]
    assert stamps == [0, 480, 960 + lost, 1440 + lost]
