"""An in-memory store (``memory://``): the reference behaviour, for tests and short-lived scripts.

Everything lives in Python dicts guarded by locks. Writers are serialised; a transaction or a bulk load
works on private copies of the dicts (copy on write) and publishes them in one reference swap when it
succeeds, so readers in other threads always see the last committed state and an exception inside the
``with`` block leaves nothing behind. Nothing survives :meth:`MemoryStore.close` or the process, unless
the application keeps a :meth:`MemoryStore.dump` (a :class:`MemorySnapshot`, plain models that serialise
to JSON) and gives it back to :meth:`MemoryStore.restore` later.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager

from pydantic import BaseModel, ConfigDict

from rorclient.errors import DataError, StoreError
from rorclient.models import Entity, EntityKind, Offer, Unit
from rorclient.store import subtree
from rorclient.store.base import (
    KIND_ORDER,
    SHARED_KINDS,
    BreakerLatch,
    BulkLoad,
    Change,
    ChangeKind,
    ChangeSet,
    EntityQuery,
    Page,
    PendingEstablishment,
    RunReport,
    StoredEntity,
    StoreStats,
    StoreTransaction,
    SyncState,
    content_hash,
    name_key,
    stored_entity,
    utcnow,
)

__all__ = ["MemorySnapshot", "MemoryStore"]

Key = subtree.Key


class MemorySnapshot(BaseModel):
    """Everything a :class:`MemoryStore` holds: what :meth:`MemoryStore.dump` returns and
    :meth:`MemoryStore.restore` takes. Plain models: ``model_dump_json()`` and ``model_validate_json()``
    save and load it."""

    model_config = ConfigDict(frozen=True)

    entities: tuple[StoredEntity, ...] = ()
    """Live entities and tombstones."""
    changes: tuple[Change, ...] = ()
    """The change log, oldest first."""
    sync: tuple[SyncState, ...] = ()
    pending: tuple[PendingEstablishment, ...] = ()
    runs: tuple[RunReport, ...] = ()
    """In the order they were first recorded."""
    latches: tuple[BreakerLatch, ...] = ()
    """Latched safety breakers."""


@dataclasses.dataclass
class _State:
    """One committed generation of the store. Never mutated once published (except ``changes``,
    which only grows, under the store lock)."""

    entities: dict[Key, StoredEntity] = dataclasses.field(default_factory=dict)
    sync: dict[str, SyncState] = dataclasses.field(default_factory=dict)
    pending: dict[tuple[str, str], PendingEstablishment] = dataclasses.field(default_factory=dict)
    runs: dict[str, tuple[int, RunReport]] = dataclasses.field(default_factory=dict)
    changes: list[Change] = dataclasses.field(default_factory=list)
    run_counter: int = 0
    latches: dict[str, BreakerLatch] = dataclasses.field(default_factory=dict)

    def fork(self) -> _State:
        return _State(
            entities=dict(self.entities),
            sync=dict(self.sync),
            pending=dict(self.pending),
            runs=dict(self.runs),
            changes=self.changes,
            run_counter=self.run_counter,
            latches=dict(self.latches),
        )


class MemoryStore:
    """A :class:`~rorclient.store.Store` held in memory. Thread-safe; see the module docstring."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._state = _State()
        self._state_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._writing = threading.local()
        self._closed = False

    # ---- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MemoryStore(url={self.url!r})"

    def _check_open(self) -> _State:
        if self._closed:
            raise StoreError(f"the store {self.url} is closed")
        return self._state

    # ---- reads -----------------------------------------------------------------------------------
    def get(self, kind: EntityKind, id: str, *, include_deleted: bool = False) -> StoredEntity | None:
        row = self._check_open().entities.get((EntityKind(kind), id))
        if row is None or (row.deleted and not include_deleted):
            return None
        return row

    def find(self, query: EntityQuery) -> Page:
        state = self._check_open()
        matches = _Matcher(query, state.entities.values())
        rows = sorted((row for row in state.entities.values() if matches(row)), key=subtree.sort_key)
        items = tuple(rows[query.offset : query.offset + query.limit])
        end = query.offset + len(items)
        return Page(items=items, total=len(rows), next_offset=end if end < len(rows) else None)

    def iter_entities(
        self,
        *,
        kind: EntityKind | None = None,
        source: str | None = None,
        include_deleted: bool = True,
    ) -> Iterator[StoredEntity]:
        """Every entity, ordered by kind (legal entities first) then id."""
        state = self._check_open()
        rows = [
            row
            for row in state.entities.values()
            if (kind is None or row.kind == kind)
            and (source is None or row.source == source)
            and (include_deleted or not row.deleted)
        ]
        rows.sort(key=subtree.sort_key)
        yield from rows

    def stats(self) -> StoreStats:
        state = self._check_open()
        by_kind: dict[str, int] = {}
        by_source: dict[str, int] = {}
        deleted = 0
        for row in state.entities.values():
            if row.deleted:
                deleted += 1
                continue
            by_kind[row.kind.value] = by_kind.get(row.kind.value, 0) + 1
            by_source[row.source] = by_source.get(row.source, 0) + 1
        with self._state_lock:
            last_seq = state.changes[-1].seq if state.changes else 0
        ordered_kinds = {kind.value: by_kind[kind.value] for kind in EntityKind if kind.value in by_kind}
        return StoreStats(
            by_kind=ordered_kinds,
            by_source=dict(sorted(by_source.items())),
            deleted=deleted,
            last_change_seq=last_seq,
        )

    def changes(self, since: int = 0, limit: int | None = None) -> list[Change]:
        """Change-log entries with ``seq > since``, oldest first."""
        state = self._check_open()
        with self._state_lock:
            log = list(state.changes)
        result = [change for change in log if change.seq > since]
        return result if limit is None else result[:limit]

    def sync_state(self, source: str) -> SyncState | None:
        return self._check_open().sync.get(source)

    def sync_states(self) -> list[SyncState]:
        return sorted(self._check_open().sync.values(), key=lambda state: state.source)

    def pending(self, source: str | None = None) -> list[PendingEstablishment]:
        items = self._check_open().pending.values()
        selected = [item for item in items if source is None or item.source == source]
        return sorted(selected, key=lambda item: (item.source, item.establishment_id))

    def runs(self, limit: int = 20) -> list[RunReport]:
        """Most recent runs first (by ``started``, then by order of first recording)."""
        entries = sorted(
            self._check_open().runs.values(),
            key=lambda entry: (_instant(entry[1].started), entry[0]),
            reverse=True,
        )
        return [report for _, report in entries[:limit]]

    def breaker_latches(self, source: str | None = None) -> list[BreakerLatch]:
        latches = self._check_open().latches
        return [latches[name] for name in sorted(latches) if source is None or name == source]

    # ---- persistence ---------------------------------------------------------------------------
    def dump(self) -> MemorySnapshot:
        """Everything the store holds now (the last committed state), as plain models."""
        self._check_open()
        with self._state_lock:  # the state and its change log of one commit (the log is shared, growing)
            state = self._state
            changes = tuple(state.changes)
        runs = sorted(state.runs.values(), key=lambda entry: entry[0])
        return MemorySnapshot(
            entities=tuple(state.entities.values()),
            changes=changes,
            sync=tuple(state.sync.values()),
            pending=tuple(state.pending.values()),
            runs=tuple(report for _, report in runs),
            latches=tuple(state.latches.values()),
        )

    def restore(self, snapshot: MemorySnapshot) -> None:
        """Replace everything the store holds by ``snapshot``: readers see the old content or the new,
        never a mix; a transaction or bulk load in another thread finishes first."""
        restored = _State(
            entities={(row.kind, row.id): row for row in snapshot.entities},
            sync={state.source: state for state in snapshot.sync},
            pending={(item.source, item.establishment_id): item for item in snapshot.pending},
            runs={report.run_id: (order, report) for order, report in enumerate(snapshot.runs, 1)},
            changes=list(snapshot.changes),
            run_counter=len(snapshot.runs),
            latches={latch.source: latch for latch in snapshot.latches},
        )
        self._check_open()
        if getattr(self._writing, "active", False) or getattr(self._writing, "loads", 0):
            raise StoreError("cannot restore a memory store inside one of its transactions or bulk loads")
        with self._write_lock, self._state_lock:
            self._state = restored

    # ---- writes ----------------------------------------------------------------------------------
    @contextmanager
    def transaction(self, *, run_id: str | None = None) -> Iterator[StoreTransaction]:
        """Atomic writes: everything done through the yielded transaction is published together."""
        with self._writer() as work:
            transaction = _MemoryTransaction(self, work, run_id)
            try:
                yield transaction
            finally:
                transaction._open = False

    @contextmanager
    def bulk_load(self, *, source: str, run_id: str | None = None) -> Iterator[BulkLoad]:
        """Stage a full snapshot of ``source``; it replaces that source's rows when the block exits."""
        self._check_open()
        load = _MemoryBulkLoad(self, source, run_id)
        self._writing.loads = getattr(self._writing, "loads", 0) + 1  # restore() refuses to run inside
        try:
            yield load
            if not load._aborted:
                load._swap()
        finally:
            self._writing.loads -= 1
            load._staged.clear()
            load._finished = True

    @contextmanager
    def _writer(self) -> Iterator[_State]:
        """Hold the write lock and yield a private copy of the state; publish it if no exception."""
        self._check_open()
        if getattr(self._writing, "active", False):
            raise StoreError("a transaction or bulk load is already open in this thread; they do not nest")
        with self._write_lock:
            self._writing.active = True
            try:
                work = self._state.fork()
                pending_changes: list[Change] = []
                work.changes = pending_changes
                yield work
                with self._state_lock:
                    published = self._state.changes
                    published.extend(pending_changes)
                    work.changes = published
                    self._state = work
            finally:
                self._writing.active = False

    def _next_seq(self, pending_changes: list[Change]) -> int:
        if pending_changes:
            return pending_changes[-1].seq + 1
        with self._state_lock:
            committed = self._state.changes
            return committed[-1].seq + 1 if committed else 1


class _Matcher:
    """The predicate of one :class:`EntityQuery`."""

    def __init__(self, query: EntityQuery, rows: Iterable[StoredEntity]) -> None:
        self.query = query
        self.needle = name_key(query.name_contains) if query.name_contains is not None else None
        self.units_with_code: set[str] = set()
        if query.activity_code is not None:
            self.units_with_code = {
                row.parent
                for row in rows
                if row.kind is EntityKind.ACTIVITY
                and row.parent is not None
                and _code_of(row) == query.activity_code
                and (query.include_deleted or not row.deleted)
            }

    def __call__(self, row: StoredEntity) -> bool:
        query = self.query
        if row.deleted and not query.include_deleted:
            return False
        if query.kind is not None and row.kind != query.kind:
            return False
        for wanted, actual in (
            (query.source, row.source),
            (query.region, row.region),
            (query.establishment, row.establishment),
            (query.parent, row.parent),
        ):
            if wanted is not None and wanted != actual:
                return False
        if query.closed is not None and row.closed != query.closed:
            return False
        if self.needle is not None and self.needle not in name_key(row.name):
            return False
        if query.activity_code is not None:
            if row.kind is EntityKind.ACTIVITY:
                return _code_of(row) == query.activity_code
            return row.kind is EntityKind.UNIT and row.id in self.units_with_code
        return True


def _instant(moment: dt.datetime) -> dt.datetime:
    """A key that orders naive and aware times together: aware ones in UTC, naive ones as they are."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def _code_of(row: StoredEntity) -> str | None:
    entity = row.entity
    if entity.kind is EntityKind.ACTIVITY or entity.kind is EntityKind.EQUIPMENT:
        return entity.code.code
    return None


# --------------------------------------------------------------------------------------------------
# Transactions
# --------------------------------------------------------------------------------------------------


class _MemoryRows:
    """:class:`subtree.RowAccess` over a private state copy; ``log`` records each change."""

    def __init__(self, work: _State, log: Callable[[StoredEntity, ChangeKind], None]) -> None:
        self.work = work
        self.log = log

    def heads(self, keys: Collection[Key]) -> Mapping[Key, StoredEntity]:
        entities = self.work.entities
        return {key: entities[key] for key in keys if key in entities}

    def live_in_establishment(self, establishment_id: str, source: str) -> Iterable[StoredEntity]:
        return [
            row
            for row in self.work.entities.values()
            if row.establishment == establishment_id and row.source == source and not row.deleted
        ]

    def live_children(self, parent_ids: Collection[str], source: str) -> Iterable[StoredEntity]:
        wanted = set(parent_ids)
        return [
            row
            for row in self.work.entities.values()
            if row.parent in wanted and row.source == source and not row.deleted
        ]

    def write(self, row: StoredEntity, change: ChangeKind) -> None:
        self.work.entities[(row.kind, row.id)] = row
        self.log(row, change)

    def tombstone(self, head: StoredEntity, at: dt.datetime) -> None:
        key = (head.kind, head.id)
        row = self.work.entities[key].model_copy(update={"deleted": True, "deleted_at": at})
        self.work.entities[key] = row
        self.log(row, ChangeKind.DELETED)


class _MemoryTransaction:
    """The :class:`~rorclient.store.StoreTransaction` of :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore, work: _State, run_id: str | None) -> None:
        self._store = store
        self._work = work
        self._run_id = run_id
        self._open = True

    def _check_open(self) -> None:
        if not self._open:
            raise StoreError("this transaction has ended; open a new one with store.transaction()")

    def _rows(self, source: str, now: dt.datetime) -> _MemoryRows:
        """Row access that logs each change as made by ``source`` at ``now``."""
        self._check_open()

        def log(row: StoredEntity, change: ChangeKind) -> None:
            _log(self._store, self._work, row, change, source=source, at=now, run_id=self._run_id)

        return _MemoryRows(self._work, log)

    def replace_establishment(
        self,
        offer: Offer,
        *,
        source: str,
        establishment_id: str,
        keep: Collection[str] = (),
    ) -> ChangeSet:
        now = utcnow()
        return subtree.replace_establishment(
            self._rows(source, now),
            offer,
            source=source,
            establishment_id=establishment_id,
            keep=keep,
            now=now,
        )

    def replace_unit(self, offer: Offer, *, source: str, unit_id: str) -> ChangeSet:
        now = utcnow()
        return subtree.replace_unit(self._rows(source, now), offer, source=source, unit_id=unit_id, now=now)

    def delete_establishment(self, establishment_id: str, *, source: str) -> ChangeSet:
        now = utcnow()
        return subtree.delete_establishment(self._rows(source, now), establishment_id, source=source, now=now)

    def set_sync_state(self, state: SyncState) -> None:
        self._check_open()
        self._work.sync[state.source] = state

    def set_pending(self, item: PendingEstablishment) -> None:
        self._check_open()
        key = (item.source, item.establishment_id)
        previous = self._work.pending.get(key)
        if previous is not None:
            item = item.model_copy(
                update={"attempts": previous.attempts + 1, "first_failed": previous.first_failed}
            )
        self._work.pending[key] = item

    def clear_pending(self, source: str, establishment_id: str) -> None:
        self._check_open()
        self._work.pending.pop((source, establishment_id), None)

    def latch_breaker(self, latch: BreakerLatch) -> None:
        self._check_open()
        self._work.latches[latch.source] = latch

    def release_breaker(self, source: str) -> None:
        self._check_open()
        self._work.latches.pop(source, None)

    def record_run(self, report: RunReport) -> None:
        self._check_open()
        previous = self._work.runs.get(report.run_id)
        if previous is None:
            self._work.run_counter += 1
            order = self._work.run_counter
        else:
            order = previous[0]
        self._work.runs[report.run_id] = (order, report)


def _log(
    store: MemoryStore,
    work: _State,
    row: StoredEntity,
    change: ChangeKind,
    *,
    source: str,
    at: dt.datetime,
    run_id: str | None,
) -> None:
    work.changes.append(
        Change(
            kind=row.kind,
            id=row.id,
            change=change,
            seq=store._next_seq(work.changes),
            at=at,
            source=source,
            run_id=run_id,
        )
    )


# --------------------------------------------------------------------------------------------------
# Bulk loads
# --------------------------------------------------------------------------------------------------


class _MemoryBulkLoad:
    """The :class:`~rorclient.store.BulkLoad` of :class:`MemoryStore`: staging is a dict."""

    def __init__(self, store: MemoryStore, source: str, run_id: str | None) -> None:
        self._store = store
        self._source = source
        self._run_id = run_id
        self._staged: dict[Key, Entity] = {}
        self._count = 0
        self._sync_state: SyncState | None = None
        self._aborted = False
        self._finished = False
        self._result = dict.fromkeys(ChangeKind, 0)

    def _check_active(self) -> None:
        if self._aborted:
            raise StoreError(f"the bulk load of {self._source!r} was aborted")
        if self._finished:
            raise StoreError(f"the bulk load of {self._source!r} has ended")

    def add(self, entity: Entity) -> None:
        self._check_active()
        key = (entity.kind, entity.id)
        self._count += 1
        previous = self._staged.get(key)
        if previous is not None and content_hash(previous) != content_hash(entity):
            raise DataError(
                f"{entity.kind.value} {entity.id!r} appears twice with different content "
                f"in the bulk load of source {self._source!r}"
            )
        self._staged[key] = entity

    def add_many(self, entities: Iterable[Entity]) -> None:
        for entity in entities:
            self.add(entity)

    @property
    def count(self) -> int:
        """Entities added so far, repeated copies included."""
        return self._count

    def preview(self) -> dict[ChangeKind, int]:
        self._check_active()
        counts = dict.fromkeys(ChangeKind, 0)
        for _, change in self._plan(self._store._check_open().entities):
            counts[change] += 1
        return counts

    def takeovers(self) -> dict[str, int]:
        self._check_active()
        live = self._store._check_open().entities
        taken: dict[str, int] = {}
        for key in self._staged:
            if key[0] in SHARED_KINDS:
                continue
            row = live.get(key)
            if row is not None and not row.deleted and row.source != self._source:
                taken[row.source] = taken.get(row.source, 0) + 1
        return dict(sorted(taken.items()))

    def set_sync_state(self, state: SyncState) -> None:
        self._check_active()
        self._sync_state = state

    def abort(self) -> None:
        self._staged.clear()
        self._aborted = True

    @property
    def result(self) -> dict[ChangeKind, int]:
        return dict(self._result)

    def _plan(self, live: Mapping[Key, StoredEntity]) -> list[tuple[StoredEntity, ChangeKind]]:
        """The rows the swap writes, in log order: upserts by kind then id, then tombstones."""
        planned: list[tuple[StoredEntity, ChangeKind]] = []
        for key in sorted(self._staged, key=lambda key: (KIND_ORDER[key[0]], key[1])):
            entity = self._staged[key]
            new = stored_entity(
                entity, source=self._source, establishment=self._establishment_of(entity, live)
            )
            change = subtree.change_for(live.get(key), new)
            if change is not None:
                planned.append((new, change))
        gone = [
            row
            for key, row in live.items()
            if row.source == self._source and not row.deleted and key not in self._staged
        ]
        planned += [(row, ChangeKind.DELETED) for row in sorted(gone, key=subtree.sort_key)]
        return planned

    def _establishment_of(self, entity: Entity, live: Mapping[Key, StoredEntity]) -> str | None:
        unit_id: str | None = None
        if entity.kind is EntityKind.ACTIVITY or entity.kind is EntityKind.EQUIPMENT:
            unit_id = entity.unit_id
        elif entity.kind is EntityKind.PROFESSIONAL:
            if entity.establishment_ids:
                return entity.establishment_ids[0]
            unit_id = entity.unit_ids[0] if entity.unit_ids else None
        if unit_id is None:
            return None
        staged_unit = self._staged.get((EntityKind.UNIT, unit_id))
        if isinstance(staged_unit, Unit):
            return staged_unit.establishment_id
        live_unit = live.get((EntityKind.UNIT, unit_id))
        return live_unit.establishment if live_unit is not None else None

    def _swap(self) -> None:
        store = self._store
        with store._writer() as work:
            now = utcnow()
            for row, change in self._plan(work.entities):
                if change is ChangeKind.DELETED:
                    row = row.model_copy(update={"deleted": True, "deleted_at": now})
                work.entities[(row.kind, row.id)] = row
                _log(store, work, row, change, source=self._source, at=now, run_id=self._run_id)
                self._result[change] += 1
            if self._sync_state is not None:
                work.sync[self._sync_state.source] = self._sync_state
