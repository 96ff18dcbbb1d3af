"""The default store: one SQLite file (standard-library ``sqlite3``), safe for concurrent readers.

URL
    ``sqlite:///`` followed by the path: ``sqlite:///data/ror.db`` is ``data/ror.db`` relative to the
    working directory, ``sqlite:////var/lib/ror.db`` (four slashes) is the absolute ``/var/lib/ror.db``,
    ``sqlite:///~/ror.db`` is under the home directory. The path is taken literally (no query string, no
    percent-decoding). Missing parent directories are created.

Concurrency
    The file is in WAL mode: readers never block the writer and never see an uncommitted write. Every
    thread reads through a connection of its own; each transaction and bulk load writes through its own
    connection, and writers (threads or processes) take turns on SQLite's lock, waiting up to
    ``busy_timeout`` seconds. Reads made while a transaction is open see the last committed state,
    including in the thread that holds the transaction. Transactions do not nest.

Durability
    ``synchronous=NORMAL``: each commit is atomic; it becomes durable at the next WAL checkpoint, so a
    power cut may lose the last commits (never half of one, never the file).

Bulk loads
    stage the snapshot in a separate SQLite file next to the store (``<file>.staging-<id>``, no journal,
    no fsync) and merge it into the live tables in one transaction; see ``store._sql.sqlite.bulk``.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rorclient._private_files import create_private, private_directory, warn_if_shared
from rorclient.errors import ConfigError, StoreError
from rorclient.models import EntityKind
from rorclient.store import subtree
from rorclient.store._sql.sqlite.bulk import SqliteBulkLoad, clean_abandoned_loads, start_bulk_load
from rorclient.store._sql.sqlite.rows import (
    ENTITY_COLUMNS,
    HEAD_COLUMNS,
    ROW_COLUMNS,
    UPSERT_ON_CONFLICT,
    connect,
    decode_head,
    decode_row,
    live_row,
    translate_errors,
)
from rorclient.store._sql.sqlite.schema import PAGE_SIZE, migrate
from rorclient.store._sql.statements import SQLITE, BookkeepingWrites
from rorclient.store._sql.store import SqlRowAccess, SqlStore
from rorclient.store.base import (
    ChangeKind,
    EntityQuery,
    StoredEntity,
    utcnow,
)

__all__ = ["SqliteStore"]

_URL_PREFIX = "sqlite:///"
_CHUNK = 500  # ids per IN (...) list, well under SQLite's bound-parameter limit
_FETCH = 500  # rows per fetch when streaming


def path_from_url(url: str) -> Path:
    """The file a ``sqlite:///...`` URL names (see the module docstring for the rule)."""
    if not url.startswith(_URL_PREFIX):
        raise ConfigError(
            f"SQLite store URL {url!r} must be sqlite:///relative/path or sqlite:////absolute/path"
        )
    raw = url[len(_URL_PREFIX) :]
    if not raw or raw == ":memory:" or raw.startswith("file:"):
        raise ConfigError(f"SQLite store URL {url!r} names no file; use memory:// for a store in memory")
    return Path(raw).expanduser()


def _create_private_database(path: Path) -> None:
    """Create the database file ``0600`` before SQLite opens it (SQLite gives the WAL and SHM files the
    database's mode); warn about an existing one open to other users."""
    try:
        os.close(create_private(path))
    except FileExistsError:
        warn_if_shared(path, "SQLite store")
    except OSError as error:
        raise StoreError(f"could not create the SQLite store {path}: {error}") from error


class SqliteStore(SqlStore[sqlite3.Connection]):
    """A :class:`~rorclient.store.Store` in one SQLite file. See the module docstring."""

    def __init__(
        self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0, url: str | None = None
    ) -> None:
        self.path = Path(path).expanduser()
        self.url = url or f"{_URL_PREFIX}{self.path}"
        self.busy_timeout = busy_timeout
        self._start_pool()
        try:
            private_directory(self.path.parent)
        except OSError as error:
            raise StoreError(
                f"could not create the directory of the SQLite store {self.path}: {error}"
            ) from error
        _create_private_database(self.path)
        first = self._connect(writer=True)
        try:
            with translate_errors("open", self.path):
                # Only a new, empty file takes it (before WAL): 16 KiB pages halve the I/O of bulk
                # loads (JSON rows of about 1 KB, mostly sequential writes) against the 4 KiB default.
                first.execute(f"PRAGMA page_size = {PAGE_SIZE}")
                first.execute("PRAGMA journal_mode = WAL")
                first.execute("PRAGMA journal_size_limit = 67108864")
                migrate(first, self.path)
                clean_abandoned_loads(first, self.path)
        except BaseException:
            first.close()
            raise
        self._idle_writers.append(first)

    @classmethod
    def from_url(cls, url: str, *, busy_timeout: float = 30.0) -> SqliteStore:
        """Open the store a ``sqlite:///...`` URL names."""
        return cls(path_from_url(url), busy_timeout=busy_timeout, url=url)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    def _connect(self, *, writer: bool) -> sqlite3.Connection:
        return connect(self.path, busy_timeout=self.busy_timeout, writer=writer)

    def _new_reader(self) -> sqlite3.Connection:
        return self._connect(writer=False)

    def _new_writer(self) -> sqlite3.Connection:
        return self._connect(writer=True)

    statements = SQLITE
    row_columns = ROW_COLUMNS

    def _read(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run one read statement and return every row."""
        with translate_errors("read", self.path):
            return self._reader().execute(query, params).fetchall()

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction, for reads made of several statements."""
        connection = self._reader()
        with translate_errors("read", self.path):
            connection.execute("BEGIN")
            try:
                yield connection
            finally:
                connection.execute("COMMIT")

    # ---- reads -----------------------------------------------------------------------------------
    def get(self, kind: EntityKind, id: str, *, include_deleted: bool = False) -> StoredEntity | None:
        with translate_errors("read", self.path):
            row = (
                self._reader()
                .execute(
                    f"SELECT {ROW_COLUMNS} FROM entities WHERE kind = ? AND id = ?",
                    (EntityKind(kind).value, id),
                )
                .fetchone()
            )
        if row is None:
            return None
        stored = decode_row(row)
        return None if stored.deleted and not include_deleted else stored

    def iter_entities(
        self,
        *,
        kind: EntityKind | None = None,
        source: str | None = None,
        include_deleted: bool = True,
    ) -> Iterator[StoredEntity]:
        """Every entity, ordered by kind (legal entities first) then id, streamed from one consistent
        snapshot through a connection of its own (closed when the iterator ends or is closed)."""
        self._check_open()
        where, params = SQLITE.where(EntityQuery(kind=kind, source=source, include_deleted=include_deleted))
        connection = self._connect(writer=False)
        try:
            with translate_errors("read", self.path):
                cursor = connection.execute(
                    f"SELECT {ROW_COLUMNS} FROM entities{where} ORDER BY kind_rank, id", params
                )
                while rows := cursor.fetchmany(_FETCH):
                    yield from (decode_row(row) for row in rows)
        finally:
            connection.close()

    # ---- writes ----------------------------------------------------------------------------------
    @contextmanager
    def transaction(self, *, run_id: str | None = None) -> Iterator[_SqliteTransaction]:
        """One ``BEGIN IMMEDIATE`` transaction: committed when the block ends, rolled back if it raises."""
        self._check_open()
        with self._write_scope():
            connection = self._take_writer()
            try:
                with translate_errors("start a transaction on", self.path):
                    connection.execute("BEGIN IMMEDIATE")
                transaction = _SqliteTransaction(connection, self.path, run_id)
                try:
                    yield transaction
                    transaction._open = False
                    with translate_errors("commit to", self.path):
                        connection.execute("COMMIT")
                except sqlite3.Error as error:
                    _rollback(connection)
                    raise StoreError(f"could not write to the SQLite store {self.path}: {error}") from error
                except BaseException:
                    _rollback(connection)
                    raise
                finally:
                    transaction._open = False
            finally:
                self._give_back(connection)

    @contextmanager
    def bulk_load(self, *, source: str, run_id: str | None = None) -> Iterator[SqliteBulkLoad]:
        """Stage a full snapshot of ``source`` and swap it in at the end (``_sql.sqlite.bulk``)."""
        self._check_open()
        self._refuse_nested("a bulk load")
        load = start_bulk_load(self.path, self._connect(writer=True), source=source, run_id=run_id)
        try:
            yield load
            if not load.aborted:
                with self._write_scope():
                    load.swap()
        finally:
            load.discard()


def _rollback(connection: sqlite3.Connection) -> None:
    if connection.in_transaction:
        connection.execute("ROLLBACK")


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


class _SqliteTransaction(SqlRowAccess, subtree.SubtreeWrites, BookkeepingWrites):
    """The :class:`~rorclient.store.StoreTransaction` of :class:`SqliteStore` (and its
    ``subtree.RowAccess``): every method runs inside the store transaction's connection."""

    def __init__(self, connection: sqlite3.Connection, path: Path, run_id: str | None) -> None:
        self._connection = connection
        self._path = path
        self._run_id = run_id
        self._open = True
        self._source = ""
        self._at = ""

    statements = SQLITE
    head_columns = HEAD_COLUMNS

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        self._execute(sql, params)

    def _select(self, query: str, params: Sequence[Any]) -> Iterable[tuple[Any, ...]]:
        return self._execute(query, params)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        if not self._open:
            raise StoreError("this transaction has ended; open a new one with store.transaction()")
        return self._connection.execute(sql, params)

    def _begin_operation(self, source: str) -> dt.datetime:
        """Remember who logs the next changes, and when."""
        now = utcnow()
        self._source, self._at = source, now.isoformat()
        return now

    # ---- RowAccess -------------------------------------------------------------------------------
    def _heads_of_kind(self, kind: EntityKind, ids: list[str]) -> Iterable[tuple[Any, ...]]:
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            yield from self._execute(
                f"SELECT {HEAD_COLUMNS} FROM entities WHERE kind = ? AND id IN ({marks})",
                (kind.value, *chunk),
            )

    def live_children(self, parent_ids: Collection[str], source: str) -> Iterable[StoredEntity]:
        result: list[StoredEntity] = []
        for chunk in _chunks(sorted(parent_ids)):
            marks = ",".join("?" * len(chunk))
            rows = self._execute(
                f"SELECT {HEAD_COLUMNS} FROM entities "
                f"WHERE parent IN ({marks}) AND source = ? AND deleted_at IS NULL",
                (*chunk, source),
            )
            result += [decode_head(row) for row in rows]
        return result

    def write(self, row: StoredEntity, change: ChangeKind) -> None:
        self._execute(
            f"INSERT INTO entities ({ENTITY_COLUMNS}) VALUES ({','.join('?' * 15)}) {UPSERT_ON_CONFLICT}",
            live_row(row),
        )
        self._log(row, change)

    def tombstone(self, head: StoredEntity, at: dt.datetime) -> None:
        self._execute(
            "UPDATE entities SET deleted_at = ? WHERE kind = ? AND id = ?",
            (at.isoformat(), head.kind.value, head.id),
        )
        self._log(head, ChangeKind.DELETED)

    def _log(self, row: StoredEntity, change: ChangeKind) -> None:
        self._execute(
            "INSERT INTO changes (at, source, kind, id, change, run_id) VALUES (?, ?, ?, ?, ?, ?)",
            (self._at, self._source, row.kind.value, row.id, change.value, self._run_id),
        )
