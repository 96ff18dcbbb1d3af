"""Writing then reading gives back the same models: ``read_offer(write(offer)) == offer``."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import HealthCheck, given, settings

from rorclient.csd.reader import read_offer
from rorclient.csd.writer import csd_bytes
from rorclient.models import Entity, Offer
from rorclient.sandbox.dataset import generate_dataset
from tests.strategies import offers, sample_offer


def _distinct(entities: list[Entity]) -> Offer:
    """The offer a document holds: entities carried by several offers (a shared EJ) appear once."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for entity in entities:
        if (entity.kind.value, entity.id) not in seen:
            seen.add((entity.kind.value, entity.id))
            kept.append(entity)
    return Offer.of(kept)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(offer=offers())
def test_generated_offers_survive_a_write_read_round_trip(offer: Offer, csd_schema: Any) -> None:
    for root in ("csd", "careServicesResponse"):
        data = csd_bytes(offer, root=root)
        errors = list(csd_schema.iter_errors(io.BytesIO(data)))
        assert not errors, errors[0]
        assert read_offer(data) == offer


def test_sample_offer_round_trips() -> None:
    offer = sample_offer()
    assert read_offer(csd_bytes(offer)) == offer


def test_synthetic_dataset_round_trips() -> None:
    generated = list(generate_dataset(seed=9, establishments=40))
    expected = _distinct([entity for offer in generated for entity in offer.entities()])
    assert read_offer(csd_bytes(generated)) == expected


def test_synthetic_establishment_round_trips_as_a_lecture_response() -> None:
    offer = next(generate_dataset(seed=2, establishments=1))
    assert read_offer(csd_bytes(offer, root="careServicesResponse", xml_declaration=False)) == offer
