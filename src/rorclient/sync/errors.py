"""Errors of the sync engine, under :class:`~rorclient.errors.RorError`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rorclient.errors import ConfigError, RorError

if TYPE_CHECKING:
    from rorclient.sync.report import SyncReport

__all__ = ["NotInitializedError", "SafetyBreakerError", "SyncLockedError"]


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


class SyncLockedError(RorError):
    """Another process (a daemon, another ``rorclient sync``) is pulling or syncing this store. Exit
    code 9."""

    exit_code = 9


class NotInitializedError(ConfigError):
    """A delta sync was asked for a source that was never pulled: run ``pull`` first."""
