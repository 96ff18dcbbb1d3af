"""What both SQL stores' bulk loads share besides row batching: the load's life cycle (active, aborted,
ended), its pending sync state, its result, and the error for an entity staged twice with different
content. Staging, the duplicate merge and the swap are dialect SQL and stay in ``sqlite.bulk`` and
``postgres.bulk``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rorclient.errors import DataError, StoreError
from rorclient.store._sql.rows import RowBatches
from rorclient.store.base import ChangeKind, SyncState

__all__ = ["SqlBulkLoad"]


class SqlBulkLoad(RowBatches):
    """Base of :class:`~rorclient.store._sql.sqlite.bulk.SqliteBulkLoad` and
    :class:`~rorclient.store._sql.postgres.bulk.PostgresBulkLoad`; subclasses provide :meth:`discard`,
    ``_flush`` and the swap."""

    def __init__(self, source: str, run_id: str | None) -> None:
        self._source = source
        self._run_id = run_id
        self._batch: list[tuple[Any, ...]] = []
        self._count = 0
        self._sync_state: SyncState | None = None
        self._result = dict.fromkeys(ChangeKind, 0)
        self.aborted = False
        self._finished = False
        self._discarded = False

    def discard(self) -> None:
        raise NotImplementedError

    def set_sync_state(self, state: SyncState) -> None:
        self._check_active()
        self._sync_state = state

    def abort(self) -> None:
        """Discard the staged snapshot now; the ``with`` block then ends without touching the store."""
        self.aborted = True
        self.discard()

    @property
    def result(self) -> dict[ChangeKind, int]:
        return dict(self._result)

    def _check_active(self) -> None:
        if self.aborted:
            raise StoreError(f"the bulk load of {self._source!r} was aborted")
        if self._finished:
            raise StoreError(f"the bulk load of {self._source!r} has ended")

    def _conflict(self, kind: str, id_: str) -> DataError:
        return DataError(
            f"{kind} {id_!r} appears twice with different content in the bulk load of source {self._source!r}"
        )

    @staticmethod
    def _counts(rows: Iterable[tuple[str, int]], gone: int) -> dict[ChangeKind, int]:
        """A preview's counts from ``(change, count)`` rows and the number of live rows that would go."""
        counts = dict.fromkeys(ChangeKind, 0)
        for change, count in rows:
            counts[ChangeKind(change)] = count
        counts[ChangeKind.DELETED] = gone
        return counts

    def _finish(self, counted: Iterable[tuple[str, int]]) -> None:
        """Record the swap's ``(change, count)`` rows as the result and end the load."""
        for change, count in counted:
            self._result[ChangeKind(change)] = count
        self._finished = True
