"""Bulk loads of the SQLite store: stream an initial snapshot straight into the live tables, or stage a
snapshot next to the store and merge it in, in one transaction either way.

Streaming (a source with no row in the store: its first load, the largest one)
    The load takes the store's write lock when it starts (``BEGIN IMMEDIATE``) and, if the source has
    no row in ``entities`` (live or tombstone), keeps that transaction open and inserts each batch
    straight into ``entities``: no staging copy, no classification (every row is ``created``), no second
    write. Readers keep seeing the previous state until the commit (WAL); a crash or an error rolls
    everything back. Other writers wait for the lock meanwhile (``busy_timeout``) instead of only during
    the swap. A row whose entity already has a row of another source (a takeover, a tombstone, a legal
    entity shared by design) is not inserted: it goes to the staging table and is classified and merged
    at the swap as below, so the breaker and ``takeovers()`` see it. A second copy of an entity the load
    already wrote is dropped if identical and a :class:`DataError` if not. Activities, equipment and
    professionals whose unit was written before them take its establishment on insert; the others are
    resolved at the swap. The change log is written at the swap, in kind and id order, as below.

Staging
    Each load writes to its own SQLite file, ``<store file>.staging-<load id>``, attached to the load's
    connection as ``staging``. It has no journal and no fsync (it is disposable) and its writes never
    take the store's lock, so readers and other writers carry on while a large extraction is staged.
    Rows go in by ``executemany`` in batches of :data:`BATCH_SIZE`, serialised as they arrive, so memory
    stays flat whatever the snapshot size. The staging table has no key while rows are added; a unique
    index is built once, before the first :meth:`~SqliteBulkLoad.preview` or the swap, and that is where
    an entity given twice shows up: identical copies are merged (an extraction may repeat a legal entity
    for each of its establishments), differing copies are a :class:`DataError` (a snapshot cannot say
    two things about one entity).

Swap
    One ``BEGIN IMMEDIATE`` transaction on the store (a streamed load's own, still open): log and
    upsert the staged rows that differ from the live ones (``change_for`` written in SQL), log and
    tombstone the live rows of the source that the snapshot lacks, write the sync state, unregister the
    load. Readers see the previous copy until the commit. Activities, equipment and professionals
    without an establishment take their unit's, from the snapshot first, else from the live rows.

Crashes
    A load registers itself in ``bulk_loads`` (host, pid) before creating its staging file. When a store
    opens, loads whose process is gone (same host, POSIX) or that started more than a day ago (elsewhere)
    lose their staging file and registration, and staging files that no load claims are removed. A
    streamed load's rows were never committed: SQLite drops them with the crashed transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import sqlite3
import threading
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

from rorclient._private_files import create_private
from rorclient.errors import StoreError
from rorclient.models import EntityKind
from rorclient.store._sql.bulk import SqlBulkLoad
from rorclient.store._sql.rows import RowBatches
from rorclient.store._sql.sqlite.rows import (
    ENTITY_COLUMNS,
    UPSERT_ON_CONFLICT,
    translate_errors,
)
from rorclient.store._sql.sqlite.schema import PAGE_SIZE, STAGING_DDL, STAGING_INDEX
from rorclient.store._sql.statements import SQLITE, sync_state_row
from rorclient.store.base import KIND_ORDER, SHARED_KINDS, ChangeKind, utcnow

__all__ = ["BATCH_SIZE", "SqliteBulkLoad", "clean_abandoned_loads", "start_bulk_load"]

logger = logging.getLogger(__name__)

BATCH_SIZE = RowBatches.batch_size
_STREAMING_CACHE_KIB = -16_384  # negative: KiB (PRAGMA cache_size)
_FOREIGN_LOAD_MAX_AGE = dt.timedelta(days=1)

# Loads running in this process, whatever store object started them. A registered load carrying this
# process's pid but missing here was left by an earlier process that had the same pid (a restarted container).
_RUNNING: set[str] = set()
_RUNNING_LOCK = threading.Lock()

_UNIT_RANK = KIND_ORDER[EntityKind.UNIT]
_OWNED_RANKS = ", ".join(str(rank) for kind, rank in KIND_ORDER.items() if kind not in SHARED_KINDS)
_INSERT_STAGED = "INSERT INTO staging.staged VALUES (" + ",".join("?" * 14) + ")"
# A staged row (14 columns, then the source as ?15) inserted straight into the live table; an activity,
# equipment or professional takes the establishment of its unit if this load already wrote it. An entity
# that has a row already is left alone (the row count says so): see ``SqliteBulkLoad._stream``.
# (VALUES, not INSERT ... SELECT: half the cost per row.)
_INSERT_LIVE = f"""INSERT INTO main.entities ({ENTITY_COLUMNS})
VALUES (?1, ?2, ?3, ?15, ?4, COALESCE(?5, (SELECT u.establishment FROM main.entities AS u
    WHERE ?6 IS NOT NULL AND u.kind = '{EntityKind.UNIT.value}' AND u.id = ?6 AND u.source = ?15)),
    ?7, ?8, ?9, ?10, ?11, ?12, NULL, ?13, ?14)
ON CONFLICT (kind, id) DO NOTHING"""
# Streamed rows whose establishment comes from a unit, resolved at the swap if the insert could not.
_UNIT_REFS_DDL = """CREATE TABLE IF NOT EXISTS staging.unit_refs (
    kind TEXT NOT NULL, id TEXT NOT NULL, unit_ref TEXT NOT NULL
)"""
_UNRESOLVED = f"""SELECT u.establishment, r.kind, r.id FROM staging.unit_refs AS r
JOIN main.entities AS e ON e.kind = r.kind AND e.id = r.id
JOIN main.entities AS u ON u.kind = '{EntityKind.UNIT.value}' AND u.id = r.unit_ref
WHERE e.establishment IS NULL AND e.source = :source AND u.establishment IS NOT NULL"""

_KIND_OF_RANK = (
    "CASE e.kind_rank "
    + " ".join(f"WHEN {rank} THEN '{kind.value}'" for kind, rank in KIND_ORDER.items())
    + " END"
)
# The staged rows' change against the live rows: ``subtree.change_for`` (``classify_change`` plus the
# source takeover) written in SQL. Owners are resolved on the way (snapshot units first, then live ones).
# Every join on the live rows goes through the narrow ``entities_scan`` index, never the JSON rows.
_CLASSIFIED = f"""WITH resolved AS (
    SELECT s.kind, s.id, s.kind_rank, s.parent, s.closed, s.content_hash,
           COALESCE(s.establishment, su.establishment, lu.establishment) AS establishment
    FROM staging.staged AS s
    LEFT JOIN staging.staged AS su
        ON s.unit_ref IS NOT NULL AND su.kind_rank = {_UNIT_RANK} AND su.id = s.unit_ref
    LEFT JOIN main.entities AS lu
        ON s.unit_ref IS NOT NULL AND lu.kind_rank = {_UNIT_RANK} AND lu.id = s.unit_ref
), classified AS (
    SELECT r.kind, r.id, r.kind_rank, r.establishment, CASE
        WHEN e.id IS NULL OR e.deleted_at IS NOT NULL THEN 'created'
        WHEN e.parent IS NOT r.parent OR e.establishment IS NOT r.establishment THEN 'moved'
        WHEN r.closed AND NOT e.closed THEN 'closed'
        WHEN e.closed AND NOT r.closed THEN 'reopened'
        WHEN e.content_hash <> r.content_hash OR e.source <> :source THEN 'updated'
    END AS change
    FROM resolved AS r LEFT JOIN main.entities AS e ON e.kind_rank = r.kind_rank AND e.id = r.id
)"""
# The live rows of the source that the snapshot lacks.
_GONE = """FROM main.entities AS e
WHERE e.source = :source AND e.deleted_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM staging.staged AS s WHERE s.kind_rank = e.kind_rank AND s.id = e.id)"""
# The live rows of other sources that the snapshot would take over, per source.
_TAKEN = f"""SELECT e.source, count(*) FROM main.entities AS e
WHERE e.source <> :source AND e.deleted_at IS NULL AND e.kind_rank IN ({_OWNED_RANKS})
  AND EXISTS (SELECT 1 FROM staging.staged AS s WHERE s.kind_rank = e.kind_rank AND s.id = e.id)
GROUP BY e.source ORDER BY e.source"""
# The same for a streamed load, whose staged rows are only those that met another source's row.
_TAKEN_BY_STAGED = f"""SELECT e.source, count(*) FROM staging.staged AS s
JOIN main.entities AS e ON e.kind = s.kind AND e.id = s.id
WHERE e.source <> :source AND e.deleted_at IS NULL AND e.kind_rank IN ({_OWNED_RANKS})
GROUP BY e.source ORDER BY e.source"""
# A streamed load's change log: its own rows (all created) and the staged rows that changed, in order.
_STREAMED_CHANGES = f"""INSERT INTO main.changes (at, source, kind, id, change, run_id)
SELECT :at, :source, kind, id, change, :run_id FROM (
    SELECT {_KIND_OF_RANK} AS kind, e.id AS id, e.kind_rank AS kind_rank, 'created' AS change
    FROM main.entities AS e INDEXED BY entities_scan WHERE e.source = :source
    UNION ALL
    SELECT kind, id, kind_rank, change FROM staging.changed
) ORDER BY kind_rank, id"""


def start_bulk_load(
    db_path: Path, connection: sqlite3.Connection, *, source: str, run_id: str | None
) -> SqliteBulkLoad:
    """Register a new load of ``source`` and attach its staging file to ``connection`` (which it owns)."""
    load_id = uuid.uuid4().hex
    staging_path = _staging_path(db_path, load_id)
    load = SqliteBulkLoad(db_path, connection, load_id, staging_path, source, run_id)
    try:
        with translate_errors("start a bulk load on", db_path):
            with _RUNNING_LOCK:
                _RUNNING.add(load_id)
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(
                "INSERT INTO bulk_loads (load_id, source, staging_file, host, pid, started) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (load_id, source, staging_path.name, socket.gethostname(), os.getpid(), utcnow().isoformat()),
            )
            connection.execute("COMMIT")
            load._registered = True
            os.close(create_private(staging_path))  # a whole snapshot: private, like the store
            connection.execute("ATTACH DATABASE ? AS staging", (str(staging_path),))
            connection.execute(f"PRAGMA staging.page_size = {PAGE_SIZE}")
            connection.execute("PRAGMA staging.journal_mode = MEMORY")
            connection.execute("PRAGMA staging.synchronous = OFF")
            connection.execute(STAGING_DDL)
            connection.execute(_UNIT_REFS_DDL)
            # The write lock, kept for the whole load if the source has no row yet (module docstring).
            connection.execute("BEGIN IMMEDIATE")
            owned = connection.execute(
                "SELECT 1 FROM main.entities INDEXED BY entities_scan WHERE source = ? LIMIT 1", (source,)
            ).fetchone()
            if owned is None:
                load.streaming = True
                # The page cache fills while reader processes still run (a staging load filled it only
                # at its swap, after them), and an index build sorts in as much memory again: half the
                # writers' 32 MiB keeps a national load with two readers under its memory budget.
                connection.execute(f"PRAGMA main.cache_size = {_STREAMING_CACHE_KIB}")
                load.defer_indexes()
            else:
                connection.execute("COMMIT")
    except BaseException:
        load.discard()
        raise
    return load


class SqliteBulkLoad(SqlBulkLoad):
    """The :class:`~rorclient.store.BulkLoad` of :class:`~rorclient.store.sqlite.SqliteStore`.

    Use it from one thread at a time. See the module docstring for how staging and the swap work.
    """

    def __init__(
        self,
        db_path: Path,
        connection: sqlite3.Connection,
        load_id: str,
        staging_path: Path,
        source: str,
        run_id: str | None,
    ) -> None:
        self._db_path = db_path
        self._connection = connection
        self._load_id = load_id
        self._staging_path = staging_path
        super().__init__(source, run_id)
        self._indexed = False
        self._registered = False  # in bulk_loads, until the swap or discard() removes it
        #: Rows go straight into the live table, in the transaction opened by start_bulk_load().
        self.streaming = False
        self._streamed = 0  # rows inserted into the live table
        self._deferred_indexes: list[tuple[str, str]] = []  # (name, SQL) dropped until the swap

    # ---- BulkLoad --------------------------------------------------------------------------------
    def preview(self) -> dict[ChangeKind, int]:
        """What the swap would change now, counted in SQL; nothing is written to the store."""
        self._check_active()
        self._prepare()
        connection = self._connection
        classify = (
            f"{_CLASSIFIED} SELECT change, count(*) FROM classified WHERE change IS NOT NULL GROUP BY change"
        )
        with translate_errors("preview a bulk load on", self._db_path):
            if self.streaming:  # the source had no row: nothing goes, every streamed row is new
                rows = connection.execute(classify, {"source": self._source}).fetchall()
                counts = self._counts(rows, 0)
                counts[ChangeKind.CREATED] += self._streamed
                return counts
            connection.execute("BEGIN")
            try:
                rows = connection.execute(classify, {"source": self._source}).fetchall()
                gone = connection.execute(f"SELECT count(*) {_GONE}", {"source": self._source}).fetchone()[0]
            finally:
                connection.execute("COMMIT")
        return self._counts(rows, gone)

    def takeovers(self) -> dict[str, int]:
        """The live rows of other sources the swap would take over, per source; nothing is written."""
        self._check_active()
        self._prepare()
        with translate_errors("preview a bulk load on", self._db_path):
            taken = _TAKEN_BY_STAGED if self.streaming else _TAKEN
            rows = self._connection.execute(taken, {"source": self._source}).fetchall()
        return {source: count for source, count in rows}

    # ---- the swap and the clean-up (called by SqliteStore.bulk_load) -----------------------------
    def swap(self) -> None:
        """Merge the staged snapshot into the live rows in one transaction."""
        self._check_active()
        self._prepare()
        connection = self._connection
        params = {"source": self._source, "at": utcnow().isoformat(), "run_id": self._run_id}
        with translate_errors("swap a bulk load into", self._db_path):
            if not self.streaming:
                connection.execute("BEGIN IMMEDIATE")
            try:
                before = connection.execute("SELECT COALESCE(MAX(seq), 0) FROM main.changes").fetchone()[0]
                self._restore_indexes()
                # The changed rows and their owners, kept in staging so that filling the live table
                # reads nothing from it (no temporary copy of the JSON rows).
                connection.execute("DROP TABLE IF EXISTS staging.changed")
                connection.execute(
                    f"CREATE TABLE staging.changed AS {_CLASSIFIED} "
                    "SELECT kind, id, kind_rank, establishment, change FROM classified "
                    "WHERE change IS NOT NULL ORDER BY kind_rank, id",
                    params,
                )
                if self.streaming:  # before the staged rows take the source's name
                    connection.execute(_STREAMED_CHANGES, params)
                else:
                    connection.execute(
                        "INSERT INTO main.changes (at, source, kind, id, change, run_id) "
                        "SELECT :at, :source, kind, id, change, :run_id FROM staging.changed ORDER BY rowid",
                        params,
                    )
                connection.execute(
                    f"INSERT INTO main.entities ({ENTITY_COLUMNS}) "
                    "SELECT s.kind, s.id, s.kind_rank, :source, s.parent, c.establishment, s.region, s.name, "
                    "s.name_key, s.code, s.updated, s.closed, NULL, s.content_hash, s.data "
                    "FROM staging.changed AS c "
                    "JOIN staging.staged AS s ON s.kind_rank = c.kind_rank AND s.id = c.id "
                    f"WHERE true {UPSERT_ON_CONFLICT}",
                    params,
                )
                if self.streaming:
                    # Units came after what they own, or from the staged rows: owners resolved now.
                    connection.executemany(
                        "UPDATE main.entities SET establishment = ? WHERE kind = ? AND id = ?",
                        connection.execute(_UNRESOLVED, params).fetchall(),
                    )
                else:  # the source's live rows the snapshot lacks (a streamed load's source had none)
                    tombstones_from = connection.execute(
                        "SELECT COALESCE(MAX(seq), 0) FROM main.changes"
                    ).fetchone()[0]
                    connection.execute(
                        "INSERT INTO main.changes (at, source, kind, id, change, run_id) "
                        f"SELECT :at, :source, {_KIND_OF_RANK}, e.id, 'deleted', :run_id {_GONE} "
                        "ORDER BY e.kind_rank, e.id",
                        params,
                    )
                    connection.execute(
                        "UPDATE main.entities SET deleted_at = :at WHERE (kind, id) IN "
                        "(SELECT kind, id FROM main.changes WHERE seq > :from)",
                        {**params, "from": tombstones_from},
                    )
                if self._sync_state is not None:
                    connection.execute(SQLITE.upsert_sync_state, sync_state_row(self._sync_state))
                connection.execute("DELETE FROM main.bulk_loads WHERE load_id = ?", (self._load_id,))
                counted = connection.execute(
                    "SELECT change, count(*) FROM main.changes WHERE seq > ? GROUP BY change", (before,)
                ).fetchall()
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        self._registered = False
        self._finish(counted)

    def discard(self) -> None:
        """Drop the staging file and the registration (if the swap did not already); idempotent."""
        if self._discarded:
            return
        self._discarded = self._finished = True
        self._batch.clear()
        connection = self._connection
        try:
            with suppress(sqlite3.Error):
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                connection.execute("DETACH DATABASE staging")
            if self._registered:
                try:
                    connection.execute("DELETE FROM bulk_loads WHERE load_id = ?", (self._load_id,))
                except sqlite3.Error as error:  # the crashed-load clean-up at the next open finishes the job
                    logger.warning(
                        "could not unregister bulk load %s of %s: %s", self._load_id, self._db_path, error
                    )
        finally:
            connection.close()
            with _RUNNING_LOCK:
                _RUNNING.discard(self._load_id)
            _remove(self._staging_path)

    # ---- internals -------------------------------------------------------------------------------
    def defer_indexes(self) -> None:
        """On a streamed load into an empty ``entities`` table, drop its secondary indexes until the
        swap: building an index once from sorted rows costs a fraction of inserting into it row by row
        in the snapshot's order (ids come in no particular order). Part of the load's transaction: a
        crash or a rollback puts them back."""
        connection = self._connection
        if connection.execute("SELECT 1 FROM main.entities LIMIT 1").fetchone() is not None:
            return
        self._deferred_indexes = connection.execute(
            "SELECT name, sql FROM main.sqlite_master "
            "WHERE type = 'index' AND tbl_name = 'entities' AND sql IS NOT NULL ORDER BY name"
        ).fetchall()
        for name, _ in self._deferred_indexes:
            connection.execute(f'DROP INDEX main."{name}"')

    def _restore_indexes(self) -> None:
        for _, sql in self._deferred_indexes:
            self._connection.execute(sql)
        self._deferred_indexes = []

    def _flush(self) -> None:
        if not self._batch:
            return
        connection = self._connection
        # A savepoint: a transaction of its own when staging, a nested one inside a streamed load's.
        connection.execute("SAVEPOINT batch")
        try:
            if self.streaming:
                self._stream(self._batch)
            else:
                self._stage(self._batch)
            connection.execute("RELEASE batch")
        except BaseException as error:
            with suppress(sqlite3.Error):
                connection.execute("ROLLBACK TO batch")
                connection.execute("RELEASE batch")
            if isinstance(error, sqlite3.Error):
                action = "write a bulk load into" if self.streaming else "stage a bulk load next to"
                raise StoreError(f"could not {action} {self._db_path}: {error}") from error
            raise
        self._batch.clear()

    def _stage(self, rows: list[tuple[Any, ...]]) -> None:
        connection = self._connection
        connection.execute("SAVEPOINT staged")
        try:
            connection.executemany(_INSERT_STAGED, rows)
        except sqlite3.IntegrityError:
            # Only once the index exists (after a preview): merge copies row by row.
            connection.execute("ROLLBACK TO staged")
            self._insert_merging_copies(rows)
        connection.execute("RELEASE staged")

    def _stream(self, batch: list[tuple[Any, ...]]) -> None:
        """Insert ``batch`` into the live table; rows whose entity has a row already are sorted out one
        by one: a copy of a row of this load (dropped if identical, else a :class:`DataError`), or a row
        of another source, live or tombstone (staged: the swap classifies it)."""
        connection = self._connection
        source = self._source
        rows = [(*row, source) for row in batch]
        inserted = connection.executemany(_INSERT_LIVE, rows).rowcount
        if inserted == len(rows):
            written = batch
        else:
            connection.execute("ROLLBACK TO batch")
            written, staged = [], []
            for row in rows:
                if connection.execute(_INSERT_LIVE, row).rowcount:
                    written.append(row)
                    continue
                owner, digest = connection.execute(
                    "SELECT source, content_hash FROM main.entities WHERE kind = ? AND id = ?", row[:2]
                ).fetchone()
                if owner != source:
                    staged.append(row[:14])
                elif digest != row[12]:
                    raise self._conflict(row[0], row[1])
            if staged:
                self._stage(staged)
        refs = [(row[0], row[1], row[5]) for row in written if row[4] is None and row[5] is not None]
        if refs:
            connection.executemany("INSERT INTO staging.unit_refs VALUES (?, ?, ?)", refs)
        self._streamed += len(written)

    def _insert_merging_copies(self, rows: list[tuple[Any, ...]]) -> None:
        for row in rows:
            try:
                self._connection.execute(_INSERT_STAGED, row)
            except sqlite3.IntegrityError:
                staged = self._connection.execute(
                    "SELECT content_hash FROM staging.staged WHERE kind_rank = ? AND id = ?", (row[2], row[1])
                ).fetchone()
                if staged is None or staged[0] != row[12]:
                    raise self._conflict(row[0], row[1]) from None

    def _prepare(self) -> None:
        """Flush the last batch and build the staging index if not done yet, merging identical copies
        of an entity and refusing differing ones."""
        self._flush()
        if self._indexed:
            return
        connection = self._connection
        with translate_errors("index a bulk load next to", self._db_path):
            try:
                connection.execute(STAGING_INDEX)
            except sqlite3.IntegrityError:
                conflict = connection.execute(
                    "SELECT kind, id FROM staging.staged GROUP BY kind_rank, id "
                    "HAVING count(DISTINCT content_hash) > 1 LIMIT 1"
                ).fetchone()
                if conflict is not None:
                    raise self._conflict(*conflict) from None
                connection.execute("SAVEPOINT merge")
                connection.execute(
                    "DELETE FROM staging.staged WHERE rowid NOT IN "
                    "(SELECT MIN(rowid) FROM staging.staged GROUP BY kind_rank, id)"
                )
                connection.execute("RELEASE merge")
                connection.execute(STAGING_INDEX)
        self._indexed = True


def _staging_path(db_path: Path, load_id: str) -> Path:
    return db_path.with_name(f"{db_path.name}.staging-{load_id}")


def _remove(path: Path) -> None:
    for each in (path, path.with_name(path.name + "-journal")):
        with suppress(FileNotFoundError):
            each.unlink()


def clean_abandoned_loads(connection: sqlite3.Connection, db_path: Path) -> None:
    """Remove what crashed bulk loads left: their registration and staging files (see module docstring)."""
    # Files are listed before registrations are read: a load registers before creating its file, so a
    # file seen here whose load is not registered below cannot belong to a load that is starting.
    files = {path.name: path for path in db_path.parent.glob(f"{db_path.name}.staging-*")}
    registered = connection.execute(
        "SELECT load_id, staging_file, host, pid, started FROM bulk_loads"
    ).fetchall()
    claimed: set[str] = set()
    for load_id, staging_file, host, pid, started in registered:
        if not _abandoned(load_id, host, pid, started):
            claimed.add(staging_file)
            continue
        logger.warning("removing the staging of bulk load %s abandoned in %s", load_id, db_path)
        connection.execute("DELETE FROM bulk_loads WHERE load_id = ?", (load_id,))
        _remove(db_path.with_name(staging_file))
    for name, path in files.items():
        if name not in claimed and not name.endswith("-journal"):
            _remove(path)


def _abandoned(load_id: str, host: str, pid: int, started: str) -> bool:
    with _RUNNING_LOCK:
        if load_id in _RUNNING:
            return False
    if host == socket.gethostname() and os.name == "posix":
        return pid == os.getpid() or not _process_alive(pid)
    return utcnow() - dt.datetime.fromisoformat(started) > _FOREIGN_LOAD_MAX_AGE


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
