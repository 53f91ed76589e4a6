"""--start-at: two people with synced clocks start together, with a spoken countdown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from voice_guide.errors import UsageError
from voice_guide.live.startat import COUNTDOWN_S, parse_start_at, wait_for_countdown

from .conftest import write

NOW = datetime(2026, 11, 26, 20, 0, 0)


@pytest.mark.parametrize("text", ["21", "25:00", "21:61", "9pm", "21:30:99", ""])
def test_bad_times_name_the_option(text: str) -> None:
    with pytest.raises(UsageError, match="--start-at"):
        parse_start_at(text, NOW)


def test_a_past_time_is_refused() -> None:
    with pytest.raises(UsageError, match="has passed"):
        parse_start_at("19:59", NOW)


def test_times_parse_to_today() -> None:
    assert parse_start_at("21:30", NOW) == NOW.replace(hour=21, minute=30)
    assert parse_start_at("20:00:45", NOW) == NOW.replace(second=45)


def test_wait_sleeps_until_the_countdown_and_shows_time_left() -> None:
    now = [NOW.timestamp()]
    notes: list[str] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    left = wait_for_countdown(NOW + timedelta(minutes=3), notes.append, clock=lambda: now[0], sleep=sleep)
    assert left == pytest.approx(COUNTDOWN_S)
    assert now[0] == pytest.approx((NOW + timedelta(minutes=3)).timestamp() - COUNTDOWN_S)
    assert notes[0] == "starting at 20:03:00, in 3 min 0 s" and len(notes) == 3


def test_the_first_step_starts_on_the_agreed_second(tmp_path: Path, home: Path) -> None:
    script = write(tmp_path, "s.yaml", "title: T\nsummary: S\nsteps:\n  - chime: start\n  - pause: 1s\n")
    # Far enough ahead that start-up on a loaded machine never eats the countdown.
    target = (datetime.now() + timedelta(seconds=9)).replace(microsecond=0) + timedelta(seconds=1)
    log = tmp_path / "log.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voice_guide",
            "run",
            str(script),
            "--no-mic",
            "--realtime",
            "--out",
            str(tmp_path / "o.wav"),
            "--sample-rate",
            "16000",
            "--log",
            str(log),
            "--start-at",
            target.strftime("%H:%M:%S"),
        ],
        env={**os.environ, "VOICE_GUIDE_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen_at = None
    for line in proc.stdout:
        if "step 1/2" in line:
            seen_at = time.time()
    assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    doc = json.loads(log.read_text())
    first = doc["events"][0]
    assert first["name"] == "start"
    # The countdown fills the time up to the target, exactly on the session clock...
    assert seen_at is not None and seen_at == pytest.approx(target.timestamp(), abs=0.25)
    # ...and the countdown itself is spoken at the start of the output.
    assert first["start_s"] > 2.0
