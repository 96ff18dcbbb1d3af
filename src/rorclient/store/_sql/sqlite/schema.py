"""The SQLite store's schema: versioned migrations, checked and applied when a store opens.

``schema_version`` holds one row per applied migration; the store's version is the highest. A file
whose version is above :data:`SCHEMA_VERSION` was written by a newer rorclient and is refused with
:class:`~rorclient.errors.SchemaVersionError` before anything is written to it. Migrations only ever
append to :data:`MIGRATIONS`; an applied migration is never edited.

The schema has no foreign keys on purpose: a unit may arrive before its establishment, a tombstone keeps
pointing at owners that are gone, and the store's consistency rules live in ``subtree``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from pathlib import Path

from rorclient.errors import SchemaVersionError

__all__ = [
    "MIGRATIONS",
    "PAGE_SIZE",
    "SCHEMA_VERSION",
    "STAGING_DDL",
    "STAGING_INDEX",
    "migrate",
    "schema_version",
]


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "entities, change log, sync state, pending establishments, runs, bulk-load registry",
        (
            """CREATE TABLE entities (
                kind TEXT NOT NULL,
                id TEXT NOT NULL,
                kind_rank INTEGER NOT NULL,
                source TEXT NOT NULL,
                parent TEXT,
                establishment TEXT,
                region TEXT,
                name TEXT NOT NULL,
                name_key TEXT NOT NULL,
                code TEXT,
                updated TEXT NOT NULL,
                closed INTEGER NOT NULL,
                deleted_at TEXT,
                content_hash TEXT NOT NULL,
                data TEXT NOT NULL,
                PRIMARY KEY (kind, id)
            )""",
            # Every query column but the entity itself, in listing order: counts, filters and scans
            # (name search, stats, a source's live rows) read this narrow index, never the JSON rows.
            "CREATE INDEX entities_scan ON entities (kind_rank, id, deleted_at, source, closed, "
            "content_hash, region, establishment, parent, code, name_key)",
            "CREATE INDEX entities_establishment ON entities (establishment)",
            "CREATE INDEX entities_parent ON entities (parent)",
            "CREATE INDEX entities_code ON entities (code) WHERE code IS NOT NULL",
            """CREATE TABLE changes (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                at TEXT NOT NULL,
                source TEXT NOT NULL,
                kind TEXT NOT NULL,
                id TEXT NOT NULL,
                change TEXT NOT NULL,
                run_id TEXT
            )""",
            """CREATE TABLE sync_state (
                source TEXT PRIMARY KEY,
                watermark TEXT,
                taken_at TEXT NOT NULL,
                last_full_pull TEXT
            )""",
            """CREATE TABLE pending (
                source TEXT NOT NULL,
                establishment_id TEXT NOT NULL,
                error TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                first_failed TEXT NOT NULL,
                last_failed TEXT NOT NULL,
                PRIMARY KEY (source, establishment_id)
            )""",
            """CREATE TABLE runs (
                run_id TEXT PRIMARY KEY,
                started_key TEXT NOT NULL,
                report TEXT NOT NULL
            )""",
            "CREATE INDEX runs_started ON runs (started_key)",
            """CREATE TABLE bulk_loads (
                load_id TEXT PRIMARY KEY,
                source TEXT NOT NULL,
                staging_file TEXT NOT NULL,
                host TEXT NOT NULL,
                pid INTEGER NOT NULL,
                started TEXT NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "latched safety breakers, one per source",
        (
            """CREATE TABLE breaker_latches (
                source TEXT PRIMARY KEY,
                latch TEXT NOT NULL
            )""",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version

#: Page size of new store files and of staging files, in bytes (an existing store keeps its own).
PAGE_SIZE = 16_384
"""The schema version this rorclient writes."""

#: The staging table of a bulk load, in its own attached database file (see ``store._sql.sqlite.bulk``).
#: No key while rows are added (appending to a rowid table is the fastest insert SQLite has);
#: :data:`STAGING_INDEX` is built once, before the first preview or the swap, and also finds duplicates.
STAGING_DDL = """CREATE TABLE IF NOT EXISTS staging.staged (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    kind_rank INTEGER NOT NULL,
    parent TEXT,
    establishment TEXT,
    unit_ref TEXT,
    region TEXT,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    code TEXT,
    updated TEXT NOT NULL,
    closed INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    data TEXT NOT NULL
)"""
STAGING_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS staging.staged_key ON staged (kind_rank, id)"


def schema_version(connection: sqlite3.Connection) -> int:
    """The version of the schema in this database; 0 for a new, empty file."""
    exists = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(connection: sqlite3.Connection, path: Path) -> int:
    """Bring the database up to :data:`SCHEMA_VERSION`; returns the version found before.

    The version is read again inside the write transaction, so two processes opening a new file at
    the same time apply each migration once.
    """
    found = schema_version(connection)
    _refuse_newer(found, path)
    if found == SCHEMA_VERSION:
        return found
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        current = schema_version(connection)
        _refuse_newer(current, path)
        applied_at = dt.datetime.now(dt.UTC).isoformat()
        for migration in MIGRATIONS:
            if migration.version <= current:
                continue
            for statement in migration.statements:
                connection.execute(statement)
            connection.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.description, applied_at),
            )
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return found


def _refuse_newer(found: int, path: Path) -> None:
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the store {path} has schema version {found}, but this rorclient only knows versions up to "
            f"{SCHEMA_VERSION}: it was written by a newer rorclient; upgrade rorclient to use it"
        )
