"""Errors of the sync engine; defined in :mod:`rorclient.errors` (one hierarchy), importable from here."""

from __future__ import annotations

from rorclient.errors import NotInitializedError, SafetyBreakerError, SyncLockedError

__all__ = ["NotInitializedError", "SafetyBreakerError", "SyncLockedError"]
