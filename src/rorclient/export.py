"""The JSON Lines export: one object per entity, a contract other tools depend on (docs/export.md).

Every line has at least ``kind``, ``id``, ``parent``, ``name``, ``updated`` (ISO 8601), ``closed``,
``deleted``, ``source`` and ``establishment`` (the owning establishment's idNat_Struct; ``null`` for a
legal entity). rorclient adds ``region``, ``deleted_at``, ``level`` (units), ``code`` (activities and
equipment) and, with ``full=True``, ``data``: the whole entity as the models serialise it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

from rorclient.models import EntityKind
from rorclient.nomenclature import Nomenclatures
from rorclient.store.base import Store, StoredEntity

__all__ = ["EXPORT_FIELDS", "export_record", "export_store", "write_jsonl"]

#: The fields every exported line carries, in order.
EXPORT_FIELDS = (
    "kind",
    "id",
    "parent",
    "name",
    "updated",
    "closed",
    "deleted",
    "source",
    "establishment",
    "region",
    "deleted_at",
)


def export_record(
    row: StoredEntity, *, full: bool = False, nomenclatures: Nomenclatures | None = None
) -> dict[str, Any]:
    """The export object for one stored entity."""
    record: dict[str, Any] = {
        "kind": row.kind.value,
        "id": row.id,
        "parent": row.parent,
        "name": row.name,
        "updated": row.updated.isoformat(),
        "closed": row.closed,
        "deleted": row.deleted,
        "source": row.source,
        "establishment": row.establishment,
        "region": row.region,
        "deleted_at": row.deleted_at.isoformat() if row.deleted_at else None,
    }
    entity = row.entity
    if entity.kind is EntityKind.UNIT:
        record["level"] = entity.level.value
    elif entity.kind in (EntityKind.ACTIVITY, EntityKind.EQUIPMENT):
        code = nomenclatures.describe(entity.code) if nomenclatures else entity.code
        record["code"] = code.code
        if code.display:
            record["name"] = code.display
    if full:
        record["data"] = entity.model_dump(mode="json")
    return record


def write_jsonl(
    rows: Iterable[StoredEntity],
    out: TextIO,
    *,
    full: bool = False,
    nomenclatures: Nomenclatures | None = None,
) -> int:
    """Write one JSON object per line; returns the number of lines written."""
    count = 0
    for row in rows:
        out.write(json.dumps(export_record(row, full=full, nomenclatures=nomenclatures), ensure_ascii=False))
        out.write("\n")
        count += 1
    return count


def export_store(
    store: Store,
    out: TextIO,
    *,
    kind: EntityKind | None = None,
    source: str | None = None,
    include_deleted: bool = True,
    full: bool = False,
    nomenclatures: Nomenclatures | None = None,
) -> int:
    """Export a whole store (or one kind / source) as JSON Lines, in constant memory."""
    rows = store.iter_entities(kind=kind, source=source, include_deleted=include_deleted)
    return write_jsonl(rows, out, full=full, nomenclatures=nomenclatures)
