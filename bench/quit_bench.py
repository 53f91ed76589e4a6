"""Benchmark how fast `q` ends a live session: from the key to the "saved as" line, and to the process exit.

Runs `voice-guide run` in a pseudo-terminal on the virtual devices (tools/pulse.sh; `make bench`
starts it). Baseline in the same run: the time `python -c pass` takes to start and exit, since
the exit figure includes the interpreter's own shutdown. Figures only; nothing here asserts a time.
"""

from __future__ import annotations

import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = "title: Q\nsummary: Q\nsteps:\n  - chime: soft\n  - pause: 60s\n"
ROUNDS = 5


def _one(args: list[str], home: Path) -> tuple[float, float]:
    """Return (seconds from q to the saved line, seconds from q to exit) for `voice-guide ARGS`."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "voice_guide", *args, "--no-mic"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "VOICE_GUIDE_HOME": str(home), "TERM": "xterm-256color"},
    )
    os.close(slave)
    seen, pressed, saved_s = b"", None, None
    deadline = time.monotonic() + 60
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.005)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                seen += data
                if pressed is not None and saved_s is None and b"saved as session" in seen:
                    saved_s = time.monotonic() - pressed
            if pressed is None and b"time left" in seen:
                time.sleep(1.0)
                os.write(master, b"q")
                pressed = time.monotonic()
                seen = b""
        proc.wait(timeout=30)
    finally:
        os.close(master)
    assert pressed is not None and saved_s is not None, "the session did not start or say where it saved"
    return saved_s, time.monotonic() - pressed


def main() -> None:
    """Print the median of a few rounds: chimes and a pause, then `timeout` with speech made meanwhile."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    baseline = time.monotonic() - started
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "q.yaml"
        script.write_text(SCRIPT, encoding="utf-8")
        cases = {
            "a pause": [_one(["run", str(script)], Path(folder) / "home") for _ in range(ROUNDS)],
            # An empty cache each round: Piper is making the later prompts when q comes.
            "timeout, speech made ahead": [_one(["timeout"], Path(folder) / f"home{n}") for n in range(ROUNDS)],
        }
    for case, rounds in cases.items():
        saved = statistics.median(r[0] for r in rounds)
        exited = statistics.median(r[1] for r in rounds)
        print(
            f"{case}: q to 'saved as session N' median {saved * 1000:.0f} ms, to process exit"
            f" {exited * 1000:.0f} ms over {ROUNDS} rounds (python -c pass: {baseline * 1000:.0f} ms)"
        )


if __name__ == "__main__":
    main()
