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
from voice_guide.journal.store import Journal, SessionInfo, connect, journal_path, list_sessions
from voice_guide.live.audio import FileIO, IOStats, MicBlock
from voice_guide.live.records import SessionOptions
from voice_guide.live.session import Session
from voice_guide.live.vad import VoiceDetector
from voice_guide.script import Listen, Pause, Say, Step
from voice_guide.sound.levels import Samples
from voice_guide.sound.wavfile import write_wav

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


def test_a_silent_microphone_is_dropped_and_turns_last_their_time(tmp_path: Path) -> None:
    notes, result = _run_with_mic(tmp_path, np.zeros(RATE * 20, np.float32))
    assert sum("only silence" in n for n in notes.notes) == 1
    turn = result.turns[0]  # type: ignore[attr-defined]
    assert turn.ended_by == "time" and turn.end_s - turn.start_s == pytest.approx(15.0)


def test_a_clipping_microphone_is_dropped(tmp_path: Path) -> None:
    t = np.arange(RATE * 20) / RATE
    notes, result = _run_with_mic(tmp_path, np.clip(3 * np.sin(2 * np.pi * 300 * t), -1, 1).astype(np.float32))
    assert sum("clipping" in n for n in notes.notes) == 1
    assert result.turns[0].ended_by == "time"  # type: ignore[attr-defined]


class FailingIO:
    """Plays a while, then fails the way an unplugged device does."""

    sample_rate_hz = RATE
    input_channels = 0

    def __init__(self, fail_after_blocks: int) -> None:
        self.stats = IOStats()
        self.left = fail_after_blocks

    def start(self) -> None: ...

    def exchange(self, block: Samples) -> list[MicBlock]:
        self.left -= 1
        if self.left < 0:
            raise AudioDeviceError("the sound device stopped responding", "was it unplugged?")
        return []

    def finish(self) -> None: ...

    def abort(self) -> None: ...


def test_a_device_failing_mid_session_leaves_the_journal_marked_error(tmp_path: Path) -> None:
    steps: list[Step] = [Say("One.", 1), Pause(1.0, 2), Say("Two.", 3), Pause(30.0, 4)]
    journal = Journal(journal_path(tmp_path), SessionInfo("t", "T", "A", "B", {}), print)
    session = Session(steps, Bank(), FailingIO(fail_after_blocks=300), journal)
    with pytest.raises(AudioDeviceError):
        session.run()
    partial = session.result_so_far
    assert partial is not None
    journal.close("error", partial.length_s, partial.underruns)
    db = connect(journal_path(tmp_path))
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    row = list_sessions(db)[0]
    assert row.ended_by == "error"
    assert [r["kind"] for r in db.execute("SELECT kind FROM steps ORDER BY start_s")] == ["say", "pause", "say"]


def test_killing_the_sound_server_mid_run_is_one_line_exit_1(tmp_path: Path, home: Path) -> None:
    # A PulseAudio of this test's own, so killing it spares the rest of the suite.
    env = {**os.environ, "VG_PULSE_DIR": str(tmp_path / "pulse"), "VOICE_GUIDE_HOME": str(home)}
    exports = subprocess.run(
        [str(REPO / "tools" / "pulse.sh"), "env"], env=env, capture_output=True, text=True, check=True
    ).stdout
    for item in exports.replace("export ", "").split():
        key, _, value = item.partition("=")
        env[key] = value.strip("'")
    subprocess.run([str(REPO / "tools" / "pulse.sh"), "start"], env=env, check=True, capture_output=True)
    pid = int((tmp_path / "pulse" / "pid").read_text())
    script = write(tmp_path, "slow.yaml", "title: S\nsummary: S\nsteps:\n  - say: One.\n  - pause: 30s\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "voice_guide", "run", str(script), "--no-mic"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "pause" in line:
            break
    time.sleep(1.0)
    os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in err
    ours = [line for line in err.splitlines() if line.startswith("voice-guide:")]
    assert ours == [
        "voice-guide: saved as session 1 (see: voice-guide history show 1)",
        "voice-guide: error: the sound device stopped responding (was it unplugged, or did the sound server stop?)",
    ]
    rows = list_sessions(connect(journal_path(home / "data")))
    assert rows[0].ended_by == "error"
