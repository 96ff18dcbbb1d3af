"""MemoryStore.dump() / restore(): an application (or a store built on MemoryStore) keeps the whole
content as plain models and gets back a store that answers and continues exactly as before."""

from __future__ import annotations

import datetime as dt

import pytest

from rorclient.errors import StoreError
from rorclient.models import EntityKind
from rorclient.store.base import PendingEstablishment, RunReport, Store, SyncState, utcnow
from rorclient.store.memory import MemorySnapshot, MemoryStore
from rorclient.testing.store_conformance import EG1, EG2, SOURCE, T0, apply_site, site, unit


def _busy_store() -> MemoryStore:
    store = MemoryStore()
    apply_site(store, site(EG1, unit("11/1", EG1), unit("11/2", EG1, parent_unit_id="11/1")))
    apply_site(store, site(EG2, unit("22/1", EG2)), EG2)
    apply_site(store, site(EG1, unit("11/1", EG1)))  # 11/2 and what it held become tombstones
    with store.transaction() as tx:
        tx.set_sync_state(SyncState(source=SOURCE, watermark=T0, taken_at=utcnow()))
        tx.set_pending(
            PendingEstablishment(
                source=SOURCE,
                establishment_id=EG2,
                error="timeout",
                attempts=2,
                first_failed=utcnow(),
                last_failed=utcnow(),
            )
        )
        for number in range(3):
            started = utcnow() - dt.timedelta(minutes=number)
            tx.record_run(RunReport(run_id=f"run-{number}", operation="sync", source=SOURCE, started=started))
    return store


def _everything(store: Store) -> tuple[object, ...]:
    return (
        list(store.iter_entities(include_deleted=True)),
        store.changes(),
        store.sync_states(),
        store.pending(),
        store.runs(),
        store.stats(),
    )


def test_a_restored_store_answers_exactly_as_the_dumped_one() -> None:
    original = _busy_store()
    saved = original.dump().model_dump_json()
    restored = MemoryStore()
    restored.restore(MemorySnapshot.model_validate_json(saved))
    assert _everything(restored) == _everything(original)
    assert any(row.deleted for row in restored.iter_entities(include_deleted=True))


def test_a_restored_store_carries_on_its_change_log_and_runs() -> None:
    original = _busy_store()
    restored = MemoryStore()
    restored.restore(original.dump())
    last = restored.changes()[-1].seq
    apply_site(restored, site(EG1, unit("11/1", EG1), unit("11/3", EG1)))
    new = restored.changes(since=last)
    assert [change.seq for change in new] == list(range(last + 1, last + 1 + len(new)))
    assert ("unit", "11/3", "created") in {(c.kind.value, c.id, c.change.value) for c in new}
    with restored.transaction() as tx:
        tx.record_run(RunReport(run_id="run-0", operation="sync", source=SOURCE, started=T0, status="failed"))
    assert {report.run_id: report.status for report in restored.runs()}["run-0"] == "failed"
    assert restored.get(EntityKind.UNIT, "11/3") is not None


def test_restoring_replaces_what_the_store_held() -> None:
    store = _busy_store()
    store.restore(MemorySnapshot())
    assert _everything(store) == _everything(MemoryStore())


def test_restore_inside_a_transaction_is_refused() -> None:
    store = _busy_store()
    with store.transaction(), pytest.raises(StoreError, match="inside one of its transactions"):
        store.restore(MemorySnapshot())
    assert store.stats().by_kind


def test_restore_inside_a_bulk_load_is_refused() -> None:
    store = _busy_store()
    with store.bulk_load(source="other") as bulk:
        with pytest.raises(StoreError, match="bulk loads"):
            store.restore(MemorySnapshot())
        bulk.abort()
    assert store.stats().by_kind


def test_a_dump_is_one_commit_even_when_another_commit_lands_during_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every change in a dump names an entity of the same dump (entities are never removed)."""
    store = _busy_store()
    check_open = store._check_open
    armed = [True]

    def check_open_then_commit() -> object:
        state = check_open()
        if armed[0]:  # another writer commits right after dump() starts
            armed[0] = False
            apply_site(store, site(EG1, unit("11/1", EG1), unit("11/999", EG1)))
        return state

    monkeypatch.setattr(store, "_check_open", check_open_then_commit)
    snapshot = store.dump()
    assert not armed[0]
    held = {(row.kind, row.id) for row in snapshot.entities}
    assert all((change.kind, change.id) in held for change in snapshot.changes)
