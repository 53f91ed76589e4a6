"""The history command group: past sessions listed, shown, drawn, exported and forgotten."""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from voice_guide.cli.app import app, env_of
from voice_guide.cli.build import check_paths
from voice_guide.cli.env import Env
from voice_guide.cli.options import JsonOpt
from voice_guide.errors import UsageError
from voice_guide.journal.store import connect, forget, get_session, journal_path, list_sessions
from voice_guide.journal.views import EXPORT_FORMATS, export_turns, plot_history, plot_session
from voice_guide.script.durations import format_duration, plural
from voice_guide.script.model import printable

history_app = typer.Typer(
    help="Look back at past sessions: summaries, pictures, exports.", invoke_without_command=True, no_args_is_help=False
)
app.add_typer(history_app, name="history")


def _journal(env: Env) -> sqlite3.Connection:
    return connect(journal_path(env.dirs.data))


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--since {value}: not a date", "use YYYY-MM-DD, e.g. --since 2026-11-01") from None
    # A plain date means midnight where the couple lives, not in UTC.
    return moment if moment.tzinfo else moment.astimezone()


def _local(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _nothing_found(env: Env, since: str | None, script: str | None, tests: bool) -> str:
    """Say why a listing is empty: nothing at all, or nothing that matches."""
    if not list_sessions(_journal(env), tests=True):
        return "no sessions yet: run an exercise first"
    wanted = [
        f"since {since}" if since else "",
        f"of {script}" if script else "",
        "" if tests else "outside offline test runs (add --tests to see them)",
    ]
    return "no sessions " + " ".join(w for w in wanted if w)


SinceOpt = Annotated[str | None, typer.Option("--since", help="Only sessions from this date (YYYY-MM-DD).")]
TestsOpt = Annotated[
    bool, typer.Option("--tests", help="Include offline test runs (--mic-file/--out) in lists, totals and plots.")
]


@history_app.callback()
def history(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of text.")] = False,
    since: SinceOpt = None,
    script: Annotated[str | None, typer.Option("--script", help="Only sessions of this exercise id.")] = None,
    tests: TestsOpt = False,
) -> None:
    """List past sessions, newest first, with a line for the last 30 days on top."""
    if ctx.invoked_subcommand is not None:
        return
    env = env_of(ctx)
    rows = list_sessions(_journal(env), _since(since), script, tests=tests)
    if as_json:
        env.out(json.dumps([r.as_json() for r in rows], indent=1, ensure_ascii=False))
        return
    if as_csv:
        writer = csv.writer(env.stdout)
        writer.writerow(
            [
                "id",
                "started_at",
                "script",
                "ended_by",
                "duration_s",
                "a",
                "a_talk_s",
                "b",
                "b_talk_s",
                "balance",
                "longest_pause_s",
                "test",
            ]
        )
        for r in rows:
            writer.writerow(
                [
                    r.id,
                    r.started_at.astimezone().isoformat(timespec="seconds"),
                    r.script,
                    r.ended_by,
                    r.duration_s,
                    r.a,
                    r.recap.talk_s[r.a],
                    r.b,
                    r.recap.talk_s[r.b],
                    r.recap.balance,
                    r.recap.longest_pause_s,
                    int(r.is_test),
                ]
            )
        return
    if not rows:
        env.note(_nothing_found(env, since, script, tests))
        return
    month_ago = datetime.now(UTC) - timedelta(days=30)
    recent = [r for r in rows if r.started_at >= month_ago and not r.is_test]
    minutes = sum((r.duration_s or 0.0) for r in recent) / 60
    line = f"last 30 days: {plural(len(recent), 'session')}, {plural(round(minutes), 'minute')}"
    shares: dict[tuple[str, str], list[float]] = {}
    for r in recent:
        if r.recap.balance is not None:
            shares.setdefault((r.a, r.b), []).append(r.recap.balance)
    for (a, b), balances in shares.items():
        line += f", {a}'s share of talking with {b} {sum(balances) / len(balances) * 100:.0f}% on average"
    env.out(line)
    for r in rows:
        talk = ", ".join(f"{who} {format_duration(sec)}" for who, sec in r.recap.talk_s.items())
        ended = f"{r.ended_by} (test)" if r.is_test else r.ended_by
        env.out(
            f"{r.id:4d}  {_local(r.started_at)}  {r.script:<24} {ended:<16} "
            f"{format_duration(r.duration_s or 0):>6}  {talk}"
        )


@history_app.command("show")
def history_show(
    ctx: typer.Context,
    session_id: Annotated[int, typer.Argument(help="The session's id (see 'voice-guide history').")],
    as_json: JsonOpt = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw who talked when to this PNG.")] = None,
) -> None:
    """Show one session step by step."""
    env = env_of(ctx)
    check_paths([("--plot", plot, ("png",))])
    session = get_session(_journal(env), session_id)
    if plot is not None:
        plot_session(session, plot)
        env.note(f"wrote {plot}")
    if as_json:
        env.out(json.dumps(session.as_json(), indent=1, ensure_ascii=False))
        return
    test = ", an offline test run" if session.is_test else ""
    env.out(f"{session.title} ({session.script}), {_local(session.started_at)}, {session.ended_by}{test}")
    for step in session.steps:
        line = f"{format_duration(step.start_s):>6}  {step.kind:<7} {step.label}"
        if step.kind == "listen":
            line += f"  [{step.who} talked {step.talk_s or 0:.0f}s, {step.ended_by}]"
        elif step.skipped:
            line += "  (skipped)"
        env.out(line)
    figures = session.recap
    if any(s.kind == "listen" for s in session.steps):
        talk = ", ".join(f"{who} talked {format_duration(sec)}" for who, sec in figures.talk_s.items())
        env.out(f"summary: {talk}, longest pause {format_duration(figures.longest_pause_s)}")


@history_app.command("plot")
def history_plot(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("-o", "--out", help="The PNG to write.")] = Path("history.png"),
    since: SinceOpt = None,
    tests: TestsOpt = False,
) -> None:
    """Draw talk minutes per partner per session over time, with the share line."""
    env = env_of(ctx)
    check_paths([("-o", out, ("png",))])
    rows = list_sessions(_journal(env), _since(since), tests=tests)
    if not rows:
        raise UsageError(_nothing_found(env, since, None, tests), "leave out --since, or add --tests")
    plot_history(rows, out)
    env.out(f"wrote {out}")


@history_app.command("export")
def history_export(
    ctx: typer.Context,
    session_id: Annotated[int, typer.Argument(help="The session's id.")],
    fmt: Annotated[str, typer.Option("--format", help="rttm, vtt or csv.")] = "csv",
) -> None:
    """Print one session's turns in a standard format."""
    env = env_of(ctx)
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"--format {fmt}: unknown format", "one of " + ", ".join(EXPORT_FORMATS))
    # Names come from the journal, which older versions filled unchecked: escape what could drive a terminal.
    env.stdout.write(printable(export_turns(get_session(_journal(env), session_id), fmt)))


@history_app.command("forget")
def history_forget(
    ctx: typer.Context,
    session_id: Annotated[int | None, typer.Argument(help="The session to delete.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Delete every session.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete sessions from the journal for good."""
    env = env_of(ctx)
    if every == (session_id is not None):
        raise UsageError("give one session id or --all", "for example: voice-guide history forget 3")
    db = _journal(env)
    if session_id is not None:
        get_session(db, session_id)  # a clear error for an unknown id
    what = "every session" if every else f"session {session_id}"
    if not yes and not env.confirm(f"Delete {what} for good?"):
        env.note("nothing deleted")
        return
    count = forget(db, None if every else [session_id or 0])
    env.out(f"deleted {plural(count, 'session')}")
