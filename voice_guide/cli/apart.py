"""Commands for partners apart: host and join one session from two devices."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Annotated, cast

import typer

import voice_guide.apart as apart_package
from voice_guide.apart.link import Host, Joiner, LinkLost, make_code, normalize_code
from voice_guide.apart.link import join as join_link
from voice_guide.apart.scheduler import HOST_WHO, JOINER_WHO, HostScheduler, JoinScheduler, LinkThread, Setup, TimedIO
from voice_guide.cli.app import app, env_of
from voice_guide.cli.build import clip_cache, open_io, plan, progress
from voice_guide.cli.env import PROG, Env
from voice_guide.cli.options import (
    DEFAULT_WPM,
    BindOpt,
    CodeOpt,
    HeadphonesOpt,
    InputDeviceOpt,
    LogOpt,
    NameA,
    NameB,
    NoMicOpt,
    OutputDeviceOpt,
    PortOpt,
    RateOpt,
    ScriptArg,
    SetOpt,
    VoiceOpt,
)
from voice_guide.cli.play import play_session
from voice_guide.errors import UsageError
from voice_guide.live.audio import AudioIO
from voice_guide.live.records import SessionOptions
from voice_guide.script import Names
from voice_guide.sound.render import prepare as prepare_clips
from voice_guide.sound.timeline import DEFAULT_RATE_HZ


@contextlib.contextmanager
def _apart_link(env: Env) -> Iterator[LinkThread]:
    """Run the link's event loop in a thread, with its warnings as one line each on stderr."""
    handler = _NoteHandler(env)
    # The apart package's logger is the parent of every link and scheduler logger.
    loggers = [logging.getLogger(apart_package.__name__)]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    link = LinkThread()
    try:
        yield link
    finally:
        link.close()
        for logger in loggers:
            logger.removeHandler(handler)
            logger.propagate = True


class _NoteHandler(logging.Handler):
    def __init__(self, env: Env) -> None:
        super().__init__(logging.WARNING)
        self.env = env

    def emit(self, record: logging.LogRecord) -> None:
        self.env.note(f"{PROG}: link: {record.getMessage()}")


def _apart_note(env: Env) -> Callable[[str], None]:
    return lambda message: env.note(f"{PROG}: {message}")


def _timed(io: AudioIO) -> TimedIO:
    if not hasattr(io, "frame_at_time"):
        raise UsageError("apart sessions need a sound device", "leave out --out and --mic-file")
    return cast(TimedIO, io)


def _apart_end(scheduler: HostScheduler | JoinScheduler) -> None:
    """Fail (after the journal is saved) when the link was lost for good; a partner quitting is a clean end."""
    if scheduler.ended == "lost":
        raise LinkLost(
            "the link to your partner's device was lost and did not come back",
            hint="the session so far is saved; check the network, then start a new one",
        )


@app.command("host")
def host_cmd(
    ctx: typer.Context,
    script: ScriptArg,
    port: PortOpt = 8765,
    bind: BindOpt = "127.0.0.1",
    code: CodeOpt = None,
    a: NameA = Names.a,
    b: NameB = Names.b,
    sets: SetOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = DEFAULT_WPM,
    no_mic: NoMicOpt = False,
    headphones: HeadphonesOpt = False,
    input_device: InputDeviceOpt = None,
    output_device: OutputDeviceOpt = None,
    log: LogOpt = None,
) -> None:
    """Host an apart session: your partner joins from their device and both play it in step.

    You are partner A (--a) at this device; the partner who joins is partner B (--b).
    """
    env = env_of(ctx)
    names = Names(a=a, b=b)
    loaded, steps = plan(env, script, a, b, sets)
    text = env.library().resolve(script).read_bytes().decode("utf-8")
    sample_rate = DEFAULT_RATE_HZ
    setup = Setup(loaded.id, text, a, b, tuple(sets or ()), voice, rate, sample_rate)
    cache = clip_cache(env, voice, rate, sample_rate)
    with progress(env, "Preparing speech") as update:
        prepare_clips(steps, cache, update)
    io = open_io(
        env,
        mic_file=None,
        out=None,
        realtime=False,
        no_mic=no_mic,
        input_device=input_device,
        output_device=output_device,
        channels=1,
        sample_rate_hz=sample_rate,
    )
    pairing = normalize_code(code) if code else make_code()
    with _apart_link(env) as link:

        async def start() -> Host:
            return await Host(
                pairing, bind, port, setup=setup.as_dict(), on_link_lost=link.lost, on_link_restored=link.restored
            ).start()

        try:
            host = link.call(start())
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {bind}:{port}: {exc.strerror or exc}",
                "pick another --port, or check --bind is this device's address",
            ) from None
        try:
            env.out(f"pairing code: {pairing}")
            env.out(
                f"your partner joins with: {PROG} join {host.url.removeprefix('ws://').rstrip('/')} --code {pairing}"
            )
            if bind in ("0.0.0.0", "::"):
                env.note(f"{PROG}: listening on every interface; give your partner this device's own address")
            env.stdout.flush()
            link.call(host.wait_joined())
            env.note(f"{PROG}: your partner joined")
            scheduler = HostScheduler(link, host, _timed(io), len(steps), _apart_note(env))
            settings = {
                "voice": voice,
                "rate_wpm": rate,
                "sample_rate": sample_rate,
                "mic": not no_mic,
                "headphones": headphones,
                "set": list(sets or []),
                "apart": "host",
            }
            play_session(
                env,
                loaded,
                steps,
                names,
                cache,
                io,
                settings,
                live=env.stdout.isatty(),
                options=SessionOptions(headphones=headphones, mic_channels={HOST_WHO: 0}),
                log=log,
                scheduler=scheduler,
                commands=scheduler.commands,
            )
        finally:
            link.call(host.quit(), 10.0)
    _apart_end(scheduler)


@app.command("join")
def join_cmd(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="The host's address as it shows it, HOST:PORT.")],
    code: Annotated[str, typer.Option("--code", help="The pairing code the host shows.")],
    no_mic: NoMicOpt = False,
    headphones: HeadphonesOpt = False,
    input_device: InputDeviceOpt = None,
    output_device: OutputDeviceOpt = None,
    log: LogOpt = None,
) -> None:
    """Join an apart session hosted on your partner's device; it sends the script and settings.

    You are partner B at this device.
    """
    env = env_of(ctx)
    url = address if address.startswith(("ws://", "wss://")) else f"ws://{address}/"
    with _apart_link(env) as link:

        async def connect_link() -> Joiner:
            return await join_link(url, code, on_link_lost=link.lost, on_link_restored=link.restored)

        joiner = link.call(connect_link())
        try:
            setup = Setup.from_dict(joiner.setup)
            loaded, steps = setup.plan()
            names = Names(a=setup.a, b=setup.b)
            env.note(f"{PROG}: joined {loaded.title!r}; you are {setup.b}")
            cache = clip_cache(env, setup.voice, setup.rate_wpm, setup.sample_rate_hz)
            with progress(env, "Preparing speech") as update:
                prepare_clips(steps, cache, update)
            io = open_io(
                env,
                mic_file=None,
                out=None,
                realtime=False,
                no_mic=no_mic,
                input_device=input_device,
                output_device=output_device,
                channels=1,
                sample_rate_hz=setup.sample_rate_hz,
            )
            scheduler = JoinScheduler(link, joiner, _timed(io), len(steps), _apart_note(env), setup.sample_rate_hz)
            settings = {
                "voice": setup.voice,
                "rate_wpm": setup.rate_wpm,
                "sample_rate": setup.sample_rate_hz,
                "mic": not no_mic,
                "headphones": headphones,
                "set": list(setup.sets),
                "apart": "join",
            }
            play_session(
                env,
                loaded,
                steps,
                names,
                cache,
                io,
                settings,
                live=env.stdout.isatty(),
                options=SessionOptions(headphones=headphones, mic_channels={JOINER_WHO: 0}),
                log=log,
                scheduler=scheduler,
                commands=scheduler.commands,
            )
        finally:
            link.call(joiner.quit(), 10.0)
    _apart_end(scheduler)
