"""``FhirSource`` on the Source protocol, against an in-process FHIR API: snapshots with the export's
watermark, deltas naming establishments (scoped to the configured regions), reads that never delete."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from rorclient.errors import RorError
from rorclient.fhir._reads import DeltaTooLargeError
from rorclient.models import Entity, Offer, UnitLevel
from rorclient.sandbox.dataset import generate_dataset
from rorclient.sources import Source
from rorclient.sources.fhir import FhirSource, FhirUnknownIdentifierError
from rorclient.sync._plan import is_unknown
from tests._fhir_fake import FakeFhirApi, by_key_without_provenance, region_resources

SINCE = dt.datetime(2024, 6, 1, 14, 0)  # naive, the ROR's time frame: after every generated change


@pytest.fixture(scope="module")
def region() -> list[Offer]:
    return list(generate_dataset(5, 10))


def _touch(resources: list[dict[str, Any]], logical: str) -> list[dict[str, Any]]:
    changed = copy.deepcopy(resources)
    for resource in changed:
        if resource["id"] == logical:
            resource["meta"]["lastUpdated"] = "2024-06-02T09:00:00+02:00"
    return changed


def test_it_is_a_source_that_never_claims_deletions(region: list[Offer]) -> None:
    source = FhirSource("national", FakeFhirApi([]))
    assert isinstance(source, Source)
    assert source.traits.deltas and source.traits.reads
    assert not source.traits.rereads_prove_deletions


def test_a_snapshot_is_the_whole_export_with_its_transaction_time(
    region: list[Offer], tmp_path: Path
) -> None:
    source = FhirSource("national", FakeFhirApi(region_resources(region)))
    snapshot = source.snapshot(tmp_path)
    assert snapshot.entities is not None and not snapshot.files
    truth: dict[tuple[str, str], Entity] = {}
    for offer in region:
        truth.update(by_key_without_provenance(offer.entities()))
    assert by_key_without_provenance(snapshot.entities) == truth
    assert snapshot.watermark == dt.datetime(2024, 6, 1, 12, 0)  # 10:00 UTC is noon in Paris in June


def test_deltas_name_the_establishments_and_those_of_changed_legal_entities(region: list[Offer]) -> None:
    resources = region_resources(region)
    offer = region[3]
    unit = offer.units[-1]
    hs_or_oi = next(r["id"] for r in resources if r["id"].endswith(unit.id.replace("/", "-")))
    source = FhirSource("national", FakeFhirApi(_touch(resources, hs_or_oi)))
    assert source.changed_establishments(SINCE) == [offer.establishments[0].id]
    legal = region[0].legal_entities[0]
    sites = {o.establishments[0].id for o in region if o.legal_entities[0].id == legal.id}
    source = FhirSource("national", FakeFhirApi(_touch(resources, f"ej-{legal.id}")))
    assert set(source.changed_establishments(SINCE)) == sites
    assert FhirSource("national", FakeFhirApi(resources)).changed_establishments(SINCE) == []


def test_with_regions_a_delta_keeps_only_establishments_of_those_regions(region: list[Offer]) -> None:
    resources = region_resources(region)
    offer = region[2]
    own_region = next(u for u in offer.units if u.level is UnitLevel.ELEMENTARY_UNIT).id.split("/")[0]
    touched = _touch(resources, f"eg-{offer.establishments[0].id}")
    api = FakeFhirApi(touched)
    inside = FhirSource("national", api, regions=[own_region])
    assert inside.changed_establishments(SINCE) == [offer.establishments[0].id]
    searches = len(api.searches)
    read = inside.read_establishment(offer.establishments[0].id)
    assert len(api.searches) == searches  # read once, while scoping the delta
    got, truth = by_key_without_provenance(read.entities()), by_key_without_provenance(offer.entities())
    assert got.keys() == truth.keys()
    site = got[("establishment", offer.establishments[0].id)]
    assert site.record.updated == dt.datetime(2024, 6, 2, 9, 0)  # the change, read
    assert [got[k] for k in truth if k[0] == "unit"] == [truth[k] for k in truth if k[0] == "unit"]
    outside = FhirSource("national", FakeFhirApi(touched), regions=["00"])
    assert outside.changed_establishments(SINCE) == []


def test_a_delta_too_large_for_any_window_is_refused(region: list[Offer]) -> None:
    resources = region_resources(region)
    for resource in resources:
        resource["meta"]["lastUpdated"] = "2024-06-02T09:00:00+02:00"
    with pytest.raises(DeltaTooLargeError):
        FhirSource("national", FakeFhirApi(resources, limit=2)).changed_establishments(SINCE)


def test_reads_give_subtrees_and_an_unknown_identifier_is_an_error_never_a_deletion(
    region: list[Offer],
) -> None:
    source = FhirSource("national", FakeFhirApi(region_resources(region)))
    offer = region[1]
    site = offer.establishments[0].id
    assert by_key_without_provenance(source.read_establishment(site).entities()) == by_key_without_provenance(
        offer.entities()
    )
    ((read_id, read),) = list(source.read_establishments([site]))
    assert read_id == site and isinstance(read, Offer)
    unit = offer.units[-1]
    assert unit.id in {u.id for u in source.read_unit(unit.id).units}
    with pytest.raises(FhirUnknownIdentifierError) as caught:
        source.read_establishment("1999999999")
    assert not is_unknown(caught.value, (404,))  # the engine never tombstones a site on it
    with pytest.raises(FhirUnknownIdentifierError) as caught:
        source.read_unit("99/99999")
    assert is_unknown(caught.value, (404,))  # a unit refresh replaces it by nothing, as with CSD
    ((_, error),) = list(source.read_establishments(["1999999999"]))
    assert isinstance(error, FhirUnknownIdentifierError)


def test_establishments_are_read_concurrently_each_once(region: list[Offer]) -> None:
    source = FhirSource("national", FakeFhirApi(region_resources(region)))
    sites = [offer.establishments[0].id for offer in region]
    results = dict(source.read_establishments([*sites, "1999999999", sites[0]], concurrency=4))
    assert set(results) == {*sites, "1999999999"}
    assert isinstance(results["1999999999"], FhirUnknownIdentifierError)
    for offer in region:
        read = results[offer.establishments[0].id]
        assert isinstance(read, Offer) and by_key_without_provenance(
            read.entities()
        ) == by_key_without_provenance(offer.entities())


class _NotFoundApi(FakeFhirApi):
    """A FHIR API whose searches answer HTTP 404 (a proxy route gone, a base URL cut): no statement about
    any establishment."""

    def search(self, resource_type: str, params: Any) -> Any:
        from rorclient.fhir import FhirError

        raise FhirError("FHIR search answered HTTP 404", status=404)


def test_an_http_404_from_the_fhir_api_never_tombstones_an_establishment(
    region: list[Offer], tmp_path: Path
) -> None:
    from rorclient.store.base import EntityKind
    from rorclient.sync import Sync

    api = FakeFhirApi(region_resources(region))
    site = region[1].establishments[0].id
    with Sync(source=FhirSource("national", api), store=f"sqlite:///{tmp_path / 'ror.db'}") as sync:
        sync.pull()
        live = sync.status().entities
        broken = FhirSource("national", _NotFoundApi([]))
        with Sync(source=broken, store=sync.store) as failing:
            with pytest.raises(RorError):
                failing.refresh(establishment=site)
            unit = region[1].units[-1].id
            with pytest.raises(RorError):
                failing.refresh(unit=unit)
        assert sync.store.get(EntityKind.ESTABLISHMENT, site) is not None
        assert sync.store.get(EntityKind.UNIT, unit) is not None
        assert sync.status().entities == live
    ((_, error),) = list(broken.read_establishments([site]))
    assert isinstance(error, RorError) and not is_unknown(error, (404,))


def test_an_export_stamped_in_the_future_never_moves_the_watermark_past_the_pull(
    region: list[Offer], tmp_path: Path
) -> None:
    # A transactionTime later than the pull (a hostile or skewed server) would make every later delta
    # start after changes it never saw: they would be skipped for good. The watermark is bounded by our
    # clock when the pull started, as a CSD pull's is.
    from rorclient.sync import Sync

    started = dt.datetime(2024, 6, 1, 11, 0)  # the export says noon (Paris)
    with Sync(
        source=FhirSource("national", FakeFhirApi(region_resources(region))),
        store="memory://",
        clock=lambda: started,
    ) as sync:
        report = sync.pull()
        state = sync.store.sync_state("national")
    assert state is not None and state.watermark is not None
    assert state.watermark <= started and report.watermark is not None and report.watermark <= started
