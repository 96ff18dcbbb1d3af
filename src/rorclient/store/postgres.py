"""The PostgreSQL store (psycopg 3): one copy of the ROR shared by any number of application instances.

Install it with ``pip install 'rorclient[postgres]'``.

URL
    ``postgresql://user:password@host:port/database`` (``postgres://`` too), any libpq URL: other query
    parameters (``sslmode=verify-full``, ``connect_timeout=10``, ``application_name``...) go to libpq
    unchanged, and what the URL leaves out comes from libpq's environment (``PGHOST``, ``PGPASSWORD``,
    ``~/.pgpass``...). ``?schema=name`` (rorclient's own parameter, default ``public``) puts the store's
    tables in that schema, which is created if missing: several stores can share one database.
    The password never shows: ``store.url``, ``repr(store)``, log lines and error messages carry
    ``***`` instead (see :func:`redact_url`). Prefer ``PGPASSWORD`` or a ``.pgpass`` file to a password in
    the URL all the same.

Schema
    Created and migrated by rorclient when the store opens (``schema_version`` table, see
    ``_sql.postgres.schema``);
    a schema written by a newer rorclient is refused with :class:`~rorclient.errors.SchemaVersionError`.

Concurrency
    Reads go through one connection per thread, in autocommit; reads made of several statements
    (``find``, ``stats``) run in a ``REPEATABLE READ`` read-only transaction, and ``iter_entities`` streams
    one snapshot through a connection of its own. Readers never block writers and never see an
    uncommitted write, including in the thread that holds a transaction. Writers (threads, processes,
    hosts) take turns: every transaction and every bulk-load swap holds the store's write lock
    (``pg_advisory_xact_lock``) until it commits, waiting up to ``lock_timeout`` seconds for it, so the
    change log's sequence numbers follow commit order and have no gaps. Transactions do not nest.

Durability
    A commit is durable when PostgreSQL says so (``synchronous_commit``, replication: the server's
    settings); rorclient changes none of them. Bulk-load staging tables are UNLOGGED (lost in a server
    crash, which only loses the load in progress).

Bulk loads
    ``COPY`` into an UNLOGGED staging table, then one swap transaction; see ``store._sql.postgres.bulk``.

Single writer
    :meth:`PostgresStore.writer_lock` is a session advisory lock that outlives transactions: whoever
    holds ``writer_lock("sync")`` is the only sync process of the store, while any number of instances
    read. PostgreSQL releases it when the holder's connection ends (process killed, host gone).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg import IsolationLevel, sql
from psycopg.rows import TupleRow

from rorclient.errors import ConfigError, StoreError
from rorclient.models import EntityKind
from rorclient.store import subtree
from rorclient.store._sql.postgres.bulk import PostgresBulkLoad, clean_abandoned_loads, start_bulk_load
from rorclient.store._sql.postgres.connect import connect, lock_key, translate_errors
from rorclient.store._sql.postgres.rows import (
    HEAD_COLUMNS,
    ROW_COLUMNS,
    UPSERT_ENTITY,
    decode_head,
    decode_row,
    live_row,
)
from rorclient.store._sql.postgres.schema import migrate, schema_version
from rorclient.store._sql.postgres.url import Target, parse_url, redact_url
from rorclient.store._sql.statements import POSTGRES, BookkeepingWrites
from rorclient.store._sql.store import SqlRowAccess, SqlStore
from rorclient.store.base import (
    KIND_ORDER,
    ChangeKind,
    EntityQuery,
    StoredEntity,
    utcnow,
)

__all__ = ["PostgresStore", "redact_url"]

Connection = psycopg.Connection[TupleRow]

_FETCH = 2_000  # rows per round trip when streaming


class PostgresStore(SqlStore[Connection]):
    """A :class:`~rorclient.store.Store` in a PostgreSQL schema. See the module docstring.

    ``lock_timeout`` is how long a writer waits for another writer's transaction, in seconds, before
    giving up with a :class:`StoreError`.
    """

    def __init__(self, url: str, *, lock_timeout: float = 30.0) -> None:
        self._target: Target = parse_url(url)
        self.url = self._target.display
        self.schema = self._target.schema
        self.lock_timeout = lock_timeout
        self._write_key = lock_key(self.schema, "write")
        self._start_pool()
        self._held: dict[str, Connection] = {}
        first = connect(self._target)
        try:
            migrate(first, self._target)
            clean_abandoned_loads(first, self._target)
        except BaseException:
            first.close()
            raise
        self._idle_writers.append(first)

    @staticmethod
    def exists(url: str) -> bool:
        """Whether ``url`` names a store already created (its schema has rorclient's tables); creates
        nothing. Raises :class:`StoreError` when the server cannot be reached."""
        target = parse_url(url)
        connection = connect(target)
        try:
            with translate_errors("read the schema version of", target):
                return schema_version(connection, target.schema) > 0
        finally:
            connection.close()

    @classmethod
    def from_url(cls, url: str, *, lock_timeout: float = 30.0) -> PostgresStore:
        """Open the store a ``postgresql://...`` URL names."""
        return cls(url, lock_timeout=lock_timeout)

    # ---- lifecycle -------------------------------------------------------------------------------
    def _also_close(self) -> list[Connection]:
        """The connections of writer locks still held: closing them releases the locks."""
        return list(self._held.values())

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    def _new_reader(self) -> Connection:
        connection = connect(self._target)
        connection.isolation_level = IsolationLevel.REPEATABLE_READ
        connection.read_only = True
        return connection

    def _new_writer(self) -> Connection:
        return connect(self._target)

    def _reusable(self, connection: Connection) -> bool:
        return not connection.closed and not connection.broken

    statements = POSTGRES
    row_columns = ROW_COLUMNS

    def _read(self, query: str, params: Sequence[Any] = ()) -> list[TupleRow]:
        """Run one read statement (its own snapshot) and return every row."""
        with translate_errors("read", self._target):
            return self._reader().execute(query, params).fetchall()

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """A read-only REPEATABLE READ transaction, for reads made of several statements."""
        connection = self._reader()
        with translate_errors("read", self._target), connection.transaction():
            yield connection

    # ---- reads -----------------------------------------------------------------------------------
    def get(self, kind: EntityKind, id: str, *, include_deleted: bool = False) -> StoredEntity | None:
        rows = self._read(
            f"SELECT {ROW_COLUMNS} FROM entities WHERE kind_rank = %s AND id = %s",
            (KIND_ORDER[EntityKind(kind)], id),
        )
        if not rows:
            return None
        stored = decode_row(rows[0])
        return None if stored.deleted and not include_deleted else stored

    def iter_entities(
        self,
        *,
        kind: EntityKind | None = None,
        source: str | None = None,
        include_deleted: bool = True,
    ) -> Iterator[StoredEntity]:
        """Every entity, ordered by kind (legal entities first) then id, streamed from one consistent
        snapshot through a server-side cursor on a connection of its own (closed when the iterator ends
        or is closed)."""
        self._check_open()
        where, params = POSTGRES.where(EntityQuery(kind=kind, source=source, include_deleted=include_deleted))
        connection = connect(self._target, autocommit=False)
        connection.isolation_level = IsolationLevel.REPEATABLE_READ
        connection.read_only = True
        try:
            with translate_errors("read", self._target), connection.cursor(name="iter_entities") as cursor:
                cursor.execute(f"SELECT {ROW_COLUMNS} FROM entities{where} ORDER BY kind_rank, id", params)
                while rows := cursor.fetchmany(_FETCH):
                    yield from (decode_row(row) for row in rows)
        finally:
            connection.close()

    # ---- writes ----------------------------------------------------------------------------------
    @contextmanager
    def transaction(self, *, run_id: str | None = None) -> Iterator[_PostgresTransaction]:
        """One transaction holding the store's write lock: committed when the block ends, rolled back if
        it raises."""
        self._check_open()
        with self._write_scope():
            self._check_writer_locks()
            connection = self._take_writer()
            try:
                with translate_errors("write to", self._target), connection.transaction():
                    connection.execute(
                        sql.SQL("SET LOCAL lock_timeout = {}").format(_milliseconds(self.lock_timeout))
                    )
                    connection.execute("SELECT pg_advisory_xact_lock(%s)", (self._write_key,))
                    last = connection.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()
                    transaction = _PostgresTransaction(connection, run_id, int(last[0]) if last else 0)
                    try:
                        yield transaction
                        transaction.flush()
                    finally:
                        transaction._open = False
            finally:
                self._give_back(connection)

    @contextmanager
    def bulk_load(self, *, source: str, run_id: str | None = None) -> Iterator[PostgresBulkLoad]:
        """Stage a full snapshot of ``source`` and swap it in at the end (``_sql.postgres.bulk``)."""
        self._check_open()
        self._refuse_nested("a bulk load")
        load = start_bulk_load(self._target, connect(self._target), source=source, run_id=run_id)
        try:
            yield load
            if not load.aborted:
                with self._write_scope():
                    self._check_writer_locks()
                    load.swap(write_lock=self._write_key, lock_timeout=self.lock_timeout)
        finally:
            load.discard()

    @contextmanager
    def writer_lock(self, name: str = "sync", *, wait: bool | float = True) -> Iterator[bool]:
        """Hold the store-wide lock ``name``; yields whether it was acquired.

        ``wait=True`` waits as long as it takes, ``wait=False`` (or ``0``) does not wait at all, a number
        waits up to that many seconds; when the lock could not be had, the block runs with ``False``.
        The lock is a PostgreSQL session advisory lock on a connection of its own, kept until the block
        ends: any process on any host opening the same store (same database and schema) contends for it,
        and PostgreSQL releases it when the holder's connection ends, even if the holder was killed.
        Should the connection be lost while the block runs, every write of this store object then fails
        with :class:`StoreError` (another process may have taken over). Holding the lock does not stop
        other writers: it is for processes that agree to take it (the sync daemon takes ``"sync"``).
        Locks do not nest: a store holding ``name`` may not ask for it again.
        """
        self._check_open()
        timeout = _wait_seconds(wait)
        with self._lock:
            if name in self._held:
                raise StoreError(f"this store already holds the writer lock {name!r} of {self.url}")
        key = lock_key(self.schema, "writer", name)
        connection = connect(self._target)
        try:
            with translate_errors(f"take the writer lock {name!r} of", self._target):
                acquired = _acquire(connection, key, timeout)
            if not acquired:
                yield False
                return
            with self._lock:
                self._held[name] = connection
            try:
                yield True
            finally:
                with self._lock:
                    self._held.pop(name, None)
                with suppress(psycopg.Error):
                    connection.execute("SELECT pg_advisory_unlock(%s)", (key,))
        finally:
            connection.close()

    def _check_writer_locks(self) -> None:
        """Refuse to write if a writer lock this store holds was lost with its connection."""
        with self._lock:
            held = list(self._held.items())
        for name, connection in held:
            try:
                connection.execute("SELECT 1")
            except psycopg.Error as error:
                raise StoreError(
                    f"the writer lock {name!r} of {self.url} was lost with its connection "
                    f"({self._target.scrub(str(error).strip())}); another process may hold it now"
                ) from None


def _wait_seconds(wait: bool | float) -> float | None:
    """``None`` to wait forever, else the number of seconds to wait (0: just try)."""
    if wait is True:
        return None
    if wait is False:
        return 0.0
    if not isinstance(wait, int | float) or wait != wait or wait < 0:
        raise ConfigError(f"wait must be True, False or a number of seconds >= 0, got {wait!r}")
    return float(wait)


def _acquire(connection: Connection, key: int, timeout: float | None) -> bool:
    if timeout is None:
        connection.execute("SELECT pg_advisory_lock(%s)", (key,))
        return True
    if timeout < 0.001:
        row = connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        return bool(row and row[0])
    connection.execute(sql.SQL("SET lock_timeout = {}").format(_milliseconds(timeout)))
    try:
        connection.execute("SELECT pg_advisory_lock(%s)", (key,))
    except psycopg.errors.LockNotAvailable:
        return False
    finally:
        connection.execute("RESET lock_timeout")
    return True


def _milliseconds(seconds: float) -> sql.Literal:
    return sql.Literal(f"{max(1, round(seconds * 1000))}ms")


_INSERT_CHANGE = (
    "INSERT INTO changes (seq, at, source, kind, id, change, run_id) VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
_TOMBSTONE = "UPDATE entities SET deleted_at = %s WHERE kind_rank = %s AND id = %s"


class _PostgresTransaction(SqlRowAccess, subtree.SubtreeWrites, BookkeepingWrites):
    """The :class:`~rorclient.store.StoreTransaction` of :class:`PostgresStore` (and its
    ``subtree.RowAccess``). Writes are queued and sent in batches (``executemany``, pipelined) before
    the next read and at commit, so replacing a large establishment costs a few round trips."""

    def __init__(self, connection: Connection, run_id: str | None, last_seq: int) -> None:
        self._connection = connection
        self._run_id = run_id
        self._seq = last_seq
        self._open = True
        self._queued: list[tuple[str, tuple[Any, ...]]] = []
        self._source = ""
        self._at = utcnow()

    def _check_open(self) -> None:
        if not self._open:
            raise StoreError("this transaction has ended; open a new one with store.transaction()")

    statements = POSTGRES
    head_columns = HEAD_COLUMNS

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        self._queue(sql, params)

    def _queue(self, statement: str, params: tuple[Any, ...]) -> None:
        self._check_open()
        self._queued.append((statement, params))

    def flush(self) -> None:
        """Send the queued writes, each run of one statement as one ``executemany``."""
        queued, self._queued = self._queued, []
        start = 0
        with self._connection.cursor() as cursor:
            while start < len(queued):
                statement = queued[start][0]
                end = start
                while end < len(queued) and queued[end][0] == statement:
                    end += 1
                cursor.executemany(statement, [params for _, params in queued[start:end]])
                start = end

    def _select(self, query: str, params: Sequence[Any]) -> Iterable[tuple[Any, ...]]:
        return self._fetch(query, params)

    def _fetch(self, query: str, params: Sequence[Any]) -> list[TupleRow]:
        self._check_open()
        self.flush()
        return self._connection.execute(query, params).fetchall()

    def _begin_operation(self, source: str) -> dt.datetime:
        """Remember who logs the next changes, and when."""
        self._check_open()
        self._source, self._at = source, utcnow()
        return self._at

    # ---- RowAccess -------------------------------------------------------------------------------
    def _heads_of_kind(self, kind: EntityKind, ids: list[str]) -> Iterable[tuple[Any, ...]]:
        return self._fetch(
            f"SELECT {HEAD_COLUMNS} FROM entities WHERE kind_rank = %s AND id = ANY(%s)",
            (KIND_ORDER[kind], ids),
        )

    def live_children(self, parent_ids: Collection[str], source: str) -> Iterable[StoredEntity]:
        if not parent_ids:
            return []
        rows = self._fetch(
            f"SELECT {HEAD_COLUMNS} FROM entities "
            "WHERE parent = ANY(%s) AND source = %s AND deleted_at IS NULL",
            (sorted(parent_ids), source),
        )
        return [decode_head(row) for row in rows]

    def write(self, row: StoredEntity, change: ChangeKind) -> None:
        self._queue(UPSERT_ENTITY, live_row(row))
        self._log(row, change)

    def tombstone(self, head: StoredEntity, at: dt.datetime) -> None:
        self._queue(_TOMBSTONE, (at, KIND_ORDER[head.kind], head.id))
        self._log(head, ChangeKind.DELETED)

    def _log(self, row: StoredEntity, change: ChangeKind) -> None:
        self._seq += 1
        self._queue(
            _INSERT_CHANGE,
            (self._seq, self._at, self._source, row.kind.value, row.id, change.value, self._run_id),
        )
