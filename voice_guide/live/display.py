"""Show a running session: a live panel on a terminal, one plain line per event otherwise."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from voice_guide.live.records import PAUSED_NOTE, RESUMED_NOTE, Observer, StepRecord
from voice_guide.live.stderrlines import StderrLines
from voice_guide.script import Breathe, Listen, Pause, Step, step_kind, step_label
from voice_guide.script.durations import format_duration
from voice_guide.script.model import printable

# rich is imported where the panel is drawn: the plain display (and a session started
# from a pipe) never needs it, and loading it cost about 30 ms before the first sound.
if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

# The meter's scale: from this level (left) to 0 dBFS (right), in this many cells.
METER_FLOOR_DBFS = -80.0
METER_WIDTH = 30


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


SOLO_KEYS = "space pause/resume · n skip · b back · q quit"
APART_KEYS = "q quit (ends it on both devices) · Ctrl-C saves and quits"
# A note stays this long under the panel, then goes (a pause shows as a state, not as a note).
NOTE_S = 8.0
# Live redraws this often, so the countdown moves every second and the meter keeps up. Only its
# own thread draws: a redraw asked from the session thread as well left old frames on screen.
REFRESH_HZ = 8


@dataclass(frozen=True)
class PanelSource:
    """What the panel reads from the running session at each redraw (from the redraw thread)."""

    session_s: Callable[[], float]  # the session clock in seconds; it stands still while paused
    paused: Callable[[], bool]
    # apart mode: True while the link to the partner's device is up; None when playing alone
    linked: Callable[[], bool] | None = None
    # True while the sound device is lost and being opened again
    device_lost: Callable[[], bool] | None = None
    # the detector's threshold in dBFS, marked on the meter; None without a microphone
    threshold_dbfs: Callable[[], float | None] | None = None


@dataclass(frozen=True)
class _Current:
    """The step on show: what it is, its place, its label, and when it started on the session clock."""

    step: Step | None
    pos: str
    text: str
    start_s: float


class LiveDisplay:
    """A panel redrawn in place: step, time left, breath, mic meter, who talks, link, key hints."""

    def __init__(
        self,
        console: Console,
        *,
        mic: bool = True,
        apart: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.mic = mic
        self.apart = apart
        self.clock = clock
        self.source: PanelSource | None = None
        self.current = _Current(None, "", "", 0.0)
        self.level = METER_FLOOR_DBFS
        self.heard_any = False
        self.speaking: Mapping[str, bool] = {}
        self.talk: dict[str, float] = {}
        self.notes: list[tuple[float, str]] = []
        self.lost_since: float | None = None
        from rich.live import Live

        # Built last, as Live draws at once; transient: erased on any exit, leaving no old frame behind.
        self.live = Live(
            console=console,
            auto_refresh=True,
            refresh_per_second=REFRESH_HZ,
            transient=True,
            get_renderable=self._render,
        )
        # Native libraries' lines go above the panel, as Python's own do, not into it.
        self.native_stderr = StderrLines(self._print_above)

    def follow(self, source: PanelSource) -> None:
        """Read the session's clock, pause state and link from `source` from now on."""
        self.source = source

    def __enter__(self) -> LiveDisplay:
        self.live.__enter__()
        self.native_stderr.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.native_stderr.__exit__(None, None, None)
        finally:
            self.live.__exit__(None, None, None)

    def _print_above(self, line: str) -> None:
        from rich.text import Text

        self.console.print(Text(printable(line), style="dim", overflow="fold"))

    def _now_s(self) -> float:
        return self.source.session_s() if self.source is not None else self.clock()

    def step_started(self, index: int, total: int, step: Step, start_s: float) -> None:
        """Show the new step."""
        # One assignment, so the redraw thread never sees the new step with the old start.
        self.current = _Current(step, f"step {index + 1} of {total}", step_label(step), self._now_s())

    def step_finished(self, record: StepRecord) -> None:
        """Add a finished turn's talk time."""
        if record.turn is not None:
            self.talk[record.turn.who] = self.talk.get(record.turn.who, 0.0) + record.turn.talk_s

    def heard(self, level_dbfs: float, speaking: Mapping[str, bool]) -> None:
        """Move the meter (drawn at the next redraw)."""
        self.level, self.speaking, self.heard_any = level_dbfs, speaking, True

    def note(self, message: str) -> None:
        """Show a note under the panel for a few seconds; pause and resume show as a state instead."""
        if message.startswith((PAUSED_NOTE, RESUMED_NOTE)):
            return
        self.notes = [*self.notes[-1:], (self.clock(), message)]

    def _render(self) -> Table:
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 2))
        current = self.current
        grid.add_row(Text(current.pos, style="bold"), Text(current.text, overflow="ellipsis", no_wrap=True))
        elapsed_s = max(0.0, self._now_s() - current.start_s)
        length_s = _length_s(current.step)
        if length_s is not None:
            grid.add_row("time left", _countdown(length_s - elapsed_s))
        if isinstance(current.step, Breathe):
            grid.add_row("breath", _breath(current.step, elapsed_s))
        source = self.source
        if source is not None and source.linked is not None:
            grid.add_row("partner", self._link(source.linked()))
        if source is not None and source.device_lost is not None and source.device_lost():
            grid.add_row("", Text("paused: device lost (trying to open it again)", style="bold yellow"))
        elif source is not None and source.paused() and (source.linked is None or source.linked()):
            hint = "" if self.apart else " (space or a double clap resumes)"
            grid.add_row("", Text("paused" + hint, style="bold yellow"))
        if self.mic:
            threshold = None if source is None or source.threshold_dbfs is None else source.threshold_dbfs()
            grid.add_row("mic", _meter(self.level, threshold) if self.heard_any else Text("starting…"))
            talking = ", ".join(w for w, on in self.speaking.items() if on) or "nobody"
            grid.add_row("talking", talking)
        else:
            grid.add_row("mic", Text("not listening (--no-mic): turns last their full time", style="dim"))
        if self.talk:
            grid.add_row("talk time", ", ".join(f"{w} {format_duration(s)}" for w, s in self.talk.items()))
        now = self.clock()
        self.notes = [(at, text) for at, text in self.notes if now - at < NOTE_S]
        for _, text in self.notes:
            grid.add_row("", Text(text, style="dim", overflow="ellipsis", no_wrap=True))
        grid.add_row("", Text(APART_KEYS if self.apart else SOLO_KEYS, style="dim", no_wrap=True, overflow="ellipsis"))
        return grid

    def _link(self, linked: bool) -> Text:
        from rich.text import Text

        if linked:
            self.lost_since = None
            return Text("partner connected", style="green")
        if self.lost_since is None:
            self.lost_since = self.clock()
        waited = self.clock() - self.lost_since
        return Text(f"waiting for partner, {waited:.0f} s", style="bold yellow")


def _length_s(step: Step | None) -> float | None:
    """Return how long a step lasts at most, in seconds, when that is known before it plays."""
    if isinstance(step, Listen):
        return step.for_s
    if isinstance(step, Pause):
        return step.duration_s
    if isinstance(step, Breathe):
        return step.count * (step.in_s + step.hold_s + step.out_s + step.hold_out_s)
    return None


def _countdown(left_s: float) -> str:
    """Return whole seconds left as m:ss, rounded up so it reaches 0:00 as the step ends."""
    whole = max(0, math.ceil(left_s - 1e-6))
    return f"{whole // 60}:{whole % 60:02d}"


def _breath(step: Breathe, elapsed_s: float) -> str:
    """Return 'N of M, in' for the breath under way."""
    cycle_s = step.in_s + step.hold_s + step.out_s + step.hold_out_s
    if cycle_s <= 0:
        return f"1 of {step.count}"
    number = min(step.count, int(elapsed_s // cycle_s) + 1)
    into = elapsed_s - (number - 1) * cycle_s
    phase = "breathe in"
    for name, edge in (
        ("hold", step.in_s),
        ("breathe out", step.in_s + step.hold_s),
        ("hold", cycle_s - step.hold_out_s),
    ):
        if into >= edge:
            phase = name
    return f"{number} of {step.count}, {phase}"


def meter_bar(level_dbfs: float, threshold_dbfs: float | None, width: int = METER_WIDTH) -> str:
    """Return a level bar, `#` up to the level and `.` beyond, with `|` where the threshold lies."""

    def col(db: float) -> int:
        return round((min(0.0, max(METER_FLOOR_DBFS, db)) - METER_FLOOR_DBFS) / -METER_FLOOR_DBFS * width)

    filled = col(level_dbfs)
    cells = ["#" if i < filled else "." for i in range(width)]
    if threshold_dbfs is not None:
        cells[min(width - 1, col(threshold_dbfs))] = "|"
    return "".join(cells)


def meter_line(level_dbfs: float, threshold_dbfs: float | None, speaking: bool | None = None) -> str:
    """Return the meter as one line: `[bar] level dBFS   threshold T dBFS   speech|silence` (mic-test, panel)."""
    line = f"[{meter_bar(level_dbfs, threshold_dbfs)}] {level_dbfs:6.1f} dBFS"
    if threshold_dbfs is not None:
        line += f"   threshold {threshold_dbfs:6.1f} dBFS"
    if speaking is not None:
        line += "   speech " if speaking else "   silence"
    return line


def _meter(level_dbfs: float, threshold_dbfs: float | None) -> Text:
    from rich.text import Text

    line = Text(meter_line(level_dbfs, threshold_dbfs), style="green")
    mark = line.plain.find("|")
    if mark >= 0:
        line.stylize("bold red", mark, mark + 1)
    return line


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
