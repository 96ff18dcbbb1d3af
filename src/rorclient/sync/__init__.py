"""The sync engine: keep a store's copy of a ROR source current (pull, delta sync, refresh).

See :class:`Sync` and docs/sync.md. Importing this package does not import the web-service client
(``httpx``, ``zeep``); building a :class:`Sync` without a ``client`` imports it on first use.
"""

from __future__ import annotations

from rorclient.sources._client import SyncClient
from rorclient.sync.engine import Sync
from rorclient.sync.errors import NotInitializedError, SafetyBreakerError, SyncLockedError
from rorclient.sync.events import ChangeFeed, ChangeStream, ProgressEvent, Subscription
from rorclient.sync.options import SyncOptions
from rorclient.sync.report import (
    BreakerVerdict,
    CertificateStatus,
    FailedEstablishment,
    RunStatus,
    SyncReport,
    SyncStatus,
)

__all__ = [
    "BreakerVerdict",
    "CertificateStatus",
    "ChangeFeed",
    "ChangeStream",
    "FailedEstablishment",
    "NotInitializedError",
    "ProgressEvent",
    "RunStatus",
    "SafetyBreakerError",
    "Subscription",
    "Sync",
    "SyncClient",
    "SyncLockedError",
    "SyncOptions",
    "SyncReport",
    "SyncStatus",
]
