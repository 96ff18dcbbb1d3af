"""How the PostgreSQL store turns entities into rows and rows back into models.

Times that come from the ROR (``record.updated``, sync watermarks, run and failure times) are kept as
ISO text, exactly as given: the ROR sends naive local times and the store must hand them back unchanged.
Times the store makes itself (``deleted_at``, the change log's ``at``) are ``timestamptz`` in UTC.
"""

from __future__ import annotations

from typing import Any

from rorclient.models import EntityKind
from rorclient.store._sql.rows import (
    code_of,
    decode_head,
    decode_row,
    from_text,
    sortable,
    staged_row,
    to_text,
)
from rorclient.store.base import KIND_ORDER, StoredEntity, name_key

__all__ = [
    "ENTITY_COLUMNS",
    "HEAD_COLUMNS",
    "ROW_COLUMNS",
    "STAGING_COPY_COLUMNS",
    "UPSERT_ENTITY",
    "UPSERT_ON_CONFLICT",
    "decode_head",
    "decode_row",
    "from_text",
    "live_row",
    "sortable",
    "staged_row",
    "to_text",
]

_VALUE_OF_KIND = {kind: kind.value for kind in EntityKind}

#: Columns of ``entities`` in insertion order (see :func:`live_row`).
ENTITY_COLUMNS = (
    "kind, id, kind_rank, source, parent, establishment, region, name, name_key, code, updated, closed, "
    "deleted_at, content_hash, data"
)
#: What :func:`decode_head` reads; :data:`ROW_COLUMNS` adds the entity itself for :func:`decode_row`.
HEAD_COLUMNS = (
    "kind, id, source, parent, establishment, region, name, updated, closed, deleted_at, content_hash"
)
ROW_COLUMNS = HEAD_COLUMNS + ", data::text"
#: Columns of a staging table in the order of :func:`staged_row`.
STAGING_COPY_COLUMNS = (
    "kind, id, kind_rank, parent, establishment, unit_ref, region, name, name_key, code, updated, closed, "
    "content_hash, data"
)

UPSERT_ON_CONFLICT = """ON CONFLICT (kind_rank, id) DO UPDATE SET
    source = excluded.source, parent = excluded.parent, establishment = excluded.establishment,
    region = excluded.region, name = excluded.name, name_key = excluded.name_key, code = excluded.code,
    updated = excluded.updated, closed = excluded.closed, deleted_at = excluded.deleted_at,
    content_hash = excluded.content_hash, data = excluded.data"""
UPSERT_ENTITY = (
    f"INSERT INTO entities ({ENTITY_COLUMNS}) VALUES "
    f"({', '.join(['%s'] * 14)}, %s::jsonb) {UPSERT_ON_CONFLICT}"
)


def live_row(row: StoredEntity) -> tuple[Any, ...]:
    """The parameters of :data:`UPSERT_ENTITY` for ``row``."""
    return (
        row.kind.value,
        row.id,
        KIND_ORDER[row.kind],
        row.source,
        row.parent,
        row.establishment,
        row.region,
        row.name,
        name_key(row.name),
        code_of(row.entity),
        to_text(row.updated),
        row.closed,
        row.deleted_at,
        row.content_hash,
        row.entity.model_dump_json(),
    )
