"""The apart link against someone who is not the partner: on the path, pretending to be the host, or just connecting.

Everything runs on loopback. Each attack is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from spake2 import SPAKE2_A, SPAKE2_B
from websockets.asyncio.client import connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from voice_guide.apart.link import (
    MAX_UNPAIRED,
    MAX_WRONG_TRIES,
    Host,
    LinkBusy,
    LinkError,
    LinkRefused,
    LinkTimings,
    pairing,
)
from voice_guide.apart.link import join as join_link
from voice_guide.apart.link.channel import Opener, Sealer, SealError
from voice_guide.apart.link.pairing import Pake, Session

from .test_link import CODE, FAST, Relay, run, within

NAMES = ("Annabelle", "Bartholomew")
SCRIPT_TEXT = "Tell your partner one thing you admired about them today."
SETUP = {"id": "mirror", "script": f"title: Mirror\nsteps:\n  - say: {SCRIPT_TEXT}\n", "a": NAMES[0], "b": NAMES[1]}
_HOST_ID, _JOINER_ID = b"voice-guide link host", b"voice-guide link joiner"


def _password(code: str) -> bytes:
    return b"voice-guide link v2 " + pairing.normalize_code(code).encode()


class Spy:
    """Record every WebSocket message either side sends, before masking, with the sender's role."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[tuple[str, bytes]] = []
        real_send = Connection.send

        async def spy(connection: Connection, message: Any, *args: Any, **kwargs: Any) -> None:
            role = "host" if isinstance(connection, ServerConnection) else "joiner"
            self.sent.append((role, message if isinstance(message, bytes) else str(message).encode()))
            await real_send(connection, message, *args, **kwargs)

        monkeypatch.setattr(Connection, "send", spy)

    def first(self, role: str, tag: int) -> bytes:
        return next(data[1:] for who, data in self.sent if who == role and data[:1] == bytes([tag]))


def test_a_recorded_pairing_verifies_no_guess_not_even_the_right_code(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)

    async def main() -> None:
        async with Host(CODE, setup=SETUP, timings=FAST) as host, await join_link(host.url, CODE, timings=FAST):
            await within(host.wait_joined())

    run(main())
    joiner_message = spy.first("joiner", pairing.PAIR)[1:]
    host_message = spy.first("host", pairing.PAKE)
    joiner_proof = spy.first("joiner", pairing.PROOF)
    host_proof = spy.first("host", pairing.CONFIRM)
    guesses = [CODE] + [pairing.make_code() for _ in range(30)]
    for guess in guesses:
        # Playing either side against the recording, with every guess, including the right one.
        as_joiner = SPAKE2_B(_password(guess), idA=_HOST_ID, idB=_JOINER_ID)
        as_joiner.start()
        keys = Session.from_pake_key(as_joiner.finish(host_message)).first_connection()
        assert keys.joiner_proof != joiner_proof and keys.host_proof != host_proof
        as_host = SPAKE2_A(_password(guess), idA=_HOST_ID, idB=_JOINER_ID)
        as_host.start()
        keys = Session.from_pake_key(as_host.finish(joiner_message)).first_connection()
        assert keys.joiner_proof != joiner_proof and keys.host_proof != host_proof
    # The same check on an exchange the checker took part in does match: the test can tell.
    host_side, joiner_side = Pake(CODE, host=True), Pake(CODE, host=False)
    first, second = host_side.start(), joiner_side.start()
    assert (
        Session.from_pake_key(host_side.finish(second)).first_connection().joiner_proof
        == Session.from_pake_key(joiner_side.finish(first)).first_connection().joiner_proof
    )


def test_a_fake_host_learns_nothing_it_can_check_offline() -> None:
    caught: dict[str, Any] = {}

    async def fake_host(ws: ServerConnection) -> None:
        data = await ws.recv(decode=False)
        assert isinstance(data, bytes) and data[0] == pairing.PAIR
        guess = SPAKE2_A(_password("1-acorn-acorn"), idA=_HOST_ID, idB=_JOINER_ID)
        await ws.send(bytes([pairing.PAKE]) + guess.start())
        proof = await ws.recv(decode=False)
        caught.update(joiner_message=data[2:], proof=proof[1:], guess=guess.serialize())
        await ws.send(bytes([pairing.CONFIRM]) + os.urandom(32))  # it cannot prove the code back
        await ws.wait_closed()

    async def main() -> None:
        async with serve(fake_host, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(LinkRefused, match="could not prove") as refused:
                await join_link(f"ws://127.0.0.1:{port}/", CODE, timings=FAST)
            assert refused.value.exit_code == 2

    run(main())
    # Offline, the fake host tries candidates against what it caught: with a fresh secret, and with
    # the very secret scalar it used on the wire. Nothing matches, not even the real code.
    saved = json.loads(caught["guess"])
    for candidate in [CODE] + [pairing.make_code() for _ in range(30)]:
        fresh = SPAKE2_A(_password(candidate), idA=_HOST_ID, idB=_JOINER_ID)
        fresh.start()
        reused = SPAKE2_A.from_serialized(json.dumps({**saved, "password": _password(candidate).hex()}).encode())
        for side in (fresh, reused):
            keys = Session.from_pake_key(side.finish(caught["joiner_message"])).first_connection()
            assert keys.joiner_proof != caught["proof"]


def test_nothing_readable_crosses_the_wire(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)
    times: list[float] = []

    async def main() -> tuple[bytes, bytes]:
        async with Host(CODE, setup=SETUP, timings=FAST) as host:
            relay = Relay(host.port)
            url = await relay.start()
            with pytest.raises(LinkRefused):
                await join_link(url, "9-zebra-zebra", timings=FAST)
            async with await join_link(url, CODE, timings=FAST) as link:
                assert link.setup == SETUP
                await link.send_ready()
                times.append(host.now_s() + 0.5)
                await host.send_step(7, times[-1])
                await within(anext(link.steps))
                await host.send_pause(times[-1] + 1.25)
                await within(anext(link.controls))
                times.append(time.monotonic())
                await link.send_speech(True, times[-1])
                await within(anext(host.speech))
                relay.cut()  # a resume crosses the wire too
                for _ in range(500):
                    if link.connected and host.connected:
                        break
                    await asyncio.sleep(0.01)
                await host.send_step(8, host.now_s() + 0.5)
                await within(anext(link.steps))
            await relay.close()
            return bytes(relay.upstream), bytes(relay.downstream)

    upstream, downstream = run(main())
    assert len(downstream) > len(SCRIPT_TEXT) and len(upstream) > 200
    readable = [
        *NAMES,
        SCRIPT_TEXT,
        "admired",
        "Mirror",
        CODE,
        "maple",
        "otter",
        "zebra",
        '"type"',
        "type",
        "setup",
        "hello",
        "step",
        "at_host_s",
        "speaking",
        "ready",
        "pause",
        "ping",
        "pong",
        "quit",
        *(repr(t) for t in times),
        *(f"{t:.3f}" for t in times),
        f"{times[0] + 1.25:.3f}",
    ]
    messages = [data for _, data in spy.sent]
    assert len(messages) > 10
    for text in readable:
        needle = text.encode()
        assert needle not in downstream and needle not in upstream, text  # the bytes on the path
        assert not any(needle in message for message in messages), text  # and every frame before masking
    # Every frame is binary: pairing frames start with a tag, sealed ones with a counter, none with "{".
    assert all(not message.startswith(b"{") for message in messages)


def test_a_second_device_with_the_code_is_refused_while_the_partner_stays() -> None:
    async def main() -> None:
        async with Host(CODE, setup=SETUP, timings=FAST) as host, await join_link(host.url, CODE, timings=FAST) as link:
            for _ in range(3):
                with pytest.raises(LinkRefused, match="already paired") as refused:
                    await join_link(host.url, CODE, timings=FAST)
                assert refused.value.exit_code == 2
            assert link.connected and host.connected
            await host.send_step(1, host.now_s() + 0.5)
            assert (await within(anext(link.steps))).index == 1
            assert host.tally.counts["taken"] == 3 and host.wrong_tries == 0

    run(main())


async def _stranger_resumes(url: str, session_id: bytes) -> bytes:
    """Ask to resume `session_id` with a made-up proof; return the host's last answer."""
    async with connect(url, proxy=None, compression=None) as ws:
        await ws.send(pairing.frame(pairing.RESUME, pairing.version_byte(), session_id, pairing.new_nonce()))
        answer = await within(ws.recv(decode=False))
        assert isinstance(answer, bytes)
        if answer[0] != pairing.CHALLENGE:
            return answer
        await ws.send(pairing.frame(pairing.PROOF, os.urandom(32)))
        last = await within(ws.recv(decode=False))
        assert isinstance(last, bytes)
        return last


def test_the_partner_resumes_after_a_blip_despite_strangers() -> None:
    async def main() -> None:
        back = asyncio.Event()
        async with Host(CODE, setup=SETUP, timings=FAST, on_link_restored=back.set) as host:
            relay = Relay(host.port)
            url = await relay.start()
            async with await join_link(url, CODE, timings=FAST) as link:
                await relay.close()  # the partner's network is gone for a while
                for _ in range(500):
                    if not host.connected:
                        break
                    await asyncio.sleep(0.01)
                assert not host.connected
                # Meanwhile strangers: the code (right or wrong) no longer pairs, and resumes fail.
                for code in [CODE] + [pairing.make_code() for _ in range(2 * MAX_WRONG_TRIES)]:
                    with pytest.raises(LinkRefused):
                        await join_link(host.url, code, timings=FAST)
                assert host._session is not None
                for session_id in (os.urandom(16), host._session.session_id):  # an eavesdropper sees the id
                    answer = await _stranger_resumes(host.url, session_id)
                    assert answer[:2] == bytes([pairing.REFUSED, pairing.UNKNOWN])
                assert not host.connected and host.wrong_tries == 0
                relay = Relay(host.port)  # the network comes back, on the same address
                relay._server = await asyncio.start_server(relay._serve, "127.0.0.1", int(url.rsplit(":", 1)[1][:-1]))
                await within(back.wait(), 10)
                for _ in range(500):
                    if link.connected:
                        break
                    await asyncio.sleep(0.01)
                assert link.connected and host.connected
                await host.send_step(2, host.now_s() + 0.5)
                assert (await within(anext(link.steps))).index == 2
                assert host.tally.counts["taken"] == 1 + 2 * MAX_WRONG_TRIES
                assert host.tally.counts["resume_refused"] == 2
            await relay.close()

    run(main(), 40)


def test_wrong_tries_wait_and_running_out_offers_a_fresh_code() -> None:
    async def main() -> None:
        codes: list[str] = []
        timings = LinkTimings(**{**FAST.__dict__, "wrong_delay_s": 0.1, "wrong_delay_max_s": 0.4})
        loop = asyncio.get_running_loop()
        async with Host(
            CODE, setup=SETUP, timings=timings, on_new_code=codes.append, max_unpaired=MAX_WRONG_TRIES + 1
        ) as host:
            started = loop.time()
            # Strangers in parallel are taken one at a time, each wrong one followed by a wait.
            tries = await asyncio.gather(
                *(join_link(host.url, f"{n}-zebra-zebra", timings=timings) for n in range(1, MAX_WRONG_TRIES + 1)),
                return_exceptions=True,
            )
            waited = loop.time() - started
            assert all(isinstance(t, LinkRefused) for t in tries), tries
            # The waits are lower bounds (sleeps), so load can only make this larger.
            assert waited >= sum(min(0.1 * 2**k, 0.4) for k in range(MAX_WRONG_TRIES))
            assert host.wrong_tries == MAX_WRONG_TRIES
            assert len(codes) == 1 and codes[0] != CODE and host.code == codes[0]
            with pytest.raises(LinkRefused, match="refused the pairing code"):
                await join_link(host.url, CODE, timings=timings)  # the old code is gone
            async with await join_link(host.url, codes[0], timings=timings) as link:
                assert link.setup == SETUP and host.joined

    run(main(), 40)


def test_a_busy_host_asks_the_joiner_to_wait_and_the_joiner_does() -> None:
    async def main() -> None:
        timings = LinkTimings(
            **{**FAST.__dict__, "pair_timeout_s": 0.5, "wrong_delay_s": 1.0, "wrong_delay_max_s": 1.0}
        )
        async with Host(CODE, setup=SETUP, timings=timings) as host:
            wrong = asyncio.ensure_future(join_link(host.url, "1-zebra-zebra", timings=timings))
            for _ in range(500):
                if host._pairing.locked():
                    break
                await asyncio.sleep(0.002)
            # A second try in line past its deadline is told to come back, and comes back by itself.
            once = LinkTimings(**{**timings.__dict__, "join_for_s": 0.0})
            with pytest.raises(LinkBusy):
                await join_link(host.url, CODE, timings=once)
            async with await join_link(host.url, CODE, timings=timings) as link:
                assert link.setup == SETUP
            with pytest.raises(LinkRefused):
                await wrong

    run(main(), 30)


def test_frames_replayed_reordered_or_altered_do_not_open() -> None:
    key = os.urandom(32)
    sealer, opener = Sealer(key), Opener(key)
    frames = [sealer.seal(f"message {n}".encode()) for n in range(4)]
    assert opener.open(frames[0]).rstrip() == b"message 0"
    with pytest.raises(SealError, match="replayed"):
        opener.open(frames[0])
    with pytest.raises(SealError, match="out of order"):
        opener.open(frames[2])
    altered = bytearray(frames[1])
    altered[-1] ^= 1
    with pytest.raises(SealError, match="authenticate"):
        opener.open(bytes(altered))
    moved = frames[2][:8] + frames[1][8:]  # a frame under another counter
    with pytest.raises(SealError):
        Opener(key).open(b"\0" * 8 + frames[1][8:])
    with pytest.raises(SealError):
        opener.open(frames[1][:8] + frames[2][8:])
    assert moved != frames[2]
    assert [opener.open(f).rstrip() for f in frames[1:]] == [b"message 1", b"message 2", b"message 3"]
    with pytest.raises(SealError):
        Opener(os.urandom(32)).open(frames[0])  # another key
    assert len({len(f) for f in frames}) == 1  # padded alike
    with pytest.raises(InvalidTag):  # the library refuses, not just our counter
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        ChaCha20Poly1305(key).decrypt(b"\0" * 4 + frames[0][:8], bytes(altered)[8:], frames[0][:8])


def test_a_replayed_frame_on_the_live_link_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)

    async def main() -> None:
        async with Host(CODE, setup=SETUP, timings=FAST) as host, await join_link(host.url, CODE, timings=FAST) as link:
            await host.send_step(1, host.now_s() + 0.5)
            assert (await within(anext(link.steps))).index == 1
            step_frame = spy.sent[-1][1]
            assert host._wire is not None
            real_send = Connection.send
            await real_send(host._wire.ws, step_frame)  # replayed as is
            await real_send(host._wire.ws, step_frame[:-1] + bytes([step_frame[-1] ^ 1]))  # altered
            await real_send(host._wire.ws, "a text frame")
            await host.send_step(2, host.now_s() + 0.5)
            assert (await within(anext(link.steps))).index == 2  # genuine frames still open
            assert link.tally.counts["sealed_bad"] == 3
            assert link.steps.drain() == [] and link.connected

    run(main())


def test_unpaired_connections_are_capped_and_closed_after_their_deadline() -> None:
    async def main() -> None:
        async with Host(CODE, setup=SETUP, timings=FAST) as host:
            silent = [await asyncio.open_connection("127.0.0.1", host.port) for _ in range(MAX_UNPAIRED + 6)]
            for _ in range(300):
                if host.tally.counts["over_limit"] >= 6:
                    break
                await asyncio.sleep(0.01)
            assert host.unpaired == MAX_UNPAIRED and host.tally.counts["over_limit"] == 6
            # Each one is closed by the host: the extra ones at once, the rest at the open deadline.
            for reader, _ in silent:
                assert await within(reader.read(), 5) == b""
            assert host.unpaired == 0
            for _, writer in silent:
                writer.close()
            async with await join_link(host.url, CODE, timings=FAST) as link:
                assert link.setup == SETUP

    run(main())


def test_junk_before_pairing_is_counted_and_told_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    junk: list[bytes | str] = [
        random.Random(7).randbytes(300),
        b"",
        b"\x01",
        b"\x01\x02" + b"\0" * 33,
        b"\x05" + b"\0" * 33,
        "not even binary",
        '{"v": 1, "type": "auth"}',
        b"\x08\x01\0\0",
        pairing.frame(pairing.PAIR, pairing.version_byte(), b"B" + b"\xff" * 32),
    ]

    async def main() -> Host:
        timings = LinkTimings(**{**FAST.__dict__, "summary_every_s": 1000.0})
        async with Host(CODE, setup=SETUP, timings=timings, max_new_per_s=1e6) as host:
            for round_ in range(20):
                for message in junk:
                    async with connect(host.url, proxy=None, compression=None) as ws:
                        await ws.send(message)
                        with pytest.raises(ConnectionClosed):  # closed, with or without a word first
                            for _ in range(3):
                                await within(ws.recv(), 2)
                reader, writer = await asyncio.open_connection("127.0.0.1", host.port)
                writer.write(b"GARBAGE\r\n\r\n" * (round_ + 1))  # not even HTTP
                await writer.drain()
                assert await within(reader.read(), 5) is not None
                writer.close()
            assert host.tally.counts["junk"] == 20 * len(junk)
            for _ in range(100):
                if host.tally.counts["not_websocket"] == 20:
                    break
                await asyncio.sleep(0.01)
            assert host.tally.counts["not_websocket"] == 20  # the bytes that were not even HTTP
            async with await join_link(host.url, CODE, timings=timings) as link:
                assert link.setup == SETUP
            return host

    with caplog.at_level(logging.INFO, logger="voice_guide.apart"):
        host = run(main(), 60)
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("voice_guide.apart") and r.levelno >= logging.WARNING
    ]
    assert len(lines) == 1, lines  # one summary at the end, none per message
    assert f"{20 * len(junk):,} junk messages" in lines[0]
    assert host.wrong_tries == 0


FD_HOST = """
import asyncio, os, resource, sys
from voice_guide.apart.link import Host, LinkTimings

async def main():
    timings = LinkTimings(open_timeout_s=0.5, pair_timeout_s=1.0, summary_every_s=1.0, keepalive_s=1.0,
                          keepalive_timeout_s=2.0)
    host = await Host("417-maple-otter", setup={"script": "x"}, timings=timings).start()
    soft = len(os.listdir("/proc/self/fd")) + 2      # room for fewer connections than the host allows
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    print(host.port, flush=True)
    await host.wait_joined()
    await host.send_step(0, host.now_s() + 0.5)
    print("ended by", await host.wait_closed(), "accept failures", host.tally.counts["accept_failed"], flush=True)

asyncio.run(main())
"""


def test_the_host_survives_running_out_of_file_descriptors(tmp_path: Path) -> None:
    script = tmp_path / "fd_host.py"
    script.write_text(FD_HOST)
    host = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert host.stdout is not None
        port = int(host.stdout.readline())

        async def main() -> None:
            flood = [await asyncio.open_connection("127.0.0.1", port) for _ in range(25)]
            await asyncio.sleep(1.5)  # long enough for accepts to fail and the deadlines to pass
            for _, writer in flood:
                writer.close()
            timings = LinkTimings(**{**FAST.__dict__, "join_for_s": 10.0, "open_timeout_s": 2.0})
            for _ in range(20):
                try:
                    link = await join_link(f"ws://127.0.0.1:{port}/", CODE, timings=timings)
                    break
                except LinkError:
                    await asyncio.sleep(0.5)
            else:
                raise AssertionError("never joined")
            assert (await within(anext(link.steps))).index == 0
            await link.quit()

        run(main(), 60)
        out, err = host.communicate(timeout=20)
    finally:
        host.kill()
        host.wait()
    assert host.returncode == 0, err
    failures = int(out.split("accept failures")[1])
    assert "ended by peer_quit" in out and failures > 0, (out, err)
    assert "Traceback" not in err
    assert 0 < len(err.splitlines()) * 10 < failures, err  # summaries, not a line per failure


def test_an_old_host_is_named_as_such() -> None:
    async def old_host(ws: ServerConnection) -> None:
        await ws.send('{"v":1,"type":"challenge","nonce":"' + "ab" * 32 + '"}')
        await ws.wait_closed()

    async def main() -> None:
        async with serve(old_host, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(LinkError, match="older link protocol"):
                await join_link(f"ws://127.0.0.1:{port}/", CODE, timings=FAST)

    run(main())


def test_new_connections_are_let_in_at_a_bounded_rate() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with Host(CODE, setup=SETUP, timings=FAST, max_unpaired=100, max_new_per_s=5.0) as host:
            started = loop.time()
            burst = [await asyncio.open_connection("127.0.0.1", host.port) for _ in range(30)]
            for _ in range(300):
                if host.unpaired + host.tally.counts["over_limit"] == 30:
                    break
                await asyncio.sleep(0.01)
            elapsed_s = loop.time() - started
            # A burst of 5 and then 5 a second: the rest were closed as they came.
            assert 5 <= host.unpaired <= 5 + 5 * elapsed_s + 1, (host.unpaired, elapsed_s)
            assert host.tally.counts["over_limit"] == 30 - host.unpaired
            for _, writer in burst:
                writer.close()

    run(main())
