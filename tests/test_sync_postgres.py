"""The engine on the PostgreSQL store: the same behaviour through the Store protocol, and the store's own
advisory lock as the sync lock (one pull or sync at a time, across processes and hosts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rorclient.models import EntityKind
from rorclient.store.base import ChangeKind
from rorclient.store.postgres import PostgresStore
from rorclient.sync import RunStatus, Sync, SyncLockedError, SyncOptions
from tests._sync_fakes import FakeRor, live_rows, transport_error

pytest_plugins = ("tests.pg",)


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    with PostgresStore.from_url(postgres_url) as opened:
        yield opened


def make_sync(ror: FakeRor, store: PostgresStore, tmp_path: Path) -> Sync:
    options = SyncOptions(data_dir=tmp_path / "data")
    return Sync(store=store, client=ror, source="test", options=options, clock=lambda: ror.now)


def test_pull_and_cycles_with_moves_deletions_and_failures_on_postgresql(
    store: PostgresStore, tmp_path: Path
) -> None:
    ror = FakeRor(12)
    sync = make_sync(ror, store, tmp_path)
    assert sync.pull().status is RunStatus.SUCCESS
    assert live_rows(store) == ror.snapshot()
    ror.move("32/1017005", "1600000017", "1880000042")
    ror.delete_unit("1600000019", "32/1019004")
    ror.mutate("1880000041", "establishment_closure")
    ror.add_establishment()
    ror.failing["1080000025"] = transport_error()
    ror.mutate("1080000025", "rename")
    first = sync.sync()
    assert first.status is RunStatus.PARTIAL and first.pending == 1
    assert [change.change for change in store.changes() if change.id == "32/1017005"] == [
        ChangeKind.CREATED,
        ChangeKind.MOVED,
    ]
    del ror.failing["1080000025"]
    assert sync.sync().status is RunStatus.SUCCESS
    assert live_rows(store) == ror.snapshot() and store.pending("test") == []
    row = store.get(EntityKind.UNIT, "32/1019004", include_deleted=True)
    assert row is not None and row.deleted


def test_the_postgresql_advisory_lock_admits_one_sync_at_a_time(
    store: PostgresStore, postgres_url: str, tmp_path: Path
) -> None:
    ror = FakeRor(4)
    first = make_sync(ror, store, tmp_path)
    first.pull()
    with PostgresStore.from_url(postgres_url) as other_store:
        second = make_sync(ror, other_store, tmp_path)
        with first.exclusive(), pytest.raises(SyncLockedError):
            second.sync()
        assert second.sync().status is RunStatus.SUCCESS
