"""The apart-mode link on loopback: pairing, clock sync, timed messages, drops, quit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

import pytest

from voice_guide.apart.link import (
    CODE_SPACE,
    DEFAULT_PORT,
    MAX_MESSAGE_BYTES,
    Host,
    Joiner,
    LinkError,
    LinkLost,
    LinkTimings,
    decode_message,
    encode_message,
    estimate_clock,
    join,
    link_url,
    make_code,
    normalize_code,
)
from voice_guide.apart.link.words import WORDS
from voice_guide.errors import UsageError

T = TypeVar("T")
CODE = "417-maple-otter"
SHIFT_S = 12.345  # the joiner's clock runs this far ahead of the host's
SETUP = {"script": {"title": "Mirror", "steps": [{"say": "Tell your partner one thing."}]}, "settings": {"rate": 48000}}
FAST = LinkTimings(
    reconnect_for_s=3.0,
    backoff_first_s=0.05,
    backoff_max_s=0.2,
    keepalive_s=1.0,
    keepalive_timeout_s=1.0,
    open_timeout_s=1.0,
    pair_timeout_s=2.0,
    pong_timeout_s=0.5,
    wrong_delay_s=0.05,
    wrong_delay_max_s=0.2,
    join_for_s=5.0,
)


def run(main: Coroutine[Any, Any, T], timeout_s: float = 20.0) -> T:
    """Run one test body on a fresh event loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(main, timeout_s))


def shifted_clock() -> float:
    return time.monotonic() + SHIFT_S


async def within(awaitable: Awaitable[T], timeout_s: float = 5.0) -> T:
    return await asyncio.wait_for(awaitable, timeout_s)


class Relay:
    """Forward TCP between joiner and host on loopback, recording bytes; `cut` drops every connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.upstream = bytearray()
        self.downstream = bytearray()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self._connections = 0
        self._frozen_below = 0  # connections numbered below this pass nothing, but stay open

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers += [writer, up_writer]
        number, self._connections = self._connections, self._connections + 1
        await asyncio.gather(
            self._pump(reader, up_writer, self.upstream, number), self._pump(up_reader, writer, self.downstream, number)
        )

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bytearray, number: int
    ) -> None:
        try:
            while data := await reader.read(65536):
                if number < self._frozen_below:
                    continue
                record += data
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    def freeze(self) -> None:
        """Silently stop forwarding on the open connections, as a dead Wi-Fi does; new ones work."""
        self._frozen_below = self._connections

    def cut(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()


def test_right_code_joins_and_receives_the_hello() -> None:
    async def main() -> None:
        async with Host(CODE, setup=SETUP, timings=FAST) as host:
            assert host.url.startswith("ws://127.0.0.1:")
            async with await join(host.url, " 0417 MAPLE  otter ", timings=FAST) as link:
                await within(host.wait_joined())
                assert link.setup == SETUP
                assert link.connected and host.connected and host.joined
                assert host.wrong_tries == 0 and host.unpaired == 0
                assert not host.ready
                await link.send_ready()
                for _ in range(200):
                    if host.ready:
                        break
                    await asyncio.sleep(0.01)
                assert host.ready

    run(main())


def test_clock_offset_is_estimated_within_5_ms() -> None:
    async def main() -> None:
        timings = LinkTimings(sync_every_s=0.2, keepalive_s=1.0, keepalive_timeout_s=1.0)
        async with (
            Host(CODE, setup=SETUP, timings=timings) as host,
            await join(host.url, CODE, clock=shifted_clock, timings=timings) as link,
        ):
            first = link.host_clock
            assert first.samples >= 8
            assert abs(link.offset_s - -SHIFT_S) < 0.005
            assert abs(link.to_local_s(100.0) - (100.0 + SHIFT_S)) < 0.005
            for _ in range(50):  # refreshed on its own
                if link.host_clock is not first:
                    break
                await asyncio.sleep(0.05)
            assert link.host_clock is not first
            assert abs(link.offset_s - -SHIFT_S) < 0.005

    run(main())


def test_estimate_clock_takes_the_fastest_round_trip() -> None:
    samples = [(0.0, 10.4, 0.4), (1.0, 11.52, 1.04), (2.0, 12.9, 2.2)]
    clock = estimate_clock(samples)
    assert clock.offset_s == pytest.approx(11.52 - 1.02)
    assert clock.rtt_s == pytest.approx(0.04)
    assert clock.to_host_s(clock.to_local_s(5.0)) == pytest.approx(5.0)


def test_steps_and_controls_arrive_in_local_time_and_speech_in_host_time() -> None:
    async def main() -> None:
        async with (
            Host(CODE, setup=SETUP, timings=FAST) as host,
            await join(host.url, CODE, clock=shifted_clock, timings=FAST) as link,
        ):
            at_host_s = host.now_s() + 0.5
            assert await host.send_step(3, at_host_s)
            step = await within(anext(link.steps))
            assert (step.index, step.at_host_s) == (3, at_host_s)
            assert abs(step.at_local_s - (at_host_s + SHIFT_S)) < 0.005
            await host.send_pause(at_host_s + 1.0)
            pause = await within(anext(link.controls))
            assert pause.kind == "pause" and abs(pause.at_local_s - (at_host_s + 1.0 + SHIFT_S)) < 0.005

            now_local_s = shifted_clock()
            assert await link.send_speech(True, now_local_s)
            await link.send_speech(False, now_local_s + 2.0)
            started, stopped = [await within(anext(host.speech)) for _ in range(2)]
            assert started.speaking and not stopped.speaking
            assert abs(started.at_host_s - (now_local_s - SHIFT_S)) < 0.005
            assert abs(stopped.at_host_s - started.at_host_s - 2.0) < 1e-6
            await link.send_resume(now_local_s)
            resume = await within(anext(host.controls))
            assert resume.kind == "resume" and resume.at_host_s == resume.at_local_s

    run(main())


def test_inboxes_drain_from_another_thread_without_the_loop() -> None:
    async def main() -> None:
        async with Host(CODE, setup=SETUP, timings=FAST) as host, await join(host.url, CODE, timings=FAST) as link:
            for index in range(3):
                await host.send_step(index, host.now_s() + 1.0 + index)
            for _ in range(200):
                if len(link.steps._items) == 3:
                    break
                await asyncio.sleep(0.01)
            drained = await asyncio.to_thread(link.steps.drain)
            assert [step.index for step in drained] == [0, 1, 2]
            assert link.steps.drain() == []

    run(main())


def test_a_dropped_link_is_noticed_on_both_sides_and_the_joiner_comes_back() -> None:
    async def main() -> None:
        events = {name: asyncio.Event() for name in ("host_lost", "host_back", "joiner_lost", "joiner_back")}
        async with Host(
            CODE,
            setup=SETUP,
            timings=FAST,
            on_link_lost=events["host_lost"].set,
            on_link_restored=events["host_back"].set,
        ) as host:
            relay = Relay(host.port)
            url = await relay.start()
            async with await join(
                url,
                CODE,
                timings=FAST,
                on_link_lost=events["joiner_lost"].set,
                on_link_restored=events["joiner_back"].set,
            ) as link:
                await host.send_step(1, host.now_s() + 0.5)
                assert (await within(anext(link.steps))).index == 1
                relay.cut()
                await within(events["joiner_lost"].wait())
                await within(events["host_lost"].wait())
                await within(events["joiner_back"].wait())
                await within(events["host_back"].wait())
                assert link.connected and host.connected
                assert await host.send_step(2, host.now_s() + 0.5)
                assert (await within(anext(link.steps))).index == 2  # step 1 is not delivered twice
                assert await link.send_speech(True, time.monotonic())
                assert (await within(anext(host.speech))).speaking
            await relay.close()

    run(main())


def test_a_silent_link_is_noticed_by_keepalive_and_comes_back() -> None:
    async def main() -> None:
        timings = LinkTimings(
            reconnect_for_s=3.0,
            backoff_first_s=0.05,
            keepalive_s=0.2,
            keepalive_timeout_s=0.3,
            open_timeout_s=1.0,
            pair_timeout_s=1.0,
        )
        events = {name: asyncio.Event() for name in ("host_lost", "host_back", "joiner_lost", "joiner_back")}
        async with Host(
            CODE,
            setup=SETUP,
            timings=timings,
            on_link_lost=events["host_lost"].set,
            on_link_restored=events["host_back"].set,
        ) as host:
            relay = Relay(host.port)
            url = await relay.start()
            async with await join(
                url,
                CODE,
                timings=timings,
                on_link_lost=events["joiner_lost"].set,
                on_link_restored=events["joiner_back"].set,
            ) as link:
                relay.freeze()
                for name in ("joiner_lost", "host_lost", "joiner_back", "host_back"):
                    await within(events[name].wait())
                assert await host.send_step(5, host.now_s() + 0.5)
                assert (await within(anext(link.steps))).index == 5
            await relay.close()

    run(main())


def test_a_step_sent_while_the_link_is_down_arrives_after_the_reconnect() -> None:
    async def main() -> None:
        lost = asyncio.Event()
        async with Host(CODE, setup=SETUP, timings=FAST, on_link_lost=lost.set) as host:
            relay = Relay(host.port)
            url = await relay.start()
            async with await join(url, CODE, timings=FAST) as link:
                relay.cut()
                await within(lost.wait())
                await host.send_step(4, host.now_s() + 1.0)
                assert (await within(anext(link.steps))).index == 4
            await relay.close()

    run(main())


def test_both_sides_give_up_when_the_link_does_not_come_back() -> None:
    async def main() -> None:
        timings = LinkTimings(
            reconnect_for_s=0.5,
            backoff_first_s=0.05,
            keepalive_s=0.5,
            keepalive_timeout_s=0.5,
            open_timeout_s=0.5,
            pair_timeout_s=0.5,
        )
        async with Host(CODE, setup=SETUP, timings=timings) as host:
            relay = Relay(host.port)
            url = await relay.start()
            async with await join(url, CODE, timings=timings) as link:
                await relay.close()  # the network is gone for good
                with pytest.raises(LinkLost) as joiner_gave_up:
                    await within(link.wait_closed())
                with pytest.raises(LinkLost):
                    await within(anext(link.steps))
                with pytest.raises(LinkLost) as host_gave_up:
                    await within(host.wait_closed())
                for error in (joiner_gave_up.value, host_gave_up.value):
                    assert error.exit_code == 1 and error.hint and "\n" not in error.one_line()

    run(main())


@pytest.mark.parametrize("who_quits", ["host", "joiner"])
def test_quit_ends_the_other_side_cleanly(who_quits: str) -> None:
    async def main() -> None:
        async with Host(CODE, setup=SETUP, timings=FAST) as host:
            url = host.url
            async with await join(url, CODE, timings=FAST) as link:
                quitter: Host | Joiner = host if who_quits == "host" else link
                other: Host | Joiner = link if who_quits == "host" else host
                await quitter.quit()
                assert await within(other.wait_closed()) == "peer_quit"
                assert await within(quitter.wait_closed()) == "quit"
                assert [c async for c in other.controls] == []
                if isinstance(other, Joiner):
                    assert [s async for s in other.steps] == []
                else:
                    assert [s async for s in other.speech] == []
            with pytest.raises(LinkError):  # the host stopped listening either way
                await within(join(url, CODE, timings=FAST))

    run(main())


def test_binding_is_loopback_unless_asked() -> None:
    async def main() -> None:
        async with Host(CODE, timings=FAST) as host:
            assert host._server is not None
            assert {sock.getsockname()[0] for sock in host._server.sockets} == {"127.0.0.1"}
        with pytest.raises(UsageError):
            Host(CODE, bind="")

    run(main())


def test_the_largest_setup_that_fits_arrives_whole() -> None:
    setup = {"script": "x" * (MAX_MESSAGE_BYTES - 60)}
    assert len(encode_message("hello", setup=setup)) > MAX_MESSAGE_BYTES - 20  # padding takes it over the limit

    async def main() -> None:
        async with Host(CODE, setup=setup, timings=FAST) as host, await join(host.url, CODE, timings=FAST) as link:
            assert link.setup == setup

    run(main())


def test_setup_must_fit_one_message() -> None:
    with pytest.raises(LinkError, match="too large"):
        Host(CODE, setup={"script": "x" * MAX_MESSAGE_BYTES})
    with pytest.raises(LinkError):
        Host(CODE, setup={"script": object()})


def test_decode_message_accepts_only_the_schema() -> None:
    speech = decode_message(encode_message("speech", speaking=False, at_host_s=3))
    assert speech.kind == "speech" and speech.flag("speaking") is False and speech.time("at_host_s") == 3.0
    assert decode_message(encode_message("ready")).kind == "ready"
    # Fields are read by their kind: a flag is not a time.
    with pytest.raises(AssertionError):
        speech.time("speaking")
    for raw in (
        b"\xff\xfe",
        b"not json",
        b"[1]",
        b'{"v": 1, "type": "ready"}',
        b'{"v": 2, "type": "nope"}',
        b'{"v": 2, "type": "ping", "id": -1, "t0": 1.0}',
        b'{"v": 2, "type": "ping", "id": 1, "t0": NaN}',
        b'{"v": 2, "type": "ready", "extra": 1}',
        b'{"v": 2, "type": "speech", "speaking": 1, "at_host_s": 2}',
        b"[" * 20_000 + b"]" * 20_000,
        encode_message("ping", id=1, t0=1.0) + b" " * MAX_MESSAGE_BYTES,
    ):
        with pytest.raises(ValueError):
            decode_message(raw)


def test_addresses_are_read_as_the_host_shows_them() -> None:
    assert link_url("127.0.0.1:9000") == "ws://127.0.0.1:9000/"
    assert link_url("192.168.1.20") == f"ws://192.168.1.20:{DEFAULT_PORT}/"
    assert link_url("[::1]") == f"ws://[::1]:{DEFAULT_PORT}/"
    assert link_url("ws://[::1]:5/") == "ws://[::1]:5/"
    for bad in ("ws://[::1", "host:99999", "host:0", "http://x:1/", "a b", "x:1/path", "", "ws://:5", "u@x:1"):
        with pytest.raises(UsageError) as error:
            link_url(bad)
        assert "\n" not in error.value.one_line() and error.value.exit_code == 2
    with pytest.raises(UsageError):
        Joiner("ws://127.0.0.1:1/", " - ")


def test_codes_are_a_number_and_two_words_read_back_as_typed() -> None:
    codes = [make_code() for _ in range(50)]
    for code in codes:
        number, first, second = code.split("-")
        assert 1 <= int(number) <= 999 and str(int(number)) == number
        assert first in WORDS and second in WORDS
        assert normalize_code(code.upper().replace("-", "  ")) == code
    assert len(set(codes)) > 40
    assert len(WORDS) == len(set(WORDS)) == 256 and all(word.isalpha() and word.islower() for word in WORDS)
    assert CODE_SPACE == 999 * 256 * 256
    assert normalize_code("007 Maple_otter") == "7-maple-otter"


def test_unreachable_host_is_a_link_error() -> None:
    async def main() -> None:
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        with pytest.raises(LinkError, match="could not reach"):
            await join(f"ws://127.0.0.1:{port}/", CODE, timings=FAST)

    run(main())
