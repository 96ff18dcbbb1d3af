"""Errors of the sync engine, under :class:`~rorclient.errors.RorError`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rorclient.errors import ConfigError, RorError

if TYPE_CHECKING:
    from rorclient.sync.report import SyncReport

__all__ = [
    "BreakerLatchedError",
    "NotInitializedError",
    "SafetyBreakerError",
    "SyncLockedError",
    "UnknownIdentifierError",
]


class SafetyBreakerError(RorError):
    """A run would delete or close more than the allowed share of the store; nothing was committed.

    ``report`` is the run's report (status ``blocked``, its ``breaker`` verdict and the planned counts).
    Check the ROR's answer (a truncated or filtered extraction?) and run again with ``force=True``
    (``--force``) if the changes are real. Exit code 8.
    """

    exit_code = 8

    def __init__(self, message: str, report: SyncReport) -> None:
        self.report = report
        super().__init__(message)


class BreakerLatchedError(SafetyBreakerError):
    """The source's safety breaker tripped earlier and stays latched (``store.breaker_latches()``):
    nothing is applied from that source until an operator runs it with ``force=True`` (``--force``) or
    releases it (:meth:`Sync.reset_breaker`, ``rorclient breaker reset``). Exit code 8."""


class UnknownIdentifierError(RorError):
    """A refresh named an establishment or unit that neither the ROR nor the store knows (a typo?);
    nothing was stored. Exit code 11."""

    exit_code = 11


class SyncLockedError(RorError):
    """Another process (a daemon, another ``rorclient sync``) is pulling or syncing this store. Exit
    code 9."""

    exit_code = 9


class NotInitializedError(ConfigError):
    """A delta sync was asked for a source that was never pulled: run ``pull`` first."""
