"""Commit a planned batch: one transaction per establishment, then the run's closing transaction.

Each establishment's subtree is replaced (or tombstoned) and its pending entry cleared in one
transaction: a reader sees it entirely before or entirely after, and a crash or a stop request between
two establishments leaves only whole establishments applied. Re-applying an establishment that is
already up to date changes nothing and logs nothing, so a run that is re-done after a crash neither
loses nor duplicates a change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from rorclient.errors import RorError
from rorclient.store.base import (
    BreakerLatch,
    ChangeKind,
    ChangeSet,
    PendingEstablishment,
    Store,
    SyncState,
)
from rorclient.sync._plan import Batch, Interrupted, StopFlag
from rorclient.sync.events import ChangeFeed
from rorclient.sync.report import SyncReport

__all__ = ["Applied", "ChangePublisher", "apply_batch", "close_run", "pending_entries", "record_failure"]


class ChangePublisher:
    """Hands a run's committed changes to the feed, read back from the store's change log (so that
    listeners get the same ``seq`` and time as :meth:`Store.changes`). Reads nothing when no one
    listens."""

    _PAGE = 10_000

    def __init__(self, store: Store, feed: ChangeFeed, run_id: str, *, since: int | None) -> None:
        self._store = store
        self._feed = feed
        self._run_id = run_id
        self._cursor = since

    def publish(self) -> None:
        """Publish the run's changes committed since the last call (nothing when no one listened as the
        run started: a listener added during a run hears from the next one)."""
        if self._cursor is None or not self._feed.active:
            return
        while True:
            page = self._store.changes(since=self._cursor, limit=self._PAGE)
            if not page:
                return
            self._cursor = page[-1].seq
            self._feed.publish(change for change in page if change.run_id == self._run_id)
            if len(page) < self._PAGE:
                return


class Applied:
    """What the application of one or more batches committed."""

    def __init__(self) -> None:
        self.counts: dict[ChangeKind, int] = dict.fromkeys(ChangeKind, 0)
        self.applied = 0
        self.unchanged = 0
        self.removed = 0

    def add(self, changes: ChangeSet) -> None:
        for kind, number in changes.counts().items():
            self.counts[kind] += number


def apply_batch(
    store: Store,
    source: str,
    run_id: str,
    batch: Batch,
    applied: Applied,
    *,
    stop: StopFlag,
    publisher: ChangePublisher,
    on_apply: Callable[[], None] | None = None,
) -> None:
    """Commit the batch's replacements, then its removals (so that a unit that moved out of a removed
    establishment is already under its new one). Raises :class:`Interrupted` between establishments."""
    keep = batch.keep
    for establishment_id, offer in batch.offers.items():
        if stop.is_set():
            raise Interrupted
        with store.transaction(run_id=run_id) as transaction:
            changes = transaction.replace_establishment(
                offer, source=source, establishment_id=establishment_id, keep=keep
            )
            if establishment_id not in batch.unresolved:
                transaction.clear_pending(source, establishment_id)
        applied.add(changes)
        applied.applied += 1
        applied.unchanged += not changes
        publisher.publish()
        if on_apply is not None:
            on_apply()
    for establishment_id in batch.removed:
        if stop.is_set():
            raise Interrupted
        with store.transaction(run_id=run_id) as transaction:
            changes = transaction.delete_establishment(establishment_id, source=source)
            transaction.clear_pending(source, establishment_id)
        applied.add(changes)
        applied.removed += 1
        publisher.publish()
        if on_apply is not None:
            on_apply()


def pending_entries(
    source: str, failed: dict[str, RorError], unresolved: dict[str, str], at: dt.datetime
) -> list[PendingEstablishment]:
    """Pending-list entries for establishments that failed or stay in question."""
    reasons = {establishment_id: _describe(error) for establishment_id, error in failed.items()}
    for establishment_id, reason in unresolved.items():
        reasons.setdefault(establishment_id, reason)
    return [
        PendingEstablishment(
            source=source, establishment_id=establishment_id, error=reason, first_failed=at, last_failed=at
        )
        for establishment_id, reason in reasons.items()
    ]


def close_run(
    store: Store,
    report: SyncReport,
    *,
    pending: Iterable[PendingEstablishment] = (),
    state: SyncState | None = None,
    clear_pending_before: dt.datetime | None = None,
    release_breaker: bool = False,
) -> None:
    """The run's last transaction: pending entries, the new sync state (the watermark moves only here,
    with everything it covers already committed), the release of a latched breaker (a forced run) and
    the run report."""
    with store.transaction(run_id=report.run_id) as transaction:
        if release_breaker:
            transaction.release_breaker(report.source)
        if clear_pending_before is not None:
            for item in store.pending(report.source):
                if _before(item.last_failed, clear_pending_before):
                    transaction.clear_pending(report.source, item.establishment_id)
        for item in pending:
            transaction.set_pending(item)
        if state is not None:
            transaction.set_sync_state(state)
        transaction.record_run(report.to_run_report())


def record_failure(store: Store, report: SyncReport, *, latch: BreakerLatch | None = None) -> None:
    """Record a run that ends without the closing transaction (failed, interrupted, blocked), and latch
    the source's breaker in the same transaction when it tripped."""
    with store.transaction(run_id=report.run_id) as transaction:
        if latch is not None:
            transaction.latch_breaker(latch)
        transaction.record_run(report.to_run_report())


def _describe(error: RorError) -> str:
    return f"{type(error).__name__}: {error}"


def _before(a: dt.datetime, b: dt.datetime) -> bool:
    if (a.tzinfo is None) != (b.tzinfo is None):
        a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
    return a < b
