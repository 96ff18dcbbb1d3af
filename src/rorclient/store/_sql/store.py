""":class:`SqlStore`: what :class:`~rorclient.store.sqlite.SqliteStore` and
:class:`~rorclient.store.postgres.PostgresStore` share — the connection pool (one reader per thread,
idle writers handed from one transaction to the next), closing, the one-write-scope-per-thread rule,
:meth:`find` and the bookkeeping reads — and :class:`SqlRowAccess`, what their transactions share.
Each store gives how it opens a connection and how it reads."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from rorclient.errors import StoreError
from rorclient.models import EntityKind
from rorclient.store._sql.rows import decode_head, decode_row
from rorclient.store._sql.statements import BookkeepingReads, SqlStatements
from rorclient.store.base import EntityQuery, Page, StoredEntity
from rorclient.store.subtree import Key

__all__ = ["SqlRowAccess", "SqlStore"]


class _Connection(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Connection)


class SqlStore(BookkeepingReads, Generic[C]):
    """The base of both SQL stores, over connections of type ``C``; see the module docstring.

    Subclasses call :meth:`_start_pool` first in ``__init__`` and provide :meth:`_new_reader`,
    :meth:`_new_writer`, ``_read``, ``_snapshot`` and the dialect's ``statements`` and ``ROW_COLUMNS``.
    """

    url: str
    row_columns: str

    def _start_pool(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[C] = []
        self._idle_writers: list[C] = []
        self._closed = False

    def _new_reader(self) -> C:
        raise NotImplementedError

    def _new_writer(self) -> C:
        raise NotImplementedError

    def _reusable(self, connection: C) -> bool:
        """Whether a pooled connection may serve again (not closed or broken under us)."""
        return True

    def _also_close(self) -> list[C]:
        """Connections of the store outside the pool, closed with it (called holding ``_lock``)."""
        return []

    # ---- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        """Close every connection; call it once no thread is still using the store."""
        with self._lock:
            self._closed = True
            connections = self._readers + self._idle_writers + self._also_close()
            self._readers, self._idle_writers = [], []
        for connection in connections:
            connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store {self.url} is closed")

    def _reader(self) -> C:
        self._check_open()
        connection: C | None = getattr(self._local, "reader", None)
        if connection is None or not self._reusable(connection):
            connection = self._new_reader()
            with self._lock:
                self._readers.append(connection)
            self._local.reader = connection
        return connection

    # ---- reads -----------------------------------------------------------------------------------
    def find(self, query: EntityQuery) -> Page:
        where, params = self.statements.where(query)
        p = self.statements.placeholder
        with self._snapshot() as connection:
            counted = connection.execute(f"SELECT count(*) FROM entities{where}", params).fetchone()
            rows = connection.execute(
                f"SELECT {self.row_columns} FROM entities{where} ORDER BY kind_rank, id LIMIT {p} OFFSET {p}",
                [*params, query.limit, query.offset],
            ).fetchall()
        total = int(counted[0]) if counted is not None else 0
        items = tuple(decode_row(row) for row in rows)
        end = query.offset + len(items)
        return Page(items=items, total=total, next_offset=end if end < total else None)

    # ---- the writer pool -------------------------------------------------------------------------
    @contextmanager
    def _write_scope(self) -> Iterator[None]:
        self._refuse_nested("a transaction")
        self._local.writing = True
        try:
            yield
        finally:
            self._local.writing = False

    def _refuse_nested(self, what: str) -> None:
        if getattr(self._local, "writing", False):
            raise StoreError(f"cannot open {what} while this thread holds a transaction; they do not nest")

    def _take_writer(self) -> C:
        with self._lock:
            if self._idle_writers:
                return self._idle_writers.pop()
        return self._new_writer()

    def _give_back(self, connection: C) -> None:
        usable = self._reusable(connection)
        with self._lock:
            if usable and not self._closed:
                self._idle_writers.append(connection)
                return
        connection.close()


class SqlRowAccess:
    """The part of ``subtree.RowAccess`` both SQL transactions share: head look-ups grouped by kind and
    the live rows of an establishment. The transaction gives :meth:`_heads_of_kind` and :meth:`_select`
    in its dialect, and its dialect's ``statements`` and ``head_columns``."""

    statements: ClassVar[SqlStatements]
    head_columns: ClassVar[str]

    def _select(self, query: str, params: Sequence[Any]) -> Iterable[tuple[Any, ...]]:
        """Run one read statement inside the transaction."""
        raise NotImplementedError

    def _heads_of_kind(self, kind: EntityKind, ids: list[str]) -> Iterable[tuple[Any, ...]]:
        """The head rows of the entities of ``kind`` among ``ids``."""
        raise NotImplementedError

    def heads(self, keys: Collection[Key]) -> Mapping[Key, StoredEntity]:
        ids_by_kind: dict[EntityKind, list[str]] = defaultdict(list)
        for kind, id_ in keys:
            ids_by_kind[kind].append(id_)
        result: dict[Key, StoredEntity] = {}
        for kind, ids in ids_by_kind.items():
            for row in self._heads_of_kind(kind, ids):
                head = decode_head(row)
                result[(head.kind, head.id)] = head
        return result

    def live_in_establishment(self, establishment_id: str, source: str) -> Iterable[StoredEntity]:
        p = self.statements.placeholder
        rows = self._select(
            f"SELECT {self.head_columns} FROM entities "
            f"WHERE establishment = {p} AND source = {p} AND deleted_at IS NULL",
            (establishment_id, source),
        )
        return [decode_head(row) for row in rows]
