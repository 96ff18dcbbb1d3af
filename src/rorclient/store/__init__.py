"""Local stores: the :class:`Store` contract and :func:`open_store`, which picks one by URL.

========================  ==============================================================
URL                       store
========================  ==============================================================
``sqlite:///path/db``     SQLite file (the default, under ``platformdirs.user_data_dir``)
``memory://``             in memory, for tests and short-lived scripts
``postgresql://...``      PostgreSQL (``pip install 'rorclient[postgres]'``), for shared
                          deployments; ``?schema=`` picks the schema
``<scheme>://...``        a third-party store registered under the ``rorclient.stores``
                          entry-point group by its URL scheme
========================  ==============================================================
"""

from __future__ import annotations

from rorclient.store._sql.postgres.url import redact_url
from rorclient.store.base import (
    AppliedChange,
    BreakerLatch,
    BulkLoad,
    Change,
    ChangeKind,
    ChangeSet,
    EntityQuery,
    Page,
    PendingEstablishment,
    RunReport,
    Store,
    StoredEntity,
    StoreStats,
    StoreTransaction,
    SyncState,
)
from rorclient.store.registry import default_store_url, open_store

__all__ = [
    "AppliedChange",
    "BreakerLatch",
    "BulkLoad",
    "Change",
    "ChangeKind",
    "ChangeSet",
    "EntityQuery",
    "Page",
    "PendingEstablishment",
    "RunReport",
    "Store",
    "StoreStats",
    "StoreTransaction",
    "StoredEntity",
    "SyncState",
    "default_store_url",
    "open_store",
    "redact_url",
]
