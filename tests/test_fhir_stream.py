"""Export files are read whatever their shape (NDJSON, one Bundle, several Bundles), in flat memory, and
bad input is a DataError naming where."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from rorclient.errors import DataError
from rorclient.fhir._stream import iter_resources


def resource(number: int, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": f"o{number}",
        "name": "Hôpital é\u00e8",
        "n": number,
        **extra,
    }


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def ids(data: bytes, size: int = 7, **options: Any) -> list[str]:
    return [r["id"] for r in iter_resources(pieces(data, size), source="f.json", **options)]


EXPECTED = ["o1", "o2", "o3"]


@pytest.mark.parametrize("size", [1, 3, 7, 64, 100_000])
def test_ndjson_split_anywhere(size: int) -> None:
    data = b"".join(json.dumps(resource(n), ensure_ascii=False).encode() + b"\n" for n in (1, 2, 3))
    assert ids(data, size) == EXPECTED


@pytest.mark.parametrize("whole_limit", [10, 1024 * 1024])  # walked member by member, or decoded at once
@pytest.mark.parametrize("size", [1, 5, 4096])
def test_one_bundle_pretty_or_not(size: int, whole_limit: int) -> None:
    value = {
        "resourceType": "Bundle",
        "type": "collection",
        "total": 3,
        "entry": [{"fullUrl": f"u{n}", "resource": resource(n)} for n in (1, 2, 3)],
        "link": [{"relation": "self", "url": "x"}],
    }
    for text in (json.dumps(value), json.dumps(value, indent=2, ensure_ascii=False)):
        assert ids(text.encode(), size, whole_limit=whole_limit) == EXPECTED


def test_bundles_one_after_the_other_and_a_bom() -> None:
    first = {"resourceType": "Bundle", "entry": [{"resource": resource(1)}, {"resource": resource(2)}]}
    second = {"resourceType": "Bundle", "entry": [{"resource": resource(3)}, {"request": {"method": "GET"}}]}
    data = "\ufeff".encode() + json.dumps(first).encode() + b"\n" + json.dumps(second).encode()
    assert ids(data, 3, whole_limit=20) == EXPECTED
    assert ids(data, 3) == EXPECTED


def test_entry_before_resource_type_is_still_a_bundle() -> None:
    data = json.dumps({"entry": [{"resource": resource(1)}], "resourceType": "Bundle"}).encode()
    assert ids(data, 2, whole_limit=5) == ["o1"]


def test_numbers_cut_at_a_chunk_end_are_read_whole() -> None:
    data = b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"X","id":"a","n":123456}}],'
    data += b'"total":98765}'
    found = list(iter_resources(pieces(data, 1), source="f", whole_limit=4))
    assert found == [{"resourceType": "X", "id": "a", "n": 123456}]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"resourceType":"X","id":"a"}\n[1,2]', "expected a JSON object"),
        (b'{"resourceType":"X","id":"a"}\n{"id":"b"}', "without a resourceType"),
        (
            b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"X"}},',
            "invalid JSON|end of the file",
        ),
        (b'{"resourceType":"X","id":"\xff"}', "not UTF-8"),
        (b'{"resourceType":"Bundle","entry":[{"resource":{"id":"no-type"}}]}', "no resourceType"),
    ],
)
def test_bad_input_is_a_data_error_naming_the_file_and_offset(data: bytes, message: str) -> None:
    for whole_limit in (5, 1024):
        with pytest.raises(DataError, match=message) as caught:
            list(iter_resources(pieces(data, 4), source="f.json", whole_limit=whole_limit))
        assert caught.value.source == "f.json"
        assert caught.value.path is not None and caught.value.path.startswith("character ")


def test_memory_stays_flat_whatever_the_file_size() -> None:
    def bundle(entries: int) -> Iterator[bytes]:
        padding = "x" * 400
        yield b'{"resourceType":"Bundle","type":"collection","entry":['
        for n in range(entries):
            entry = {"resource": {"resourceType": "Location", "id": f"l{n}", "description": padding}}
            yield (b"," if n else b"") + json.dumps(entry).encode()
        yield b"]}"

    peaks = []
    for entries in (5_000, 50_000):  # about 2 MB and 22 MB
        tracemalloc.start()
        try:
            assert sum(1 for _ in iter_resources(bundle(entries), source="f")) == entries
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[1] < peaks[0] * 1.2
