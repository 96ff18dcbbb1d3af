"""Entities → FHIR resources of the ROR profiles: the natural mapping, element by element.

This is one half of the mapping table of docs/data-model.md; :mod:`rorclient.fhir._parse` is the other
half and must stay its inverse. Only elements that have a FHIR home are written here: what a model
carries beyond them (CSD ``record`` of sub-objects, CSD ``extras``...) is the residue, added by
:mod:`rorclient.fhir._mapping`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

from rorclient.fhir import _systems as S
from rorclient.fhir._values import Json, coding, concept, extension, instant, logical_id, reference
from rorclient.geography import region_of
from rorclient.models import (
    Activity,
    Address,
    Age,
    Contact,
    Entity,
    Equipment,
    Establishment,
    Identifier,
    LegalEntity,
    Location,
    Professional,
    RecordMeta,
    Telecom,
    Unit,
)

#: Prefix of the logical id rorclient gives each kind of resource.
PREFIX_LEGAL_ENTITY: Final = "ej"
PREFIX_ESTABLISHMENT: Final = "eg"
PREFIX_INTERNAL_UNIT: Final = "oi"
PREFIX_OFFER: Final = "hs"
PREFIX_LOCATION: Final = "loc"
PREFIX_PRACTITIONER: Final = "ps"
PREFIX_ROLE: Final = "psr"

#: Structured address parts (CSD ``addressLine/@component``) ↔ ISO 21090 ADXP extensions.
ADXP_OF_PART: Final = {
    "buildingNumber": "houseNumber",
    "buildingNumberSuffix": "buildingNumberSuffix",
    "streetType": "streetNameType",
    "streetName": "streetNameBase",
    "additionalLocator": "additionalLocator",
    "deliveryInstallationType": "deliveryInstallationType",
    "deliveryInstallationArea": "deliveryInstallationArea",
    "deliveryMode": "deliveryMode",
}
ADDRESS_LEVEL_PARTS: Final = {"postCode": "postalCode", "cityName": "city"}

#: TRE_R200 channel → ContactPoint.system (the channel itself travels in its ROR extension).
_CONTACT_POINT_SYSTEM: Final = {"1": "phone", "2": "phone", "3": "email", "4": "fax", "5": "url"}

#: The TRE_R354 type of a Location's functional identifier.
LOCATION_ID_TYPE: Final = "25"


def unit_reference(unit: Unit) -> Json:
    """The owner of a unit (its parent internal unit, or its establishment) as a reference."""
    if unit.parent_unit_id is not None:
        return reference("Organization", logical_id(PREFIX_INTERNAL_UNIT, unit.parent_unit_id))
    return reference("Organization", logical_id(PREFIX_ESTABLISHMENT, unit.establishment_id))


def _meta(record: RecordMeta, profile: str, entity: Entity) -> Json:
    meta: Json = {"lastUpdated": instant(record.updated), "profile": [profile]}
    region = region_of(entity)
    if region is not None:
        meta["tag"] = [{"system": S.SYSTEM_REGION, "code": region}]
    return meta


def _creation(record: RecordMeta) -> Json:
    return extension(S.EXT_CREATION_DATE, valueDateTime=instant(record.created))


def _identifiers(other_ids: Sequence[Identifier], business: Json) -> list[Json]:
    """``other_ids`` as identifiers; the business identifier (typed) merged into the one of equal value
    and system, or added first."""
    out: list[Json] = []
    merged = False
    for other in other_ids:
        value, authority = other.value, other.authority
        item: Json = {"system": S.identifier_system(authority), "value": value}
        if (
            not merged
            and value == business["value"]
            and item["system"] == business.get("system", item["system"])
        ):
            if "type" in business:
                item = {"type": business["type"], **item}
            merged = True
        out.append(item)
    if not merged:
        out.insert(0, business)
    return out


def _address(address: Address) -> Json:
    out: Json = {}
    lines: list[str | None] = []
    line_extensions: list[Json | None] = []
    for line in address.lines:
        lines.append(line.text)
        parts = [
            extension(S.ADXP + ADXP_OF_PART.get(name, name), valueString=value)
            for name, value in line.parts.items()
            if name not in ADDRESS_LEVEL_PARTS
        ]
        line_extensions.append({"extension": parts} if parts else None)
        for name, element in ADDRESS_LEVEL_PARTS.items():
            if name in line.parts and element not in out:
                out[element] = line.parts[name]
    if lines:
        out["line"] = lines
        if any(item is not None for item in line_extensions):
            out["_line"] = line_extensions
    return out


def _telecom(telecom: Telecom) -> Json:
    out: Json = {
        "system": _CONTACT_POINT_SYSTEM.get(telecom.channel.code, "other"),
        "extension": [extension(S.EXT_TELECOM_CHANNEL, valueCodeableConcept=concept(telecom.channel))],
    }
    if telecom.value is not None:
        out["value"] = telecom.value
    if telecom.confidentiality is not None:
        out["extension"].append(
            extension(S.EXT_TELECOM_CONFIDENTIALITY, valueCodeableConcept=concept(telecom.confidentiality))
        )
    return out


def _organization_contact(contact: Contact) -> Json:
    extensions = [
        extension(S.EXT_CONTACT_CONFIDENTIALITY, valueCodeableConcept=concept(contact.confidentiality))
    ]
    if contact.function is not None:
        extensions.append(extension(S.EXT_CONTACT_FUNCTION, valueCodeableConcept=concept(contact.function)))
    if contact.description is not None:
        extensions.append(extension(S.EXT_CONTACT_DESCRIPTION, valueString=contact.description))
    out: Json = {"extension": extensions}
    if contact.nature is not None:
        out["purpose"] = concept(contact.nature)
    if contact.name is not None:
        out["name"] = {"text": contact.name}
    if contact.telecoms:
        out["telecom"] = [_telecom(telecom) for telecom in contact.telecoms]
    return out


def _offer_contact(contact: Contact) -> Json:
    """The ``ror-healthcareservice-contact`` extension (sub-extensions as in the IG example)."""
    parts: list[Json] = []
    if contact.nature is not None:
        parts.append(extension("purposeContact", valueCodeableConcept=concept(contact.nature)))
    if contact.function is not None:
        parts.append(extension("functionContact", valueCodeableConcept=concept(contact.function)))
    if contact.name is not None:
        parts.append(extension("name", valueString=contact.name))
    if contact.description is not None:
        parts.append(extension("description", valueString=contact.description))
    parts.append(extension(S.EXT_CONFIDENTIALITY, valueCodeableConcept=concept(contact.confidentiality)))
    for telecom in contact.telecoms:
        sub = [extension(S.EXT_TELECOM_CHANNEL, valueCodeableConcept=concept(telecom.channel))]
        if telecom.confidentiality is not None:
            sub.append(
                extension(
                    S.EXT_TELECOM_CONFIDENTIALITY, valueCodeableConcept=concept(telecom.confidentiality)
                )
            )
        if telecom.value is not None:
            sub.append(extension("telecomAddress", valueString=telecom.value))
        parts.append({"extension": sub, "url": S.EXT_HS_CONTACT_TELECOM})
    return {"extension": parts, "url": S.EXT_HS_CONTACT}


def _period(start: dt.date | None, end: dt.date | None) -> Json | None:
    period: Json = {}
    if start is not None:
        period["start"] = start.isoformat()
    if end is not None:
        period["end"] = end.isoformat()
    return extension(S.EXT_PERIOD, valuePeriod=period) if period else None


def _organization(
    entity: LegalEntity | Establishment | Unit,
    prefix: str,
    business: Json,
    *,
    closing: dt.date | None,
) -> Json:
    extensions = [_creation(entity.record)]
    period = _period(entity.creation_date, closing)
    if period is not None:
        extensions.append(period)
    resource: Json = {
        "resourceType": "Organization",
        "id": logical_id(prefix, entity.id),
        "meta": _meta(entity.record, S.PROFILE_ORGANIZATION, entity),
        "extension": extensions,
        "identifier": _identifiers(entity.other_ids, business),
    }
    if entity.types:
        resource["type"] = [concept(value) for value in entity.types]
    resource["name"] = entity.name
    if entity.other_names:
        resource["_name"] = {
            "extension": [extension(S.EXT_ADDITIONAL_NAME, valueString=name) for name in entity.other_names]
        }
    if entity.addresses:
        resource["address"] = [_address(address) for address in entity.addresses]
    if entity.contacts:
        resource["contact"] = [_organization_contact(contact) for contact in entity.contacts]
    return resource


def _structure_identifier(value: str) -> Json:
    return {
        "type": concept_of(S.SYSTEM_STRUCTURE_ID_TYPE, "40", "Identifiant national de structure"),
        "system": S.SYSTEM_ID_NAT_STRUCT,
        "value": value,
    }


def concept_of(system: str, code: str, display: str | None = None) -> Json:
    item: Json = {"system": system, "code": code}
    if display is not None:
        item["display"] = display
    return {"coding": [item]}


def legal_entity(entity: LegalEntity) -> Json:
    resource = _organization(
        entity, PREFIX_LEGAL_ENTITY, _structure_identifier(entity.id), closing=entity.closing_date
    )
    if entity.closing_reason is not None:
        resource["extension"].append(
            extension(S.EXT_CLOSING_TYPE, valueCodeableConcept=concept(entity.closing_reason))
        )
    return resource


def establishment(entity: Establishment) -> Json:
    resource = _organization(
        entity, PREFIX_ESTABLISHMENT, _structure_identifier(entity.id), closing=entity.closing_date
    )
    if entity.closing_reason is not None:
        resource["extension"].append(
            extension(S.EXT_CLOSING_TYPE, valueCodeableConcept=concept(entity.closing_reason))
        )
    if entity.drop_zone is not None:
        resource["extension"].append(extension(S.EXT_DROP_ZONE, valueBoolean=entity.drop_zone))
    if entity.use_name is not None:
        resource["alias"] = [entity.use_name]
    resource["partOf"] = reference("Organization", logical_id(PREFIX_LEGAL_ENTITY, entity.legal_entity_id))
    return resource


def _unit_identifier(value: str) -> Json:
    return {
        "type": concept_of(S.SYSTEM_OTHER_ID_TYPE, "42", "Identifiant OI"),
        "system": S.SYSTEM_OI,
        "value": value,
    }


def internal_unit(unit: Unit) -> Json:
    """A pôle, service or functional unit: an Organization (OI) whose ``partOf`` is its owner."""
    resource = _organization(
        unit, PREFIX_INTERNAL_UNIT, _unit_identifier(unit.id), closing=unit.final_closing_date
    )
    resource["partOf"] = unit_reference(unit)
    return resource


def _location(unit: Unit, location: Location | None, equipment: Sequence[Equipment]) -> Json:
    record = location.record if location is not None else unit.record
    resource: Json = {
        "resourceType": "Location",
        "id": logical_id(PREFIX_LOCATION, unit.id),
        "meta": _meta(record, S.PROFILE_LOCATION, unit),
        "extension": [_creation(record)],
        "identifier": [
            {
                "type": concept_of(S.SYSTEM_LOCATION_ID_TYPE, LOCATION_ID_TYPE),
                "value": unit.id,
            }
        ],
    }
    if location is not None:
        resource["extension"].append(extension(S.EXT_COMMUNE, valueCodeableConcept=concept(location.city)))
        if location.status is not None:
            resource["operationalStatus"] = coding(location.status)
        if location.name is not None:
            resource["name"] = location.name
        if location.description is not None:
            resource["description"] = location.description
        if location.address is not None:
            resource["address"] = _address(location.address)
        if location.coordinates is not None:
            resource["position"] = {
                "latitude": float(location.coordinates.latitude),
                "longitude": float(location.coordinates.longitude),
            }
    for item in equipment:
        parts = [extension("equipmentType", valueCodeableConcept=concept(item.code))]
        if item.count is not None:
            parts.append(extension("nbEquipment", valueInteger=item.count))
        resource["extension"].append({"extension": parts, "url": S.EXT_EQUIPMENT})
    resource["managingOrganization"] = reference(
        "Organization", logical_id(PREFIX_ESTABLISHMENT, unit.establishment_id)
    )
    return resource


def offer(unit: Unit, activities: Sequence[Activity], equipment: Sequence[Equipment]) -> list[Json]:
    """An elementary unit: its HealthcareService, and its Location when it has a place or equipment."""
    patient_parts: list[Json] = [
        extension("patientType", valueCodeableConcept=concept(value)) for value in unit.patients.supported
    ]
    patient_parts.append(
        extension(
            "ageRange",
            valueRange={
                "low": _age(unit.patients.age_min),
                "high": _age(unit.patients.age_max),
            },
        )
    )
    extensions: list[Json] = [
        extension(S.EXT_SENSITIVE_UNIT, valueBoolean=unit.sensitive),
        {"extension": patient_parts, "url": S.EXT_PATIENT_TYPE},
        _creation(unit.record),
    ]
    extensions.extend(_offer_contact(contact) for contact in unit.contacts)
    business = {"type": concept_of(S.SYSTEM_OFFER_ID_TYPE, "35"), "value": unit.id}
    resource: Json = {
        "resourceType": "HealthcareService",
        "id": logical_id(PREFIX_OFFER, unit.id),
        "meta": _meta(unit.record, S.PROFILE_HEALTHCARE_SERVICE, unit),
        "extension": extensions,
        "identifier": _identifiers(unit.other_ids, business),
        "providedBy": unit_reference(unit),
    }
    if unit.activity_fields:
        resource["type"] = [concept(value) for value in unit.activity_fields]
    if activities:
        resource["specialty"] = [concept(item.code, *item.act_families) for item in activities]
    resources = [resource]
    if unit.location is not None or equipment:
        location = _location(unit, unit.location, equipment)
        resource["location"] = [reference("Location", location["id"])]
        resources.append(location)
    resource["name"] = unit.name
    if unit.other_names:
        resource["_name"] = {
            "extension": [extension(S.EXT_ADDITIONAL_NAME, valueString=name) for name in unit.other_names]
        }
    resource["characteristic"] = [concept(unit.care_mode)]
    if unit.final_closing_date is not None:
        resource["notAvailable"] = [
            {
                "id": S.CLOSING_REOPENING_SLICE,
                "description": "Fermeture définitive",
                "during": {"start": unit.final_closing_date.isoformat()},
            }
        ]
    return resources


def _age(age: Age) -> Json:
    return {"value": age.value, "system": S.system_of(age.unit.coding_scheme), "code": age.unit.code}


def professional(entity: Professional) -> list[Json]:
    """A Practitioner, and one PractitionerRole per unit (service) and per further establishment."""
    practitioner_id = logical_id(PREFIX_PRACTITIONER, entity.id)
    person = entity.person
    name: Json = {}
    if person.surname is not None:
        name["family"] = person.surname
    if person.forename is not None:
        name["given"] = [person.forename]
    names = [
        {**name, "text": text} if index == 0 else {"text": text}
        for index, text in enumerate(person.common_names)
    ]
    if not person.common_names:
        names = [name]
    business = {"system": S.SYSTEM_ID_NAT_PS, "value": entity.id}
    practitioner: Json = {
        "resourceType": "Practitioner",
        "id": practitioner_id,
        "meta": _meta(entity.record, S.PROFILE_PRACTITIONER, entity),
        "extension": [_creation(entity.record)],
        "identifier": _identifiers(entity.other_ids, business),
        "name": names,
    }
    resources = [practitioner]
    count = max(len(entity.unit_ids), len(entity.establishment_ids))
    for index in range(count):
        role: Json = {
            "resourceType": "PractitionerRole",
            "id": f"{logical_id(PREFIX_ROLE, entity.id)}-{index}"[:64],
            "meta": _meta(entity.record, S.PROFILE_PRACTITIONER_ROLE, entity),
            "extension": [_creation(entity.record)],
            "practitioner": reference("Practitioner", practitioner_id),
        }
        if index < len(entity.establishment_ids):
            role["organization"] = reference(
                "Organization", logical_id(PREFIX_ESTABLISHMENT, entity.establishment_ids[index])
            )
        if index < len(entity.unit_ids):
            role["healthcareService"] = [
                reference("HealthcareService", logical_id(PREFIX_OFFER, entity.unit_ids[index]))
            ]
        if entity.types:
            role["code"] = [concept(*entity.types)]
        resources.append(role)
    return resources


#: Elements an attached offer keeps from :func:`offer`'s rendering.
_ATTACHED_KEEP: Final = ("resourceType", "id", "meta", "identifier", "specialty", "location", "name")


def attached_offer(unit: Unit, activities: Sequence[Activity], equipment: Sequence[Equipment]) -> list[Json]:
    """The activities and equipment of an internal unit that is not elementary (a pôle with its own
    operational activity, as PLATINES data have): a HealthcareService with the unit's identifiantOI
    as offer identifier, provided by the unit's own Organization, and its Location for equipment."""
    resources = offer(unit, activities, equipment)
    carrier: Json = {key: resources[0][key] for key in _ATTACHED_KEEP if key in resources[0]}
    carrier["extension"] = [_creation(unit.record)]
    carrier["providedBy"] = reference("Organization", logical_id(PREFIX_INTERNAL_UNIT, unit.id))
    return [carrier, *resources[1:]]
