"""How the SQLite store turns entities into rows and rows back into models, and its error boundary."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rorclient.errors import StoreError
from rorclient.models import EntityKind
from rorclient.store._sql.rows import code_of, decode_head, decode_row, from_text, staged_row, to_text
from rorclient.store.base import KIND_ORDER, StoredEntity, name_key

__all__ = [
    "ENTITY_COLUMNS",
    "HEAD_COLUMNS",
    "KIND_RANK_OF",
    "ROW_COLUMNS",
    "UPSERT_ON_CONFLICT",
    "code_of",
    "connect",
    "decode_head",
    "decode_row",
    "from_text",
    "live_row",
    "staged_row",
    "to_text",
    "translate_errors",
]

KIND_RANK_OF: dict[EntityKind, int] = dict(KIND_ORDER)
_VALUE_OF_KIND = {kind: kind.value for kind in EntityKind}  # a dict lookup beats Enum.value

#: Columns of ``entities`` in insertion order (see :func:`live_row`).
ENTITY_COLUMNS = (
    "kind, id, kind_rank, source, parent, establishment, region, name, name_key, code, updated, closed, "
    "deleted_at, content_hash, data"
)
#: What :func:`decode_head` reads; :data:`ROW_COLUMNS` adds the entity itself for :func:`decode_row`.
HEAD_COLUMNS = (
    "kind, id, source, parent, establishment, region, name, updated, closed, deleted_at, content_hash"
)
ROW_COLUMNS = HEAD_COLUMNS + ", data"

UPSERT_ON_CONFLICT = """ON CONFLICT (kind, id) DO UPDATE SET
    source = excluded.source, parent = excluded.parent, establishment = excluded.establishment,
    region = excluded.region, name = excluded.name, name_key = excluded.name_key, code = excluded.code,
    updated = excluded.updated, closed = excluded.closed, deleted_at = excluded.deleted_at,
    content_hash = excluded.content_hash, data = excluded.data"""


def live_row(row: StoredEntity) -> tuple[Any, ...]:
    """The ``entities`` row of ``row`` (columns in :data:`ENTITY_COLUMNS` order)."""
    return (
        row.kind.value,
        row.id,
        KIND_RANK_OF[row.kind],
        row.source,
        row.parent,
        row.establishment,
        row.region,
        row.name,
        name_key(row.name),
        code_of(row.entity),
        to_text(row.updated),
        int(row.closed),
        to_text(row.deleted_at),
        row.content_hash,
        row.entity.model_dump_json(),
    )


def connect(path: Path, *, busy_timeout: float, writer: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (the store issues BEGIN/COMMIT itself).

    ``synchronous=NORMAL`` in WAL mode: a commit is atomic and consistent at once, and durable at the
    next checkpoint; a power cut may lose the last transactions but never corrupts the file.
    """
    with translate_errors("open", path):
        connection = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            connection.execute("PRAGMA synchronous = NORMAL")
            if writer:
                connection.execute("PRAGMA cache_size = -32768")
            else:
                connection.execute("PRAGMA query_only = ON")
        except BaseException:
            connection.close()
            raise
    return connection


@contextmanager
def translate_errors(action: str, path: Path) -> Iterator[None]:
    """Turn ``sqlite3`` errors into :class:`StoreError` naming the file and what was being done."""
    try:
        yield
    except sqlite3.Error as error:
        raise StoreError(f"could not {action} the SQLite store {path}: {error}") from error
