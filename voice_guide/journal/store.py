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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from voice_guide.errors import UsageError, VoiceGuideError
from voice_guide.live.recap import Recap, recap
from voice_guide.live.records import QuietObserver, StepRecord
from voice_guide.script.durations import plural

SCHEMA_VERSION = 2
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
    # Offline runs (--mic-file, --out) are tests of the program, not a couple's sessions.
    2: "ALTER TABLE sessions ADD COLUMN is_test INTEGER NOT NULL DEFAULT 0",
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


class JournalDamaged(JournalError):
    """The journal file is damaged; it has been moved aside and a fresh one starts."""


# SQLite's words for a file that is not (or no longer) a sound database.
_DAMAGED = ("malformed", "not a database", "file is encrypted")


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating and migrating if needed) the journal at `path`.

    A damaged journal is moved aside with the date in its name and JournalDamaged
    says where; the next connect starts a fresh file.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return _open(path)
        except sqlite3.DatabaseError as exc:
            text = str(exc).lower()
            if any(word in text for word in _DAMAGED):
                raise _set_aside(path, exc) from None
            # Switching a new file to WAL can report "locked" at once, without waiting on
            # the busy timeout, when another process opens it at the same moment: try again.
            if "locked" not in text or time.monotonic() > deadline:
                raise JournalError(
                    f"cannot open the journal {path}: {exc}", "check the folder's permissions and free space"
                ) from None
            time.sleep(0.02)
        except OSError as exc:
            raise JournalError(
                f"cannot open the journal {path}: {exc}", "check the folder's permissions and free space"
            ) from None


def _set_aside(path: Path, exc: BaseException) -> JournalError:
    """Move a damaged journal (and its WAL and SHM files) aside; return the error that says where."""
    stamp = datetime.now().strftime("%Y-%m-%d-%H%M%S")
    aside = path.with_name(f"{path.stem}.damaged-{stamp}{path.suffix}")
    try:
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{path}{suffix}")
            if part.exists():
                os.replace(part, Path(f"{aside}{suffix}"))
    except OSError as move:
        return JournalError(
            f"the journal {path} is damaged ({exc}) and could not be moved aside: {move.strerror or move}",
            "move it away yourself; a new journal starts with the next session",
        )
    return JournalDamaged(
        f"the journal was damaged ({exc}); it is kept as {aside}",
        "the next session starts a fresh journal; sqlite3's .recover may save the old sessions",
    )


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _private_umask():
        db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA foreign_keys = ON")
            # A journal holds kilobytes: checking every page on open costs milliseconds and
            # finds damage here, not in the middle of a listing.
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise sqlite3.DatabaseError("database disk image is malformed")
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
        # Ctrl-C can land after COMMIT: a ROLLBACK then would fail and hide it.
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


@dataclass(frozen=True)
class PlayedWith:
    """How a session was played, as the journal keeps it beside the session."""

    voice: str | None
    engine: str | None
    rate_wpm: int
    sample_rate_hz: int
    mic: bool
    headphones: bool
    sets: tuple[str, ...] = ()
    offline: bool = False
    apart: str | None = None  # "host" or "join"; None when the session ran on one device

    def as_json(self) -> dict[str, object]:
        """Return the document stored in the session's row (and shown by `history --json`)."""
        doc: dict[str, object] = {
            "voice": self.voice,
            "rate_wpm": self.rate_wpm,
            "sample_rate": self.sample_rate_hz,
            "mic": self.mic,
            "headphones": self.headphones,
            "set": list(self.sets),
        }
        if self.engine is not None:
            doc["engine"] = self.engine
        if self.apart is None:
            doc["offline"] = self.offline
        else:
            doc["apart"] = self.apart
        return doc


@dataclass(frozen=True)
class SessionInfo:
    """What is known about a session when it starts; `settings` None when nobody said (a test's journal)."""

    script_id: str
    title: str
    name_a: str
    name_b: str
    settings: PlayedWith | None
    is_test: bool = False


class Journal(QuietObserver):
    """Writes one session as it goes; an Observer for the session loop.

    A journal that cannot be written (read-only folder, full disk) warns once and
    lets the session go on: losing the record must never stop the exercise. What
    could not be written is kept and written at the next step or at the end, so a
    journal that was unwritable for a while catches up when it can. A damaged
    journal is moved aside and the session goes into a fresh one.
    """

    def __init__(self, path: Path, info: SessionInfo, warn: Callable[[str], None]) -> None:
        self.path = path
        self.info = info
        self.warn = warn
        self.session_id: int | None = None
        self._db: sqlite3.Connection | None = None
        self._started_at = _now()
        self._pending: list[StepRecord] = []
        self._end: tuple[str, str, float, int] | None = None
        self._failing = False
        self._flush()

    def _writable(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self._db = connect(self.path)
            except JournalDamaged as exc:
                self.warn(f"warning: {exc.one_line()}")
                self._db = connect(self.path)
        if self.session_id is None:
            info = self.info
            cur = self._db.execute(
                "INSERT INTO sessions (script_id, title, name_a, name_b, settings, started_at, is_test)"
                " VALUES (?,?,?,?,?,?,?)",
                (
                    info.script_id,
                    info.title,
                    info.name_a,
                    info.name_b,
                    json.dumps(info.settings.as_json() if info.settings is not None else {}),
                    self._started_at,
                    int(info.is_test),
                ),
            )
            self.session_id = cur.lastrowid
        return self._db

    def _flush(self) -> None:
        """Write the session row, every pending step and the end, as far as the disk lets us."""
        try:
            db = self._writable()
            while self._pending:
                _insert_step(db, self.session_id, self._pending[0])
                del self._pending[0]
            if self._end is not None:
                db.execute(
                    "UPDATE sessions SET ended_at=?, ended_by=?, duration_s=?, underruns=? WHERE id=?",
                    (*self._end, self.session_id),
                )
        except (JournalError, sqlite3.Error, OSError) as exc:
            self._give_up(exc)
            return
        if self._failing:
            self._failing = False
            self.warn("the journal is being written again; it has caught up")

    def _give_up(self, exc: BaseException) -> None:
        if not self._failing:
            message = exc.one_line() if isinstance(exc, VoiceGuideError) else str(exc)
            self.warn(
                f"warning: the journal is not being written ({message}); the session goes on"
                " and the journal catches up when it can"
            )
        self._failing = True
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = None  # the next try opens it afresh

    # Only finished steps are stored: never levels, notes or audio.
    def step_finished(self, record: StepRecord) -> None:
        """Commit the finished step at once (with any that could not be written before)."""
        self._pending.append(record)
        self._flush()

    def close(self, ended_by: str, duration_s: float, underruns: int) -> None:
        """Mark the session finished (complete, quit or error)."""
        self._end = (_now(), ended_by, duration_s, underruns)
        self._flush()
        if self._failing and self._pending:
            count = len(self._pending)
            self.warn(f"warning: {plural(count, 'step')} of this session could not be journaled")
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = None


def _insert_step(db: sqlite3.Connection, session_id: int | None, record: StepRecord) -> None:
    t = record.turn
    db.execute(
        "INSERT OR REPLACE INTO steps VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            session_id,
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


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class StepRow:
    """One journaled step; the turn's figures are None for steps that are not listen turns."""

    index: int
    kind: str
    label: str
    start_s: float
    end_s: float
    skipped: bool
    who: str | None
    planned_s: float | None
    talk_s: float | None
    first_speech_s: float | None
    longest_silence_s: float | None
    overrun_s: float | None
    ended_by: str | None
    interruptions: int | None

    def as_json(self) -> dict[str, object]:
        """Describe the step as `history show --json` prints it."""
        row = {f: getattr(self, f) for f in self.__dataclass_fields__}
        row["idx"] = row.pop("index")
        return row


@dataclass(frozen=True)
class _TurnOf:
    """A journaled listen turn as the recap reads it."""

    who: str
    talk_s: float
    longest_silence_s: float
    overrun_s: float
    interruptions: int


@dataclass(frozen=True)
class SessionRow:
    """One journaled session with its recap; `steps` is filled only by `get_session`."""

    id: int
    script: str
    title: str
    a: str
    b: str
    started_at: datetime  # aware; stored in UTC, shown in the local zone
    ended_at: datetime | None
    ended_by: str  # complete, quit, error, or unfinished (killed or still running)
    duration_s: float | None
    is_test: bool  # an offline run (--mic-file/--out), left out of totals and plots
    recap: Recap
    settings: Mapping[str, object]
    steps: tuple[StepRow, ...] = ()

    def as_json(self) -> dict[str, object]:
        """Describe the session as `history --json` prints it (times in the local zone, with offset)."""
        doc: dict[str, object] = {
            "id": self.id,
            "script": self.script,
            "title": self.title,
            "a": self.a,
            "b": self.b,
            "started_at": _local_iso(self.started_at),
            "ended_at": _local_iso(self.ended_at) if self.ended_at else None,
            "ended_by": self.ended_by,
            "duration_s": self.duration_s,
            "test": self.is_test,
            **self.recap.as_json(),
            "settings": dict(self.settings),
        }
        if self.steps:
            doc["steps"] = [s.as_json() for s in self.steps]
        return doc


def _local_iso(moment: datetime) -> str:
    return moment.astimezone().isoformat(timespec="seconds")


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _step_row(row: sqlite3.Row) -> StepRow:
    return StepRow(
        index=row["idx"],
        kind=row["kind"],
        label=row["label"],
        start_s=row["start_s"],
        end_s=row["end_s"],
        skipped=bool(row["skipped"]),
        who=row["who"],
        planned_s=row["planned_s"],
        talk_s=row["talk_s"],
        first_speech_s=row["first_speech_s"],
        longest_silence_s=row["longest_silence_s"],
        overrun_s=row["overrun_s"],
        ended_by=row["ended_by"],
        interruptions=row["interruptions"],
    )


def _turns(steps: Sequence[StepRow]) -> list[_TurnOf]:
    return [
        _TurnOf(s.who or "", s.talk_s or 0.0, s.longest_silence_s or 0.0, s.overrun_s or 0.0, s.interruptions or 0)
        for s in steps
        if s.kind == "listen"
    ]


def _session_row(db: sqlite3.Connection, row: sqlite3.Row, with_steps: bool) -> SessionRow:
    steps = session_steps(db, row["id"])
    started = _moment(row["started_at"])
    assert started is not None  # NOT NULL in the schema
    return SessionRow(
        id=row["id"],
        script=row["script_id"],
        title=row["title"],
        a=row["name_a"],
        b=row["name_b"],
        started_at=started,
        ended_at=_moment(row["ended_at"]),
        ended_by=row["ended_by"] or "unfinished",
        duration_s=row["duration_s"],
        is_test=bool(row["is_test"]),
        recap=recap(_turns(steps), row["name_a"], row["name_b"]),
        settings=json.loads(row["settings"]),
        steps=tuple(steps) if with_steps else (),
    )


def list_sessions(
    db: sqlite3.Connection, since: datetime | None = None, script: str | None = None, tests: bool = True
) -> list[SessionRow]:
    """Return session summaries, newest first; `tests=False` leaves out offline test runs."""
    query = "SELECT * FROM sessions WHERE 1=1"
    args: list[object] = []
    if since is not None:
        query += " AND started_at >= ?"
        args.append(since.astimezone(UTC).isoformat(timespec="seconds"))
    if script:
        query += " AND script_id = ?"
        args.append(script)
    if not tests:
        query += " AND is_test = 0"
    rows = db.execute(query + " ORDER BY started_at DESC, id DESC", args).fetchall()
    return [_session_row(db, r, with_steps=False) for r in rows]


def session_steps(db: sqlite3.Connection, session_id: int) -> list[StepRow]:
    """Return the steps of one session in play order."""
    rows = db.execute("SELECT * FROM steps WHERE session_id=? ORDER BY start_s, idx", (session_id,)).fetchall()
    return [_step_row(r) for r in rows]


def get_session(db: sqlite3.Connection, session_id: int) -> SessionRow:
    """Return one session with its steps; raise UsageError if there is none."""
    row = db.execute("SELECT * FROM sessions WHERE id=?", (session_id,)).fetchone()
    if row is None:
        raise UsageError(f"no session {session_id} in the journal", "see 'voice-guide history' for the ids")
    return _session_row(db, row, with_steps=True)


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
