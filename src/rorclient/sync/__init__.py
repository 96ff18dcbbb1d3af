"""The sync engine: keep a store's copy of a ROR source current (pull, delta sync, refresh).

See :class:`Sync` and docs/sync.md. Importing this package does not import the web-service client
(``httpx``, ``zeep``); building a :class:`Sync` without a ``client`` imports it on first use.
"""

from __future__ import annotations

from rorclient.sources._client import SyncClient
from rorclient.sync.engine import Sync, SyncSettings
from rorclient.sync.errors import (
    BreakerLatchedError,
    NotInitializedError,
    SafetyBreakerError,
    SyncLockedError,
    UnknownIdentifierError,
)
from rorclient.sync.events import ChangeFeed, ChangeStream, ProgressEvent, Subscription
from rorclient.sync.options import RetryOptions, SyncOptions
from rorclient.sync.report import (
    BreakerVerdict,
    CertificateStatus,
    FailedEstablishment,
    RunStatus,
    SyncReport,
    SyncStatus,
)

__all__ = [
    "BreakerLatchedError",
    "BreakerVerdict",
    "CertificateStatus",
    "ChangeFeed",
    "ChangeStream",
    "FailedEstablishment",
    "NotInitializedError",
    "ProgressEvent",
    "RetryOptions",
    "RunStatus",
    "SafetyBreakerError",
    "Subscription",
    "Sync",
    "SyncClient",
    "SyncLockedError",
    "SyncOptions",
    "SyncReport",
    "SyncSettings",
    "SyncStatus",
    "UnknownIdentifierError",
]
