"""Changes the sandbox applies to its ground truth, beyond the single-offer ones of :mod:`.dataset`.

:data:`MUTATION_KINDS` lists every kind :meth:`rorclient.sandbox.Sandbox.mutate` draws from: the six of
:data:`rorclient.sandbox.dataset.MUTATIONS` (``rename``, ``new_unit``, ``closure``, ``reopening``,
``deletion``, ``contact_change``) plus:

``move``
    an elementary unit moves to another establishment and keeps its identifiantOI (RG_EXP_019), with
    its activities, equipment and the professionals attached to it alone;
``new_establishment``
    a new legal entity with one new establishment, every record created at the mutation time
    (RG_EXP_023);
``establishment_closure``
    an open establishment gets a ``closingDate`` (and reason), its location becomes "fermé
    définitivement".

Every changed object gets ``record.updated = at`` (RG_EXP_024) and the owner of a removed child is
refreshed too (RG_EXP_025), so Notif reports both establishments of a move.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from rorclient.codes import Oid
from rorclient.errors import ConfigError
from rorclient.models import CodedValue, Establishment, Offer, RecordMeta, Unit, UnitLevel
from rorclient.sandbox import _vocab as vocab
from rorclient.sandbox.dataset import MUTATIONS, generate_group, mutate

__all__ = [
    "MUTATION_KINDS",
    "Mutation",
    "close_establishment",
    "movable_units",
    "move_unit",
    "mutate_offer",
    "new_establishment",
    "stamp_created",
]

#: Every kind of change :meth:`~rorclient.sandbox.Sandbox.mutate` knows.
MUTATION_KINDS: Final = (*MUTATIONS, "move", "new_establishment", "establishment_closure")


class Mutation(BaseModel):
    """One change applied to the sandbox's data: what, where and when (the sandbox clock)."""

    model_config = ConfigDict(frozen=True)

    kind: str
    establishment: str
    """idNat_Struct of the establishment changed (for a move: the one the unit left)."""
    at: dt.datetime
    unit: str | None = None
    """identifiantOI of the unit concerned, when the change is about one unit."""
    target_establishment: str | None = None
    """For a move: the establishment the unit joined."""


def mutate_offer(
    offer: Offer,
    kind: str,
    rng: random.Random,
    at: dt.datetime,
    *,
    new_unit_id: Callable[[str], str] | None = None,
) -> tuple[Offer, str | None]:
    """Apply a one-establishment change; returns the new offer and the unit concerned, if any.

    ``new_unit_id(region)`` numbers a ``new_unit`` (see
    :func:`~rorclient.sandbox.dataset.add_elementary_unit`): pass an allocator unique across the whole
    dataset, such as :meth:`~rorclient.sandbox._truth.GroundTruth.new_unit_id`.
    Raises :class:`~rorclient.errors.ConfigError` if the offer cannot take this kind of change.
    """
    if kind == "establishment_closure":
        return close_establishment(offer, rng, at), None
    if kind not in MUTATIONS:
        raise ConfigError(f"unknown mutation {kind!r}: expected one of {', '.join(MUTATION_KINDS)}")
    before = {unit.id: unit for unit in offer.units}
    changed = mutate(offer, kind, rng, at, new_unit_id=new_unit_id)
    after = {unit.id: unit for unit in changed.units}
    unit = next((uid for uid in after if uid not in before), None)  # new_unit
    if unit is None:
        unit = next((uid for uid in before if uid not in after), None)  # deletion
    if unit is None:
        unit = next((uid for uid, u in after.items() if u is not before[uid]), None)  # touched
    return changed, unit


def move_unit(source: Offer, target: Offer, unit_id: str, at: dt.datetime) -> tuple[Offer, Offer]:
    """Move an elementary unit (no children) from ``source`` to ``target``, keeping its identifier.

    The unit becomes a top-level unit of the target; its activities and equipment follow it, and so do
    professionals attached to it alone (others just lose the link). The source's parent of the unit
    (or its establishment) and the target establishment are refreshed.
    """
    unit = next((u for u in source.units if u.id == unit_id), None)
    if unit is None:
        raise ConfigError(f"unit {unit_id} is not in establishment {_establishment(source).id}")
    if any(u.parent_unit_id == unit_id for u in source.units):
        raise ConfigError(f"unit {unit_id} has children: only leaf units move")
    target_id = _establishment(target).id
    if target_id == _establishment(source).id:
        raise ConfigError("a unit moves to another establishment, not its own")
    moved = unit.model_copy(
        update={"establishment_id": target_id, "parent_unit_id": None, "record": _bumped(unit.record, at)}
    )
    leaving_professionals = [p for p in source.professionals if p.unit_ids == (unit_id,)]
    staying_professionals = tuple(
        p.model_copy(
            update={"unit_ids": tuple(i for i in p.unit_ids if i != unit_id), "record": _bumped(p.record, at)}
        )
        if unit_id in p.unit_ids
        else p
        for p in source.professionals
        if p.unit_ids != (unit_id,)
    )
    source_units = tuple(
        _touch(u, at) if u.id == unit.parent_unit_id else u for u in source.units if u.id != unit_id
    )
    source_establishments = source.establishments
    if unit.parent_unit_id is None:
        source_establishments = _touch_establishment(source, at)
    new_source = source.model_copy(
        update={
            "establishments": source_establishments,
            "units": source_units,
            "activities": tuple(a for a in source.activities if a.unit_id != unit_id),
            "equipment": tuple(e for e in source.equipment if e.unit_id != unit_id),
            "professionals": staying_professionals,
        }
    )
    new_target = target.model_copy(
        update={
            "establishments": _touch_establishment(target, at),
            "units": (*target.units, moved),
            "activities": (*target.activities, *(a for a in source.activities if a.unit_id == unit_id)),
            "equipment": (*target.equipment, *(e for e in source.equipment if e.unit_id == unit_id)),
            "professionals": (
                *target.professionals,
                *(
                    p.model_copy(update={"establishment_ids": (target_id,), "record": _bumped(p.record, at)})
                    for p in leaving_professionals
                ),
            ),
        }
    )
    return new_source, new_target


def movable_units(offer: Offer) -> list[Unit]:
    """Elementary units that may leave ``offer`` without leaving it with no elementary unit (RG_EXP_001)."""
    parents = {u.parent_unit_id for u in offer.units}
    elementary = [u for u in offer.units if u.level is UnitLevel.ELEMENTARY_UNIT]
    if len(elementary) < 2:
        return []
    return [u for u in elementary if u.id not in parents]


def close_establishment(offer: Offer, rng: random.Random, at: dt.datetime) -> Offer:
    """The offer with its establishment closed at ``at`` (closing date, reason, location status 1)."""
    establishment = _establishment(offer)
    if establishment.closed:
        raise ConfigError(f"establishment {establishment.id} is already closed")
    reason = rng.choice(vocab.CLOSING_REASONS)
    changes: dict[str, Any] = {
        "closing_date": at.date(),
        "closing_reason": CodedValue(
            code=reason.code, coding_scheme=Oid.CLOSING_REASON, display=reason.label
        ),
        "record": _bumped(establishment.record, at),
    }
    if establishment.location is not None:
        changes["location"] = establishment.location.model_copy(
            update={"status": _location_status("1"), "record": _bumped(establishment.location.record, at)}
        )
    return offer.model_copy(update={"establishments": (establishment.model_copy(update=changes),)})


def new_establishment(seed: int, group: int, at: dt.datetime) -> Offer | None:
    """The first site of generated group ``group``, as if created at ``at``; ``None`` if that site is
    closed (the caller tries another group)."""
    offer = generate_group(seed, group, limit=1)[0]
    if _establishment(offer).closed:
        return None
    return stamp_created(offer, at)


def stamp_created(offer: Offer, at: dt.datetime) -> Offer:
    """``offer`` as if every object in it had just been created: all records ``created == updated == at``
    (RG_EXP_023), creation dates ``at``, no closure."""
    reopened_units = tuple(
        unit.model_copy(
            update={
                "final_closing_date": None,
                "creation_date": at.date(),
                "location": unit.location.model_copy(update={"status": _location_status("3")})
                if unit.location is not None and unit.closed
                else unit.location,
            }
        )
        for unit in offer.units
    )
    establishments = tuple(
        e.model_copy(update={"creation_date": at.date(), "closing_date": None, "closing_reason": None})
        for e in offer.establishments
    )
    legal_entities = tuple(e.model_copy(update={"creation_date": at.date()}) for e in offer.legal_entities)
    fresh = offer.model_copy(
        update={"legal_entities": legal_entities, "establishments": establishments, "units": reopened_units}
    )
    stamped = _restamp(fresh, at)
    assert isinstance(stamped, Offer)
    return stamped


# --------------------------------------------------------------------------------------------------


def _establishment(offer: Offer) -> Establishment:
    if len(offer.establishments) != 1:
        raise ConfigError("a sandbox offer holds exactly one establishment")
    return offer.establishments[0]


def _bumped(record: RecordMeta, at: dt.datetime) -> RecordMeta:
    return record.model_copy(update={"updated": max(at, record.updated)})


def _touch(unit: Unit, at: dt.datetime) -> Unit:
    return unit.model_copy(update={"record": _bumped(unit.record, at)})


def _touch_establishment(offer: Offer, at: dt.datetime) -> tuple[Establishment, ...]:
    establishment = _establishment(offer)
    return (establishment.model_copy(update={"record": _bumped(establishment.record, at)}),)


def _location_status(code: str) -> CodedValue:
    return CodedValue(code=code, coding_scheme=Oid.LOCATION_STATUS, display=vocab.LOCATION_STATUSES[code])


def _restamp(value: Any, at: dt.datetime) -> Any:
    """``value`` with every :class:`RecordMeta` inside it (at any depth) set to created = updated = at."""
    if isinstance(value, RecordMeta):
        return value.model_copy(update={"created": at, "updated": at})
    if isinstance(value, BaseModel):
        updates = {}
        for name in type(value).model_fields:
            old = getattr(value, name)
            new = _restamp(old, at)
            if new is not old:
                updates[name] = new
        return value.model_copy(update=updates) if updates else value
    if isinstance(value, tuple):
        items = tuple(_restamp(item, at) for item in value)
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    return value
