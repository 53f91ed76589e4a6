"""Hostile and mistaken inputs, each as its own process: one line and the promised exit code, never a hang.

Every case runs `voice-guide` as a child process with a timeout, so a FIFO that blocks,
a header that asks for gigabytes or a session that would last for years fails the test
instead of stalling the suite. A case passes only with exactly one stderr line of the
form `voice-guide: error: ...`, the expected exit code and the expected words.
"""

# ruff: noqa: E501  (the case table reads best one case a line)
from __future__ import annotations

import os
import resource
import signal
import sqlite3
import stat
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from voice_guide.journal.store import Journal, SessionInfo, connect, journal_path, list_sessions
from voice_guide.live.records import StepRecord
from voice_guide.sound.wavfile import write_wav

from .conftest import write

TIMEOUT_S = 90.0
ESC = "\x1b"


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    code: int
    words: str


def _header(channels: int, rate: int, width: int = 2, data_bytes: int = 1000, body: bytes = b"\x01" * 1000) -> bytes:
    """Return a PCM WAV whose header says what we like, whatever the data."""
    fmt = struct.pack(
        "<HHIIHH", 1, channels, rate, (rate * channels * width) & 0xFFFFFFFF, (channels * width) & 0xFFFF, width * 8
    )
    chunks = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_bytes) + body
    return b"RIFF" + struct.pack("<I", len(chunks) & 0xFFFFFFFF) + chunks


def build_files(folder: Path) -> None:
    """Make every hostile file the cases name."""
    write(folder, "my.yaml", "title: Mine\nsummary: S\nsteps:\n  - say: Hi.\n  - listen: a\n    for: 2s\n")
    write(folder, "p.yaml", "title: P\nsummary: S\nparams:\n  share: 1m\nsteps:\n  - listen: a\n    for: '{share}'\n")
    write_wav(folder / "talk.wav", np.zeros(16000, np.float32), 16000)
    write_wav(folder / "cue.wav", 0.1 * np.ones(800, np.float32), 16000)
    write(folder, "chime.yaml", "title: C\nsummary: S\nsteps:\n  - chime: cue.wav\n")
    os.link(folder / "my.yaml", folder / "hard.json")
    (folder / "sym.wav").symlink_to(folder / "talk.wav")
    os.mkfifo(folder / "fifo.yaml")
    os.mkfifo(folder / "fifo.wav")
    (folder / "dir").mkdir()
    nest = "title: T\nsummary: S\nsteps:\n  - repeat: 100\n    steps:\n      - repeat: 100\n        steps:\n"
    write(folder, "nest.yaml", nest + "          - repeat: 100\n            steps:\n              - say: hi\n")
    write(folder, "day.yaml", "title: T\nsummary: S\nsteps:\n  - pause: 9999999h\n")
    write(folder, "days.yaml", "title: T\nsummary: S\nsteps:\n  - repeat: 30\n    steps:\n      - pause: 1h\n")
    write(
        folder,
        "digits.yaml",
        "title: T\nsummary: S\nsteps:\n  - repeat: " + "9" * 5000 + "\n    steps:\n      - say: a\n",
    )
    write(folder, "surrogate.yaml", 'title: T\nsummary: S\nsteps:\n  - say: "a \\ud800 b"\n')
    write(folder, "escape.yaml", 'title: "Evil \\e[2J title"\nsummary: S\nsteps:\n  - say: hi\n')
    write(folder, "huge.yaml", "title: T\nsummary: S\nsteps:\n  - say: " + "word " * 12_000 + "\n")
    write(folder, "big.yaml", "title: T\nsummary: S\nsteps:\n" + "  - say: hello there\n" * 60_000)
    (folder / "channels.wav").write_bytes(_header(65535, 16000, data_bytes=0xFFFFFFF0))
    (folder / "1hz.wav").write_bytes(_header(1, 1))


CASES = [
    # outputs that would destroy an input
    Case("out-is-the-mic-file", ("run", "my.yaml", "--mic-file", "talk.wav", "--out", "talk.wav"), 2, "own input"),
    Case("out-is-a-symlink-to-the-mic", ("run", "my.yaml", "--mic-file", "talk.wav", "--out", "sym.wav"), 2, "own input"),
    Case("out-is-the-script", ("run", "my.yaml", "--no-mic", "--out", "my.yaml"), 2, "'.yaml'"),
    Case("log-is-the-script", ("run", "my.yaml", "--no-mic", "--out", "o.wav", "--log", "my.yaml"), 2, "'.yaml'"),
    Case("log-hard-link-to-script", ("run", "my.yaml", "--no-mic", "--out", "o.wav", "--log", "hard.json"), 2, "own input"),
    Case("cues-is-the-script", ("render", "my.yaml", "-o", "o.wav", "--cues", "my.yaml"), 2, "'.yaml'"),
    Case("cues-hard-link-to-script", ("render", "my.yaml", "-o", "o.wav", "--cues", "hard.json"), 2, "own input"),
    Case("render-over-its-cue-file", ("render", "chime.yaml", "-o", "cue.wav"), 2, "own input"),
    Case("out-and-record-one-file", ("run", "my.yaml", "--mic-file", "talk.wav", "--out", "x.wav", "--record", "x.wav"), 2, "one file"),
    # output paths that cannot be written
    Case("render-no-extension", ("render", "my.yaml", "-o", "t"), 2, "no extension"),
    Case("render-unknown-extension", ("render", "my.yaml", "-o", "t.aiff"), 2, "'.aiff'"),
    Case("render-to-a-folder", ("render", "my.yaml", "-o", "dir"), 2, "is a folder"),
    Case("record-missing-folder", ("run", "my.yaml", "--mic-file", "talk.wav", "--out", "o.wav", "--record", "/nonexistent/m.wav"), 2, "does not exist"),
    Case("out-missing-folder", ("run", "my.yaml", "--no-mic", "--out", "/nonexistent/o.wav"), 2, "does not exist"),
    Case("log-missing-folder", ("run", "my.yaml", "--no-mic", "--out", "o.wav", "--log", "/nonexistent/l.json"), 2, "does not exist"),
    Case("cues-missing-folder", ("render", "my.yaml", "-o", "o.wav", "--cues", "/nonexistent/c.json"), 2, "does not exist"),
    Case("out-unwritable-folder", ("run", "my.yaml", "--no-mic", "--out", "/proc/o.wav"), 2, "cannot write in"),
    Case("plot-no-extension", ("history", "plot", "-o", "plot"), 2, "no extension"),
    # files that never end or never were files
    Case("check-a-fifo", ("check", "fifo.yaml"), 2, "not a regular file"),
    Case("show-a-fifo", ("show", "fifo.yaml"), 2, "not a regular file"),
    Case("check-dev-urandom", ("check", "/dev/urandom"), 2, "not a regular file"),
    Case("check-dev-zero", ("check", "/dev/zero"), 2, "not a regular file"),
    Case("analyze-a-fifo", ("analyze", "fifo.wav"), 2, "not a regular file"),
    Case("analyze-dev-zero", ("analyze", "/dev/zero"), 2, "not a regular file"),
    Case("check-over-1-mb", ("check", "big.yaml"), 2, "larger than"),
    # runaway cost
    Case("check-nested-repeats", ("check", "nest.yaml"), 2, "5000 steps"),
    Case("render-nested-repeats", ("render", "nest.yaml", "-o", "n.wav"), 2, "5000 steps"),
    Case("check-pause-of-years", ("check", "day.yaml"), 2, "longer than a day"),
    Case("render-pause-of-years", ("render", "day.yaml", "-o", "d.wav"), 2, "longer than a day"),
    Case("run-pause-of-years", ("run", "day.yaml", "--no-mic", "--out", "d.wav"), 2, "longer than a day"),
    Case("check-30-hours", ("check", "days.yaml"), 2, "more than a day"),
    Case("set-a-year", ("show", "p.yaml", "--set", "share=9999999h"), 2, "longer than a day"),
    Case("check-5000-digit-repeat", ("check", "digits.yaml"), 2, "far too long"),
    Case("check-a-60000-character-say", ("check", "huge.yaml"), 2, "characters long"),
    # text that would crash printing or drive the terminal
    Case("check-lone-surrogate", ("check", "surrogate.yaml"), 2, "\\ud800"),
    Case("show-lone-surrogate", ("show", "surrogate.yaml"), 2, "\\ud800"),
    Case("show-escape-in-title", ("show", "escape.yaml"), 2, "\\x1b"),
    Case("escape-in-a-name", ("show", "my.yaml", "--a", "A\x1b[2J"), 2, "\\x1b"),
    # lying headers
    Case("analyze-65535-channels", ("analyze", "channels.wav"), 2, "65535 channels"),
    Case("analyze-1-hz", ("analyze", "1hz.wav"), 2, "1 Hz"),
    Case("mic-file-65535-channels", ("run", "my.yaml", "--mic-file", "channels.wav", "--out", "o.wav"), 2, "65535 channels"),
    Case("mic-channels-beyond-the-input", ("run", "my.yaml", "--mic-file", "talk.wav", "--out", "o.wav", "--mic-channels", "a=1,b=3", "--sample-rate", "16000"), 2, "has 1 channel"),
]  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    build_files(folder)
    return folder


def run_cli(
    args: tuple[str, ...], cwd: Path, home: Path, limit_bytes: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run voice-guide in `cwd` as its own process; fail the test if it does not end within TIMEOUT_S."""

    def limit() -> None:
        if limit_bytes is not None:  # a disk that fills: writes past this size fail with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    env = {**os.environ, "VOICE_GUIDE_HOME": str(home)}
    if limit_bytes is not None:
        # The sound server's client library would meet the limit first, making its shared
        # memory (and printing about it); the full disk is meant for our files only.
        config = cwd / "pulse-client.conf"
        config.write_text("enable-shm = no\nenable-memfd = no\nautospawn = no\n")
        env["PULSE_CLIENTCONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "voice_guide", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        preexec_fn=limit,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    err = result.stderr
    for bad in ("Traceback", "internal error", "Exception ignored"):
        assert bad not in err, err
    assert result.returncode == code, err
    # A session that ran says where it was saved before the error; that line is promised too.
    lines = [line for line in err.splitlines() if not line.startswith("voice-guide: saved as session")]
    assert len(lines) == 1 and lines[0].startswith("voice-guide: error: "), err
    assert words in err, err
    assert ESC not in err + result.stdout


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_hostile_input_is_one_line_and_its_exit_code(case: Case, files: Path, home: Path) -> None:
    before = {p.name: p.read_bytes() for p in files.iterdir() if p.is_file() and not stat.S_ISFIFO(p.lstat().st_mode)}
    assert_one_line(run_cli(case.args, files, home), case.code, case.words)
    # Nothing the command read was touched, and nothing half-written was left behind.
    after = {p.name: p.read_bytes() for p in files.iterdir() if p.is_file() and not stat.S_ISFIFO(p.lstat().st_mode)}
    assert after == before


def test_list_escapes_what_it_skips(home: Path, files: Path) -> None:
    (home / "scripts").mkdir(exist_ok=True)
    (home / "scripts" / "evil.yaml").write_bytes((files / "escape.yaml").read_bytes())
    result = run_cli(("list",), files, home)
    assert result.returncode == 0 and ESC not in result.stdout + result.stderr
    assert "evil.yaml:1" in result.stderr and "\\x1b" in result.stderr


def test_history_escapes_titles_already_in_the_journal(home: Path, files: Path) -> None:
    # A title written by an older version, before scripts were checked for control characters.
    journal = Journal(journal_path(home / "data"), SessionInfo("x", f"Bad {ESC}[2J title", "A", "B", None), print)
    journal.close("complete", 1.0, 0)
    connect(journal_path(home / "data")).execute(
        "INSERT INTO steps VALUES (1, 0, 'listen', 'a talks', 0, 1, 0, ?, 1, 1, 0, 0, 0, 'time', 0)", (f"A{ESC}[2J",)
    )
    exports = [("history", "export", "1", "--format", fmt) for fmt in ("csv", "vtt", "rttm")]
    for args in (("history",), ("history", "show", "1"), ("history", "--json"), *exports):
        result = run_cli(args, files, home)
        assert result.returncode == 0, result.stderr
        assert ESC not in result.stdout


@pytest.mark.parametrize("command", ["render", "run"])
def test_a_full_disk_is_one_line_exit_1_and_leaves_the_old_file(command: str, tmp_path: Path, home: Path) -> None:
    build_files(tmp_path)
    old = tmp_path / "o.wav"
    old.write_bytes(b"the previous render, whole")
    args = (
        ("render", "my.yaml", "-o", "o.wav")
        if command == "render"
        else ("run", "my.yaml", "--no-mic", "--out", "o.wav")
    )
    # Warm the speech cache first, so only the output itself meets the full disk.
    assert run_cli(("prepare", "my.yaml"), tmp_path, home).returncode == 0
    result = run_cli((*args, "--sample-rate", "48000"), tmp_path, home, limit_bytes=60_000)
    assert_one_line(result, 1, "cannot write")
    assert old.read_bytes() == b"the previous render, whole"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.wav")]


def test_sigkill_mid_run_leaves_the_old_output_and_recording_whole(tmp_path: Path, home: Path) -> None:
    build_files(tmp_path)
    write(tmp_path, "slow.yaml", "title: S\nsummary: S\nsteps:\n  - listen: a\n    for: 30s\n")
    write_wav(tmp_path / "mic.wav", np.zeros(16000 * 40, np.float32), 16000)
    out, rec = tmp_path / "o.wav", tmp_path / "r.wav"
    for kill in range(3):
        out.write_bytes(b"complete old output %d" % kill)
        rec.write_bytes(b"complete old recording %d" % kill)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voice_guide",
                "run",
                "slow.yaml",
                "--mic-file",
                "mic.wav",
                "--out",
                "o.wav",
                "--record",
                "r.wav",
                "--realtime",
                "--sample-rate",
                "16000",
                "--quiet-summary",
            ],
            cwd=tmp_path,
            env={**os.environ, "VOICE_GUIDE_HOME": str(home)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # Kill once both temp files have samples in them: mid-write, not before it.
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline:
                temps = [p for p in tmp_path.iterdir() if p.name.startswith((".o.wav.", ".r.wav."))]
                if len(temps) == 2 and all(p.stat().st_size > 4096 for p in temps):
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the run never started writing")
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=TIMEOUT_S)
        assert out.read_bytes() == b"complete old output %d" % kill
        assert rec.read_bytes() == b"complete old recording %d" % kill


def test_a_recording_is_private_and_appears_only_at_the_end(tmp_path: Path, home: Path) -> None:
    build_files(tmp_path)
    write_wav(tmp_path / "mic.wav", np.zeros(16000 * 3, np.float32), 16000)
    args = ("run", "my.yaml", "--mic-file", "mic.wav", "--out", "o.wav", "--record", "r.wav", "--sample-rate", "16000")
    result = run_cli(args, tmp_path, home)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "r.wav").stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_damaged_journal_is_moved_aside_and_the_next_session_starts_fresh(tmp_path: Path, home: Path) -> None:
    build_files(tmp_path)
    assert (
        run_cli(("run", "my.yaml", "--no-mic", "--out", "o.wav", "--sample-rate", "8000"), tmp_path, home).returncode
        == 0
    )
    path = journal_path(home / "data")
    raw = bytearray(path.read_bytes())
    raw[4096:] = bytes(len(raw) - 4096)  # every page after the first zeroed: tables gone, header fine
    path.write_bytes(bytes(raw))
    result = run_cli(("history",), tmp_path, home)
    assert_one_line(result, 1, "damaged")
    aside = [p for p in (home / "data").iterdir() if p.name.startswith("journal.damaged-")]
    assert len(aside) == 1 and str(aside[0]) in result.stderr
    assert aside[0].read_bytes() == bytes(raw)  # moved, not rewritten: the old sessions may still be recovered
    assert (
        run_cli(("run", "my.yaml", "--no-mic", "--out", "o.wav", "--sample-rate", "8000"), tmp_path, home).returncode
        == 0
    )
    rows = list_sessions(connect(path), tests=True)
    assert len(rows) == 1 and rows[0].ended_by == "complete"


def _record(index: int) -> StepRecord:
    return StepRecord(index, "say", "x" * 20_000, float(index), index + 1.0, None, False)


def test_a_journal_that_could_not_be_written_catches_up(tmp_path: Path) -> None:
    warnings: list[str] = []
    path = journal_path(tmp_path)
    journal = Journal(path, SessionInfo("s", "S", "A", "B", None), warnings.append)
    db = journal._db
    assert db is not None
    # A real SQLITE_FULL: this connection may not grow the file by another page.
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    journal.step_finished(_record(0))
    assert len(warnings) == 1 and "catches up" in warnings[0], warnings
    assert not connect(path).execute("SELECT COUNT(*) FROM steps").fetchone()[0]
    for index in (1, 2):  # space again (a fresh connection has no page limit)
        journal.step_finished(_record(index))
    journal.close("complete", 3.0, 0)
    assert "caught up" in warnings[-1] and len(warnings) == 2, warnings
    steps = connect(path).execute("SELECT idx FROM steps ORDER BY idx").fetchall()
    assert [s[0] for s in steps] == [0, 1, 2]
    assert list_sessions(connect(path), tests=True)[0].ended_by == "complete"


def test_a_journal_unwritable_to_the_end_says_what_was_lost(tmp_path: Path) -> None:
    warnings: list[str] = []
    blocker = tmp_path / "data"
    blocker.write_text("a file where the journal's folder should be")
    journal = Journal(journal_path(blocker), SessionInfo("s", "S", "A", "B", None), warnings.append)
    journal.step_finished(_record(0))
    journal.close("complete", 1.0, 0)
    assert len(warnings) == 2 and "1 step of" in warnings[1], warnings


def test_sqlite_reports_what_the_journal_treats_as_damage(tmp_path: Path) -> None:
    # The words connect() looks for must be SQLite's own, or damage would pass unnoticed.
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"not a database at all" * 100)
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        sqlite3.connect(bad).execute("PRAGMA user_version").fetchone()
