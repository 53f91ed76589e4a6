"""What the two devices say to each other once paired: the messages, their fields, and the errors.

Every message after pairing is one JSON object `{"v": PROTOCOL_VERSION, "type": ..., ...}`
sealed by `channel.Channel` (so none of it is readable on the wire); the fields of each
type are fixed (`_SCHEMA`), and anything else is dropped, never fatal.

    host -> joiner   hello{setup}  pong{id, t0, host_s}  step{index, at_host_s}
    joiner -> host   made{steps}  ready{}  ping{id, t0}  speech{speaking, at_host_s}
    both ways        pause{at_host_s}  resume{at_host_s}  quit{}

All times are seconds on a monotonic clock. The host's clock is the shared timeline
(`_host_s`); the joiner converts at the edge (`clock.HostClock`).
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Generic, Literal, TypeVar

from voice_guide.errors import VoiceGuideError

PROTOCOL_VERSION: Final = 2
MAX_MESSAGE_BYTES: Final = 64 * 1024
MIN_LEAD_S: Final = 0.3
DEFAULT_PORT: Final = 8765
# Frames above the application limit but below this are read and dropped, so the link
# survives them; only beyond it does websockets close the connection (then we reconnect).
TRANSPORT_MAX_BYTES: Final = 1024 * 1024
_MAX_COUNT: Final = 2**53
_MAX_TIME_S: Final = 1e12

Clock = Callable[[], float]
Callback = Callable[[], None]
EndedBy = Literal["quit", "peer_quit", "lost"]
ControlKind = Literal["pause", "resume"]
_Kind = Literal["count", "time", "flag", "object"]


def _fields(**kinds: _Kind) -> Mapping[str, _Kind]:
    return MappingProxyType(kinds)


_SCHEMA: Final[Mapping[str, Mapping[str, _Kind]]] = MappingProxyType(
    {
        "hello": _fields(setup="object"),
        "made": _fields(steps="count"),
        "ready": _fields(),
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
    """The pairing was turned down: wrong code, a session already paired, or a host that cannot prove the code."""

    exit_code = 2


class LinkBusy(LinkError):
    """The host asked to be tried again after `retry_after_s` (others in line, or a delay after a wrong try)."""

    def __init__(self, message: str, hint: str = "", retry_after_s: float = 0.0) -> None:
        super().__init__(message, hint)
        self.retry_after_s = retry_after_s


class LinkLost(LinkError):
    """The link dropped and did not come back in time."""


class BadMessage(ValueError):
    """A received message that is dropped."""


@dataclass(frozen=True)
class LinkTimings:
    """Hold the link's timing knobs in seconds; tests shrink them."""

    sync_every_s: float = 30.0
    sync_rounds: int = 8
    pong_timeout_s: float = 2.0
    reconnect_for_s: float = 60.0
    join_for_s: float = 30.0  # how long a first join keeps asking a busy host
    backoff_first_s: float = 0.25
    backoff_max_s: float = 4.0
    keepalive_s: float = 2.0
    keepalive_timeout_s: float = 6.0
    open_timeout_s: float = 3.0  # TCP accept to WebSocket open
    pair_timeout_s: float = 10.0  # WebSocket open to paired, waiting in line included
    wrong_delay_s: float = 1.0  # after the first wrong try; doubles up to wrong_delay_max_s
    wrong_delay_max_s: float = 8.0
    summary_every_s: float = 10.0  # at most one line about strangers per this long


DEFAULT_TIMINGS: Final = LinkTimings()


@dataclass(frozen=True)
class StepStart:
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


class Inbox(Generic[T]):
    """Hand received events over in order: `drain` from any thread, or iterate on the link's loop.

    The link's loop appends; a session thread drains without waiting on that loop, so a busy
    link never holds up the session's frame clock.
    """

    def __init__(self) -> None:
        self._items: collections.deque[T] = collections.deque()  # append/popleft are atomic
        self._arrived: asyncio.Event | None = None
        self._error: LinkError | None = None
        self._closed = False

    def _put(self, item: T) -> None:
        if not self._closed:
            self._items.append(item)
            if self._arrived is not None:
                self._arrived.set()

    def _close(self, error: LinkError | None) -> None:
        if not self._closed:
            self._closed, self._error = True, error
            if self._arrived is not None:
                self._arrived.set()

    def drain(self) -> list[T]:
        """Return every event received so far without waiting (safe from any thread)."""
        items: list[T] = []
        while True:
            try:
                items.append(self._items.popleft())
            except IndexError:
                return items

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            if self._arrived is None:
                self._arrived = asyncio.Event()
            self._arrived.clear()
            await self._arrived.wait()
        return self._items.popleft()


@dataclass(frozen=True)
class Message:
    """One received message: its type and its fields, each already checked against the schema.

    The typed getters name the field's kind, so a reader cannot take a time for a count.
    """

    kind: str
    fields: Mapping[str, object]

    def count(self, name: str) -> int:
        value = self.fields[name]
        assert type(value) is int, name  # decode_message checked it
        return value

    def time(self, name: str) -> float:
        value = self.fields[name]
        assert type(value) in (int, float), name
        return float(value)  # type: ignore[arg-type]  # int or float, as just checked

    def flag(self, name: str) -> bool:
        value = self.fields[name]
        assert type(value) is bool, name
        return value

    def object(self, name: str) -> Mapping[str, object]:
        value = self.fields[name]
        assert type(value) is dict, name
        return MappingProxyType(value)


def encode_message(kind: str, **fields: object) -> bytes:
    """Return one protocol message as compact JSON bytes."""
    text = json.dumps({"v": PROTOCOL_VERSION, "type": kind, **fields}, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


def field_ok(kind: _Kind, value: object) -> bool:
    """Return whether `value` is a valid field of `kind`."""
    if kind == "count":
        return type(value) is int and 0 <= value <= _MAX_COUNT
    if kind == "time":
        return type(value) in (int, float) and math.isfinite(value) and abs(value) <= _MAX_TIME_S  # type: ignore[arg-type]
    if kind == "flag":
        return type(value) is bool
    return type(value) is dict


def decode_message(raw: bytes) -> Message:
    """Return an opened message, or raise BadMessage saying why it is dropped."""
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
    if message.get("v") != PROTOCOL_VERSION or type(message.get("v")) is not int:
        raise BadMessage("wrong protocol version")
    kind = message.get("type")
    fields = _SCHEMA.get(kind) if isinstance(kind, str) else None
    if fields is None or not isinstance(kind, str):
        raise BadMessage("unknown type")  # the name is not echoed: it is untrusted and may be huge
    given = set(message) - {"v", "type"}
    if given != set(fields):
        missing, extra = sorted(set(fields) - given), len(given - set(fields))
        raise BadMessage(f"{kind}: missing fields {missing}" if missing else f"{kind}: {extra} unexpected field(s)")
    for name, field_kind in fields.items():
        if not field_ok(field_kind, message[name]):
            raise BadMessage(f"{kind}: field {name!r} has the wrong type or range")
    return Message(kind, MappingProxyType({name: message[name] for name in fields}))
