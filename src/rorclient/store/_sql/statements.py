"""SQL both stores write the same way: the entity filters of queries, and the bookkeeping reads and
writes (statistics, change log, sync state, pending establishments, run reports).

Written once; the dialects differ in their parameter placeholder (``?``, ``%s``), how they store a
boolean and a report, their substring function, and the key their entity table is indexed on (SQLite:
``kind``, PostgreSQL: ``kind_rank``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar

from rorclient.models import EntityKind
from rorclient.store._sql.rows import from_text, moment_of, sortable, to_text
from rorclient.store.base import (
    KIND_ORDER,
    BreakerLatch,
    Change,
    ChangeKind,
    EntityQuery,
    PendingEstablishment,
    RunReport,
    StoreStats,
    SyncState,
    name_key,
)

__all__ = ["POSTGRES", "SQLITE", "BookkeepingReads", "BookkeepingWrites", "SqlStatements", "sync_state_row"]

_KIND_OF_RANK = {rank: kind for kind, rank in KIND_ORDER.items()}


@dataclass(frozen=True, slots=True)
class SqlStatements:
    """What differs between the two SQL dialects, and the bookkeeping statements written in each."""

    placeholder: str
    contains: str
    """``{haystack}`` contains ``{needle}``, as a condition."""
    is_kind: Callable[[str, EntityKind], str]
    """The condition "the row (of the table prefix, e.g. ``offered.``) is of this kind", on the column
    the dialect's entity key starts with."""
    boolean: Callable[[bool], Any]
    no_limit: Any
    """The LIMIT parameter that means "all rows"."""
    select_runs: str
    select_latches: str
    upsert_sync_state: str
    set_pending: str
    clear_pending: str
    record_run: str
    latch_breaker: str
    release_breaker: str

    def where(self, query: EntityQuery) -> tuple[str, list[Any]]:
        """The WHERE clause (with its leading space) and parameters of ``query`` on ``entities``."""
        p = self.placeholder
        clauses: list[str] = []
        params: list[Any] = []
        if not query.include_deleted:
            clauses.append("deleted_at IS NULL")
        if query.kind is not None:
            clauses.append(f"kind_rank = {p}")
            params.append(KIND_ORDER[EntityKind(query.kind)])
        for column, value in (
            ("source", query.source),
            ("region", query.region),
            ("establishment", query.establishment),
            ("parent", query.parent),
        ):
            if value is not None:
                clauses.append(f"{column} = {p}")
                params.append(value)
        if query.closed is not None:
            clauses.append(f"closed = {p}")
            params.append(self.boolean(query.closed))
        if query.name_contains is not None:
            clauses.append(self.contains.format(haystack="name_key", needle=p))
            params.append(name_key(query.name_contains))
        if query.activity_code is not None:
            live = "" if query.include_deleted else " AND offered.deleted_at IS NULL"
            activity, unit = EntityKind.ACTIVITY, EntityKind.UNIT
            clauses.append(
                f"(({self.is_kind('', activity)} AND code = {p}) OR ({self.is_kind('', unit)} "
                f"AND id IN (SELECT offered.parent FROM entities AS offered "
                f"WHERE {self.is_kind('offered.', activity)} AND offered.code = {p}{live})))"
            )
            params += [query.activity_code, query.activity_code]
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _statements(
    placeholder: str,
    *,
    json_cast: str,
    contains: str,
    is_kind: Callable[[str, EntityKind], str],
    boolean: Callable[[bool], Any],
    no_limit: Any,
    select_runs: str,
    select_latches: str,
) -> SqlStatements:
    def params(count: int) -> str:
        return ", ".join([placeholder] * count)

    return SqlStatements(
        placeholder=placeholder,
        contains=contains,
        is_kind=is_kind,
        boolean=boolean,
        no_limit=no_limit,
        select_runs=select_runs,
        select_latches=select_latches,
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
        latch_breaker=(
            f"INSERT INTO breaker_latches (source, latch) VALUES ({params(2)}{json_cast}) "
            "ON CONFLICT (source) DO UPDATE SET latch = excluded.latch"
        ),
        release_breaker=f"DELETE FROM breaker_latches WHERE source = {placeholder}",
    )


SQLITE = _statements(
    "?",
    json_cast="",
    contains="instr({haystack}, {needle}) > 0",
    is_kind=lambda prefix, kind: f"{prefix}kind = '{kind.value}'",
    boolean=int,
    no_limit=-1,
    select_runs="SELECT report FROM runs ORDER BY started_key DESC, rowid DESC LIMIT ?",
    select_latches="SELECT latch FROM breaker_latches {where} ORDER BY source",
)
POSTGRES = _statements(
    "%s",
    json_cast="::jsonb",
    contains="strpos({haystack}, {needle}) > 0",
    is_kind=lambda prefix, kind: f"{prefix}kind_rank = {KIND_ORDER[kind]}",
    boolean=bool,
    no_limit=None,
    select_runs="SELECT report::text FROM runs ORDER BY started_key DESC, recorded DESC LIMIT %s",
    select_latches="SELECT latch::text FROM breaker_latches {where} ORDER BY source",
)


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

    def latch_breaker(self, latch: BreakerLatch) -> None:
        self._write(self.statements.latch_breaker, (latch.source, latch.model_dump_json()))

    def release_breaker(self, source: str) -> None:
        self._write(self.statements.release_breaker, (source,))

    def record_run(self, report: RunReport) -> None:
        self._write(
            self.statements.record_run, (report.run_id, sortable(report.started), report.model_dump_json())
        )


class BookkeepingReads:
    """``stats``, ``changes``, ``sync_state(s)``, ``pending`` and ``runs`` of a SQL store; the store
    gives its dialect's :class:`SqlStatements`, :meth:`_read` (one statement) and :meth:`_snapshot`
    (several statements in one read transaction, yielding an object with ``execute``)."""

    statements: ClassVar[SqlStatements]

    def _read(self, query: str, params: Sequence[Any] = ()) -> Sequence[Sequence[Any]]:
        raise NotImplementedError

    def _snapshot(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def stats(self) -> StoreStats:
        by_kind: dict[str, int] = defaultdict(int)
        by_source: dict[str, int] = defaultdict(int)
        deleted = 0
        with self._snapshot() as connection:
            groups = connection.execute(
                "SELECT kind_rank, source, deleted_at IS NOT NULL, count(*) FROM entities "
                "GROUP BY kind_rank, source, deleted_at IS NOT NULL ORDER BY kind_rank, source"
            ).fetchall()
            last = connection.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()
        for kind_rank, source, is_deleted, count in groups:
            if is_deleted:
                deleted += count
            else:
                by_kind[_KIND_OF_RANK[kind_rank].value] += count
                by_source[source] += count
        return StoreStats(
            by_kind=dict(by_kind),
            by_source=dict(sorted(by_source.items())),
            deleted=deleted,
            last_change_seq=int(last[0]) if last is not None else 0,
        )

    def changes(self, since: int = 0, limit: int | None = None) -> list[Change]:
        """Change-log entries with ``seq > since``, oldest first."""
        p = self.statements.placeholder
        rows = self._read(
            "SELECT seq, at, source, kind, id, change, run_id FROM changes "
            f"WHERE seq > {p} ORDER BY seq LIMIT {p}",
            (since, self.statements.no_limit if limit is None else limit),
        )
        return [
            Change(
                seq=seq,
                at=moment_of(at),
                source=source,
                kind=EntityKind(kind),
                id=id_,
                change=ChangeKind(change),
                run_id=run_id,
            )
            for seq, at, source, kind, id_, change, run_id in rows
        ]

    def sync_state(self, source: str) -> SyncState | None:
        states = self._sync_states(f"WHERE source = {self.statements.placeholder}", (source,))
        return states[0] if states else None

    def sync_states(self) -> list[SyncState]:
        return self._sync_states("", ())

    def _sync_states(self, where: str, params: Sequence[Any]) -> list[SyncState]:
        rows = self._read(
            f"SELECT source, watermark, taken_at, last_full_pull FROM sync_state {where} ORDER BY source",
            params,
        )
        return [
            SyncState(
                source=source,
                watermark=from_text(watermark),
                taken_at=dt.datetime.fromisoformat(taken_at),
                last_full_pull=from_text(last_full_pull),
            )
            for source, watermark, taken_at, last_full_pull in rows
        ]

    def pending(self, source: str | None = None) -> list[PendingEstablishment]:
        where, params = (
            ("", ()) if source is None else (f"WHERE source = {self.statements.placeholder}", (source,))
        )
        rows = self._read(
            "SELECT source, establishment_id, error, attempts, first_failed, last_failed "
            f"FROM pending {where} ORDER BY source, establishment_id",
            params,
        )
        return [
            PendingEstablishment(
                source=row_source,
                establishment_id=establishment_id,
                error=error,
                attempts=attempts,
                first_failed=dt.datetime.fromisoformat(first_failed),
                last_failed=dt.datetime.fromisoformat(last_failed),
            )
            for row_source, establishment_id, error, attempts, first_failed, last_failed in rows
        ]

    def runs(self, limit: int = 20) -> list[RunReport]:
        """Most recent runs first (by ``started``, then by order of first recording)."""
        rows = self._read(self.statements.select_runs, (limit,))
        return [RunReport.model_validate_json(report) for (report,) in rows]

    def breaker_latches(self, source: str | None = None) -> list[BreakerLatch]:
        where, params = (
            ("", ()) if source is None else (f"WHERE source = {self.statements.placeholder}", (source,))
        )
        rows = self._read(self.statements.select_latches.format(where=where), params)
        return [BreakerLatch.model_validate_json(latch) for (latch,) in rows]
