"""The live panel, seen as a person sees it: the program runs in a pseudo-terminal and a terminal
emulator (pyte) keeps the screen, so the tests assert on what is on it, not on what was printed."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from fcntl import ioctl
from pathlib import Path

import pyte
import pytest
from rich.console import Console

from tests.conftest import write
from voice_guide.live.display import LiveDisplay, PanelSource
from voice_guide.script import Listen, Pause

COLUMNS, LINES = 100, 30

PAUSE_ONLY = """\
title: Panel
summary: One long pause, to watch the clock.
steps:
  - chime: soft
  - pause: 40s
  - chime: end
"""

BREATHING = """\
title: Breaths
summary: Three slow breaths.
steps:
  - breathe: {in: 3s, out: 3s, count: 3, counting: tones}
  - pause: 30s
"""


class Screen:
    """A program running in a pseudo-terminal, with the screen it has drawn so far."""

    def __init__(self, args: list[str], env: dict[str, str], home: Path, program: list[str] | None = None) -> None:
        self.screen = pyte.Screen(COLUMNS, LINES)
        self.stream = pyte.ByteStream(self.screen)
        master, slave = pty.openpty()
        ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        self.master = master
        self.proc = subprocess.Popen(
            [*(program or [sys.executable, "-m", "voice_guide"]), *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "VOICE_GUIDE_HOME": str(home), "TERM": "xterm-256color", "COLUMNS": str(COLUMNS)},
            start_new_session=True,
        )
        os.close(slave)

    def pump(self, seconds: float) -> None:
        """Read what the program draws for `seconds`."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], min(left, 0.05))
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # the program ended and closed the terminal
                    return
                if not data:
                    return
                self.stream.feed(data)

    def text(self) -> str:
        """Return the screen as lines of text."""
        return "\n".join(line.rstrip() for line in self.screen.display)

    def wait_for(self, pattern: str, timeout_s: float = 60.0) -> re.Match[str]:
        """Read until `pattern` is on the screen; fail with the screen shown otherwise."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            found = re.search(pattern, self.text())
            if found:
                return found
            self.pump(0.05)
            if self.proc.poll() is not None:
                self.pump(0.2)
                found = re.search(pattern, self.text())
                if found:
                    return found
                break
        raise AssertionError(f"{pattern!r} never showed; the screen:\n{self.text()}")

    def press(self, key: str) -> None:
        """Type a key."""
        os.write(self.master, key.encode())

    def resize(self, columns: int, lines: int) -> None:
        """Change the terminal's size, as a window resize does."""
        self.screen.resize(lines, columns)
        ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        os.killpg(self.proc.pid, signal.SIGWINCH)

    def finish(self, timeout_s: float = 30.0) -> int:
        """Read until the program exits; return its status."""
        end = time.monotonic() + timeout_s
        while self.proc.poll() is None and time.monotonic() < end:
            self.pump(0.05)
        self.pump(0.3)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            raise AssertionError(f"still running; the screen:\n{self.text()}")
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        os.close(self.master)


@pytest.fixture
def terminal(pulse: dict[str, str], home: Path) -> Iterator[Callable[[list[str]], Screen]]:
    opened: list[Screen] = []

    def start(args: list[str]) -> Screen:
        screen = Screen(args, pulse, home)
        opened.append(screen)
        return screen

    yield start
    for screen in opened:
        screen.close()


def _seconds(countdown: str) -> int:
    minutes, seconds = countdown.split(":")
    return int(minutes) * 60 + int(seconds)


def test_time_left_counts_down_without_a_mic_and_q_says_where_it_was_saved(
    terminal: Callable[[list[str]], Screen], tmp_path: Path
) -> None:
    script = write(tmp_path, "panel.yaml", PAUSE_ONLY)
    screen = terminal(["run", str(script), "--no-mic"])
    first = _seconds(screen.wait_for(r"time left\s+(\d+:\d\d)").group(1))
    assert "not listening (--no-mic)" in screen.text()
    hints = [line for line in screen.text().splitlines() if "q quit" in line]
    assert len(hints) == 1 and "space pause/resume" in hints[0] and "n skip" in hints[0]
    # The clock moves with no sound from the mic to drive a redraw.
    screen.pump(2.5)
    later = _seconds(re.search(r"time left\s+(\d+:\d\d)", screen.text()).group(1))  # type: ignore[union-attr]
    assert 1 <= first - later <= 4
    screen.press(" ")
    screen.wait_for(r"paused \(space or a double clap resumes\)")
    assert screen.text().count("time left") == 1, screen.text()
    screen.pump(0.5)  # the fade-out block still counts on the session clock; let it pass
    held = re.search(r"time left\s+(\d+:\d\d)", screen.text()).group(1)  # type: ignore[union-attr]
    screen.pump(2.0)
    assert re.search(r"time left\s+(\d+:\d\d)", screen.text()).group(1) == held  # type: ignore[union-attr]
    screen.press(" ")
    screen.pump(1.5)
    assert "paused" not in screen.text()  # no stale pause line after resume
    screen.press("q")
    assert screen.finish() == 0
    shown = screen.text()
    assert re.search(r"saved as session \d+", shown)
    # The panel is gone on exit: no old frame is left above the last lines.
    assert "time left" not in shown and "q quit" not in shown


def test_the_panel_meter_marks_the_detectors_threshold(terminal: Callable[[list[str]], Screen], tmp_path: Path) -> None:
    script = write(tmp_path, "panel.yaml", PAUSE_ONLY)
    screen = terminal(["run", str(script)])  # the virtual microphone
    meter = screen.wait_for(r"mic\s+\[([#.|]+)\]\s+(-?\d+\.\d) dBFS\s+threshold\s+(-?\d+\.\d) dBFS")
    bar, level, threshold = meter.group(1), float(meter.group(2)), float(meter.group(3))
    assert bar.count("|") == 1 and len(bar) == 30, bar
    # The mark sits where the threshold falls on the -80..0 dBFS scale, as in mic-test.
    assert abs(bar.index("|") - round((max(-80.0, threshold) + 80.0) / 80.0 * 30)) <= 1, (bar, threshold)
    assert level <= 0.0
    screen.press("q")
    assert screen.finish() == 0


def test_breath_number_shows_during_a_pacer_and_a_resize_leaves_no_old_frame(
    terminal: Callable[[list[str]], Screen], tmp_path: Path
) -> None:
    script = write(tmp_path, "breaths.yaml", BREATHING)
    screen = terminal(["run", str(script), "--no-mic"])
    screen.wait_for(r"breath\s+1 of 3, breathe (in|out)")
    screen.wait_for(r"breath\s+2 of 3, breathe (in|out)", timeout_s=30)
    # Narrower, same height: pyte drops top lines on a height change and keeps the cursor, which
    # no real terminal does, so only the width changes here.
    screen.resize(70, LINES)
    screen.pump(1.0)
    text = screen.text()
    assert text.count("step 1 of 2") == 1, text
    assert text.count("q quit") == 1, text
    screen.wait_for(r"step 2 of 2", timeout_s=30)
    text = screen.text()
    assert "breath " not in text and "step 1 of 2" not in text  # the new step replaced the old one
    os.killpg(screen.proc.pid, signal.SIGINT)
    assert screen.finish() == 130
    assert re.search(r"saved as session \d+", screen.text())


# A panel drawn for a few redraws while a native library writes to file descriptor 2, as alsa-lib
# does on an underrun (seen in the live tests here under load, two lines under the panel).
NATIVE_WRITES = """
import os, time
from rich.console import Console
from voice_guide.live.display import LiveDisplay
with LiveDisplay(Console(), mic=False):
    time.sleep(0.5)
    os.write(2, b"ALSA lib pcm.c:8570:(snd_pcm_recover) underrun occurred\\n")
    time.sleep(0.5)
    os.write(2, b"\\x1b[2Janother native line\\n")
    time.sleep(0.5)
    print("still here", flush=True)
"""


def test_lines_a_native_library_writes_go_above_the_panel_and_leave_no_old_frame(tmp_path: Path) -> None:
    screen = Screen([NATIVE_WRITES], dict(os.environ), tmp_path, program=[sys.executable, "-c"])
    try:
        screen.pump(1.2)
        text = screen.text()
        assert text.count("q quit") == 1, text
        lines = text.splitlines()
        alsa = [i for i, line in enumerate(lines) if "underrun occurred" in line]
        keys = [i for i, line in enumerate(lines) if "q quit" in line]
        assert len(alsa) == 1 and alsa[0] < keys[0], text
        assert screen.finish() == 0
        text = screen.text()
        # The escape in the second line is shown, not obeyed (it would have cleared the screen).
        assert "underrun occurred" in text and "\\x1b[2Janother native line" in text, text
        assert "still here" in text and "q quit" not in text, text
    finally:
        screen.close()


class _Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def _drawn(display: LiveDisplay) -> str:
    console = Console(width=100, record=True, file=io.StringIO(), color_system=None)
    console.print(display.live.renderable)
    return console.export_text()


def test_apart_panel_names_the_link_state_and_shows_only_the_keys_that_work() -> None:
    clock, session_s, link = _Clock(), [0.0], {"up": True}
    display = LiveDisplay(Console(file=io.StringIO()), apart=True, clock=clock)
    display.follow(
        PanelSource(session_s=lambda: session_s[0], paused=lambda: not link["up"], linked=lambda: link["up"])
    )
    display.step_started(1, 4, Listen("b", "Ben", 90.0, 2), 5.0)
    session_s[0] = 30.0
    shown = _drawn(display)
    assert "partner connected" in shown
    assert "time left    1:00" in shown
    assert "q quit" in shown and "space" not in shown and "n skip" not in shown
    link["up"] = False
    _drawn(display)
    clock.now_s += 42.0
    shown = _drawn(display)
    assert "waiting for partner, 42 s" in shown
    assert "double clap" not in shown  # neither works in apart mode
    link["up"] = True
    assert "partner connected" in _drawn(display)


def test_notes_expire_and_pause_notes_show_as_a_state_only() -> None:
    clock, paused = _Clock(), [False]
    display = LiveDisplay(Console(file=io.StringIO()), mic=False, clock=clock)
    display.follow(PanelSource(session_s=lambda: 0.0, paused=lambda: paused[0]))
    display.step_started(0, 1, Pause(20.0, 1), 0.0)
    display.note("the microphone is back")
    paused[0] = True
    display.note("paused (space or a double clap resumes)")
    shown = _drawn(display)
    assert shown.count("paused") == 1 and "the microphone is back" in shown
    paused[0] = False
    display.note("resumed")
    clock.now_s += 10.0
    shown = _drawn(display)
    assert "paused" not in shown and "resumed" not in shown and "microphone is back" not in shown


def test_mic_test_shows_the_live_level_against_the_threshold(terminal: Callable[[list[str]], Screen]) -> None:
    screen = terminal(["mic-test", "--seconds", "4", "--quiet"])
    meter = screen.wait_for(r"mic \[[#.|]+\]\s+(-?\d+\.\d) dBFS\s+threshold\s+(-?\d+\.\d) dBFS\s+(speech|silence)")
    assert float(meter.group(2)) < 0
    assert screen.finish() == 1  # nobody talked into the virtual microphone
    text = screen.text()
    assert re.search(r"^(muted|silence): ", text, re.M), text
    verdict = next(line for line in text.splitlines() if re.match(r"(muted|silence): ", line))
    assert "mic [" not in verdict  # the meter line ends before the verdict is printed
