"""Regression tests of issue 14 (data integrity): each guards one way the engine used to lose rows or
write them where they do not belong, and failed on the code before its fix."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from rorclient.csd import read_offer
from rorclient.csd.writer import write_csd
from rorclient.daemon import Daemon, DaemonOptions
from rorclient.errors import DataError
from rorclient.health import read_health
from rorclient.models import EntityKind
from rorclient.store.base import Store
from rorclient.store.memory import MemoryStore
from rorclient.sync import BreakerLatchedError, RunStatus, SafetyBreakerError, Sync, SyncOptions
from tests._sync_fakes import FakeRor, live_rows

SOURCE = "test"
FAST = {"interval": dt.timedelta(seconds=0.01), "jitter": 0.0, "retry_after": dt.timedelta(seconds=0.01)}


def make_sync(ror: FakeRor, store: Store, tmp_path: Path, **options: object) -> Sync:
    return Sync(
        store=store,
        client=ror,
        source=SOURCE,
        options=SyncOptions(data_dir=tmp_path / "data", **options),  # type: ignore[arg-type]
        clock=lambda: ror.now,
    )


@pytest.fixture
def sync_12(tmp_path: Path) -> Iterator[tuple[FakeRor, MemoryStore, Sync]]:
    ror, store = FakeRor(12), MemoryStore()
    with make_sync(ror, store, tmp_path) as sync:
        sync.pull()
        yield ror, store, sync


def remove_small_sites(ror: FakeRor) -> list[str]:
    """A hostile answer: Lecture says "unknown" for every small establishment (Notif lists them all).
    Each one is well under the breaker's limit; together they are far above it."""
    keys = [key for key, offer in ror.offers.items() if sum(1 for _ in offer.entities()) <= 14]
    for key in keys:
        ror.remove(key)
    return keys


# ---- item 1: the breaker judges the whole cycle before any write ---------------------------------


def test_a_multi_batch_cycle_that_trips_the_breaker_commits_nothing(tmp_path: Path) -> None:
    ror, store = FakeRor(30), MemoryStore()
    sync = make_sync(ror, store, tmp_path, batch_size=1)
    sync.pull()
    before, state, changes = live_rows(store), store.sync_state(SOURCE), store.stats().last_change_seq
    remove_small_sites(ror)
    with pytest.raises(SafetyBreakerError) as caught:
        sync.sync()
    assert "nothing was committed" in str(caught.value)
    assert live_rows(store) == before and store.sync_state(SOURCE) == state
    assert store.stats().last_change_seq == changes


def test_daemon_retries_do_not_ratchet_a_bad_answer_into_the_store(tmp_path: Path) -> None:
    """The ratchet: each retry of a blocked multi-batch cycle used to commit a few more deletions."""
    ror, store = FakeRor(30), MemoryStore()
    sync = make_sync(ror, store, tmp_path, batch_size=1)
    sync.pull()
    before = live_rows(store)
    remove_small_sites(ror)
    health = tmp_path / "health.json"
    Daemon(sync, DaemonOptions(max_runs=8, health_file=health, full_every=None, **FAST)).run()
    assert live_rows(store) == before
    assert read_health(health).status == "blocked"


def test_a_tripped_breaker_is_latched_in_the_store_and_shown_in_status_and_report(tmp_path: Path) -> None:
    ror, store = FakeRor(30), MemoryStore()
    sync = make_sync(ror, store, tmp_path, batch_size=1)
    sync.pull()
    remove_small_sites(ror)
    with pytest.raises(SafetyBreakerError) as caught:
        sync.sync()
    verdict = caught.value.report.breaker
    assert verdict is not None and verdict.latched
    assert "latched" in str(caught.value) and "breaker reset" in str(caught.value)
    (latch,) = store.breaker_latches(SOURCE)
    assert latch.run_id == caught.value.report.run_id and latch.deletions == verdict.deletions
    assert sync.status().breaker == latch
    assert store.runs()[0].status == "blocked"


def test_a_latched_source_applies_nothing_until_reset_even_once_the_answer_is_good(tmp_path: Path) -> None:
    ror, store = FakeRor(30), MemoryStore()
    sync = make_sync(ror, store, tmp_path, batch_size=1)
    sync.pull()
    saved = dict(ror.offers)
    removed = remove_small_sites(ror)
    with pytest.raises(SafetyBreakerError):
        sync.sync()
    for key in removed:  # the ROR answers well again, and a real change comes in
        ror.put(saved[key])
    renamed = ror.mutate(removed[0], "rename")
    before = live_rows(store)
    with pytest.raises(BreakerLatchedError) as caught:
        sync.sync()
    assert caught.value.exit_code == 8 and "latched" in str(caught.value)
    assert live_rows(store) == before
    assert sync.sync(dry_run=True).counts["updated"] >= 1  # a dry run may look
    assert sync.reset_breaker() is not None and store.breaker_latches() == []
    sync.sync()
    assert store.get(EntityKind.ESTABLISHMENT, removed[0]).name == renamed.establishments[0].name  # type: ignore[union-attr]


def test_a_forced_run_releases_the_latch(tmp_path: Path) -> None:
    ror, store = FakeRor(30), MemoryStore()
    sync = make_sync(ror, store, tmp_path, batch_size=1)
    sync.pull()
    remove_small_sites(ror)
    with pytest.raises(SafetyBreakerError):
        sync.sync()
    report = sync.sync(force=True)
    assert report.breaker is not None and report.breaker.forced
    assert store.breaker_latches() == [] and sync.status().breaker is None


def test_the_daemon_holds_a_latched_source_and_says_so(tmp_path: Path) -> None:
    ror, store = FakeRor(30), MemoryStore()
    sync = make_sync(ror, store, tmp_path, batch_size=1)
    sync.pull()
    saved = dict(ror.offers)
    removed = remove_small_sites(ror)
    health = tmp_path / "health.json"
    Daemon(sync, DaemonOptions(max_runs=1, health_file=health, full_every=None, **FAST)).run()
    for key in removed:
        ror.put(saved[key])
    ror.mutate(removed[0], "rename")
    before = live_rows(store)
    Daemon(sync, DaemonOptions(max_runs=3, health_file=health, full_every=None, **FAST)).run()
    assert live_rows(store) == before  # held: not even the good answer is applied
    state = read_health(health)
    assert state.status == "blocked" and state.breaker is not None
    assert state.last_error is not None and "breaker reset" in state.last_error
    assert [run.status for run in store.runs()].count("blocked") == 1  # no retry, no new run
    sync.reset_breaker()
    Daemon(sync, DaemonOptions(max_runs=1, health_file=health, full_every=None, **FAST)).run()
    assert read_health(health).status == "ok" and live_rows(store) != before


# ---- item 2: a unit absent from its establishment is deleted only on proof -------------------------


def test_a_unit_missing_from_every_answer_is_kept_unless_the_ror_says_it_is_unknown(
    tmp_path: Path,
) -> None:
    """A's answer lacks U and U's own Lecture answer lacks it too (a profile filter, a partial answer):
    no proof that U is gone, so U stays and A is asked again next cycle."""
    ror, store = FakeRor(12), MemoryStore()
    sync = make_sync(ror, store, tmp_path)
    sync.pull()
    home, unit_id = "1880000042", "44/1042002"
    full = ror.offers[home]
    ror.delete_unit(home, unit_id)
    without_unit = ror.offers[home]
    ror.read_unit = lambda asked: without_unit  # type: ignore[method-assign]
    report = sync.sync()
    row = store.get(EntityKind.UNIT, unit_id)
    assert row is not None and not row.deleted
    assert report.status is RunStatus.PARTIAL and [item.establishment_id for item in store.pending()] == [
        home
    ]
    # the ROR then says "unknown unit": that is the proof, the deletion goes through
    del ror.read_unit
    assert full is not without_unit
    sync.sync()
    assert store.get(EntityKind.UNIT, unit_id) is None and store.pending() == []


# ---- item 3: refresh of one unit is checked like a cycle's answer ---------------------------------


def test_refresh_of_a_unit_refuses_an_answer_without_that_unit(
    sync_12: tuple[FakeRor, MemoryStore, Sync],
) -> None:
    ror, store, sync = sync_12
    other = ror.read_unit("44/1043001")
    ror.read_unit = lambda asked: other  # type: ignore[method-assign]
    before = live_rows(store)
    with pytest.raises(DataError, match="does not contain it"):
        sync.refresh(unit="44/1042001")
    assert live_rows(store) == before


def test_refresh_of_a_unit_refuses_rows_of_another_establishment(
    sync_12: tuple[FakeRor, MemoryStore, Sync],
) -> None:
    ror, store, sync = sync_12
    mine, theirs = ror.read_unit("44/1042001"), ror.read_unit("44/1043001")
    renamed = theirs.units[0].model_copy(update={"name": "HIJACKED"})
    hostile = mine.model_copy(update={"units": (*mine.units, renamed)})
    ror.read_unit = lambda asked: hostile  # type: ignore[method-assign]
    before = live_rows(store)
    with pytest.raises(DataError, match="another establishment"):
        sync.refresh(unit="44/1042001")
    assert live_rows(store) == before


def test_refresh_of_a_unit_goes_through_the_safety_breaker(tmp_path: Path) -> None:
    ror, store = FakeRor(12), MemoryStore()
    sync = make_sync(ror, store, tmp_path, breaker_floor=0, breaker_share=0.01)
    sync.pull()
    root = "01/1001001"  # the root of 40 units
    answer = ror.read_unit(root)
    lone = answer.model_copy(
        update={
            "units": tuple(unit for unit in answer.units if unit.id == root),
            "activities": tuple(item for item in answer.activities if item.unit_id == root),
            "equipment": tuple(item for item in answer.equipment if item.unit_id == root),
            "professionals": (),
        }
    )
    ror.read_unit = lambda asked: lone  # type: ignore[method-assign]
    before = live_rows(store)
    with pytest.raises(SafetyBreakerError):
        sync.refresh(unit=root)
    assert live_rows(store) == before
    assert sync.refresh(unit=root, force=True).counts["deleted"] > 0


# ---- item 4: answers that go backwards -------------------------------------------------------------


def test_an_answer_older_than_the_store_is_not_applied_and_is_retried(
    sync_12: tuple[FakeRor, MemoryStore, Sync],
) -> None:
    ror, store, sync = sync_12
    key = "1880000042"
    old = ror.offers[key]
    renamed = ror.mutate(key, "rename")
    sync.sync()
    ror.offers[key] = old  # a lagging replica answers with the version before the rename
    ror.updated[key] = ror.tick()
    report = sync.sync()
    assert report.stale == 1 and report.status is RunStatus.PARTIAL
    assert [item.establishment_id for item in store.pending()] == [key]
    stored = store.get(EntityKind.ESTABLISHMENT, key)
    assert stored is not None and stored.name == renamed.establishments[0].name
    ror.offers[key] = renamed  # the ROR is consistent again: the pending establishment clears
    assert sync.sync().stale == 0 and store.pending() == []


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_legal_entity_older_than_the_store_makes_the_answer_stale(tmp_path: Path, kind: str) -> None:
    """The stale check reads the stored stamps as heads in a transaction (SQLite) or as whole rows
    (a store without head reads): the same verdict, the legal entity included."""
    from rorclient.store.sqlite import SqliteStore

    ror = FakeRor(12)
    store: Store = MemoryStore() if kind == "memory" else SqliteStore(tmp_path / "ror.db")
    with make_sync(ror, store, tmp_path) as sync:
        sync.pull()
        key = next(key for key, offer in ror.offers.items() if offer.legal_entities)
        offer = ror.offers[key]
        legal = offer.legal_entities[0]
        older = legal.record.model_copy(update={"updated": legal.record.updated - dt.timedelta(days=1)})
        changed = legal.model_copy(update={"name": "OLDER NAME", "record": older})
        ror.offers[key] = offer.model_copy(update={"legal_entities": (changed,)})
        ror.updated[key] = ror.tick()
        report = sync.sync()
        assert report.stale == 1 and [item.establishment_id for item in store.pending()] == [key]
        stored = store.get(EntityKind.LEGAL_ENTITY, legal.id)
        assert stored is not None and stored.name == legal.name
    if kind == "sqlite":
        store.close()


def test_equal_stamps_with_different_content_are_applied_and_logged(
    sync_12: tuple[FakeRor, MemoryStore, Sync], caplog: pytest.LogCaptureFixture
) -> None:
    ror, store, sync = sync_12
    key = "1880000042"
    offer = ror.offers[key]
    quiet = offer.establishments[0].model_copy(update={"name": "RENAMED WITHOUT A NEW STAMP"})
    ror.offers[key] = offer.model_copy(update={"establishments": (quiet,)})
    ror.updated[key] = ror.tick()
    with caplog.at_level(logging.INFO, logger="rorclient.sync"):
        report = sync.sync()
    assert report.stale == 0
    stored = store.get(EntityKind.ESTABLISHMENT, key)
    assert stored is not None and stored.name == "RENAMED WITHOUT A NEW STAMP"
    assert "changed without a new stamp" in caplog.text


# ---- item 5: answers about someone else --------------------------------------------------------------


def test_an_answer_for_one_establishment_never_writes_another(
    sync_12: tuple[FakeRor, MemoryStore, Sync],
) -> None:
    ror, store, sync = sync_12
    mine, theirs = "1880000042", "1880000043"
    hijacked = ror.offers[theirs].establishments[0].model_copy(update={"name": "HIJACKED"})
    offer = ror.offers[mine]
    ror.offers[mine] = offer.model_copy(update={"establishments": (*offer.establishments, hijacked)})
    ror.updated[mine] = ror.tick()
    before = live_rows(store)
    report = sync.sync()
    assert [item.establishment_id for item in report.failed] == [mine]
    assert "refused" in report.failed[0].error
    assert live_rows(store) == before
    unit = ror.offers[theirs].units[0].model_copy(update={"name": "HIJACKED UNIT"})
    ror.offers[mine] = offer.model_copy(update={"units": (*offer.units, unit)})
    ror.updated[mine] = ror.tick()
    assert sync.sync().failed[0].establishment_id == mine and live_rows(store) == before


def test_a_unit_answer_without_the_units_ancestors_applies_against_the_store(
    sync_12: tuple[FakeRor, MemoryStore, Sync], tmp_path: Path
) -> None:
    """Lecture OI may answer the unit, its subtree and its establishment without the unit's ancestors:
    the parentFacility outside the document resolves against the store (it used to be "dangling")."""
    ror, store, sync = sync_12
    unit_id = "01/1001003"  # below 01/1001002, below 01/1001001
    full = ror.read_unit(unit_id)
    renamed = tuple(
        unit.model_copy(update={"name": "RENAMED"}) if unit.id == unit_id else unit for unit in full.units
    )
    path = tmp_path / "lecture_oi.xml"
    write_csd([full.model_copy(update={"units": renamed})], path)
    with pytest.raises(DataError, match="dangling reference"):
        read_offer(path)  # the reader alone still refuses it
    ror.read_unit = lambda asked: read_offer(path, external_parents=True)  # type: ignore[method-assign]
    before = {row for row in live_rows(store) if row[1] != unit_id}
    report = sync.refresh(unit=unit_id)
    assert report.counts["moved"] == 0 and report.counts["deleted"] == 0
    row = store.get(EntityKind.UNIT, unit_id)
    assert row is not None and row.name == "RENAMED" and row.parent == "01/1001002"
    assert {row for row in live_rows(store) if row[1] != unit_id} == before


def test_a_parent_facility_neither_the_answer_nor_the_store_knows_is_refused(
    sync_12: tuple[FakeRor, MemoryStore, Sync], tmp_path: Path
) -> None:
    ror, store, sync = sync_12
    full = ror.read_unit("01/1001003")
    newcomer = full.units[0].model_copy(update={"id": "01/1001999", "parent_unit_id": "01/9999999"})
    path = tmp_path / "lecture_oi.xml"
    write_csd(
        [
            full.model_copy(
                update={"units": (newcomer,), "activities": (), "equipment": (), "professionals": ()}
            )
        ],
        path,
    )
    ror.read_unit = lambda asked: read_offer(path, external_parents=True)  # type: ignore[method-assign]
    before = live_rows(store)
    with pytest.raises(DataError, match="neither in the Lecture answer nor in the store"):
        sync.refresh(unit="01/1001999")
    assert live_rows(store) == before


def test_an_accepted_latch_lets_the_daemons_next_run_apply_the_stopped_changes(tmp_path: Path) -> None:
    """The operator confirms a real mass removal without stopping the daemon to run `sync --force`."""
    ror, store = FakeRor(30), MemoryStore()
    sync = make_sync(ror, store, tmp_path, batch_size=1)
    sync.pull()
    removed = remove_small_sites(ror)
    health = tmp_path / "health.json"
    Daemon(sync, DaemonOptions(max_runs=2, health_file=health, full_every=None, **FAST)).run()
    assert read_health(health).status == "blocked"
    accepted = sync.accept_breaker()
    assert accepted is not None and accepted.accepted and sync.status().breaker == accepted
    Daemon(sync, DaemonOptions(max_runs=1, health_file=health, full_every=None, **FAST)).run()
    assert store.breaker_latches() == [] and read_health(health).status == "ok"
    assert all(store.get(EntityKind.ESTABLISHMENT, key) is None for key in removed)


def test_a_unit_moving_to_an_establishment_whose_answer_is_stale_is_kept(
    sync_12: tuple[FakeRor, MemoryStore, Sync],
) -> None:
    ror, store, sync = sync_12
    source, unit_id, target = "1600000017", "32/1017005", "1880000042"
    ror.move(unit_id, source, target)
    moved = ror.offers[target]
    site = moved.establishments[0]
    stored = store.get(EntityKind.ESTABLISHMENT, target)
    assert stored is not None
    older = site.record.model_copy(update={"updated": stored.updated - dt.timedelta(hours=1)})
    lagging = site.model_copy(update={"record": older})  # a lagging replica's copy of the site
    ror.offers[target] = moved.model_copy(update={"establishments": (lagging,)})
    ror.hidden.add(target)  # Notif misses the target: the unit's own Lecture leads to it
    report = sync.sync()
    row = store.get(EntityKind.UNIT, unit_id)
    assert row is not None and not row.deleted
    assert report.stale == 1 and {item.establishment_id for item in store.pending()} >= {source, target}


def test_an_empty_answer_never_wipes_a_small_source_below_the_breakers_floor(tmp_path: Path) -> None:
    # A source of 2 establishments (~20 entities) sits under the floor of 50: an empty snapshot (an empty
    # FHIR manifest, a regional filter that suddenly matches nothing, an empty file) would delete all of
    # it without a word. Deleting every live entity of a source is never judged small.
    from rorclient.sandbox.dataset import write_extraction
    from rorclient.sources import FileSource

    full, empty = tmp_path / "full.xml", tmp_path / "empty.xml"
    write_extraction(full, seed=5, establishments=2)
    write_csd([], empty)
    with MemoryStore() as store:
        with Sync(source=FileSource("od", [full]), store=store) as sync:
            sync.pull()
        before = live_rows(store)
        assert 0 < len(before) <= SyncOptions().breaker_floor
        with (
            Sync(source=FileSource("od", [empty]), store=store) as sync,
            pytest.raises(SafetyBreakerError, match="every live entity"),
        ):
            sync.pull()
        assert live_rows(store) == before
        with Sync(source=FileSource("od", [empty]), store=store) as sync:
            assert sync.pull(force=True).counts["deleted"] == len(before)  # an operator's decision
        assert live_rows(store) == set()
