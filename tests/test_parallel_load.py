"""Loading one file with several reader processes gives exactly what one process gives, and fails the
same way: the shares of :func:`read_share`, and :func:`load_files` with ``readers > 1``."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rorclient import _parallel_load
from rorclient.csd import _index, read_csd, read_share
from rorclient.csd.reader import EntityValues, read_values
from rorclient.errors import ConfigError, DataError, RemoteError, RorError
from rorclient.loader import load_files
from rorclient.models import Entity
from rorclient.ror.errors import HttpStatusError, ServerFaultError
from rorclient.sandbox.dataset import write_extraction
from rorclient.sources import Snapshot
from rorclient.store import open_store
from rorclient.store.base import Store, StoredEntity, SyncState, utcnow
from rorclient.sync import _pull as _pull_module
from rorclient.sync._plan import Interrupted, StopFlag
from tests import _csd_docs as docs

pytest_plugins = ("tests.pg",)


@pytest.fixture(params=[False, True], ids=["in-memory index", "spilled index"])
def spill(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    if request.param:
        monkeypatch.setattr(_index, "DEFAULT_SPILL_THRESHOLD", 0)
    return bool(request.param)


@pytest.fixture
def small_files_in_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let test-sized files be read in parallel (the default threshold is 32 MB)."""
    monkeypatch.setattr(_parallel_load, "MIN_PARALLEL_BYTES", 0)


def _content(entities: Iterator[Entity]) -> list[tuple[str, str, str]]:
    return sorted((entity.kind.value, entity.id, entity.model_dump_json()) for entity in entities)


def _waiting_document() -> bytes:
    """Owners after what they own (EG before its EJ, units before their parent units), a device linked
    from units of different shares, providers pointing at everything: the reader's deferred paths."""
    return docs.csd(
        organizations=[
            docs.organization("eg1", "1000000002", parent="ej"),
            docs.organization("eg2", "1000000003", parent="ej"),
            docs.organization("ej", "1000000001"),
            docs.organization("eg3", "1000000004", parent="ej"),
        ],
        services=[docs.service(f"s{i}", code=f"0{i}{i}") for i in range(1, 6)],
        facilities=[
            docs.facility("f1", "93/1", eg="eg1", services=["s1", "s2"], parent="f4", equipment=["d1"]),
            docs.facility("f2", "93/2", eg="eg1", services=["s3"], parent="f1", equipment=["d1", "d2"]),
            docs.facility("f3", "93/3", eg="eg2", services=["s4"], parent="f2"),
            docs.facility("f4", "93/4", eg="eg2", services=["s5"], equipment=["d2"]),
            docs.facility("f5", "93/5", eg="eg3", services=["s1"], parent="f4"),
        ],
        providers=[
            docs.provider("p1", "810000000001", units=["f1", "f3"], egs=["eg1"]),
            docs.provider("p2", "810000000002", units=["f5"]),
            docs.provider("p3", "810000000003", egs=["eg2", "eg3"]),
        ],
        devices=[docs.device("d1", code="046"), docs.device("d2", code="047")],
    )


@pytest.mark.parametrize("shares", [1, 2, 3, 7])
def test_shares_together_give_exactly_the_entities_of_one_reader(spill: bool, shares: int) -> None:
    document = _waiting_document()
    expected = _content(read_csd(document))
    assert len(expected) == 4 + 5 + 6 + 3 + 4  # organizations, units, activities, providers, equipment
    got: list[tuple[str, str, str]] = []
    for share in range(shares):
        got.extend(_content(read_share(document, share, shares)))
    assert sorted(got) == expected


@pytest.mark.parametrize("shares", [2, 3])
def test_shares_of_a_generated_extraction_add_up(tmp_path: Path, shares: int) -> None:
    path = tmp_path / "extraction.xml.gz"
    write_extraction(path, seed=7, establishments=12, compress="gzip")
    expected = _content(read_csd(path))
    got: list[tuple[str, str, str]] = []
    for share in range(shares):
        got.extend(_content(read_share(path, share, shares)))
    assert sorted(got) == expected


def _broken_documents() -> dict[str, tuple[bytes, str]]:
    parts = docs.simple_offer()
    return {
        "cycle": (
            docs.csd(
                **docs.simple_offer(
                    facilities=[
                        docs.facility("f1", "93/1", eg="eg", parent="f2"),
                        docs.facility("f2", "93/2", eg="eg", parent="f1"),
                    ]
                )
            ),
            "reference cycle",
        ),
        "dangling parent unit": (
            docs.csd(**docs.simple_offer(facilities=[docs.facility("f1", "93/1", eg="eg", parent="nobody")])),
            "dangling reference: parentFacility 'nobody'",
        ),
        "duplicate identifiantOI": (
            docs.csd(
                **docs.simple_offer(
                    facilities=[docs.facility("f1", "93/1", eg="eg"), docs.facility("f2", "93/1", eg="eg")]
                )
            ),
            "duplicate facility identifiantOI '93/1'",
        ),
        "duplicate idNat_Struct": (
            docs.csd(
                **{
                    **parts,
                    "organizations": [
                        docs.organization("ej", "1000000001"),
                        docs.organization("eg", "1000000002", parent="ej"),
                        docs.organization("eg2", "1000000002", parent="ej"),
                    ],
                }
            ),
            "duplicate organization idNat_Struct '1000000002'",
        ),
        "two devices with one code in a unit": (
            docs.csd(
                **docs.simple_offer(
                    facilities=[docs.facility("f1", "93/1", eg="eg", equipment=["d1", "d2"])],
                    devices=[docs.device("d1"), docs.device("d2")],
                )
            ),
            "unit '93/1' has two devices with equipment code '046'",
        ),
        "duplicate idNat_PS": (
            docs.csd(
                **docs.simple_offer(
                    providers=[docs.provider("p1", "810000000001"), docs.provider("p2", "810000000001")]
                )
            ),
            "duplicate provider idNat_PS '810000000001'",
        ),
        "truncated": (docs.csd(**parts)[:-40], "not well-formed XML"),
    }


@pytest.mark.parametrize("case", sorted(_broken_documents()))
def test_every_share_finds_the_document_s_reference_errors(spill: bool, case: str) -> None:
    document, message = _broken_documents()[case]
    with pytest.raises(DataError) as alone:
        list(read_csd(document))
    assert message in alone.value.message
    for share in range(2):
        with pytest.raises(DataError) as caught:
            list(read_share(document, share, 2))
        assert str(caught.value) == str(alone.value)


def test_an_entity_s_own_error_is_found_by_its_share() -> None:
    bad = docs.facility("f2", "93/2", eg="eg").replace('updated="2020-02-01T08:00:00"', 'updated="yesterday"')
    document = docs.csd(**docs.simple_offer(facilities=[docs.facility("f1", "93/1", eg="eg"), bad]))
    with pytest.raises(DataError) as alone:
        list(read_csd(document))
    with pytest.raises(DataError) as owner:
        list(read_share(document, 0, 2))  # f2 is the facility directory's 2nd entity: share 2 % 2 == 0
    assert str(owner.value) == str(alone.value)
    assert "facility[2]" in str(owner.value)


def test_a_share_outside_the_shares_is_refused() -> None:
    with pytest.raises(ValueError, match="share 2 is not one of 2 shares"):
        read_share(b"", 2, 2)


# -- load_files with reader processes ------------------------------------------------------------


def _extraction(tmp_path: Path, name: str = "extraction.xml", seed: int = 3) -> Path:
    path = tmp_path / name
    write_extraction(path, seed=seed, establishments=15)
    return path


def _snapshot(store: Store) -> list[StoredEntity]:
    """Everything the store holds of each entity but the deletion time, comparable across stores
    (models compare mappings regardless of key order, which PostgreSQL's jsonb does not keep)."""
    entities = store.iter_entities(include_deleted=True)
    return sorted(
        (stored.model_copy(update={"deleted_at": None}) for stored in entities),
        key=lambda stored: (stored.kind.value, stored.id),
    )


def _load(url: str, path: Path, readers: int) -> tuple[Any, list[Any]]:
    with open_store(url) as store:
        report = load_files(store, [path], source="bench", readers=readers)
        return report, _snapshot(store)


@pytest.mark.usefixtures("small_files_in_parallel")
def test_loading_with_two_readers_stores_what_one_reader_stores(tmp_path: Path) -> None:
    path = _extraction(tmp_path)
    alone, expected = _load(f"sqlite:///{tmp_path / 'one.db'}", path, readers=1)
    parallel, got = _load(f"sqlite:///{tmp_path / 'two.db'}", path, readers=2)
    assert (alone.readers, parallel.readers) == (1, 2)
    assert got == expected
    assert parallel.entities == alone.entities > 200
    assert parallel.counts == alone.counts
    assert parallel.watermark == alone.watermark


@pytest.mark.usefixtures("small_files_in_parallel")
def test_loading_with_readers_into_postgresql(tmp_path: Path, postgres_url: str) -> None:
    path = _extraction(tmp_path)
    _, expected = _load(f"sqlite:///{tmp_path / 'one.db'}", path, readers=1)
    report, got = _load(postgres_url, path, readers=3)
    assert report.readers == 3
    assert got == expected


@pytest.mark.usefixtures("small_files_in_parallel")
def test_a_broken_file_read_in_parallel_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    good = _extraction(tmp_path)
    _, before = _load(url, good, readers=2)
    broken = tmp_path / "broken.xml"
    text = _extraction(tmp_path, "other.xml", seed=4).read_text(encoding="utf-8")
    position = text.index('updated="', text.index("<csd:facility ", len(text) // 2)) + len('updated="')
    broken.write_text(text[:position] + "not-a-date" + text[position + 19 :], encoding="utf-8")
    with pytest.raises(DataError) as alone:
        list(read_csd(broken))
    with open_store(url) as store:
        with pytest.raises(DataError) as caught:
            load_files(store, [broken], source="bench", readers=2)
        assert str(caught.value) == str(alone.value)
        assert _snapshot(store) == before
        assert store.runs(limit=1)[0].status == "failed"


def _die_in_share_one(source: Any, *, share: tuple[int, int], **options: Any) -> Iterator[EntityValues]:
    if share[0] == 1:
        os._exit(9)  # a reader killed mid-load (out of memory, kill -9)
    yield from read_values(source, share=share, **options)


@pytest.mark.usefixtures("small_files_in_parallel")
def test_a_dead_reader_fails_the_load_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    _, before = _load(url, _extraction(tmp_path), readers=1)
    monkeypatch.setattr(_parallel_load, "read_values", _die_in_share_one)
    with open_store(url) as store:
        with pytest.raises(RorError, match=r"reader process 1 of .* died"):
            load_files(store, [_extraction(tmp_path, "next.xml", seed=5)], source="bench", readers=2)
        assert _snapshot(store) == before


@pytest.mark.usefixtures("small_files_in_parallel")
def test_stores_that_take_models_read_with_one_process(tmp_path: Path) -> None:
    with open_store("memory://") as store:
        report = load_files(store, [_extraction(tmp_path)], readers=4)
    assert report.readers == 1


def test_small_files_are_read_with_one_process(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        report = load_files(store, [_extraction(tmp_path)], readers=4)
    assert report.readers == 1


# -- the command line ------------------------------------------------------------------------------


@pytest.mark.usefixtures("small_files_in_parallel")
def test_rorclient_load_readers_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rorclient.cli import main

    path = _extraction(tmp_path)
    exports = []
    for readers in ("1", "2"):
        store = f"sqlite:///{tmp_path / f'{readers}.db'}"
        assert main(["--store", store, "load", str(path), "--readers", readers, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["readers"] == int(readers)
        assert main(["--store", store, "export", "--format", "jsonl"]) == 0
        exports.append(sorted(capsys.readouterr().out.splitlines()))
    assert exports[0] == exports[1] and len(exports[0]) > 200
    with pytest.raises(SystemExit) as refused:
        main(["--store", f"sqlite:///{tmp_path / 'x.db'}", "load", str(path), "--readers", "0"])
    assert refused.value.code == 2
    assert "--readers: must be at least 1" in capsys.readouterr().err


# -- pulls (rorclient pull, Sync.pull) ------------------------------------------------------------


def _pull(url: str, path: Path, readers: int, stop: StopFlag | None = None) -> tuple[Any, list[Any]]:
    with open_store(url) as store:
        outcome = _pull_module.load_snapshot(
            store,
            Snapshot(files=(path,)),
            source="ror",
            run_id=uuid.uuid4().hex,
            zone=ZoneInfo("Europe/Paris"),
            stop=stop or StopFlag(),
            decide=lambda planned, takeovers: True,
            state=lambda newest: SyncState(source="ror", watermark=newest, taken_at=utcnow()),
            readers=readers,
        )
        return outcome, _snapshot(store)


@pytest.mark.usefixtures("small_files_in_parallel")
def test_a_pull_reads_a_large_extraction_in_parallel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _extraction(tmp_path)
    alone, expected = _pull(f"sqlite:///{tmp_path / 'one.db'}", path, readers=1)
    calls: list[int] = []
    original = _parallel_load.read_in_parallel

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[2])
        return original(*args, **kwargs)

    monkeypatch.setattr(_parallel_load, "read_in_parallel", spy)
    parallel, got = _pull(f"sqlite:///{tmp_path / 'two.db'}", path, readers=2)
    assert calls == [2]
    assert got == expected
    assert parallel.readers == 2 and alone.readers == 1
    # entities, newest (in the ROR's frame), planned and committed changes
    assert dataclasses.replace(parallel, readers=1) == alone


@pytest.mark.usefixtures("small_files_in_parallel")
def test_a_stopped_pull_stops_its_readers_and_commits_nothing(tmp_path: Path) -> None:
    stop = StopFlag()
    stop.set()
    with pytest.raises(Interrupted):
        _pull(f"sqlite:///{tmp_path / 'store.db'}", _extraction(tmp_path), readers=2, stop=stop)
    with open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        assert _snapshot(store) == []


# -- process handling (found in review) ----------------------------------------------------------


def test_an_empty_first_identifiant_oi_is_read_alike_by_every_share() -> None:
    empty_first = docs.facility("f1", "93/1", eg="eg").replace(
        '<otherID code="93/1" assigningAuthorityName="X"/>',
        '<otherID code="" assigningAuthorityName="X"/><otherID code="93/1" assigningAuthorityName="Y"/>',
    )
    document = docs.csd(
        **docs.simple_offer(facilities=[empty_first, docs.facility("f2", "93/2", eg="eg", parent="f1")])
    )
    expected = _content(read_csd(document))
    got = sorted(item for share in range(2) for item in _content(read_share(document, share, 2)))
    assert got == expected


_WRITE_HALF_A_MESSAGE = """
import os, struct
from rorclient import _parallel_load

real = _parallel_load._read_share

def dying(connection, inherited, path, share, shares, moment):
    if share == 1:  # killed in the middle of sending a batch: a length header, then only part of it
        os.write(connection.fileno(), struct.pack("!i", 4096) + b"partial")
        os._exit(9)
    real(connection, inherited, path, share, shares, moment)

_parallel_load._read_share = dying
"""


@pytest.mark.usefixtures("small_files_in_parallel")
def test_a_reader_killed_in_the_middle_of_a_batch_fails_the_load_cleanly(tmp_path: Path) -> None:
    namespace: dict[str, Any] = {}
    exec(_WRITE_HALF_A_MESSAGE, namespace)
    try:
        url = f"sqlite:///{tmp_path / 'store.db'}"
        with open_store(url) as store:
            with pytest.raises(RorError, match=r"reader process 1 of .* died"):
                load_files(store, [_extraction(tmp_path)], readers=2)
            assert _snapshot(store) == []
            assert store.runs(limit=1)[0].status == "failed"
    finally:
        _parallel_load._read_share = namespace["real"]


_STUBBORN_PARENT = """
import signal, sys
from pathlib import Path
from rorclient import _parallel_load
from rorclient.store import open_store

signal.signal(signal.SIGTERM, lambda *_: None)  # a graceful-stop handler, as the daemon installs

def refuse(count, read):
    raise RuntimeError("stop here")

with open_store("sqlite:///" + sys.argv[2]) as store, store.bulk_load(source="s") as bulk:
    try:
        _parallel_load.read_in_parallel(Path(sys.argv[1]), bulk, 2, on_rows=refuse)
    except RuntimeError:
        bulk.abort()
        print("stopped")
"""


def test_readers_stop_when_the_loading_process_stops_reading(tmp_path: Path) -> None:
    """Readers blocked on a full pipe, in a process whose SIGTERM handler does not exit: the load
    still ends (readers ignore the inherited handler and hold no end of the loading process's pipes)."""
    import subprocess
    import sys

    path = tmp_path / "extraction.xml"
    write_extraction(path, seed=3, establishments=120)  # more than a batch a share: sends block
    done = subprocess.run(
        [sys.executable, "-c", _STUBBORN_PARENT, str(path), str(tmp_path / "store.db")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped"


@pytest.mark.usefixtures("small_files_in_parallel")
def test_progress_never_goes_backwards_with_readers(tmp_path: Path) -> None:
    path = tmp_path / "extraction.xml"
    write_extraction(path, seed=3, establishments=120)
    seen: list[int] = []
    with open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        report = load_files(store, [path], readers=2, progress=lambda p: seen.append(p.bytes_read))
    assert report.readers == 2
    assert len(seen) > 2 and seen == sorted(seen) and seen[-1] > 0


def test_progress_never_goes_backwards_for_a_zip_read_alone(tmp_path: Path) -> None:
    """zipfile also reads the archive's directory, so the count passes the file's size before the end."""
    path = tmp_path / "extraction.zip"
    write_extraction(path, seed=3, establishments=20, compress="zip")
    seen: list[int] = []
    with open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        load_files(store, [path], readers=1, progress=lambda p: seen.append(p.bytes_read))
    assert len(seen) > 1 and seen == sorted(seen)


@pytest.mark.parametrize(
    "error",
    [
        DataError("invalid xs:date 'x'", path="/CSD/facilityDirectory/facility[2]", line=7, source="f.xml"),
        RemoteError(405, "no such establishment"),
        HttpStatusError(503, "busy"),
        ServerFaultError(None, "try later", soap_code="soap:Receiver"),
        ConfigError("no file to load"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_errors_keep_their_class_and_details_across_processes(error: RorError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__
    assert copy.retryable == error.retryable


@pytest.mark.parametrize(("cores", "readers"), [(None, 1), (1, 1), (2, 2), (16, 2)])
def test_the_default_is_two_readers_to_stay_within_the_memory_budget(
    monkeypatch: pytest.MonkeyPatch, cores: int | None, readers: int
) -> None:
    monkeypatch.setattr(_parallel_load.os, "cpu_count", lambda: cores)
    assert _parallel_load.default_readers() == readers
