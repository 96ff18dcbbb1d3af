"""The sandbox's clock: the "now" the server stamps changes with and answers Notif against."""

from __future__ import annotations

import datetime as dt
import threading
import time
from zoneinfo import ZoneInfo

__all__ = ["ROR_ZONE", "SandboxClock", "ror_wall_clock"]

#: The ROR's date-times carry no time zone: they are French (metropolitan) wall-clock times.
ROR_ZONE = ZoneInfo("Europe/Paris")


def ror_wall_clock(moment: dt.datetime) -> dt.datetime:
    """``moment`` as the ROR writes it: naive Paris time (a naive ``moment`` is taken as it is)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(ROR_ZONE).replace(tzinfo=None)


class SandboxClock:
    """A naive Paris-time clock (ROR date-times carry no time zone) that tests can move forward.

    By default it starts at the real time in Paris and ticks with it, as the ROR's own clock does, so
    that a client with the default ``SyncOptions.server_timezone`` sees consistent times. ``start``
    pins the starting instant (naive: Paris time; aware: converted) and ``ticking=False`` freezes it:
    then only :meth:`advance` and :meth:`set` move it. Readings are truncated to the second, the
    resolution of ROR metadata (RG_EXP_020), and never go backwards.
    """

    def __init__(self, start: dt.datetime | None = None, *, ticking: bool = True) -> None:
        self._lock = threading.Lock()
        self._ticking = ticking
        self._origin = ror_wall_clock(start if start is not None else dt.datetime.now(dt.UTC))
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
        """Jump to ``at`` (naive Paris time, or aware and converted); earlier than now is refused."""
        target = ror_wall_clock(at)
        current = self.now()
        if target < current:
            raise ValueError(f"the sandbox clock only moves forward: {target} is before {current}")
        with self._lock:
            self._offset += target - current
        return self.now()
