"""The sandbox's ground truth: every establishment's current offer, changed by mutations over time.

The starting data (the *base*) never changes: either a generated dataset, regenerated one legal-entity
group at a time on demand (so that a national-size base costs nothing to start and little memory), or
offers held in memory (read from CSD files, or given). Changes live beside it: replaced or added
offers (*overrides*) and removed establishments (*tombstones*). Reads combine the two; each change bumps
:attr:`GroundTruth.version`, which keys the cached extraction.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from rorclient.errors import ConfigError, DataError
from rorclient.models import EntityKind, Offer, UnitLevel
from rorclient.sandbox.dataset import (
    CREATED_UNIT_NUMBERS,
    REFERENCE_TIME,
    dataset_plan,
    generate_dataset,
    generate_group,
    locate_establishment,
    locate_unit,
)

__all__ = ["GeneratedBase", "GroundTruth", "MemoryBase", "Summary", "offers_by_establishment", "summarize"]

_KIND_ORDER = {kind: i for i, kind in enumerate(EntityKind)}


@dataclass(frozen=True)
class Summary:
    """What Notif needs about one establishment."""

    id: str
    updated: dt.datetime
    """Newest ``record/@updated`` of the establishment's subtree (its legal entity included)."""
    fields: frozenset[str]
    """Activity fields (TRE_R227) of its units."""
    publics: frozenset[str]
    """Supported publics (TRE_R239) of its elementary units."""
    removed: bool = False


def summarize(offer: Offer) -> Summary:
    """The Notif summary of a one-establishment offer."""
    newest = max(entity.record.updated for entity in offer.entities())
    fields = frozenset(coded.code for unit in offer.units for coded in unit.activity_fields)
    publics = frozenset(
        coded.code
        for unit in offer.units
        if unit.level is UnitLevel.ELEMENTARY_UNIT
        for coded in unit.patients.supported
    )
    return Summary(id=establishment_id(offer), updated=newest, fields=fields, publics=publics)


def establishment_id(offer: Offer) -> str:
    if len(offer.establishments) != 1:
        raise DataError("a sandbox offer holds exactly one establishment")
    return offer.establishments[0].id


# --------------------------------------------------------------------------------------------------
# Bases
# --------------------------------------------------------------------------------------------------


class Base(Protocol):
    """Read-only starting data, indexed by position (``0 <= index < count``)."""

    newest: dt.datetime | None
    """No record of the base is updated after this (``None``: unknown)."""
    new_group_start: int
    """First generator group index free for new establishments."""

    @property
    def count(self) -> int: ...

    def find(self, establishment_id: str) -> Offer | None: ...

    def unit_home(self, unit_id: str) -> str | None: ...

    def offer_at(self, index: int) -> Offer: ...

    def offers(self) -> Iterator[Offer]: ...


class GeneratedBase:
    """The dataset of :func:`~rorclient.sandbox.dataset.generate_dataset`, generated per group on demand."""

    def __init__(
        self, seed: int, establishments: int, *, as_of: dt.datetime = REFERENCE_TIME, cache_groups: int = 1024
    ) -> None:
        self.seed = seed
        self.establishments = establishments
        self.as_of = as_of
        self.newest: dt.datetime | None = as_of
        self._plan = dataset_plan(seed, establishments, as_of=as_of)
        self.new_group_start = len(self._plan)
        self._starts: list[int] = []
        total = 0
        for sites in self._plan:
            self._starts.append(total)
            total += sites
        self._cache: OrderedDict[int, list[Offer]] = OrderedDict()
        self._cache_size = cache_groups
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return self.establishments

    def _group(self, group: int) -> list[Offer]:
        with self._lock:
            offers = self._cache.get(group)
            if offers is not None:
                self._cache.move_to_end(group)
                return offers
            offers = generate_group(self.seed, group, limit=self._plan[group], as_of=self.as_of)
            self._cache[group] = offers
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return offers

    def _at(self, location: tuple[int, int] | None) -> Offer | None:
        if location is None:
            return None
        group, site = location
        if group >= len(self._plan) or site > self._plan[group]:
            return None
        return self._group(group)[site - 1]

    def find(self, establishment_id: str) -> Offer | None:
        offer = self._at(locate_establishment(establishment_id))
        if offer is None or establishment_id != offer.establishments[0].id:
            return None
        return offer

    def unit_home(self, unit_id: str) -> str | None:
        offer = self._at(locate_unit(unit_id))
        return None if offer is None else offer.establishments[0].id

    def offer_at(self, index: int) -> Offer:
        group = bisect.bisect_right(self._starts, index) - 1
        return self._group(group)[index - self._starts[group]]

    def offers(self) -> Iterator[Offer]:
        return generate_dataset(self.seed, self.establishments, as_of=self.as_of)


class MemoryBase:
    """Offers held in memory (read from CSD files, or built by a test)."""

    def __init__(self, offers: Iterable[Offer], *, new_group_start: int = 100_000) -> None:
        self._offers: dict[str, Offer] = {}
        self._units: dict[str, str] = {}
        newest: dt.datetime | None = None
        for offer in offers:
            key = establishment_id(offer)
            if key in self._offers:
                raise DataError(f"establishment {key} appears twice in the sandbox data")
            self._offers[key] = offer
            for unit in offer.units:
                self._units[unit.id] = key
            updated = summarize(offer).updated
            newest = updated if newest is None or updated > newest else newest
        self._order = list(self._offers)
        self.newest = newest
        self.new_group_start = new_group_start

    @property
    def count(self) -> int:
        return len(self._order)

    def find(self, establishment_id: str) -> Offer | None:
        return self._offers.get(establishment_id)

    def unit_home(self, unit_id: str) -> str | None:
        return self._units.get(unit_id)

    def offer_at(self, index: int) -> Offer:
        return self._offers[self._order[index]]

    def offers(self) -> Iterator[Offer]:
        return iter(list(self._offers.values()))


def offers_by_establishment(entities: Iterable[Any]) -> list[Offer]:
    """Group a stream of entities (as :func:`rorclient.csd.read_csd` yields them) into one offer per
    establishment, each carrying its legal entity. Entities that belong to no establishment are dropped,
    except legal entities, which join the offers of their establishments."""
    legal: dict[str, Any] = {}
    buckets: dict[str, list[Any]] = {}
    unit_home: dict[str, str] = {}
    pending: list[Any] = []
    for entity in entities:
        kind = entity.kind
        if kind is EntityKind.LEGAL_ENTITY:
            legal.setdefault(entity.id, entity)
        elif kind is EntityKind.ESTABLISHMENT:
            buckets.setdefault(entity.id, []).insert(0, entity)
        elif kind is EntityKind.UNIT:
            unit_home[entity.id] = entity.establishment_id
            buckets.setdefault(entity.establishment_id, []).append(entity)
        else:
            pending.append(entity)
    for entity in pending:
        if entity.kind is EntityKind.PROFESSIONAL:
            owner = next((unit_home[u] for u in entity.unit_ids if u in unit_home), None)
            owner = owner or next(iter(entity.establishment_ids), None)
        else:
            owner = unit_home.get(entity.unit_id)
        if owner is not None and owner in buckets:
            buckets[owner].append(entity)
    offers = []
    for key, members in buckets.items():
        head = members[0]
        if head.kind is not EntityKind.ESTABLISHMENT or head.id != key:
            raise DataError(f"units refer to establishment {key}, which the data do not contain")
        parent = legal.get(head.legal_entity_id)
        offers.append(Offer.of([parent, *members] if parent is not None else members))
    return offers


# --------------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------------


class GroundTruth:
    """The base plus changes; thread-safe. Offers are immutable, so readers get consistent values."""

    def __init__(self, base: Base, *, extra: Iterable[Offer] = ()) -> None:
        self.base = base
        self._lock = threading.RLock()
        self._overrides: dict[str, Offer] = {}
        self._summaries: dict[str, Summary] = {}
        self._added: list[str] = []
        self._removed: dict[str, Summary] = {}
        self._unit_home: dict[str, str] = {}
        self._version = 0
        self._index: dict[str, Summary] | None = None
        self._index_lock = threading.Lock()
        self._closing = threading.Event()
        self._next_group = base.new_group_start
        self._next_unit_number = CREATED_UNIT_NUMBERS.start
        for offer in extra:
            self._store(offer)

    # -- reading --------------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Bumped by every change; the same version always serves the same data."""
        with self._lock:
            return self._version

    def offer(self, establishment_id: str) -> Offer | None:
        """The current offer of an establishment, ``None`` if unknown or removed."""
        with self._lock:
            if establishment_id in self._removed:
                return None
            override = self._overrides.get(establishment_id)
        return override if override is not None else self.base.find(establishment_id)

    def unit_establishment(self, unit_id: str) -> str | None:
        """The establishment that currently holds a unit, ``None`` if no establishment does."""
        with self._lock:
            home = self._unit_home.get(unit_id)
        if home is None:
            home = self.base.unit_home(unit_id)
        offer = self.offer(home) if home is not None else None
        if offer is None or not any(unit.id == unit_id for unit in offer.units):
            return None
        return home

    def offers(self) -> Iterator[Offer]:
        """Every current offer: the base's in order (changed ones replaced), then the added ones."""
        with self._lock:
            overrides = dict(self._overrides)
            added = list(self._added)
            removed = set(self._removed)
        for offer in self.base.offers():
            key = offer.establishments[0].id
            if key not in removed:
                yield overrides.get(key, offer)
        for key in added:
            if key not in removed:
                yield overrides[key]

    def count(self) -> int:
        with self._lock:
            return self.base.count + len(self._added) - len(self._removed)

    def random_offer(self, rng: random.Random) -> Offer:
        """A uniformly drawn current offer."""
        for _ in range(1000):
            with self._lock:
                total = self.base.count + len(self._added)
                if total == 0:
                    break
                index = rng.randrange(total)
                key = self._added[index - self.base.count] if index >= self.base.count else None
            if key is None:
                key = establishment_id(self.base.offer_at(index))
            offer = self.offer(key)
            if offer is not None:
                return offer
        raise ConfigError("the sandbox holds no establishment")

    def changed_since(self, date_ref: dt.datetime) -> list[Summary]:
        """Establishments whose subtree changed strictly after ``date_ref``, and those removed since then.

        When ``date_ref`` is not before the base's newest record, only changes can match, so the base is
        not scanned; otherwise the base index is built on first use (a full pass over the base).
        """
        with self._lock:
            summaries = dict(self._summaries)
            added = list(self._added)
            removed = dict(self._removed)
        newest = self.base.newest
        found: list[Summary] = []
        if newest is not None and date_ref >= newest:
            candidates: Iterable[Summary] = summaries.values()
        else:
            index = self.base_index()
            candidates = [summaries.get(key, summary) for key, summary in index.items()]
            candidates = [*candidates, *(summaries[key] for key in added)]
        for summary in candidates:
            if summary.id in removed:
                continue
            if summary.updated > date_ref:
                found.append(summary)
        found.extend(summary for summary in removed.values() if summary.updated > date_ref)
        return found

    def base_index(self) -> dict[str, Summary]:
        """Notif summaries of the base, computed once (the first call scans the whole base).

        Raises :class:`~rorclient.errors.ConfigError` if :meth:`close` interrupts the scan."""
        with self._index_lock:
            if self._index is None:
                index: dict[str, Summary] = {}
                for offer in self.base.offers():
                    if self._closing.is_set():
                        raise ConfigError("the sandbox is stopping")
                    summary = summarize(offer)
                    index[summary.id] = summary
                self._index = index
            return self._index

    def close(self) -> None:
        """Interrupt a running base scan (the sandbox is stopping)."""
        self._closing.set()

    def snapshot(self) -> list[dict[str, Any]]:
        """Every entity in the export-contract shape (docs/export.md): kind, id, parent, name, updated,
        closed, deleted (always false), establishment; sorted by kind then id. Legal entities shared by
        several establishments appear once."""
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for offer in self.offers():
            owner = establishment_id(offer)
            for entity in offer.entities():
                key = (entity.kind.value, entity.id)
                if key in rows:
                    continue
                establishment = None if entity.kind is EntityKind.LEGAL_ENTITY else owner
                rows[key] = {
                    "kind": entity.kind.value,
                    "id": entity.id,
                    "parent": entity.parent_id,
                    "name": entity.name,
                    "updated": entity.record.updated.isoformat(),
                    "closed": entity.closed,
                    "deleted": False,
                    "establishment": establishment,
                }
        return [rows[key] for key in sorted(rows, key=lambda k: (_KIND_ORDER[EntityKind(k[0])], k[1]))]

    # -- changing -------------------------------------------------------------------------------------

    def put(self, offer: Offer) -> None:
        """Replace an establishment's offer, or add a new establishment."""
        with self._lock:
            self._store(offer)
            self._version += 1

    def put_many(self, offers: Iterable[Offer]) -> None:
        """Replace several offers at once (one version step)."""
        with self._lock:
            for offer in offers:
                self._store(offer)
            self._version += 1

    def remove(self, establishment_id: str, at: dt.datetime) -> bool:
        """Remove an establishment (Lecture then answers "unknown establishment"); ``False`` if unknown."""
        with self._lock:
            offer = self.offer(establishment_id)
            if offer is None:
                return False
            self._removed[establishment_id] = replace(summarize(offer), updated=at, removed=True)
            self._version += 1
            return True

    def next_group(self) -> int:
        """A generator group index no establishment of this truth uses yet."""
        with self._lock:
            group = self._next_group
            self._next_group += 1
            return group

    def new_unit_id(self, region: str) -> str:
        """A fresh identifiantOI ``<region>/<number>`` for a unit created by a mutation.

        Numbers come from one counter per truth, in :data:`~rorclient.sandbox.dataset.CREATED_UNIT_NUMBERS`,
        which generated data (the base, and groups generated later for new establishments) never use: an id
        is issued once, so it can never name a unit of another establishment, even after moves (RG_EXP_019)
        or deletions. Ids the data already hold (offers read from files) are skipped.
        """
        with self._lock:
            while self._next_unit_number in CREATED_UNIT_NUMBERS:
                unit_id = f"{region}/{self._next_unit_number}"
                self._next_unit_number += 1
                if unit_id not in self._unit_home and self.base.unit_home(unit_id) is None:
                    return unit_id
        raise ConfigError("the sandbox has created as many units as it can number")

    def _store(self, offer: Offer) -> None:
        key = establishment_id(offer)
        if key not in self._overrides and self.base.find(key) is None:
            self._added.append(key)
        self._overrides[key] = offer
        self._summaries[key] = summarize(offer)
        self._removed.pop(key, None)
        for unit in offer.units:
            self._unit_home[unit.id] = key
