"""The sandbox's clock: the "now" the server stamps changes with and answers Notif against."""

from __future__ import annotations

import datetime as dt
import threading
import time

__all__ = ["SandboxClock"]


class SandboxClock:
    """A naive local-time clock (ROR date-times carry no time zone) that tests can move forward.

    By default it starts at the real local time and ticks with it, so that a client comparing its own
    clock with the server's sees consistent times. ``start`` pins the starting instant and
    ``ticking=False`` freezes it: then only :meth:`advance` and :meth:`set` move it. Readings are
    truncated to the second, the resolution of ROR metadata (RG_EXP_020), and never go backwards.
    """

    def __init__(self, start: dt.datetime | None = None, *, ticking: bool = True) -> None:
        self._lock = threading.Lock()
        self._ticking = ticking
        self._origin = _naive(start) if start is not None else dt.datetime.now()
        self._started = time.monotonic()
        self._offset = dt.timedelta()

    @property
    def ticking(self) -> bool:
        return self._ticking

    def now(self) -> dt.datetime:
        """The current sandbox time, naive, whole seconds."""
        with self._lock:
            elapsed = (
                dt.timedelta(seconds=time.monotonic() - self._started) if self._ticking else dt.timedelta()
            )
            return (self._origin + elapsed + self._offset).replace(microsecond=0)

    def advance(
        self, seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0
    ) -> dt.datetime:
        """Move the clock forward and return the new time; a negative amount is refused."""
        step = dt.timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)
        if step < dt.timedelta():
            raise ValueError(f"the sandbox clock only moves forward (got {step})")
        with self._lock:
            self._offset += step
        return self.now()

    def set(self, at: dt.datetime) -> dt.datetime:
        """Jump to ``at`` (naive local time, or aware and converted); earlier than now is refused."""
        target = _naive(at)
        current = self.now()
        if target < current:
            raise ValueError(f"the sandbox clock only moves forward: {target} is before {current}")
        with self._lock:
            self._offset += target - current
        return self.now()


def _naive(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone().replace(tzinfo=None)
