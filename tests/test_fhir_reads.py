"""What the ``fhir`` source reads: establishment and unit graphs give exactly their subtree, deltas name
the establishments a change touches, truncated windows are split and never returned in part."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from rorclient.fhir import FhirMappingError, resources_for
from rorclient.fhir._reads import DeltaTooLargeError, FhirReads
from rorclient.models import Entity, Offer, UnitLevel
from rorclient.sandbox.dataset import generate_dataset
from tests._fhir_fake import FakeFhirApi, by_key_without_provenance, region_resources

BEFORE = dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)  # the dataset's reference time: nothing is newer
LATER = "2024-06-02T10:00:00+02:00"


@pytest.fixture(scope="module")
def region() -> list[Offer]:
    return list(generate_dataset(11, 12))


def _touched(resources: list[dict[str, Any]], resource_type: str, logical: str) -> list[dict[str, Any]]:
    changed = copy.deepcopy(resources)
    for resource in changed:
        if resource["resourceType"] == resource_type and resource["id"] == logical:
            resource["meta"]["lastUpdated"] = LATER
            return changed
    raise AssertionError(f"{resource_type}/{logical} not found")


def test_an_establishment_graph_gives_exactly_its_subtree(region: list[Offer]) -> None:
    reads = FhirReads(FakeFhirApi(region_resources(region)))
    for truth in region[:4]:
        (site,) = truth.establishments
        found_id, offer = reads.establishment(site.id)
        assert found_id == site.id
        assert by_key_without_provenance(offer.entities()) == by_key_without_provenance(truth.entities())


def test_a_unit_graph_gives_the_unit_its_descendants_and_its_owners(region: list[Offer]) -> None:
    reads = FhirReads(FakeFhirApi(region_resources(region)))
    truth = next(o for o in region if any(u.level is not UnitLevel.ELEMENTARY_UNIT for u in o.units))
    inner = next(u for u in truth.units if u.level is not UnitLevel.ELEMENTARY_UNIT)
    elementary = next(u for u in truth.units if u.level is UnitLevel.ELEMENTARY_UNIT)
    for unit in (inner, elementary):
        unit_id, offer = reads.unit(unit.id)
        assert unit_id == unit.id
        got = by_key_without_provenance(offer.entities())
        assert ("unit", unit.id) in got and ("establishment", unit.establishment_id) in got
        below = {u.id for u in truth.units if u.parent_unit_id == unit.id}
        assert below <= {u.id for u in offer.units}
        expected = {a.id for a in truth.activities if a.unit_id in {unit.id, *below}}
        assert {a.id for a in offer.activities} >= expected
        for key, entity in got.items():
            assert by_key_without_provenance(truth.entities()).get(key) == entity, key


def test_identifiers_the_ror_does_not_know_give_nothing_and_a_legal_entity_is_not_an_establishment(
    region: list[Offer],
) -> None:
    reads = FhirReads(FakeFhirApi(region_resources(region)))
    assert reads.establishment("1999999999") == (None, Offer())
    assert reads.unit("99/99999") == ("99/99999", Offer())
    with pytest.raises(FhirMappingError, match="names a legal entity, not an establishment"):
        reads.establishment(region[0].legal_entities[0].id)


@pytest.mark.parametrize(
    "resource_type", ["HealthcareService", "Location", "Organization", "PractitionerRole"]
)
def test_a_delta_names_the_establishment_a_changed_resource_belongs_to(
    region: list[Offer], resource_type: str
) -> None:
    resources = region_resources(region)
    candidates = [r for r in resources if r["resourceType"] == resource_type]
    if resource_type == "Organization":
        candidates = [r for r in candidates if r["id"].startswith("oi-")]
    assert candidates
    changed = candidates[len(candidates) // 2]
    reads = FhirReads(FakeFhirApi(_touched(resources, resource_type, changed["id"])))
    delta = reads.changes(BEFORE)
    owner = next(
        o.establishments[0].id
        for o in region
        if any(r["id"] == changed["id"] for r in resources_for(o.entities()))
    )
    assert delta.establishments == [owner]
    assert not delta.unplaced
    assert delta.newest == dt.datetime.fromisoformat(LATER)


def test_a_changed_legal_entity_is_read_itself(region: list[Offer]) -> None:
    legal = region[0].legal_entities[0]
    reads = FhirReads(FakeFhirApi(_touched(region_resources(region), "Organization", f"ej-{legal.id}")))
    delta = reads.changes(BEFORE)
    assert [e.id for e in delta.legal_entities] == [legal.id]
    assert delta.establishments == []


def test_nothing_changed_means_an_empty_delta(region: list[Offer]) -> None:
    delta = FhirReads(FakeFhirApi(region_resources(region))).changes(BEFORE)
    assert (delta.establishments, delta.legal_entities, delta.resources) == ([], [], 0)


def test_a_truncated_window_is_split_until_complete(region: list[Offer]) -> None:
    resources = region_resources(region)
    offers = [r for r in resources if r["resourceType"] == "HealthcareService"][:9]
    for index, offer in enumerate(offers):
        offer["meta"]["lastUpdated"] = f"2024-06-02T10:{index:02d}:00+02:00"
    complete = FhirReads(FakeFhirApi(resources)).changes(BEFORE)
    api = FakeFhirApi(resources, limit=3)
    delta = FhirReads(api).changes(BEFORE, now=dt.datetime(2024, 6, 3, tzinfo=dt.UTC))
    assert sorted(delta.establishments) == sorted(complete.establishments)
    assert delta.windows > complete.windows
    windows = [p for t, p in api.searches if t == "HealthcareService"]
    assert any(
        ("_lastUpdated", v) for p in windows for (k, v) in p if k == "_lastUpdated" and v.startswith("lt")
    )


def test_a_delta_that_cannot_be_split_enough_is_refused_whole(region: list[Offer]) -> None:
    resources = region_resources(region)
    for resource in resources:
        if resource["resourceType"] == "HealthcareService":
            resource["meta"]["lastUpdated"] = LATER  # all at the same instant: no window is small enough
    with pytest.raises(DeltaTooLargeError, match="pull instead"):
        FhirReads(FakeFhirApi(resources, limit=3)).changes(BEFORE, now=dt.datetime(2024, 6, 3, tzinfo=dt.UTC))


def test_an_export_is_read_whole_and_regional_when_regions_are_set(region: list[Offer]) -> None:
    api = FakeFhirApi(region_resources(region))
    progress: list[str | None] = []
    with FhirReads(api, regions=["11", "27"]).export(on_progress=progress.append) as pulled:
        entities = list(pulled.entities())
    truth: dict[tuple[str, str], Entity] = {}
    for offer in region:
        truth.update(by_key_without_provenance(offer.entities()))
    assert {
        (e.kind.value, e.id): e.model_copy(update={"fhir": ()}) if hasattr(e, "fhir") else e for e in entities
    } == truth
    assert pulled.transaction_time == dt.datetime(2024, 6, 1, 10, tzinfo=dt.UTC)
    assert progress == ["50%"]
    (type_filter,) = api.type_filters
    assert type_filter is not None and type_filter.endswith(
        "|11,https://mos.esante.gouv.fr/NOS/TRE_R30-RegionOM/FHIR/TRE-R30-RegionOM|27"
    )


def test_scope_follows_the_configured_regions(region: list[Offer]) -> None:
    offer = region[0]
    own = next(u for u in offer.units if u.level is UnitLevel.ELEMENTARY_UNIT).id.split("/")[0]
    assert FhirReads(FakeFhirApi([]), regions=[own]).in_scope(offer)
    assert not FhirReads(FakeFhirApi([]), regions=["00"]).in_scope(offer)
    assert FhirReads(FakeFhirApi([])).in_scope(offer)


def test_the_establishments_of_a_legal_entity_are_found(region: list[Offer]) -> None:
    legal = region[0].legal_entities[0]
    sites = sorted({o.establishments[0].id for o in region if o.legal_entities[0].id == legal.id})
    assert sorted(FhirReads(FakeFhirApi(region_resources(region))).establishments_of(legal.id)) == sites
    assert FhirReads(FakeFhirApi(region_resources(region))).establishments_of("1999999999") == []
