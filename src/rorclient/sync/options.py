"""How the sync engine behaves: :class:`SyncOptions` and its :class:`RetryOptions` (defined in a leaf
module so that the settings can hold the ``[sync]`` table without importing the engine)."""

from __future__ import annotations

from rorclient._sync_options import RetryOptions, SyncOptions

__all__ = ["RetryOptions", "SyncOptions"]
