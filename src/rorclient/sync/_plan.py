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
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from rorclient.errors import DataError, RemoteError, RorError
from rorclient.models import Entity, EntityKind, Offer
from rorclient.sources.base import EstablishmentReads
from rorclient.store.base import ChangeKind, ChangeSet, EntityQuery, Store, StoredEntity, content_hash

__all__ = [
    "Batch",
    "Interrupted",
    "StopFlag",
    "check_unit_answer",
    "fetch_batch",
    "is_unknown",
    "plan_batch",
    "refuse_stale",
    "resolve_external_parents",
    "resolve_lost_units",
    "stale_reason",
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
    stale: int = 0
    """Answers refused because they are older than what the store holds (pending, retried)."""
    entities: int = 0
    newest: dt.datetime | None = None
    """Newest ``record/@updated`` read (naive, the ROR's frame)."""
    plan: dict[str, ChangeSet] = field(default_factory=dict)
    asked_units: set[str] = field(default_factory=set)
    zone: dt.tzinfo | None = None
    """The ROR's time zone, to read aware date-times in its frame (``None``: local time)."""

    spilled: Path | None = None
    """Where :meth:`spill` wrote the offers while later batches are read and planned."""

    def spill(self, directory: Path) -> None:
        """Write the planned offers to a file in ``directory`` and drop them from memory (a cycle plans
        every batch before applying any: this keeps its memory to one batch)."""
        path = directory / f"batch-{id(self)}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for establishment_id, offer in self.offers.items():
                out.write(f"{establishment_id}\t{offer.model_dump_json()}\n")
        self.spilled, self.offers = path, {}

    def restore(self) -> None:
        """Read back the offers :meth:`spill` wrote (same order)."""
        if self.spilled is None:
            return
        with self.spilled.open(encoding="utf-8") as lines:
            for line in lines:
                establishment_id, _, text = line.rstrip("\n").partition("\t")
                self.offers[establishment_id] = Offer.model_validate_json(text)
        self.spilled.unlink()
        self.spilled = None

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
    hash_answers: bool = True,
) -> None:
    """Read ``ids`` into ``batch`` (offers keep the order of ``ids``).

    ``hash_answers``: the digests of the answers' entities are taken as they arrive, while the later
    reads are in flight (the stale check, the plan and the application find them cached)."""
    results: dict[str, Offer | RorError] = {}
    reads = client.read_establishments(ids, concurrency=concurrency)
    try:
        for establishment_id, result in reads:
            if isinstance(result, Offer):
                problem = _check_offer(establishment_id, result)
                if problem is not None:
                    result = problem
                elif hash_answers:
                    for entity in result.entities():
                        content_hash(entity)
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
            batch.add_offer(establishment_id, result)
            continue
        if is_unknown(result, unknown_codes):
            batch.removed.append(establishment_id)
        else:
            batch.failed[establishment_id] = result
            _log.warning("establishment %s could not be read: %s", establishment_id, result)


def _check_offer(establishment_id: str, offer: Offer) -> DataError | None:
    """An answer must hold the establishment asked for, or replacing its subtree would wipe it; and
    only that establishment's rows (its units, its legal entity): an answer about X may not write Y."""
    own = next((item for item in offer.establishments if item.id == establishment_id), None)
    if own is None:
        return DataError(f"the Lecture answer for establishment {establishment_id} does not contain it")
    foreign = _foreign_rows(offer, establishment_id, own.legal_entity_id)
    if foreign is not None:
        return DataError(
            f"the Lecture answer for establishment {establishment_id} {foreign}: refused, nothing of it "
            "written (an answer may only change its own establishment's subtree and legal entity)"
        )
    return None


def _foreign_rows(offer: Offer, establishment_id: str, legal_entity_id: str | None) -> str | None:
    """What in ``offer`` belongs to another establishment than ``establishment_id`` (``None``: nothing)."""
    others = sorted({item.id for item in offer.establishments if item.id != establishment_id})
    if others:
        return f"also holds establishment(s) {_few(others)}"
    units = sorted({unit.id for unit in offer.units if unit.establishment_id != establishment_id})
    if units:
        return f"holds unit(s) of another establishment: {_few(units)}"
    legal = sorted({item.id for item in offer.legal_entities if item.id != legal_entity_id})
    if legal:
        return f"holds another legal entity than the establishment's: {_few(legal)}"
    return None


def _few(ids: list[str], shown: int = 5) -> str:
    return ", ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


def check_unit_answer(unit_id: str, offer: Offer) -> None:
    """A Lecture OI answer must hold the unit asked for, and only rows of the unit's own establishment
    (its ancestors may be missing: they are not replaced). Raises :class:`DataError` otherwise."""
    unit = next((item for item in offer.units if item.id == unit_id), None)
    if unit is None:
        raise DataError(f"the Lecture answer for unit {unit_id} does not contain it: refused")
    establishment = next((item for item in offer.establishments if item.id == unit.establishment_id), None)
    legal_entity_id = establishment.legal_entity_id if establishment is not None else None
    foreign = _foreign_rows(offer, unit.establishment_id, legal_entity_id)
    if foreign is None and establishment is None and offer.legal_entities:
        foreign = "holds a legal entity but not the unit's establishment"
    if foreign is not None:
        raise DataError(
            f"the Lecture answer for unit {unit_id} (establishment {unit.establishment_id}) {foreign}: "
            "refused, nothing of it written"
        )


def resolve_external_parents(store: Store, source: str, offer: Offer) -> Offer:
    """Resolve the ``parentFacility`` references a Lecture OI answer points outside itself
    (:data:`~rorclient.csd.reader.EXTERNAL_PARENT`) against the store: the unit's stored parent, else
    the stored unit of the same establishment whose writer-derived entityID matches. A reference neither
    the document nor the store knows is a :class:`DataError`."""
    from rorclient.csd.reader import EXTERNAL_PARENT
    from rorclient.csd.writer import entity_uuid

    units = []
    for unit in offer.units:
        parent = unit.parent_unit_id
        if parent is None or not parent.startswith(EXTERNAL_PARENT):
            units.append(unit)
            continue
        entity_id = parent.removeprefix(EXTERNAL_PARENT)
        stored = store.get(EntityKind.UNIT, unit.id)
        resolved: str | None = None
        if stored is not None and stored.source == source and stored.parent != stored.establishment:
            resolved = stored.parent
        else:
            siblings = store.find(
                EntityQuery(
                    kind=EntityKind.UNIT, establishment=unit.establishment_id, source=source, limit=10_000
                )
            )
            resolved = next(
                (row.id for row in siblings.items if entity_uuid(EntityKind.UNIT, row.id) == entity_id), None
            )
        if resolved is None:
            raise DataError(
                f"dangling reference: parentFacility {entity_id!r} of unit {unit.id} is neither in the "
                "Lecture answer nor in the store"
            )
        units.append(unit.model_copy(update={"parent_unit_id": resolved}))
    return offer.model_copy(update={"units": tuple(units)})


def stale_reason(
    store: Store, source: str, establishment_id: str, offer: Offer, zone: dt.tzinfo | None
) -> str | None:
    """Why ``offer`` must not be applied over what the store holds: an entity whose ``updated`` stamp is
    older than the stored row's (a lagging replica, a replayed answer). Equal stamps with different
    content are applied (logged): the ROR does not always move the stamp."""
    return _stale_against(_stored_rows(store, source, establishment_id, offer), offer, zone)


def _stale_against(
    stored: Mapping[tuple[EntityKind, str], StoredEntity], offer: Offer, zone: dt.tzinfo | None
) -> str | None:
    """:func:`stale_reason`, given the stored rows (or heads) of the offer's establishment."""
    for entity in offer.entities():
        row = stored.get((entity.kind, entity.id))
        if row is None:
            continue
        new, old = to_frame(entity.record.updated, zone), to_frame(row.updated, zone)
        if new < old:
            return (
                f"stale answer: {entity.kind.value} {entity.id} is stamped {new.isoformat()}, older than the "
                f"stored {old.isoformat()}; the stored rows are kept and the establishment is read again "
                "next cycle"
            )
        if new == old and row.content_hash != content_hash(entity):
            _log.info(
                "%s %s changed without a new stamp (%s): applied",
                entity.kind.value,
                entity.id,
                new.isoformat(),
            )
    return None


def _stored_rows(
    store: Store, source: str, establishment_id: str, offer: Offer
) -> dict[tuple[EntityKind, str], StoredEntity]:
    rows: dict[tuple[EntityKind, str], StoredEntity] = {}
    offset: int | None = 0
    while offset is not None:
        page = store.find(
            EntityQuery(establishment=establishment_id, source=source, limit=10_000, offset=offset)
        )
        rows.update(((row.kind, row.id), row) for row in page.items)
        offset = page.next_offset
    for legal_entity in offer.legal_entities:
        row = store.get(EntityKind.LEGAL_ENTITY, legal_entity.id)
        if row is not None and row.source == source:
            rows[(row.kind, row.id)] = row
    return rows


def refuse_stale(store: Store, source: str, batch: Batch) -> None:
    """Move answers older than the store out of the batch: failed (pending), counted in ``batch.stale``.

    The stored stamps and digests are read as heads inside one rolled-back transaction when the store's
    transactions give them (:class:`~rorclient.store.subtree.RowAccess`: the built-in stores), rather
    than as whole rows whose entities are decoded for nothing."""
    reasons: dict[str, str] = {}
    read_heads = False
    if batch.offers:
        try:
            with store.transaction() as transaction:
                if isinstance(transaction, _HeadReads):
                    read_heads = True
                    for establishment_id, offer in batch.offers.items():
                        heads = _stored_heads(transaction, source, establishment_id, offer)
                        reason = _stale_against(heads, offer, batch.zone)
                        if reason is not None:
                            reasons[establishment_id] = reason
                raise _Rollback
        except _Rollback:
            pass
        if not read_heads:  # a store whose transactions cannot read heads: whole rows, outside it
            for establishment_id, offer in batch.offers.items():
                reason = stale_reason(store, source, establishment_id, offer, batch.zone)
                if reason is not None:
                    reasons[establishment_id] = reason
    for establishment_id, reason in reasons.items():
        _log.warning("establishment %s: %s", establishment_id, reason)
        del batch.offers[establishment_id]
        batch.failed[establishment_id] = DataError(reason)
        batch.stale += 1


_Key = tuple[EntityKind, str]


@runtime_checkable
class _HeadReads(Protocol):
    """The part of :class:`~rorclient.store.subtree.RowAccess` the stale check reads."""

    def heads(self, keys: Collection[_Key]) -> Mapping[_Key, StoredEntity]: ...

    def live_in_establishment(self, establishment_id: str, source: str) -> Iterable[StoredEntity]: ...


def _stored_heads(
    rows: _HeadReads, source: str, establishment_id: str, offer: Offer
) -> dict[tuple[EntityKind, str], StoredEntity]:
    """What :func:`_stored_rows` finds, as heads: the live rows of ``source`` under the establishment
    and the offer's legal entities when ``source`` holds them live."""
    heads = {(row.kind, row.id): row for row in rows.live_in_establishment(establishment_id, source)}
    keys = [(EntityKind.LEGAL_ENTITY, item.id) for item in offer.legal_entities]
    if keys:
        for key, row in rows.heads(keys).items():
            if not row.deleted and row.source == source:
                heads[key] = row
    return heads


def keep_missing(
    store: Store, source: str, batch: Batch, seen: set[tuple[EntityKind, str]] | None = None
) -> None:
    """Make each offer of ``batch`` also hold what the store has under its establishment (rows of
    ``source``) and no offer of the batch holds: for a source whose re-reads do not prove deletions
    (FHIR: an answer lacks what the access profile hides), a delta cycle then updates and creates but
    never deletes. Rows another offer of the batch holds are left to it (a unit that moved).

    ``seen``: what the cycle's earlier batches read (updated with this batch's). A cycle plans every
    batch before applying any, so the store still shows a unit an earlier batch moves away under its
    former establishment: its stored copy is not put back there, and the unit is protected (``keep``)
    rather than lost — no extra read, whose answer would not be completed like this one."""
    read = {(entity.kind, entity.id) for offer in batch.offers.values() for entity in offer.entities()}
    earlier: set[tuple[EntityKind, str]] = set()
    if seen is not None:
        earlier = seen - read
        seen.update(read)
    for establishment_id, offer in list(batch.offers.items()):
        kept: list[Entity] = []
        offset: int | None = 0
        while offset is not None:
            page = store.find(
                EntityQuery(establishment=establishment_id, source=source, limit=10_000, offset=offset)
            )
            for item in page.items:
                key = (item.kind, item.id)
                if key in earlier:
                    if item.kind is EntityKind.UNIT:
                        batch.protected.add(item.id)  # an earlier batch moves it: not deleted here
                elif key not in read:
                    kept.append(item.entity)
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
    complete_targets: bool = False,
) -> None:
    """Plan, and tell moved units from deleted ones until the plan deletes no unit of unknown fate.

    ``complete_targets``: the establishments read to place a moved unit are completed with what the
    store holds (:func:`keep_missing`) — for a source whose re-reads prove no deletion, nobody asked to
    replace them."""
    plan_batch(store, source, batch)
    for _ in range(MAX_RESOLVE_ROUNDS):
        lost = lost_units(batch)
        if not lost:
            return
        targets = _ask_units(client, batch, lost, unknown_codes, stop)
        if targets:
            _fetch_targets(
                client,
                store,
                source,
                batch,
                targets,
                lost,
                concurrency,
                unknown_codes,
                stop,
                complete_targets,
            )
        plan_batch(store, source, batch)
    left = lost_units(batch)
    if left:
        # Their fate was never asked: deleting them would rest on no proof. Keep them for the next cycle.
        for unit_id, home in left.items():
            batch.asked_units.add(unit_id)
            _protect(batch, unit_id, home, f"unit {unit_id} still moving after {MAX_RESOLVE_ROUNDS} rounds")
        plan_batch(store, source, batch)


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
            # An answer that simply lacks the unit (profile filtering, a partial answer) proves nothing:
            # only "unknown unit" does. Keep it and ask again next cycle.
            _protect(batch, unit_id, home, f"the Lecture answer for unit {unit_id} does not contain it")
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
    store: Store,
    source: str,
    batch: Batch,
    targets: dict[str, list[str]],
    lost: dict[str, str],
    concurrency: int,
    unknown_codes: tuple[int | None, ...],
    stop: StopFlag,
    complete: bool = False,
) -> None:
    extra = Batch(zone=batch.zone)
    fetch_batch(client, list(targets), extra, concurrency=concurrency, unknown_codes=unknown_codes, stop=stop)
    refuse_stale(store, source, extra)  # a stale target is a failed one: the units moving there are kept
    if complete:  # not what the batch's own offers hold (a unit moving the other way)
        held = {(entity.kind, entity.id) for offer in batch.offers.values() for entity in offer.entities()}
        keep_missing(store, source, extra, held)
    batch.stale += extra.stale
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
