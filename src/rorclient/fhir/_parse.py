"""FHIR resources of the ROR profiles → entities: the natural mapping, the inverse of ``_render``.

Every element is optional here (access profiles hide elements the profiles call mandatory); what a
model requires and FHIR does not say gets a neutral value, listed in docs/fhir.md. References are
resolved through a :class:`Graph`: the export or search result the resource came with.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Protocol

from rorclient.codes import Oid
from rorclient.fhir import _systems as S
from rorclient.fhir._render import ADDRESS_LEVEL_PARTS, ADXP_OF_PART
from rorclient.fhir._values import (
    FhirMappingError,
    Json,
    coded,
    codings,
    day,
    extension_of,
    extensions_of,
    first_coded,
    moment,
    referenced,
    value_of,
)
from rorclient.models import (
    Activity,
    Address,
    AddressLine,
    Age,
    CodedValue,
    Contact,
    EntityKind,
    Equipment,
    Establishment,
    Geocode,
    Identifier,
    LegalEntity,
    Location,
    PatientsType,
    PersonName,
    Professional,
    RecordMeta,
    Telecom,
    Unit,
)

#: Care mode of a unit that has none (pôles, services...), as CSD sends it.
NO_CARE_MODE: Final = CodedValue(code="null", coding_scheme="")
ELEMENTARY_UNIT_TYPE: Final = CodedValue(code="4", coding_scheme=Oid.UNIT_TYPE, display="Unité élémentaire")
#: Age range of a unit whose resource says none.
NO_AGE_MIN: Final = Age(value=0)
NO_AGE_MAX: Final = Age(value=150)
_OFFER_ID_TYPE: Final = "35"
_OI_ID_TYPE: Final = "42"
_STRUCTURE_ID_TYPE: Final = "40"
_PART_OF_ADXP: Final = {adxp: part for part, adxp in ADXP_OF_PART.items()}
_MAX_DEPTH: Final = 32


@dataclass(frozen=True, slots=True)
class OrgNode:
    """What the graph needs to know of an Organization to place what it owns."""

    kind: EntityKind  # LEGAL_ENTITY, ESTABLISHMENT or UNIT
    business_id: str
    part_of: str | None  # logical id of the parent Organization


class Graph(Protocol):
    def organization(self, logical: str) -> OrgNode | None: ...

    def offer_unit(self, logical: str) -> str | None: ...

    def location(self, logical: str) -> Json | None: ...


def where(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


# -- common pieces ------------------------------------------------------------------------------------


def record_of(resource: Mapping[str, Any]) -> RecordMeta:
    updated_text = (resource.get("meta") or {}).get("lastUpdated")
    created_text = value_of(resource, S.EXT_CREATION_DATE)
    if updated_text is None and created_text is None:
        raise FhirMappingError("resource without meta.lastUpdated", path=where(resource))
    updated = moment(str(updated_text or created_text))
    created = moment(str(created_text)) if created_text else updated
    return RecordMeta(created=created, updated=updated)


def other_ids_of(resource: Mapping[str, Any]) -> tuple[Identifier, ...]:
    return tuple(
        Identifier(value=str(item["value"]), authority=S.identifier_authority(str(item["system"])))
        for item in resource.get("identifier", ())
        if item.get("system") and item.get("value") is not None
    )


def _typed(item: Mapping[str, Any]) -> set[str]:
    return {str(c.get("code")) for c in (item.get("type") or {}).get("coding", ())}


def _identifier(resource: Mapping[str, Any], *, systems: Iterable[str], types: Iterable[str]) -> str | None:
    systems, types = set(systems), set(types)
    for item in resource.get("identifier", ()):
        if item.get("value") and (item.get("system") in systems or _typed(item) & types):
            return str(item["value"])
    return None


def _address(raw: Mapping[str, Any]) -> Address:
    lines: list[AddressLine] = []
    texts = raw.get("line") or []
    extras = raw.get("_line") or []
    for index, text in enumerate(texts):
        parts: dict[str, str] = {}
        line_ext = extras[index] if index < len(extras) else None
        for item in (line_ext or {}).get("extension", ()):
            url = str(item.get("url", ""))
            if url.startswith(S.ADXP) and "valueString" in item:
                name = url.removeprefix(S.ADXP)
                parts[_PART_OF_ADXP.get(name, name)] = str(item["valueString"])
        lines.append(AddressLine(text=text, parts=parts))
    level = {part: raw[element] for part, element in ADDRESS_LEVEL_PARTS.items() if raw.get(element)}
    if level:
        if not lines:
            lines.append(AddressLine())
        last = lines[-1]
        lines[-1] = AddressLine(text=last.text, parts={**last.parts, **{k: str(v) for k, v in level.items()}})
    return Address(lines=tuple(lines))


def _telecom(raw: Mapping[str, Any]) -> Telecom:
    channel = first_coded(value_of(raw, S.EXT_TELECOM_CHANNEL))
    if channel is None:
        channel = CodedValue(code=str(raw.get("system", "other")), coding_scheme="")
    return Telecom(
        channel=channel,
        value=raw.get("value"),
        confidentiality=first_coded(value_of(raw, S.EXT_TELECOM_CONFIDENTIALITY)),
    )


_OPEN_ACCESS: Final = CodedValue(code="1", coding_scheme=Oid.CONFIDENTIALITY, display="Accès libre")


def _organization_contact(raw: Mapping[str, Any], record: RecordMeta) -> Contact:
    return Contact(
        name=(raw.get("name") or {}).get("text"),
        function=first_coded(value_of(raw, S.EXT_CONTACT_FUNCTION)),
        nature=first_coded(raw.get("purpose")),
        description=value_of(raw, S.EXT_CONTACT_DESCRIPTION),
        confidentiality=first_coded(value_of(raw, S.EXT_CONTACT_CONFIDENTIALITY)) or _OPEN_ACCESS,
        telecoms=tuple(_telecom(item) for item in raw.get("telecom", ())),
        record=record,
    )


def _offer_contact(raw: Mapping[str, Any], record: RecordMeta) -> Contact:
    telecoms = []
    for item in extensions_of(raw, S.EXT_HS_CONTACT_TELECOM):
        channel = first_coded(value_of(item, S.EXT_TELECOM_CHANNEL)) or CodedValue(code="other")
        telecoms.append(
            Telecom(
                channel=channel,
                value=value_of(item, "telecomAddress"),
                confidentiality=first_coded(value_of(item, S.EXT_TELECOM_CONFIDENTIALITY)),
            )
        )
    return Contact(
        name=value_of(raw, "name"),
        function=first_coded(value_of(raw, "functionContact")),
        nature=first_coded(value_of(raw, "purposeContact")),
        description=value_of(raw, "description"),
        confidentiality=first_coded(value_of(raw, S.EXT_CONFIDENTIALITY)) or _OPEN_ACCESS,
        telecoms=tuple(telecoms),
        record=record,
    )


def _other_names(resource: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        str(item["valueString"])
        for item in extensions_of(resource.get("_name"), S.EXT_ADDITIONAL_NAME)
        if "valueString" in item
    )


# -- organizations ------------------------------------------------------------------------------------


def org_node(resource: Mapping[str, Any]) -> OrgNode:
    """Which entity an Organization is: an internal unit (identifiantOI), else an establishment (it
    has a ``partOf``), else a legal entity; with its business identifier."""
    parent = referenced(resource.get("partOf"))
    part_of = parent[1] if parent else None
    unit_id = _identifier(resource, systems=(S.SYSTEM_OI,), types=(_OI_ID_TYPE,))
    if unit_id is not None:
        return OrgNode(EntityKind.UNIT, unit_id, part_of)
    structure_id = _identifier(resource, systems=(S.SYSTEM_ID_NAT_STRUCT,), types=(_STRUCTURE_ID_TYPE,))
    if structure_id is None:
        raise FhirMappingError(
            "Organization without idNat_Struct (urn:oid:1.2.250.1.71.4.2.2) nor identifiantOI "
            "(https://oi.esante.gouv.fr) identifier",
            path=where(resource),
        )
    kind = EntityKind.ESTABLISHMENT if part_of is not None else EntityKind.LEGAL_ENTITY
    return OrgNode(kind, structure_id, part_of)


def owner_of(graph: Graph, part_of: str | None, resource: Mapping[str, Any]) -> tuple[str, str | None]:
    """``(establishment id, parent unit id)`` of something owned by the Organization ``part_of``."""
    parent_unit: str | None = None
    logical = part_of
    for _ in range(_MAX_DEPTH):
        node = graph.organization(logical) if logical is not None else None
        if node is None:
            raise FhirMappingError(
                f"refers to Organization/{logical}, which is not in the answer", path=where(resource)
            )
        if node.kind is EntityKind.ESTABLISHMENT:
            return node.business_id, parent_unit
        if node.kind is not EntityKind.UNIT:
            raise FhirMappingError(
                f"its owner chain reaches legal entity {node.business_id} without an establishment",
                path=where(resource),
            )
        if parent_unit is None:
            parent_unit = node.business_id
        logical = node.part_of
    raise FhirMappingError("Organization.partOf chain too deep or cyclic", path=where(resource))


def organization(resource: Mapping[str, Any], graph: Graph) -> LegalEntity | Establishment | Unit:
    node = org_node(resource)
    record = record_of(resource)
    period = value_of(resource, S.EXT_PERIOD) or {}
    start = day(period["start"]) if period.get("start") else None
    end = day(period["end"]) if period.get("end") else None
    common: dict[str, Any] = {
        "id": node.business_id,
        "other_ids": other_ids_of(resource),
        "types": tuple(value for concept in resource.get("type", ()) for value in codings(concept)),
        "name": str(resource.get("name") or ""),
        "other_names": _other_names(resource),
        "addresses": tuple(_address(item) for item in resource.get("address", ())),
        "contacts": tuple(_organization_contact(item, record) for item in resource.get("contact", ())),
        "creation_date": start,
        "record": record,
    }
    closing_reason = first_coded(value_of(resource, S.EXT_CLOSING_TYPE))
    if node.kind is EntityKind.LEGAL_ENTITY:
        return LegalEntity(**common, closing_date=end, closing_reason=closing_reason)
    if node.kind is EntityKind.ESTABLISHMENT:
        parent = graph.organization(node.part_of) if node.part_of else None
        if parent is None or parent.kind is not EntityKind.LEGAL_ENTITY:
            raise FhirMappingError(
                f"establishment {node.business_id}: partOf Organization/{node.part_of} is not a legal "
                "entity of the answer",
                path=where(resource),
            )
        aliases = resource.get("alias") or []
        return Establishment(
            **common,
            legal_entity_id=parent.business_id,
            use_name=aliases[0] if aliases else None,
            drop_zone=value_of(resource, S.EXT_DROP_ZONE),
            closing_date=end,
            closing_reason=closing_reason,
        )
    establishment_id, parent_unit = owner_of(graph, node.part_of, resource)
    return Unit(
        **common,
        establishment_id=establishment_id,
        parent_unit_id=parent_unit,
        care_mode=NO_CARE_MODE,
        patients=PatientsType(age_min=NO_AGE_MIN, age_max=NO_AGE_MAX, record=record),
        final_closing_date=end,
    )


# -- offers -------------------------------------------------------------------------------------------


def offer_id(resource: Mapping[str, Any]) -> str:
    found = _identifier(resource, systems=(), types=(_OFFER_ID_TYPE,))
    if found is None:
        values = [item.get("value") for item in resource.get("identifier", ()) if item.get("value")]
        found = str(values[0]) if len(values) == 1 else None
    if found is None:
        raise FhirMappingError(
            "HealthcareService without an offer identifier (TRE_R355 type 35)", path=where(resource)
        )
    return found


def _age(raw: Mapping[str, Any] | None, default: Age) -> Age:
    if not raw or raw.get("value") is None:
        return default
    unit = default.unit
    if raw.get("code"):
        unit = CodedValue(code=str(raw["code"]), coding_scheme=S.scheme_of(str(raw.get("system", ""))))
    return Age(value=int(Decimal(str(raw["value"]))), unit=unit)


def _patients(resource: Mapping[str, Any], record: RecordMeta) -> PatientsType:
    raw = extension_of(resource, S.EXT_PATIENT_TYPE)
    supported = tuple(
        value
        for item in extensions_of(raw, "patientType")
        for value in codings(item.get("valueCodeableConcept"))
    )
    ages = value_of(raw, "ageRange") or {}
    return PatientsType(
        supported=supported,
        age_min=_age(ages.get("low"), NO_AGE_MIN),
        age_max=_age(ages.get("high"), NO_AGE_MAX),
        record=record,
    )


def _care_mode(resource: Mapping[str, Any]) -> CodedValue:
    for concept in resource.get("characteristic", ()):
        for value in codings(concept):
            if value.coding_scheme == Oid.CARE_MODE or "ModePriseEnCharge" in value.coding_scheme:
                return value
    return NO_CARE_MODE


def _final_closing(resource: Mapping[str, Any]) -> dt.date | None:
    for item in resource.get("notAvailable", ()):
        during = item.get("during") or {}
        if item.get("id") == S.CLOSING_REOPENING_SLICE and during.get("start") and not during.get("end"):
            return day(during["start"])
    return None


def place(raw: Mapping[str, Any]) -> Location | None:
    """The place a Location describes; None when it names no commune (a Location kept for equipment)."""
    city = first_coded(value_of(raw, S.EXT_COMMUNE))
    if city is None:
        return None
    position = raw.get("position")
    coordinates = None
    if position and position.get("latitude") is not None and position.get("longitude") is not None:
        coordinates = Geocode(
            latitude=Decimal(str(position["latitude"])), longitude=Decimal(str(position["longitude"]))
        )
    status = raw.get("operationalStatus")
    return Location(
        name=raw.get("name"),
        description=raw.get("description"),
        status=coded(status) if status else None,
        address=_address(raw["address"]) if raw.get("address") else None,
        coordinates=coordinates,
        city=city,
        record=record_of(raw),
    )


def equipment_of(raw: Mapping[str, Any], unit_id: str, record: RecordMeta) -> list[Equipment]:
    found = []
    for item in extensions_of(raw, S.EXT_EQUIPMENT):
        code = first_coded(value_of(item, "equipmentType"))
        if code is None:
            continue
        count = value_of(item, "nbEquipment")
        found.append(
            Equipment(
                unit_id=unit_id, code=code, count=int(count) if count is not None else None, record=record
            )
        )
    return found


def activity_of(concept: Mapping[str, Any], unit_id: str, record: RecordMeta) -> Activity | None:
    values = codings(concept)
    main = next((v for v in values if v.coding_scheme == Oid.OPERATIONAL_ACTIVITY), None)
    if main is None:
        return None
    families = tuple(v for v in values if v is not main)
    return Activity(unit_id=unit_id, code=main, act_families=families, record=record)


def offer(
    resource: Mapping[str, Any], graph: Graph
) -> tuple[Unit, list[Activity], list[Equipment], list[Json]]:
    """An elementary unit, its activities and equipment, and the Location resources it was built from."""
    unit_id = offer_id(resource)
    record = record_of(resource)
    provider = referenced(resource.get("providedBy"))
    if provider is None:
        raise FhirMappingError("HealthcareService without providedBy", path=where(resource))
    establishment_id, parent_unit = owner_of(graph, provider[1], resource)
    locations: list[Json] = []
    for item in resource.get("location", ()):
        target = referenced(item)
        found = graph.location(target[1]) if target else None
        if found is not None:
            locations.append(found)
    place_of_unit = next((p for p in (place(raw) for raw in locations) if p is not None), None)
    sensitive = value_of(resource, S.EXT_SENSITIVE_UNIT)
    unit = Unit(
        id=unit_id,
        other_ids=other_ids_of(resource),
        types=(ELEMENTARY_UNIT_TYPE,),
        name=str(resource.get("name") or ""),
        other_names=_other_names(resource),
        establishment_id=establishment_id,
        parent_unit_id=parent_unit,
        contacts=tuple(_offer_contact(item, record) for item in extensions_of(resource, S.EXT_HS_CONTACT)),
        activity_fields=tuple(value for concept in resource.get("type", ()) for value in codings(concept)),
        care_mode=_care_mode(resource),
        patients=_patients(resource, record),
        sensitive=bool(sensitive) if sensitive is not None else False,
        final_closing_date=_final_closing(resource),
        location=place_of_unit,
        record=record,
    )
    activities = [
        found
        for found in (activity_of(concept, unit_id, record) for concept in resource.get("specialty", ()))
        if found is not None
    ]
    equipment = [item for raw in locations for item in equipment_of(raw, unit_id, record)]
    return unit, activities, equipment, locations


# -- professionals ------------------------------------------------------------------------------------


def professional(
    practitioner: Mapping[str, Any], roles: Sequence[Mapping[str, Any]], graph: Graph
) -> Professional:
    business = _identifier(practitioner, systems=(S.SYSTEM_ID_NAT_PS,), types=())
    if business is None:
        raise FhirMappingError(
            "Practitioner without idNat_PS (urn:oid:1.2.250.1.71.4.2.1) identifier", path=where(practitioner)
        )
    names = practitioner.get("name") or [{}]
    first = names[0]
    given = first.get("given") or []
    person = PersonName(
        common_names=tuple(str(item["text"]) for item in names if item.get("text")),
        forename=given[0] if given else None,
        surname=first.get("family"),
    )
    establishment_ids: list[str] = []
    unit_ids: list[str] = []
    types: tuple[CodedValue, ...] = ()
    for role in roles:
        organization_ref = referenced(role.get("organization"))
        if organization_ref is not None:
            node = graph.organization(organization_ref[1])
            if node is None:
                raise FhirMappingError(
                    f"refers to Organization/{organization_ref[1]}, which is not in the answer",
                    path=where(role),
                )
            if node.business_id not in establishment_ids:
                establishment_ids.append(node.business_id)
        for service in role.get("healthcareService", ()):
            target = referenced(service)
            unit_id = graph.offer_unit(target[1]) if target else None
            if unit_id is None:
                raise FhirMappingError(
                    f"refers to {service.get('reference')}, not in the answer", path=where(role)
                )
            if unit_id not in unit_ids:
                unit_ids.append(unit_id)
        if not types:
            types = tuple(value for concept in role.get("code", ()) for value in codings(concept))
    return Professional(
        id=business,
        other_ids=other_ids_of(practitioner),
        types=types,
        person=person,
        establishment_ids=tuple(establishment_ids),
        unit_ids=tuple(unit_ids),
        record=record_of(practitioner),
    )
