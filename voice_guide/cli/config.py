"""The config command group: saved preferences (names, voice, devices, ...) that every command reads."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from voice_guide.cli.app import app, env_of
from voice_guide.cli.env import PROG
from voice_guide.cli.options import (
    EngineOpt,
    HeadphonesOpt,
    InputDeviceOpt,
    JsonOpt,
    MicChannelsOpt,
    NameA,
    NameB,
    OutputDeviceOpt,
    RateOpt,
    SampleRateOpt,
    VoiceOpt,
)
from voice_guide.cli.settings import KEYS, check_key, parse_value, read_prefs, resolve, write_prefs

config_app = typer.Typer(
    help="Saved preferences every command reads (flags given on a command line still win).",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")

KeyArg = Annotated[str, typer.Argument(help=f"One of: {', '.join(KEYS)}.", metavar="KEY")]


@config_app.command("set")
def config_set(
    ctx: typer.Context,
    key: KeyArg,
    value: Annotated[str, typer.Argument(help="The value, e.g. Ann, 160, true, a=1,b=2.")],
) -> None:
    """Save a preference."""
    env = env_of(ctx)
    parsed = parse_value(key, value)
    path = env.dirs.config_file
    prefs = read_prefs(path)
    prefs[key] = parsed
    write_prefs(path, prefs)
    env.note(f"{key} = {_shown(parsed)} saved in {path}")


@config_app.command("get")
def config_get(ctx: typer.Context, key: KeyArg) -> None:
    """Print one preference as every command would use it (saved value, else the default)."""
    env = env_of(ctx)
    check_key(key)
    value = resolve(read_prefs(env.dirs.config_file), {}).values[key]
    env.out("" if value is None else _shown(value))


@config_app.command("unset")
def config_unset(ctx: typer.Context, key: KeyArg) -> None:
    """Forget a saved preference; the default applies again."""
    env = env_of(ctx)
    check_key(key)
    path = env.dirs.config_file
    prefs = read_prefs(path)
    if key not in prefs:
        env.note(f"{key} was not set")
        return
    del prefs[key]
    write_prefs(path, prefs)
    env.note(f"{key} unset; the default applies")


@config_app.command("list")
def config_list(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    a: NameA = None,
    b: NameB = None,
    engine: EngineOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = None,
    sample_rate: SampleRateOpt = None,
    headphones: HeadphonesOpt = None,
    input_device: InputDeviceOpt = None,
    output_device: OutputDeviceOpt = None,
    mic_channels: MicChannelsOpt = None,
) -> None:
    """Show every preference and where its value comes from: default, config file, or a flag given here."""
    env = env_of(ctx)
    path = env.dirs.config_file
    flags = {
        "a": a,
        "b": b,
        "engine": engine,
        "voice": voice,
        "rate": rate,
        "sample_rate": sample_rate,
        "headphones": headphones,
        "input_device": input_device,
        "output_device": output_device,
        "mic_channels": None if mic_channels is None else str(parse_value("mic_channels", mic_channels)),
    }
    resolved = resolve(read_prefs(path), flags)
    if as_json:
        rows = {key: {"value": resolved.values[key], "from": resolved.origins[key]} for key in KEYS}
        env.out(json.dumps({"file": str(path), "keys": rows}, indent=2, ensure_ascii=False))
        return
    width = max(len(key) for key in KEYS)
    for key in KEYS:
        value = resolved.values[key]
        shown = "(not set)" if value is None else _shown(value)
        env.out(f"{key:<{width}}  {shown:<24}  {resolved.origins[key]}")
    env.note(
        f"config file: {path}{'' if path.exists() else ' (not written yet)'}; change with: {PROG} config set KEY VALUE"
    )


def _shown(value: str | int | bool) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
