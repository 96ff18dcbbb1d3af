"""The PostgreSQL store's schema: versioned migrations, checked and applied when a store opens.

Every table lives in the store's schema (``public`` unless the URL says ``?schema=``).
``schema_version`` holds one row per applied migration; the store's version is the highest. A schema
whose version is above :data:`SCHEMA_VERSION` was written by a newer rorclient and is refused with
:class:`~rorclient.errors.SchemaVersionError` before anything is written to it. Migrations run in one
transaction under an advisory lock, so processes opening a new store at the same time apply each
migration once. Migrations only ever append to :data:`MIGRATIONS`; an applied migration is never edited.

Like the SQLite schema it has no foreign keys on purpose (a unit may arrive before its establishment, a
tombstone keeps pointing at owners that are gone). ``data`` is the entity as ``jsonb``, so applications
sharing the database can query it with SQL (``data->'address'``...).
"""

from __future__ import annotations

import dataclasses

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from rorclient.errors import SchemaVersionError
from rorclient.store._sql.postgres.connect import lock_key, translate_errors
from rorclient.store._sql.postgres.url import Target

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "STAGING_COLUMNS", "migrate", "schema_version"]


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
                kind text NOT NULL,
                id text NOT NULL,
                kind_rank smallint NOT NULL,
                source text NOT NULL,
                parent text,
                establishment text,
                region text,
                name text NOT NULL,
                name_key text NOT NULL,
                code text,
                updated text NOT NULL,
                closed boolean NOT NULL,
                deleted_at timestamptz,
                content_hash text NOT NULL,
                data jsonb NOT NULL,
                PRIMARY KEY (kind_rank, id)
            )""",
            "CREATE INDEX entities_establishment ON entities (establishment)",
            "CREATE INDEX entities_parent ON entities (parent)",
            "CREATE INDEX entities_region ON entities (region)",
            "CREATE INDEX entities_code ON entities (code) WHERE code IS NOT NULL",
            "CREATE INDEX entities_live_by_source ON entities (source) WHERE deleted_at IS NULL",
            """CREATE TABLE changes (
                seq bigint PRIMARY KEY,
                at timestamptz NOT NULL,
                source text NOT NULL,
                kind text NOT NULL,
                id text NOT NULL,
                change text NOT NULL,
                run_id text
            )""",
            """CREATE TABLE sync_state (
                source text PRIMARY KEY,
                watermark text,
                taken_at text NOT NULL,
                last_full_pull text
            )""",
            """CREATE TABLE pending (
                source text NOT NULL,
                establishment_id text NOT NULL,
                error text NOT NULL,
                attempts integer NOT NULL,
                first_failed text NOT NULL,
                last_failed text NOT NULL,
                PRIMARY KEY (source, establishment_id)
            )""",
            """CREATE TABLE runs (
                run_id text PRIMARY KEY,
                started_key text NOT NULL,
                recorded bigint GENERATED ALWAYS AS IDENTITY,
                report jsonb NOT NULL
            )""",
            "CREATE INDEX runs_started ON runs (started_key, recorded)",
            """CREATE TABLE bulk_loads (
                load_id text PRIMARY KEY,
                source text NOT NULL,
                staging_table text NOT NULL,
                lock_key bigint NOT NULL,
                backend_pid integer NOT NULL,
                started timestamptz NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "latched safety breakers, one per source",
        (
            """CREATE TABLE breaker_latches (
                source text PRIMARY KEY,
                latch jsonb NOT NULL
            )""",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version
"""The schema version this rorclient writes."""

#: The columns of a bulk load's staging table (an UNLOGGED table of its own, see ``bulk``). ``data``
#: is text there: COPY is twice as fast without parsing JSON, and only rows that changed are parsed, once,
#: when the swap writes them to ``entities``.
STAGING_COLUMNS = """kind text NOT NULL,
    id text NOT NULL,
    kind_rank smallint NOT NULL,
    parent text,
    establishment text,
    unit_ref text,
    region text,
    name text NOT NULL,
    name_key text NOT NULL,
    code text,
    updated text NOT NULL,
    closed boolean NOT NULL,
    content_hash text NOT NULL,
    data text NOT NULL"""


def schema_version(connection: psycopg.Connection[TupleRow], schema: str) -> int:
    """The version of the store in ``schema``; 0 when the schema or its version table does not exist."""
    table = connection.execute(
        "SELECT to_regclass(format('%%I.schema_version', %s::text))", (schema,)
    ).fetchone()
    if table is None or table[0] is None:
        return 0
    row = connection.execute(
        sql.SQL("SELECT MAX(version) FROM {}.schema_version").format(sql.Identifier(schema))
    ).fetchone()
    return int(row[0] or 0) if row is not None else 0


def migrate(connection: psycopg.Connection[TupleRow], target: Target) -> int:
    """Bring the store up to :data:`SCHEMA_VERSION` (creating its schema if needed); returns the version
    found before. ``connection`` must be in autocommit mode."""
    schema = target.schema
    with translate_errors("read the schema version of", target):
        found = schema_version(connection, schema)
    _refuse_newer(found, target)
    if found == SCHEMA_VERSION:
        return found
    with translate_errors("create or migrate the schema of", target), connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(schema, "migrate"),))
        exists = connection.execute("SELECT to_regnamespace(%s::text)", (schema,)).fetchone()
        if exists is None or exists[0] is None:
            connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        connection.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.schema_version ("
                "version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL)"
            ).format(sql.Identifier(schema))
        )
        current = schema_version(connection, schema)
        _refuse_newer(current, target)
        for migration in MIGRATIONS:
            if migration.version <= current:
                continue
            for statement in migration.statements:
                connection.execute(statement)
            connection.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (%s, %s, now())",
                (migration.version, migration.description),
            )
    return found


def _refuse_newer(found: int, target: Target) -> None:
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the PostgreSQL store {target.display} (schema {target.schema!r}) has schema version {found}, "
            f"but this rorclient only knows versions up to {SCHEMA_VERSION}: it was written by a newer "
            "rorclient; upgrade rorclient to use it"
        )
