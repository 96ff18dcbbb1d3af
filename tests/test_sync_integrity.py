"""Regression tests of issue 14 (data integrity): each guards one way the engine used to lose rows or
write them where they do not belong, and failed on the code before its fix."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from rorclient.daemon import Daemon, DaemonOptions
from rorclient.health import read_health
from rorclient.store.base import Store
from rorclient.store.memory import MemoryStore
from rorclient.sync import SafetyBreakerError, Sync, SyncOptions
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
