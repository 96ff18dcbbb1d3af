"""Changes the sandbox applies to its ground truth: the single-offer ones of :func:`mutate`, and the
ones that span establishments.

:data:`MUTATION_KINDS` lists every kind :meth:`rorclient.sandbox.Sandbox.mutate` draws from: the six of
:data:`MUTATIONS` (``rename``, ``new_unit``, ``closure``, ``reopening``,
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
from collections.abc import Callable, Sequence
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from rorclient.codes import Oid
from rorclient.csd.writer import UNIT_ID_AUTHORITY
from rorclient.errors import ConfigError
from rorclient.models import CodedValue, Establishment, Identifier, Offer, RecordMeta, Unit, UnitLevel
from rorclient.sandbox import _vocab as vocab
from rorclient.sandbox.dataset import generate_group, location_status

__all__ = ["MUTATION_KINDS", "Mutation", "mutate", "mutate_offer"]


# --------------------------------------------------------------------------------------------------
# Mutations: the changes a ROR sees between two reads of an establishment
# --------------------------------------------------------------------------------------------------

MUTATIONS: Final = ("rename", "new_unit", "closure", "reopening", "deletion", "contact_change")


def mutate(
    offer: Offer,
    kind: str,
    rng: random.Random,
    at: dt.datetime,
    *,
    new_unit_id: Callable[[str], str] | None = None,
) -> Offer:
    """``offer`` with one change of ``kind`` (one of :data:`MUTATIONS`) applied at ``at``.

    ``new_unit_id`` numbers the unit a ``new_unit`` change creates (see :func:`add_elementary_unit`).

    The changed objects get ``record.updated = at`` (RG_EXP_024); a deleted unit also refreshes its
    parent (RG_EXP_025); a new unit is created with ``created == updated == at`` (RG_EXP_023). Raises
    :class:`~rorclient.errors.ConfigError` when the offer has nothing the change could apply to (no unit
    to rename, no closed unit to reopen...).
    """
    units = list(offer.units)
    elementary = [u for u in units if u.level is UnitLevel.ELEMENTARY_UNIT]
    if kind == "rename":
        unit = _pick(rng, units, kind)
        return _replace_units(offer, {unit.id: _touch(unit, at, name=f"{unit.name} ({rng.randint(2, 99)})")})
    if kind == "new_unit":
        return add_elementary_unit(offer, rng, at, new_unit_id=new_unit_id)
    if kind == "closure":
        unit = _pick(rng, [u for u in elementary if not u.closed], kind)
        return _replace_units(offer, {unit.id: _with_status(unit, at, "1", closing=at.date())})
    if kind == "reopening":
        unit = _pick(rng, [u for u in elementary if u.closed], kind)
        return _replace_units(offer, {unit.id: _with_status(unit, at, "3", closing=None)})
    if kind == "deletion":
        return delete_unit(offer, _pick(rng, elementary, kind).id, at)
    if kind == "contact_change":
        unit = _pick(rng, [u for u in units if u.contacts], kind)
        contact = unit.contacts[0]
        telecom = contact.telecoms[0]
        new_value = f"0{rng.randint(1, 5)}{rng.randint(0, 99_999_999):08d}"
        record = RecordMeta(created=contact.record.created, updated=max(at, contact.record.updated))
        changed = contact.model_copy(
            update={
                "telecoms": (telecom.model_copy(update={"value": new_value, "record": record}),),
                "record": record,
            }
        )
        return _replace_units(offer, {unit.id: _touch(unit, at, contacts=(changed, *unit.contacts[1:]))})
    raise ConfigError(f"unknown mutation {kind!r}: expected one of {', '.join(MUTATIONS)}")


def add_elementary_unit(
    offer: Offer,
    rng: random.Random,
    at: dt.datetime,
    *,
    new_unit_id: Callable[[str], str] | None = None,
) -> Offer:
    """``offer`` with a new open UE (a copy of a random UE's field, care mode and activities).

    ``new_unit_id(region)`` gives the new unit's identifiantOI. Without it the unit is numbered after the
    highest id of ``offer``, which is unique within this offer only: a caller holding several
    establishments (units move between them, RG_EXP_019) must allocate ids across all of them, as the
    sandbox does from :data:`CREATED_UNIT_NUMBERS`.
    """
    model = _pick(rng, [u for u in offer.units if u.level is UnitLevel.ELEMENTARY_UNIT], "new_unit")
    region = model.id.partition("/")[0]
    if new_unit_id is not None:
        unit_id = new_unit_id(region)
    else:
        unit_id = f"{region}/{max(int(unit.id.partition('/')[2]) for unit in offer.units) + 1}"
    record = RecordMeta(created=at, updated=at)
    unit = model.model_copy(
        update={
            "id": unit_id,
            "other_ids": (Identifier(value=unit_id, authority=UNIT_ID_AUTHORITY),),
            "name": f"{model.name} - ANNEXE",
            "contacts": (),
            "final_closing_date": None,
            "location": None,
            "creation_date": at.date(),
            "patients": model.patients.model_copy(update={"record": record}),
            "record": record,
        }
    )
    activities = tuple(
        activity.model_copy(update={"unit_id": unit_id, "record": record})
        for activity in offer.activities
        if activity.unit_id == model.id
    )
    return offer.model_copy(
        update={"units": (*offer.units, unit), "activities": (*offer.activities, *activities)}
    )


def delete_unit(offer: Offer, unit_id: str, at: dt.datetime) -> Offer:
    """``offer`` without a unit, its descendants and what they own; the parent is refreshed (RG_EXP_025)."""
    gone = {unit_id}
    for unit in offer.units:  # parents come before their children
        if unit.parent_unit_id in gone:
            gone.add(unit.id)
    target = next(u for u in offer.units if u.id == unit_id)
    units = tuple(
        _touch(u, at) if u.id == target.parent_unit_id else u for u in offer.units if u.id not in gone
    )
    establishments = offer.establishments
    if target.parent_unit_id is None:
        establishments = tuple(
            e.model_copy(update={"record": _bumped(e.record, at)}) if e.id == target.establishment_id else e
            for e in offer.establishments
        )
    professionals = tuple(
        p.model_copy(
            update={
                "unit_ids": tuple(i for i in p.unit_ids if i not in gone),
                "record": _bumped(p.record, at),
            }
        )
        if set(p.unit_ids) & gone
        else p
        for p in offer.professionals
    )
    return offer.model_copy(
        update={
            "establishments": establishments,
            "units": units,
            "activities": tuple(a for a in offer.activities if a.unit_id not in gone),
            "equipment": tuple(e for e in offer.equipment if e.unit_id not in gone),
            "professionals": professionals,
        }
    )


def _pick(rng: random.Random, candidates: Sequence[Unit], kind: str) -> Unit:
    if not candidates:
        raise ConfigError(f"no unit of this offer can take a {kind} mutation")
    return rng.choice(candidates)


def _bumped(record: RecordMeta, at: dt.datetime) -> RecordMeta:
    return record.model_copy(update={"updated": max(at, record.updated)})


def _touch(unit: Unit, at: dt.datetime, **changes: object) -> Unit:
    return unit.model_copy(update={**changes, "record": _bumped(unit.record, at)})


def _with_status(unit: Unit, at: dt.datetime, status: str, *, closing: dt.date | None) -> Unit:
    changes: dict[str, object] = {"final_closing_date": closing}
    if unit.location is not None:
        record = _bumped(unit.location.record, at)
        changes["location"] = unit.location.model_copy(
            update={"status": location_status(status), "record": record}
        )
    return _touch(unit, at, **changes)


def _replace_units(offer: Offer, changed: dict[str, Unit]) -> Offer:
    return offer.model_copy(update={"units": tuple(changed.get(unit.id, unit) for unit in offer.units)})


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
    :func:`add_elementary_unit`): pass an allocator unique across the whole
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
