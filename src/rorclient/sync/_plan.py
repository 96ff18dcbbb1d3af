"""Read a batch of establishments and plan its application before anything is committed.

A batch goes through four steps:

1. **fetch** — Lecture of every establishment (bounded concurrency). Each answer is an offer, an
   "unknown establishment" (tombstone it), or a failure (pending).
2. **plan** — the whole batch is applied once inside a store transaction that is then rolled back: the
   change sets it returns are exactly what the real application will do (same order, same ``keep``),
   which feeds the safety breaker and dry runs and tells which units would be deleted.
3. **resolve** — a unit about to be deleted may in fact have moved to an establishment the batch did not
   read (Notif did not list it, or its read failed). Lecture OI of that unit tells: moved (its new
   establishment is read and joins the batch), gone (the deletion stands), or unknown (the unit is
   protected and its establishment stays pending). Then plan again, at most a few rounds.
4. **apply** — see :mod:`rorclient.sync._apply`.

``keep`` — the unit ids present in any offer of the batch, plus the protected ones — is what lets an
establishment applied first leave alone a unit that moved to an establishment applied later.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rorclient.errors import DataError, RemoteError, RorError
from rorclient.models import Entity, EntityKind, Offer
from rorclient.sources.base import EstablishmentReads
from rorclient.store.base import ChangeKind, ChangeSet, EntityQuery, Store

__all__ = [
    "Batch",
    "Interrupted",
    "StopFlag",
    "fetch_batch",
    "is_unknown",
    "plan_batch",
    "resolve_lost_units",
    "to_frame",
]

_log = logging.getLogger("rorclient.sync")

#: Rounds of "plan, find lost units, read where they went" before giving up on new ones.
MAX_RESOLVE_ROUNDS = 3


class Interrupted(Exception):
    """A stop was requested; raised between two establishments, never inside a transaction."""


class StopFlag:
    """A stop request: a plain flag, safe to set from a signal handler (unlike ``threading.Event``,
    whose ``set`` takes a lock the interrupted thread may hold)."""

    def __init__(self) -> None:
        self._requested = False

    def set(self) -> None:
        self._requested = True

    def is_set(self) -> bool:
        return self._requested


class _Rollback(Exception):
    """Leaves the planning transaction without committing it."""


def is_unknown(error: RorError, codes: Iterable[int | None]) -> bool:
    """Whether ``error`` says the establishment (or unit) does not exist: a non-retryable ROR error whose
    code is one of ``codes`` (an inline ``careServicesResponse/error`` or a ``soap:Sender`` fault; an
    HTTP error carries no code)."""
    return isinstance(error, RemoteError) and not error.retryable and error.code in tuple(codes)


@dataclass
class Batch:
    """Establishments read together, and what the plan decided for them."""

    offers: dict[str, Offer] = field(default_factory=dict)
    """Offers to apply, in application order."""
    removed: list[str] = field(default_factory=list)
    """Establishments the ROR does not know (any more): tombstoned, after the offers."""
    failed: dict[str, RorError] = field(default_factory=dict)
    """Establishments that could not be read: pending."""
    unresolved: dict[str, str] = field(default_factory=dict)
    """Establishments applied (or not removed) while a question about them stays open: pending."""
    protected: set[str] = field(default_factory=set)
    """Units kept although absent from their establishment's offer (their fate is unknown)."""
    extra: int = 0
    """Establishments added because a unit moved to them."""
    entities: int = 0
    newest: dt.datetime | None = None
    """Newest ``record/@updated`` read (naive, the ROR's frame)."""
    plan: dict[str, ChangeSet] = field(default_factory=dict)
    asked_units: set[str] = field(default_factory=set)
    zone: dt.tzinfo | None = None
    """The ROR's time zone, to read aware date-times in its frame (``None``: local time)."""

    @property
    def keep(self) -> frozenset[str]:
        units = {unit.id for offer in self.offers.values() for unit in offer.units}
        return frozenset(units | self.protected)

    def planned_counts(self) -> dict[ChangeKind, int]:
        counts = dict.fromkeys(ChangeKind, 0)
        for changes in self.plan.values():
            for kind, number in changes.counts().items():
                counts[kind] += number
        return counts

    def add_offer(self, establishment_id: str, offer: Offer) -> None:
        self.offers[establishment_id] = offer
        for entity in offer.entities():
            self.entities += 1
            updated = to_frame(entity.record.updated, self.zone)
            if self.newest is None or updated > self.newest:
                self.newest = updated


def fetch_batch(
    client: EstablishmentReads,
    ids: list[str],
    batch: Batch,
    *,
    concurrency: int,
    unknown_codes: tuple[int | None, ...],
    stop: StopFlag,
    on_read: Callable[[], None] | None = None,
) -> None:
    """Read ``ids`` into ``batch`` (offers keep the order of ``ids``)."""
    results: dict[str, Offer | RorError] = {}
    reads = client.read_establishments(ids, concurrency=concurrency)
    try:
        for establishment_id, result in reads:
            results[establishment_id] = result
            if on_read is not None:
                on_read()
            if stop.is_set():
                raise Interrupted
    finally:
        close = getattr(reads, "close", None)
        if callable(close):
            close()
    for establishment_id in ids:
        if establishment_id not in results:
            continue
        result = results.pop(establishment_id)  # a repeated id is applied once
        if isinstance(result, Offer):
            problem = _check_offer(establishment_id, result)
            if problem is None:
                batch.add_offer(establishment_id, result)
                continue
            result = problem
        if is_unknown(result, unknown_codes):
            batch.removed.append(establishment_id)
        else:
            batch.failed[establishment_id] = result
            _log.warning("establishment %s could not be read: %s", establishment_id, result)


def _check_offer(establishment_id: str, offer: Offer) -> DataError | None:
    """An answer must hold the establishment asked for, or replacing its subtree would wipe it."""
    if any(establishment.id == establishment_id for establishment in offer.establishments):
        return None
    return DataError(f"the Lecture answer for establishment {establishment_id} does not contain it")


def keep_missing(store: Store, source: str, batch: Batch) -> None:
    """Make each offer of ``batch`` also hold what the store has under its establishment (rows of
    ``source``) and no offer of the batch holds: for a source whose re-reads do not prove deletions
    (FHIR: an answer lacks what the access profile hides), a delta cycle then updates and creates but
    never deletes. Rows another offer of the batch holds are left to it (a unit that moved)."""
    read = {(entity.kind, entity.id) for offer in batch.offers.values() for entity in offer.entities()}
    for establishment_id, offer in list(batch.offers.items()):
        kept: list[Entity] = []
        offset: int | None = 0
        while offset is not None:
            page = store.find(
                EntityQuery(establishment=establishment_id, source=source, limit=10_000, offset=offset)
            )
            kept.extend(item.entity for item in page.items if (item.kind, item.id) not in read)
            offset = page.next_offset
        if kept:
            batch.offers[establishment_id] = Offer.of([*offer.entities(), *kept])


def plan_batch(store: Store, source: str, batch: Batch) -> None:
    """Apply the batch in a transaction that is rolled back; keep each establishment's change set."""
    keep = batch.keep
    plan: dict[str, ChangeSet] = {}
    try:
        with store.transaction() as transaction:
            for establishment_id, offer in batch.offers.items():
                plan[establishment_id] = transaction.replace_establishment(
                    offer, source=source, establishment_id=establishment_id, keep=keep
                )
            for establishment_id in batch.removed:
                plan[establishment_id] = transaction.delete_establishment(establishment_id, source=source)
            raise _Rollback
    except _Rollback:
        pass
    batch.plan = plan


def lost_units(batch: Batch) -> dict[str, str]:
    """Units the plan deletes, not asked about yet: ``{unit id: establishment it leaves}``."""
    lost: dict[str, str] = {}
    for establishment_id, changes in batch.plan.items():
        for change in changes.changes:
            if (
                change.kind is EntityKind.UNIT
                and change.change is ChangeKind.DELETED
                and change.id not in batch.asked_units
            ):
                lost[change.id] = establishment_id
    return lost


def resolve_lost_units(
    client: EstablishmentReads,
    store: Store,
    source: str,
    batch: Batch,
    *,
    concurrency: int,
    unknown_codes: tuple[int | None, ...],
    stop: StopFlag,
) -> None:
    """Plan, and tell moved units from deleted ones until the plan deletes no unit of unknown fate."""
    plan_batch(store, source, batch)
    for _ in range(MAX_RESOLVE_ROUNDS):
        lost = lost_units(batch)
        if not lost:
            return
        targets = _ask_units(client, batch, lost, unknown_codes, stop)
        if targets:
            _fetch_targets(client, batch, targets, lost, concurrency, unknown_codes, stop)
        plan_batch(store, source, batch)
    if lost_units(batch):
        _log.warning(
            "units still moving after %d rounds; the rest is left to the next cycle", MAX_RESOLVE_ROUNDS
        )


def _ask_units(
    client: EstablishmentReads,
    batch: Batch,
    lost: dict[str, str],
    unknown_codes: tuple[int | None, ...],
    stop: StopFlag,
) -> dict[str, list[str]]:
    """Lecture OI of each lost unit; returns ``{establishment to read: [units that moved there]}``."""
    targets: dict[str, list[str]] = {}
    for unit_id, home in lost.items():
        if stop.is_set():
            raise Interrupted
        batch.asked_units.add(unit_id)
        try:
            offer = client.read_unit(unit_id)
        except RorError as error:
            if is_unknown(error, unknown_codes):
                continue  # gone: the deletion stands
            _protect(
                batch, unit_id, home, f"could not tell whether unit {unit_id} moved or was deleted: {error}"
            )
            continue
        where = next((unit.establishment_id for unit in offer.units if unit.id == unit_id), None)
        if where is None:
            continue
        if where == home or where in batch.offers:
            # The unit read says it is still where a full read says it is not: trust neither, keep it.
            _protect(batch, unit_id, home, f"unit {unit_id} is absent from its establishment's answer")
            continue
        _log.info("unit %s moved from %s to %s", unit_id, home, where)
        targets.setdefault(where, []).append(unit_id)
    return targets


def _fetch_targets(
    client: EstablishmentReads,
    batch: Batch,
    targets: dict[str, list[str]],
    lost: dict[str, str],
    concurrency: int,
    unknown_codes: tuple[int | None, ...],
    stop: StopFlag,
) -> None:
    extra = Batch(zone=batch.zone)
    fetch_batch(client, list(targets), extra, concurrency=concurrency, unknown_codes=unknown_codes, stop=stop)
    for establishment_id, offer in extra.offers.items():
        batch.add_offer(establishment_id, offer)
        batch.extra += 1
        batch.failed.pop(establishment_id, None)  # it failed earlier in this batch, read now
    for establishment_id in [*extra.failed, *extra.removed]:
        error = extra.failed.get(establishment_id)
        if error is not None:
            batch.failed.setdefault(establishment_id, error)
        for unit_id in targets[establishment_id]:
            reason = f"unit {unit_id} moved to {establishment_id}, which could not be read"
            _protect(batch, unit_id, lost[unit_id], reason)


def _protect(batch: Batch, unit_id: str, home: str, reason: str) -> None:
    _log.warning("%s; keeping it and retrying %s next cycle", reason, home)
    batch.protected.add(unit_id)
    batch.unresolved.setdefault(home, reason)
    if home in batch.removed:
        # delete_establishment cannot spare a unit: leave the whole establishment for the next cycle.
        batch.removed.remove(home)


def to_frame(moment: dt.datetime, zone: dt.tzinfo | None) -> dt.datetime:
    """``moment`` as a naive date-time of the ROR's frame (naive values are taken as they are)."""
    return moment.astimezone(zone).replace(tzinfo=None) if moment.tzinfo is not None else moment
