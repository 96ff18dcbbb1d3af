"""Ctrl-C that cannot be lost: the command line's guard around long work.

Python delivers SIGINT as a ``KeyboardInterrupt`` in whatever runs next. When that is a callback of a
C extension which swallows exceptions (a pydantic serializer, an lxml hook), the interrupt vanishes and
the work goes on to commit. :class:`InterruptGuard` also remembers the signal, and :meth:`check`,
called at the work's own safe points (every progress report), raises it again.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

__all__ = ["InterruptGuard"]


class InterruptGuard:
    """While active (``with``), SIGINT sets :attr:`interrupted` and raises ``KeyboardInterrupt``.

    Only where Python's default handler is in place, in the main thread: an ignored SIGINT (a background
    job of a script) stays ignored, and an application's own handler stays in charge."""

    def __init__(self) -> None:
        self.interrupted = False
        self._previous: signal._HANDLER = None
        self._installed = False

    def __enter__(self) -> InterruptGuard:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if SIGINT came while active, even if it was swallowed since."""
        if self.interrupted:
            raise KeyboardInterrupt

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.interrupted = True
        raise KeyboardInterrupt
