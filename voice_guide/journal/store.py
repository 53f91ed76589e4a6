"""The journal: every session and its steps in SQLite, written as the session goes.

Each finished step is committed at once, so Ctrl-C, a crash or a pulled plug
leaves everything up to the last finished step. No audio is ever stored.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from voice_guide.errors import UsageError, VoiceGuideError
from voice_guide.live.records import StepRecord
from voice_guide.script import Step

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000

_MIGRATIONS: dict[int, str] = {
    1: """
        CREATE TABLE sessions (
            id          INTEGER PRIMARY KEY,
            script_id   TEXT NOT NULL,
            title       TEXT NOT NULL,
            name_a      TEXT NOT NULL,
            name_b      TEXT NOT NULL,
            settings    TEXT NOT NULL,         -- JSON: voice, rate, mic, headphones, params
            started_at  TEXT NOT NULL,         -- ISO 8601, UTC
            ended_at    TEXT,
            ended_by    TEXT,                  -- complete, quit or error, NULL while running or killed
            duration_s  REAL,
            underruns   INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE steps (
            session_id  INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            idx         INTEGER NOT NULL,
            kind        TEXT NOT NULL,
            label       TEXT NOT NULL,
            start_s     REAL NOT NULL,
            end_s       REAL NOT NULL,
            skipped     INTEGER NOT NULL DEFAULT 0,
            who         TEXT,
            planned_s   REAL,
            talk_s      REAL,
            first_speech_s REAL,
            longest_silence_s REAL,
            overrun_s   REAL,
            ended_by    TEXT,
            interruptions INTEGER,
            PRIMARY KEY (session_id, idx, start_s)
        );
        CREATE INDEX sessions_started ON sessions(started_at);
    """,
}


class JournalError(VoiceGuideError):
    """The journal cannot be read or written."""


def journal_path(data_dir: Path) -> Path:
    """Return where the journal database lives."""
    return data_dir / "journal.sqlite3"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextlib.contextmanager
def _private_umask() -> Iterator[None]:
    # The database and its WAL/SHM files are created 0600, never world-readable.
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating and migrating if needed) the journal at `path`."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return _open(path)
        except sqlite3.OperationalError as exc:
            # Switching a new file to WAL can report "locked" at once, without waiting on
            # the busy timeout, when another process opens it at the same moment: try again.
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise JournalError(
                    f"cannot open the journal {path}: {exc}", "check the folder's permissions and free space"
                ) from None
            time.sleep(0.02)
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(
                f"cannot open the journal {path}: {exc}", "check the folder's permissions and free space"
            ) from None


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _private_umask():
        db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA foreign_keys = ON")
            _migrate(db)
        except BaseException:
            db.close()
            raise
    return db


def _migrate(db: sqlite3.Connection) -> None:
    if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return
    # Read the version inside a write transaction: two processes opening a new
    # journal at once must not both create the tables.
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"the journal was written by a newer voice-guide (schema {version})", "upgrade voice-guide to read it"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            # One statement at a time: executescript would commit outside this transaction.
            for statement in filter(str.strip, _MIGRATIONS[target].split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {target}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


@dataclass(frozen=True)
class SessionInfo:
    """What is known about a session when it starts."""

    script_id: str
    title: str
    name_a: str
    name_b: str
    settings: Mapping[str, Any]


class Journal:
    """Writes one session as it goes; an Observer for the session loop.

    A journal that cannot be written (read-only folder, full disk) warns once and
    lets the session go on: losing the record must never stop the exercise.
    """

    def __init__(self, path: Path, info: SessionInfo, warn: Any) -> None:
        self.path = path
        self.info = info
        self.warn = warn
        self.session_id: int | None = None
        self._db: sqlite3.Connection | None = None
        try:
            self._db = connect(path)
            cur = self._db.execute(
                "INSERT INTO sessions (script_id, title, name_a, name_b, settings, started_at) VALUES (?,?,?,?,?,?)",
                (info.script_id, info.title, info.name_a, info.name_b, json.dumps(dict(info.settings)), _now()),
            )
            self.session_id = cur.lastrowid
        except (JournalError, sqlite3.Error, OSError) as exc:
            self._give_up(exc)

    def _give_up(self, exc: BaseException) -> None:
        message = exc.one_line() if isinstance(exc, VoiceGuideError) else str(exc)
        self.warn(f"warning: the journal is not being written ({message}); the session goes on")
        self._db = None

    # Observer methods
    def step_started(self, index: int, total: int, step: Step, start_s: float) -> None:
        """Nothing to store until a step is finished."""

    def heard(self, level_dbfs: float, speaking: Mapping[str, bool]) -> None:
        """Levels are never stored."""

    def note(self, message: str) -> None:
        """Notes are not stored."""

    def step_finished(self, record: StepRecord) -> None:
        """Commit the finished step at once."""
        if self._db is None:
            return
        t = record.turn
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO steps VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    self.session_id,
                    record.index,
                    record.kind,
                    record.label,
                    record.start_s,
                    record.end_s,
                    int(record.skipped),
                    t.who if t else None,
                    t.planned_s if t else None,
                    t.talk_s if t else None,
                    t.first_speech_s if t else None,
                    t.longest_silence_s if t else None,
                    t.overrun_s if t else None,
                    t.ended_by if t else None,
                    t.interruptions if t else None,
                ),
            )
        except sqlite3.Error as exc:
            self._give_up(exc)

    def close(self, ended_by: str, duration_s: float, underruns: int) -> None:
        """Mark the session finished (complete, quit or error)."""
        if self._db is None:
            return
        try:
            self._db.execute(
                "UPDATE sessions SET ended_at=?, ended_by=?, duration_s=?, underruns=? WHERE id=?",
                (_now(), ended_by, duration_s, underruns, self.session_id),
            )
            self._db.close()
        except sqlite3.Error as exc:
            self._give_up(exc)
        self._db = None


# ---------------------------------------------------------------- reading


def _session_row(db: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    turns = db.execute(
        "SELECT who, SUM(talk_s) AS talk, MAX(longest_silence_s) AS pause, SUM(overrun_s) AS overrun,"
        " SUM(interruptions) AS interruptions FROM steps WHERE session_id=? AND kind='listen'"
        " GROUP BY who",
        (row["id"],),
    ).fetchall()
    talk = {row["name_a"]: 0.0, row["name_b"]: 0.0}
    for t in turns:
        if t["who"] in talk:
            talk[t["who"]] += t["talk"] or 0.0
    total = sum(talk.values())
    return {
        "id": row["id"],
        "script": row["script_id"],
        "title": row["title"],
        "a": row["name_a"],
        "b": row["name_b"],
        "started_at": row["started_at"],
        "ended_at": row["ended_at"],
        "ended_by": row["ended_by"] or "unfinished",
        "duration_s": row["duration_s"],
        "talk_s": talk,
        "balance": talk[row["name_a"]] / total if total else None,
        "longest_pause_s": max((t["pause"] or 0.0 for t in turns), default=0.0),
        "overrun_s": sum(t["overrun"] or 0.0 for t in turns),
        "interruptions": sum(t["interruptions"] or 0 for t in turns),
        "settings": json.loads(row["settings"]),
    }


def list_sessions(db: sqlite3.Connection, since: str | None = None, script: str | None = None) -> list[dict[str, Any]]:
    """Return session summaries, newest first."""
    query = "SELECT * FROM sessions WHERE 1=1"
    args: list[Any] = []
    if since:
        query += " AND started_at >= ?"
        args.append(since)
    if script:
        query += " AND script_id = ?"
        args.append(script)
    rows = db.execute(query + " ORDER BY started_at DESC, id DESC", args).fetchall()
    return [_session_row(db, r) for r in rows]


def session_steps(db: sqlite3.Connection, session_id: int) -> list[dict[str, Any]]:
    """Return the steps of one session in play order."""
    rows = db.execute("SELECT * FROM steps WHERE session_id=? ORDER BY start_s, idx", (session_id,)).fetchall()
    # A Row iterates over its values; its keys() are the column names.
    return [{k: r[k] for k in r.keys() if k != "session_id"} for r in rows]  # noqa: SIM118


def get_session(db: sqlite3.Connection, session_id: int) -> dict[str, Any]:
    """Return one session with its steps; raise JournalError if there is none."""
    row = db.execute("SELECT * FROM sessions WHERE id=?", (session_id,)).fetchone()
    if row is None:
        raise UsageError(f"no session {session_id} in the journal", "see 'voice-guide history' for the ids")
    return {**_session_row(db, row), "steps": session_steps(db, session_id)}


def forget(db: sqlite3.Connection, session_ids: Sequence[int] | None) -> int:
    """Delete sessions for good (all when None) and reclaim the space; return how many."""
    if session_ids is None:
        count = db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
        db.execute("DELETE FROM sessions")
    else:
        count = 0
        for sid in session_ids:
            count += db.execute("DELETE FROM sessions WHERE id=?", (sid,)).rowcount
    db.execute("VACUUM")
    return int(count)
