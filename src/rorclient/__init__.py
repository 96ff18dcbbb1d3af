"""rorclient: keep a local copy of the French ROR (Répertoire Opérationnel des Ressources) in sync."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from rorclient.config import Settings
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
from rorclient.store import EntityQuery, Store, open_store
from rorclient.sync import Sync, SyncOptions, SyncReport

try:
    __version__ = version("rorclient")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "Activity",
    "Address",
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
    "Offer",
    "Professional",
    "RecordMeta",
    "RemoteError",
    "RorError",
    "SchemaVersionError",
    "Settings",
    "Store",
    "StoreError",
    "Sync",
    "SyncOptions",
    "SyncReport",
    "TlsError",
    "TransportError",
    "Unit",
    "UnitLevel",
    "__version__",
    "open_store",
]
