"""Errors of the sync engine; defined in :mod:`rorclient.errors` (one hierarchy), importable from here."""

from __future__ import annotations

from rorclient.errors import (
    BreakerLatchedError,
    NotInitializedError,
    SafetyBreakerError,
    SyncLockedError,
    UnknownIdentifierError,
)

__all__ = [
    "BreakerLatchedError",
    "NotInitializedError",
    "SafetyBreakerError",
    "SyncLockedError",
    "UnknownIdentifierError",
]
