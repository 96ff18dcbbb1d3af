"""A deliberately small entities → FHIR mapping for testing the sandbox's FHIR plumbing on its own
(search, paging, includes, export, auth), independent of rorclient's real mapping."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from rorclient.models import Entity, EntityKind, UnitLevel
from rorclient.sandbox._clock import ROR_ZONE

REGION = "https://mos.esante.gouv.fr/NOS/TRE_R30-RegionOM/FHIR/TRE-R30-RegionOM"
STRUCTURE = "urn:oid:1.2.250.1.71.4.2.2"
OI = "https://oi.esante.gouv.fr"


def logical(value: str) -> str:
    return value.replace("/", "-")


def simple_resources(entities: Iterable[Entity]) -> Iterator[dict[str, Any]]:
    for entity in entities:
        updated = entity.record.updated
        meta: dict[str, Any] = {
            "lastUpdated": (updated if updated.tzinfo else updated.replace(tzinfo=ROR_ZONE)).isoformat()
        }
        kind = entity.kind
        if kind is EntityKind.LEGAL_ENTITY:
            yield {
                "resourceType": "Organization",
                "id": f"ej-{entity.id}",
                "meta": meta,
                "identifier": [{"system": STRUCTURE, "value": entity.id}],
                "name": entity.name,
            }
        elif kind is EntityKind.ESTABLISHMENT:
            yield {
                "resourceType": "Organization",
                "id": f"eg-{entity.id}",
                "meta": meta,
                "identifier": [{"system": STRUCTURE, "value": entity.id}],
                "partOf": {"reference": f"Organization/ej-{entity.parent_id}"},
                "name": entity.name,
            }
        elif kind is EntityKind.UNIT:
            region = entity.id.split("/", 1)[0]
            tagged = {**meta, "tag": [{"system": REGION, "code": region}]}
            parent = (
                f"oi-{logical(entity.parent_unit_id)}"
                if entity.parent_unit_id
                else f"eg-{entity.establishment_id}"
            )
            yield {
                "resourceType": "Organization",
                "id": f"oi-{logical(entity.id)}",
                "meta": tagged,
                "identifier": [{"system": OI, "value": entity.id}],
                "partOf": {"reference": f"Organization/{parent}"},
                "name": entity.name,
            }
            if entity.level is UnitLevel.ELEMENTARY_UNIT:
                yield {
                    "resourceType": "HealthcareService",
                    "id": f"hs-{logical(entity.id)}",
                    "meta": tagged,
                    "identifier": [{"value": entity.id}],
                    "providedBy": {"reference": f"Organization/oi-{logical(entity.id)}"},
                    "location": [{"reference": f"Location/loc-{logical(entity.id)}"}],
                    "name": entity.name,
                }
                yield {
                    "resourceType": "Location",
                    "id": f"loc-{logical(entity.id)}",
                    "meta": tagged,
                    "managingOrganization": {"reference": f"Organization/oi-{logical(entity.id)}"},
                }
