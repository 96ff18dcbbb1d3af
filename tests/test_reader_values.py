"""The bulk load's path without models (``read_values`` + ``values_row``) stores exactly what the model
path stores: the same staging row, column for column, and the same JSON bytes, hence the same content
hash (stores written by earlier versions hold those digests; the delta path computes them from models).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from rorclient.csd import _index
from rorclient.csd.reader import read_csd, read_share, read_values
from rorclient.csd.writer import csd_bytes
from rorclient.errors import DataError
from rorclient.models import ENTITY_ADAPTER, Offer
from rorclient.sandbox._platines import platines_offer
from rorclient.sandbox.dataset import generate_dataset, write_extraction
from rorclient.store._sql.rows import staged_row, values_row
from tests import _csd_docs as docs
from tests._shared import PLATINES, SAMPLES, require_shared
from tests.strategies import offers, sample_offer


def assert_same_rows(source: bytes | Path, share: tuple[int, int] | None = None) -> int:
    """Both paths over ``source``: equal rows in equal order, and plain values that validate into the
    model the model path yields. Returns the number of entities."""
    models = list(read_csd(source) if share is None else read_share(source, *share))
    values = list(read_values(source, share=share))
    assert [kind for kind, _ in values] == [entity.kind for entity in models]
    for entity, (kind, fields) in zip(models, values, strict=True):
        assert values_row(kind, fields) == staged_row(entity), (entity.kind, entity.id)
        assert ENTITY_ADAPTER.validate_python(fields) == entity
    return len(models)


def test_the_sample_offer_gives_the_same_rows_and_its_pinned_digests() -> None:
    assert assert_same_rows(csd_bytes(sample_offer())) == len(list(sample_offer().entities()))


def test_a_generated_extraction_gives_the_same_rows_on_both_paths_and_in_every_share(tmp_path: Path) -> None:
    path = tmp_path / "extraction.xml"
    write_extraction(path, seed=7, establishments=25)
    total = assert_same_rows(path)
    assert total > 300
    assert sum(assert_same_rows(path, (share, 3)) for share in range(3)) == total


def test_lecture_answers_of_the_sandbox_give_the_same_rows() -> None:
    for offer in generate_dataset(seed=3, establishments=4):
        assert_same_rows(csd_bytes(offer, root="careServicesResponse", xml_declaration=False))
    assert_same_rows(
        docs.soap(csd_bytes(platines_offer(), root="careServicesResponse", xml_declaration=False))
    )


def test_the_reference_samples_give_the_same_rows() -> None:
    require_shared()
    read = 0
    for path in sorted(SAMPLES.glob("*.xml")) + sorted(PLATINES.glob("*.xml")):
        try:
            list(read_csd(path))
        except Exception as error:  # not a CSD document (requests, SoapUI projects): both refuse it alike
            with pytest.raises(type(error)):
                list(read_values(path))
            continue
        read += assert_same_rows(path)
    assert read > 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(offer=offers())
def test_generated_offers_give_the_same_rows(offer: Offer) -> None:
    assert_same_rows(csd_bytes(offer))


def _waiting_children() -> bytes:
    """An establishment before its legal entity and a unit before its parent unit: both wait."""
    return docs.csd(
        organizations=[
            docs.organization("eg", "1000000002", parent="ej"),
            docs.organization("ej", "1000000001"),
        ],
        services=[docs.service("s1"), docs.service("s2", "038", families=["F1"])],
        facilities=[
            docs.facility("child", "93/2", eg="eg", services=["s1", "s2"], parent="top", equipment=["d1"]),
            docs.facility("top", "93/1", eg="eg"),
        ],
        providers=[docs.provider("p1", "810000000001", units=["child"], egs=["eg"])],
        devices=[docs.device("d1")],
    )


@pytest.mark.parametrize("spilled", [False, True], ids=["in-memory index", "spilled index"])
def test_entities_that_wait_for_their_parent_give_the_same_rows(
    spilled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if spilled:  # waiting entities and services go through the index's temporary file
        monkeypatch.setattr(_index, "DEFAULT_SPILL_THRESHOLD", 0)
    assert assert_same_rows(_waiting_children()) == 8  # EJ, EG, two units, two activities, PS, equipment


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-03-01T10:00:00Z",
        "2024-03-01T10:00:00+00:00",
        "2024-03-01T10:00:00.5-05:30",
        "2024-03-01T24:00:00",
    ],
)
def test_time_zones_and_fractions_are_written_as_pydantic_writes_them(stamp: str) -> None:
    rec = docs.record(created=stamp, updated=stamp)
    data = docs.csd(organizations=[docs.organization("ej", "1000000001", rec=rec)])
    assert_same_rows(data)
    ((_, fields),) = read_values(data)
    assert isinstance(fields["record"]["updated"], dt.datetime)


def test_coordinates_keep_their_decimal_form_and_a_huge_count_takes_the_model_path() -> None:
    geocode = (
        "<geocode><latitude>0.00000010</latitude><longitude>-180.000000</longitude>"
        "<coordinateSystem>WGS84</coordinateSystem></geocode>"
    )
    huge = 10**30  # beyond what JSON libraries write natively: the model's own serializer writes it
    data = docs.csd(
        organizations=[
            docs.organization("ej", "1000000001"),
            docs.organization("eg", "1000000002", parent="ej"),
        ],
        facilities=[docs.facility("f1", "93/1", eg="eg", equipment=["d1"], before_extension=geocode)],
        devices=[docs.device("d1", count=huge)],
    )
    assert assert_same_rows(data) == 4
    equipment = staged_row(list(read_csd(data))[-1])
    assert f'"count":{huge}' in equipment[-1]


def test_bad_input_gives_the_same_error_on_both_paths() -> None:
    bad = docs.csd(
        organizations=[docs.organization("ej", "1000000001", rec=docs.record(updated="yesterday"))]
    )
    errors: list[DataError] = []
    for read in (read_csd, read_values):
        with pytest.raises(DataError) as caught:
            list(read(bad))  # type: ignore[operator]
        errors.append(caught.value)
    assert str(errors[0]) == str(errors[1])
    assert errors[0].path == "/CSD/organizationDirectory/organization[1]/record/@updated"
