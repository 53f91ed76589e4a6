"""The Typer application every command module registers on, and the Env it carries."""

from __future__ import annotations

from typing import Annotated

import typer

from voice_guide import __version__
from voice_guide.cli.env import PROG, Env
from voice_guide.cli.parsing import skip_coercion_of_absent_values

skip_coercion_of_absent_values()

app = typer.Typer(
    name=PROG,
    help="A hands-free guide for couples' empathy exercises: spoken prompts, chimes, breathing and listening turns.",
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _show_version(ctx: typer.Context, value: bool) -> None:
    if value:
        env_of(ctx).out(f"{PROG} {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback when something fails.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """voice-guide: eyes-closed empathy exercises for two."""


def env_of(ctx: typer.Context) -> Env:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Env) else Env.from_process()
