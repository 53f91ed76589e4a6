"""What both ends of a paired link share: the sealed wire, inboxes, state to resend after a reconnect, the read loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

from voice_guide.apart.link.channel import Opener, Sealer, SealError
from voice_guide.apart.link.protocol import (
    BadMessage,
    Callback,
    Clock,
    Control,
    ControlKind,
    EndedBy,
    Inbox,
    LinkError,
    LinkTimings,
    Message,
    decode_message,
    encode_message,
)
from voice_guide.apart.link.tally import Tally

log = logging.getLogger(__name__)


class Wire:
    """One paired connection: seal what goes out, open what comes in, in order."""

    def __init__(self, ws: Connection, send_key: bytes, receive_key: bytes) -> None:
        self.ws = ws
        self._sealer = Sealer(send_key)
        self._opener = Opener(receive_key)
        self._sending = asyncio.Lock()  # counters must reach the socket in the order they were taken

    async def send(self, kind: str, **fields: object) -> bool:
        """Seal and send one message; return False if the connection is closed."""
        plain = encode_message(kind, **fields)
        async with self._sending:
            try:
                await self.ws.send(self._sealer.seal(plain))
            except ConnectionClosed:
                return False
        return True

    def open(self, data: bytes | str) -> Message:
        """Return the message in a received frame; raise SealError or BadMessage."""
        if isinstance(data, str):
            raise SealError("a text frame")
        return decode_message(self._opener.open(data).rstrip(b" "))  # the padding is not the message


class Peer:
    """The shared half of Host and Joiner; subclasses pair, dispatch and quit."""

    def __init__(
        self, clock: Clock, timings: LinkTimings, on_link_lost: Callback | None, on_link_restored: Callback | None
    ) -> None:
        self._clock = clock
        self.timings = timings
        self._on_lost = on_link_lost
        self._on_restored = on_link_restored
        self.controls: Inbox[Control] = Inbox()
        self.tally = Tally(logging.getLogger(type(self).__module__), clock, timings.summary_every_s)
        self._wire: Wire | None = None
        self._ended: EndedBy | None = None
        self._error: LinkError | None = None
        self._closed = asyncio.Event()
        # The newest message per slot goes out again after a reconnect; the receiver drops repeats.
        self._latest: dict[str, tuple[str, dict[str, object]]] = {}
        self._last_in: dict[str, tuple[Any, ...]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def connected(self) -> bool:
        """Return whether a paired connection is up right now."""
        return self._wire is not None and self._ended is None

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
        self.tally.flush(force=True)

    async def _summarise(self) -> None:
        """Log the tally once per interval while the link lasts."""
        while True:
            await asyncio.sleep(self.tally.every_s)
            self.tally.flush()

    def _notify(self, callback: Callback | None) -> None:
        if callback is None:
            return
        try:
            callback()
        except Exception:
            log.exception("a link callback failed")  # the caller's bug must not take the link down

    async def _send(self, kind: str, **fields: object) -> bool:
        wire = self._wire
        if wire is None:
            return False
        return await wire.send(kind, **fields)

    async def _send_state(self, slot: str, kind: str, **fields: object) -> bool:
        self._latest[slot] = (kind, fields)
        if self._ended is not None:
            return False
        return await self._send(kind, **fields)

    async def _resend_latest(self, wire: Wire) -> None:
        for kind, fields in list(self._latest.values()):
            await wire.send(kind, **fields)

    def _fresh(self, slot: str, key: tuple[Any, ...]) -> bool:
        if self._last_in.get(slot) == key:
            return False
        self._last_in[slot] = key
        return True

    def _control_in(self, kind: ControlKind, at_host_s: float, at_local_s: float) -> None:
        if self._fresh("control", (kind, at_host_s)):
            self.controls._put(Control(kind, at_host_s, at_local_s))

    async def _send_control(self, kind: ControlKind, at_host_s: float) -> bool:
        return await self._send_state("control", kind, at_host_s=at_host_s)

    async def _dispatch(self, wire: Wire, message: Message, received_s: float) -> bool:
        raise NotImplementedError

    async def _read(self, wire: Wire) -> None:
        """Dispatch messages from `wire` until it closes or the other side quits."""
        while True:
            try:
                data = await wire.ws.recv(decode=False)
            except ConnectionClosed:
                return
            received_s = self._clock()  # first, so queueing below does not bend clock samples
            try:
                message = wire.open(data)
            except SealError:
                self.tally.count("sealed_bad")  # someone on the path, not the partner: drop it
                continue
            except BadMessage:
                self.tally.count("peer_bad")
                continue
            if message.kind == "quit":
                log.info("the other device quit")
                self._finish("peer_quit")
                return
            if not await self._dispatch(wire, message, received_s):
                self.tally.count("peer_bad")
