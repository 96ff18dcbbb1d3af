"""A refresh of an identifier the source does not know: the CSD and FHIR sources agree.

Neither the ROR nor the store knows it (a typo): exit 11, nothing stored, whatever the source. The store
knows it and the source no longer does: the CSD ROR's "unknown" answer tombstones it (exit 0); the FHIR
API's silence proves nothing (an access profile may hide it), so nothing is deleted and the refresh says
so with exit 11.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rorclient.models import EntityKind, Offer
from rorclient.sandbox.dataset import generate_dataset
from rorclient.sources.fhir import FhirSource
from rorclient.store.base import EntityQuery, Store
from rorclient.store.memory import MemoryStore
from rorclient.sync import RunStatus, Sync, SyncOptions, UnknownIdentifierError
from tests._fhir_fake import FakeFhirApi, region_resources
from tests._sync_fakes import FakeRor, live_rows


@dataclass
class Scenario:
    """A pulled store and a way to make one establishment vanish from the source."""

    kind: str
    store: Store
    sync: Sync
    offer: Offer
    vanish: object  # () -> Sync: the source without ``offer``, over the same store

    @property
    def site(self) -> str:
        return self.offer.establishments[0].id


def _csd(tmp_path: Path) -> Scenario:
    ror, store = FakeRor(6), MemoryStore()
    sync = Sync(
        store=store,
        client=ror,
        source="region",
        options=SyncOptions(data_dir=tmp_path / "data", breaker_floor=10_000),  # a site is a large share
        clock=lambda: ror.now,
    )
    sync.pull()
    offer = next(iter(ror.offers.values()))

    def vanish() -> Sync:
        ror.remove(offer.establishments[0].id)
        return sync

    return Scenario("csd", store, sync, offer, vanish)


def _fhir(tmp_path: Path) -> Scenario:
    region, store = list(generate_dataset(5, 6)), MemoryStore()
    sync = Sync(source=FhirSource("region", FakeFhirApi(region_resources(region))), store=store)
    sync.pull()
    offer = region[1]

    def vanish() -> Sync:
        rest = region_resources([o for o in region if o is not offer])
        return Sync(source=FhirSource("region", FakeFhirApi(rest)), store=store)

    return Scenario("fhir", store, sync, offer, vanish)


@pytest.fixture(params=["csd", "fhir"])
def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scenario]:
    built = _csd(tmp_path) if request.param == "csd" else _fhir(tmp_path)
    yield built
    built.sync.close()


@pytest.mark.parametrize(("target", "identifier"), [("establishment", "1999999999"), ("unit", "99/99999")])
def test_a_refresh_of_an_identifier_nobody_knows_exits_11_and_stores_nothing_whatever_the_source(
    scenario: Scenario, target: str, identifier: str
) -> None:
    store = scenario.store
    before, seq = live_rows(store), store.stats().last_change_seq
    with pytest.raises(UnknownIdentifierError) as caught:
        scenario.sync.refresh(**{target: identifier})
    assert caught.value.exit_code == 11
    assert f"does not know {target} {identifier}" in str(caught.value) and "check the identifier" in str(
        caught.value
    )
    assert live_rows(store) == before and store.stats().last_change_seq == seq
    assert store.runs()[0].status == "failed"


def test_a_refresh_of_an_establishment_the_source_no_longer_returns(scenario: Scenario) -> None:
    store, site = scenario.store, scenario.site
    sync = scenario.vanish()  # type: ignore[operator]
    assert store.find(EntityQuery(establishment=site)).total > 1
    if scenario.kind == "csd":  # the ROR says "unknown": tombstoned
        report = sync.refresh(establishment=site)
        assert report.status is RunStatus.SUCCESS and report.removed == 1
        assert store.get(EntityKind.ESTABLISHMENT, site) is None
        return
    before, seq = live_rows(store), store.stats().last_change_seq
    with pytest.raises(UnknownIdentifierError) as caught:
        sync.refresh(establishment=site)
    message = str(caught.value)
    assert caught.value.exit_code == 11
    assert (
        f"returns no establishment {site}" in message
        and "the store holds it live (source 'region'" in message
    )
    assert "nothing was deleted" in message and "next full pull" in message
    assert live_rows(store) == before and store.stats().last_change_seq == seq
    sync.close()
