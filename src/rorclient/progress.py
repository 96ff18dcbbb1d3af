"""A one-line progress display on standard error, for long commands run in a terminal.

Each line names the phase and shows what a reader needs to decide whether to wait: how far (``%`` when
the total is known), how fast (the phase's rate) and how long still (ETA)::

    pull: load  42.0%  12.5/29.8 MB  8.1 MB/s  ETA 0:02

It is redrawn at most every ``interval`` seconds (4 times a second by default: a 5,000-establishment
pull sends thousands of events), and draws nothing at all when standard error is not a terminal, so
logs and pipes only get the command's final summary. Why not rich or tqdm: docs/decisions.md.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import TracebackType
from typing import TextIO

from rorclient.loader import LoadProgress
from rorclient.sync.events import ProgressEvent

__all__ = ["ProgressLine", "describe_progress"]


class ProgressLine:
    """Rewrites one status line at most every ``interval`` seconds; silent when not on a terminal."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        interval: float = 0.25,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled and self._stream.isatty()
        self._interval = interval
        self._last_draw = float("-inf")
        self._width = 0
        self._phase: tuple[str, str] | None = None
        self._phase_started = time.monotonic()
        self._phase_base = 0
        self.draws = 0
        """Lines drawn so far (a test checks the display is not redrawn on every event)."""

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.clear()

    @property
    def enabled(self) -> bool:
        return self._enabled

    def update(self, event: ProgressEvent) -> None:
        """A sync engine event (pull, sync, refresh)."""
        self._progress(event.operation, event.phase, event.done, event.total, event.unit, note=event.note)

    def update_load(self, progress: LoadProgress) -> None:
        """A ``rorclient load`` event."""
        self._progress(
            "load", Path(progress.file).name, progress.bytes_read, progress.bytes_total or None, "bytes"
        )

    def update_download(self, done: int, total: int | None) -> None:
        """A ``rorclient ror download`` event."""
        self._progress("ror", "download", done, total, "bytes")

    def _progress(
        self, operation: str, phase: str, done: int, total: int | None, unit: str, *, note: str | None = None
    ) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if self._phase != (operation, phase):  # a new phase: its rate and ETA start afresh
            self._phase, self._phase_started, self._phase_base = (operation, phase), now, done
        if now - self._last_draw < self._interval:
            return
        elapsed = now - self._phase_started
        rate = (done - self._phase_base) / elapsed if elapsed > 0.5 else None
        line = describe_progress(operation, phase, done, total, unit, rate=rate, elapsed=elapsed, note=note)
        self._draw(line, now)

    def show(self, text: str) -> None:
        """Any one-line text (throttled like the progress lines)."""
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._last_draw >= self._interval:
            self._draw(text, now)

    def _draw(self, text: str, now: float) -> None:
        self._last_draw = now
        self.draws += 1
        padding = max(self._width - len(text), 0)
        self._stream.write("\r" + text + " " * padding)
        self._stream.flush()
        self._width = len(text)

    def clear(self) -> None:
        if self._enabled and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0


def describe_progress(
    operation: str,
    phase: str,
    done: int,
    total: int | None,
    unit: str,
    *,
    rate: float | None = None,
    elapsed: float = 0.0,
    note: str | None = None,
) -> str:
    """One progress line: ``operation: phase  percent  done/total unit  rate  ETA  note``; parts that are
    not known (no total, no rate yet) are left out. A phase with nothing counted yet shows its elapsed
    time; ``note`` is what the source says in words (a FHIR export's ``X-Progress``)."""
    parts = [f"{operation}: {phase}"]
    if total:
        parts.append(f"{min(100.0, 100 * done / total):5.1f}%")
    if done == 0 and not total:
        parts.append(f"{elapsed:.0f} s")
    elif unit == "bytes":
        amount = f"{done / 1e6:,.1f}" + (f"/{total / 1e6:,.1f}" if total else "") + " MB"
        parts.append(amount)
        if rate is not None:
            parts.append(f"{rate / 1e6:,.1f} MB/s")
    else:
        parts.append(f"{done:,}" + (f"/{total:,}" if total else "") + f" {unit}")
        if rate is not None:
            parts.append(f"{rate:,.0f}/s")
    if total and rate and rate > 0 and done < total:
        parts.append(f"ETA {_clock((total - done) / rate)}")
    if note:
        parts.append(note)
    return "  ".join(parts)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"
