"""A one-line progress display on standard error, for long commands run in a terminal."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rorclient.loader import LoadProgress

__all__ = ["ProgressLine"]


class ProgressLine:
    """Rewrites one status line at most every ``interval`` seconds; silent when not on a terminal."""

    def __init__(self, *, enabled: bool = True, stream: TextIO | None = None, interval: float = 0.25) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled and self._stream.isatty()
        self._interval = interval
        self._last = 0.0
        self._started = time.monotonic()
        self._width = 0

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.clear()

    def update_load(self, progress: LoadProgress) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        self._last = now
        elapsed = max(now - self._started, 1e-6)
        done = progress.bytes_read / 1e6
        total = progress.bytes_total / 1e6
        percent = f"{100 * progress.bytes_read / progress.bytes_total:5.1f}%" if progress.bytes_total else ""
        self.show(
            f"{percent} {done:,.1f}/{total:,.1f} MB  {progress.entities:,} entities  "
            f"{done / elapsed:,.1f} MB/s"
        )

    def show(self, text: str) -> None:
        if not self._enabled:
            return
        padding = max(self._width - len(text), 0)
        self._stream.write("\r" + text + " " * padding)
        self._stream.flush()
        self._width = len(text)

    def clear(self) -> None:
        if self._enabled and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0
