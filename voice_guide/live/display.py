"""Show a running session: a live panel on a terminal, one plain line per event otherwise."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from voice_guide.live.records import Observer, StepRecord
from voice_guide.script import Listen, Step, step_kind, step_label
from voice_guide.script.durations import format_duration

METER_FLOOR_DBFS = -70.0


class PlainDisplay:
    """One line per step and note, for logs and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def step_started(self, index: int, total: int, step: Step, start_s: float) -> None:
        """Print the step that starts."""
        print(
            f"[{format_duration(start_s):>6}] step {index + 1}/{total} {step_kind(step)}: {step_label(step)}",
            file=self.stream,
            flush=True,
        )

    def step_finished(self, record: StepRecord) -> None:
        """Print how a listen turn ended."""
        if record.turn is not None:
            t = record.turn
            print(
                f"[{format_duration(record.end_s):>6}] {t.who} talked {t.talk_s:.1f}s, ended by {t.ended_by}",
                file=self.stream,
                flush=True,
            )

    def heard(self, level_dbfs: float, speaking: Mapping[str, bool]) -> None:
        """Levels are too many for plain lines."""

    def note(self, message: str) -> None:
        """Print a note."""
        print(f"voice-guide: {message}", file=self.stream, flush=True)


class LiveDisplay:
    """A panel that redraws in place: step, time left, mic meter, who talks, talk time so far."""

    def __init__(self, console: Console, threshold_dbfs: float | None = None) -> None:
        self.console = console
        self.threshold_dbfs = threshold_dbfs
        self.live = Live(console=console, auto_refresh=True, refresh_per_second=10, transient=False)
        self.step_text = ""
        self.step_pos = ""
        self.ends_at: float | None = None
        self.level = METER_FLOOR_DBFS
        self.speaking: Mapping[str, bool] = {}
        self.talk: dict[str, float] = {}
        self.notes: list[str] = []
        self.started = time.monotonic()
        self.step_started_at = self.started

    def __enter__(self) -> LiveDisplay:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(self._render())
        self.live.__exit__(None, None, None)

    def step_started(self, index: int, total: int, step: Step, start_s: float) -> None:
        """Show the new step."""
        self.step_pos = f"step {index + 1} of {total}"
        self.step_text = step_label(step)
        self.step_started_at = time.monotonic()
        self.ends_at = self.step_started_at + step.for_s if isinstance(step, Listen) else None
        self.live.update(self._render())

    def step_finished(self, record: StepRecord) -> None:
        """Add a finished turn's talk time."""
        if record.turn is not None:
            self.talk[record.turn.who] = self.talk.get(record.turn.who, 0.0) + record.turn.talk_s

    def heard(self, level_dbfs: float, speaking: Mapping[str, bool]) -> None:
        """Move the meter."""
        self.level, self.speaking = level_dbfs, speaking
        self.live.update(self._render())

    def note(self, message: str) -> None:
        """Show a note under the panel."""
        self.notes = [*self.notes[-2:], message]
        self.live.update(self._render())

    def _render(self) -> Table:
        grid = Table.grid(padding=(0, 2))
        grid.add_row(Text(self.step_pos, style="bold"), Text(self.step_text))
        if self.ends_at is not None:
            grid.add_row("time left", format_duration(max(0.0, self.ends_at - time.monotonic())))
        grid.add_row("mic", _meter(self.level, self.threshold_dbfs))
        talking = ", ".join(w for w, on in self.speaking.items() if on) or "nobody"
        grid.add_row("talking", talking)
        if self.talk:
            grid.add_row("talk time", ", ".join(f"{w} {format_duration(s)}" for w, s in self.talk.items()))
        for note in self.notes:
            grid.add_row("", Text(note, style="dim"))
        return grid


def _meter(level_dbfs: float, threshold_dbfs: float | None, width: int = 30) -> Text:
    def col(db: float) -> int:
        return round((min(0.0, max(METER_FLOOR_DBFS, db)) - METER_FLOOR_DBFS) / -METER_FLOOR_DBFS * width)

    filled = col(level_dbfs)
    bar = Text("█" * filled + "·" * (width - filled), style="green")
    if threshold_dbfs is not None:
        mark = min(width - 1, col(threshold_dbfs))
        bar.stylize("bold red", mark, mark + 1)
    bar.append(f" {level_dbfs:5.0f} dBFS")
    return bar


class Fanout:
    """Pass every session event to several observers (display, journal)."""

    def __init__(self, observers: Sequence[Observer]) -> None:
        self.observers = list(observers)

    def step_started(self, index: int, total: int, step: Step, start_s: float) -> None:
        """Forward."""
        for o in self.observers:
            o.step_started(index, total, step, start_s)

    def step_finished(self, record: StepRecord) -> None:
        """Forward."""
        for o in self.observers:
            o.step_finished(record)

    def heard(self, level_dbfs: float, speaking: Mapping[str, bool]) -> None:
        """Forward."""
        for o in self.observers:
            o.heard(level_dbfs, speaking)

    def note(self, message: str) -> None:
        """Forward."""
        for o in self.observers:
            o.note(message)
