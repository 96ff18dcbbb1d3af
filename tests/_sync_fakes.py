"""An in-memory ROR for the sync engine's unit tests: the client protocol without HTTP.

Establishments come from the sandbox's dataset generator and change through the sandbox's own mutation
functions, so the tests exercise the same data shapes as the end-to-end ones, in milliseconds, with
precise control over Notif (what it lists, in which order) and over failures.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rorclient.csd.writer import write_csd
from rorclient.errors import ConfigError, RemoteError, RorError, TransportError
from rorclient.models import EntityKind, Offer, Unit
from rorclient.sandbox.dataset import generate_dataset
from rorclient.sandbox.mutations import (
    close_establishment,
    delete_unit,
    movable_units,
    move_unit,
    mutate,
    new_establishment,
)
from rorclient.store.base import Store

START = dt.datetime(2025, 1, 6, 8, 0, 0)


@dataclass
class Downloaded:
    path: Path
    bytes: int


class FakeRor:
    """The calls of :class:`rorclient.sync.SyncClient` over a dict of offers and a naive clock."""

    certificate = None

    def __init__(self, establishments: int = 12, *, seed: int = 3, now: dt.datetime = START) -> None:
        self.offers: dict[str, Offer] = {}
        for offer in generate_dataset(seed, establishments):
            self.offers[offer.establishments[0].id] = offer
        self.updated: dict[str, dt.datetime] = {key: _newest(offer) for key, offer in self.offers.items()}
        self.removed: dict[str, dt.datetime] = {}
        self.now = now
        self.seed = seed
        self.rng = random.Random(seed)
        self.failing: dict[str, RorError] = {}
        """Establishments whose Lecture raises this error (until removed)."""
        self.failing_units: dict[str, RorError] = {}
        self.hidden: set[str] = set()
        """Establishments Notif does not list (to simulate a Notif that misses one side of a move)."""
        self.notif_order: Callable[[list[str]], list[str]] | None = None
        self.calls: Counter[str] = Counter()
        self.on_read: Callable[[str], None] | None = None
        self.extraction_filter: Callable[[str], bool] | None = None
        self._next_group = 500

    # ---- the client protocol -----------------------------------------------------------------------
    def changed_establishments(
        self, since: dt.datetime, *, activity: tuple[str, ...] = (), patients: tuple[str, ...] = ()
    ) -> list[str]:
        self.calls["notif"] += 1
        self.last_since = since
        listed = [key for key, updated in self.updated.items() if updated > since and key not in self.hidden]
        listed += [key for key, when in self.removed.items() if when > since and key not in self.hidden]
        return self.notif_order(listed) if self.notif_order else listed

    def read_establishment(self, establishment_id: str) -> Offer:
        self.calls["lecture"] += 1
        if self.on_read is not None:
            self.on_read(establishment_id)
        if establishment_id in self.failing:
            raise self.failing[establishment_id]
        offer = self.offers.get(establishment_id)
        if offer is None:
            raise RemoteError(404, f"unknown establishment {establishment_id}")
        return offer

    def read_establishments(
        self, establishment_ids: Iterable[str], *, concurrency: int = 4
    ) -> Iterator[tuple[str, Offer | RorError]]:
        for establishment_id in establishment_ids:
            try:
                yield establishment_id, self.read_establishment(establishment_id)
            except RorError as error:
                yield establishment_id, error

    def read_unit(self, unit_id: str) -> Offer:
        self.calls["lecture_oi"] += 1
        if unit_id in self.failing_units:
            raise self.failing_units[unit_id]
        for offer in self.offers.values():
            for unit in offer.units:
                if unit.id == unit_id:
                    return _unit_offer(offer, unit)
        raise RemoteError(404, f"unknown organisation {unit_id}")

    def download_extraction(
        self, dest: str | Path, *, progress: Callable[[int, int | None], None] | None = None
    ) -> Downloaded:
        self.calls["extraction"] += 1
        path = Path(dest)
        keys = [key for key in self.offers if self.extraction_filter is None or self.extraction_filter(key)]
        write_csd([self.offers[key] for key in keys], path)
        size = path.stat().st_size
        if progress is not None:
            progress(size, size)
        return Downloaded(path, size)

    def close(self) -> None:
        pass

    # ---- changes -----------------------------------------------------------------------------------
    def tick(self, seconds: int = 60) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now

    def put(self, offer: Offer) -> None:
        key = offer.establishments[0].id
        self.offers[key] = offer
        self.updated[key] = self.now
        self.removed.pop(key, None)

    def mutate(self, key: str, kind: str) -> Offer:
        """One of the sandbox's single-offer mutations (rename, new_unit, closure, ...)."""
        self.tick()
        if kind == "establishment_closure":
            changed = close_establishment(self.offers[key], self.rng, self.now)
        else:
            changed = mutate(self.offers[key], kind, self.rng, self.now)
        self.put(changed)
        return changed

    def move(self, unit_id: str, source: str, target: str) -> None:
        self.tick()
        new_source, new_target = move_unit(self.offers[source], self.offers[target], unit_id, self.now)
        self.put(new_source)
        self.put(new_target)

    def delete_unit(self, key: str, unit_id: str) -> None:
        self.tick()
        self.put(delete_unit(self.offers[key], unit_id, self.now))

    def add_establishment(self) -> Offer:
        self.tick()
        while True:
            offer = new_establishment(self.seed, self._next_group, self.now)
            self._next_group += 1
            if offer is not None and offer.establishments[0].id not in self.offers:
                self.put(offer)
                return offer

    def remove(self, key: str) -> None:
        self.tick()
        del self.offers[key]
        self.removed[key] = self.now

    def movable(self) -> list[tuple[str, str]]:
        """(establishment, unit) pairs that ``move`` accepts."""
        return [(key, unit.id) for key, offer in self.offers.items() for unit in movable_units(offer)]

    def snapshot(self) -> set[tuple[Any, ...]]:
        """The ground truth as (kind, id, parent, name, closed) rows."""
        rows: set[tuple[Any, ...]] = set()
        for offer in self.offers.values():
            for entity in offer.entities():
                rows.add((entity.kind.value, entity.id, entity.parent_id, entity.name, entity.closed))
        return rows


def transport_error(message: str = "connection reset") -> TransportError:
    return TransportError(message)


def live_rows(store: Store, source: str | None = None) -> set[tuple[Any, ...]]:
    """The store's live entities as (kind, id, parent, name, closed) rows."""
    return {
        (row.kind.value, row.id, row.parent, row.name, row.closed)
        for row in store.iter_entities(source=source, include_deleted=False)
    }


def live_legal_entities_of(rows: set[tuple[Any, ...]], offers: Iterable[Offer]) -> set[tuple[Any, ...]]:
    """Rows minus legal entities no offer refers to (a removed establishment leaves its EJ behind)."""
    referenced = {offer.establishments[0].legal_entity_id for offer in offers}
    return {row for row in rows if row[0] != EntityKind.LEGAL_ENTITY.value or row[1] in referenced}


def _unit_offer(offer: Offer, unit: Unit) -> Offer:
    """What Lecture OI answers: the unit, its descendants and what they own, with the EG and the EJ."""
    subtree = {unit.id}
    for candidate in offer.units:  # parents come before their children
        if candidate.parent_unit_id in subtree:
            subtree.add(candidate.id)
    return Offer(
        legal_entities=offer.legal_entities,
        establishments=offer.establishments,
        units=tuple(u for u in offer.units if u.id in subtree),
        activities=tuple(a for a in offer.activities if a.unit_id in subtree),
        equipment=tuple(e for e in offer.equipment if e.unit_id in subtree),
        professionals=tuple(p for p in offer.professionals if set(p.unit_ids) & subtree),
    )


def _newest(offer: Offer) -> dt.datetime:
    return max(entity.record.updated for entity in offer.entities())


def mutate_sandbox(sandbox: Any, count: int, *, kinds: list[str] | None = None, seed: int) -> list[Any]:
    """``sandbox.mutate(...)``, skipping a kind no establishment can take (no closed unit left to
    reopen...). New units get fresh identifiers (``tests/test_sandbox_mutation_ids.py``)."""
    try:
        return list(sandbox.mutate(count=count, kinds=kinds, seed=seed))
    except ConfigError:
        if kinds is None:
            raise
        return []
