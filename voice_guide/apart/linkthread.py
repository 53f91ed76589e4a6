"""The link's own thread: its asyncio loop runs beside the session, and its log lines are written by a third.

The session runs on the frame clock in the main thread and never waits on the link: sends
are submitted without waiting, and what arrives is read from thread-safe inboxes. Log
records from the link and the schedulers go through a bounded queue to a writer thread
(`logging_off_the_loop`), so a slow or blocked terminal never stalls the link's loop or the
session; when the queue is full, records are dropped and counted instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import logging.handlers
import queue
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Final, Literal, TypeVar

T = TypeVar("T")
LinkEvent = Literal["lost", "restored", "ended"]
APART_LOGGER: Final = "voice_guide.apart"
_QUEUE_RECORDS: Final = 200
_STOP_WAIT_S: Final = 5.0  # at the end, how long the terminal may take to catch up


class LinkThread:
    """Run the link's asyncio loop in a daemon thread; hand calls in, events out."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.events: queue.Queue[LinkEvent] = queue.Queue()
        self._thread = threading.Thread(target=self.loop.run_forever, name="voice-guide-link", daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run `coro` on the link's loop and wait for its result (or exception)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def wait(self, coro: Coroutine[Any, Any, T], meanwhile: Callable[[], None], every_s: float = 0.2) -> T:
        """Run `coro` on the link's loop; until it is done, call `meanwhile` in this thread every `every_s`."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        while True:
            try:
                return future.result(every_s)
            except concurrent.futures.TimeoutError:
                meanwhile()
            except BaseException:
                future.cancel()
                raise

    def submit(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` on the link's loop without waiting (sends from the frame clock)."""
        asyncio.run_coroutine_threadsafe(coro, self.loop)

    def lost(self) -> None:
        """Link callback: the link dropped (called on the link's thread)."""
        self.events.put("lost")

    def restored(self) -> None:
        """Link callback: the link is back (called on the link's thread)."""
        self.events.put("restored")

    def close(self) -> None:
        """Stop the loop and the thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5.0)


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Put records on a bounded queue without ever waiting; count the ones that do not fit."""

    def __init__(self, records: queue.Queue[logging.LogRecord]) -> None:
        super().__init__(records)
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


class _Listener(logging.handlers.QueueListener):
    """Write queued records in a thread; at the stop, wait a while for a slow terminal, never for ever."""

    def stop(self) -> None:
        try:
            self.queue.put(self._sentinel, timeout=_STOP_WAIT_S)  # type: ignore[attr-defined]
        except queue.Full:
            return  # a stuck terminal: the writer is a daemon thread and ends with us
        if self._thread is not None:
            self._thread.join(_STOP_WAIT_S)
            self._thread = None


class _WriteHandler(logging.Handler):
    def __init__(self, write: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self.write = write

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write(record.getMessage())
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def logging_off_the_loop(write: Callable[[str], None], level: int = logging.WARNING) -> Iterator[None]:
    """Route the apart loggers' records at `level` and up to `write`, called from a writer thread of its own."""
    records: queue.Queue[logging.LogRecord] = queue.Queue(_QUEUE_RECORDS)
    handler = _DroppingQueueHandler(records)
    handler.setLevel(level)
    listener = _Listener(records, _WriteHandler(write))
    logger = logging.getLogger(APART_LOGGER)
    logger.addHandler(handler)
    logger.propagate = False
    listener.start()
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        listener.stop()  # writes what is queued, then ends the writer thread
        if handler.dropped:
            write(f"{handler.dropped} more link messages were left out (the terminal was slow)")
