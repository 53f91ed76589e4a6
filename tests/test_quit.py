"""Ending a session: `q` plays its tick next (not after the queued lead), Ctrl-C at any moment is one
line and exit 130, and the process never aborts on its way out while speech is being made."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import spawn_cli
from voice_guide.journal import store
from voice_guide.live.audio import SoundDeviceIO, find_device, list_devices

pytestmark = pytest.mark.usefixtures("pulse")

RATE = 48_000


def test_dropping_the_queued_lead_leaves_it_unplayed() -> None:
    devices = list_devices()
    output = find_device(None, "output", devices)
    assert output is not None, "the virtual output device is missing"
    io = SoundDeviceIO(output, None, RATE, lead_s=0.2, latency_s=0.05)
    io.start()
    block = np.full(480, 0.1, np.float32)
    try:
        for _ in range(40):  # 0.4 s handed over: the stream starts and the lead fills
            io.exchange(block)
        handed = 40 * len(block)
        io.drop_queued()
        io.exchange(np.zeros(480, np.float32))  # what comes after the drop still plays
    finally:
        io.finish()
    # Without the drop every handed frame is played before finish returns.
    assert io.played_frames < handed, (io.played_frames, handed)


class _CommitThenInterrupt:
    """A real connection that is interrupted (Ctrl-C) just after its COMMIT went through."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        cursor = self.db.execute(sql, *args)
        if sql == "COMMIT":
            raise KeyboardInterrupt
        return cursor

    @property
    def in_transaction(self) -> bool:
        return self.db.in_transaction


def test_ctrl_c_after_the_journal_is_created_is_still_ctrl_c(tmp_path: Path) -> None:
    # It once surfaced as "cannot rollback - no transaction is active": a journal warning,
    # and the session went on with Ctrl-C lost.
    db = sqlite3.connect(str(tmp_path / "j.sqlite3"), isolation_level=None)
    with pytest.raises(KeyboardInterrupt):
        store._migrate(_CommitThenInterrupt(db))  # type: ignore[arg-type]
    assert db.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION


@pytest.mark.parametrize("after_s", [0.15, 0.4, 0.7, 1.0, 1.5, 2.5])
def test_ctrl_c_at_any_moment_of_a_start_is_one_line_and_130(
    tmp_path: Path, pulse: dict[str, str], after_s: float
) -> None:
    # An empty cache each time: imports, the voice check, the model loading and the first
    # prompt being made in the background are all moments Ctrl-C can land in.
    home = tmp_path / "home"
    for attempt in range(6):
        proc = spawn_cli(["timeout", "--no-mic"], pulse, home)
        time.sleep(after_s + 0.1 * attempt)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        # Exit 130 with nothing printed: the signal came while Python itself was still starting
        # (site packages, before any code of ours runs; 0.1-0.16 s here). Killed by the signal
        # itself: it came before the interpreter had even set its handler (a loaded machine).
        # Either way, try a little later.
        if not ((proc.returncode == 130 and not err) or proc.returncode == -signal.SIGINT):
            break
    assert proc.returncode == 130, (proc.returncode, err)
    assert err.splitlines()[-1] == "voice-guide: error: interrupted", err
    assert "Traceback" not in err and "terminate called" not in err, err
    journal = home / "data" / "journal.sqlite3"
    if journal.exists():
        db = sqlite3.connect(str(journal))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ended = [row[0] for row in db.execute("SELECT ended_by FROM sessions")]
        assert ended in ([], ["quit"]), ended
        if ended:
            assert "saved as session 1" in err


@pytest.mark.parametrize("after_s", [0.0, 1.0, 3.0])
def test_q_while_speech_is_made_ahead_exits_cleanly_and_says_where_it_saved(
    tmp_path: Path, pulse: dict[str, str], after_s: float
) -> None:
    from tests.test_panel import Screen

    screen = Screen(["timeout", "--no-mic"], pulse, tmp_path / "home")  # an empty cache: Piper works meanwhile
    try:
        screen.wait_for(r"time left|step 1 of")
        screen.pump(after_s)
        screen.press("q")
        assert screen.finish() == 0, screen.text()
    finally:
        screen.close()
    shown = screen.text()
    assert "saved as session 1" in shown, shown
    assert "terminate called" not in shown and "Traceback" not in shown, shown
