"""Keep a local copy of the French ROR (Répertoire Opérationnel des Ressources) in sync.

Quick start — a local ROR simulator, a full pull, a delta sync with its change feed, a query::

    from rorclient import EntityKind, EntityQuery, Sandbox, Settings, Sync

    with Sandbox(establishments=10) as sandbox:  # or your own TOML file: docs/configuration.md
        config = sandbox.write_client_config("ror.toml")
        with Sync.from_settings(Settings.load(config, store_url="sqlite:///ror.sqlite3")) as sync:
            print(sync.pull().summary())  # the whole extraction, swapped in atomically
            sandbox.mutate(count=3)  # the ROR changes...
            sync.on_change(lambda change: print(change.change, change.kind, change.id))
            print(sync.sync().summary())  # ...one delta cycle (Notif, Lecture) applies it
            for row in sync.store.find(EntityQuery(kind=EntityKind.UNIT, limit=5)).items:
                print(row.id, row.name)

What is here (``help(rorclient.Sync)`` and the others for details; docs/api.md lists every export):

* Sync: :class:`Sync`, :class:`SyncOptions`, :class:`RetryOptions`, :class:`SyncReport`,
  :class:`SyncStatus`, :class:`RunStatus` (docs/sync.md).
* Settings: :class:`Settings`, :class:`SourceSettings` (docs/configuration.md).
* Stores: :func:`open_store` (by URL: ``sqlite:///``, ``postgresql://``, ``memory://``), :class:`Store`,
  :class:`EntityQuery`, :class:`Page`, :class:`StoredEntity`, and the change log's :class:`Change`,
  :class:`ChangeKind` (docs/stores.md).
* Models: :class:`LegalEntity`, :class:`Establishment`, :class:`Unit`, :class:`Activity`,
  :class:`Equipment`, :class:`Professional`, :class:`Offer` and their parts (docs/data-model.md).
* Errors, all :class:`RorError` with a ``retryable`` verdict and an ``exit_code``: :class:`ConfigError`,
  :class:`DataError`, :class:`StoreError`, :class:`SchemaVersionError`, :class:`TlsError`,
  :class:`TransportError`, :class:`RemoteError`, :class:`SafetyBreakerError`, :class:`SyncLockedError`,
  :class:`NotInitializedError`.
* :class:`Sandbox`: a local ROR v2.4 simulator with mutual TLS, changes and faults (docs/sandbox.md).

Subpackages: :mod:`rorclient.ror` (the web-service client), :mod:`rorclient.csd` (reader and writer),
:mod:`rorclient.daemon`, :mod:`rorclient.export`, :mod:`rorclient.loader`, :mod:`rorclient.testing`.
Importing :mod:`rorclient` does not import the network libraries; :class:`Sandbox` is loaded on first use.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from rorclient.config import Settings, SourceSettings
from rorclient.errors import (
    ConfigError,
    DataError,
    RemoteError,
    RorError,
    SchemaVersionError,
    StoreError,
    TlsError,
    TransportError,
)
from rorclient.models import (
    Activity,
    Address,
    CodedValue,
    Contact,
    Entity,
    EntityKind,
    Equipment,
    Establishment,
    LegalEntity,
    Offer,
    Professional,
    RecordMeta,
    Unit,
    UnitLevel,
)
from rorclient.store import Change, ChangeKind, EntityQuery, Page, Store, StoredEntity, open_store
from rorclient.sync import (
    NotInitializedError,
    RetryOptions,
    RunStatus,
    SafetyBreakerError,
    Sync,
    SyncLockedError,
    SyncOptions,
    SyncReport,
    SyncStatus,
)

if TYPE_CHECKING:
    from rorclient.sandbox import Sandbox

try:
    __version__ = version("rorclient")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "Activity",
    "Address",
    "Change",
    "ChangeKind",
    "CodedValue",
    "ConfigError",
    "Contact",
    "DataError",
    "Entity",
    "EntityKind",
    "EntityQuery",
    "Equipment",
    "Establishment",
    "LegalEntity",
    "NotInitializedError",
    "Offer",
    "Page",
    "Professional",
    "RecordMeta",
    "RemoteError",
    "RetryOptions",
    "RorError",
    "RunStatus",
    "SafetyBreakerError",
    "Sandbox",
    "SchemaVersionError",
    "Settings",
    "SourceSettings",
    "Store",
    "StoreError",
    "StoredEntity",
    "Sync",
    "SyncLockedError",
    "SyncOptions",
    "SyncReport",
    "SyncStatus",
    "TlsError",
    "TransportError",
    "Unit",
    "UnitLevel",
    "__version__",
    "open_store",
]

_LAZY = {"Sandbox": "rorclient.sandbox"}
"""Exports imported on first use: the sandbox brings the test PKI and the HTTP server along."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rorclient' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
