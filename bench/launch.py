"""Starting voice-guide as its own process, and the null sinks two such processes share (bench and tests).

An apart session is two processes: a host and a joiner, each playing on one channel of
one stereo null sink so a single recording of its monitor holds both on one clock.
"""

from __future__ import annotations

import subprocess
import sys

# Each device plays on one side of vg_pair; the sinks are PulseAudio's, loaded with pactl.
PAIR_SINK_MODULES: tuple[tuple[str, ...], ...] = (
    ("module-null-sink", "sink_name=vg_pair", "channels=2", "rate=48000"),
    *(
        (
            "module-remap-sink",
            f"sink_name={name}",
            "master=vg_pair",
            "channels=1",
            "channel_map=mono",
            f"master_channel_map={side}",
            "remix=no",
        )
        for name, side in (("vg_host_out", "front-left"), ("vg_join_out", "front-right"))
    ),
)


def spawn_cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start `voice-guide ARGS` with `env` and text pipes for its output."""
    return subprocess.Popen(
        [sys.executable, "-m", "voice_guide", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_address(host: subprocess.Popen[str]) -> tuple[str, str] | None:
    """Read a host's output up to its "joins with" line; return (HOST:PORT, pairing code), None if it ended first.

    The code in that line must be the one the host showed just before it.
    """
    assert host.stdout is not None
    shown = None
    for line in host.stdout:
        if line.startswith(("pairing code: ", "new pairing code: ")):
            shown = line.split(": ", 1)[1].strip()
        if "joins with" in line:
            words = line.split(" join ", 1)[1].split()
            code = words[words.index("--code") + 1]
            if shown is not None and shown != code:
                raise ValueError(f"the host showed code {shown} but says to join with {code}")
            return words[0], code
    return None
