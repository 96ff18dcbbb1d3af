"""What the SQLite store adds to the conformance suite: files, URLs, schema versions, concurrency, crashes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.register_assert_rewrite("rorclient.testing.store_conformance")

from rorclient.errors import ConfigError, DataError, SchemaVersionError, StoreError  # noqa: E402
from rorclient.models import Entity, EntityKind  # noqa: E402
from rorclient.store import default_store_url, open_store  # noqa: E402
from rorclient.store import sqlite as sqlite_module  # noqa: E402
from rorclient.store._sql.sqlite import bulk as _sqlite_bulk  # noqa: E402
from rorclient.store._sql.sqlite.schema import SCHEMA_VERSION  # noqa: E402
from rorclient.store.base import KIND_ORDER, ChangeKind, EntityQuery, SyncState  # noqa: E402
from rorclient.store.memory import MemoryStore  # noqa: E402
from rorclient.store.sqlite import SqliteStore, path_from_url  # noqa: E402
from rorclient.testing.store_conformance import (  # noqa: E402
    EG1,
    EG2,
    SOURCE,
    T0,
    apply_site,
    site,
    unit,
)
from tests.strategies import sample_offer  # noqa: E402

UNIT = EntityKind.UNIT
U1, U2 = "11/1001", "11/1002"
_KIND_RANK = {kind.value: rank for kind, rank in KIND_ORDER.items()}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "ror.sqlite3"


def _staging_files(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.staging-*"))


def _registered_loads(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        count: int = connection.execute("SELECT count(*) FROM bulk_loads").fetchone()[0]
    connection.close()
    return count


# ---- files and URLs ------------------------------------------------------------------------------


def test_opening_creates_the_file_under_missing_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ror.sqlite3"
    with SqliteStore(path) as store:
        assert path.is_file()
        assert store.url == f"sqlite:///{path}"
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    connection.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///data/ror.db", Path("data/ror.db")),
        ("sqlite:////var/lib/rorclient/ror.db", Path("/var/lib/rorclient/ror.db")),
        ("sqlite:///~/ror.db", Path("~/ror.db")),
    ],
)
def test_three_slashes_then_the_path(url: str, expected: Path) -> None:
    assert path_from_url(url) == expected.expanduser()  # the test's HOME, not the collecting one's


def test_the_default_url_names_an_absolute_path() -> None:
    assert path_from_url(default_store_url()).is_absolute()


@pytest.mark.parametrize(
    "url", ["sqlite://host/ror.db", "sqlite:///", "sqlite:///:memory:", "sqlite:ror.db", "postgresql:///ror"]
)
def test_urls_naming_no_file_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="sqlite:///"):
        path_from_url(url)


def test_open_store_resolves_a_relative_url_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///sub/ror.db")
    try:
        assert isinstance(store, SqliteStore)
        assert store.url == "sqlite:///sub/ror.db"
        assert (tmp_path / "sub" / "ror.db").is_file()
    finally:
        store.close()
    assert isinstance(open_store("memory://"), MemoryStore)


def test_everything_survives_closing_and_reopening(path: Path) -> None:
    state = SyncState(source=SOURCE, watermark=T0, taken_at=T0)
    with SqliteStore(path) as store:
        with store.transaction(run_id="r1") as tx:
            tx.replace_establishment(site(EG1, unit(U1)), source=SOURCE, establishment_id=EG1)
            tx.set_sync_state(state)
        log = store.changes()
    with SqliteStore(path) as store:
        stored = store.get(UNIT, U1)
        assert stored is not None
        assert stored.entity == unit(U1)
        assert store.changes() == log
        assert store.sync_state(SOURCE) == state


# ---- schema versions -----------------------------------------------------------------------------


def test_a_store_written_by_a_newer_rorclient_is_refused(path: Path) -> None:
    SqliteStore(path).close()
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?, 'later', '2030-01-01')",
            (SCHEMA_VERSION + 1,),
        )
    connection.close()
    with pytest.raises(
        SchemaVersionError, match=rf"schema version {SCHEMA_VERSION + 1}.*upgrade rorclient"
    ) as raised:
        SqliteStore(path)
    assert isinstance(raised.value, StoreError)
    assert str(path) in str(raised.value)


def test_a_file_that_is_not_a_database_is_a_store_error(path: Path) -> None:
    path.write_bytes(b"this is not a database " * 100)
    with pytest.raises(StoreError, match=r"ror\.sqlite3"):
        SqliteStore(path)


def test_a_database_error_during_a_transaction_rolls_back_and_is_a_store_error(path: Path) -> None:
    with SqliteStore(path) as store:
        apply_site(store, site(EG1, unit(U1)))
        connection = sqlite3.connect(path)
        with connection:
            connection.execute(
                "CREATE TRIGGER refuse AFTER INSERT ON entities WHEN NEW.id = '11/1002' "
                "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
            )
        connection.close()
        before = store.changes()
        with pytest.raises(StoreError, match="refused by a trigger"):
            apply_site(store, site(EG1, unit(U2)))
        assert store.changes() == before
        assert store.get(UNIT, U1) is not None


# ---- concurrency ---------------------------------------------------------------------------------


def test_transactions_do_not_nest(path: Path) -> None:
    with SqliteStore(path) as store, store.transaction():
        with pytest.raises(StoreError, match="do not nest"), store.transaction():
            pass
        with pytest.raises(StoreError, match="do not nest"), store.bulk_load(source=SOURCE):
            pass


def test_reads_during_a_transaction_see_the_last_committed_state(path: Path) -> None:
    with SqliteStore(path) as store:
        with store.transaction() as tx:
            tx.replace_establishment(site(EG1, unit(U1)), source=SOURCE, establishment_id=EG1)
            assert store.get(UNIT, U1) is None
        assert store.get(UNIT, U1) is not None


def test_another_reader_sees_the_old_copy_until_the_swap_commits(path: Path) -> None:
    writer, reader = SqliteStore(path), SqliteStore(path)
    apply_site(writer, site(EG1, unit(U1)))
    seen: list[tuple[str, tuple[bool, bool]]] = []

    def look(moment: str) -> None:
        def units() -> tuple[bool, bool]:
            return reader.get(UNIT, U1) is not None, reader.get(UNIT, U2) is not None

        with ThreadPoolExecutor(max_workers=1) as pool:
            seen.append((moment, pool.submit(units).result()))

    def before_commit(statement: str) -> None:
        if statement.startswith("DELETE FROM main.bulk_loads"):  # the swap's last write before COMMIT
            look("swapping")

    try:
        with writer.bulk_load(source=SOURCE) as load:
            load.add_many(site(EG1, unit(U2)).entities())
            load.preview()
            look("staged")
            load._connection.set_trace_callback(before_commit)
        look("committed")
    finally:
        writer.close()
        reader.close()
    assert seen == [("staged", (True, False)), ("swapping", (True, False)), ("committed", (False, True))]


def test_writers_in_several_threads_take_turns(path: Path) -> None:
    stores = [SqliteStore(path), SqliteStore(path)]
    establishments = [f"17500001{n:02d}" for n in range(8)]

    def write(index: int) -> None:
        establishment = establishments[index]
        offer = site(establishment, unit(f"11/{index + 5000}", establishment))
        apply_site(stores[index % 2], offer, establishment)

    try:
        threads = [threading.Thread(target=write, args=(index,)) for index in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        store = stores[0]
        assert store.find(EntityQuery(kind=EntityKind.ESTABLISHMENT)).total == 8
        seqs = [change.seq for change in store.changes()]
        assert seqs == list(range(1, len(seqs) + 1))
    finally:
        for store in stores:
            store.close()


def test_iter_entities_keeps_its_snapshot_while_the_store_changes(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "_FETCH", 2)
    with SqliteStore(path) as store:
        apply_site(store, site(EG1, unit(U1), unit(U2)))
        rows = store.iter_entities()
        first = next(rows)
        with store.transaction() as tx:
            tx.delete_establishment(EG1, source=SOURCE)
        rest = list(rows)
        assert len([first, *rest]) == 6
        assert not any(row.deleted for row in [first, *rest])
        assert store.stats().deleted == 5


def test_a_closed_store_refuses_work(path: Path) -> None:
    store = SqliteStore(path)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get(UNIT, U1)
    with pytest.raises(StoreError, match="closed"), store.transaction():
        pass


# ---- bulk loads: batches and staging files -------------------------------------------------------


def test_a_bulk_load_spans_batches_and_merges_identical_copies(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sqlite_bulk, "BATCH_SIZE", 7)
    snapshot = list(site(EG1, *[unit(f"11/{n}") for n in range(30)], codes=("100", "200")).entities())
    with SqliteStore(path) as store:
        with store.bulk_load(source=SOURCE) as load:
            load.add_many(snapshot)
            load.add(snapshot[0])
            assert load.preview()[ChangeKind.CREATED] == 92
            load.add_many(snapshot[10:20])
        assert load.result[ChangeKind.CREATED] == 92
        assert store.stats().by_kind == {"legal_entity": 1, "establishment": 1, "unit": 30, "activity": 60}

        def load_a_differing_copy() -> None:
            with store.bulk_load(source=SOURCE) as load:
                load.add_many(snapshot)
                load.add(unit("11/3", name="another name"))

        with pytest.raises(DataError, match="11/3"):
            load_a_differing_copy()
        assert store.stats().last_change_seq == 92


def test_no_staging_file_outlives_a_bulk_load(path: Path) -> None:
    with SqliteStore(path) as store:
        with store.bulk_load(source=SOURCE) as load:
            load.add_many(site(EG1, unit(U1)).entities())
            load.preview()
            assert len(_staging_files(path)) == 1
        with store.bulk_load(source=SOURCE) as load:
            load.abort()

        def fail_while_loading() -> None:
            with store.bulk_load(source=SOURCE) as load:
                load.add_many(site(EG1, unit(U2)).entities())
                raise KeyError("parse error")

        with pytest.raises(KeyError):
            fail_while_loading()
        assert _staging_files(path) == []
        assert _registered_loads(path) == 0


_CRASHING_LOAD = """
import os, sys
from rorclient.store.sqlite import SqliteStore
from rorclient.testing.store_conformance import EG2, SOURCE, site, unit

store = SqliteStore(sys.argv[1])
context = store.bulk_load(source=SOURCE)
load = context.__enter__()
load.add_many(site(EG2, unit("11/9999", EG2)).entities())
load.preview()  # the staged rows are on disk
os._exit(3)  # the process dies mid-load: no clean-up runs
"""


def test_the_staging_of_a_crashed_bulk_load_is_removed_at_the_next_open(path: Path) -> None:
    with SqliteStore(path) as store:
        apply_site(store, site(EG1, unit(U1)))
    crashed = subprocess.run(
        [sys.executable, "-c", _CRASHING_LOAD, str(path)], check=False, capture_output=True
    )
    assert crashed.returncode == 3, crashed.stderr.decode()
    assert len(_staging_files(path)) == 1
    assert _registered_loads(path) == 1

    with SqliteStore(path) as store:
        assert _staging_files(path) == []
        assert _registered_loads(path) == 0
        assert store.get(UNIT, U1) is not None
        assert store.get(UNIT, "11/9999") is None
        assert store.get(EntityKind.ESTABLISHMENT, EG2) is None


def test_opening_the_store_leaves_a_running_bulk_load_alone(path: Path) -> None:
    with SqliteStore(path) as store:
        with store.bulk_load(source=SOURCE) as load:
            load.add_many(site(EG1, unit(U1)).entities())
            load.preview()
            SqliteStore(path).close()
            assert len(_staging_files(path)) == 1
        assert load.result[ChangeKind.CREATED] == 4


# ---- bulk loads: a source's first load streams into the live table -------------------------------

OTHER = "other-source"


def _indexes(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as connection:
        rows: list[tuple[str, str]] = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name"
        ).fetchall()
    connection.close()
    return rows


def _everything(store: SqliteStore) -> tuple[object, ...]:
    rows = [
        (r.kind, r.id, r.source, r.content_hash, r.deleted, r.establishment) for r in store.iter_entities()
    ]
    return rows, store.changes(), store.stats()


def _many_units(establishment: str, count: int) -> list[Entity]:
    return list(
        site(establishment, *[unit(f"11/{n}", establishment) for n in range(5000, 5000 + count)]).entities()
    )


def test_a_source_s_first_load_streams_and_a_reload_stages(path: Path) -> None:
    with SqliteStore(path) as store:
        with store.bulk_load(source=SOURCE) as load:
            load.add_many(site(EG1, unit(U1)).entities())
            assert load.streaming
            assert len(_staging_files(path)) == 1, "the staging file still takes rows meeting others'"
        with store.bulk_load(source=SOURCE) as load:
            load.add_many(site(EG1, unit(U1), unit(U2)).entities())
            assert not load.streaming
        assert load.result == {**dict.fromkeys(ChangeKind, 0), ChangeKind.CREATED: 2}
        with store.bulk_load(source=OTHER) as load:
            load.abort()
            assert load.streaming, "another source's rows do not stop a first load from streaming"


def test_a_streamed_load_is_invisible_until_it_commits_and_keeps_the_indexes(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sqlite_bulk.SqliteBulkLoad, "batch_size", 7)
    with SqliteStore(path) as store:
        indexes = _indexes(path)
        with store.bulk_load(source=SOURCE) as load:
            load.add_many(_many_units(EG1, 40))  # six batches written to the live table
            assert load.streaming
            assert store.get(UNIT, "11/5000") is None, "readers see the store as it was"
            assert store.stats().last_change_seq == 0
            assert sum(store.stats().by_kind.values()) == 0
        assert (
            load.result[ChangeKind.CREATED] == 40 + 2 + 40
        )  # units, legal entity, establishment, activities
        assert _indexes(path) == indexes, "the indexes dropped while streaming are all back"
        activity = store.get(EntityKind.ACTIVITY, "11/5039#100")
        assert activity is not None and activity.establishment == EG1
        log = store.changes()
        assert [(c.kind, c.id) for c in log] == sorted(
            ((c.kind, c.id) for c in log), key=lambda pair: (_KIND_RANK[pair[0]], pair[1])
        ), "the change log lists a streamed load in kind and id order, as a staged one"


def test_an_error_in_the_middle_of_a_streamed_load_leaves_the_store_exactly_as_it_was(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sqlite_bulk.SqliteBulkLoad, "batch_size", 7)
    with SqliteStore(path) as store:
        apply_site(store, site(EG2, unit(U2, EG2)), EG2, source=OTHER)
        before, indexes = _everything(store), _indexes(path)

        def fail_halfway() -> None:
            with store.bulk_load(source=SOURCE) as load:
                load.add_many(_many_units(EG1, 40))
                assert load.streaming
                load.add_many(site(EG2, unit(U2, EG2)).entities())  # meets OTHER's rows: staged
                load.preview()
                raise RuntimeError("the file ends here")

        with pytest.raises(RuntimeError, match="ends here"):
            fail_halfway()
        assert _everything(store) == before
        assert _indexes(path) == indexes
        assert _staging_files(path) == [] and _registered_loads(path) == 0

        def differing_copy() -> None:
            with store.bulk_load(source=SOURCE) as load:
                load.add_many(_many_units(EG1, 20))
                load.add(unit("11/5003", EG1, name="another name"))

        with pytest.raises(DataError, match="11/5003"):
            differing_copy()
        assert _everything(store) == before

        with store.bulk_load(source=SOURCE) as load:  # what a tripped breaker or a dry run does
            load.add_many(_many_units(EG1, 20))
            assert load.streaming
            preview = load.preview()  # the legal entity is OTHER's: staged, classified as updated
            assert (preview[ChangeKind.CREATED], preview[ChangeKind.UPDATED]) == (41, 1)
            load.abort()
        assert _everything(store) == before
        assert _indexes(path) == indexes


_KILLED_STREAMING_LOAD = """
import os, signal, sys
from rorclient.store._sql.sqlite.bulk import SqliteBulkLoad
from rorclient.store.sqlite import SqliteStore
from rorclient.testing.store_conformance import EG1, SOURCE, site, unit

SqliteBulkLoad.batch_size = 50
store = SqliteStore(sys.argv[1])
context = store.bulk_load(source=SOURCE)
load = context.__enter__()
assert load.streaming
load.add_many(site(EG1, *[unit(f"11/{n}") for n in range(5000, 5400)]).entities())
load.preview()  # every batch is in the live table, uncommitted
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_streamed_load_killed_in_the_middle_leaves_the_store_exactly_as_it_was(path: Path) -> None:
    with SqliteStore(path) as store:
        apply_site(store, site(EG2, unit(U2, EG2)), EG2, source=OTHER)
        before, indexes = _everything(store), _indexes(path)
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_STREAMING_LOAD, str(path)], check=False, capture_output=True
    )
    assert killed.returncode == -9, killed.stderr.decode()
    assert _registered_loads(path) == 1
    with SqliteStore(path) as store:
        assert _everything(store) == before
        assert store.get(UNIT, "11/5000") is None
        assert _indexes(path) == indexes
        assert _staging_files(path) == [] and _registered_loads(path) == 0
        with store.bulk_load(source=SOURCE) as load:  # the next load starts afresh
            load.add_many(site(EG1, unit(U1)).entities())
            assert load.streaming
        # The legal entity, shared by design, is OTHER's: staged and classified, not streamed.
        assert (load.result[ChangeKind.CREATED], load.result[ChangeKind.UPDATED]) == (3, 1)


def test_staging_files_no_load_claims_are_removed_at_open(path: Path) -> None:
    SqliteStore(path).close()
    orphan = path.with_name(f"{path.name}.staging-0123456789abcdef")
    orphan.write_bytes(b"")
    SqliteStore(path).close()
    assert not orphan.exists()


def test_a_writer_that_waits_too_long_gets_a_store_error_and_leaves_nothing(path: Path) -> None:
    store = SqliteStore(path, busy_timeout=0.05)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked"), store.transaction():
            pass
        with pytest.raises(StoreError, match="locked"), store.bulk_load(source=SOURCE):
            pass
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert _staging_files(path) == []
    assert _registered_loads(path) == 0
    apply_site(store, site(EG1, unit(U1)))
    assert store.get(UNIT, U1) is not None
    store.close()


def test_a_row_edited_into_nonsense_is_a_store_error_naming_it(path: Path) -> None:
    with SqliteStore(path) as store:
        apply_site(store, site(EG1, unit(U1)))
        connection = sqlite3.connect(path)
        with connection:
            connection.execute('UPDATE entities SET data = \'{"kind": "unit"}\' WHERE id = ?', (U1,))
        connection.close()
        with pytest.raises(StoreError, match="unit '11/1001'"):
            store.get(UNIT, U1)


def test_new_store_files_use_large_pages_and_old_ones_keep_theirs(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    SqliteStore(fresh).close()
    with sqlite3.connect(fresh) as connection:
        assert connection.execute("PRAGMA page_size").fetchone()[0] == 16_384
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as connection:  # a store file created with SQLite's 4 KiB default
        connection.execute("PRAGMA page_size = 4096")
        connection.execute("PRAGMA journal_mode = WAL")
    store = SqliteStore(old)
    try:
        with store.bulk_load(source="s") as bulk:
            bulk.add_many(sample_offer().entities())
        assert sum(store.stats().by_kind.values()) == sum(1 for _ in sample_offer().entities())
    finally:
        store.close()
    with sqlite3.connect(old) as connection:
        assert connection.execute("PRAGMA page_size").fetchone()[0] == 4096


def test_staged_rows_carry_the_entity_json_and_content_hash_of_every_kind() -> None:
    from rorclient.store._sql.rows import staged_row
    from rorclient.store.base import content_hash

    entities = list(sample_offer().entities())
    assert {entity.kind for entity in entities} == set(EntityKind)
    for entity in entities:
        row = staged_row(entity)
        assert row[-1] == entity.model_dump_json()
        assert row[-2] == content_hash(entity)
