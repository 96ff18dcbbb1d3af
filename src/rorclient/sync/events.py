"""The change feed for embedded users (callbacks and a blocking iterator) and progress events.

Every change the engine commits is first written to the store's change log (durable, ordered by
``seq``: :meth:`Store.changes`); the feed then hands the same :class:`~rorclient.store.Change` entries
to callbacks and streams, in commit order, right after each commit. The feed is a notification: a
process that dies between a commit and the notification loses the notification, not the change. Code
that must see every change exactly once reads the change log from its last ``seq``; the feed tells it
when to look.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Literal

from pydantic import BaseModel, ConfigDict

from rorclient.store.base import Change

__all__ = [
    "ChangeCallback",
    "ChangeFeed",
    "ChangeStream",
    "ProgressCallback",
    "ProgressEvent",
    "Subscription",
]

_log = logging.getLogger("rorclient.sync")

ChangeCallback = Callable[[Change], None]


class Subscription:
    """A registered callback; :meth:`cancel` (or leaving a ``with`` block) unregisters it."""

    def __init__(self, feed: ChangeFeed, callback: ChangeCallback) -> None:
        self._feed = feed
        self.callback = callback

    def cancel(self) -> None:
        self._feed._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()


class ChangeStream:
    """A blocking iterator over the changes committed after it was opened.

    Iterating waits for the next change until :meth:`close` is called (from any thread); :meth:`get`
    waits at most ``timeout`` seconds. At most ``max_buffer`` changes wait to be read: past that, new
    changes are dropped and :attr:`overflowed` becomes true — read the store's change log from the
    last ``seq`` you saw to catch up.
    """

    _CLOSED = object()

    def __init__(self, feed: ChangeFeed, max_buffer: int) -> None:
        self._feed = feed
        self._queue: queue.Queue[object] = queue.Queue()
        self._max_buffer = max_buffer
        self._closed = False
        self.overflowed = False

    def _put(self, change: Change) -> None:
        if self._closed:
            return
        if self._queue.qsize() >= self._max_buffer:
            self.overflowed = True
            return
        self._queue.put_nowait(change)

    def get(self, timeout: float | None = None) -> Change | None:
        """The next change, or ``None`` if none came within ``timeout`` seconds or the stream is closed."""
        if self._closed and self._queue.empty():
            return None
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is self._CLOSED:
            self._queue.put_nowait(item)  # let other readers see it too
            return None
        assert isinstance(item, Change)
        return item

    def __iter__(self) -> Iterator[Change]:
        while True:
            change = self.get()
            if change is None:
                return
            yield change

    def close(self) -> None:
        """Stop the stream: iteration ends once the changes already buffered are read."""
        if not self._closed:
            self._closed = True
            self._feed._remove(self)
            self._queue.put_nowait(self._CLOSED)

    def __enter__(self) -> ChangeStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class ChangeFeed:
    """Fan-out of committed changes to callbacks and streams; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Subscription | ChangeStream] = []

    def subscribe(self, callback: ChangeCallback) -> Subscription:
        """Call ``callback(change)`` for every change committed from now on, in the committing thread.

        A callback that raises is logged and does not stop the run (the change is committed already).
        Keep callbacks short: the run waits for them.
        """
        subscription = Subscription(self, callback)
        with self._lock:
            self._listeners.append(subscription)
        return subscription

    def stream(self, *, max_buffer: int = 100_000) -> ChangeStream:
        """A :class:`ChangeStream` of the changes committed from now on."""
        stream = ChangeStream(self, max_buffer)
        with self._lock:
            self._listeners.append(stream)
        return stream

    @property
    def active(self) -> bool:
        """Whether anyone listens (the engine skips reading the change log otherwise)."""
        with self._lock:
            return bool(self._listeners)

    def publish(self, changes: Iterable[Change]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        if not listeners:
            return
        for change in changes:
            for listener in listeners:
                if isinstance(listener, ChangeStream):
                    listener._put(change)
                    continue
                try:
                    listener.callback(change)
                except Exception:
                    _log.exception("a change callback failed on %s %s", change.kind.value, change.id)

    def _remove(self, listener: Subscription | ChangeStream) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)


Phase = Literal["download", "load", "notif", "read", "resolve", "plan", "apply", "commit"]


class ProgressEvent(BaseModel):
    """Where a run stands, for progress displays: ``done`` out of ``total`` (``None`` if unknown)."""

    model_config = ConfigDict(frozen=True)

    operation: Literal["pull", "sync", "refresh", "load"]
    phase: Phase
    done: int = 0
    total: int | None = None
    unit: Literal["bytes", "entities", "establishments", "units"] = "establishments"
    file: str | None = None
    """The file being read (phase ``load``)."""
    entities: int | None = None
    """Entities read so far (phase ``load``)."""
    note: str | None = None
    """What the source says in words, e.g. a FHIR export's ``X-Progress`` (phase ``download``)."""

    def describe(self) -> str:
        """One line, e.g. ``sync: read 120/400 establishments`` or ``pull: download 12.5/80.0 MB``."""
        if self.unit == "bytes":
            done = f"{self.done / 1e6:,.1f}"
            amount = f"{done}/{self.total / 1e6:,.1f} MB" if self.total else f"{done} MB"
        else:
            amount = f"{self.done:,}/{self.total:,}" if self.total is not None else f"{self.done:,}"
            amount += f" {self.unit}"
        line = f"{self.operation}: {self.phase} {amount}"
        return f"{line} ({self.note})" if self.note else line


ProgressCallback = Callable[[ProgressEvent], None]
