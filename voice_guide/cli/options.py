"""Options shared by several commands, defined once so every command spells and documents them alike."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

NameA = Annotated[
    str | None, typer.Option("--a", help="Name of the partner who starts (spoken as {a}; saved: config set a).")
]
NameB = Annotated[
    str | None, typer.Option("--b", help="Name of the other partner (spoken as {b}; saved: config set b).")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="NAME=VALUE", help="Override a script param, e.g. --set share=90s (repeatable)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ScriptArg = Annotated[str, typer.Argument(help="A built-in id, one of your script ids, or a path.")]
EngineOpt = Annotated[
    str | None,
    typer.Option("--engine", help="Speech engine: piper (natural; the default when installed) or espeak."),
]
VoiceOpt = Annotated[
    str | None,
    typer.Option(
        "--voice", help="Voice: a Piper voice name, a path to a Piper .onnx, or an espeak voice (see 'voices')."
    ),
]
RateOpt = Annotated[
    int | None,
    typer.Option("--rate", min=60, max=400, help="Speaking pace in words per minute, as heard (default 135)."),
]
SampleRateOpt = Annotated[
    int | None, typer.Option("--sample-rate", min=8000, max=192000, help="Session sample rate in Hz (default 48000).")
]
NoMicOpt = Annotated[bool, typer.Option("--no-mic", help="Do not listen; turns last their full time.")]
HeadphonesOpt = Annotated[
    bool | None,
    typer.Option(
        "--headphones/--speakers",
        help="The mic cannot hear the guide, so listen even while it speaks (saved: config set headphones).",
    ),
]
InputDeviceOpt = Annotated[str | None, typer.Option("--input-device", help="Microphone: index or part of its name.")]
OutputDeviceOpt = Annotated[str | None, typer.Option("--output-device", help="Speaker: index or part of its name.")]
LogOpt = Annotated[Path | None, typer.Option("--log", help="Write what happened, with exact times, as JSON.")]
MicChannelsOpt = Annotated[str | None, typer.Option("--mic-channels", help="Two mics on one interface, e.g. a=1,b=2.")]
PortOpt = Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port to listen on (0: any free one).")]
BindOpt = Annotated[
    str,
    typer.Option(
        "--bind",
        help="Address to listen on: 127.0.0.1 (this device only, e.g. "
        "through an SSH tunnel), or this device's LAN or VPN address.",
    ),
]
CodeOpt = Annotated[
    str | None, typer.Option("--code", help="Pairing code (default: a fresh one-use code like 417-maple-otter).")
]
