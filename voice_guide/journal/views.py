"""Ways to look back at the journal: pictures (PNG) and standard turn formats (RTTM, WebVTT, CSV)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from voice_guide.sound.encode import Chapter, webvtt

EXPORT_FORMATS = ("rttm", "vtt", "csv")
PARTNER_COLOURS = ("#3b7dd8", "#d8733b")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def plot_history(sessions: Sequence[dict[str, Any]], out: Path) -> None:
    """Draw talk minutes per partner per session over time, with the balance line."""
    plt = _pyplot()
    ordered = sorted(sessions, key=lambda s: s["started_at"])
    when = [datetime.fromisoformat(s["started_at"]) for s in ordered]
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    partners = [("a", PARTNER_COLOURS[0]), ("b", PARTNER_COLOURS[1])]
    width = 0.35
    x = list(range(len(ordered)))
    for offset, (key, colour) in zip((-width / 2, width / 2), partners, strict=True):
        minutes = [s["talk_s"].get(s[key], 0.0) / 60 for s in ordered]
        label = ordered[-1][key] if ordered else key
        ax.bar([i + offset for i in x], minutes, width, color=colour, label=f"{label} (talk minutes)")
    ax.set_xticks(x, [w.strftime("%d %b") for w in when], rotation=45, ha="right")
    ax.set_ylabel("minutes talked")
    ax.set_title("Who talked how long, session by session")
    balance = ax.twinx()
    shares = [s["balance"] * 100 if s["balance"] is not None else float("nan") for s in ordered]
    balance.plot(x, shares, color="#444444", marker="o", label="first partner's share (%)")
    balance.axhline(50, color="#999999", linestyle=":", linewidth=1)
    balance.set_ylim(0, 100)
    balance.set_ylabel("share of talking (%)")
    handles = ax.get_legend_handles_labels()
    more = balance.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, format="png")
    plt.close(fig)


def plot_session(session: dict[str, Any], out: Path) -> None:
    """Draw one session as lanes: when each partner talked, and the guide's prompts and cues."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.2), dpi=110)
    lanes = {session["a"]: 2, session["b"]: 1, "guide": 0}
    for step in session["steps"]:
        start, length = step["start_s"] / 60, (step["end_s"] - step["start_s"]) / 60
        if step["kind"] == "listen" and step["who"] in lanes:
            colour = PARTNER_COLOURS[0] if step["who"] == session["a"] else PARTNER_COLOURS[1]
            ax.broken_barh([(start, length)], (lanes[step["who"]] - 0.35, 0.7), color=colour, alpha=0.35)
            talk = (step["talk_s"] or 0.0) / 60
            ax.broken_barh([(start, min(talk, length))], (lanes[step["who"]] - 0.2, 0.4), color=colour)
        elif step["kind"] in ("say", "chime", "breathe"):
            colour = {"say": "#777777", "chime": "#c9a227", "breathe": "#5aa36b"}[step["kind"]]
            ax.broken_barh([(start, max(length, 0.01))], (-0.3, 0.6), color=colour)
    ax.set_yticks(list(lanes.values()), list(lanes.keys()))
    ax.set_xlabel("minutes into the session")
    ax.set_title(f"{session['title']}, {session['started_at'][:16].replace('T', ' ')}: who talked when")
    ax.set_ylim(-0.7, 2.7)
    fig.tight_layout()
    fig.savefig(out, format="png")
    plt.close(fig)


def _turns(session: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in session["steps"] if s["kind"] == "listen"]


def export_turns(session: dict[str, Any], fmt: str) -> str:
    """Return the session's listen turns as RTTM, WebVTT or CSV text."""
    turns = _turns(session)
    if fmt == "rttm":
        # NIST RTTM: SPEAKER <file> <channel> <onset> <duration> <NA> <NA> <speaker> <NA> <NA>
        file_id = f"session-{session['id']}"
        return "".join(
            f"SPEAKER {file_id} 1 {t['start_s']:.3f} {t['end_s'] - t['start_s']:.3f} <NA> <NA> "
            f"{str(t['who']).replace(' ', '_')} <NA> <NA>\n"
            for t in turns
        )
    if fmt == "vtt":
        return webvtt([Chapter(t["start_s"], t["end_s"], f"{t['who']} ({t['ended_by']})") for t in turns])
    buf = io.StringIO()
    fields = [
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
    ]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(turns)
    return buf.getvalue()
