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
from voice_guide.cli.env import Env
from voice_guide.cli.options import JsonOpt
from voice_guide.errors import UsageError
from voice_guide.journal.store import connect, forget, get_session, journal_path, list_sessions
from voice_guide.journal.views import EXPORT_FORMATS, export_turns, plot_history, plot_session
from voice_guide.script.durations import format_duration

history_app = typer.Typer(
    help="Look back at past sessions: summaries, pictures, exports.", invoke_without_command=True, no_args_is_help=False
)
app.add_typer(history_app, name="history")


def _journal(env: Env) -> sqlite3.Connection:
    return connect(journal_path(env.dirs.data))


def _since(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--since {value}: not a date", "use YYYY-MM-DD, e.g. --since 2026-11-01") from None
    # The journal stores UTC; a plain date means midnight UTC.
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


@history_app.callback()
def history(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of text.")] = False,
    since: Annotated[str | None, typer.Option("--since", help="Only sessions from this date (YYYY-MM-DD).")] = None,
    script: Annotated[str | None, typer.Option("--script", help="Only sessions of this exercise id.")] = None,
) -> None:
    """List past sessions, newest first, with a line for the last 30 days on top."""
    if ctx.invoked_subcommand is not None:
        return
    env = env_of(ctx)
    rows = list_sessions(_journal(env), _since(since), script)
    if as_json:
        env.out(json.dumps(rows, indent=1, ensure_ascii=False))
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
            ]
        )
        for r in rows:
            writer.writerow(
                [
                    r["id"],
                    r["started_at"],
                    r["script"],
                    r["ended_by"],
                    r["duration_s"],
                    r["a"],
                    r["talk_s"][r["a"]],
                    r["b"],
                    r["talk_s"][r["b"]],
                    r["balance"],
                    r["longest_pause_s"],
                ]
            )
        return
    month_ago = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    recent = [r for r in rows if r["started_at"] >= month_ago]
    minutes = sum((r["duration_s"] or 0.0) for r in recent) / 60
    balances = [r["balance"] for r in recent if r["balance"] is not None]
    line = f"last 30 days: {len(recent)} sessions, {minutes:.0f} minutes"
    if balances:
        line += f", first partner's share of talking {sum(balances) / len(balances) * 100:.0f}% on average"
    env.out(line)
    for r in rows:
        talk = ", ".join(f"{who} {format_duration(sec)}" for who, sec in r["talk_s"].items())
        env.out(
            f"{r['id']:4d}  {r['started_at'][:16].replace('T', ' ')}  {r['script']:<24} {r['ended_by']:<10} "
            f"{format_duration(r['duration_s'] or 0):>6}  {talk}"
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
    session = get_session(_journal(env), session_id)
    if plot is not None:
        plot_session(session, plot)
        env.note(f"wrote {plot}")
    if as_json:
        env.out(json.dumps(session, indent=1, ensure_ascii=False))
        return
    env.out(f"{session['title']} ({session['script']}), {session['started_at']}, {session['ended_by']}")
    for step in session["steps"]:
        line = f"{format_duration(step['start_s']):>6}  {step['kind']:<7} {step['label']}"
        if step["kind"] == "listen":
            line += f"  [{step['who']} talked {step['talk_s'] or 0:.0f}s, {step['ended_by']}]"
        elif step["skipped"]:
            line += "  (skipped)"
        env.out(line)


@history_app.command("plot")
def history_plot(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("-o", "--out", help="The PNG to write.")] = Path("history.png"),
    since: Annotated[str | None, typer.Option("--since", help="Only sessions from this date (YYYY-MM-DD).")] = None,
) -> None:
    """Draw talk minutes per partner per session over time, with the balance line."""
    env = env_of(ctx)
    rows = list_sessions(_journal(env), _since(since))
    if not rows:
        raise UsageError("no sessions to draw yet", "run an exercise first")
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
    env.stdout.write(export_turns(get_session(_journal(env), session_id), fmt))


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
    if not yes and not typer.confirm(f"Delete {what} for good?", default=False):
        env.note("nothing deleted")
        return
    count = forget(db, None if every else [session_id or 0])
    env.out(f"deleted {count} session{'s' if count != 1 else ''}")
