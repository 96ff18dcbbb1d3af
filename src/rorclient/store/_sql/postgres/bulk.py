"""Bulk loads of the PostgreSQL store: COPY a snapshot into an UNLOGGED staging table, swap it in at once.

Staging
    Each load has a connection and an UNLOGGED table of its own, ``staging_<load id>`` in the store's
    schema (no WAL, so staging costs no replication traffic and no fsync). It is created in the same
    transaction that registers the load in ``bulk_loads``. Rows are serialised as they arrive and sent
    by ``COPY ... FROM STDIN`` in batches of :data:`BATCH_SIZE`, so memory stays flat whatever the
    snapshot size, and nothing is visible to readers. The staging table has no key while rows are
    added; before the first :meth:`~PostgresBulkLoad.preview` or the swap, an entity given twice is
    found with one aggregate: identical copies are merged, differing copies are a :class:`DataError`.
    An index on ``(kind_rank, id)`` and fresh planner statistics are then built once.

Swap
    One transaction on the store, holding the store's write lock (``pg_advisory_xact_lock``, shared
    with :meth:`PostgresStore.transaction`): log and upsert the staged rows that differ from the live
    ones (``subtree.change_for`` written in SQL), log and tombstone the live rows of the source that the
    snapshot lacks, write the sync state, unregister the load and drop its table. Readers see the
    previous copy until the commit (MVCC). Activities, equipment and professionals without an
    establishment take their unit's, from the snapshot first, else from the live rows.

Crashes
    A load holds a session advisory lock of its own while it runs. When a store opens, a registered load
    whose lock can be taken has lost its connection (its process died, the server restarted): its table
    and registration are removed. PostgreSQL releases the lock of a dead connection by itself, so this
    works whichever host the load ran on.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import suppress
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from rorclient.models import EntityKind
from rorclient.store._sql.bulk import SqlBulkLoad
from rorclient.store._sql.postgres.connect import lock_key, translate_errors
from rorclient.store._sql.postgres.rows import (
    ENTITY_COLUMNS,
    STAGING_COPY_COLUMNS,
)
from rorclient.store._sql.postgres.schema import STAGING_COLUMNS
from rorclient.store._sql.postgres.url import Target
from rorclient.store._sql.rows import RowBatches
from rorclient.store._sql.statements import POSTGRES, sync_state_row
from rorclient.store.base import KIND_ORDER, SHARED_KINDS, ChangeKind, utcnow

__all__ = ["BATCH_SIZE", "PostgresBulkLoad", "clean_abandoned_loads", "start_bulk_load"]

logger = logging.getLogger(__name__)

BATCH_SIZE = RowBatches.batch_size
STAGING_PREFIX = "staging_"
_UNIT_RANK = KIND_ORDER[EntityKind.UNIT]
_OWNED_RANKS = ", ".join(str(rank) for kind, rank in KIND_ORDER.items() if kind not in SHARED_KINDS)

# The staged rows' change against the live rows: ``subtree.change_for`` (``classify_change`` plus the
# source takeover) written in SQL. Owners are resolved on the way (snapshot units first, then live ones).
_CLASSIFIED = f"""WITH resolved AS (
    SELECT s.kind, s.id, s.kind_rank, s.parent, s.closed, s.content_hash,
           COALESCE(s.establishment, su.establishment, lu.establishment) AS establishment
    FROM {{staging}} AS s
    LEFT JOIN {{staging}} AS su
        ON s.unit_ref IS NOT NULL AND su.kind_rank = {_UNIT_RANK} AND su.id = s.unit_ref
    LEFT JOIN entities AS lu
        ON s.unit_ref IS NOT NULL AND lu.kind_rank = {_UNIT_RANK} AND lu.id = s.unit_ref
), classified AS (
    SELECT r.kind, r.id, r.kind_rank, r.establishment, e.id IS NOT NULL AS present, CASE
        WHEN e.id IS NULL OR e.deleted_at IS NOT NULL THEN 'created'
        WHEN e.parent IS DISTINCT FROM r.parent OR e.establishment IS DISTINCT FROM r.establishment
            THEN 'moved'
        WHEN r.closed AND NOT e.closed THEN 'closed'
        WHEN e.closed AND NOT r.closed THEN 'reopened'
        WHEN e.content_hash <> r.content_hash OR e.source <> %(source)s THEN 'updated'
    END AS change
    FROM resolved AS r LEFT JOIN entities AS e ON e.kind_rank = r.kind_rank AND e.id = r.id
)"""
# The live rows of the source that the snapshot lacks.
_GONE = """FROM entities AS e
WHERE e.source = %(source)s AND e.deleted_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM {staging} AS s WHERE s.kind_rank = e.kind_rank AND s.id = e.id)"""
# The live rows of other sources that the snapshot would take over, per source.
_TAKEN = f"""SELECT e.source, count(*) FROM entities AS e
WHERE e.source <> %(source)s AND e.deleted_at IS NULL AND e.kind_rank IN ({_OWNED_RANKS})
  AND EXISTS (SELECT 1 FROM {{staging}} AS s WHERE s.kind_rank = e.kind_rank AND s.id = e.id)
GROUP BY e.source ORDER BY e.source"""


def _query(template: str, staging: sql.Identifier) -> sql.Composed:
    return sql.SQL(template).format(staging=staging)


def start_bulk_load(
    target: Target, connection: psycopg.Connection[TupleRow], *, source: str, run_id: str | None
) -> PostgresBulkLoad:
    """Register a new load of ``source`` and create its staging table; the load owns ``connection``."""
    load_id = uuid.uuid4().hex
    load = PostgresBulkLoad(target, connection, load_id, source, run_id)
    try:
        with translate_errors("start a bulk load on", target):
            connection.execute("SELECT pg_advisory_lock(%s)", (load.lock_key,))
            with connection.transaction():
                connection.execute(
                    "INSERT INTO bulk_loads (load_id, source, staging_table, lock_key, backend_pid, started) "
                    "VALUES (%s, %s, %s, %s, pg_backend_pid(), now())",
                    (load_id, source, load.table_name, load.lock_key),
                )
                connection.execute(
                    sql.SQL("CREATE UNLOGGED TABLE {} ({})").format(load.table, sql.SQL(STAGING_COLUMNS))
                )
    except BaseException:
        load.discard()
        raise
    return load


class PostgresBulkLoad(SqlBulkLoad):
    """The :class:`~rorclient.store.BulkLoad` of :class:`~rorclient.store.postgres.PostgresStore`.

    Use it from one thread at a time. See the module docstring for how staging and the swap work.
    """

    def __init__(
        self,
        target: Target,
        connection: psycopg.Connection[TupleRow],
        load_id: str,
        source: str,
        run_id: str | None,
    ) -> None:
        self._target = target
        self._connection = connection
        self.load_id = load_id
        self.table_name = f"{STAGING_PREFIX}{load_id}"
        self.table = sql.Identifier(self.table_name)
        self.lock_key = lock_key(target.schema, "load", load_id)
        super().__init__(source, run_id)
        self._dirty = False  # rows were staged since the last check for copies
        self._indexed = False

    # ---- BulkLoad --------------------------------------------------------------------------------
    def preview(self) -> dict[ChangeKind, int]:
        """What the swap would change now, counted in SQL; nothing is written to the store."""
        self._check_active()
        self._prepare()
        params = {"source": self._source}
        connection = self._connection
        with translate_errors("preview a bulk load on", self._target), connection.transaction():
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            rows = connection.execute(
                _query(
                    _CLASSIFIED + " SELECT change, count(*) FROM classified "
                    "WHERE change IS NOT NULL GROUP BY change",
                    self.table,
                ),
                params,
            ).fetchall()
            gone = connection.execute(_query("SELECT count(*) " + _GONE, self.table), params).fetchone()
        return self._counts(rows, gone[0] if gone is not None else 0)

    def takeovers(self) -> dict[str, int]:
        """The live rows of other sources the swap would take over, per source; nothing is written."""
        self._check_active()
        self._prepare()
        connection = self._connection
        with translate_errors("preview a bulk load on", self._target), connection.transaction():
            rows = connection.execute(_query(_TAKEN, self.table), {"source": self._source}).fetchall()
        return {source: count for source, count in rows}

    # ---- the swap and the clean-up (called by PostgresStore.bulk_load) ---------------------------
    def swap(self, *, write_lock: int, lock_timeout: float) -> None:
        """Merge the staged snapshot into the live rows in one transaction holding ``write_lock``."""
        self._check_active()
        self._prepare()
        connection = self._connection
        params: dict[str, Any] = {"source": self._source, "at": utcnow(), "run_id": self._run_id}
        with translate_errors("swap a bulk load into", self._target), connection.transaction():
            connection.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(_milliseconds(lock_timeout)))
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (write_lock,))
            params["before"] = _scalar(connection, "SELECT COALESCE(MAX(seq), 0) FROM changes")
            connection.execute(
                _query(
                    "CREATE TEMPORARY TABLE changed ON COMMIT DROP AS "
                    + _CLASSIFIED
                    + " SELECT kind, id, kind_rank, establishment, present, change FROM classified "
                    "WHERE change IS NOT NULL",
                    self.table,
                ),
                params,
            )
            connection.execute("ANALYZE changed")
            connection.execute(
                "INSERT INTO changes (seq, at, source, kind, id, change, run_id) "
                "SELECT %(before)s + row_number() OVER (ORDER BY kind_rank, id), %(at)s, %(source)s, "
                "kind, id, change, %(run_id)s FROM changed",
                params,
            )
            # Rows already stored (tombstones included) are updated and new ones inserted: two plain
            # statements, which PostgreSQL runs faster than one INSERT ... ON CONFLICT.
            connection.execute(
                _query(
                    "UPDATE entities AS e SET source = %(source)s, parent = s.parent, "
                    "establishment = c.establishment, region = s.region, name = s.name, "
                    "name_key = s.name_key, code = s.code, updated = s.updated, closed = s.closed, "
                    "deleted_at = NULL, content_hash = s.content_hash, data = s.data::jsonb "
                    "FROM changed AS c JOIN {staging} AS s ON s.kind_rank = c.kind_rank AND s.id = c.id "
                    "WHERE c.present AND e.kind_rank = c.kind_rank AND e.id = c.id",
                    self.table,
                ),
                params,
            )
            connection.execute(
                _query(
                    f"INSERT INTO entities ({ENTITY_COLUMNS}) "
                    "SELECT s.kind, s.id, s.kind_rank, %(source)s, s.parent, c.establishment, s.region, "
                    "s.name, s.name_key, s.code, s.updated, s.closed, NULL, s.content_hash, s.data::jsonb "
                    "FROM changed AS c JOIN {staging} AS s ON s.kind_rank = c.kind_rank AND s.id = c.id "
                    "WHERE NOT c.present",
                    self.table,
                ),
                params,
            )
            connection.execute(
                _query(
                    "CREATE TEMPORARY TABLE gone ON COMMIT DROP AS SELECT e.kind, e.kind_rank, e.id " + _GONE,
                    self.table,
                ),
                params,
            )
            params["upserted"] = params["before"] + _scalar(connection, "SELECT count(*) FROM changed")
            connection.execute(
                "INSERT INTO changes (seq, at, source, kind, id, change, run_id) "
                "SELECT %(upserted)s + row_number() OVER (ORDER BY kind_rank, id), %(at)s, %(source)s, "
                "kind, id, 'deleted', %(run_id)s FROM gone",
                params,
            )
            connection.execute(
                "UPDATE entities AS e SET deleted_at = %(at)s FROM gone AS g "
                "WHERE e.kind_rank = g.kind_rank AND e.id = g.id",
                params,
            )
            if self._sync_state is not None:
                connection.execute(POSTGRES.upsert_sync_state, sync_state_row(self._sync_state))
            counted = connection.execute(
                "SELECT change, count(*) FROM changed GROUP BY change "
                "UNION ALL SELECT 'deleted', count(*) FROM gone"
            ).fetchall()
            connection.execute("DELETE FROM bulk_loads WHERE load_id = %s", (self.load_id,))
            connection.execute(sql.SQL("DROP TABLE {}").format(self.table))
        self._finish(counted)

    def discard(self) -> None:
        """Drop the staging table and the registration (if the swap did not already), release the load's
        lock and close its connection; idempotent. What a broken connection leaves behind is removed
        when a store next opens (see the module docstring)."""
        if self._discarded:
            return
        self._discarded = self._finished = True
        self._batch.clear()
        connection = self._connection
        try:
            if not connection.closed and not connection.broken:
                try:
                    with connection.transaction():
                        connection.execute("DELETE FROM bulk_loads WHERE load_id = %s", (self.load_id,))
                        connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self.table))
                    connection.execute("SELECT pg_advisory_unlock(%s)", (self.lock_key,))
                except psycopg.Error as error:
                    logger.warning(
                        "could not remove bulk load %s of %s: %s", self.load_id, self._target.display, error
                    )
        finally:
            connection.close()

    # ---- internals -------------------------------------------------------------------------------
    def _flush(self) -> None:
        if not self._batch:
            return
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(self.table, sql.SQL(STAGING_COPY_COLUMNS))
        with (
            translate_errors("stage a bulk load in", self._target),
            self._connection.cursor() as cursor,
            cursor.copy(statement) as copy,
        ):
            for row in self._batch:
                copy.write_row(row)
        self._batch.clear()
        self._dirty = True

    def _prepare(self) -> None:
        """Flush the last batch; merge identical copies of an entity and refuse differing ones; index the
        staging table and gather its statistics the first time."""
        self._flush()
        if not self._dirty:
            return
        connection = self._connection
        table = self.table
        with translate_errors("check a bulk load on", self._target), connection.transaction():
            copies = connection.execute(
                sql.SQL(
                    "SELECT min(kind), id, kind_rank, min(content_hash) <> max(content_hash) FROM {} "
                    "GROUP BY kind_rank, id HAVING count(*) > 1 ORDER BY 4 DESC, kind_rank, id"
                ).format(table)
            ).fetchall()
            if copies and copies[0][3]:
                raise self._conflict(copies[0][0], copies[0][1])
            if copies:
                connection.execute(
                    sql.SQL(
                        "DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM (SELECT s.ctid, row_number() "
                        "OVER (PARTITION BY s.kind_rank, s.id) AS copy FROM {table} AS s "
                        "JOIN unnest(%s::smallint[], %s::text[]) AS d (kind_rank, id) "
                        "ON s.kind_rank = d.kind_rank AND s.id = d.id) AS numbered WHERE copy > 1)"
                    ).format(table=table),
                    ([rank for _, _, rank, _ in copies], [id_ for _, id_, _, _ in copies]),
                )
            if not self._indexed:
                connection.execute(
                    sql.SQL("CREATE INDEX {} ON {} (kind_rank, id)").format(
                        sql.Identifier(f"{self.table_name}_key"), table
                    )
                )
                self._indexed = True
            connection.execute(sql.SQL("ANALYZE {}").format(table))
        self._dirty = False


def _scalar(connection: psycopg.Connection[TupleRow], query: str) -> int:
    row = connection.execute(query).fetchone()
    return int(row[0]) if row is not None else 0


def _milliseconds(seconds: float) -> sql.Literal:
    return sql.Literal(f"{max(1, round(seconds * 1000))}ms")


def clean_abandoned_loads(connection: psycopg.Connection[TupleRow], target: Target) -> None:
    """Remove the staging tables and registrations of loads whose connection is gone (module docstring).

    Best effort: a role without the rights to drop them only gets a warning in the log.
    """
    try:
        # Tables are listed before registrations are read: a load registers and creates its table in
        # one transaction, so a table seen here whose load is not registered below is an orphan.
        tables = {
            name
            for (name,) in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE %s",
                (target.schema, STAGING_PREFIX.replace("_", r"\_") + "%"),
            )
        }
        registered = connection.execute("SELECT load_id, staging_table, lock_key FROM bulk_loads").fetchall()
        claimed: set[str] = set()
        for load_id, table, key in registered:
            taken = connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if taken is None or not taken[0]:
                claimed.add(table)
                continue
            claimed.add(table)  # handled here
            try:
                logger.warning("removing bulk load %s abandoned in %s", load_id, target.display)
                with connection.transaction():
                    connection.execute("DELETE FROM bulk_loads WHERE load_id = %s", (load_id,))
                    connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
            finally:
                connection.execute("SELECT pg_advisory_unlock(%s)", (key,))
        for table in tables - claimed:
            with suppress(psycopg.errors.UndefinedTable):
                connection.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))
    except psycopg.Error as error:
        logger.warning(
            "could not remove abandoned bulk loads of %s: %s", target.display, target.scrub(str(error))
        )
