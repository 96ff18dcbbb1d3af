"""Hostile or broken input loaded into a store: a typed error, and the store exactly as it was."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rorclient.errors import DataError
from rorclient.loader import load_files
from rorclient.store import Store, open_store

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<csd:CSD xmlns:csd="urn:ihe:iti:csd:2013">
<csd:organizationDirectory>&lol3;</csd:organizationDirectory></csd:CSD>
"""


def _external(system_id: str) -> Callable[[bytes], bytes]:
    def build(sample: bytes) -> bytes:
        doctype = f'<!DOCTYPE x [<!ENTITY ext SYSTEM "{system_id}">]>'.encode()
        body = sample.replace(b"CENTRE HOSPITALIER EXEMPLE", b"&ext;")
        return doctype + body

    return build


def _replace(old: bytes, new: bytes, count: int = 1) -> Callable[[bytes], bytes]:
    def build(sample: bytes) -> bytes:
        assert old in sample
        return sample.replace(old, new, count)

    return build


HOSTILE: dict[str, Callable[[bytes], bytes]] = {
    "billion laughs": lambda _: BILLION_LAUGHS,
    "external entity (file)": _external("file:///etc/passwd"),
    "external entity (http)": _external("http://127.0.0.1:9/x"),
    "truncated file": lambda sample: sample[: len(sample) // 2],
    "wrong root": lambda _: b'<csd:careServicesRequest xmlns:csd="urn:ihe:iti:csd:2013"/>',
    "wrong namespace": _replace(b'xmlns:csd="urn:ihe:iti:csd:2013"', b'xmlns:csd="urn:example:not-csd"'),
    "invalid date": _replace(b'updated="2019-03-02T08:30:00"', b'updated="2019-02-30T08:30:00"'),
    "duplicate identifier": _replace(b'code="93/12345"', b'code="93/10000"'),
    "dangling reference": _replace(
        b'<csd:parentFacility entityID="urn:uuid:44444444', b'<csd:parentFacility entityID="urn:uuid:99999999'
    ),
    "50 MB text node": _replace(b"CONSULTATIONS DERMATOLOGIE", b"X" * 50_000_000),
}


@pytest.fixture(params=["memory", "sqlite"])
def loaded_store(request: pytest.FixtureRequest, tmp_path: Path, samples_dir: Path) -> Iterator[Store]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'a.db'}"
    with open_store(url) as store:
        load_files(store, [samples_dir / "lecture_response_body.xml"], source="od")
        yield store


def snapshot(store: Store) -> list[tuple[str, str, str, bool]]:
    return [(row.kind.value, row.id, row.content_hash, row.deleted) for row in store.iter_entities()]


# "od" reloads over its own rows (SQLite: staged, then swapped); "new" is a source's first load (SQLite:
# streamed into the live table inside the load's transaction, its rows meeting "od"'s staged).
@pytest.mark.parametrize("source", ["od", "new"])
@pytest.mark.parametrize("case", list(HOSTILE))
def test_bad_input_is_a_data_error_and_the_store_is_unchanged(
    case: str, source: str, loaded_store: Store, tmp_path: Path, samples_dir: Path
) -> None:
    before = snapshot(loaded_store)
    changes_before = loaded_store.changes()
    state_before = loaded_store.sync_state(source)
    bad = tmp_path / "bad.xml"
    bad.write_bytes(HOSTILE[case]((samples_dir / "lecture_response_full_body.xml").read_bytes()))

    with pytest.raises(DataError) as error:
        load_files(loaded_store, [bad], source=source)

    assert "bad.xml" in str(error.value)
    assert snapshot(loaded_store) == before
    assert loaded_store.changes() == changes_before
    assert loaded_store.sync_state(source) == state_before
    assert loaded_store.runs(limit=1)[0].status == "failed"
