"""The bookkeeping writes both SQL stores make: sync state, pending establishments, run reports.

Written once; the dialects differ only in their parameter placeholder (``?``, ``%s``) and in the cast
PostgreSQL needs to store a report as ``jsonb``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rorclient.store._rows import sortable, to_text
from rorclient.store.base import PendingEstablishment, RunReport, SyncState

__all__ = ["POSTGRES", "SQLITE", "BookkeepingWrites", "SqlStatements", "sync_state_row"]


@dataclass(frozen=True, slots=True)
class SqlStatements:
    """The bookkeeping statements in one SQL dialect."""

    upsert_sync_state: str
    set_pending: str
    clear_pending: str
    record_run: str


def _statements(placeholder: str, json_cast: str) -> SqlStatements:
    def params(count: int) -> str:
        return ", ".join([placeholder] * count)

    return SqlStatements(
        upsert_sync_state=(
            f"INSERT INTO sync_state (source, watermark, taken_at, last_full_pull) VALUES ({params(4)}) "
            "ON CONFLICT (source) DO UPDATE SET watermark = excluded.watermark, "
            "taken_at = excluded.taken_at, last_full_pull = excluded.last_full_pull"
        ),
        set_pending=(
            "INSERT INTO pending (source, establishment_id, error, attempts, first_failed, last_failed) "
            f"VALUES ({params(6)}) ON CONFLICT (source, establishment_id) DO UPDATE SET "
            "error = excluded.error, attempts = pending.attempts + 1, last_failed = excluded.last_failed"
        ),
        clear_pending=(
            f"DELETE FROM pending WHERE source = {placeholder} AND establishment_id = {placeholder}"
        ),
        record_run=(
            f"INSERT INTO runs (run_id, started_key, report) VALUES ({params(3)}{json_cast}) "
            "ON CONFLICT (run_id) DO UPDATE SET started_key = excluded.started_key, report = excluded.report"
        ),
    )


SQLITE = _statements("?", "")
POSTGRES = _statements("%s", "::jsonb")


def sync_state_row(state: SyncState) -> tuple[str, str | None, str | None, str | None]:
    """The parameters of :attr:`SqlStatements.upsert_sync_state`."""
    return state.source, to_text(state.watermark), to_text(state.taken_at), to_text(state.last_full_pull)


class BookkeepingWrites:
    """The sync-state, pending and run writes of a SQL store's transaction; the transaction class gives
    its dialect's :class:`SqlStatements` and how it sends one statement (:meth:`_write`)."""

    statements: ClassVar[SqlStatements]

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def set_sync_state(self, state: SyncState) -> None:
        self._write(self.statements.upsert_sync_state, sync_state_row(state))

    def set_pending(self, item: PendingEstablishment) -> None:
        self._write(
            self.statements.set_pending,
            (
                item.source,
                item.establishment_id,
                item.error,
                item.attempts,
                to_text(item.first_failed),
                to_text(item.last_failed),
            ),
        )

    def clear_pending(self, source: str, establishment_id: str) -> None:
        self._write(self.statements.clear_pending, (source, establishment_id))

    def record_run(self, report: RunReport) -> None:
        self._write(
            self.statements.record_run, (report.run_id, sortable(report.started), report.model_dump_json())
        )
