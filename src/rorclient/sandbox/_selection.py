"""What a Lecture answer contains: access-profile filtering (§9.3), query filters and restrictionOI.

Access profiles (PLATINES ``Profil_VIHF`` → ``Profil_Utilisateur`` code, rules of the PLATINES Schematron
``filtre_profilN.sch``):

==  =====  ==========================================================================================
0   CU23   public data: contacts and telecoms of level 1 only; no sensitive unit, no ``dropZone`` /
           ``levelRecourseORSAN``, no capacities, equipment, skills, specific acts; professionals only
           on ambulatory (05) units
1   CU22   everything (regulation of unscheduled care)
2   CU20   no level-3 contact or telecom; no sensitive unit, no ``dropZone`` / ``levelRecourseORSAN``,
           no crisis capacity
3   CU19   medico-social orientation: MS (04) units keep levels 1-2, other units and organisations
           level 1 only; no sensitive unit, no ``dropZone`` / ``levelRecourseORSAN``, no capacities;
           equipment, skills and specific acts only on MS units; professionals only on MS/05 units
==  =====  ==========================================================================================

Reconciliation comments (``record/extension/comments``) go from every record under profile 0 and, under
profile 3, from every record inside a unit with an activity field other than MS (its own and its
sub-objects'), as the Schematron checks it.

Query filters (RG_ALIM_020 and the PLATINES catalogue): a unit *matches* when it has one of the
requested activity fields, when (elementary units only) it takes one of the requested publics, and
when it was updated after ``dateRef`` (inferred semantics: "modified after"); the answer holds the
matching units and their ancestors, with ``typeActivity`` reduced to the requested fields, and always
the legal entity and the establishment (RG_ALIM_018).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, TypeVar, cast

from lxml import etree
from pydantic import BaseModel

from rorclient.codes import CSD_NS
from rorclient.models import (
    Contact,
    Establishment,
    ExtraElement,
    LegalEntity,
    Offer,
    Professional,
    RecordMeta,
    Unit,
    UnitLevel,
)

__all__ = [
    "PROFILE_CODES",
    "LectureQuery",
    "apply_profile",
    "select_establishment",
    "select_unit",
]

#: VIHF ``Profil_Utilisateur`` code → access profile number.
PROFILE_CODES: Final = {"CU23": 0, "CU22": 1, "CU20": 2, "CU19": 3}

_MS: Final = "04"
_AMBULATORY: Final = "05"


def _names(*local: str) -> frozenset[str]:
    return frozenset("{" + CSD_NS + "}" + name for name in local)


_CAPACITIES: Final = _names("accommodationCapacity", "crisisAccomodationCapacity")
_CRISIS: Final = _names("crisisAccomodationCapacity")
_SKILLS: Final = _names("resourcesSkills", "takingCareSpeciality", "specificAct")
_ORGANISATION_RESTRICTED: Final = _names("levelRecourseORSAN")
_RESTRICTION_UNIT_EXTRAS: Final = _names("operatingHours")
_RESTRICTION_UNIT_EXTENSION: Final = _names(
    "accommodationCapacity",
    "crisisAccomodationCapacity",
    "residentialCapactity",
    "resourcesSkills",
    "receptionType",
    "specificAct",
    "takingCareSpeciality",
    "receptionMode",
    "annualOpenning",
    "interventionZone",
    "psychiatricSector",
)
_FACILITY_TYPE: Final = _names("facilityType")
# Recognised in the canonical serialisation of a kept record extension (prefix csd, see the reader).
_COMMENTS: Final = "<csd:comments"
_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_PRICE: Final = _names("price")


@dataclass(frozen=True)
class LectureQuery:
    """The parameters of ``TR_Lecture-OffresSanteEtablissement`` besides the establishment id."""

    date_ref: dt.datetime | None = None
    fields: frozenset[str] = frozenset()
    publics: frozenset[str] = frozenset()
    restricted: bool = False


# --------------------------------------------------------------------------------------------------
# Access profiles
# --------------------------------------------------------------------------------------------------


def apply_profile(offer: Offer, profile: int) -> Offer:
    """``offer`` as a client with access profile ``profile`` (0-3) may see it."""
    if profile == 1:
        return offer
    hidden = _sensitive_subtrees(offer.units)
    units = [unit for unit in offer.units if unit.id not in hidden]
    fields = {unit.id: {coded.code for coded in unit.activity_fields} for unit in units}
    organisation_level = 1 if profile in (0, 3) else 2

    def unit_level(unit: Unit) -> int:
        if profile == 3 and _MS in fields[unit.id]:
            return 2
        return organisation_level

    def unit_allows(unit_id: str, allowed: frozenset[str]) -> bool:
        return bool(fields.get(unit_id, set()) & allowed)

    kept_units = tuple(_filter_unit(unit, profile, unit_level(unit)) for unit in units)
    kept_ids = {unit.id for unit in kept_units}
    equipment = tuple(
        item
        for item in offer.equipment
        if item.unit_id in kept_ids
        and (profile == 2 or (profile == 3 and unit_allows(item.unit_id, frozenset({_MS}))))
    )
    professional_fields = frozenset({_AMBULATORY}) if profile == 0 else frozenset({_MS, _AMBULATORY})
    professionals = tuple(
        professional
        for professional in offer.professionals
        if (profile == 2 or any(unit_allows(u, professional_fields) for u in professional.unit_ids))
    )
    filtered = offer.model_copy(
        update={
            "legal_entities": tuple(
                _filter_organisation(e, organisation_level) for e in offer.legal_entities
            ),
            "establishments": tuple(
                _filter_organisation(e, organisation_level) for e in offer.establishments
            ),
            "units": kept_units,
            "activities": tuple(a for a in offer.activities if a.unit_id in kept_ids),
            "equipment": equipment,
            "professionals": _relink(professionals, kept_ids),
        }
    )
    return without_comments(filtered) if profile == 0 else filtered


def _sensitive_subtrees(units: Iterable[Unit]) -> set[str]:
    units = list(units)
    gone = {unit.id for unit in units if unit.sensitive}
    return _with_descendants(units, gone)


def _with_descendants(units: list[Unit], roots: set[str]) -> set[str]:
    result = set(roots)
    children: dict[str, list[str]] = {}
    for unit in units:
        if unit.parent_unit_id is not None:
            children.setdefault(unit.parent_unit_id, []).append(unit.id)
    stack = list(roots)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in result:
                result.add(child)
                stack.append(child)
    return result


def _contacts(contacts: tuple[Contact, ...], level: int) -> tuple[Contact, ...]:
    kept = []
    for contact in contacts:
        if _level(contact.confidentiality.code) > level:
            continue
        telecoms = tuple(
            telecom
            for telecom in contact.telecoms
            if _level((telecom.confidentiality or contact.confidentiality).code) <= level
        )
        kept.append(
            contact if telecoms == contact.telecoms else contact.model_copy(update={"telecoms": telecoms})
        )
    return tuple(kept)


def _level(code: str) -> int:
    return int(code) if code in ("1", "2", "3") else 3  # unknown: treated as the most restricted


def _without(extras: tuple[ExtraElement, ...], names: frozenset[str]) -> tuple[ExtraElement, ...]:
    return tuple(extra for extra in extras if extra.name not in names)


def _filter_organisation(org: LegalEntity | Establishment, level: int) -> LegalEntity | Establishment:
    changes: dict[str, object] = {
        "contacts": _contacts(org.contacts, level),
        "extension_extras": _without(org.extension_extras, _ORGANISATION_RESTRICTED),
    }
    if isinstance(org, Establishment):
        changes["drop_zone"] = None
    return org.model_copy(update=changes)


def _filter_unit(unit: Unit, profile: int, level: int) -> Unit:
    ms = any(coded.code == _MS for coded in unit.activity_fields)
    hidden: frozenset[str] = _CRISIS
    if profile in (0, 3):
        hidden = hidden | _CAPACITIES
    if profile == 0 or (profile == 3 and not ms):
        hidden = hidden | _SKILLS
    changes: dict[str, object] = {
        "contacts": _contacts(unit.contacts, level),
        "extension_extras": _without(unit.extension_extras, hidden),
    }
    filtered = unit.model_copy(update=changes)
    if profile == 3 and any(coded.code != _MS for coded in unit.activity_fields):
        return without_comments(filtered)
    return filtered


_M = TypeVar("_M", bound=BaseModel)


def without_comments(model: _M) -> _M:
    """``model`` with the ``comments`` of every record extension in it removed (``recognation`` stays),
    its own record and those of its sub-objects alike; unchanged parts are the same objects."""
    return cast(_M, _strip_records(model))


def _strip_records(value: object) -> object:
    if isinstance(value, RecordMeta):
        if not any(_COMMENTS in extra.xml for extra in value.extras):
            return value
        return value.model_copy(update={"extras": tuple(_strip_comments(extra) for extra in value.extras)})
    if isinstance(value, BaseModel):
        changes = {}
        for name in type(value).model_fields:
            old = getattr(value, name)
            new = _strip_records(old)
            if new is not old:
                changes[name] = new
        return value.model_copy(update=changes) if changes else value
    if isinstance(value, tuple):
        stripped = tuple(_strip_records(item) for item in value)
        return value if all(a is b for a, b in zip(stripped, value, strict=True)) else stripped
    return value


def _strip_comments(extra: ExtraElement) -> ExtraElement:
    if _COMMENTS not in extra.xml:
        return extra
    element = etree.fromstring(extra.xml, _PARSER)
    for comment in element.findall(f"{{{CSD_NS}}}comments"):
        element.remove(comment)
    return ExtraElement(name=extra.name, xml=etree.tostring(element, encoding="unicode"))


def _relink(professionals: Iterable[Professional], unit_ids: set[str]) -> tuple[Professional, ...]:
    """Professionals limited to the units present, so that no link dangles."""
    kept = []
    for professional in professionals:
        links = tuple(u for u in professional.unit_ids if u in unit_ids)
        if not links and professional.unit_ids:
            continue
        kept.append(
            professional
            if links == professional.unit_ids
            else professional.model_copy(update={"unit_ids": links})
        )
    return tuple(kept)


# --------------------------------------------------------------------------------------------------
# Lecture answers
# --------------------------------------------------------------------------------------------------


def select_establishment(offer: Offer, query: LectureQuery, profile: int) -> Offer:
    """The answer to a Lecture of this establishment (profile first, then filters, then restriction)."""
    visible = apply_profile(offer, profile)
    matching = [unit for unit in visible.units if _matches(unit, query)]
    kept = _with_ancestors(visible.units, {unit.id for unit in matching})
    units = tuple(_reduce_fields(unit, query.fields) for unit in visible.units if unit.id in kept)
    answer = _restrict_to(visible, units)
    return _restricted(answer) if query.restricted else answer


def select_unit(offer: Offer, unit_id: str, profile: int) -> Offer | None:
    """The answer to a Lecture of one internal organisation: the unit, its descendants, its ancestors
    (so that ``parentFacility`` references resolve), its establishment and legal entity; ``None`` if
    the profile does not let the client see that unit."""
    visible = apply_profile(offer, profile)
    if not any(unit.id == unit_id for unit in visible.units):
        return None
    units = list(visible.units)
    kept = _with_descendants(units, {unit_id}) | _with_ancestors(units, {unit_id})
    return _restrict_to(visible, tuple(unit for unit in units if unit.id in kept))


def _matches(unit: Unit, query: LectureQuery) -> bool:
    if query.fields and not any(coded.code in query.fields for coded in unit.activity_fields):
        return False
    if query.publics and (
        unit.level is not UnitLevel.ELEMENTARY_UNIT
        or not any(coded.code in query.publics for coded in unit.patients.supported)
    ):
        return False
    return query.date_ref is None or _unit_updated(unit) > query.date_ref


def _unit_updated(unit: Unit) -> dt.datetime:
    return unit.record.updated


def _with_ancestors(units: Iterable[Unit], roots: set[str]) -> set[str]:
    parents = {unit.id: unit.parent_unit_id for unit in units}
    result = set()
    for root in roots:
        current: str | None = root
        while current is not None and current not in result and current in parents:
            result.add(current)
            current = parents[current]
    return result


def _reduce_fields(unit: Unit, fields: frozenset[str]) -> Unit:
    if not fields:
        return unit
    reduced = tuple(coded for coded in unit.activity_fields if coded.code in fields)
    if not reduced or len(reduced) == len(unit.activity_fields):
        return unit  # the XSD wants at least one typeActivity: keep the data as it is
    return unit.model_copy(update={"activity_fields": reduced})


def _restrict_to(offer: Offer, units: tuple[Unit, ...]) -> Offer:
    ids = {unit.id for unit in units}
    return offer.model_copy(
        update={
            "units": units,
            "activities": tuple(a for a in offer.activities if a.unit_id in ids),
            "equipment": tuple(e for e in offer.equipment if e.unit_id in ids),
            "professionals": _relink(offer.professionals, ids),
        }
    )


def _restricted(offer: Offer) -> Offer:
    """RG_ALIM_015 (restrictionOI=1): no tariffs, no unit-characterising attributes or instances."""
    return offer.model_copy(
        update={
            "establishments": tuple(
                e.model_copy(update={"extension_extras": _without(e.extension_extras, _PRICE)})
                for e in offer.establishments
            ),
            "units": tuple(_restricted_unit(u) for u in offer.units),
            "equipment": (),
        }
    )


def _restricted_unit(unit: Unit) -> Unit:
    hidden = _RESTRICTION_UNIT_EXTENSION
    if not any(coded.code == _MS for coded in unit.activity_fields):
        hidden = hidden | _FACILITY_TYPE  # the organisation category only stays for MS units
    return unit.model_copy(
        update={
            "location": None,
            "extras": _without(unit.extras, _RESTRICTION_UNIT_EXTRAS),
            "extension_extras": _without(unit.extension_extras, hidden),
        }
    )
