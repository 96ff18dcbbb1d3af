"""The PostgreSQL store: the conformance suite against a real server, then what PostgreSQL adds (URLs and
passwords, schema versions, COPY bulk loads, isolation, the writer lock, crashed loads)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

pytest.register_assert_rewrite("rorclient.testing.store_conformance")

from rorclient.errors import ConfigError, DataError, SchemaVersionError, StoreError  # noqa: E402
from rorclient.models import Entity, EntityKind  # noqa: E402
from rorclient.store import open_store  # noqa: E402
from rorclient.store import postgres as postgres_module  # noqa: E402
from rorclient.store._sql.postgres import bulk as _pg_bulk  # noqa: E402
from rorclient.store._sql.postgres.connect import lock_key  # noqa: E402
from rorclient.store._sql.postgres.schema import SCHEMA_VERSION  # noqa: E402
from rorclient.store._sql.postgres.url import parse_url  # noqa: E402
from rorclient.store.base import ChangeKind, EntityQuery, Store, SyncState  # noqa: E402
from rorclient.store.postgres import PostgresStore, redact_url  # noqa: E402
from rorclient.testing.store_conformance import (  # noqa: E402
    EG1,
    EG2,
    SOURCE,
    T0,
    StoreConformance,
    activity,
    apply_site,
    establishment,
    legal_entity,
    site,
    unit,
)

pytest_plugins = ("tests.pg",)

UNIT = EntityKind.UNIT
U1, U2 = "11/1001", "11/1002"
REPO = Path(__file__).resolve().parent.parent


class TestPostgresStore(StoreConformance):
    @pytest.fixture
    def store(self, postgres_url: str) -> Iterator[Store]:
        store = PostgresStore(postgres_url)
        try:
            yield store
        finally:
            store.close()


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    with PostgresStore(postgres_url) as store:
        yield store


@pytest.fixture
def admin(postgres_server_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A plain connection to the test database, to look at the store from outside."""
    with psycopg.connect(postgres_server_url, autocommit=True) as connection:
        yield connection


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def _password(url: str) -> str:
    secrets = parse_url(url).secrets
    assert secrets, "the test server must use password authentication (see tests/pg.py)"
    return min(secrets, key=len)


def _wrong_password(url: str) -> tuple[str, str]:
    """``url`` with another password, and that password."""
    wrong = "Wr0ng-s3cret-" + _password(url)[:6]
    return url.replace(_password(url), wrong, 1), wrong


def _staging_tables(admin: psycopg.Connection[tuple[object, ...]], schema: str) -> list[str]:
    rows = admin.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE 'staging%%'", (schema,)
    ).fetchall()
    return [str(name) for (name,) in rows]


def _scalar(admin: psycopg.Connection[tuple[object, ...]], query: str, *params: object) -> object:
    row = admin.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def _until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Wait for ``condition`` (a bound for a wait, never a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


# ---- URLs and passwords --------------------------------------------------------------------------


def test_open_store_takes_both_schemes_and_the_schema_parameter(
    postgres_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    schema = parse_url(postgres_url).schema
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://", 1)):
        store = open_store(url)
        try:
            assert isinstance(store, PostgresStore)
            assert store.schema == schema
            apply_site(store, site(EG1, unit(U1)))
            assert store.get(UNIT, U1) is not None
        finally:
            store.close()
    tables = admin.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)).fetchall()
    assert {"entities", "changes", "schema_version"} <= {name for (name,) in tables}


def test_other_query_parameters_go_to_libpq(postgres_url: str) -> None:
    with PostgresStore(postgres_url + "&application_name=ror-reader") as store:
        assert store._read("SHOW application_name") == [("ror-reader",)]


def test_the_password_never_shows_in_the_url_or_repr(postgres_url: str) -> None:
    password = _password(postgres_url)
    with PostgresStore(postgres_url) as store:
        assert password not in store.url
        assert password not in repr(store)
        assert ":***@" in store.url
        assert store.url.endswith(f"schema={store.schema}")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ror:s3cr%40t@db:5432/ror?schema=x", "postgresql://ror:***@db:5432/ror?schema=x"),
        ("postgres://ror@db/ror", "postgres://ror@db/ror"),
        (
            "postgresql:///ror?password=hunter2&sslmode=require",
            "postgresql:///ror?password=***&sslmode=require",
        ),
        ("postgresql://u:p@h1:5432,h2:5433/db", "postgresql://u:***@h1:5432,h2:5433/db"),
        ("custom://user:pw@host/x", "custom://user:***@host/x"),
        ("sqlite:///data/ror.db", "sqlite:///data/ror.db"),
        ("ror:s3cret@db/ror", "ror:***@db/ror"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def _all_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error)


def test_a_wrong_password_is_a_store_error_that_does_not_show_it(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url, wrong = _wrong_password(postgres_url)
    with caplog.at_level(logging.DEBUG), pytest.raises(StoreError, match="password authentication") as raised:
        PostgresStore(url)
    assert wrong not in _all_text(raised.value)
    assert _password(postgres_url) not in _all_text(raised.value)
    assert wrong not in caplog.text


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda url: url.replace("@", "%zz@", 1), id="bad percent-encoding"),
        pytest.param(lambda url: url + "&no_such_option=1", id="unknown parameter"),
        pytest.param(
            lambda url: urlunsplit(urlsplit(url)._replace(path="/no_such_database")), id="unknown database"
        ),
    ],
)
def test_connection_errors_never_show_the_password(postgres_url: str, mangle: Callable[[str], str]) -> None:
    url = mangle(postgres_url)
    with pytest.raises(StoreError) as raised:
        PostgresStore(url)
    text = _all_text(raised.value)
    for secret in parse_url(url).secrets:
        assert secret not in text
    assert "could not connect to the PostgreSQL store" in str(raised.value)


def test_urls_that_are_not_postgresql_or_name_a_bad_schema_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"postgresql://"):
        PostgresStore("mysql://u:secret@h/db")
    with pytest.raises(ConfigError, match="schema") as raised:
        PostgresStore("postgresql://u:secret@h/db?schema=" + "x" * 64)
    assert "secret" not in str(raised.value)


# ---- schema versions -----------------------------------------------------------------------------


def test_the_schema_is_created_versioned_and_not_migrated_twice(
    postgres_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    schema = parse_url(postgres_url).schema
    PostgresStore(postgres_url).close()
    PostgresStore(postgres_url).close()
    rows = admin.execute(f'SELECT version FROM "{schema}".schema_version ORDER BY version').fetchall()
    assert rows == [(version,) for version in range(1, SCHEMA_VERSION + 1)]


def test_stores_opening_a_new_schema_at_once_migrate_it_once(
    postgres_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        stores = list(pool.map(lambda _: PostgresStore(postgres_url), range(4)))
    for each in stores:
        each.close()
    schema = parse_url(postgres_url).schema
    assert _scalar(admin, f'SELECT count(*) FROM "{schema}".schema_version') == SCHEMA_VERSION


def test_a_schema_written_by_a_newer_rorclient_is_refused(
    postgres_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    schema = parse_url(postgres_url).schema
    PostgresStore(postgres_url).close()
    admin.execute(
        f'INSERT INTO "{schema}".schema_version VALUES (%s, %s, now())', (SCHEMA_VERSION + 1, "later")
    )
    with pytest.raises(
        SchemaVersionError, match=rf"schema version {SCHEMA_VERSION + 1}.*upgrade rorclient"
    ) as raised:
        PostgresStore(postgres_url)
    assert isinstance(raised.value, StoreError)
    assert schema in str(raised.value)
    assert _password(postgres_url) not in str(raised.value)


def test_two_schemas_of_one_database_are_two_stores(postgres_url: str, postgres_server_url: str) -> None:
    other_url = with_schema(postgres_server_url, parse_url(postgres_url).schema + "_b")
    with PostgresStore(postgres_url) as first, PostgresStore(other_url) as second:
        apply_site(first, site(EG1, unit(U1)))
        assert second.get(UNIT, U1) is None
        assert second.stats().last_change_seq == 0
        with first.writer_lock(wait=False) as a, second.writer_lock(wait=False) as b:
            assert (a, b) == (True, True)
    with psycopg.connect(postgres_server_url, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{parse_url(other_url).schema}" CASCADE')


def test_everything_survives_closing_and_reopening(postgres_url: str) -> None:
    state = SyncState(source=SOURCE, watermark=T0, taken_at=T0)
    with PostgresStore(postgres_url) as store:
        with store.transaction(run_id="r1") as tx:
            tx.replace_establishment(site(EG1, unit(U1)), source=SOURCE, establishment_id=EG1)
            tx.set_sync_state(state)
        log = store.changes()
    with PostgresStore(postgres_url) as store:
        stored = store.get(UNIT, U1)
        assert stored is not None
        assert stored.entity == unit(U1)
        assert store.changes() == log
        assert store.sync_state(SOURCE) == state


# ---- transactions and isolation ------------------------------------------------------------------


def test_a_database_error_during_a_transaction_rolls_back_and_is_a_store_error(
    store: PostgresStore, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    apply_site(store, site(EG1, unit(U1)))
    admin.execute(
        f'CREATE FUNCTION "{store.schema}".refuse() RETURNS trigger LANGUAGE plpgsql AS '
        "$$ BEGIN IF NEW.id = '11/1002' THEN RAISE EXCEPTION 'refused by a trigger'; END IF; "
        "RETURN NEW; END $$"
    )
    admin.execute(
        f'CREATE TRIGGER refuse BEFORE INSERT ON "{store.schema}".entities '
        f'FOR EACH ROW EXECUTE FUNCTION "{store.schema}".refuse()'
    )
    before = store.changes()
    with pytest.raises(StoreError, match="refused by a trigger"):
        apply_site(store, site(EG1, unit(U2)))
    assert store.changes() == before
    assert store.get(UNIT, U1) is not None
    apply_site(store, site(EG2), EG2)  # the connection is usable again


def test_transactions_do_not_nest(store: PostgresStore) -> None:
    with store.transaction():
        with pytest.raises(StoreError, match="do not nest"), store.transaction():
            pass
        with pytest.raises(StoreError, match="do not nest"), store.bulk_load(source=SOURCE):
            pass


def test_readers_see_the_last_committed_state_during_a_transaction(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as writer, PostgresStore(postgres_url) as reader:
        with writer.transaction() as tx:
            tx.replace_establishment(site(EG1, unit(U1)), source=SOURCE, establishment_id=EG1)
            assert writer.get(UNIT, U1) is None
            assert reader.get(UNIT, U1) is None
            assert reader.stats().last_change_seq == 0
        assert reader.get(UNIT, U1) is not None


def test_writers_in_several_threads_and_stores_take_turns_with_a_gapless_log(postgres_url: str) -> None:
    stores = [PostgresStore(postgres_url), PostgresStore(postgres_url)]
    establishments = [f"17500001{n:02d}" for n in range(8)]

    def write(index: int) -> None:
        establishment = establishments[index]
        offer = site(establishment, unit(f"11/{index + 5000}", establishment))
        apply_site(stores[index % 2], offer, establishment)

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(write, range(8)))
        store = stores[0]
        assert store.find(EntityQuery(kind=EntityKind.ESTABLISHMENT)).total == 8
        seqs = [change.seq for change in store.changes()]
        assert seqs == list(range(1, len(seqs) + 1))
    finally:
        for each in stores:
            each.close()


def test_a_writer_that_waits_too_long_gets_a_store_error_and_leaves_nothing(
    postgres_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    schema = parse_url(postgres_url).schema
    with PostgresStore(postgres_url) as holder, PostgresStore(postgres_url, lock_timeout=0.1) as waiter:
        with holder.transaction():
            with pytest.raises(StoreError, match="locked by another writer"), waiter.transaction():
                pass
            with (
                pytest.raises(StoreError, match="locked by another writer"),
                waiter.bulk_load(source=SOURCE) as load,
            ):
                load.add_many(site(EG1, unit(U1)).entities())
        assert _staging_tables(admin, schema) == []
        apply_site(waiter, site(EG1, unit(U1)))
        assert holder.get(UNIT, U1) is not None


def test_iter_entities_keeps_its_snapshot_while_the_store_changes(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_module, "_FETCH", 2)
    apply_site(store, site(EG1, unit(U1), unit(U2)))
    rows = store.iter_entities()
    first = next(rows)
    with store.transaction() as tx:
        tx.delete_establishment(EG1, source=SOURCE)
    rest = list(rows)
    assert len([first, *rest]) == 6
    assert not any(row.deleted for row in [first, *rest])
    assert store.stats().deleted == 5


def test_a_closed_store_refuses_work(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get(UNIT, U1)
    with pytest.raises(StoreError, match="closed"), store.transaction():
        pass
    with pytest.raises(StoreError, match="closed"), store.writer_lock():
        pass


# ---- bulk loads ----------------------------------------------------------------------------------


def _many_entities(units: int, codes: tuple[str, ...]) -> list[Entity]:
    """A legal entity, an establishment, ``units`` units and an activity per code for each (copies of
    one validated template each, which is quick to make)."""
    template_unit, template_activities = unit("11/0"), [activity("11/0", code) for code in codes]
    entities: list[Entity] = [legal_entity(), establishment(EG1)]
    for n in range(units):
        unit_id = f"11/{n:06d}"
        entities.append(template_unit.model_copy(update={"id": unit_id}))
        entities += [each.model_copy(update={"unit_id": unit_id}) for each in template_activities]
    return entities


def test_a_large_bulk_load_goes_through_copy_batches_into_an_unlogged_table(
    store: PostgresStore, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    entities = _many_entities(20_000, ("100", "200", "300", "400"))
    assert len(entities) > 100_000
    with store.bulk_load(source=SOURCE, run_id="pull-1") as load:
        load.add_many(entities)
        load.add(legal_entity())
        (table,) = _staging_tables(admin, store.schema)
        persistence = _scalar(
            admin,
            "SELECT relpersistence FROM pg_class "
            "WHERE oid = to_regclass(format('%%I.%%I', %s::text, %s::text))",
            store.schema,
            table,
        )
        assert persistence == "u", "the staging table is UNLOGGED"
        assert store.stats().last_change_seq == 0, "nothing is visible before the swap"
    assert load.result[ChangeKind.CREATED] == len(entities), "the repeated legal entity counts once"
    stats = store.stats()
    assert stats.by_kind == {"legal_entity": 1, "establishment": 1, "unit": 20_000, "activity": 80_000}
    assert stats.last_change_seq == len(entities)
    assert {change.run_id for change in store.changes(since=99_990)} == {"pull-1"}
    assert _staging_tables(admin, store.schema) == []
    assert _scalar(admin, f'SELECT count(*) FROM "{store.schema}".bulk_loads') == 0
    stored = store.get(EntityKind.ACTIVITY, "11/012345#300")
    assert stored is not None
    assert stored.entity == entities[2 + 12345 * 5 + 3]
    assert (stored.establishment, stored.parent) == (EG1, "11/012345")


def test_a_bulk_load_spans_batches_and_merges_identical_copies(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_pg_bulk, "BATCH_SIZE", 7)
    snapshot = list(site(EG1, *[unit(f"11/{n}") for n in range(30)], codes=("100", "200")).entities())
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


def test_another_reader_sees_the_old_copy_until_the_swap_commits(
    postgres_url: str, postgres_server_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    writer, reader = PostgresStore(postgres_url), PostgresStore(postgres_url)
    apply_site(writer, site(EG1, unit(U1)))

    def units() -> tuple[bool, bool]:
        return reader.get(UNIT, U1) is not None, reader.get(UNIT, U2) is not None

    def load_snapshot() -> dict[ChangeKind, int]:
        with writer.bulk_load(source=SOURCE) as load:
            load.add_many(site(EG1, unit(U2)).entities())
            load.set_sync_state(SyncState(source=SOURCE, taken_at=T0))
        return load.result

    def swap_waits_on_the_sync_state() -> bool:
        return bool(
            admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'INSERT INTO sync_state%%'"
            ).fetchall()
        )

    # A third session holds the sync state table: the swap writes every entity, then waits there,
    # its transaction open.
    blocker = psycopg.connect(postgres_server_url)
    try:
        blocker.execute(f'LOCK TABLE "{writer.schema}".sync_state IN ACCESS EXCLUSIVE MODE')
        with ThreadPoolExecutor(max_workers=1) as pool:
            swap = pool.submit(load_snapshot)
            _until(swap_waits_on_the_sync_state, "the swap to reach the sync state")
            during = units()
            blocker.rollback()
            result = swap.result()
        after = units()
    finally:
        blocker.close()
        writer.close()
        reader.close()
    assert during == (True, False), "the reader sees the previous copy while the swap is uncommitted"
    assert after == (False, True)
    assert result[ChangeKind.CREATED] == 2
    assert result[ChangeKind.DELETED] == 2


_CRASHING_LOAD = """
import os, sys
from rorclient.store.postgres import PostgresStore
from rorclient.testing.store_conformance import EG2, SOURCE, site, unit

store = PostgresStore(sys.argv[1])
context = store.bulk_load(source=SOURCE)
load = context.__enter__()
load.add_many(site(EG2, unit("11/9999", EG2)).entities())
load.preview()  # the staged rows are in the staging table
os._exit(3)  # the process dies mid-load: no clean-up runs
"""


def test_the_staging_of_a_crashed_bulk_load_is_removed_at_the_next_open(
    postgres_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    schema = parse_url(postgres_url).schema
    with PostgresStore(postgres_url) as store:
        apply_site(store, site(EG1, unit(U1)))
    crashed = subprocess.run(
        [sys.executable, "-c", _CRASHING_LOAD, postgres_url], check=False, capture_output=True, cwd=REPO
    )
    assert crashed.returncode == 3, crashed.stderr.decode()
    assert len(_staging_tables(admin, schema)) == 1
    key = _scalar(admin, f'SELECT lock_key FROM "{schema}".bulk_loads')
    assert isinstance(key, int)
    # The server ends the dead process's session, and releases its locks, on its own schedule.
    _until(lambda: not _advisory_holders(admin, key), "the crashed session to end")
    with PostgresStore(postgres_url) as store:
        assert _staging_tables(admin, schema) == []
        assert _scalar(admin, f'SELECT count(*) FROM "{schema}".bulk_loads') == 0
        assert store.get(UNIT, U1) is not None
        assert store.get(UNIT, "11/9999") is None


def test_opening_the_store_leaves_a_running_bulk_load_alone(
    store: PostgresStore, postgres_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    with store.bulk_load(source=SOURCE) as load:
        load.add_many(site(EG1, unit(U1)).entities())
        load.preview()
        PostgresStore(postgres_url).close()
        assert len(_staging_tables(admin, store.schema)) == 1
    assert load.result[ChangeKind.CREATED] == 4


# ---- the writer lock -----------------------------------------------------------------------------


def test_only_one_store_gets_the_writer_lock(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as first, PostgresStore(postgres_url) as second:
        with first.writer_lock("sync", wait=False) as held:
            assert held is True
            with second.writer_lock("sync", wait=False) as other:
                assert other is False
            with second.writer_lock("sync", wait=0.05) as other:
                assert other is False
            with second.writer_lock("another name", wait=False) as unrelated:
                assert unrelated is True
            with pytest.raises(StoreError, match="already holds"), first.writer_lock("sync"):
                pass
        with second.writer_lock("sync", wait=False) as now_free:
            assert now_free is True


def test_a_waiting_store_gets_the_lock_when_the_holder_lets_go(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as first, PostgresStore(postgres_url) as second:
        acquired = threading.Event()

        def wait_for_it() -> bool:
            with second.writer_lock("sync", wait=True) as held:
                acquired.set()
                return held

        with ThreadPoolExecutor(max_workers=1) as pool:
            with first.writer_lock("sync") as held:
                assert held
                waiting = pool.submit(wait_for_it)
                assert not acquired.wait(0.2), "the second store waits while the first holds the lock"
            assert waiting.result(timeout=20) is True


def _lock_holders(admin: psycopg.Connection[tuple[object, ...]], schema: str, name: str) -> list[int]:
    return _advisory_holders(admin, lock_key(schema, "writer", name))


def _advisory_holders(admin: psycopg.Connection[tuple[object, ...]], key: int) -> list[int]:
    """The sessions holding the advisory lock ``key`` (how pg_locks shows a 64-bit key)."""
    rows = admin.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND classid::text::bigint = %s AND objid::text::bigint = %s AND objsubid = 1",
        ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
    ).fetchall()
    return [int(pid) for (pid,) in rows]


def test_the_lock_is_released_when_the_holders_connection_dies(
    postgres_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    with PostgresStore(postgres_url) as first, PostgresStore(postgres_url) as second:
        with first.writer_lock("sync") as held:
            assert held
            (pid,) = _lock_holders(admin, first.schema, "sync")
            assert _scalar(admin, "SELECT pg_terminate_backend(%s)", pid) is True
            with second.writer_lock("sync", wait=20) as taken_over:
                assert taken_over is True
                with pytest.raises(StoreError, match=r"writer lock 'sync'.*was lost"):
                    apply_site(first, site(EG1, unit(U1)))
                apply_site(second, site(EG1, unit(U1)))
        assert second.get(UNIT, U1) is not None
        apply_site(first, site(EG2), EG2)  # once out of the lost lock's block, the store writes again


_LOCK_HOLDER = """
import sys, time
from rorclient.store.postgres import PostgresStore

store = PostgresStore(sys.argv[1])
with store.writer_lock("sync") as held:
    print("held" if held else "refused", flush=True)
    time.sleep(600)
"""


def test_a_killed_holder_process_hands_the_lock_over(
    postgres_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _LOCK_HOLDER, postgres_url], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with PostgresStore(postgres_url) as store:
            with store.writer_lock("sync", wait=False) as held:
                assert held is False
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(timeout=20)
            with store.writer_lock("sync", wait=20) as held:
                assert held is True
                assert len(_lock_holders(admin, store.schema, "sync")) == 1
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


@pytest.mark.parametrize("wait", [-1, float("nan"), "soon"])
def test_a_bad_wait_is_a_config_error(store: PostgresStore, wait: object) -> None:
    with pytest.raises(ConfigError, match="wait"), store.writer_lock(wait=wait):  # type: ignore[arg-type]
        pass
