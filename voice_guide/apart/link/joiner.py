"""The joining end: pairs once on the code, then follows the host's timeline and comes back after drops by resuming."""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import time
import urllib.parse
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidURI, WebSocketException

from voice_guide.apart.link import pairing
from voice_guide.apart.link.channel import SealError
from voice_guide.apart.link.clock import HostClock, estimate_clock
from voice_guide.apart.link.pairing import PairingError, Pake, Session
from voice_guide.apart.link.peer import Peer, Wire
from voice_guide.apart.link.protocol import (
    DEFAULT_PORT,
    DEFAULT_TIMINGS,
    TRANSPORT_MAX_BYTES,
    BadMessage,
    Callback,
    Clock,
    Inbox,
    LinkBusy,
    LinkError,
    LinkLost,
    LinkRefused,
    LinkTimings,
    Message,
    StepStart,
)
from voice_guide.errors import UsageError

log = logging.getLogger(__name__)

_CONFIRMS: Final = frozenset({pairing.CONFIRM, pairing.REFUSED})


def link_url(address: str) -> str:
    """Return the ws:// URL for a HOST[:PORT] or ws://HOST[:PORT]/ address; raise UsageError if it is not one."""
    text = address.strip()
    hint = "use the address the host shows, like 192.168.1.20:8765"
    if "://" in text and not text.startswith(("ws://", "wss://")):
        raise UsageError(f"not a link address: {address!r}", hint=hint)
    url = text if text.startswith(("ws://", "wss://")) else f"ws://{text}"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"not a link address: {address!r} ({exc})", hint=hint) from None
    if (
        not parts.hostname
        or any(c.isspace() for c in parts.hostname)
        or parts.username
        or port == 0
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise UsageError(f"not a link address: {address!r}", hint=hint)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{DEFAULT_PORT if port is None else port}/"


def _refusal(body: bytes) -> LinkError:
    reason, retry_s = body[0], int.from_bytes(body[1:3], "big") / 10
    if reason == pairing.WRONG_CODE:
        return LinkRefused(
            "the host refused the pairing code", hint="check the code shown on the host's device; it may show a new one"
        )
    if reason == pairing.TAKEN:
        return LinkRefused(
            "the host is already paired with another device",
            hint="a code works once; ask your partner to start a new session",
        )
    if reason == pairing.UNKNOWN:
        return LinkRefused("the host no longer knows this session", hint="start a new session on the host's device")
    if reason == pairing.VERSION:
        return LinkError(
            "the host speaks another link protocol version", hint="install the same voice-guide version on both devices"
        )
    return LinkBusy(
        f"the host is busy; try again in {retry_s:g} s", hint="wait a moment, then join again", retry_after_s=retry_s
    )


class Joiner(Peer):
    """The joining end: follows the host's timeline through a clock-offset estimate; see `join`."""

    def __init__(
        self,
        url: str,
        code: str,
        *,
        clock: Clock = time.monotonic,
        timings: LinkTimings = DEFAULT_TIMINGS,
        on_link_lost: Callback | None = None,
        on_link_restored: Callback | None = None,
    ) -> None:
        super().__init__(clock, timings, on_link_lost, on_link_restored)
        self.url = link_url(url)
        self._code = pairing.normalize_code(code)
        self.steps: Inbox[StepStart] = Inbox()
        self.setup: Mapping[str, object] = {}
        self._session: Session | None = None
        self._host_clock: HostClock | None = None
        self._early: list[Message] = []
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
        """Pair (waiting while the host says it is busy), receive the hello and synchronize the clock; return self."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timings.join_for_s
        while True:
            try:
                wire = await self._open()
                break
            except LinkBusy as busy:
                wait_s = max(self.timings.backoff_first_s, busy.retry_after_s)
                if loop.time() + wait_s > deadline:
                    raise
                log.info("%s", busy.message)
                await asyncio.sleep(wait_s)
        self._attach(wire)
        self._spawn(self._summarise())
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

    async def send_made(self, steps: int) -> bool:
        """Tell the host this device's speech is made for its first `steps` steps (it announces no step beyond)."""
        return await self._send_state("made", "made", steps=int(steps))

    async def send_ready(self) -> bool:
        """Tell the host this device is ready to play (speech prepared, output running)."""
        return await self._send_state("ready", "ready")

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
        wire = self._wire
        if self._finish("quit") and wire is not None:
            await wire.send("quit")
        if wire is not None:
            await wire.ws.close()
        await self._cancel_tasks()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    # ------------------------------------------------------------ connecting

    async def _open(self) -> Wire:
        """Connect, then pair (first time) or resume (after a drop); raise LinkRefused, LinkBusy or LinkError."""
        try:
            ws = await connect(
                self.url,
                open_timeout=self.timings.open_timeout_s,
                max_size=TRANSPORT_MAX_BYTES,
                compression=None,
                proxy=None,
                ping_interval=self.timings.keepalive_s,
                ping_timeout=self.timings.keepalive_timeout_s,
                close_timeout=1.0,
                logger=logging.getLogger(f"{__name__}.transport"),
            )
        except InvalidURI as exc:
            raise UsageError(f"not a link address: {self.url!r}", hint="use the address the host shows") from exc
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise LinkError(
                f"could not reach the host at {self.url}", hint="check the address, and that the host is still waiting"
            ) from exc
        try:
            async with asyncio.timeout(self.timings.pair_timeout_s + 2 * self.timings.wrong_delay_max_s):
                if self._session is None:
                    return await self._pair(ws)
                return await self._resume(ws, self._session)
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

    async def _answer(self, ws: ClientConnection, expected: frozenset[int]) -> tuple[int, bytes]:
        data = await ws.recv(decode=False)
        if isinstance(data, str) or data[:1] == b"{":
            # The v1 link spoke JSON text frames first; say so rather than "not a pairing frame".
            raise LinkError(
                "the host speaks an older link protocol", hint="install the same voice-guide version on both devices"
            )
        try:
            tag, body = pairing.parse(data, expected)
        except PairingError:
            raise LinkError(
                "the host sent something that is not a pairing answer",
                hint="check the address: this may not be your partner's device",
            ) from None
        if tag == pairing.REFUSED:
            raise _refusal(body)
        return tag, body

    async def _pair(self, ws: ClientConnection) -> Wire:
        pake = Pake(self._code, host=False)
        mine = await asyncio.to_thread(pake.start)
        await ws.send(pairing.frame(pairing.PAIR, pairing.version_byte(), mine))
        _, theirs = await self._answer(ws, frozenset({pairing.PAKE, pairing.REFUSED}))
        try:
            key = await asyncio.to_thread(pake.finish, theirs)
        except PairingError:
            raise LinkError(
                "the host sent something that is not a pairing answer",
                hint="check the address: this may not be your partner's device",
            ) from None
        session = Session.from_pake_key(key)
        keys = session.first_connection()
        await ws.send(pairing.frame(pairing.PROOF, keys.joiner_proof))
        _, proof = await self._answer(ws, _CONFIRMS)
        if not hmac.compare_digest(proof, keys.host_proof):
            raise LinkRefused(
                "the host could not prove it knows the pairing code",
                hint="check the address: this may not be your partner's device",
            )
        wire = Wire(ws, keys.joiner_to_host, keys.host_to_joiner)
        try:
            hello = wire.open(await ws.recv(decode=False))
        except (SealError, BadMessage):
            hello = None
        if hello is None or hello.kind != "hello":
            raise LinkError("the host did not send the session", hint="install the same voice-guide version on both")
        self.setup, self._session = hello.object("setup"), session
        return wire

    async def _resume(self, ws: ClientConnection, session: Session) -> Wire:
        mine = pairing.new_nonce()
        await ws.send(pairing.frame(pairing.RESUME, pairing.version_byte(), session.session_id, mine))
        _, theirs = await self._answer(ws, frozenset({pairing.CHALLENGE, pairing.REFUSED}))
        keys = session.resumed_connection(mine, theirs)
        await ws.send(pairing.frame(pairing.PROOF, keys.joiner_proof))
        _, proof = await self._answer(ws, _CONFIRMS)
        if not hmac.compare_digest(proof, keys.host_proof):
            raise LinkRefused(
                "the host could not prove it is the one this device paired with",
                hint="check the address: this may not be your partner's device",
            )
        return Wire(ws, keys.joiner_to_host, keys.host_to_joiner)

    def _attach(self, wire: Wire) -> None:
        self._wire = wire
        self._reader = asyncio.create_task(self._read(wire))

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
            old, self._wire = self._wire, None
            if old is not None:
                await old.ws.close()
            if self._ended is not None:
                return
            log.warning("lost the link to the host; reconnecting for up to %g s", self.timings.reconnect_for_s)
            self._notify(self._on_lost)
            wire = await self._reconnect()
            if wire is None:
                return
            self._attach(wire)
            await self._resend_latest(wire)
            log.info("link to the host restored")
            self._notify(self._on_restored)
            sync_now = True

    async def _reconnect(self) -> Wire | None:
        """Resume with backoff until `reconnect_for_s` runs out; None after giving up."""
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

    # ------------------------------------------------------------ the host's clock

    async def _keep_synced(self, now: bool) -> None:
        while True:
            if not now:
                await asyncio.sleep(self.timings.sync_every_s)
            now = False
            if not await self._sync_clock():
                log.warning("clock sync failed; keeping the previous estimate")

    async def _sync_clock(self) -> bool:
        """Measure `sync_rounds` ping round trips and keep the fastest one's offset; return success."""
        wire = self._wire
        loop = asyncio.get_running_loop()
        samples: list[tuple[float, float, float]] = []
        for _ in range(2 * self.timings.sync_rounds):  # room for a few late pongs
            if wire is None or wire is not self._wire or len(samples) >= self.timings.sync_rounds:
                break
            ping_id = next(self._ping_ids)
            future: asyncio.Future[tuple[float, float, float]] = loop.create_future()
            t0_s = self._clock()
            self._pongs[ping_id] = (t0_s, future)
            try:
                if not await wire.send("ping", id=ping_id, t0=t0_s):
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

    async def _dispatch(self, wire: Wire, message: Message, received_s: float) -> bool:
        kind = message.kind
        if kind == "pong":
            t0 = message.time("t0")
            pending = self._pongs.get(message.count("id"))
            if pending is None or pending[0] != t0 or pending[1].done():
                return False
            pending[1].set_result((t0, message.time("host_s"), received_s))
        elif kind in ("step", "pause", "resume"):
            if self._host_clock is None:
                self._early.append(message)  # converted once the first sync is done
            else:
                self._deliver(message)
        else:
            return False
        return True

    def _deliver(self, message: Message) -> None:
        at_host_s = message.time("at_host_s")
        at_local_s = self.host_clock.to_local_s(at_host_s)
        if message.kind == "step":
            index = message.count("index")
            if self._fresh("step", (index, at_host_s)):
                self.steps._put(StepStart(index, at_host_s, at_local_s))
        else:
            self._control_in("pause" if message.kind == "pause" else "resume", at_host_s, at_local_s)


async def join(
    url: str,
    code: str,
    *,
    clock: Clock = time.monotonic,
    timings: LinkTimings = DEFAULT_TIMINGS,
    on_link_lost: Callback | None = None,
    on_link_restored: Callback | None = None,
) -> Joiner:
    """Connect to the host at `url` with the pairing code; return the paired, clock-synced Joiner.

    Raises LinkRefused (wrong code, or the host already paired), LinkError (unreachable) or UsageError (bad url).
    """
    return await Joiner(
        url, code, clock=clock, timings=timings, on_link_lost=on_link_lost, on_link_restored=on_link_restored
    ).start()
