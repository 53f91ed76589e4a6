"""Link two devices for an apart session: pairing, clock sync and timed messages over a WebSocket.

One device hosts (`Host`), the other joins (`join`). Every message is one JSON text
frame `{"v": PROTOCOL_VERSION, "type": ..., ...}`; the fields of each type are fixed
(`_SCHEMA`), and anything else that arrives is dropped and logged, never fatal.

    host -> joiner   challenge{nonce}  welcome{mac}  refused{reason}  hello{setup}
                     pong{id, t0, host_s}  step{index, at_host_s}
    joiner -> host   auth{nonce, mac}  ping{id, t0}  speech{speaking, at_host_s}
    both ways        pause{at_host_s}  resume{at_host_s}  quit{}

Pairing is challenge-response over the pairing code, so the code never crosses the
wire: the host sends a random nonce, the joiner answers HMAC-SHA256(code, host_nonce +
joiner_nonce) with a nonce of its own, and the host proves itself back with
HMAC-SHA256(code, joiner_nonce + host_nonce). After MAX_WRONG_TRIES wrong answers the
code is burned. Limits: the link is plain ws:// (no encryption), and a short code only
keeps out devices that try to join; someone who records a pairing on the network, or a
fake host the joiner is pointed at, can guess the code offline.

All times are seconds on a monotonic clock. The host's clock is the shared timeline
(`_host_s`); the joiner keeps an estimate of the offset to it (`HostClock`) and converts
at the edge, so callers on the joiner only ever see their own clock (`_local_s`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, Final, Generic, Literal, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidURI, WebSocketException

from voice_guide.errors import UsageError, VoiceGuideError

log = logging.getLogger(__name__)

PROTOCOL_VERSION: Final = 1
MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_WRONG_TRIES: Final = 5
MIN_LEAD_S: Final = 0.3
NONCE_BYTES: Final = 32
# Frames above the application limit but below this are read and dropped, so the link
# survives them; only beyond it does websockets close the connection (then we reconnect).
_TRANSPORT_MAX_BYTES: Final = 1024 * 1024
_MAX_COUNT: Final = 2**53
_MAX_TIME_S: Final = 1e12
_HEX_DIGITS: Final = frozenset("0123456789abcdef")

Clock = Callable[[], float]
Callback = Callable[[], None]
EndedBy = Literal["quit", "peer_quit", "lost"]
ControlKind = Literal["pause", "resume"]
_Kind = Literal["hex", "count", "time", "flag", "object", "reason"]
_REASONS: Final = frozenset({"wrong_code", "burned"})


def _fields(**kinds: _Kind) -> Mapping[str, _Kind]:
    return MappingProxyType(kinds)


_SCHEMA: Final[Mapping[str, Mapping[str, _Kind]]] = MappingProxyType(
    {
        "challenge": _fields(nonce="hex"),
        "auth": _fields(nonce="hex", mac="hex"),
        "welcome": _fields(mac="hex"),
        "refused": _fields(reason="reason"),
        "hello": _fields(setup="object"),
        "ping": _fields(id="count", t0="time"),
        "pong": _fields(id="count", t0="time", host_s="time"),
        "step": _fields(index="count", at_host_s="time"),
        "speech": _fields(speaking="flag", at_host_s="time"),
        "pause": _fields(at_host_s="time"),
        "resume": _fields(at_host_s="time"),
        "quit": _fields(),
    }
)

T = TypeVar("T")


class LinkError(VoiceGuideError):
    """The link to the other device could not be made or kept."""


class LinkRefused(LinkError):
    """The pairing was turned down: wrong or burned code, or a host that cannot prove the code."""

    exit_code = 2


class LinkLost(LinkError):
    """The link dropped and did not come back in time."""


class BadMessage(ValueError):
    """A received message that is dropped; `version` is set when only the protocol version differs."""

    def __init__(self, reason: str, version: int | None = None) -> None:
        super().__init__(reason)
        self.version = version


@dataclass(frozen=True)
class LinkTimings:
    """Hold the link's timing knobs in seconds; tests shrink them."""

    sync_every_s: float = 30.0
    sync_rounds: int = 8
    pong_timeout_s: float = 2.0
    reconnect_for_s: float = 60.0
    backoff_first_s: float = 0.25
    backoff_max_s: float = 4.0
    keepalive_s: float = 2.0
    keepalive_timeout_s: float = 6.0
    open_timeout_s: float = 5.0
    auth_timeout_s: float = 10.0


@dataclass(frozen=True)
class HostClock:
    """Map the joiner's clock to the host's: host_s = local_s + offset_s."""

    offset_s: float
    rtt_s: float
    samples: int

    def to_local_s(self, host_time_s: float) -> float:
        """Return a host-clock time in seconds on the joiner's clock."""
        return host_time_s - self.offset_s

    def to_host_s(self, local_time_s: float) -> float:
        """Return a joiner-clock time in seconds on the host's clock."""
        return local_time_s + self.offset_s


@dataclass(frozen=True)
class Step:
    """Start step `index` at `at_host_s` on the host clock, which is `at_local_s` here."""

    index: int
    at_host_s: float
    at_local_s: float


@dataclass(frozen=True)
class Speech:
    """The joiner's partner started (`speaking`) or stopped talking at `at_host_s`."""

    speaking: bool
    at_host_s: float


@dataclass(frozen=True)
class Control:
    """The other side paused or resumed at `at_host_s` (`at_local_s` on this device's clock)."""

    kind: ControlKind
    at_host_s: float
    at_local_s: float


class _Closed:
    """Mark the end of an inbox."""


class Inbox(Generic[T]):
    """Hand over received events in order; iteration ends with the link, or raises why it failed."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[T | _Closed] = asyncio.Queue()
        self._error: LinkError | None = None
        self._closed = False

    def _put(self, item: T) -> None:
        if not self._closed:
            self._queue.put_nowait(item)

    def _close(self, error: LinkError | None) -> None:
        if not self._closed:
            self._closed, self._error = True, error
            self._queue.put_nowait(_Closed())

    def drain(self) -> list[T]:
        """Return every event received so far without waiting (for callers on a frame clock)."""
        items: list[T] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, _Closed):
                self._queue.put_nowait(item)  # keep the end visible to later readers
                break
            items.append(item)
        return items

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        item = await self._queue.get()
        if isinstance(item, _Closed):
            self._queue.put_nowait(item)
            if self._error is not None:
                raise self._error
            raise StopAsyncIteration
        return item


def make_code() -> str:
    """Return a fresh six-digit pairing code, easy to read out over the phone."""
    return f"{secrets.randbelow(10**6):06d}"


def normalize_code(code: str) -> str:
    """Return the code as compared: lower case, without spaces and dashes."""
    normal = "".join(code.split()).replace("-", "").lower()
    if not normal:
        raise UsageError("the pairing code is empty", hint="type the code shown on the host's device")
    return normal


def estimate_clock(samples: Sequence[tuple[float, float, float]]) -> HostClock:
    """Return the offset from the fastest round trip among (t0_s, host_s, t1_s) samples."""
    if not samples:
        raise ValueError("no clock samples")
    # The fastest round trip leaves the least room for one-way delays to differ.
    t0_s, host_s, t1_s = min(samples, key=lambda sample: sample[2] - sample[0])
    return HostClock(offset_s=host_s - (t0_s + t1_s) / 2, rtt_s=t1_s - t0_s, samples=len(samples))


def encode_message(kind: str, **fields: Any) -> str:
    """Return one protocol message as compact JSON text."""
    return json.dumps({"v": PROTOCOL_VERSION, "type": kind, **fields}, separators=(",", ":"), allow_nan=False)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _field_ok(kind: _Kind, value: Any) -> bool:
    if kind == "hex":
        return isinstance(value, str) and len(value) == 2 * NONCE_BYTES and set(value) <= _HEX_DIGITS
    if kind == "count":
        return type(value) is int and 0 <= value <= _MAX_COUNT
    if kind == "time":
        return type(value) in (int, float) and math.isfinite(value) and abs(value) <= _MAX_TIME_S
    if kind == "flag":
        return type(value) is bool
    if kind == "object":
        return type(value) is dict
    return value in _REASONS


def decode_message(data: bytes | str) -> dict[str, Any]:
    """Return a received message as a dict, or raise BadMessage saying why it is dropped."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > MAX_MESSAGE_BYTES:
        raise BadMessage(f"too large ({len(raw)} bytes, limit {MAX_MESSAGE_BYTES})")
    try:
        message = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise BadMessage("not UTF-8 text") from None
    except (ValueError, RecursionError):
        raise BadMessage("not JSON") from None
    if not isinstance(message, dict):
        raise BadMessage("not a JSON object")
    version = message.get("v")
    if type(version) is not int:
        raise BadMessage("no protocol version")
    if version != PROTOCOL_VERSION:
        raise BadMessage(f"protocol version {version}, expected {PROTOCOL_VERSION}", version=version)
    kind = message.get("type")
    fields = _SCHEMA.get(kind) if isinstance(kind, str) else None
    if fields is None:
        raise BadMessage("unknown type")  # the name is not echoed: it is untrusted and may be huge
    given = set(message) - {"v", "type"}
    if given != set(fields):
        missing, extra = sorted(set(fields) - given), len(given - set(fields))
        raise BadMessage(f"{kind}: missing fields {missing}" if missing else f"{kind}: {extra} unexpected field(s)")
    for name, field_kind in fields.items():
        if not _field_ok(field_kind, message[name]):
            raise BadMessage(f"{kind}: field {name!r} has the wrong type or range")
    return message


def _proof(code: bytes, first: bytes, second: bytes) -> str:
    return hmac.new(code, first + second, hashlib.sha256).hexdigest()


def _refusal(reason: str) -> LinkRefused:
    if reason == "burned":
        return LinkRefused(
            f"the pairing code is used up after {MAX_WRONG_TRIES} wrong tries",
            hint="start a new session on the host's device to get a fresh code",
        )
    return LinkRefused("the host refused the pairing code", hint="check the code shown on the host's device")


async def _expect(ws: Connection, kinds: Collection[str]) -> dict[str, Any]:
    """Return the next message of one of `kinds`, dropping (and logging) anything else."""
    while True:
        data = await ws.recv(decode=False)
        try:
            message = decode_message(data)
        except BadMessage as exc:
            if exc.version is not None:
                raise LinkError(
                    f"the other device speaks link protocol v{exc.version}, this one v{PROTOCOL_VERSION}",
                    hint="install the same voice-guide version on both devices",
                ) from None
            log.warning("dropped a message from %s during pairing: %s", ws.remote_address, exc)
            continue
        if message["type"] in kinds:
            return message
        log.warning("dropped an unexpected %s message from %s during pairing", message["type"], ws.remote_address)


class _Peer:
    """Hold what both ends share: inboxes, state to resend after a reconnect, the read loop, quitting."""

    def __init__(
        self,
        code: str,
        clock: Clock,
        timings: LinkTimings,
        on_link_lost: Callback | None,
        on_link_restored: Callback | None,
    ) -> None:
        self._code = normalize_code(code).encode("utf-8")
        self._clock = clock
        self.timings = timings
        self._on_lost = on_link_lost
        self._on_restored = on_link_restored
        self.controls: Inbox[Control] = Inbox()
        self._ws: Connection | None = None
        self._ended: EndedBy | None = None
        self._error: LinkError | None = None
        self._closed = asyncio.Event()
        # The newest message per slot goes out again after a reconnect; the receiver drops repeats.
        self._latest: dict[str, tuple[str, dict[str, Any]]] = {}
        self._last_in: dict[str, tuple[Any, ...]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def connected(self) -> bool:
        """Return whether a paired connection is up right now."""
        return self._ws is not None and self._ended is None

    @property
    def ended_by(self) -> EndedBy | None:
        """Return why the link ended, or None while it lasts."""
        return self._ended

    async def wait_closed(self) -> EndedBy:
        """Wait until the link ends; return why, or raise the LinkError that ended it."""
        await self._closed.wait()
        if self._error is not None:
            raise self._error
        assert self._ended is not None
        return self._ended

    def _inboxes(self) -> list[Inbox[Any]]:
        return [self.controls]

    def _finish(self, ended_by: EndedBy, error: LinkError | None = None) -> bool:
        if self._ended is not None:
            return False
        self._ended, self._error = ended_by, error
        for inbox in self._inboxes():
            inbox._close(error)
        self._closed.set()
        return True

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _cancel_tasks(self) -> None:
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _notify(self, callback: Callback | None) -> None:
        if callback is None:
            return
        try:
            callback()
        except Exception:
            log.exception("a link callback failed")  # the caller's bug must not take the link down

    async def _send(self, ws: Connection, kind: str, **fields: Any) -> bool:
        try:
            await ws.send(encode_message(kind, **fields))
        except ConnectionClosed:
            return False
        return True

    async def _send_state(self, slot: str, kind: str, **fields: Any) -> bool:
        self._latest[slot] = (kind, fields)
        ws = self._ws
        if ws is None or self._ended is not None:
            return False
        return await self._send(ws, kind, **fields)

    async def _resend_latest(self, ws: Connection) -> None:
        for kind, fields in list(self._latest.values()):
            await self._send(ws, kind, **fields)

    def _fresh(self, slot: str, key: tuple[Any, ...]) -> bool:
        if self._last_in.get(slot) == key:
            return False
        self._last_in[slot] = key
        return True

    def _control_in(self, kind: ControlKind, at_host_s: float, at_local_s: float) -> None:
        if self._fresh("control", (kind, at_host_s)):
            self.controls._put(Control(kind, at_host_s, at_local_s))

    async def _dispatch(self, ws: Connection, message: dict[str, Any], received_s: float) -> bool:
        raise NotImplementedError

    async def _read(self, ws: Connection) -> None:
        """Dispatch messages from `ws` until it closes or the other side quits."""
        while True:
            try:
                data = await ws.recv(decode=False)
            except ConnectionClosed:
                return
            received_s = self._clock()  # first, so queueing below does not bend clock samples
            try:
                message = decode_message(data)
            except BadMessage as exc:
                log.warning("dropped a message from %s: %s", ws.remote_address, exc)
                continue
            if message["type"] == "quit":
                log.info("the other device quit")
                self._finish("peer_quit")
                return
            if not await self._dispatch(ws, message, received_s):
                log.warning("dropped an unexpected %s message from %s", message["type"], ws.remote_address)

    async def _send_control(self, kind: ControlKind, at_host_s: float) -> bool:
        return await self._send_state("control", kind, at_host_s=at_host_s)

    async def quit(self) -> None:
        """End the link: tell the other side (if it is there), close, and stop every background task."""
        raise NotImplementedError


class Host(_Peer):
    """Serve one joiner on a pairing code; the host's clock is the shared timeline.

    Loopback (`127.0.0.1`) unless the caller passes another address; `port=0` picks a free
    port (see `url`). After a drop the host keeps listening for the same code for
    `timings.reconnect_for_s + timings.keepalive_timeout_s` (it may notice the drop later
    than the joiner), then ends with LinkLost.
    """

    def __init__(
        self,
        code: str,
        bind: str = "127.0.0.1",
        port: int = 0,
        *,
        setup: Mapping[str, Any] | None = None,
        clock: Clock = time.monotonic,
        timings: LinkTimings = LinkTimings(),
        on_link_lost: Callback | None = None,
        on_link_restored: Callback | None = None,
    ) -> None:
        super().__init__(code, clock, timings, on_link_lost, on_link_restored)
        if not bind.strip():
            # asyncio reads an empty host as "every interface"; that must be asked for by name.
            raise UsageError("no address to listen on", hint="leave it out for this device only, or pass 0.0.0.0")
        self.bind = bind
        self._port = port
        try:
            # A round trip copies the caller's dict, so later changes to it cannot leak in.
            self._setup: dict[str, Any] = json.loads(encode_message("hello", setup=dict(setup or {})))["setup"]
        except (TypeError, ValueError) as exc:
            raise LinkError("the script and settings cannot be sent as JSON", hint=str(exc)) from exc
        size = len(encode_message("hello", setup=self._setup).encode("utf-8"))
        if size > MAX_MESSAGE_BYTES:
            raise LinkError(
                f"the script and settings are too large to send ({size // 1024} KiB, "
                f"limit {MAX_MESSAGE_BYTES // 1024} KiB)",
                hint="shorten the script",
            )
        self.speech: Inbox[Speech] = Inbox()
        self._server: Server | None = None
        self._wrong_tries = 0
        self._joined = asyncio.Event()
        self._burned = asyncio.Event()
        self._waiting_since_loss = False
        self._expiry: asyncio.Task[Any] | None = None

    def _inboxes(self) -> list[Inbox[Any]]:
        return [self.controls, self.speech]

    async def start(self) -> Host:
        """Start listening; return self."""
        if self._server is None:
            self._server = await serve(
                self._handle,
                self.bind,
                self._port,
                max_size=_TRANSPORT_MAX_BYTES,
                compression=None,
                ping_interval=self.timings.keepalive_s,
                ping_timeout=self.timings.keepalive_timeout_s,
                close_timeout=1.0,
            )
        return self

    async def __aenter__(self) -> Host:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.quit()

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
        """Return how many joins failed on a wrong code so far."""
        return self._wrong_tries

    @property
    def burned(self) -> bool:
        """Return whether the code is used up by wrong tries."""
        return self._burned.is_set()

    def now_s(self) -> float:
        """Return the host clock in seconds (the shared timeline)."""
        return self._clock()

    async def wait_joined(self) -> None:
        """Wait until a joiner has paired; raise LinkRefused if the code burns first."""
        waits = [asyncio.ensure_future(event.wait()) for event in (self._joined, self._burned, self._closed)]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if self._joined.is_set():
            return
        if self.burned:
            raise _refusal("burned")
        if self._error is not None:
            raise self._error
        raise LinkError("the link ended before the partner joined", hint="start the session again")

    async def send_step(self, index: int, at_host_s: float) -> bool:
        """Tell the joiner to start step `index` at `at_host_s` (host clock); return whether it went out now.

        A step sent while the link is down goes out after the joiner reconnects.
        """
        if not (_field_ok("count", index) and _field_ok("time", at_host_s)):
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
        ws = self._ws
        if self._finish("quit") and ws is not None:
            await self._send(ws, "quit")
        await self._stop_serving()
        await self._cancel_tasks()

    async def _stop_serving(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        """Pair one connection; if it is the joiner, serve it until it closes."""
        if self._ended is not None:
            return
        if not await self._pair(ws):
            return
        try:
            await self._read(ws)
        finally:
            if self._ws is ws:
                self._ws = None
                if self._ended is None:
                    self._link_lost()
        if self._ended is not None:
            # Not awaited here: the server waits for this very handler before it counts as closed.
            self._spawn(self._stop_serving())

    async def _pair(self, ws: ServerConnection) -> bool:
        if self.burned:
            await self._send(ws, "refused", reason="burned")
            return False
        host_nonce = secrets.token_bytes(NONCE_BYTES)
        if not await self._send(ws, "challenge", nonce=host_nonce.hex()):
            return False
        try:
            auth = await asyncio.wait_for(_expect(ws, ("auth",)), self.timings.auth_timeout_s)
        except (TimeoutError, ConnectionClosed, LinkError) as exc:
            log.info("a connection from %s did not pair: %s", ws.remote_address, exc or "timed out")
            return False
        if self.burned:
            await self._send(ws, "refused", reason="burned")
            return False
        joiner_nonce = bytes.fromhex(auth["nonce"])
        if not hmac.compare_digest(_proof(self._code, host_nonce, joiner_nonce), auth["mac"]):
            self._wrong_tries += 1
            if self._wrong_tries >= MAX_WRONG_TRIES:
                self._burned.set()
                log.warning("refused %s: wrong pairing code; the code is now burned", ws.remote_address)
            else:
                log.warning(
                    "refused %s: wrong pairing code (%d of %d tries)",
                    ws.remote_address,
                    self._wrong_tries,
                    MAX_WRONG_TRIES,
                )
            await self._send(ws, "refused", reason="burned" if self.burned else "wrong_code")
            return False
        if self._ended is not None:
            return False
        if not (
            await self._send(ws, "welcome", mac=_proof(self._code, joiner_nonce, host_nonce))
            and await self._send(ws, "hello", setup=self._setup)
        ):
            return False
        self._take_over(ws)
        await self._resend_latest(ws)
        return True

    def _take_over(self, ws: ServerConnection) -> None:
        old, self._ws = self._ws, ws
        if old is not None:
            # The joiner only pairs again when its old link is dead, even if we have not noticed yet;
            # report the drop anyway so both ends see the same lost/restored sequence.
            self._spawn(old.close(4000, "replaced by a new pairing"))
            self._waiting_since_loss = True
            self._notify(self._on_lost)
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if not self._joined.is_set():
            log.info("partner joined from %s", ws.remote_address)
            self._joined.set()
        elif self._waiting_since_loss:
            self._waiting_since_loss = False
            log.info("partner reconnected from %s", ws.remote_address)
            self._notify(self._on_restored)

    def _link_lost(self) -> None:
        window_s = self.timings.reconnect_for_s + self.timings.keepalive_timeout_s
        log.warning("lost the link to the partner; waiting %g s for them to come back", window_s)
        self._waiting_since_loss = True
        self._notify(self._on_lost)
        self._expiry = self._spawn(self._expire(window_s))

    async def _expire(self, window_s: float) -> None:
        await asyncio.sleep(window_s)
        if self._ws is None and self._finish(
            "lost",
            LinkLost(
                f"the partner did not come back within {window_s:g} s",
                hint="check both devices are online, then start a new session",
            ),
        ):
            await self._stop_serving()

    async def _dispatch(self, ws: Connection, message: dict[str, Any], received_s: float) -> bool:
        kind = message["type"]
        if kind == "ping":
            # Midway between receipt and reply, as the joiner's midpoint of t0 and t1 assumes.
            host_s = (received_s + self._clock()) / 2
            await self._send(ws, "pong", id=message["id"], t0=message["t0"], host_s=host_s)
        elif kind == "speech":
            if self._fresh("speech", (message["speaking"], message["at_host_s"])):
                self.speech._put(Speech(message["speaking"], message["at_host_s"]))
        elif kind in ("pause", "resume"):
            self._control_in(kind, message["at_host_s"], message["at_host_s"])
        else:
            return False
        return True


class Joiner(_Peer):
    """The joining end: follows the host's timeline through a clock-offset estimate; see `join`."""

    def __init__(
        self,
        url: str,
        code: str,
        *,
        clock: Clock = time.monotonic,
        timings: LinkTimings = LinkTimings(),
        on_link_lost: Callback | None = None,
        on_link_restored: Callback | None = None,
    ) -> None:
        super().__init__(code, clock, timings, on_link_lost, on_link_restored)
        if not url.startswith(("ws://", "wss://")):
            raise UsageError(
                f"not a link address: {url!r}", hint="use the address the host shows, like ws://192.168.1.20:8765/"
            )
        self.url = url
        self.steps: Inbox[Step] = Inbox()
        self.setup: dict[str, Any] = {}
        self._paired = False
        self._host_clock: HostClock | None = None
        self._early: list[dict[str, Any]] = []
        self._pongs: dict[int, tuple[float, asyncio.Future[tuple[float, float, float]]]] = {}
        self._ping_ids = itertools.count()
        self._reader: asyncio.Task[None] | None = None

    def _inboxes(self) -> list[Inbox[Any]]:
        return [self.controls, self.steps]

    @property
    def host_clock(self) -> HostClock:
        """Return the current estimate of the host's clock."""
        if self._host_clock is None:
            raise RuntimeError("the clock is not synchronized yet")
        return self._host_clock

    @property
    def offset_s(self) -> float:
        """Return host clock minus this device's clock, in seconds."""
        return self.host_clock.offset_s

    def to_local_s(self, host_time_s: float) -> float:
        """Return a host-clock time in seconds on this device's clock."""
        return self.host_clock.to_local_s(host_time_s)

    def to_host_s(self, local_time_s: float) -> float:
        """Return a time in seconds on this device's clock as host-clock time."""
        return self.host_clock.to_host_s(local_time_s)

    async def start(self) -> Joiner:
        """Pair, receive the hello and synchronize the clock; return self."""
        ws = await self._open()
        self._attach(ws)
        if not await self._sync_clock():
            await self.quit()
            raise LinkError("the host did not answer clock pings", hint="check the network between the devices")
        self._spawn(self._supervise())
        return self

    async def __aenter__(self) -> Joiner:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.quit()

    async def send_speech(self, speaking: bool, at_local_s: float) -> bool:
        """Tell the host talking started or stopped at `at_local_s` (this clock); return whether it went out now.

        A change sent while the link is down goes out after the reconnect.
        """
        return await self._send_state("speech", "speech", speaking=bool(speaking), at_host_s=self.to_host_s(at_local_s))

    async def send_pause(self, at_local_s: float) -> bool:
        """Tell the host the session pauses at `at_local_s` (this clock); return whether it went out now."""
        return await self._send_control("pause", self.to_host_s(at_local_s))

    async def send_resume(self, at_local_s: float) -> bool:
        """Tell the host the session resumes at `at_local_s` (this clock); return whether it went out now."""
        return await self._send_control("resume", self.to_host_s(at_local_s))

    async def quit(self) -> None:
        """End the link: tell the host, close, and stop reconnecting and syncing."""
        ws = self._ws
        if self._finish("quit") and ws is not None:
            await self._send(ws, "quit")
        if ws is not None:
            await ws.close()
        await self._cancel_tasks()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _open(self) -> ClientConnection:
        """Connect and pair once; raise LinkRefused, LinkError or UsageError."""
        try:
            ws = await connect(
                self.url,
                open_timeout=self.timings.open_timeout_s,
                max_size=_TRANSPORT_MAX_BYTES,
                compression=None,
                proxy=None,
                ping_interval=self.timings.keepalive_s,
                ping_timeout=self.timings.keepalive_timeout_s,
                close_timeout=1.0,
            )
        except InvalidURI as exc:
            raise UsageError(f"not a link address: {self.url!r}", hint="use the address the host shows") from exc
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise LinkError(
                f"could not reach the host at {self.url}", hint="check the address, and that the host is still waiting"
            ) from exc
        try:
            await asyncio.wait_for(self._pair(ws), self.timings.auth_timeout_s)
        except TimeoutError:
            await ws.close()
            raise LinkError(
                "the host did not finish pairing in time", hint="check the network between the devices"
            ) from None
        except ConnectionClosed:
            raise LinkError("the host closed the connection while pairing", hint="try again") from None
        except BaseException:
            await ws.close()
            raise
        return ws

    async def _pair(self, ws: ClientConnection) -> None:
        first = await _expect(ws, ("challenge", "refused"))
        if first["type"] == "refused":
            raise _refusal(first["reason"])
        host_nonce = bytes.fromhex(first["nonce"])
        my_nonce = secrets.token_bytes(NONCE_BYTES)
        await ws.send(encode_message("auth", nonce=my_nonce.hex(), mac=_proof(self._code, host_nonce, my_nonce)))
        reply = await _expect(ws, ("welcome", "refused"))
        if reply["type"] == "refused":
            raise _refusal(reply["reason"])
        if not hmac.compare_digest(_proof(self._code, my_nonce, host_nonce), reply["mac"]):
            raise LinkRefused(
                "the host could not prove it knows the pairing code",
                hint="check the address: this may not be your partner's device",
            )
        hello = await _expect(ws, ("hello",))
        if not self._paired:
            self.setup, self._paired = hello["setup"], True

    def _attach(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._reader = asyncio.create_task(self._read(ws))

    async def _supervise(self) -> None:
        """Watch the link: keep the clock fresh, and on a drop reconnect or give up."""
        sync_now = False
        while True:
            syncer = self._spawn(self._keep_synced(sync_now))
            assert self._reader is not None
            await asyncio.wait([self._reader])
            syncer.cancel()
            if not self._reader.cancelled() and self._reader.exception() is not None:
                log.error("the link reader failed", exc_info=self._reader.exception())
            old, self._ws = self._ws, None
            if old is not None:
                await old.close()
            if self._ended is not None:
                return
            log.warning("lost the link to the host; reconnecting for up to %g s", self.timings.reconnect_for_s)
            self._notify(self._on_lost)
            ws = await self._reconnect()
            if ws is None:
                return
            self._attach(ws)
            await self._resend_latest(ws)
            log.info("link to the host restored")
            self._notify(self._on_restored)
            sync_now = True

    async def _reconnect(self) -> ClientConnection | None:
        """Pair again with backoff until `reconnect_for_s` runs out; None after giving up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timings.reconnect_for_s
        delay_s = self.timings.backoff_first_s
        while self._ended is None:
            remaining_s = deadline - loop.time()
            if remaining_s <= 0:
                break
            try:
                return await asyncio.wait_for(self._open(), remaining_s)
            except LinkRefused as exc:
                self._finish("lost", exc)
                return None
            except (LinkError, TimeoutError) as exc:
                log.info("reconnect failed: %s", exc)
            await asyncio.sleep(max(0.0, min(delay_s, deadline - loop.time())))
            delay_s = min(2 * delay_s, self.timings.backoff_max_s)
        self._finish(
            "lost",
            LinkLost(
                f"lost the link to the host and could not reconnect within {self.timings.reconnect_for_s:g} s",
                hint="check both devices are on the network, then start a new session",
            ),
        )
        return None

    async def _keep_synced(self, now: bool) -> None:
        while True:
            if not now:
                await asyncio.sleep(self.timings.sync_every_s)
            now = False
            if not await self._sync_clock():
                log.warning("clock sync failed; keeping the previous estimate")

    async def _sync_clock(self) -> bool:
        """Measure `sync_rounds` ping round trips and keep the fastest one's offset; return success."""
        ws = self._ws
        loop = asyncio.get_running_loop()
        samples: list[tuple[float, float, float]] = []
        for _ in range(2 * self.timings.sync_rounds):  # room for a few late pongs
            if ws is None or ws is not self._ws or len(samples) >= self.timings.sync_rounds:
                break
            ping_id = next(self._ping_ids)
            future: asyncio.Future[tuple[float, float, float]] = loop.create_future()
            t0_s = self._clock()
            self._pongs[ping_id] = (t0_s, future)
            try:
                if not await self._send(ws, "ping", id=ping_id, t0=t0_s):
                    break
                samples.append(await asyncio.wait_for(future, self.timings.pong_timeout_s))
            except TimeoutError:
                continue
            finally:
                self._pongs.pop(ping_id, None)
        if len(samples) < self.timings.sync_rounds:
            return False
        self._host_clock = estimate_clock(samples)
        log.debug("clock offset %.6f s (round trip %.1f ms)", self._host_clock.offset_s, self._host_clock.rtt_s * 1000)
        early, self._early = self._early, []
        for message in early:
            self._deliver(message)
        return True

    async def _dispatch(self, ws: Connection, message: dict[str, Any], received_s: float) -> bool:
        kind = message["type"]
        if kind == "pong":
            pending = self._pongs.get(message["id"])
            if pending is None or pending[0] != message["t0"] or pending[1].done():
                return False
            pending[1].set_result((message["t0"], message["host_s"], received_s))
        elif kind in ("step", "pause", "resume"):
            if self._host_clock is None:
                self._early.append(message)  # converted once the first sync is done
            else:
                self._deliver(message)
        else:
            return False
        return True

    def _deliver(self, message: dict[str, Any]) -> None:
        at_host_s: float = message["at_host_s"]
        at_local_s = self.host_clock.to_local_s(at_host_s)
        if message["type"] == "step":
            if self._fresh("step", (message["index"], at_host_s)):
                self.steps._put(Step(message["index"], at_host_s, at_local_s))
        else:
            self._control_in(message["type"], at_host_s, at_local_s)


async def join(
    url: str,
    code: str,
    *,
    clock: Clock = time.monotonic,
    timings: LinkTimings = LinkTimings(),
    on_link_lost: Callback | None = None,
    on_link_restored: Callback | None = None,
) -> Joiner:
    """Connect to the host at `url` with the pairing code; return the paired, clock-synced Joiner.

    Raises LinkRefused (wrong or burned code), LinkError (unreachable) or UsageError (bad url).
    """
    return await Joiner(
        url, code, clock=clock, timings=timings, on_link_lost=on_link_lost, on_link_restored=on_link_restored
    ).start()
