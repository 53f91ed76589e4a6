"""Count what strangers do to the host and say it in one line per interval at most.

A flood of junk must not become a flood of log lines: each line is work for a terminal
that may be slow, and the counts say more than twenty thousand copies of one warning.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

# What is counted, as the summary line says it (one, many), in this order.
_PHRASES = {
    "wrong_code": ("wrong code", "wrong codes"),
    "taken": ("pairing try after the partner paired", "pairing tries after the partner paired"),
    "resume_refused": ("refused resume", "refused resumes"),
    "busy": ("try turned away while busy", "tries turned away while busy"),
    "junk": ("junk message", "junk messages"),
    "not_websocket": ("connection that never opened a WebSocket", "connections that never opened a WebSocket"),
    "timeout": ("connection that did not pair in time", "connections that did not pair in time"),
    "over_limit": ("connection over the limit", "connections over the limit"),
    "accept_failed": ("failed accept (out of file descriptors?)", "failed accepts (out of file descriptors?)"),
    "sealed_bad": ("forged or replayed frame", "forged or replayed frames"),
    "peer_bad": ("malformed message from the partner", "malformed messages from the partner"),
}


class Tally:
    """Count events by kind; `flush` logs one summary line when there is anything new."""

    def __init__(self, log: logging.Logger, clock: Callable[[], float], every_s: float) -> None:
        self._log = log
        self._clock = clock
        self.every_s = every_s
        self.counts: Counter[str] = Counter()  # since the start, for tests and the final line
        self._pending: Counter[str] = Counter()
        self._since_s = clock()

    def count(self, kind: str, n: int = 1) -> None:
        """Count `n` events of `kind` (one of the summary's kinds)."""
        if kind not in _PHRASES:
            raise ValueError(f"unknown tally kind {kind!r}")
        self.counts[kind] += n
        self._pending[kind] += n

    def due(self) -> bool:
        """Return whether a summary would go out now."""
        return bool(self._pending) and self._clock() - self._since_s >= self.every_s

    def flush(self, force: bool = False) -> str | None:
        """Log and return the summary of what was counted since the last one, if it is due (or `force`)."""
        if not self._pending or not (force or self.due()):
            return None
        now_s = self._clock()
        parts = [
            f"{n:,} {one if n == 1 else many}" for kind, (one, many) in _PHRASES.items() if (n := self._pending[kind])
        ]
        line = f"from other devices in the last {now_s - self._since_s:.0f} s: {', '.join(parts)}"
        self._pending.clear()
        self._since_s = now_s
        self._log.warning("%s", line)
        return line

    def reset_window(self) -> None:
        """Start a new interval now (nothing pending is lost)."""
        self._since_s = self._clock()
