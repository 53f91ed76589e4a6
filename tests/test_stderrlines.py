"""Native writes to stderr are caught a line at a time while a panel is drawn, and the descriptor is put back."""

from __future__ import annotations

import os
import subprocess
import sys

from voice_guide.live.stderrlines import StderrLines


def test_lines_written_to_the_descriptor_are_handed_over_and_the_descriptor_comes_back() -> None:
    before = os.fstat(2)
    lines: list[str] = []
    with StderrLines(lines.append):
        os.write(2, b"ALSA lib pcm.c:8570:(snd_pcm_recover) underrun occurred\n")
        os.write(2, b"two halves ")
        os.write(2, b"of one line\n\n")
        # A child process writes where its parent's stderr points: into the pipe too.
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('from a child\\n')"], check=True)
        os.write(2, b"no newline at the end")
    assert lines == [
        "ALSA lib pcm.c:8570:(snd_pcm_recover) underrun occurred",
        "two halves of one line",
        "from a child",
        "no newline at the end",
    ]
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_a_failing_reader_keeps_draining_so_no_writer_blocks_on_a_full_pipe() -> None:
    def refuse(line: str) -> None:
        raise RuntimeError(line)

    with StderrLines(refuse):
        for _ in range(2000):  # far more than a pipe's 64 KiB
            os.write(2, b"x" * 99 + b"\n")
