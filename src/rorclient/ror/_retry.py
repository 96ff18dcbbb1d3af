"""The retry policy of every ROR call, in one place (tenacity stays an implementation detail).

A call is retried when it fails with an error whose ``retryable`` is true (see :mod:`rorclient.ror.errors`):
connection failures and resets, timeouts, cut bodies, HTTP 429/502/503/504 and ``soap:Receiver`` faults.
Never on a 4xx, a ``soap:Sender`` fault, a TLS or certificate problem, or bad data. Both ROR reads are
idempotent and downloads resume with ``Range``, so repeating them is safe.

Waits grow exponentially with random jitter (``initial_wait * 2**n`` up to ``max_wait``, plus up to
``jitter`` seconds). A ``Retry-After`` from the server (seconds or HTTP date) is honoured, capped at
``max_retry_after``. Attempts stop at ``max_attempts`` or when the next wait would end past ``max_total``
seconds after the first attempt started; the last error is then raised as is.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_before_delay

from rorclient.errors import RorError
from rorclient.ror.errors import ServerBusyError

__all__ = ["RetryPolicy", "disable_retry_waits", "retry_call"]

_log = logging.getLogger("rorclient.ror")
_T = TypeVar("_T")

_waits_disabled = False


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed call is repeated.

    ``wait_scale`` multiplies every wait: ``RetryPolicy(wait_scale=0)`` retries at once (for tests).
    ``RetryPolicy.no_retry()`` makes one attempt only.
    """

    max_attempts: int = 4
    """Attempts in all, the first included."""
    max_total: float = 120.0
    """Seconds from the first attempt after which no new attempt starts."""
    initial_wait: float = 0.5
    max_wait: float = 15.0
    jitter: float = 0.5
    """Up to this many seconds of random wait are added to each backoff."""
    max_retry_after: float = 60.0
    """A server's ``Retry-After`` is honoured up to this many seconds."""
    wait_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        for name in ("max_total", "initial_wait", "max_wait", "jitter", "max_retry_after", "wait_scale"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} cannot be negative")

    @classmethod
    def no_retry(cls) -> RetryPolicy:
        """One attempt, no retry."""
        return cls(max_attempts=1)

    def wait_before(self, attempt: int, error: BaseException | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based) that raised ``error``."""
        backoff = min(self.max_wait, self.initial_wait * 2 ** (attempt - 1))
        backoff += random.uniform(0, self.jitter)  # noqa: S311 - jitter, not cryptography
        if isinstance(error, ServerBusyError) and error.retry_after is not None:
            backoff = max(backoff, min(error.retry_after, self.max_retry_after))
        return 0.0 if _waits_disabled else backoff * self.wait_scale


@contextlib.contextmanager
def disable_retry_waits() -> Iterator[None]:
    """Within the block, retries happen at once whatever the policy says (for test suites)."""
    global _waits_disabled
    previous, _waits_disabled = _waits_disabled, True
    try:
        yield
    finally:
        _waits_disabled = previous


def retry_call(function: Callable[[], _T], policy: RetryPolicy, *, operation: str) -> _T:
    """Call ``function`` until it returns, raises a non-retryable error, or ``policy`` gives up."""
    retrying = Retrying(
        stop=stop_after_attempt(policy.max_attempts) | stop_before_delay(policy.max_total),
        wait=lambda state: policy.wait_before(state.attempt_number, _error_of(state)),
        retry=retry_if_exception(_is_retryable),
        reraise=True,
        sleep=lambda seconds: _sleep(seconds),
        before_sleep=lambda state: _log_retry(state, operation),
    )
    return retrying(function)


def _sleep(seconds: float) -> None:
    """Wait between attempts (a seam for tests that record waits instead of sleeping)."""
    time.sleep(seconds)


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, RorError) and error.retryable


def _error_of(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None else None


def _log_retry(state: RetryCallState, operation: str) -> None:
    error = _error_of(state)
    _log.warning(
        "%s failed (attempt %d): %s; retrying in %.1f s",
        operation,
        state.attempt_number,
        error,
        state.upcoming_sleep,
    )
