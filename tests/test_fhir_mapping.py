"""The FHIR ↔ model mapping: the official ROR examples map onto the models with the CSD business
identifiers and lose nothing; generated regions survive model → FHIR → model exactly."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rorclient.codes import Oid
from rorclient.fhir import FhirAssembler, FhirMappingError, entities_from_resources, resources_for
from rorclient.models import (
    ENTITY_ADAPTER,
    Activity,
    Entity,
    EntityKind,
    Equipment,
    Establishment,
    LegalEntity,
    Offer,
    Professional,
    Unit,
    UnitLevel,
)
from rorclient.sandbox.dataset import generate_dataset
from tests._fsh import load_fsh

RESIDUE = "urn:rorclient:fhir:model-residue"
FHIR_ID = re.compile(r"^[A-Za-z0-9.-]{1,64}$")


# -- the official examples ----------------------------------------------------------------------------


def _json(directory: Path, name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((directory / name).read_text(encoding="utf-8"))
    return value


@pytest.fixture
def sample_graph(fhir_samples_dir: Path) -> dict[str, dict[str, Any]]:
    """The IG examples made into one graph: they are independent examples ("sans cohérence
    fonctionnelle"), so their logical ids are relabelled to make their references meet."""
    legal = load_fsh(fhir_samples_dir / "ROROrganizationExempleEJ.fsh")
    site = load_fsh(fhir_samples_dir / "ROROrganizationExempleEG.fsh")
    offer = _json(fhir_samples_dir, "HealthcareService-1234564.json")
    place = _json(fhir_samples_dir, "Location-ror-location-exemple.json")
    practitioner = load_fsh(fhir_samples_dir / "RORPractitionerExemple.fsh")
    role = load_fsh(fhir_samples_dir / "RORPractitionerRoleExemple.fsh")
    legal["id"] = site["partOf"]["reference"].split("/")[1]
    site["id"] = offer["providedBy"]["reference"].split("/")[1]
    place["id"] = offer["location"][0]["reference"].split("/")[1]
    practitioner["id"] = role["practitioner"]["reference"].split("/")[1]
    offer_copy = {**offer, "id": role["healthcareService"][0]["reference"].split("/")[1]}
    return {
        "legal": legal,
        "site": site,
        "offer": offer,
        "offer_for_role": offer_copy,
        "place": place,
        "practitioner": practitioner,
        "role": role,
    }


def _by_kind(entities: list[Entity]) -> dict[EntityKind, list[Entity]]:
    found: dict[EntityKind, list[Entity]] = {kind: [] for kind in EntityKind}
    for entity in entities:
        found[entity.kind].append(entity)
    return found


def test_official_organizations_map_to_legal_entity_and_establishment(sample_graph: dict[str, Any]) -> None:
    found = _by_kind(entities_from_resources([sample_graph["site"], sample_graph["legal"]]))
    (legal,) = found[EntityKind.LEGAL_ENTITY]
    (site,) = found[EntityKind.ESTABLISHMENT]
    assert isinstance(legal, LegalEntity) and isinstance(site, Establishment)
    assert legal.id == "2921317258"  # idNat_Struct, as CSD keys it
    assert legal.name == "Quiétude"
    assert [(t.code, t.coding_scheme) for t in legal.types] == [
        ("72", Oid.LEGAL_STATUS),
        ("2200", Oid.LEGAL_STATUS_GROUP),  # the example's table label differs from our NOS release
    ]
    assert ("921317258", "http://sirene.fr") in [(i.value, i.authority) for i in legal.other_ids]
    assert legal.record.updated == dt.datetime(2023, 12, 20, 10, 0)  # French legal time, as CSD
    assert legal.record.created == dt.datetime(2023, 12, 9, 14, 30)
    assert site.legal_entity_id == legal.id
    assert ("458174839", "https://finess.esante.gouv.fr") in [(i.value, i.authority) for i in site.other_ids]
    assert site.types[0].code == "460" and site.types[0].coding_scheme == Oid.ESTABLISHMENT_CATEGORY
    (address,) = site.addresses
    assert address.post_code == "92270" and address.city == "BOIS-COLOMBES"
    assert address.lines[0].parts["buildingNumber"] == "45"
    (contact,) = site.contacts
    assert contact.nature is not None and contact.nature.code == "06"
    assert contact.confidentiality.code == "1"
    assert contact.telecoms[0].value == "01.01.01.01.01" and contact.telecoms[0].channel.code == "2"
    # not modelled, kept: the financial help and accommodation extensions
    (provenance,) = site.fhir
    assert provenance.resource_type == "Organization" and provenance.id == sample_graph["site"]["id"]
    kept = json.loads(provenance.elements)
    assert {e["url"].rsplit("/", 1)[1] for e in kept["extension"]} == {
        "ror-organization-financial-help-type",
        "ror-organization-accomodation-family",
    }


def test_official_offer_maps_to_elementary_unit_with_activity_and_place(sample_graph: dict[str, Any]) -> None:
    resources = [sample_graph[name] for name in ("offer", "place", "site", "legal")]
    found = _by_kind(entities_from_resources(resources))
    (unit,) = found[EntityKind.UNIT]
    (activity,) = found[EntityKind.ACTIVITY]
    assert isinstance(unit, Unit) and isinstance(activity, Activity)
    assert unit.id == "06/0099999"  # the offer identifier: the CSD elementary unit's identifier
    assert unit.establishment_id == "12345687900034" and unit.parent_unit_id is None
    assert unit.level.value == "elementary_unit"
    assert unit.name == "5812  Chirurgie gynécologique - HOSPITALISATION COMPLETE"
    assert [(f.code, f.coding_scheme) for f in unit.activity_fields] == [("01", Oid.ACTIVITY_FIELD)]
    assert (activity.unit_id, activity.code.code, activity.code.coding_scheme) == (
        "06/0099999",
        "022",
        Oid.OPERATIONAL_ACTIVITY,
    )
    assert unit.sensitive is False
    assert (unit.patients.age_min.value, unit.patients.age_max.value) == (15, 150)
    assert unit.patients.age_min.unit.code == "a" and unit.patients.age_min.unit.coding_scheme == Oid.UCUM
    (contact,) = unit.contacts
    assert contact.nature is not None and contact.nature.code == "06"
    assert contact.telecoms[0].value == "0199999999"
    assert unit.record.updated == dt.datetime(2025, 4, 8, 15, 5, 27)  # 13:05:27 UTC in Paris
    assert unit.location is not None and unit.location.city.code == "78646"
    assert unit.location.city.coding_scheme == Oid.CITY
    assert unit.location.address is not None and unit.location.address.post_code == "78000"
    assert unit.location.address.lines[0].parts["buildingNumber"] == "7"
    # what the models do not hold is kept, and written back: nothing read is dropped
    offer_provenance = {item.resource_type: item for item in unit.fhir}
    assert offer_provenance["HealthcareService"].id == "1234564"
    kept = json.loads(offer_provenance["HealthcareService"].elements)
    assert {"availableTime", "category", "characteristic"} <= set(kept)
    rewritten = next(r for r in resources_for([unit, activity]) if r["resourceType"] == "HealthcareService")
    raw = sample_graph["offer"]
    for element in ("availableTime", "category", "characteristic", "specialty", "type", "name"):
        assert rewritten[element] == raw[element], element
    for item in raw["extension"]:
        assert item in rewritten["extension"], item["url"]


def test_official_practitioner_and_role_map_to_a_professional(sample_graph: dict[str, Any]) -> None:
    resources = [
        sample_graph[name] for name in ("role", "practitioner", "offer_for_role", "place", "site", "legal")
    ]
    found = _by_kind(entities_from_resources(resources))
    (professional,) = found[EntityKind.PROFESSIONAL]
    assert isinstance(professional, Professional)
    assert professional.id == "11111573474"  # idNat_PS
    assert professional.person.surname == "CHANMET" and professional.person.forename == "Cyndi"
    assert professional.unit_ids == ("06/0099999",)
    assert [(t.code, t.coding_scheme) for t in professional.types] == [("60", Oid.PROFESSION)]
    kept = {item.resource_type: json.loads(item.elements) for item in professional.fhir}
    assert kept["Practitioner"]["gender"] == "female"  # not modelled, kept
    assert "specialty" in kept["PractitionerRole"]


def test_a_reference_to_a_resource_that_is_absent_is_an_error_never_a_guess(
    sample_graph: dict[str, Any],
) -> None:
    with pytest.raises(FhirMappingError, match=r"HealthcareService/9597") as caught:
        entities_from_resources([sample_graph["practitioner"], sample_graph["role"]])
    assert caught.value.path == "PractitionerRole/ror-practitionerrole-exemple"
    lenient = FhirAssembler(strict=False)
    for resource in (sample_graph["practitioner"], sample_graph["role"], sample_graph["offer"]):
        lenient.add(resource)
    assert list(lenient.entities()) == []
    assert len(lenient.problems) == 2  # the offer's organization, the role's service: both said
    assert any("Organization/999999" in problem for problem in lenient.problems)


def test_an_organization_without_business_identifier_is_refused(sample_graph: dict[str, Any]) -> None:
    anonymous = copy.deepcopy(sample_graph["legal"])
    anonymous["identifier"] = [{"system": "http://sirene.fr", "value": "921317258"}]
    with pytest.raises(FhirMappingError, match="idNat_Struct"):
        entities_from_resources([anonymous])


# -- generated regions ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def region() -> list[Offer]:
    return list(generate_dataset(7, 40))


def _resources(offers: list[Offer]) -> list[dict[str, Any]]:
    return [resource for offer in offers for resource in resources_for(offer.entities())]


def _key(entity: Entity) -> tuple[str, str]:
    return entity.kind.value, entity.id


def _without_provenance(entity: Entity) -> Entity:
    return entity.model_copy(update={"fhir": ()}) if hasattr(entity, "fhir") else entity


def test_generated_region_survives_model_to_fhir_to_model_exactly(region: list[Offer]) -> None:
    original = {_key(e): e for offer in region for e in offer.entities()}
    kinds = {kind for kind, _ in original}
    assert kinds == {kind.value for kind in EntityKind}  # every kind is exercised
    resources = _resources(region)
    json.dumps(resources)  # plain JSON, as a server sends it
    back = entities_from_resources(resources)
    assert len(back) == len(original)
    assert {_key(e): _without_provenance(e) for e in back} == original
    for entity in back:
        for provenance in getattr(entity, "fhir", ()):
            assert provenance.elements == "{}", (entity.id, provenance)  # the mapping reproduces all


def test_generated_resources_are_well_formed_and_their_references_meet(region: list[Offer]) -> None:
    resources = _resources(region)
    by_id: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in resources:  # a legal entity comes with each of its sites: always the same resource
        assert by_id.setdefault((resource["resourceType"], resource["id"]), resource) == resource
    ids = set(by_id)
    assert all(FHIR_ID.match(logical) for _, logical in ids)
    text = json.dumps(resources)
    for reference in re.findall(r'"reference": "([A-Za-z]+)/([^"]+)"', text):
        assert reference in ids, reference
    for resource in resources:
        if resource["resourceType"] == "HealthcareService":  # regional $export filters on this tag
            region_tag = resource["meta"]["tag"][0]
            assert region_tag["code"] == resource["identifier"][0]["value"].split("/")[0]
            assert region_tag["system"].endswith("TRE-R30-RegionOM")


def test_the_natural_mapping_carries_structure_without_rorclient_residue(region: list[Offer]) -> None:
    """What a real ROR server sends carries no residue: the hierarchy, names, codes, closures and
    counts must come from the FHIR elements themselves."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: [strip(e) for e in v if e.get("url") != RESIDUE] if k == "extension" else strip(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [strip(item) for item in value]
        return value

    def projection(entity: Entity) -> tuple[Any, ...]:
        closed = getattr(entity, "closing_date", None) or getattr(entity, "final_closing_date", None)
        count = entity.count if isinstance(entity, Equipment) else None
        # activities and equipment have no resource of their own: their offer's dates
        updated = entity.record.updated if hasattr(entity, "fhir") else None
        return (entity.kind, entity.id, entity.parent_id, entity.name, closed, count, updated)

    original = sorted({projection(e) for offer in region for e in offer.entities()})
    bare = [strip(resource) for resource in _resources(region)]
    assert RESIDUE not in json.dumps(bare)
    assert sorted(projection(e) for e in entities_from_resources(bare)) == original


def test_assembly_does_not_depend_on_the_order_resources_arrive_in(region: list[Offer]) -> None:
    resources = _resources(region[:10])
    forwards = {_key(e): e for e in entities_from_resources(resources)}
    backwards = {_key(e): e for e in entities_from_resources(list(reversed(resources)))}
    assert forwards == backwards


def test_a_resource_seen_twice_counts_once_and_the_newest_wins(region: list[Offer]) -> None:
    resources = _resources(region[:1])
    offer = next(r for r in resources if r["resourceType"] == "HealthcareService")
    newer = copy.deepcopy(offer)
    newer["name"] = "RENAMED"
    newer["meta"]["lastUpdated"] = "2030-01-01T00:00:00+01:00"
    newer["extension"] = [e for e in newer["extension"] if e["url"] != RESIDUE]
    older = copy.deepcopy(offer)
    older["name"] = "STALE"
    older["meta"]["lastUpdated"] = "2000-01-01T00:00:00+01:00"
    entities = entities_from_resources([*resources, newer, older])
    units = [e for e in entities if e.kind is EntityKind.UNIT and e.id == offer["identifier"][0]["value"]]
    assert [u.name for u in units] == ["RENAMED"]
    assert units[0].record.updated == dt.datetime(2030, 1, 1)


def test_resources_rorclient_does_not_model_are_counted_not_mapped() -> None:
    assembler = FhirAssembler()
    assembler.add({"resourceType": "Task", "id": "t1"})
    assembler.add({"resourceType": "OperationOutcome", "id": "o1"})
    assert list(assembler.entities()) == []
    assert dict(assembler.ignored) == {"Task": 1, "OperationOutcome": 1}


def test_fhir_provenance_is_stored_and_csd_entities_serialise_as_before(region: list[Offer]) -> None:
    offer = region[0]
    unit = offer.units[0]
    assert "fhir" not in json.loads(unit.model_dump_json())  # CSD rows keep their content hash
    back = entities_from_resources(resources_for(offer.entities()))
    read = next(e for e in back if e.kind is EntityKind.UNIT)
    assert read.fhir  # type: ignore[union-attr]
    assert ENTITY_ADAPTER.validate_json(read.model_dump_json()) == read


def test_instants_are_read_in_french_legal_time_whatever_their_zone() -> None:
    from rorclient.fhir._values import moment

    assert moment("2025-07-01T10:00:00Z") == dt.datetime(2025, 7, 1, 12, 0)
    assert moment("2025-01-01T10:00:00.000+00:00") == dt.datetime(2025, 1, 1, 11, 0)
    assert moment("2025-01-01T10:00:00+01:00") == dt.datetime(2025, 1, 1, 10, 0)
    assert moment("2025-01-01") == dt.datetime(2025, 1, 1)
    with pytest.raises(FhirMappingError, match="not a FHIR date-time"):
        moment("yesterday")


def test_coordinates_keep_their_decimals(region: list[Offer]) -> None:
    located = [u for offer in region for u in offer.units if u.location and u.location.coordinates]
    assert located
    back = {e.id: e for e in entities_from_resources(_resources(region)) if e.kind is EntityKind.UNIT}
    for unit in located:
        got = back[unit.id].location  # type: ignore[union-attr]
        assert got is not None and got.coordinates is not None and unit.location is not None
        assert unit.location.coordinates is not None
        assert got.coordinates.latitude == unit.location.coordinates.latitude
        assert isinstance(got.coordinates.latitude, Decimal)


def test_an_internal_unit_with_its_own_activity_survives_the_round_trip() -> None:
    """PLATINES data give the pôle an operational activity: its FHIR form is an offer provided by the
    pôle's own Organization, read back as the pôle's activity (no second unit)."""
    from rorclient.sandbox._platines import platines_offer

    offer = platines_offer()
    pole = next(u for u in offer.units if u.level is not UnitLevel.ELEMENTARY_UNIT)
    assert any(a.unit_id == pole.id for a in offer.activities)
    resources = list(resources_for(offer.entities()))
    carriers = [
        r
        for r in resources
        if r["resourceType"] == "HealthcareService"
        and r["providedBy"]["reference"].endswith(pole.id.replace("/", "-"))
        and r["identifier"][0]["value"] == pole.id
    ]
    assert len(carriers) == 1
    back = entities_from_resources(resources)
    assert {_key(e): _without_provenance(e) for e in back} == {_key(e): e for e in offer.entities()}


def test_a_residue_extension_cannot_move_a_row(region: list[Offer]) -> None:
    """Only rorclient writes the residue extension; a server sending one that would re-identify or
    re-parent an entity is refused, never followed."""
    resources = _resources(region[:1])
    offer = next(r for r in resources if r["resourceType"] == "HealthcareService")
    hostile = copy.deepcopy(offer)
    hostile["extension"] = [e for e in hostile["extension"] if e["url"] != RESIDUE]
    hostile["extension"].append(
        {"url": RESIDUE, "valueString": json.dumps({"establishment_id": "1999999999"})}
    )
    others = [r for r in resources if r is not offer]
    with pytest.raises(FhirMappingError, match="may not set establishment_id"):
        entities_from_resources([*others, hostile])
    harmless = copy.deepcopy(hostile)
    harmless["extension"][-1]["valueString"] = json.dumps({"name": "FROM RESIDUE"})
    (unit,) = [
        e for e in entities_from_resources([*others, harmless]) if e.id == offer["identifier"][0]["value"]
    ]
    assert unit.name == "FROM RESIDUE"


@pytest.mark.parametrize(
    ("damage", "path"),
    [
        (lambda r: r.update(identifier="06/0099999"), "HealthcareService/"),
        (lambda r: r.update(meta={"lastUpdated": "not a date"}), "HealthcareService/"),
        (lambda r: r.update(specialty={"coding": "022"}), "HealthcareService/"),
        (lambda r: r.update(providedBy="Organization/x"), "HealthcareService/"),
    ],
)
def test_malformed_resources_are_typed_errors_naming_the_resource(
    region: list[Offer], damage: Any, path: str
) -> None:
    resources = copy.deepcopy(_resources(region[:1]))
    offer = next(r for r in resources if r["resourceType"] == "HealthcareService")
    damage(offer)
    with pytest.raises(FhirMappingError) as caught:
        entities_from_resources(resources)
    assert caught.value.path == f"{path}{offer['id']}"
    lenient = FhirAssembler(strict=False)
    for resource in resources:
        lenient.add(resource)
    assert len(list(lenient.entities())) > 0 and len(lenient.problems) >= 1


def test_something_that_is_not_a_resource_is_refused() -> None:
    with pytest.raises(FhirMappingError, match="not a FHIR resource"):
        entities_from_resources(["Organization"])  # type: ignore[list-item]
