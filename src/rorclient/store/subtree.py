"""The subtree replacement rules, shared by every store (built-in and third-party).

:meth:`StoreTransaction.replace_establishment`, ``replace_unit`` and ``delete_establishment`` have one
meaning whatever the backend; this module computes what they write against :class:`RowAccess`, a small
view of the stored rows that each store implements over its own storage (SQL, dicts, anything). A
third-party store implements :class:`RowAccess` and calls :func:`replace_establishment`,
:func:`replace_unit` and :func:`delete_establishment` (or, when its transaction object is itself the
:class:`RowAccess`, inherits :class:`SubtreeWrites`), and gets the same creates, updates, closures,
moves and tombstones as the built-in stores. See ``docs/stores.md``.

Rules (pinned by :mod:`rorclient.testing.store_conformance`):

- Every entity of the offer is upserted; the change is :func:`change_for` (``classify_change``, plus
  ``updated`` when only the owning source differs). Unchanged rows are not written and not logged.
- The stored ``establishment`` of a unit is its own ``establishment_id``; of an activity or equipment,
  the establishment of its unit in the offer, else the establishment being replaced; of a professional,
  the establishment being replaced (for ``replace_unit``: the unit's establishment).
- Only rows of the same ``source`` are ever tombstoned; a tombstone keeps the entity and its hash.
- The same ``(kind, id)`` twice in one offer: identical copies are merged, differing copies are a
  :class:`DataError`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from typing import Protocol, cast

from rorclient.errors import DataError
from rorclient.models import Entity, EntityKind, Offer
from rorclient.store.base import (
    KIND_ORDER,
    AppliedChange,
    ChangeKind,
    ChangeSet,
    StoredEntity,
    classify_change,
    derived_stored_entity,
)

__all__ = [
    "Key",
    "RowAccess",
    "SubtreeWrites",
    "change_for",
    "delete_establishment",
    "replace_establishment",
    "replace_unit",
]

Key = tuple[EntityKind, str]

_UNIT_CONTENT = (EntityKind.ACTIVITY, EntityKind.EQUIPMENT)


class RowAccess(Protocol):
    """The stored rows as one transaction sees them.

    Rows returned by the read methods may be *heads*: only ``kind``, ``id``, ``parent``,
    ``establishment``, ``source``, ``closed``, ``deleted`` and ``content_hash`` are read from them.
    """

    def heads(self, keys: Collection[Key]) -> Mapping[Key, StoredEntity]:
        """The stored rows (tombstones included) among ``keys``."""
        ...

    def live_in_establishment(self, establishment_id: str, source: str) -> Iterable[StoredEntity]:
        """Live rows of ``source`` whose ``establishment`` is ``establishment_id``."""
        ...

    def live_children(self, parent_ids: Collection[str], source: str) -> Iterable[StoredEntity]:
        """Live rows of ``source`` whose ``parent`` is one of ``parent_ids``."""
        ...

    def write(self, row: StoredEntity, change: ChangeKind) -> None:
        """Insert or overwrite ``row`` (a live row) and log ``change``."""
        ...

    def tombstone(self, head: StoredEntity, at: dt.datetime) -> None:
        """Mark the row of ``head`` deleted at ``at`` (keeping its entity) and log ``deleted``."""
        ...


def change_for(old: StoredEntity | None, new: StoredEntity) -> ChangeKind | None:
    """:func:`classify_change`, except that a row taken over from another source counts as updated."""
    change = classify_change(old, new)
    if change is None and old is not None and old.source != new.source:
        return ChangeKind.UPDATED
    return change


def sort_key(row: StoredEntity) -> tuple[int, str]:
    return KIND_ORDER[row.kind], row.id


def replace_establishment(
    rows: RowAccess,
    offer: Offer,
    *,
    source: str,
    establishment_id: str,
    keep: Collection[str],
    now: dt.datetime,
) -> ChangeSet:
    """See :meth:`StoreTransaction.replace_establishment`."""
    new_rows = _offer_rows(offer, source=source, default_establishment=establishment_id)
    offer_units = {entity_id for kind, entity_id in new_rows if kind is EntityKind.UNIT}

    candidates = {_key(row): row for row in rows.live_in_establishment(establishment_id, source)}
    # The offer is the whole content of each unit it carries, wherever that unit was stored before.
    for row in rows.live_children(offer_units, source):
        if row.kind in _UNIT_CONTENT:
            candidates[_key(row)] = row
    known: dict[Key, StoredEntity] = {}  # stored heads of the offer's entities, already read
    for key in new_rows:
        head = candidates.pop(key, None)
        if head is not None:
            known[key] = head
    kept = _kept_subtrees(candidates, keep)
    doomed = [row for key, row in candidates.items() if key not in kept]

    applied = _upsert(rows, new_rows, known)
    applied += _tombstone(rows, doomed, now)
    return ChangeSet(changes=tuple(applied))


def replace_unit(rows: RowAccess, offer: Offer, *, source: str, unit_id: str, now: dt.datetime) -> ChangeSet:
    """See :meth:`StoreTransaction.replace_unit`."""
    establishment_id = _unit_establishment(rows, offer, unit_id)
    new_rows = _offer_rows(offer, source=source, default_establishment=establishment_id)

    subtree = _offer_subtree(offer, unit_id)
    candidates: dict[Key, StoredEntity] = {}
    root = rows.heads([(EntityKind.UNIT, unit_id)]).get((EntityKind.UNIT, unit_id))
    if root is not None and not root.deleted and root.source == source:
        candidates[_key(root)] = root
    frontier = set(subtree)
    while frontier:
        next_frontier: set[str] = set()
        for row in rows.live_children(frontier, source):
            if row.kind is EntityKind.UNIT:
                candidates[_key(row)] = row
                if row.id not in subtree:
                    subtree.add(row.id)
                    next_frontier.add(row.id)
            elif row.kind in _UNIT_CONTENT:
                candidates[_key(row)] = row
        frontier = next_frontier
    doomed = [row for key, row in candidates.items() if key not in new_rows]

    applied = _upsert(rows, new_rows)
    applied += _tombstone(rows, doomed, now)
    return ChangeSet(changes=tuple(applied))


def delete_establishment(
    rows: RowAccess, establishment_id: str, *, source: str, now: dt.datetime
) -> ChangeSet:
    """See :meth:`StoreTransaction.delete_establishment`."""
    doomed = list(rows.live_in_establishment(establishment_id, source))
    return ChangeSet(changes=tuple(_tombstone(rows, doomed, now)))


# --------------------------------------------------------------------------------------------------


def _key(row: StoredEntity) -> Key:
    return row.kind, row.id


def _offer_rows(offer: Offer, *, source: str, default_establishment: str | None) -> dict[Key, StoredEntity]:
    unit_establishment = {unit.id: unit.establishment_id for unit in offer.units}
    result: dict[Key, StoredEntity] = {}
    for entity in offer.entities():
        row = derived_stored_entity(
            entity,
            source=source,
            establishment=_owner_establishment(entity, unit_establishment, default_establishment),
        )
        key = (entity.kind, entity.id)
        previous = result.get(key)
        if previous is not None and previous.content_hash != row.content_hash:
            raise DataError(
                f"{entity.kind.value} {entity.id!r} appears twice with different content in one offer "
                f"(source {source!r})"
            )
        result[key] = row
    return result


def _owner_establishment(
    entity: Entity, unit_establishment: Mapping[str, str], default: str | None
) -> str | None:
    if entity.kind is EntityKind.ACTIVITY or entity.kind is EntityKind.EQUIPMENT:
        return unit_establishment.get(entity.unit_id, default)
    return default


def _upsert(
    rows: RowAccess, new_rows: Mapping[Key, StoredEntity], known: Mapping[Key, StoredEntity] | None = None
) -> list[AppliedChange]:
    """Write the new rows that differ from the stored ones. ``known``: stored heads of some of them,
    read in this transaction (the live rows of the subtree); only the others are looked up."""
    known = known or {}
    missing = [key for key in new_rows if key not in known]
    old_rows = {**known, **rows.heads(missing)} if missing else known
    applied: list[AppliedChange] = []
    for key, new in new_rows.items():
        change = change_for(old_rows.get(key), new)
        if change is not None:
            rows.write(new, change)
            applied.append(AppliedChange(kind=new.kind, id=new.id, change=change))
    return applied


def _tombstone(rows: RowAccess, doomed: Iterable[StoredEntity], now: dt.datetime) -> list[AppliedChange]:
    applied: list[AppliedChange] = []
    for row in sorted(doomed, key=sort_key):
        rows.tombstone(row, now)
        applied.append(AppliedChange(kind=row.kind, id=row.id, change=ChangeKind.DELETED))
    return applied


def _kept_subtrees(candidates: Mapping[Key, StoredEntity], keep: Collection[str]) -> set[Key]:
    """Candidates protected by ``keep``: the kept units absent from the offer and everything under them."""
    children: defaultdict[str, list[StoredEntity]] = defaultdict(list)
    for row in candidates.values():
        if row.parent is not None and row.kind is not EntityKind.ESTABLISHMENT:
            children[row.parent].append(row)
    stack = [row for row in candidates.values() if row.kind is EntityKind.UNIT and row.id in keep]
    kept: set[Key] = set()
    while stack:
        row = stack.pop()
        if _key(row) in kept:
            continue
        kept.add(_key(row))
        if row.kind is EntityKind.UNIT:
            stack.extend(children.get(row.id, ()))
    return kept


def _unit_establishment(rows: RowAccess, offer: Offer, unit_id: str) -> str | None:
    for unit in offer.units:
        if unit.id == unit_id:
            return unit.establishment_id
    stored = rows.heads([(EntityKind.UNIT, unit_id)]).get((EntityKind.UNIT, unit_id))
    if stored is not None:
        return stored.establishment
    if len(offer.establishments) == 1:
        return offer.establishments[0].id
    return None


def _offer_subtree(offer: Offer, unit_id: str) -> set[str]:
    """``unit_id`` and the ids of the offer's units below it."""
    children: defaultdict[str, list[str]] = defaultdict(list)
    for unit in offer.units:
        if unit.parent_unit_id is not None:
            children[unit.parent_unit_id].append(unit.id)
    subtree = {unit_id}
    stack = [unit_id]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in subtree:
                subtree.add(child)
                stack.append(child)
    return subtree


class SubtreeWrites:
    """The subtree operations of :class:`~rorclient.store.base.StoreTransaction`, for a transaction
    object that is itself the :class:`RowAccess` the rules work on (the SQL stores' transactions)."""

    def _begin_operation(self, source: str) -> dt.datetime:
        """Start one operation for ``source``; returns the time tombstones and the change log record."""
        raise NotImplementedError

    def replace_establishment(
        self,
        offer: Offer,
        *,
        source: str,
        establishment_id: str,
        keep: Collection[str] = (),
    ) -> ChangeSet:
        now = self._begin_operation(source)
        return replace_establishment(
            cast(RowAccess, self), offer, source=source, establishment_id=establishment_id, keep=keep, now=now
        )

    def replace_unit(self, offer: Offer, *, source: str, unit_id: str) -> ChangeSet:
        now = self._begin_operation(source)
        return replace_unit(cast(RowAccess, self), offer, source=source, unit_id=unit_id, now=now)

    def delete_establishment(self, establishment_id: str, *, source: str) -> ChangeSet:
        now = self._begin_operation(source)
        return delete_establishment(cast(RowAccess, self), establishment_id, source=source, now=now)
