"""The store contract: what every local store (SQLite, PostgreSQL, memory, third-party) provides.

A store holds the entities of one or more *sources* (a regional ROR, an open-data file set), keyed by
``(kind, id)``. It never forgets silently: an entity that disappears becomes a *tombstone* (``deleted``
with ``deleted_at``), every applied change is appended to a change log with a monotonic sequence, and
the sync state of each source is written in the same transaction as the data it describes.

Writes go through two context managers:

- :meth:`Store.transaction` — small atomic changes: replace one establishment's subtree, one unit's
  subtree, record sync state, pending establishments and run reports. All or nothing.
- :meth:`Store.bulk_load` — a full snapshot of one source (an extraction, open-data files), written to a
  staging generation in batches and swapped in at the end; readers keep seeing the previous copy until
  the swap commits. Entities of that source absent from the snapshot become tombstones.

The behaviour is pinned by :mod:`rorclient.testing.store_conformance`, which every store must pass.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import unicodedata
import weakref
from collections.abc import Collection, Iterable, Iterator
from contextlib import AbstractContextManager
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from rorclient.geography import region_of
from rorclient.models import Entity, EntityKind, Offer

__all__ = [
    "SHARED_KINDS",
    "AppliedChange",
    "BreakerLatch",
    "BulkLoad",
    "Change",
    "ChangeKind",
    "ChangeSet",
    "EntityQuery",
    "Page",
    "PendingEstablishment",
    "RunReport",
    "Store",
    "StoreStats",
    "StoreTransaction",
    "StoredEntity",
    "SyncState",
    "classify_change",
    "content_hash",
    "name_key",
    "stored_entity",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ChangeKind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    CLOSED = "closed"
    REOPENED = "reopened"
    MOVED = "moved"
    DELETED = "deleted"


class StoredEntity(_Model):
    """One entity as the store holds it: the model plus what the store derived and tracks.

    ``parent`` is the owner's business id (the legal entity of an establishment, the parent unit or the
    establishment of a unit, the unit of an activity or equipment). ``establishment`` is the
    idNat_Struct of the establishment whose subtree the entity belongs to (``None`` for legal
    entities; an establishment's own id for an establishment).
    """

    kind: EntityKind
    id: str
    parent: str | None
    establishment: str | None
    source: str
    name: str
    region: str | None
    updated: dt.datetime
    closed: bool
    deleted: bool = False
    deleted_at: dt.datetime | None = None
    content_hash: str
    entity: Entity = Field(discriminator="kind")


class AppliedChange(_Model):
    kind: EntityKind
    id: str
    change: ChangeKind


class Change(AppliedChange):
    """An entry of the store's change log."""

    seq: int
    at: dt.datetime
    source: str
    run_id: str | None = None


class ChangeSet(_Model):
    """What one write did, entity by entity."""

    changes: tuple[AppliedChange, ...] = ()

    def counts(self) -> dict[ChangeKind, int]:
        result = dict.fromkeys(ChangeKind, 0)
        for change in self.changes:
            result[change.change] += 1
        return result

    def __len__(self) -> int:
        return len(self.changes)


class SyncState(_Model):
    """Where a source stands: data is complete up to ``watermark`` (server-side time)."""

    source: str
    watermark: dt.datetime | None = None
    taken_at: dt.datetime
    last_full_pull: dt.datetime | None = None


class PendingEstablishment(_Model):
    """An establishment listed by Notif that could not be applied yet; retried first next cycle."""

    source: str
    establishment_id: str
    error: str
    attempts: int = 1
    first_failed: dt.datetime
    last_failed: dt.datetime


class BreakerLatch(_Model):
    """A tripped safety breaker, latched for its source until an operator decides: a forced run
    (``sync --force``, ``pull --force``, or the next run after ``rorclient breaker accept``) or
    ``rorclient breaker reset`` releases it. While it is latched and not accepted, the daemon applies
    nothing from that source."""

    source: str
    run_id: str
    """The blocked run (see :meth:`Store.runs`)."""
    operation: str
    tripped_at: dt.datetime
    deletions: int
    closures: int
    limit: int
    live: int
    reason: str
    """The blocked run's message."""
    accepted: bool = False
    """An operator accepted the stopped changes (``rorclient breaker accept``): the next pull or sync runs
    forced, and releases the latch when it ends well."""


class RunReport(_Model):
    run_id: str
    operation: str
    source: str | None = None
    started: dt.datetime
    finished: dt.datetime | None = None
    status: str = "success"
    counts: dict[str, int] = Field(default_factory=dict)
    entities: int = 0
    pending: int = 0
    bytes: int = 0
    error: str | None = None


class EntityQuery(_Model):
    """Filters for :meth:`Store.find`. Every filter left ``None`` matches everything.

    ``activity_code`` matches activities with that TRE_R211 code and units that offer one.
    ``name_contains`` is a case-insensitive substring match on the name; accents are ignored too (both
    sides are compared through :func:`name_key`).
    """

    kind: EntityKind | None = None
    source: str | None = None
    region: str | None = None
    establishment: str | None = None
    parent: str | None = None
    activity_code: str | None = None
    closed: bool | None = None
    name_contains: str | None = None
    include_deleted: bool = False
    limit: int = Field(default=100, ge=1, le=10_000)
    offset: int = Field(default=0, ge=0)


class Page(_Model):
    items: tuple[StoredEntity, ...]
    total: int
    next_offset: int | None = None


class StoreStats(_Model):
    """Counts of live entities per kind and source, and of tombstones."""

    by_kind: dict[str, int] = Field(default_factory=dict)
    by_source: dict[str, int] = Field(default_factory=dict)
    deleted: int = 0
    last_change_seq: int = 0


@runtime_checkable
class StoreTransaction(Protocol):
    """Writes inside one atomic transaction (see :meth:`Store.transaction`).

    A row belongs to one source at a time: writing an entity another source holds takes it over
    (reported as ``updated`` when nothing else changed), and a write only ever tombstones rows of its own
    source. The same ``(kind, id)`` twice in one offer: identical copies count once, differing copies
    are a :class:`~rorclient.errors.DataError`.
    """

    def replace_establishment(
        self,
        offer: Offer,
        *,
        source: str,
        establishment_id: str,
        keep: Collection[str] = (),
    ) -> ChangeSet:
        """Make the store's subtree of ``establishment_id`` equal to ``offer``.

        Upserts the legal entity, the establishment and every unit, activity, equipment and professional
        of the offer; entities the store holds under this establishment that the offer lacks become
        tombstones, except unit ids in ``keep`` (units known to have moved to an establishment applied
        later in the same cycle). A unit present in the offer but held under another establishment is
        *moved*, never deleted. Re-applying the same offer changes nothing and reports nothing.
        """
        ...

    def replace_unit(self, offer: Offer, *, source: str, unit_id: str) -> ChangeSet:
        """Make the subtree rooted at ``unit_id`` (the unit, its descendants and their activities and
        equipment) equal to ``offer``; entities above the unit in the offer are upserted too."""
        ...

    def delete_establishment(self, establishment_id: str, *, source: str) -> ChangeSet:
        """Tombstone an establishment and everything under it (the ROR no longer exposes it)."""
        ...

    def set_sync_state(self, state: SyncState) -> None: ...

    def set_pending(self, item: PendingEstablishment) -> None:
        """Record a failed establishment. If it is already pending, the entry keeps its ``first_failed``,
        takes ``error`` and ``last_failed`` from ``item`` and its ``attempts`` grows by one (``item.attempts``
        only seeds a new entry)."""
        ...

    def clear_pending(self, source: str, establishment_id: str) -> None: ...

    def latch_breaker(self, latch: BreakerLatch) -> None:
        """Latch the breaker of ``latch.source`` (a newer latch replaces the source's previous one)."""
        ...

    def release_breaker(self, source: str) -> None:
        """Release the breaker of ``source`` (nothing happens when it is not latched)."""
        ...

    def record_run(self, report: RunReport) -> None: ...


@runtime_checkable
class BulkLoad(Protocol):
    """A full snapshot of one source being written (see :meth:`Store.bulk_load`)."""

    def add(self, entity: Entity) -> None:
        """Stage one entity. Given again, an identical copy counts once and a differing copy is a
        :class:`~rorclient.errors.DataError` (raised here or when the ``with`` block exits)."""
        ...

    def add_many(self, entities: Iterable[Entity]) -> None: ...

    @property
    def count(self) -> int:
        """Entities added so far."""
        ...

    def preview(self) -> dict[ChangeKind, int]:
        """What the swap would change, counted per change kind, before committing anything."""
        ...

    def takeovers(self) -> dict[str, int]:
        """The live (not deleted) rows held by OTHER sources that the swap would take over, counted per
        former source (sources with none left out), before committing anything; rows of the
        :data:`SHARED_KINDS` are not counted. Writing a row moves it to the loading source; rorclient
        refuses such a load unless forced."""
        ...

    def set_sync_state(self, state: SyncState) -> None:
        """Record this state in the same transaction as the swap."""
        ...

    def abort(self) -> None:
        """Discard the staged snapshot; leaving the ``with`` block then changes nothing."""
        ...

    @property
    def result(self) -> dict[ChangeKind, int]:
        """After the swap: what it changed, per change kind."""
        ...


@runtime_checkable
class Store(Protocol):
    """A local copy of the ROR offer. See the module docstring for the guarantees."""

    url: str

    def close(self) -> None: ...

    def __enter__(self) -> Store: ...

    def __exit__(self, *exc_info: object) -> None: ...

    # ---- reads -----------------------------------------------------------------------------------
    def get(self, kind: EntityKind, id: str, *, include_deleted: bool = False) -> StoredEntity | None: ...

    def find(self, query: EntityQuery) -> Page: ...

    def iter_entities(
        self,
        *,
        kind: EntityKind | None = None,
        source: str | None = None,
        include_deleted: bool = True,
    ) -> Iterator[StoredEntity]:
        """Every entity, ordered by kind (legal entities first) then id, in constant memory."""
        ...

    def stats(self) -> StoreStats: ...

    def changes(self, since: int = 0, limit: int | None = None) -> list[Change]:
        """Change-log entries with ``seq > since``, oldest first."""
        ...

    def sync_state(self, source: str) -> SyncState | None: ...

    def sync_states(self) -> list[SyncState]: ...

    def pending(self, source: str | None = None) -> list[PendingEstablishment]: ...

    def runs(self, limit: int = 20) -> list[RunReport]:
        """Most recent runs first."""
        ...

    def breaker_latches(self, source: str | None = None) -> list[BreakerLatch]:
        """Latched safety breakers (of ``source``, or of every source), ordered by source."""
        ...

    # ---- writes ----------------------------------------------------------------------------------
    def transaction(self, *, run_id: str | None = None) -> AbstractContextManager[StoreTransaction]: ...

    def bulk_load(self, *, source: str, run_id: str | None = None) -> AbstractContextManager[BulkLoad]: ...


# --------------------------------------------------------------------------------------------------
# Helpers shared by store implementations
# --------------------------------------------------------------------------------------------------

KIND_ORDER: dict[EntityKind, int] = {kind: index for index, kind in enumerate(EntityKind)}

SHARED_KINDS: frozenset[EntityKind] = frozenset({EntityKind.LEGAL_ENTITY, EntityKind.PROFESSIONAL})
"""Kinds that regional sources legitimately hold in turn (a legal entity with establishments in two
regions, a professional working in both): :meth:`BulkLoad.takeovers` does not count them, nor does the
engine's takeover check of delta cycles and refreshes."""


def content_hash(entity: Entity) -> str:
    """A digest of everything the entity says; equal hashes mean nothing changed.

    The digest of the entity's JSON as stored (``model_dump_json()``'s bytes, taken from the serializer
    without the round trip through ``str``): stores written by earlier versions hold the same digests,
    so an unchanged entity never reads as updated. Changing the encoding changes every digest.
    """
    key = id(entity)
    cached = _digests.get(key)
    if cached is not None and cached[0]() is entity:
        return cached[1]
    digest = hashlib.sha256(entity.__pydantic_serializer__.to_json(entity)).hexdigest()[:32]
    if len(_digests) >= _DIGESTS_LIMIT:
        _digests.clear()
    _digests[key] = (weakref.ref(entity, functools.partial(_forget_digest, key)), digest)
    return digest


# Digests of live entities, by identity: a delta sync hashes every entity of an offer twice (the plan,
# then the application), and entity models are frozen, so the second time is a look-up. An entry goes
# when its entity does (or all at once past the limit, which bounds the memory to a few MB).
_digests: dict[int, tuple[weakref.ref[Entity], str]] = {}
_DIGESTS_LIMIT = 65_536


def _forget_digest(key: int, reference: weakref.ref[Entity]) -> None:
    cached = _digests.get(key)
    if cached is not None and cached[0] is reference:
        _digests.pop(key, None)


def stored_entity(
    entity: Entity,
    *,
    source: str,
    establishment: str | None,
    deleted_at: dt.datetime | None = None,
) -> StoredEntity:
    """Derive the stored form of ``entity``. ``establishment`` is the owning establishment's id (the
    caller knows it: for an activity it is its unit's establishment)."""
    return StoredEntity(**_stored_fields(entity, source, establishment, deleted_at))


def derived_stored_entity(entity: Entity, *, source: str, establishment: str | None) -> StoredEntity:
    """:func:`stored_entity` of a live entity without validating again what is valid by construction
    (a model, strings and what derives from them): the stores' subtree writes derive every entity of
    an offer twice per establishment (the plan, then the application)."""
    return constructed_stored_entity(_stored_fields(entity, source, establishment, None))


def constructed_stored_entity(fields: dict[str, Any]) -> StoredEntity:
    """What ``StoredEntity.model_construct(**fields)`` builds when ``fields`` names every field it sets
    (nothing validated, no default filled in), at a quarter of its cost."""
    row = _new_stored_entity(StoredEntity)
    _set_attribute(row, "__dict__", fields)
    _set_attribute(row, "__pydantic_fields_set__", set(fields))
    _set_attribute(row, "__pydantic_extra__", None)
    _set_attribute(row, "__pydantic_private__", None)
    return row


_new_stored_entity = StoredEntity.__new__
_set_attribute = object.__setattr__  # StoredEntity is frozen: as pydantic's model_construct does


def _stored_fields(
    entity: Entity, source: str, establishment: str | None, deleted_at: dt.datetime | None
) -> dict[str, Any]:
    if entity.kind is EntityKind.ESTABLISHMENT:
        establishment = entity.id
    elif entity.kind is EntityKind.UNIT:
        establishment = entity.establishment_id
    elif entity.kind is EntityKind.LEGAL_ENTITY:
        establishment = None
    return {
        "kind": entity.kind,
        "id": entity.id,
        "parent": entity.parent_id,
        "establishment": establishment,
        "source": source,
        "name": entity.name,
        "region": region_of(entity),
        "updated": entity.record.updated,
        "closed": entity.closed,
        "deleted": deleted_at is not None,
        "deleted_at": deleted_at,
        "content_hash": content_hash(entity),
        "entity": entity,
    }


def classify_change(old: StoredEntity | None, new: StoredEntity) -> ChangeKind | None:
    """The change that turns ``old`` (``None`` if unknown) into ``new``; ``None`` when nothing changed.

    Precedence when several things changed at once: created > moved > closed/reopened > updated.
    """
    if old is None or old.deleted:
        return ChangeKind.CREATED
    if old.parent != new.parent or old.establishment != new.establishment:
        return ChangeKind.MOVED
    if new.closed and not old.closed:
        return ChangeKind.CLOSED
    if old.closed and not new.closed:
        return ChangeKind.REOPENED
    if old.content_hash != new.content_hash:
        return ChangeKind.UPDATED
    return None


def name_key(text: str) -> str:
    """The form names are compared in for ``name_contains``: accents stripped, case folded.

    ``"Hôpital Saint-Éloi"`` → ``"hopital saint-eloi"``; stores keep it in a column next to the name.
    """
    if text.isascii():
        return text.casefold()
    stripped = _COMBINING_MARKS.sub("", unicodedata.normalize("NFKD", text))
    return stripped.casefold().translate(_LIGATURES)


_COMBINING_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae"})
