"""The journal: sessions land whole, survive Ctrl-C and kill -9, stay private, and read back."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voice_guide.journal.store import Journal, SessionInfo, connect, journal_path, list_sessions
from voice_guide.journal.views import history_bars
from voice_guide.live.records import StepRecord
from voice_guide.live.turns import Turn

from .conftest import CliResult, write

Cli = Callable[..., CliResult]
RATE = 16_000
TWO_TURNS = """\
title: Two turns
summary: Each partner talks once.
steps:
  - say: Ready.
  - listen: a
    for: 6s
    until_silence: 1.5s
  - say: Swap.
  - listen: b
    for: 6s
    until_silence: 1.5s
  - chime: end
"""
SLOW = """\
title: Slow
summary: Long enough to interrupt.
steps:
  - say: One.
  - pause: 1s
  - say: Two.
  - pause: 60s
  - say: Three.
"""


def speech_bursts(total_s: float, spans: list[tuple[float, float]]) -> np.ndarray:
    rng = np.random.default_rng(3)
    mic = 0.0005 * rng.standard_normal(int(total_s * RATE))
    for a, b in spans:
        n = int((b - a) * RATE)
        t = np.arange(n) / RATE
        # A voiced buzz (harmonics of 140 Hz), syllable-modulated: the detector takes noise for no talk.
        buzz = sum(np.sin(2 * np.pi * k * 140 * t) / k for k in range(1, 16)) * (0.6 + 0.4 * np.sin(8 * t))
        mic[int(a * RATE) : int(a * RATE) + n] += 0.05 * np.asarray(buzz)
    return mic.astype(np.float32)


def run_offline(cli: Cli, tmp_path: Path, spans: list[tuple[float, float]]) -> CliResult:
    from voice_guide.sound.wavfile import write_wav

    script = write(tmp_path, "two.yaml", TWO_TURNS)
    mic = tmp_path / "mic.wav"
    write_wav(mic, speech_bursts(40, spans), RATE)
    return cli(
        "run",
        str(script),
        "--a",
        "Ann",
        "--b",
        "Bo",
        "--mic-file",
        str(mic),
        "--out",
        str(tmp_path / "out.wav"),
        "--sample-rate",
        str(RATE),
        "--log",
        str(tmp_path / "log.json"),
        "--quiet-summary",
    )


def test_offline_session_lands_in_the_journal(cli: Cli, tmp_path: Path, home: Path) -> None:
    result = run_offline(cli, tmp_path, [(2.0, 4.0), (9.0, 10.0)])
    assert result.code == 0, result.err
    log = json.loads((tmp_path / "log.json").read_text())
    rows = list_sessions(connect(journal_path(home / "data")))
    assert len(rows) == 1
    row = rows[0]
    assert row.ended_by == "complete" and row.script == "two"
    turns = [e for e in log["events"] if e["kind"] == "listen"]
    assert row.recap.talk_s["Ann"] == pytest.approx(turns[0]["talk_s"], abs=1e-6)
    assert row.recap.talk_s["Bo"] == pytest.approx(turns[1]["talk_s"], abs=1e-6)
    assert row.recap.talk_s["Ann"] == pytest.approx(2.0, abs=0.35)
    assert row.recap.balance == pytest.approx(row.recap.talk_s["Ann"] / row.recap.total_talk_s)
    shown = json.loads(cli("history", "show", str(row.id), "--json").out)
    assert [s["kind"] for s in shown["steps"]] == ["say", "listen", "say", "listen", "chime"]


def test_history_listing_json_csv_and_filters(cli: Cli, tmp_path: Path) -> None:
    assert run_offline(cli, tmp_path, [(2.0, 3.0)]).code == 0
    assert run_offline(cli, tmp_path, [(2.0, 3.0)]).code == 0
    # Offline runs are tests of the program: listed only when asked, and marked.
    assert json.loads(cli("history", "--json").out) == []
    assert "add --tests" in cli("history").err
    rows = json.loads(cli("history", "--json", "--tests").out)
    assert len(rows) == 2 and rows[0]["id"] > rows[1]["id"] and all(r["test"] for r in rows)
    assert json.loads(cli("history", "--json", "--tests", "--script", "nope").out) == []
    assert json.loads(cli("history", "--json", "--tests", "--since", "2999-01-01").out) == []
    assert "since 2999-01-01" in cli("history", "--tests", "--since", "2999-01-01").err
    text = cli("history", "--tests").out.splitlines()
    assert text[0].startswith("last 30 days: 0 sessions")  # tests never count in the totals
    assert "(test)" in text[1]
    assert cli("history", "--csv", "--tests").out.splitlines()[0].startswith("id,started_at,script")
    assert cli("history", "--since", "yesterday").code == 2


def _journal_session(home: Path, name_a: str, turns: list[tuple[float, float]], started_at: str | None = None) -> int:
    """Journal one real (not test) session directly, with (talk_s, longest_silence_s) per turn alternating a/b."""
    journal = Journal(journal_path(home / "data"), SessionInfo("two", "Two turns", name_a, "Bo", None), print)
    assert journal.session_id is not None
    for i, (talk_s, silence_s) in enumerate(turns):
        who = name_a if i % 2 == 0 else "Bo"
        turn = Turn(
            who=who,
            start_s=10.0 * i,
            end_s=10.0 * i + 9,
            planned_s=9.0,
            talk_s=talk_s,
            first_speech_s=0.5 if talk_s else None,
            longest_silence_s=silence_s,
            overrun_s=0.0,
            ended_by="time",
            interruptions=0,
        )
        journal.step_finished(StepRecord(i, "listen", f"{who} talks", 10.0 * i, 10.0 * i + 9, turn))
    journal.close("complete", 120.0, 0)
    if started_at is not None:
        connect(journal_path(home / "data")).execute(
            "UPDATE sessions SET started_at=? WHERE id=?", (started_at, journal.session_id)
        )
    return journal.session_id


def test_history_shows_local_times_and_names_in_totals(cli: Cli, home: Path) -> None:
    _journal_session(home, "Ann", [(60.0, 2.0), (60.0, 3.0)], started_at="2026-12-01T23:30:00+00:00")
    text = cli("history").out.splitlines()
    assert text[0] == "last 30 days: 1 session, 2 minutes, Ann's share of talking with Bo 50% on average"
    local = datetime.fromisoformat("2026-12-01T23:30:00+00:00").astimezone().strftime("%Y-%m-%d %H:%M")
    assert local in text[1]
    row = json.loads(cli("history", "--json").out)[0]
    assert datetime.fromisoformat(row["started_at"]).utcoffset() == datetime.now().astimezone().utcoffset()


def test_every_view_of_a_session_reports_the_same_figures(cli: Cli, home: Path, tmp_path: Path) -> None:
    # One turn nobody spoke in (60 s of silence) and one with a 5 s pause: the longest pause is 5 s everywhere.
    sid = _journal_session(home, "Ann", [(0.0, 60.0), (20.0, 5.0)])
    listing = json.loads(cli("history", "--json").out)[0]
    shown = json.loads(cli("history", "show", str(sid), "--json").out)
    for doc in (listing, shown):
        assert doc["longest_pause_s"] == 5.0 and doc["talk_s"] == {"Ann": 0.0, "Bo": 20.0} and doc["balance"] == 0.0
    assert "longest pause 5s" in cli("history", "show", str(sid)).out
    rows = list(csv.DictReader(io.StringIO(cli("history", "--csv").out)))
    assert float(rows[0]["longest_pause_s"]) == 5.0 and float(rows[0]["b_talk_s"]) == 20.0
    exported = list(csv.DictReader(io.StringIO(cli("history", "export", str(sid), "--format", "csv").out)))
    assert sum(float(r["talk_s"]) for r in exported) == 20.0
    bars = history_bars(list_sessions(connect(journal_path(home / "data"))))
    assert (bars[0].a_minutes, bars[0].b_minutes, bars[0].a_share_pct) == (0.0, 20.0 / 60, 0.0)


def test_plot_labels_never_repeat_a_day_and_since_says_when_nothing_is_in_range(cli: Cli, home: Path) -> None:
    for _ in range(5):
        _journal_session(home, "Ann", [(30.0, 1.0), (20.0, 1.0)], started_at="2026-12-02T10:00:00+00:00")
    labels = [b.label for b in history_bars(list_sessions(connect(journal_path(home / "data"))))]
    assert len(set(labels)) == 5 and labels[0].endswith("#1") and labels[-1].endswith("#5")
    result = cli("history", "plot", "-o", str(home / "h.png"), "--since", "2999-01-01")
    assert result.code == 2 and "no sessions since 2999-01-01" in result.err and "run an exercise" not in result.err


def test_exports_parse_back(cli: Cli, tmp_path: Path) -> None:
    assert run_offline(cli, tmp_path, [(2.0, 4.0), (9.0, 10.0)]).code == 0
    rttm = cli("history", "export", "1", "--format", "rttm").out.splitlines()
    assert len(rttm) == 2
    fields = rttm[0].split()
    assert fields[0] == "SPEAKER" and len(fields) == 10 and fields[7] == "Ann"
    assert float(fields[4]) > 0
    vtt = cli("history", "export", "1", "--format", "vtt").out
    assert vtt.startswith("WEBVTT") and vtt.count("-->") == 2
    rows = list(csv.DictReader(io.StringIO(cli("history", "export", "1", "--format", "csv").out)))
    assert [r["who"] for r in rows] == ["Ann", "Bo"]
    assert cli("history", "export", "1", "--format", "mp4").code == 2


def test_plots_are_real_pngs_that_follow_the_data(cli: Cli, tmp_path: Path) -> None:
    assert run_offline(cli, tmp_path, [(2.0, 4.0)]).code == 0
    first = tmp_path / "one.png"
    assert cli("history", "plot", "-o", str(first), "--tests").code == 0
    assert run_offline(cli, tmp_path, [(2.0, 5.0), (9.0, 12.0)]).code == 0
    second = tmp_path / "two.png"
    assert cli("history", "plot", "-o", str(second), "--tests").code == 0
    for png in (first, second):
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert first.read_bytes() != second.read_bytes()
    timeline = tmp_path / "session.png"
    assert cli("history", "show", "2", "--plot", str(timeline)).code == 0
    assert timeline.read_bytes()[:4] == b"\x89PNG"


def test_forget_really_deletes(cli: Cli, tmp_path: Path, home: Path) -> None:
    assert run_offline(cli, tmp_path, [(2.0, 3.0)]).code == 0
    assert cli("history", "forget", "1", "--yes").out.strip() == "deleted 1 session"
    assert json.loads(cli("history", "--json").out) == []
    assert cli("history", "forget", "7", "--yes").code == 2
    for command in ("show", "export"):  # get_session's UsageError: one line, exit 2
        gone = cli("history", command, "1")
        assert (gone.code, gone.err) == (
            2,
            "voice-guide: error: no session 1 in the journal (see 'voice-guide history' for the ids)\n",
        )
    db = sqlite3.connect(journal_path(home / "data"))
    assert db.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == 0


def test_journal_files_are_private(cli: Cli, tmp_path: Path, home: Path) -> None:
    assert run_offline(cli, tmp_path, [(2.0, 3.0)]).code == 0
    path = journal_path(home / "data")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def _child(home: Path, script: Path, out: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "VOICE_GUIDE_HOME": str(home)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voice_guide",
            "run",
            str(script),
            "--no-mic",
            "--out",
            str(out),
            "--realtime",
            "--sample-rate",
            "16000",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_step(proc: subprocess.Popen[str], words: str) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if words in line:
            return
    raise AssertionError(f"never saw {words!r}")


def test_ctrl_c_leaves_a_quit_session_with_its_finished_steps(tmp_path: Path, home: Path) -> None:
    script = write(tmp_path, "slow.yaml", SLOW)
    proc = _child(home, script, tmp_path / "o.wav")
    _wait_for_step(proc, "pause one minute")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    rows = list_sessions(connect(journal_path(home / "data")))
    assert rows[0].ended_by == "quit"
    db = connect(journal_path(home / "data"))
    kinds = [r["kind"] for r in db.execute("SELECT kind FROM steps ORDER BY start_s")]
    assert kinds[:3] == ["say", "pause", "say"]


def test_kill_9_leaves_an_intact_journal(tmp_path: Path, home: Path) -> None:
    script = write(tmp_path, "slow.yaml", SLOW)
    proc = _child(home, script, tmp_path / "o.wav")
    _wait_for_step(proc, "pause one minute")
    time.sleep(0.3)
    proc.kill()
    proc.wait(timeout=10)
    db = connect(journal_path(home / "data"))
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == 3
    assert list_sessions(db)[0].ended_by == "unfinished"


def test_two_processes_write_at_once(tmp_path: Path, home: Path) -> None:
    script = write(tmp_path, "quick.yaml", "title: Q\nsummary: S\nsteps:\n  - say: Hello there.\n  - pause: 1s\n")
    env = {**os.environ, "VOICE_GUIDE_HOME": str(home)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voice_guide",
                "run",
                str(script),
                "--no-mic",
                "--out",
                str(tmp_path / f"o{i}.wav"),
                "--sample-rate",
                "16000",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert "journal is not being written" not in err, err
    rows = list_sessions(connect(journal_path(home / "data")))
    assert len(rows) == 2 and all(r.ended_by == "complete" for r in rows)


def test_unwritable_journal_warns_once_and_the_session_goes_on(cli: Cli, tmp_path: Path, home: Path) -> None:
    # A file where the data folder should be: no journal can be made there, even by root.
    (home / "data").write_text("not a folder")
    result = run_offline(cli, tmp_path, [(2.0, 3.0)])
    assert result.code == 0, result.err
    assert result.err.count("journal is not being written") == 1
    assert "not saved: the journal could not be written" in result.err
    assert json.loads((tmp_path / "log.json").read_text())["ended_by"] == "complete"


ROUNDS = 200


def _open_and_close_each_round(folder: str, start: Any, warnings: Any) -> None:
    """Open and close a brand-new journal per round, in step with the other process."""
    for round_ in range(ROUNDS):
        notes: list[str] = []
        start.wait(timeout=30)  # both processes open the same new file at once
        path = Path(folder) / f"r{round_}" / "journal.sqlite3"
        Journal(path, SessionInfo("s", "S", "A", "B", None), notes.append).close("complete", 1.0, 0)
        warnings.put((round_, notes))


def test_a_new_journal_opened_by_two_processes_at_once_works_for_both(tmp_path: Path) -> None:
    # Two processes switching a brand-new file to WAL used to see "database is locked"
    # at once (a few rounds in 200); opening now retries within the busy timeout.
    # Two long-lived processes meet at a barrier each round: forking two per round
    # cost most of a minute (two under load) for the same 200 races.
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(2)
    warnings = ctx.Queue()
    procs = [ctx.Process(target=_open_and_close_each_round, args=(str(tmp_path), start, warnings)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [warnings.get(timeout=60) for _ in range(2 * ROUNDS)]
    for p in procs:
        p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0, 0]
    assert [r for r in results if r[1]] == []
