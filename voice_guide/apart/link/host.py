"""The hosting end: serves one partner on a one-use code and keeps strangers from pairing or knocking it over.

Admission, in order: at most `max_unpaired` connections that have not paired are open at
once (more are closed as they are accepted, before any work, so a flood of connections
cannot use up file descriptors); each has `open_timeout_s` to open the WebSocket and
`pair_timeout_s` to pair. Pairing exchanges run one at a time; after each wrong code the
next exchange waits (`wrong_delay_s`, doubling up to `wrong_delay_max_s`), and after
`max_wrong_tries` before anyone joined the host picks a fresh code (`on_new_code`) instead
of giving up. Once a partner has paired the code is spent: every later pairing is refused,
and only a device that proves the session secret (the partner after a drop) gets back in.
What strangers do is counted and logged as one summary line per interval (`tally`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final, cast

from websockets.asyncio.connection import Connection
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from voice_guide.apart.link import pairing
from voice_guide.apart.link.pairing import PairingError, Pake, Session, make_code, normalize_code
from voice_guide.apart.link.peer import Peer, Wire
from voice_guide.apart.link.protocol import (
    DEFAULT_TIMINGS,
    MAX_MESSAGE_BYTES,
    MIN_LEAD_S,
    PROTOCOL_VERSION,
    Callback,
    Clock,
    Inbox,
    LinkError,
    LinkLost,
    LinkTimings,
    Message,
    Speech,
    encode_message,
    field_ok,
)
from voice_guide.errors import UsageError

log = logging.getLogger(__name__)

MAX_UNPAIRED: Final = 4
# New unpaired connections let in per second (with a burst of as many): bounds the work a flood
# can make the host do, however fast it connects. The partner needs one per reconnect.
MAX_NEW_PER_S: Final = 20.0
MAX_WRONG_TRIES: Final = 5
# What a joiner sends is small; a bigger frame closes its connection (it then resumes).
_HOST_MAX_FRAME_BYTES: Final = 16 * 1024
_FIRST_FRAMES: Final = frozenset({pairing.PAIR, pairing.RESUME})
# asyncio's accept loop reports these, pauses a second and tries again: the host goes on.
_OUT_OF_RESOURCES: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class _Turned(Exception):
    """A connection that is not let in; `kind` is what the tally counts, `reply` what it is told."""

    def __init__(self, kind: str, reply: bytes | None = None, delay_s: float = 0.0) -> None:
        super().__init__(kind)
        self.kind = kind
        self.reply = reply
        self.delay_s = delay_s  # the reply waits this long (after a wrong code), outside the deadline


class Host(Peer):
    """Serve one joiner on a pairing code; the host's clock is the shared timeline.

    Loopback (`127.0.0.1`) unless the caller passes another address; `port=0` picks a free
    port (see `url`). After a drop the host waits for the partner to resume for
    `timings.reconnect_for_s + timings.keepalive_timeout_s` (it may notice the drop later
    than the joiner), then ends with LinkLost.
    """

    def __init__(
        self,
        code: str | None = None,
        bind: str = "127.0.0.1",
        port: int = 0,
        *,
        setup: Mapping[str, object] | None = None,
        clock: Clock = time.monotonic,
        timings: LinkTimings = DEFAULT_TIMINGS,
        on_link_lost: Callback | None = None,
        on_link_restored: Callback | None = None,
        on_new_code: Callable[[str], None] | None = None,
        max_unpaired: int = MAX_UNPAIRED,
        max_new_per_s: float = MAX_NEW_PER_S,
        max_wrong_tries: int = MAX_WRONG_TRIES,
    ) -> None:
        super().__init__(clock, timings, on_link_lost, on_link_restored)
        if not bind.strip():
            # asyncio reads an empty host as "every interface"; that must be asked for by name.
            raise UsageError("no address to listen on", hint="leave it out for this device only, or pass 0.0.0.0")
        self.bind = bind
        self._port = port
        self._code = normalize_code(code) if code is not None else make_code()
        self._on_new_code = on_new_code
        self.max_unpaired = max_unpaired
        self._admissions = _Bucket(max_new_per_s, clock)
        self.max_wrong_tries = max_wrong_tries
        try:
            # A round trip copies the caller's dict, so later changes to it cannot leak in.
            self._setup: dict[str, object] = json.loads(encode_message("hello", setup=dict(setup or {})))["setup"]
        except (TypeError, ValueError) as exc:
            raise LinkError("the script and settings cannot be sent as JSON", hint=str(exc)) from exc
        size = len(encode_message("hello", setup=self._setup))
        if size > MAX_MESSAGE_BYTES:
            raise LinkError(
                f"the script and settings are too large to send ({size // 1024} KiB, "
                f"limit {MAX_MESSAGE_BYTES // 1024} KiB)",
                hint="shorten the script",
            )
        self.speech: Inbox[Speech] = Inbox()
        self._server: Server | None = None
        self._session: Session | None = None
        self._pairing = asyncio.Lock()  # one exchange at a time: the overall rate limit
        self._next_try_s = float("-inf")  # no exchange starts before this (host clock)
        self._wrong_tries = 0  # on the current code
        self._wrong_total = 0
        self._unpaired = 0  # open connections that have not paired
        self._joined = asyncio.Event()
        self._ready = False
        self._partner_made: int | None = None
        self._waiting_since_loss = False
        self._expiry: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous_handler: Any = None

    def _inboxes(self) -> list[Inbox[Any]]:
        return [self.controls, self.speech]

    async def start(self) -> Host:
        """Start listening; return self."""
        if self._server is None:
            host = self

            class Gated(ServerConnection):
                """Close a connection as it is accepted when too many unpaired ones are open, or come too fast."""

                counted = False
                opened = False

                def connection_made(self, transport: asyncio.BaseTransport) -> None:
                    full = host._unpaired >= host.max_unpaired or host._ended is not None
                    if full or not host._admissions.take():
                        host.tally.count("over_limit")
                        Connection.connection_made(self, transport)  # no handler task, no handshake
                        cast(asyncio.Transport, transport).abort()
                        return
                    self.counted = True
                    host._unpaired += 1
                    super().connection_made(transport)

                def connection_lost(self, exc: Exception | None) -> None:
                    if self.counted and not self.opened:
                        host.tally.count("not_websocket")  # junk or silence before any WebSocket
                    host._release(self)
                    super().connection_lost(exc)

            self._server = await serve(
                self._handle,
                self.bind,
                self._port,
                create_connection=Gated,
                max_size=_HOST_MAX_FRAME_BYTES,
                compression=None,
                open_timeout=self.timings.open_timeout_s,
                ping_interval=self.timings.keepalive_s,
                ping_timeout=self.timings.keepalive_timeout_s,
                close_timeout=1.0,
                logger=logging.getLogger(f"{__name__}.transport"),
            )
            self._loop = asyncio.get_running_loop()
            self._previous_handler = self._loop.get_exception_handler()
            self._loop.set_exception_handler(self._loop_error)
            self._spawn(self._summarise())
        return self

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """Count failed accepts (out of file descriptors) in the tally; pass anything else on."""
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in _OUT_OF_RESOURCES:
            self.tally.count("accept_failed")
        elif self._previous_handler is not None:
            self._previous_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    def _release(self, connection: ServerConnection) -> None:
        """Stop counting `connection` as unpaired (it paired, or it closed)."""
        if getattr(connection, "counted", False):
            connection.counted = False  # type: ignore[attr-defined]
            self._unpaired -= 1

    async def __aenter__(self) -> Host:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.quit()

    @property
    def code(self) -> str:
        """Return the pairing code in force (a fresh one after too many wrong tries)."""
        return self._code

    @property
    def port(self) -> int:
        """Return the TCP port the host listens on."""
        if self._server is None:
            raise RuntimeError("the host is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """Return the address a joiner connects to, e.g. ws://127.0.0.1:8765/."""
        host = f"[{self.bind}]" if ":" in self.bind else self.bind
        return f"ws://{host}:{self.port}/"

    @property
    def wrong_tries(self) -> int:
        """Return how many pairings failed on a wrong code so far, on every code."""
        return self._wrong_total

    @property
    def unpaired(self) -> int:
        """Return how many connections that have not paired are open now."""
        return self._unpaired

    @property
    def joined(self) -> bool:
        """Return whether a partner has paired."""
        return self._joined.is_set()

    @property
    def ready(self) -> bool:
        """Return whether the partner said it is ready to play (safe to read from any thread)."""
        return self._ready

    @property
    def partner_made(self) -> int | None:
        """Return for how many steps the partner's speech is made, or None if it never said (all, once ready)."""
        return self._partner_made

    def now_s(self) -> float:
        """Return the host clock in seconds (the shared timeline)."""
        return self._clock()

    async def wait_joined(self) -> None:
        """Wait until a joiner has paired; raise the LinkError if the link ends first."""
        waits = [asyncio.ensure_future(event.wait()) for event in (self._joined, self._closed)]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if self._joined.is_set():
            return
        if self._error is not None:
            raise self._error
        raise LinkError("the link ended before the partner joined", hint="start the session again")

    async def send_step(self, index: int, at_host_s: float) -> bool:
        """Tell the joiner to start step `index` at `at_host_s` (host clock); return whether it went out now.

        A step sent while the link is down goes out after the joiner reconnects.
        """
        if not (field_ok("count", index) and field_ok("time", at_host_s)):
            raise ValueError(f"bad step: index={index!r}, at_host_s={at_host_s!r}")
        lead_s = at_host_s - self._clock()
        if lead_s < MIN_LEAD_S:
            log.warning("step %d is only %.0f ms ahead; the joiner may start it late", index, lead_s * 1000)
        return await self._send_state("step", "step", index=index, at_host_s=at_host_s)

    async def send_pause(self, at_host_s: float) -> bool:
        """Tell the joiner the session pauses at `at_host_s`; return whether it went out now."""
        return await self._send_control("pause", at_host_s)

    async def send_resume(self, at_host_s: float) -> bool:
        """Tell the joiner the session resumes at `at_host_s`; return whether it went out now."""
        return await self._send_control("resume", at_host_s)

    async def quit(self) -> None:
        """End the link: tell the joiner, close, and stop listening."""
        if self._finish("quit"):
            await self._send("quit")
        await self._stop_serving()
        await self._cancel_tasks()
        if self._loop is not None and self._loop.get_exception_handler() == self._loop_error:
            self._loop.set_exception_handler(self._previous_handler)

    async def _stop_serving(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # ------------------------------------------------------------ one connection

    async def _handle(self, ws: ServerConnection) -> None:
        """Let one connection in if it pairs or resumes; then serve it until it closes."""
        ws.opened = True  # type: ignore[attr-defined]
        if self._ended is not None:
            return
        try:
            async with asyncio.timeout(self.timings.pair_timeout_s):
                wire = await self._admit(ws)
        except _Turned as turned:
            self.tally.count(turned.kind)
            await asyncio.sleep(turned.delay_s)
            if turned.reply is not None:
                await _send_plain(ws, turned.reply)
            return
        except TimeoutError:
            self.tally.count("timeout")
            retry_s = max(0.0, self._next_try_s - self._clock()) + self.timings.wrong_delay_s
            await _send_plain(ws, pairing.refusal(pairing.BUSY, retry_s))
            return
        except ConnectionClosed:
            return
        self._release(ws)
        self._take_over(wire)
        await self._resend_latest(wire)
        try:
            await self._read(wire)
        finally:
            if self._wire is wire:
                self._wire = None
                if self._ended is None:
                    self._link_lost()
        if self._ended is not None:
            # Not awaited here: the server waits for this very handler before it counts as closed.
            self._spawn(self._stop_serving())

    async def _admit(self, ws: ServerConnection) -> Wire:
        """Run the first exchange on `ws`; return its wire, or raise _Turned."""
        data = await ws.recv(decode=False)
        try:
            tag, body = pairing.parse(data, _FIRST_FRAMES)
        except PairingError:
            raise _Turned("junk") from None
        if body[0] != PROTOCOL_VERSION:
            raise _Turned("junk", pairing.refusal(pairing.VERSION))
        if tag == pairing.RESUME:
            return await self._resume(ws, body[1:])
        return await self._pair(ws, body[1:])

    async def _pair(self, ws: ServerConnection, joiner_message: bytes) -> Wire:
        if self._session is not None:
            raise _Turned("taken", pairing.refusal(pairing.TAKEN))
        async with self._pairing:
            wait_s = self._next_try_s - self._clock()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            if self._session is not None:
                raise _Turned("taken", pairing.refusal(pairing.TAKEN))
            code = self._code
            try:
                # Pure-Python curve arithmetic (~10 ms): off the loop, so pongs and steps keep flowing.
                host_message, key = await asyncio.to_thread(_host_exchange, code, joiner_message)
            except PairingError:
                raise _Turned("junk") from None
            await ws.send(pairing.frame(pairing.PAKE, host_message))
            session = Session.from_pake_key(key)
            keys = session.first_connection()
            proof = await _read_proof(ws)
            if not hmac.compare_digest(proof, keys.joiner_proof):
                raise _Turned("wrong_code", pairing.refusal(pairing.WRONG_CODE), self._wrong_code())
            await ws.send(pairing.frame(pairing.CONFIRM, keys.host_proof))
            wire = Wire(ws, keys.host_to_joiner, keys.joiner_to_host)
            if not await wire.send("hello", setup=self._setup):
                raise ConnectionClosed(None, None)
            # Spent only now: a connection that drops while pairing leaves the code to try again.
            self._session = session
        return wire

    def _wrong_code(self) -> float:
        """Count a wrong code; return how long the next exchange (and this refusal) waits; renew the code if due."""
        self._wrong_tries += 1
        self._wrong_total += 1
        delay_s = min(self.timings.wrong_delay_s * 2.0 ** (self._wrong_tries - 1), self.timings.wrong_delay_max_s)
        self._next_try_s = self._clock() + delay_s
        if self._wrong_tries >= self.max_wrong_tries:
            self._code, self._wrong_tries = make_code(), 0
            log.warning(
                "%d wrong pairing codes were tried; that code no longer works, use the new one", self.max_wrong_tries
            )
            if self._on_new_code is not None:
                try:
                    self._on_new_code(self._code)
                except Exception:
                    log.exception("a link callback failed")
        return delay_s

    async def _resume(self, ws: ServerConnection, body: bytes) -> Wire:
        session = self._session
        session_id, joiner_nonce = body[: pairing.SESSION_ID_BYTES], body[pairing.SESSION_ID_BYTES :]
        if session is None or not hmac.compare_digest(session_id, session.session_id) or self._ended is not None:
            raise _Turned("resume_refused", pairing.refusal(pairing.UNKNOWN))
        host_nonce = pairing.new_nonce()
        await ws.send(pairing.frame(pairing.CHALLENGE, host_nonce))
        keys = session.resumed_connection(joiner_nonce, host_nonce)
        if not hmac.compare_digest(await _read_proof(ws), keys.joiner_proof):
            raise _Turned("resume_refused", pairing.refusal(pairing.UNKNOWN))
        await ws.send(pairing.frame(pairing.CONFIRM, keys.host_proof))
        return Wire(ws, keys.host_to_joiner, keys.joiner_to_host)

    # ------------------------------------------------------------ the partner's connection

    def _take_over(self, wire: Wire) -> None:
        old, self._wire = self._wire, wire
        if old is not None:
            # Only the partner can resume, and it only does so when its old link is dead, even
            # if we have not noticed yet; report the drop anyway so both ends see lost/restored.
            self._spawn(old.ws.close(4000, ""))
            self._waiting_since_loss = True
            self._notify(self._on_lost)
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if not self._joined.is_set():
            log.info("partner joined from %s", wire.ws.remote_address)
            self._joined.set()
        elif self._waiting_since_loss:
            self._waiting_since_loss = False
            log.info("partner reconnected from %s", wire.ws.remote_address)
            self._notify(self._on_restored)

    def _link_lost(self) -> None:
        window_s = self.timings.reconnect_for_s + self.timings.keepalive_timeout_s
        log.warning("lost the link to the partner; waiting %g s for them to come back", window_s)
        self._waiting_since_loss = True
        self._notify(self._on_lost)
        self._expiry = self._spawn(self._expire(window_s))

    async def _expire(self, window_s: float) -> None:
        await asyncio.sleep(window_s)
        if self._wire is None and self._finish(
            "lost",
            LinkLost(
                f"the partner did not come back within {window_s:g} s",
                hint="check both devices are online, then start a new session",
            ),
        ):
            await self._stop_serving()

    async def _dispatch(self, wire: Wire, message: Message, received_s: float) -> bool:
        kind = message.kind
        if kind == "ping":
            # Midway between receipt and reply, as the joiner's midpoint of t0 and t1 assumes.
            host_s = (received_s + self._clock()) / 2
            await wire.send("pong", id=message.count("id"), t0=message.time("t0"), host_s=host_s)
        elif kind == "speech":
            speaking, at_host_s = message.flag("speaking"), message.time("at_host_s")
            if self._fresh("speech", (speaking, at_host_s)):
                self.speech._put(Speech(speaking, at_host_s))
        elif kind == "made":
            self._partner_made = max(self._partner_made or 0, message.count("steps"))
        elif kind == "ready":
            self._ready = True
        elif kind in ("pause", "resume"):
            at_host_s = message.time("at_host_s")
            self._control_in("pause" if kind == "pause" else "resume", at_host_s, at_host_s)
        else:
            return False
        return True


class _Bucket:
    """Allow `rate_per_s` events a second on average, and as many at once."""

    def __init__(self, rate_per_s: float, clock: Clock) -> None:
        self.rate_per_s = rate_per_s
        self._clock = clock
        self._tokens = rate_per_s
        self._at_s = clock()

    def take(self) -> bool:
        """Use one event's allowance; return False (and use nothing) when there is none left."""
        now_s = self._clock()
        self._tokens = min(self.rate_per_s, self._tokens + (now_s - self._at_s) * self.rate_per_s)
        self._at_s = now_s
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


def _host_exchange(code: str, joiner_message: bytes) -> tuple[bytes, bytes]:
    pake = Pake(code, host=True)
    host_message = pake.start()
    return host_message, pake.finish(joiner_message)


async def _read_proof(ws: ServerConnection) -> bytes:
    try:
        _, proof = pairing.parse(await ws.recv(decode=False), frozenset({pairing.PROOF}))
    except PairingError:
        raise _Turned("junk") from None
    return proof


async def _send_plain(ws: ServerConnection, data: bytes) -> None:
    with contextlib.suppress(ConnectionClosed):
        await ws.send(data)
