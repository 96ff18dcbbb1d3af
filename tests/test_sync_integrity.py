"""Regression tests of issue 14 (data integrity): each guards one way the engine used to lose rows or
write them where they do not belong, and failed on the code before its fix."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from rorclient.daemon import Daemon, DaemonOptions
from rorclient.health import read_health
from rorclient.models import EntityKind
from rorclient.store.base import Store
from rorclient.store.memory import MemoryStore
from rorclient.sync import BreakerLatchedError, SafetyBreakerError, Sync, SyncOptions
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
