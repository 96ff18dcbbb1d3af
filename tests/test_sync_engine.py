"""The sync engine against an in-memory ROR: pull, delta cycles and their hard cases, refresh, feed."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest

from rorclient.errors import DataError, RemoteError
from rorclient.models import EntityKind
from rorclient.store.base import Change, ChangeKind, Store
from rorclient.store.memory import MemoryStore
from rorclient.store.sqlite import SqliteStore
from rorclient.sync import (
    NotInitializedError,
    RunStatus,
    SafetyBreakerError,
    Sync,
    SyncLockedError,
    SyncOptions,
    UnknownIdentifierError,
)
from tests._sync_fakes import FakeRor, live_rows, transport_error

SOURCE = "test"


def make_sync(ror: FakeRor, store: Store, tmp_path: Path, **options: object) -> Sync:
    return Sync(
        store=store,
        client=ror,
        source=SOURCE,
        options=SyncOptions(data_dir=tmp_path / "data", **options),  # type: ignore[arg-type]
        clock=lambda: ror.now,
    )


@pytest.fixture
def ror() -> FakeRor:
    return FakeRor(12)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def sync(ror: FakeRor, store: MemoryStore, tmp_path: Path) -> Sync:
    engine = make_sync(ror, store, tmp_path)
    engine.pull()
    return engine


def changes_of(store: Store, entity_id: str) -> list[ChangeKind]:
    return [change.change for change in store.changes() if change.id == entity_id]


def unit_of(store: Store, unit_id: str) -> tuple[str | None, str | None, bool] | None:
    row = store.get(EntityKind.UNIT, unit_id, include_deleted=True)
    return None if row is None else (row.establishment, row.parent, row.deleted)


# ---- pull ----------------------------------------------------------------------------------------


def test_pull_loads_the_extraction_and_records_the_watermark_in_the_rors_time(
    ror: FakeRor, store: MemoryStore, tmp_path: Path
) -> None:
    engine = make_sync(ror, store, tmp_path)
    report = engine.pull()
    assert report.status is RunStatus.SUCCESS
    assert live_rows(store) == ror.snapshot()
    assert report.counts["created"] == len(ror.snapshot()) == report.entities
    state = store.sync_state(SOURCE)
    assert state is not None and state.last_full_pull is not None
    # the newest record of the extraction: the server's frame, never later than its clock
    assert state.watermark == max(ror.updated.values()) == report.watermark
    assert store.runs()[0].run_id == report.run_id
    assert not (tmp_path / "data" / SOURCE / "extraction").exists()  # removed once loaded


def test_a_second_identical_pull_changes_nothing(sync: Sync, store: MemoryStore) -> None:
    before = store.stats().last_change_seq
    report = sync.pull()
    assert report.total_changes == 0
    assert store.stats().last_change_seq == before


def test_a_pull_tombstones_what_the_extraction_no_longer_holds(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    gone = "1880000042"
    owned = sum(1 for entity in ror.offers[gone].entities() if entity.kind is not EntityKind.LEGAL_ENTITY)
    ror.remove(gone)
    report = sync.pull()
    assert report.counts["deleted"] == owned  # its legal entity has other sites
    assert store.get(EntityKind.ESTABLISHMENT, gone) is None
    assert store.get(EntityKind.ESTABLISHMENT, gone, include_deleted=True) is not None


def test_the_pull_breaker_stops_a_truncated_extraction_before_anything_is_committed(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    before = live_rows(store)
    state = store.sync_state(SOURCE)
    ror.extraction_filter = lambda key: key == "1971000001"  # the biggest site only
    with pytest.raises(SafetyBreakerError) as caught:
        sync.pull()
    assert caught.value.report.status is RunStatus.BLOCKED
    assert caught.value.report.breaker is not None and caught.value.report.breaker.tripped
    assert live_rows(store) == before
    assert store.sync_state(SOURCE) == state
    assert store.runs()[0].status == "blocked"
    assert sync.pull(force=True).counts["deleted"] > 0


def test_a_dry_run_pull_reports_without_committing(sync: Sync, ror: FakeRor, store: MemoryStore) -> None:
    before = store.stats().last_change_seq
    ror.mutate("1880000042", "rename")
    report = sync.pull(dry_run=True)
    assert report.status is RunStatus.DRY_RUN
    assert report.counts["updated"] >= 1
    assert store.stats().last_change_seq == before


def test_no_pull_leaves_its_extraction_in_the_cache(ror: FakeRor, store: MemoryStore, tmp_path: Path) -> None:
    """Dry run, breaker and failure included: the next pull downloads again, so a kept file is waste."""
    engine = make_sync(ror, store, tmp_path)
    extraction = tmp_path / "data" / SOURCE / "extraction"
    engine.pull()
    assert engine.pull(dry_run=True).status is RunStatus.DRY_RUN
    assert not extraction.exists()
    ror.extraction_filter = lambda key: key == "1971000001"
    with pytest.raises(SafetyBreakerError):
        engine.pull()
    assert not extraction.exists()


# ---- delta cycles -------------------------------------------------------------------------------


def test_sync_needs_a_pull_first(ror: FakeRor, store: MemoryStore, tmp_path: Path) -> None:
    with pytest.raises(NotInitializedError):
        make_sync(ror, store, tmp_path).sync()


def test_a_cycle_applies_what_notif_lists_and_moves_the_watermark(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    before = store.sync_state(SOURCE)
    assert before is not None and before.watermark is not None
    ror.mutate("1880000042", "rename")
    report = sync.sync()
    assert report.status is RunStatus.SUCCESS
    assert ror.last_since == before.watermark - dt.timedelta(minutes=5)
    assert report.counts["updated"] == 1
    assert live_rows(store) == ror.snapshot()
    after = store.sync_state(SOURCE)
    assert after is not None and after.watermark == ror.now == report.watermark


def test_re_running_a_cycle_produces_no_change_events(sync: Sync, ror: FakeRor, store: MemoryStore) -> None:
    ror.mutate("1880000042", "new_unit")
    ror.mutate("1600000017", "closure")
    first = sync.sync()
    assert first.total_changes > 0
    seen: list[Change] = []
    sync.on_change(seen.append)
    seq = store.stats().last_change_seq
    again = sync.sync()  # the overlap lists the same establishments again
    assert again.listed >= 2 and again.applied >= 2
    assert again.total_changes == 0 and seen == []
    assert store.stats().last_change_seq == seq


@pytest.mark.parametrize("target_first", [True, False])
def test_a_unit_that_moves_keeps_its_id_and_is_never_deleted_whatever_the_order(
    sync: Sync, ror: FakeRor, store: MemoryStore, target_first: bool
) -> None:
    source, unit = "1600000017", "32/1017005"
    assert (source, unit) in ror.movable()
    target = "1880000042"
    ror.move(unit, source, target)
    ror.notif_order = lambda ids: sorted(
        ids, key=lambda key: (key != target) if target_first else (key == target)
    )
    report = sync.sync()
    assert unit_of(store, unit) == (target, target, False)
    assert ChangeKind.DELETED not in changes_of(store, unit)
    assert changes_of(store, unit)[-1] is ChangeKind.MOVED
    assert live_rows(store) == ror.snapshot()
    assert report.extra_reads == 0 and ror.calls["lecture_oi"] == 0


def test_a_move_to_an_establishment_notif_did_not_list_is_found_through_the_unit(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    source, unit, target = "1600000017", "32/1017005", "1880000042"
    ror.move(unit, source, target)
    ror.hidden.add(target)
    report = sync.sync()
    assert report.extra_reads == 1 and ror.calls["lecture_oi"] == 1
    assert unit_of(store, unit) == (target, target, False)
    assert ChangeKind.DELETED not in changes_of(store, unit)
    assert live_rows(store) == ror.snapshot()


def test_a_move_whose_target_cannot_be_read_keeps_the_unit_and_retries_both_sides(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    source, unit, target = "1600000017", "32/1017005", "1880000042"
    ror.move(unit, source, target)
    ror.failing[target] = transport_error()
    first = sync.sync()
    assert first.status is RunStatus.PARTIAL
    assert unit_of(store, unit) == (source, "32/1017003", False)  # kept where it was
    assert {item.establishment_id for item in store.pending(SOURCE)} == {source, target}
    del ror.failing[target]
    second = sync.sync()
    assert second.status is RunStatus.SUCCESS and second.retried == 2
    assert unit_of(store, unit) == (target, target, False)
    assert ChangeKind.DELETED not in changes_of(store, unit)
    assert store.pending(SOURCE) == []
    assert live_rows(store) == ror.snapshot()


def test_when_the_ror_cannot_say_where_a_unit_went_it_is_kept_and_asked_again(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    source, unit = "1600000017", "32/1017005"
    ror.delete_unit(source, unit)
    ror.failing_units[unit] = transport_error()
    sync.sync()
    assert unit_of(store, unit) == (source, "32/1017003", False)
    assert [item.establishment_id for item in store.pending(SOURCE)] == [source]
    del ror.failing_units[unit]
    sync.sync()
    assert unit_of(store, unit) is not None and unit_of(store, unit)[2]  # type: ignore[index]
    assert store.pending(SOURCE) == []


def test_a_unit_absent_from_its_establishment_and_unknown_to_the_ror_is_tombstoned(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    source, unit = "1600000017", "32/1017005"
    activities = [row.id for row in store.iter_entities(kind=EntityKind.ACTIVITY) if row.parent == unit]
    assert activities
    ror.delete_unit(source, unit)
    report = sync.sync()
    assert report.counts["deleted"] == 1 + len(activities)
    row = store.get(EntityKind.UNIT, unit, include_deleted=True)
    assert row is not None and row.deleted and row.deleted_at is not None
    assert live_rows(store) == ror.snapshot()


def test_closures_are_recorded_as_closures_and_reopenings_as_such(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    key = "1880000041"
    ror.mutate(key, "establishment_closure")
    ror.mutate("1600000017", "closure")
    report = sync.sync()
    assert report.counts["closed"] == 2 and report.counts["deleted"] == 0
    establishment = store.get(EntityKind.ESTABLISHMENT, key)
    assert establishment is not None and establishment.closed and not establishment.deleted
    ror.mutate("1600000017", "reopening")
    assert sync.sync().counts["reopened"] == 1
    assert live_rows(store) == ror.snapshot()


def test_a_new_establishment_is_created_with_its_legal_entity(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    offer = ror.add_establishment()
    report = sync.sync()
    assert report.counts["created"] == len(list(offer.entities()))
    legal = offer.legal_entities[0]
    assert store.get(EntityKind.LEGAL_ENTITY, legal.id) is not None
    assert live_rows(store) == ror.snapshot()


def test_an_establishment_the_ror_no_longer_knows_is_tombstoned(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    gone = "1880000042"
    owned = sum(1 for entity in ror.offers[gone].entities() if entity.kind is not EntityKind.LEGAL_ENTITY)
    ror.remove(gone)
    report = sync.sync()
    assert report.removed == 1 and report.counts["deleted"] == owned
    rows = [row for row in store.iter_entities(include_deleted=True) if row.establishment == gone]
    assert rows and all(row.deleted for row in rows)


def test_a_failed_establishment_is_pending_then_retried_first_and_never_dropped(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    failing = "1880000042"
    ror.mutate(failing, "rename")
    ror.mutate("1600000017", "rename")
    ror.failing[failing] = transport_error()
    first = sync.sync()
    assert first.status is RunStatus.PARTIAL and first.pending == 1
    assert [failure.establishment_id for failure in first.failed] == [failing]
    assert first.failed[0].retryable
    (pending,) = store.pending(SOURCE)
    assert pending.establishment_id == failing and "connection reset" in pending.error
    # The watermark moved past the failed change: the pending list is what keeps it.
    assert first.watermark == ror.now
    ror.tick(600)
    second = sync.sync()
    assert store.pending(SOURCE)[0].attempts == 2 and second.retried == 1
    del ror.failing[failing]
    order: list[str] = []
    ror.on_read = order.append
    ror.mutate("1600000018", "rename")
    third = sync.sync()
    assert order[0] == failing  # pending first
    assert third.status is RunStatus.SUCCESS and store.pending(SOURCE) == []
    assert live_rows(store) == ror.snapshot()


def test_an_answer_without_the_establishment_asked_for_is_not_applied(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    key = "1880000042"
    ror.mutate(key, "rename")
    ror.offers[key] = ror.offers["1880000043"]  # a confused server
    before = live_rows(store)
    report = sync.sync()
    assert report.failed[0].establishment_id == key and "DataError" in report.failed[0].error
    assert {row for row in live_rows(store) if row[1] == key} == {row for row in before if row[1] == key}


def test_the_cycle_breaker_blocks_mass_deletions_and_commits_nothing(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    removed = ["1971000001", "1600000017", "1600000019"]
    for key in removed:
        ror.remove(key)
    before = live_rows(store)
    state = store.sync_state(SOURCE)
    with pytest.raises(SafetyBreakerError) as caught:
        sync.sync()
    verdict = caught.value.report.breaker
    assert verdict is not None and verdict.deletions > verdict.limit
    assert live_rows(store) == before and store.sync_state(SOURCE) == state
    forced = sync.sync(force=True)
    assert forced.breaker is not None and forced.breaker.forced
    # the removed sites' legal entities stay until a full pull (delete_establishment spares them)
    orphans = {row for row in live_rows(store) - ror.snapshot() if row[0] == "legal_entity"}
    assert live_rows(store) - orphans == ror.snapshot()
    sync.pull()
    assert live_rows(store) == ror.snapshot()


def test_a_dry_run_cycle_plans_and_commits_nothing(sync: Sync, ror: FakeRor, store: MemoryStore) -> None:
    ror.mutate("1880000042", "deletion")
    ror.add_establishment()
    seq, state = store.stats().last_change_seq, store.sync_state(SOURCE)
    report = sync.sync(dry_run=True)
    assert report.status is RunStatus.DRY_RUN
    assert report.counts["created"] > 0 and report.counts["deleted"] > 0
    assert store.stats().last_change_seq == seq and store.sync_state(SOURCE) == state


def test_a_stop_request_ends_the_cycle_between_establishments_without_moving_the_watermark(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    keys = ["1880000041", "1880000042", "1880000043"]
    for key in keys:
        ror.mutate(key, "rename")
    state = store.sync_state(SOURCE)
    ror.on_read = lambda key: sync.request_stop() if key == keys[1] else None
    report = sync.sync()
    assert report.status is RunStatus.INTERRUPTED
    assert store.sync_state(SOURCE) == state
    ror.on_read = None
    assert sync.sync().status is RunStatus.SUCCESS
    assert live_rows(store) == ror.snapshot()


def test_the_watermark_follows_the_data_when_the_local_clock_runs_ahead_of_the_ror(
    ror: FakeRor, store: MemoryStore, tmp_path: Path
) -> None:
    # A local clock an hour ahead (wrong time zone, skew) must not push the watermark past the ROR's.
    engine = Sync(store=store, client=ror, source=SOURCE, clock=lambda: ror.now + dt.timedelta(hours=1))
    engine.pull()
    ror.mutate("1880000042", "rename")
    report = engine.sync()
    assert report.watermark == ror.now
    ror.tick(120)
    ror.mutate("1880000043", "rename")  # made after the previous watermark, before our clock's
    assert engine.sync().counts["updated"] == 1


def test_the_watermark_never_runs_ahead_of_the_clock(
    ror: FakeRor, store: MemoryStore, tmp_path: Path
) -> None:
    behind = ror.now - dt.timedelta(hours=1)
    engine = Sync(store=store, client=ror, source=SOURCE, clock=lambda: behind)
    engine.pull()
    ror.mutate("1880000042", "rename")
    assert engine.sync().watermark == behind


# ---- refresh ------------------------------------------------------------------------------------


def test_refresh_replaces_exactly_one_establishment_now(sync: Sync, ror: FakeRor, store: MemoryStore) -> None:
    ror.mutate("1880000042", "rename")
    ror.mutate("1880000043", "rename")
    state = store.sync_state(SOURCE)
    report = sync.refresh(establishment="1880000042")
    assert report.operation == "refresh" and report.counts["updated"] == 1
    assert store.sync_state(SOURCE) == state
    assert live_rows(store) != ror.snapshot()  # the other one waits for the next cycle


def test_refresh_of_a_unit_replaces_its_subtree_and_tombstones_a_unit_the_ror_lost(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    key, unit = "1600000017", "32/1017005"
    offer = ror.offers[key]
    renamed = next(u for u in offer.units if u.id == unit).model_copy(update={"name": "NOUVEAU NOM"})
    ror.put(offer.model_copy(update={"units": tuple(renamed if u.id == unit else u for u in offer.units)}))
    assert sync.refresh(unit=unit).counts["updated"] == 1
    assert store.get(EntityKind.UNIT, unit).name == "NOUVEAU NOM"  # type: ignore[union-attr]
    ror.delete_unit(key, unit)
    assert sync.refresh(unit=unit, dry_run=True).counts["deleted"] > 0
    assert sync.refresh(unit=unit).counts["deleted"] > 0
    assert store.get(EntityKind.UNIT, unit) is None


def test_refresh_raises_what_the_ror_said(sync: Sync, ror: FakeRor) -> None:
    ror.failing["1880000042"] = RemoteError(500, "boom")
    with pytest.raises(RemoteError, match="boom"):
        sync.refresh(establishment="1880000042")
    with pytest.raises(Exception, match="exactly one"):
        sync.refresh()


# ---- feed, status, lock -------------------------------------------------------------------------


def test_callbacks_and_streams_see_every_committed_change_with_its_log_sequence(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    seen: list[Change] = []
    subscription = sync.on_change(seen.append)
    stream = sync.stream()
    seq = store.stats().last_change_seq
    ror.mutate("1880000042", "new_unit")
    ror.mutate("1600000017", "deletion")
    report = sync.sync()
    logged = store.changes(since=seq)
    assert seen == logged and len(seen) == report.total_changes
    assert all(change.run_id == report.run_id for change in seen)
    stream.close()
    assert list(stream) == logged
    subscription.cancel()
    ror.mutate("1880000043", "rename")
    sync.sync()
    assert len(seen) == len(logged)


def test_a_failing_callback_does_not_stop_the_cycle(sync: Sync, ror: FakeRor, store: MemoryStore) -> None:
    def explode(change: Change) -> None:
        raise ValueError("listener bug")

    sync.on_change(explode)
    ror.mutate("1880000042", "rename")
    assert sync.sync().status is RunStatus.SUCCESS
    assert live_rows(store) == ror.snapshot()


def test_status_tells_where_the_source_stands(sync: Sync, ror: FakeRor) -> None:
    ror.failing["1880000042"] = transport_error()
    ror.mutate("1880000042", "rename")
    ror.mutate("1880000043", "rename")
    sync.sync()
    status = sync.status()
    assert status.initialized and status.watermark == ror.now
    assert [item.establishment_id for item in status.pending] == ["1880000042"]
    assert status.last_run is not None and status.last_run.status == "partial"
    assert status.entities == len(ror.snapshot()) and status.lag_seconds is not None


def test_one_sync_per_store_at_a_time(ror: FakeRor, tmp_path: Path) -> None:
    path = tmp_path / "ror.db"
    with SqliteStore(path) as first_store, SqliteStore(path) as second_store:
        first = make_sync(ror, first_store, tmp_path)
        second = make_sync(ror, second_store, tmp_path)
        with first.exclusive():
            assert (tmp_path / f"ror.db.sync-{SOURCE}.lock").exists()
            first.pull()  # re-entrant for its holder
            with pytest.raises(SyncLockedError):
                second.sync()
            assert second.refresh(establishment="1880000042").status is RunStatus.SUCCESS  # no lock
        assert second.sync().status is RunStatus.SUCCESS


def test_reads_from_another_thread_see_whole_establishments_during_a_cycle(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    key = "1971000001"
    offer = ror.offers[key]
    ror.put(
        offer.model_copy(
            update={"units": tuple(u.model_copy(update={"name": u.name + " *"}) for u in offer.units)}
        )
    )
    seen: set[int] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            names = [
                row.name for row in store.iter_entities(kind=EntityKind.UNIT) if row.establishment == key
            ]
            seen.add(sum(name.endswith(" *") for name in names))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(20):
            sync.refresh(establishment=key)
            ror.put(
                ror.offers[key].model_copy(
                    update={
                        "units": tuple(
                            u.model_copy(
                                update={
                                    "name": u.name.removesuffix(" *")
                                    if u.name.endswith(" *")
                                    else u.name + " *"
                                }
                            )
                            for u in ror.offers[key].units
                        )
                    }
                )
            )
    finally:
        done.set()
        reader.join()
    assert seen <= {0, len(offer.units)}


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="time zone"):
        SyncOptions(server_timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="negative"):
        SyncOptions(overlap=dt.timedelta(minutes=-1))
    assert SyncOptions(server_timezone="local").zone() is None


def test_a_lecture_error_code_can_be_declared_to_mean_unknown(
    sync: Sync, ror: FakeRor, store: MemoryStore, tmp_path: Path
) -> None:
    ror.remove("1880000042")
    ror.failing["1880000042"] = RemoteError(17, "structure inconnue")  # instead of the default 404
    report = sync.sync()
    assert report.removed == 0 and report.pending == 1
    custom = make_sync(ror, store, tmp_path, unknown_codes=(17, 404))
    assert custom.sync().removed == 1


def test_a_legal_entity_change_propagates_through_any_of_its_establishments(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    key = "1880000042"  # one of three sites of the same legal entity
    offer = ror.offers[key]
    legal = offer.legal_entities[0].model_copy(update={"name": "NOUVELLE RAISON SOCIALE"})
    ror.put(offer.model_copy(update={"legal_entities": (legal,)}))
    report = sync.sync()
    assert report.counts["updated"] == 1
    assert store.get(EntityKind.LEGAL_ENTITY, legal.id).name == "NOUVELLE RAISON SOCIALE"  # type: ignore[union-attr]


def test_refresh_of_an_establishment_the_ror_no_longer_knows_tombstones_it(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    ror.remove("1880000042")
    report = sync.refresh(establishment="1880000042")
    assert report.removed == 1 and store.get(EntityKind.ESTABLISHMENT, "1880000042") is None


@pytest.mark.parametrize("target", ["establishment", "unit"])
def test_refresh_of_an_identifier_nobody_knows_is_an_error_that_stores_nothing(
    sync: Sync, store: MemoryStore, target: str
) -> None:
    """A typo must not pass for a successful refresh (issue 14, item 13): the same for both kinds."""
    before, seq = live_rows(store), store.stats().last_change_seq
    with pytest.raises(UnknownIdentifierError) as caught:
        sync.refresh(**{target: "1999999999"})
    assert caught.value.exit_code == 11 and "check the identifier" in str(caught.value)
    assert live_rows(store) == before and store.stats().last_change_seq == seq
    assert sync.refresh(establishment="1880000042").status is RunStatus.SUCCESS


def test_a_move_across_two_batches_is_still_a_move(ror: FakeRor, store: MemoryStore, tmp_path: Path) -> None:
    engine = make_sync(ror, store, tmp_path, batch_size=1)
    engine.pull()
    source, unit, target = "1600000017", "32/1017005", "1880000042"
    ror.move(unit, source, target)
    ror.notif_order = lambda ids: sorted(ids, key=lambda key: key != source)  # the source's batch first
    report = engine.sync()
    assert report.extra_reads == 1  # the target, read within the first batch
    assert ChangeKind.DELETED not in changes_of(store, unit)
    assert live_rows(store) == ror.snapshot()


def test_a_malformed_extraction_leaves_the_store_as_it_was(
    sync: Sync, ror: FakeRor, store: MemoryStore
) -> None:
    def garbage(dest: str | Path, *, progress: object = None) -> object:
        Path(dest).write_bytes(b"<CSD xmlns='urn:ihe:iti:csd:2013'><organizationDirectory><oops")
        return type("Result", (), {"path": Path(dest), "bytes": 10})()

    ror.download_extraction = garbage  # type: ignore[method-assign,assignment]
    before, state = live_rows(store), store.sync_state(SOURCE)
    with pytest.raises(DataError):
        sync.pull()
    assert live_rows(store) == before and store.sync_state(SOURCE) == state
    assert store.runs()[0].status == "failed"


def test_a_pull_stopped_while_loading_commits_nothing(sync: Sync, ror: FakeRor, store: MemoryStore) -> None:
    ror.mutate("1880000042", "rename")
    seq = store.stats().last_change_seq
    report = sync.pull(progress=lambda event: sync.request_stop() if event.phase == "load" else None)
    assert report.status is RunStatus.INTERRUPTED
    assert store.stats().last_change_seq == seq


def test_importing_the_engine_does_not_import_the_network_libraries() -> None:
    import subprocess
    import sys

    code = "import sys, rorclient.sync, rorclient.daemon; print(sorted({'httpx', 'zeep'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("target_first", [True, False])
def test_a_unit_moving_across_batches_of_a_source_whose_rereads_prove_nothing_lands_where_it_went(
    ror: FakeRor, store: MemoryStore, tmp_path: Path, target_first: bool
) -> None:
    # FHIR-like: a delta keeps what an answer lacks (keep_missing). The cycle plans every batch before
    # applying any, so the batch holding the unit's former establishment must not put back there the
    # stored copy of a unit another batch moves away — a row written where it does not belong, for good
    # (the next delta does not list it again).
    from rorclient.sources import CsdWebServiceSource, SourceTraits

    class NoProofSource(CsdWebServiceSource):
        traits = SourceTraits(deltas=True, reads=True, rereads_prove_deletions=False)

    engine = Sync(
        store=store,
        source=NoProofSource(SOURCE, ror),
        options=SyncOptions(data_dir=tmp_path / "data", batch_size=1),
        clock=lambda: ror.now,
    )
    engine.pull()
    source, unit, target = "1600000017", "32/1017005", "1880000042"
    hidden = next(u for key, u in ror.movable() if key == target)
    ror.move(unit, source, target)
    truth = ror.snapshot()
    ror.delete_unit(target, hidden)  # the target's answer now lacks it (an access profile): no proof
    ror.notif_order = lambda ids: sorted(
        ids, key=lambda key: (key != target) if target_first else (key == target)
    )
    report = engine.sync()
    assert unit_of(store, unit) == (target, target, False)
    assert ChangeKind.DELETED not in changes_of(store, unit)
    assert unit_of(store, hidden) is not None and unit_of(store, hidden)[2] is False  # type: ignore[index]
    assert ChangeKind.DELETED not in changes_of(store, hidden)
    assert report.counts["deleted"] == 0  # a delta of such a source never deletes
    assert {row[1] for row in live_rows(store)} >= {row[1] for row in truth}


def test_refreshing_one_establishment_of_a_source_whose_rereads_prove_nothing_deletes_nothing_elsewhere(
    ror: FakeRor, store: MemoryStore, tmp_path: Path
) -> None:
    # refresh(A) replaces A's subtree. A unit that left A is followed to its new establishment B, which
    # is read to place it: for a FHIR-like source, B's answer proves nothing about what it lacks (an
    # access profile hides it), so B's rows are updated and created, never deleted.
    from rorclient.sources import CsdWebServiceSource, SourceTraits

    class NoProofSource(CsdWebServiceSource):
        traits = SourceTraits(deltas=True, reads=True, rereads_prove_deletions=False)

    engine = Sync(
        store=store,
        source=NoProofSource(SOURCE, ror),
        options=SyncOptions(data_dir=tmp_path / "data"),
        clock=lambda: ror.now,
    )
    engine.pull()
    source, unit, target = "1600000017", "32/1017005", "1880000042"
    hidden = next(u for key, u in ror.movable() if key == target)
    ror.move(unit, source, target)
    ror.delete_unit(target, hidden)  # B's answer lacks it: no proof it is gone
    engine.refresh(establishment=source)
    assert unit_of(store, unit) == (target, target, False)
    assert unit_of(store, hidden) is not None and unit_of(store, hidden)[2] is False  # type: ignore[index]
    assert ChangeKind.DELETED not in changes_of(store, hidden)
