"""Commands for partners apart: host and join one session from two devices."""

from __future__ import annotations

import contextlib
import errno
import queue
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated, cast

import typer

from voice_guide.apart.link import Host, Joiner, LinkError, LinkLost, link_url
from voice_guide.apart.link import join as join_link
from voice_guide.apart.linkthread import LinkThread, logging_off_the_loop
from voice_guide.apart.scheduler import HOST_WHO, JOINER_WHO, HostScheduler, JoinScheduler, Setup, TimedIO
from voice_guide.cli.app import app, env_of
from voice_guide.cli.build import check_paths, clip_cache, open_io, plan, progress, settings
from voice_guide.cli.env import PROG, Env
from voice_guide.cli.options import (
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
from voice_guide.cli.settings import SessionSettings
from voice_guide.errors import UsageError
from voice_guide.live.audio import AudioIO
from voice_guide.script import Script, Step
from voice_guide.sound.render import AheadClips
from voice_guide.sound.render import prepare as prepare_clips
from voice_guide.sound.speech import ClipCache, Pyttsx3Speaker


@contextlib.contextmanager
def _apart_link(env: Env) -> Iterator[LinkThread]:
    """Run the link's event loop in a thread; its warnings reach stderr one line each, written off that loop."""
    with logging_off_the_loop(lambda message: env.warn(f"link: {message}")):
        link = LinkThread()
        try:
            yield link
        finally:
            link.close()


# Listening fails on these because of the address or port asked for; anything else is the machine's fault.
_BAD_ADDRESS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES, errno.EAFNOSUPPORT})


def _show_code(env: Env, host: Host, code: str, fresh: bool) -> None:
    address = host.url.removeprefix("ws://").rstrip("/")
    if fresh:
        env.warn("too many wrong codes were tried; the old code no longer works")
    env.out(f"{'new ' if fresh else ''}pairing code: {code}")
    env.out(f"your partner joins with: {PROG} join {address} --code {code}")
    env.stdout.flush()


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


def _speech_here(env: Env, chosen: SessionSettings, own: SessionSettings) -> tuple[SessionSettings, ClipCache]:
    """Speak with the host's voice if this device has it, else with this device's own voice, else espeak-ng's.

    The host names its voice as it knows it (a name in its voices folder, a path on its
    disk); this device may not have it, and a session in another voice beats none.
    """
    tries = [
        chosen,
        replace(chosen, engine=own.engine, voice=own.voice),
        replace(chosen, engine="espeak", voice=None),
    ]
    refused: UsageError | None = None
    for candidate in tries:
        try:
            cache = clip_cache(env, candidate)
            _ = cache.speaker.voice_digest  # finds (and checks) the voice now, not in the middle of the session
        except UsageError as exc:  # VoiceError included: a voice missing or not its published self
            refused = refused or exc
            continue
        if refused is not None:
            speaker = cache.speaker
            what = f"the host's voice {chosen.voice!r}" if chosen.voice else "the voice set here"
            env.warn(
                f"{what} cannot be used on this device ({refused.message}); "
                f"speaking with {speaker.engine_id} voice {speaker.voice_id} instead"
            )
        return candidate, cache
    assert refused is not None
    raise refused


def _speech_bank(
    env: Env,
    cache: ClipCache,
    chosen: SessionSettings,
    steps: Sequence[Step],
    on_made: Callable[[], None] | None = None,
) -> AheadClips | None:
    """Return Piper's speech to make in the background as the session goes; espeak-ng's is made here and now.

    espeak-ng is quick, and it silences stdout process-wide while it speaks, which would
    swallow the display's lines if it spoke from another thread.
    """
    if not isinstance(cache.speaker, Pyttsx3Speaker):
        return AheadClips(cache, chosen.sample_rate_hz, steps, on_made=on_made)
    with progress(env, "Preparing speech") as update:
        prepare_clips(steps, cache, update)
    return None


def _play_linked(
    env: Env,
    loaded: Script,
    steps: Sequence[Step],
    chosen: SessionSettings,
    cache: ClipCache,
    io: AudioIO,
    scheduler: HostScheduler | JoinScheduler,
    log: Path | None,
    bank: AheadClips | None,
) -> None:
    """Play one side of an apart session, its clock and keys tied to the partner's device."""
    play_session(
        env,
        loaded,
        steps,
        chosen,
        cache,
        io,
        live=env.stdout.isatty(),
        log=log,
        scheduler=scheduler,
        commands=scheduler.commands,
        bank=bank,
    )


@app.command("host")
def host_cmd(
    ctx: typer.Context,
    script: ScriptArg,
    port: PortOpt = 8765,
    bind: BindOpt = "127.0.0.1",
    code: CodeOpt = None,
    a: NameA = None,
    b: NameB = None,
    sets: SetOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = None,
    no_mic: NoMicOpt = False,
    headphones: HeadphonesOpt = None,
    input_device: InputDeviceOpt = None,
    output_device: OutputDeviceOpt = None,
    log: LogOpt = None,
) -> None:
    """Host an apart session: your partner joins from their device and both play it in step.

    You are partner A (--a) at this device; the partner who joins is partner B (--b).
    """
    env = env_of(ctx)
    flags = {
        "a": a,
        "b": b,
        "voice": voice,
        "rate": rate,
        "headphones": headphones,
        "input_device": input_device,
        "output_device": output_device,
    }
    # One device, one partner: this device's mic is partner A's.
    chosen = replace(settings(env, flags, mic=not no_mic, sets=sets), mic_channels={HOST_WHO: 0}, apart="host")
    names = chosen.names
    loaded, steps = plan(env, script, names, chosen.sets)
    check_paths([("--log", log, ("json",))], loaded, steps)
    text = env.library().resolve(script).read_bytes().decode("utf-8")
    setup = Setup(loaded.id, text, names.a, names.b, chosen.sets, chosen.voice, chosen.rate_wpm, chosen.sample_rate_hz)
    cache = clip_cache(env, chosen)
    # Piper's speech is made in the background from here on, while the partner joins: the
    # code shows at once, and the scheduler announces a step only once its speech is made.
    bank = _speech_bank(env, cache, chosen, steps)
    io = open_io(env, chosen)
    new_codes: queue.SimpleQueue[str] = queue.SimpleQueue()
    with _apart_link(env) as link, bank or contextlib.nullcontext():

        async def start() -> Host:
            return await Host(
                code,
                bind,
                port,
                setup=setup.as_dict(),
                on_link_lost=link.lost,
                on_link_restored=link.restored,
                on_new_code=new_codes.put,
            ).start()

        try:
            host = link.call(start())
        except OSError as exc:
            if exc.errno not in _BAD_ADDRESS:
                raise LinkError(f"cannot listen on {bind}:{port}: {exc.strerror or exc}", "try again") from None
            raise UsageError(
                f"cannot listen on {bind}:{port}: {exc.strerror or exc}",
                "pick another --port, or check --bind is this device's address",
            ) from None

        def show_new_codes() -> None:
            while not new_codes.empty():
                _show_code(env, host, new_codes.get(), fresh=True)

        try:
            _show_code(env, host, host.code, fresh=False)
            if bind in ("0.0.0.0", "::"):
                env.warn("listening on every interface; give your partner this device's own address")
            link.wait(host.wait_joined(), show_new_codes)
            env.warn("your partner joined")
            made = None if bank is None else (lambda index, clips=bank: clips.ready(steps[index]))
            scheduler = HostScheduler(link, host, _timed(io), len(steps), env.warn, made)
            _play_linked(env, loaded, steps, chosen, cache, io, scheduler, log, bank)
        finally:
            link.call(host.quit(), 10.0)
    _apart_end(scheduler)


@app.command("join")
def join_cmd(
    ctx: typer.Context,
    address: Annotated[
        str, typer.Argument(help="The host's address as it shows it, HOST:PORT (port 8765 if left out).")
    ],
    code: Annotated[str, typer.Option("--code", help="The pairing code the host shows.")],
    no_mic: NoMicOpt = False,
    headphones: HeadphonesOpt = None,
    input_device: InputDeviceOpt = None,
    output_device: OutputDeviceOpt = None,
    log: LogOpt = None,
) -> None:
    """Join an apart session hosted on your partner's device; it sends the script and settings.

    You are partner B at this device.
    """
    env = env_of(ctx)
    check_paths([("--log", log, ("json",))])
    url = link_url(address)
    with _apart_link(env) as link:

        async def connect_link() -> Joiner:
            return await join_link(url, code, on_link_lost=link.lost, on_link_restored=link.restored)

        joiner = link.call(connect_link())
        try:
            setup = Setup.from_dict(joiner.setup)
            loaded, steps = setup.plan()
            env.warn(f"joined {loaded.title!r}; you are {setup.b}")
            # The host decides what is played (names, voice, speaking and sample rate); this device how it listens.
            flags = {
                "a": setup.a,
                "b": setup.b,
                "voice": setup.voice,
                "rate": setup.rate_wpm,
                "sample_rate": setup.sample_rate_hz,
                "headphones": headphones,
                "input_device": input_device,
                "output_device": output_device,
            }
            chosen = replace(
                settings(env, flags, mic=not no_mic, sets=setup.sets), mic_channels={JOINER_WHO: 0}, apart="join"
            )
            own = settings(env, {**flags, "voice": None}, mic=not no_mic, sets=setup.sets)
            chosen, cache = _speech_here(env, chosen, own)
            # As on the host: Piper's speech is made in the background. The host hears for how
            # many steps it is made (first before "ready", then as each prompt is made) and
            # announces no step beyond, so both devices hold at one boundary if this one falls behind.
            # The speech thread starts on entering `bank`, once `scheduler` below exists.
            bank = _speech_bank(env, cache, chosen, steps, on_made=lambda: scheduler.tell_made())
            io = open_io(env, chosen)

            def steps_made() -> int:
                assert bank is not None
                return next((i for i, step in enumerate(steps) if not bank.ready(step)), len(steps))

            scheduler = JoinScheduler(
                link,
                joiner,
                _timed(io),
                len(steps),
                env.warn,
                setup.sample_rate_hz,
                None if bank is None else steps_made,
            )
            with bank or contextlib.nullcontext():
                _play_linked(env, loaded, steps, chosen, cache, io, scheduler, log, bank)
        finally:
            link.call(joiner.quit(), 10.0)
    _apart_end(scheduler)
