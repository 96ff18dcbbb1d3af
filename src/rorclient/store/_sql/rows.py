"""Row encoding shared by the SQL stores (SQLite and PostgreSQL): text forms of date-times, content
hashes and the staging row of a bulk-loaded entity. Dialect-specific SQL stays in ``sqlite.rows`` and
``postgres.rows``."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

import orjson
from pydantic import ValidationError

from rorclient.errors import StoreError
from rorclient.geography import region_of, region_of_id
from rorclient.models import CLOSED_LOCATION_STATUSES, ENTITY_ADAPTER, Entity, EntityKind
from rorclient.store.base import KIND_ORDER, StoredEntity, constructed_stored_entity, name_key

_VALUE_OF_KIND = {kind: kind.value for kind in EntityKind}  # a dict lookup beats Enum.value
_KIND_OF_VALUE = {kind.value: kind for kind in EntityKind}


class RowBatches:
    """The adding half of both SQL stores' bulk loads: entities become :func:`staged_row` rows (or
    arrive as rows from reader processes), gathered in batches of :attr:`batch_size` and flushed."""

    batch_size: ClassVar[int] = 5_000
    _batch: list[tuple[Any, ...]]
    _count: int

    def _check_active(self) -> None:
        raise NotImplementedError

    def _flush(self) -> None:
        raise NotImplementedError

    def add(self, entity: Entity) -> None:
        self.add_staged_rows((staged_row(entity),))

    def add_many(self, entities: Iterable[Entity]) -> None:
        self.add_staged_rows(staged_row(entity) for entity in entities)

    def add_staged_rows(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Stage rows :func:`staged_row` made (here, or in reader processes)."""
        self._check_active()
        batch = self._batch
        for row in rows:
            batch.append(row)
            self._count += 1
            if len(batch) >= self.batch_size:
                self._flush()

    @property
    def count(self) -> int:
        """Entities added so far."""
        return self._count


def to_text(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def from_text(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def sortable(moment: dt.datetime) -> str:
    """A text that sorts like the instant: aware times in UTC, naive times taken as they are."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


def code_of(entity: Entity) -> str | None:
    """The TRE_R211/TRE_R212 code of an activity or equipment (what ``activity_code`` filters on)."""
    if entity.kind is EntityKind.ACTIVITY or entity.kind is EntityKind.EQUIPMENT:
        return entity.code.code
    return None


def staged_row(entity: Entity) -> tuple[Any, ...]:
    """The staging row of one bulk-loaded entity; both SQL stores stage the same columns, in this order:
    kind, id, kind rank, parent, establishment, unit_ref, region, name, name key, code, updated, closed,
    content hash, data.

    The owning establishment is known here for legal entities, establishments, units and professionals
    listing one; activities, equipment and other professionals carry ``unit_ref`` instead and get their
    unit's establishment at swap time.
    """
    raw = entity.__pydantic_serializer__.to_json(entity)  # model_dump_json() without str round trip
    data = raw.decode()
    establishment: str | None = None
    unit_ref: str | None = None
    code: str | None = None
    if entity.kind is EntityKind.UNIT:
        establishment = entity.establishment_id
    elif entity.kind is EntityKind.ESTABLISHMENT:
        establishment = entity.id
    elif entity.kind is EntityKind.ACTIVITY or entity.kind is EntityKind.EQUIPMENT:
        unit_ref = entity.unit_id
        code = entity.code.code
    elif entity.kind is EntityKind.PROFESSIONAL:
        if entity.establishment_ids:
            establishment = entity.establishment_ids[0]
        elif entity.unit_ids:
            unit_ref = entity.unit_ids[0]
    name = entity.name
    return (
        _VALUE_OF_KIND[entity.kind],
        entity.id,
        KIND_ORDER[entity.kind],
        entity.parent_id,
        establishment,
        unit_ref,
        region_of(entity),
        name,
        name_key(name),
        code,
        entity.record.updated.isoformat(),
        int(entity.closed),
        hashlib.sha256(raw).hexdigest()[:32],
        data,
    )


_ORGANIZATION_KINDS = (EntityKind.LEGAL_ENTITY, EntityKind.ESTABLISHMENT)
_CODED_KINDS = (EntityKind.ACTIVITY, EntityKind.EQUIPMENT)
_JSON_OPTIONS = orjson.OPT_UTC_Z  # pydantic writes UTC as "Z"


def _decimal_json(value: object) -> str:
    if type(value) is Decimal:
        return str(value)  # as pydantic writes a Decimal
    raise TypeError(f"{type(value).__name__} is not a value the reader builds")


def values_row(kind: EntityKind, fields: Mapping[str, Any]) -> tuple[Any, ...]:
    """:func:`staged_row` of the entity whose plain values :func:`rorclient.csd.reader.read_values`
    yields, without building the model: the same columns and the same bytes (the JSON is what pydantic
    writes for the model: keys in field order, UTC as ``Z``, a ``Decimal`` as its string; so the content
    hash is the one every other write path computes). A value JSON cannot hold as pydantic does (an
    integer beyond 64 bits) takes the model's path."""
    try:
        raw = orjson.dumps(fields, default=_decimal_json, option=_JSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return staged_row(ENTITY_ADAPTER.validate_python(fields))
    establishment: str | None = None
    unit_ref: str | None = None
    code: str | None = None
    closed = False
    if kind is EntityKind.UNIT:
        id_ = fields["id"]
        establishment = fields["establishment_id"]
        parent = fields["parent_unit_id"] or establishment
        region = region_of_id(kind, id_)
        name = fields["name"]
        closed = fields["final_closing_date"] is not None or _closed_location(fields["location"])
    elif kind in _CODED_KINDS:
        coded = fields["code"]
        code = coded["code"]
        parent = unit_ref = fields["unit_id"]
        id_ = f"{parent}#{code}"
        region = region_of_id(kind, id_)
        name = coded["display"] or code
    elif kind in _ORGANIZATION_KINDS:
        id_ = fields["id"]
        if kind is EntityKind.ESTABLISHMENT:
            establishment = id_
            parent = fields["legal_entity_id"]
        else:
            parent = None
        region = region_of_id(kind, id_)
        name = fields["name"]
        closed = fields["closing_date"] is not None or _closed_location(fields["location"])
    else:  # a professional
        id_ = fields["id"]
        establishments = fields["establishment_ids"]
        units = fields["unit_ids"]
        if establishments:
            establishment = establishments[0]
        elif units:
            unit_ref = units[0]
        parent = units[0] if units else establishment
        region = region_of_id(EntityKind.UNIT, units[0]) if units else None
        person = fields["person"]
        parts = [part for part in (person["forename"], person["surname"]) if part]
        name = " ".join(parts) if parts else " ".join(person["common_names"])
    return (
        _VALUE_OF_KIND[kind],
        id_,
        KIND_ORDER[kind],
        parent,
        establishment,
        unit_ref,
        region,
        name,
        _name_key(name),
        code,
        fields["record"]["updated"].isoformat(),
        int(closed),
        hashlib.sha256(raw).hexdigest()[:32],
        raw.decode(),
    )


_NAME_KEYS: dict[str, str] = {}
_NAME_KEYS_LIMIT = 4_096


def _name_key(name: str) -> str:
    """:func:`name_key`, remembered: names repeat (activity and equipment labels above all)."""
    key = _NAME_KEYS.get(name)
    if key is None:
        if len(_NAME_KEYS) >= _NAME_KEYS_LIMIT:
            _NAME_KEYS.clear()
        key = _NAME_KEYS[name] = name_key(name)
    return key


def _closed_location(location: Mapping[str, Any] | None) -> bool:
    if location is None:
        return False
    status = location["status"]
    return status is not None and status["code"] in CLOSED_LOCATION_STATUSES


def moment_of(value: dt.datetime | str | None) -> dt.datetime | None:
    """A date-time column as read: text from SQLite, already a ``datetime`` from PostgreSQL."""
    return from_text(value) if isinstance(value, str) else value


def _head_fields(row: tuple[Any, ...]) -> dict[str, Any]:
    """The :class:`StoredEntity` fields of the first 11 columns (:data:`HEAD_COLUMNS`)."""
    kind, id_, source, parent, establishment, region, name, updated, closed, deleted_at, digest = row[:11]
    return {
        "kind": _KIND_OF_VALUE[kind],
        "id": id_,
        "parent": parent,
        "establishment": establishment,
        "source": source,
        "name": name,
        "region": region,
        "updated": dt.datetime.fromisoformat(updated),
        "closed": bool(closed),
        "deleted": deleted_at is not None,
        "deleted_at": moment_of(deleted_at),
        "content_hash": digest,
    }


def decode_head(row: tuple[Any, ...]) -> StoredEntity:
    """A :class:`StoredEntity` without its ``entity`` (read from :data:`HEAD_COLUMNS`), for comparisons:
    nothing validated (the row was written from a validated model); a delta sync reads a few dozen
    heads per establishment, twice (the plan, then the application)."""
    return constructed_stored_entity(_head_fields(row))


def decode_row(row: tuple[Any, ...]) -> StoredEntity:
    """The full :class:`StoredEntity` of a row read with :data:`ROW_COLUMNS`."""
    kind, id_, data = row[0], row[1], row[11]
    try:
        entity = ENTITY_ADAPTER.validate_json(data)
    except ValidationError as error:
        raise StoreError(f"the stored {kind} {id_!r} cannot be read back: {error}") from error
    return StoredEntity(**_head_fields(row), entity=entity)
