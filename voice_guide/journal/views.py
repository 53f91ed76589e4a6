"""Ways to look back at the journal: pictures (PNG) and standard turn formats (RTTM, WebVTT, CSV).

Every figure drawn or exported comes from the sessions' `Recap` or their step rows, the
same values `history` prints.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voice_guide.journal.store import SessionRow, StepRow
from voice_guide.outputs import replacing, write_failed
from voice_guide.sound.encode import Chapter, webvtt

EXPORT_FORMATS = ("rttm", "vtt", "csv")
PARTNER_COLOURS = ("#3b7dd8", "#d8733b")
GUIDE_COLOURS = {
    "say": ("#777777", "the guide speaks"),
    "chime": ("#c9a227", "a chime"),
    "breathe": ("#5aa36b", "breathing"),
}
# Fewer date labels than this many sessions make an axis unreadable.
MAX_DATE_LABELS = 12
CSV_FIELDS = (
    "who",
    "start_s",
    "end_s",
    "planned_s",
    "talk_s",
    "first_speech_s",
    "longest_silence_s",
    "overrun_s",
    "ended_by",
    "interruptions",
)


@dataclass(frozen=True)
class HistoryBar:
    """One session as the history plot draws it: its label and minutes talked per partner."""

    label: str
    a_minutes: float
    b_minutes: float
    a_share_pct: float | None


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, out: Path) -> None:
    try:
        with replacing(out) as tmp:
            fig.savefig(tmp, format="png")
    except OSError as exc:
        raise write_failed(out, exc) from None
    finally:
        plt.close(fig)


def history_bars(sessions: Sequence[SessionRow]) -> list[HistoryBar]:
    """Return the bars of the history plot, oldest first; sessions on one day are numbered (2 Dec #2)."""
    ordered = sorted(sessions, key=lambda s: s.started_at)
    per_day: dict[str, int] = {}
    day_counts: dict[str, int] = {}
    for s in ordered:
        day = s.started_at.astimezone().strftime("%-d %b")
        day_counts[day] = day_counts.get(day, 0) + 1
    bars = []
    for s in ordered:
        day = s.started_at.astimezone().strftime("%-d %b")
        per_day[day] = per_day.get(day, 0) + 1
        label = day if day_counts[day] == 1 else f"{day} #{per_day[day]}"
        share = None if s.recap.balance is None else s.recap.balance * 100
        bars.append(HistoryBar(label, s.recap.talk_s[s.a] / 60, s.recap.talk_s[s.b] / 60, share))
    return bars


def _minute_ticks(ax: Any, top_minutes: float) -> None:
    # Whole minutes, or half minutes for short sessions: never steps like 0.025.
    from matplotlib.ticker import MultipleLocator

    ax.yaxis.set_major_locator(MultipleLocator(0.5 if top_minutes <= 3 else max(1, round(top_minutes / 6))))


def plot_history(sessions: Sequence[SessionRow], out: Path) -> None:
    """Draw talk minutes per partner per session over time, with a's share of the talking."""
    plt = _pyplot()
    bars = history_bars(sessions)
    newest = max(sessions, key=lambda s: s.started_at)
    fig, ax = plt.subplots(figsize=(10, 4.8), dpi=110)
    width = 0.38
    x = list(range(len(bars)))
    ax.bar(
        [i - width / 2 for i in x],
        [b.a_minutes for b in bars],
        width,
        color=PARTNER_COLOURS[0],
        label=f"{newest.a}: minutes talked",
    )
    ax.bar(
        [i + width / 2 for i in x],
        [b.b_minutes for b in bars],
        width,
        color=PARTNER_COLOURS[1],
        label=f"{newest.b}: minutes talked",
    )
    # At most MAX_DATE_LABELS labels, evenly spread, so dates never overlap however many sessions.
    step = max(1, -(-len(bars) // MAX_DATE_LABELS))
    shown = x[::step]
    ax.set_xticks(shown, [bars[i].label for i in shown], rotation=35, ha="right")
    top = max([b.a_minutes for b in bars] + [b.b_minutes for b in bars] + [0.5])
    ax.set_ylim(0, top * 1.1)
    _minute_ticks(ax, top)
    ax.set_ylabel("minutes talked")
    ax.set_title("Who talked how long, session by session")
    share = ax.twinx()
    shares = [b.a_share_pct if b.a_share_pct is not None else float("nan") for b in bars]
    share.plot(x, shares, color="#444444", marker="o", markersize=3, label=f"{newest.a}'s share of the talking (%)")
    share.axhline(50, color="#999999", linestyle=":", linewidth=1)
    share.set_ylim(0, 100)
    share.set_ylabel("share of talking (%)")
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = share.get_legend_handles_labels()
    # The legend sits below the axes, outside the data, where it cannot cover a bar.
    fig.legend(handles + more_handles, labels + more_labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    _save(plt, fig, out)


def _mm_ss(seconds: float, _pos: object = None) -> str:
    whole = max(0, round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def plot_session(session: SessionRow, out: Path) -> None:
    """Draw one session as lanes: when each partner talked, and the guide's prompts and cues."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.6), dpi=110)
    lanes = {session.a: 2, session.b: 1, "guide": 0}
    for step in session.steps:
        start, length = step.start_s, step.end_s - step.start_s
        if step.kind == "listen" and step.who in lanes:
            colour = PARTNER_COLOURS[0] if step.who == session.a else PARTNER_COLOURS[1]
            ax.broken_barh([(start, length)], (lanes[step.who] - 0.35, 0.7), color=colour, alpha=0.3)
            ax.broken_barh([(start, min(step.talk_s or 0.0, length))], (lanes[step.who] - 0.2, 0.4), color=colour)
        elif step.kind in GUIDE_COLOURS:
            ax.broken_barh([(start, max(length, 0.5))], (-0.3, 0.6), color=GUIDE_COLOURS[step.kind][0])
    ax.set_yticks(list(lanes.values()), list(lanes.keys()))
    length_s = max((s.end_s for s in session.steps), default=60.0)
    # Ticks on whole minutes (half minutes for short sessions), labelled m:ss.
    ax.xaxis.set_major_locator(MultipleLocator(30 if length_s <= 240 else 60 * max(1, round(length_s / 600))))
    ax.xaxis.set_major_formatter(FuncFormatter(_mm_ss))
    ax.set_xlabel("time into the session (m:ss)")
    when = session.started_at.astimezone().strftime("%-d %b %Y %H:%M")
    ax.set_title(f"{session.title}, {when}: who talked when")
    ax.set_ylim(-0.7, 2.7)
    legend = [Patch(color=c, label=text) for c, text in GUIDE_COLOURS.values()]
    legend += [
        Patch(color=PARTNER_COLOURS[0], alpha=0.3, label="a turn (its time)"),
        Patch(color=PARTNER_COLOURS[0], label="talking in it"),
    ]
    fig.legend(handles=legend, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    _save(plt, fig, out)


def _turns(session: SessionRow) -> list[StepRow]:
    return [s for s in session.steps if s.kind == "listen"]


def export_turns(session: SessionRow, fmt: str) -> str:
    """Return the session's listen turns as RTTM, WebVTT or CSV text."""
    turns = _turns(session)
    if fmt == "rttm":
        # NIST RTTM: SPEAKER <file> <channel> <onset> <duration> <NA> <NA> <speaker> <NA> <NA>
        file_id = f"session-{session.id}"
        return "".join(
            f"SPEAKER {file_id} 1 {t.start_s:.3f} {t.end_s - t.start_s:.3f} <NA> <NA> "
            f"{str(t.who).replace(' ', '_')} <NA> <NA>\n"
            for t in turns
        )
    if fmt == "vtt":
        return webvtt([Chapter(t.start_s, t.end_s, f"{t.who} ({t.ended_by})") for t in turns])
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_FIELDS)
    writer.writerows([getattr(t, f) for f in CSV_FIELDS] for t in turns)
    return buf.getvalue()
