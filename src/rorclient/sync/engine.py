"""``Sync``: keep one source of a store equal to its ROR — pull, delta sync, refresh, status.

::

    from rorclient.config import Settings
    from rorclient.sync import Sync

    with Sync(Settings.load(), source="idf") as sync:
        sync.on_change(lambda change: print(change.change, change.kind, change.id))
        if not sync.status().initialized:
            sync.pull()                     # the extraction, swapped in atomically
        report = sync.sync()                # one Notif + Lecture cycle
        sync.refresh(establishment="010000123")

The rules it keeps (docs/sync.md):

* the watermark is written in the same transaction as the end of what it covers (the pull's swap, the
  sync's closing transaction), never before;
* every establishment Notif lists is applied, tombstoned (the ROR no longer knows it) or put in the
  pending list with its error, retried first next cycle;
* each establishment is applied in its own transaction; applying it again changes nothing;
* a run that would delete or close more than a share of the source stops before committing (``force``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import platformdirs

from rorclient._lock import sync_lock_name, writer_lock
from rorclient.config import Settings, SourceSettings
from rorclient.errors import ConfigError, DataError, RorError
from rorclient.models import EntityKind, Offer
from rorclient.sources import ChangesTooLargeError, CsdSource, Snapshot, Source, source_from_settings
from rorclient.sources._client import SyncClient
from rorclient.store.base import BreakerLatch, ChangeKind, ChangeSet, Store, SyncState, utcnow
from rorclient.store.registry import open_store
from rorclient.sync import _apply, _plan, _pull
from rorclient.sync.errors import (
    BreakerLatchedError,
    NotInitializedError,
    SafetyBreakerError,
    SyncLockedError,
    UnknownIdentifierError,
)
from rorclient.sync.events import (
    ChangeCallback,
    ChangeFeed,
    ChangeStream,
    ProgressCallback,
    ProgressEvent,
    Subscription,
)
from rorclient.sync.options import SyncOptions
from rorclient.sync.report import (
    BreakerVerdict,
    CertificateStatus,
    FailedEstablishment,
    Operation,
    RunStatus,
    SyncReport,
    SyncStatus,
    empty_counts,
)

__all__ = ["Sync"]

_log = logging.getLogger("rorclient.sync")


class _Rollback(Exception):
    pass


@dataclass
class _Run:
    """The bookkeeping of one operation."""

    operation: Operation
    source: str
    progress: ProgressCallback | None
    store: Store
    cursor: int | None
    """The change log's last sequence when the run started, if someone listens to the feed."""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: dt.datetime = field(default_factory=utcnow)
    stop: _plan.StopFlag = field(default_factory=_plan.StopFlag)
    _live: int | None = None

    def emit(
        self, phase: Any, done: int, total: int | None, unit: Any = "establishments", **more: Any
    ) -> None:
        if self.progress is None:
            return
        event = ProgressEvent(
            operation=self.operation, phase=phase, done=done, total=total, unit=unit, **more
        )
        try:
            self.progress(event)
        except Exception:
            _log.exception("the progress callback failed")

    def live(self) -> int:
        """Live entities of the source when first asked (before this run committed anything)."""
        if self._live is None:
            self._live = self.store.stats().by_source.get(self.source, 0)
        return self._live

    def report(self, status: RunStatus, **fields: Any) -> SyncReport:
        return SyncReport(
            run_id=self.run_id,
            operation=self.operation,
            source=self.source,
            status=status,
            started=self.started,
            finished=utcnow(),
            **fields,
        )


class Sync:
    """Keeps the store's copy of one ROR source up to date. Thread-safe; close it (or use ``with``).

    ``settings``: :class:`~rorclient.config.Settings` (default: ``Settings.load()``, when needed);
    ``source``: the ``[[sources]]`` name (optional when there is one web-service source), or a
    :class:`~rorclient.sources.Source` object to drive (a :class:`~rorclient.sources.FileSource`, a
    FHIR source...; it is not closed here); ``store``: a :class:`~rorclient.store.Store` or a store URL
    (default: the settings' store; a store opened here is closed by :meth:`close`); ``client``: a ROR
    web-service client, driven as a :class:`~rorclient.sources.CsdSource` (default: the source the
    settings describe, its client built on first use); ``options``:
    :class:`SyncOptions`; ``clock``: the ROR's current time as a naive date-time (default: now in
    ``options.server_timezone``).

    Reads of the store from other threads and processes are safe while a run is in progress: they see
    every establishment either before or after its update. At most one pull or sync of a source runs in a
    store at a time (:meth:`exclusive`; other sources may run in parallel); refreshes need no lock.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        source: str | Source | None = None,
        store: Store | str | None = None,
        client: SyncClient | None = None,
        options: SyncOptions | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        given = source if isinstance(source, Source) else None
        name = source if isinstance(source, str) else None
        if settings is None and ((client is None and given is None) or store is None):
            settings = Settings.load()
        self.options = options or (settings.sync_options() if settings is not None else SyncOptions())
        self._source_settings = _pick_source(settings, name) if client is None and given is None else None
        if given is not None:
            self.source: str = given.name
        elif self._source_settings is not None:
            self.source = self._source_settings.name
        else:
            self.source = name or _only_source_name(settings) or "ror"
        self._origin: Source | None = given
        if given is None and client is not None:
            self._origin = CsdSource(self.source, client)
        self._owns_origin = given is None
        self._owns_store = not isinstance(store, Store)
        if isinstance(store, Store):
            self.store: Store = store
        else:
            url = store if isinstance(store, str) else (settings.store.url if settings else None)
            self.store = open_store(url)
        self._zone = self.options.zone()
        self._clock = clock or self._local_clock
        self.feed = ChangeFeed()
        self._running: tuple[_plan.StopFlag, ...] = ()
        self._running_guard = threading.Lock()
        self._operations = threading.RLock()
        self._lock_depth = 0
        self._closed = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        source: str | None = None,
        store: Store | str | None = None,
        options: SyncOptions | None = None,
    ) -> Sync:
        """``Sync(settings, source=..., store=..., options=...)``, the usual way to build one."""
        return cls(settings, source=source, store=store, options=options)

    # ---- lifecycle ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the source (its ROR client) and the store if this object opened them."""
        if self._closed:
            return
        self._closed = True
        if self._origin is not None and self._owns_origin:
            self._origin.close()
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Sync:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Sync(source={self.source!r}, store={self.store_url!r})"

    @property
    def store_url(self) -> str:
        """The store's URL with any password replaced by ``***`` (fit for logs)."""
        return _redacted(self.store.url)

    @property
    def origin(self) -> Source:
        """The :class:`~rorclient.sources.Source` this object drives (built from the settings on first
        use; a web-service source builds its ROR client on its first call)."""
        with self._operations:
            if self._origin is None:
                if self._source_settings is None:  # pragma: no cover - guarded by __init__
                    raise ConfigError("no source and no source settings to build one")
                self._origin = source_from_settings(self._source_settings, retry=self.options.retry)
            return self._origin

    @property
    def client(self) -> SyncClient:
        """The ROR web-service client of a web-service source (built on first use)."""
        origin = self.origin
        if not isinstance(origin, CsdSource):
            raise ConfigError(f"source {self.source!r} is not a web-service source: it has no ROR client")
        return origin.client

    # ---- change feed -------------------------------------------------------------------------------
    def on_change(self, callback: ChangeCallback) -> Subscription:
        """Call ``callback(change)`` (a :class:`~rorclient.store.Change`) after each commit; returns a
        :class:`~rorclient.sync.Subscription` (``.cancel()``)."""
        return self.feed.subscribe(callback)

    def stream(self, *, max_buffer: int = 100_000) -> ChangeStream:
        """A blocking iterator over the changes committed from now on (see :class:`ChangeStream`)."""
        return self.feed.stream(max_buffer=max_buffer)

    # ---- control -----------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the running operation to stop at the next establishment boundary (safe from a signal
        handler). It returns a report with status ``interrupted``; nothing is left half-applied. Without
        a running operation, nothing happens."""
        for stop in self._running:  # no lock: this may run in a signal handler
            stop.set()

    @contextlib.contextmanager
    def exclusive(self, wait: bool | float | None = None) -> Iterator[None]:
        """Hold the sync lock of this source in the store across several operations (the daemon holds it
        for its lifetime); other sources of the same store are not held back.

        ``wait`` (default ``options.lock_wait``): how long to wait for another holder; raises
        :class:`SyncLockedError` if it still holds it. Re-entrant within this object.
        """
        with self._operations:
            if self._lock_depth:
                self._lock_depth += 1
                try:
                    yield
                finally:
                    self._lock_depth -= 1
                return
            patience = self.options.lock_wait if wait is None else wait
            with writer_lock(self.store, sync_lock_name(self.source), wait=patience) as held:
                if not held:
                    raise SyncLockedError(
                        f"another process is pulling or syncing source {self.source!r} into "
                        f"{_redacted(self.store.url)} (a running `rorclient daemon`?); try again later"
                    )
                self._lock_depth = 1
                try:
                    yield
                finally:
                    self._lock_depth = 0

    # ---- operations --------------------------------------------------------------------------------
    def pull(
        self, *, force: bool = False, dry_run: bool = False, progress: ProgressCallback | None = None
    ) -> SyncReport:
        """Download the extraction and make it the source's whole content, atomically.

        Entities of the source absent from the extraction become tombstones. The watermark is recorded
        in the same transaction as the swap. ``dry_run``: stage and compare, commit nothing.
        Raises :class:`SafetyBreakerError` (nothing committed) when too much would be deleted or closed,
        unless ``force``. For a file source, the files are the extraction.
        """
        return self._snapshot_run("pull", force=force, dry_run=dry_run, progress=progress)

    def _snapshot_run(
        self, operation: Operation, *, force: bool, dry_run: bool, progress: ProgressCallback | None
    ) -> SyncReport:
        with self._operation(operation, progress) as run:
            force = self._check_latch(run, force=force, dry_run=dry_run)
            try:
                return self._pull(run, force=force, dry_run=dry_run)
            except _plan.Interrupted:
                return self._interrupted(run)
            except SafetyBreakerError:
                raise
            except RorError as error:
                self._fail(run, error)
                raise

    def sync(
        self, *, force: bool = False, dry_run: bool = False, progress: ProgressCallback | None = None
    ) -> SyncReport:
        """One delta cycle: Notif since the watermark (minus the overlap), Lecture of every establishment
        listed (pending ones first), plan, apply each in its own transaction, then move the watermark.

        Returns the report (status ``success``, or ``partial`` when some establishments are pending).
        Raises :class:`NotInitializedError` if the source was never pulled, :class:`SafetyBreakerError`
        (nothing committed) when too much would be deleted or closed unless ``force``, and the client's
        error when Notif itself fails.

        A source without deltas (a file source) is pulled again when it changed since its last pull
        (:meth:`~rorclient.sources.Source.snapshot_changed`); otherwise nothing happens.
        """
        with self._operation("sync", progress) as run:
            state = self.store.sync_state(self.source)
            if state is None or state.watermark is None:
                raise NotInitializedError(
                    f"source {self.source!r} was never pulled: run `rorclient pull` (Sync.pull()) first"
                )
            force = self._check_latch(run, force=force, dry_run=dry_run)
            try:
                if not self.origin.traits.deltas:
                    return self._sync_without_deltas(run, state, force=force, dry_run=dry_run)
                try:
                    return self._sync(run, state, force=force, dry_run=dry_run)
                except ChangesTooLargeError as error:
                    # Nothing was applied (a delta is read whole first): take a full snapshot instead.
                    _log.warning("sync of source %r: %s — pulling instead", self.source, error)
                    return self._pull(run, force=force, dry_run=dry_run)
            except _plan.Interrupted:
                return self._interrupted(run)
            except SafetyBreakerError:
                raise
            except RorError as error:
                self._fail(run, error)
                raise

    def refresh(
        self,
        *,
        establishment: str | None = None,
        unit: str | None = None,
        force: bool = False,
        dry_run: bool = False,
    ) -> SyncReport:
        """Re-read one establishment (Lecture EG) or one unit (Lecture OI) and replace exactly that subtree
        now. An establishment or unit the ROR no longer knows is tombstoned. Does not move the watermark
        and needs no lock. Raises the client's error when the read fails."""
        if (establishment is None) == (unit is None):
            raise ConfigError("refresh takes exactly one of establishment= or unit=")
        if not self.origin.traits.reads:
            raise ConfigError(
                f"source {self.source!r} cannot read one establishment or unit (a file source?): "
                "pull it again instead"
            )
        with self._operation("refresh", None, exclusive=False) as run:
            try:
                if establishment is not None:
                    return self._refresh_establishment(run, establishment, force=force, dry_run=dry_run)
                assert unit is not None
                return self._refresh_unit(run, unit, force=force, dry_run=dry_run)
            except _plan.Interrupted:
                return self._interrupted(run)
            except SafetyBreakerError:
                raise
            except RorError as error:
                self._fail(run, error)
                raise

    def status(self) -> SyncStatus:
        """Where the source stands: watermark, last success, lag, pending list, last run, certificate."""
        state = self.store.sync_state(self.source)
        last_run = next((run for run in self.store.runs(limit=50) if run.source == self.source), None)
        last_success = state.taken_at if state is not None else None
        lag = (utcnow() - _aware(last_success)).total_seconds() if last_success is not None else None
        return SyncStatus(
            source=self.source,
            store=self.store_url,
            initialized=state is not None and state.watermark is not None,
            watermark=state.watermark if state else None,
            last_success=last_success,
            last_full_pull=state.last_full_pull if state else None,
            lag_seconds=lag,
            entities=self._live_count(),
            pending=tuple(self.store.pending(self.source)),
            last_run=last_run,
            certificate=self._certificate(),
            breaker=self.breaker_latch(),
        )

    def breaker_latch(self) -> BreakerLatch | None:
        """The source's latched safety breaker, if any (see :meth:`reset_breaker`)."""
        latches = self.store.breaker_latches(self.source)
        return latches[0] if latches else None

    def reset_breaker(self) -> BreakerLatch | None:
        """Release the source's latched safety breaker (``rorclient breaker reset``): the daemon applies the
        source again. Returns the latch released (``None``: it was not latched). Check the ROR's answer
        first: the next run re-reads it, and trips the breaker again if it is still as bad."""
        latch = self.breaker_latch()
        if latch is not None:
            with self.store.transaction() as transaction:
                transaction.release_breaker(self.source)
            _log.warning(
                "safety breaker of source %r released by an operator (tripped %s by run %s)",
                self.source,
                latch.tripped_at.isoformat(timespec="seconds"),
                latch.run_id,
            )
        return latch

    def accept_breaker(self) -> BreakerLatch | None:
        """Accept the changes the latched breaker stopped (``rorclient breaker accept``): the next pull or
        sync — the daemon's included — runs forced and releases the latch when it ends well. Returns the
        latch (``None``: not latched). Unlike :meth:`reset_breaker`, this lets real mass deletions or
        closures through without stopping a daemon to run ``sync --force``."""
        latch = self.breaker_latch()
        if latch is not None and not latch.accepted:
            latch = latch.model_copy(update={"accepted": True})
            with self.store.transaction() as transaction:
                transaction.latch_breaker(latch)
            _log.warning(
                "source %r: an operator accepted the changes of blocked run %s", self.source, latch.run_id
            )
        return latch

    # ---- pull internals ----------------------------------------------------------------------------
    def _pull(self, run: _Run, *, force: bool, dry_run: bool) -> SyncReport:
        clock_start = self._clock()

        def downloading(done: int, total: int | None, /, *, note: str | None = None) -> None:
            run.emit("download", done, total, "bytes", note=note)

        snapshot = _pull.take_snapshot(self.origin, self._workdir(), stop=run.stop, on_progress=downloading)
        try:
            return self._load_pulled(run, snapshot, clock_start, force=force, dry_run=dry_run)
        finally:
            # Kept only on request: a dry run, a blocked or failed load would otherwise leave the whole
            # extraction in the cache, and the next pull downloads it again anyway.
            if snapshot.temporary and not self.options.keep_extraction:
                for file in snapshot.files:
                    file.unlink(missing_ok=True)

    def _load_pulled(
        self, run: _Run, snapshot: Snapshot, clock_start: dt.datetime, *, force: bool, dry_run: bool
    ) -> SyncReport:
        size = snapshot.bytes
        verdicts: list[BreakerVerdict] = []
        states: list[SyncState] = []
        takeovers: dict[str, int] = {}

        def decide(planned: dict[ChangeKind, int], taken: dict[str, int] | None) -> bool:
            verdict = self._breaker(planned, run.live(), force)
            verdicts.append(verdict)
            takeovers.update(taken or {})
            if taken is None:
                _log.warning(
                    "%s of source %r: the store's bulk load cannot tell which rows of other sources it "
                    "would take over (no BulkLoad.takeovers); loading without that check",
                    run.operation,
                    self.source,
                )
            elif taken:
                _log.warning(
                    "%s of source %r: would take over %s%s",
                    run.operation,
                    self.source,
                    _describe_takeovers(taken),
                    " — dry run, nothing committed" if dry_run else (" (forced)" if force else ""),
                )
            if verdict.deletions or verdict.closures:  # said before it happens (or is refused)
                _log.warning(
                    "%s of source %r: %d of %d live entities would be deleted and %d closed "
                    "(the safety breaker's limit: %d)%s",
                    run.operation,
                    self.source,
                    verdict.deletions,
                    verdict.live,
                    verdict.closures,
                    verdict.limit,
                    " — dry run, nothing committed" if dry_run else "",
                )
            run.emit("commit", 0, None)
            return not dry_run and not (verdict.tripped and not force) and not (taken and not force)

        def state(newest: dt.datetime | None) -> SyncState:
            # The extraction holds nothing newer than when it was taken: its newest record bounds that
            # time from below, in the ROR's own clock, whatever ours says. A source that knows its
            # snapshot's time (FHIR $export) says so.
            if snapshot.watermark is not None:
                # Never later than our clock when the pull began: a snapshot stamped in the future (a
                # skewed or hostile server) would make every later delta skip what it never saw.
                watermark = min(snapshot.watermark, clock_start)
            else:
                watermark = min(clock_start, newest) if newest is not None else clock_start
            states.append(
                SyncState(
                    source=self.source, watermark=watermark, taken_at=run.started, last_full_pull=utcnow()
                )
            )
            return states[-1]

        outcome = _pull.load_snapshot(
            self.store,
            snapshot,
            source=self.source,
            run_id=run.run_id,
            zone=self._zone,
            stop=run.stop,
            decide=decide,
            state=state,
            on_progress=lambda file, done, entities: run.emit(
                "load", done, size, "bytes", file=file, entities=entities
            ),
            readers=self.options.readers,
        )
        (verdict,) = verdicts
        if outcome.committed is None:
            if dry_run:
                counts = _counts(outcome.planned)
                return run.report(
                    RunStatus.DRY_RUN,
                    counts=counts,
                    entities=outcome.entities,
                    bytes=size,
                    readers=outcome.readers,
                    breaker=verdict,
                    takeovers=takeovers,
                )
            if verdict.tripped:
                self._blocked(
                    run, outcome.planned, verdict, entities=outcome.entities, bytes=size, takeovers=takeovers
                )
            self._refuse_takeover(
                run, outcome.planned, verdict, takeovers, entities=outcome.entities, bytes=size
            )
        report = run.report(
            RunStatus.SUCCESS,
            counts=_counts(outcome.committed),
            entities=outcome.entities,
            bytes=size,
            readers=outcome.readers,
            breaker=verdict,
            watermark=states[-1].watermark,
            takeovers=takeovers,
        )
        _apply.close_run(
            self.store, report, clear_pending_before=run.started, release_breaker=self._releases(force)
        )
        report = report.model_copy(update={"pending": len(self.store.pending(self.source))})
        self._publisher(run).publish()
        _log.info("%s", report.summary(), extra=_log_fields(report))
        return report

    def _sync_without_deltas(self, run: _Run, state: SyncState, *, force: bool, dry_run: bool) -> SyncReport:
        # Compared with when the last pull (or check) started, not when it ended: a file replaced while
        # it was being loaded is newer than what was loaded.
        if self.origin.snapshot_changed(state.taken_at):
            return self._pull(run, force=force, dry_run=dry_run)
        status = RunStatus.DRY_RUN if dry_run else RunStatus.SUCCESS
        report = run.report(status, watermark_before=state.watermark, watermark=state.watermark)
        if not dry_run:
            checked = SyncState(
                source=self.source,
                watermark=state.watermark,
                taken_at=run.started,
                last_full_pull=state.last_full_pull,
            )
            _apply.close_run(self.store, report, state=checked)
        _log.info("%s (the source has not changed since its last pull)", report.summary())
        return report.model_copy(update={"pending": len(self.store.pending(self.source))})

    # ---- sync internals ----------------------------------------------------------------------------
    def _sync(self, run: _Run, state: SyncState, *, force: bool, dry_run: bool) -> SyncReport:
        options = self.options
        clock_start = self._clock()
        before = _plan.to_frame(state.watermark, self._zone)  # type: ignore[arg-type]
        date_ref = before - options.overlap
        listed = self.origin.changed_establishments(
            date_ref, activity=options.activity, patients=options.patients
        )
        run.emit("notif", len(listed), len(listed))
        pending_ids = [item.establishment_id for item in self.store.pending(self.source)]
        order = list(dict.fromkeys([*pending_ids, *listed]))
        live = run.live()
        applied = _apply.Applied()
        planned_total = dict.fromkeys(ChangeKind, 0)
        failed: dict[str, RorError] = {}
        unresolved: dict[str, str] = {}
        newest: dt.datetime | None = None
        entities = extra = stale = 0
        verdict = self._breaker(planned_total, live, force)
        publisher = self._publisher(run)
        read = done = 0

        def on_read() -> None:
            nonlocal read
            read += 1
            run.emit("read", read, len(order))

        def on_apply() -> None:
            nonlocal done
            done += 1
            run.emit("apply", done, None)

        # Phase 1: read and plan every batch. Nothing is written until the breaker has judged the whole
        # cycle: a breaker checked batch by batch let earlier batches commit, and each retry of the
        # blocked cycle committed a few more of a bad answer's deletions (issue 14, the ratchet).
        batches: list[_plan.Batch] = []
        seen: set[tuple[EntityKind, str]] = set()  # what the cycle read so far (keep_missing)
        read_ids = 0
        # Offers of planned batches wait on disk while later ones are read: memory stays at one batch.
        spill = (
            tempfile.TemporaryDirectory(prefix="rorclient-cycle-")
            if len(order) > options.batch_size
            else None
        )
        try:
            for start in range(0, len(order), options.batch_size):
                if batches and spill is not None:
                    batches[-1].spill(Path(spill.name))
                batch = _plan.Batch(zone=self._zone)
                chunk = order[start : start + options.batch_size]
                self._read_and_plan(
                    run,
                    batch,
                    chunk,
                    on_read,
                    keep_missing=not self.origin.traits.rereads_prove_deletions,
                    seen=seen,
                )
                read_ids += len(chunk)
                for kind, number in batch.planned_counts().items():
                    planned_total[kind] += number
                batches.append(batch)
                verdict = self._breaker(planned_total, live, force)
                if verdict.tripped and not force and not dry_run:
                    break  # no need to read the rest: the cycle is blocked whatever it holds
            if verdict.tripped and not force and not dry_run:
                scope = f"at least (counted over the first {read_ids} of {len(order)} establishments) "
                self._blocked(
                    run,
                    planned_total,
                    verdict,
                    scope=scope if read_ids < len(order) else "",
                    listed=len(listed),
                    date_ref=date_ref,
                )
            # Phase 2: apply, batch after batch, each establishment in its own transaction.
            for batch in batches:
                if not dry_run:
                    batch.restore()
                    _apply.apply_batch(
                        self.store,
                        self.source,
                        run.run_id,
                        batch,
                        applied,
                        stop=run.stop,
                        publisher=publisher,
                        on_apply=on_apply,
                    )
                    batch.offers = {}
                failed.update(batch.failed)
                unresolved.update(batch.unresolved)
                entities += batch.entities
                extra += batch.extra
                stale += batch.stale
                if batch.newest is not None and (newest is None or batch.newest > newest):
                    newest = batch.newest
        finally:
            if spill is not None:
                spill.cleanup()

        # The newest data read bounds the ROR's clock from below, our clock estimates it; never go back.
        watermark = max(before, min(clock_start, newest)) if newest is not None else before
        fields: dict[str, Any] = {
            "listed": len(listed),
            "retried": len(pending_ids),
            "entities": entities,
            "extra_reads": extra,
            "stale": stale,
            "failed": _failures(failed),
            "date_ref": date_ref,
            "watermark_before": before,
            "breaker": verdict,
        }
        if dry_run:
            return run.report(
                RunStatus.DRY_RUN,
                counts=_counts(planned_total),
                watermark=before,
                pending=len(pending_ids),
                **fields,
            )
        status = RunStatus.PARTIAL if failed or unresolved else RunStatus.SUCCESS
        report = run.report(
            status,
            counts=_counts(applied.counts),
            applied=applied.applied,
            unchanged=applied.unchanged,
            removed=applied.removed,
            watermark=watermark,
            **fields,
        )
        new_state = SyncState(
            source=self.source, watermark=watermark, taken_at=run.started, last_full_pull=state.last_full_pull
        )
        entries = _apply.pending_entries(self.source, failed, unresolved, utcnow())
        run.emit("commit", applied.applied + applied.removed, len(order))
        _apply.close_run(
            self.store, report, pending=entries, state=new_state, release_breaker=self._releases(force)
        )
        report = report.model_copy(update={"pending": len(self.store.pending(self.source))})
        _log.info("%s", report.summary(), extra=_log_fields(report))
        return report

    def _read_and_plan(
        self,
        run: _Run,
        batch: _plan.Batch,
        ids: list[str],
        on_read: Callable[[], None] | None = None,
        *,
        keep_missing: bool = False,
        seen: set[tuple[EntityKind, str]] | None = None,
    ) -> None:
        options = self.options
        _plan.fetch_batch(
            self.origin,
            ids,
            batch,
            concurrency=options.concurrency,
            unknown_codes=options.unknown_codes,
            stop=run.stop,
            on_read=on_read,
        )
        _plan.refuse_stale(self.store, self.source, batch)
        if keep_missing:
            _plan.keep_missing(self.store, self.source, batch, seen)
        run.emit("plan", len(batch.offers), len(ids))
        if options.resolve_lost_units:
            _plan.resolve_lost_units(
                self.origin,
                self.store,
                self.source,
                batch,
                concurrency=options.concurrency,
                unknown_codes=options.unknown_codes,
                stop=run.stop,
                complete_targets=not self.origin.traits.rereads_prove_deletions,
            )
        else:
            _plan.plan_batch(self.store, self.source, batch)

    def _refresh_establishment(
        self, run: _Run, establishment_id: str, *, force: bool, dry_run: bool
    ) -> SyncReport:
        batch = _plan.Batch(zone=self._zone)
        self._read_and_plan(run, batch, [establishment_id])
        error = batch.failed.get(establishment_id)
        if error is not None:
            raise error
        known = self.store.get(EntityKind.ESTABLISHMENT, establishment_id, include_deleted=True)
        if establishment_id in batch.removed and known is None:
            raise UnknownIdentifierError(
                f"the ROR does not know establishment {establishment_id} and the store holds nothing for it: "
                "check the identifier (nothing was stored)"
            )
        planned = batch.planned_counts()
        verdict = self._breaker(planned, run.live(), force)
        if dry_run:
            return run.report(
                RunStatus.DRY_RUN, counts=_counts(planned), entities=batch.entities, breaker=verdict
            )
        if verdict.tripped and not force:
            self._blocked(run, planned, verdict)
        applied = _apply.Applied()
        publisher = self._publisher(run)
        _apply.apply_batch(
            self.store, self.source, run.run_id, batch, applied, stop=run.stop, publisher=publisher
        )
        entries = _apply.pending_entries(self.source, batch.failed, batch.unresolved, utcnow())
        report = run.report(
            RunStatus.PARTIAL if entries else RunStatus.SUCCESS,
            counts=_counts(applied.counts),
            entities=batch.entities,
            applied=applied.applied,
            unchanged=applied.unchanged,
            removed=applied.removed,
            extra_reads=batch.extra,
            stale=batch.stale,
            failed=_failures(batch.failed),
            breaker=verdict,
        )
        _apply.close_run(self.store, report, pending=entries)
        return report.model_copy(update={"pending": len(self.store.pending(self.source))})

    def _refresh_unit(self, run: _Run, unit_id: str, *, force: bool, dry_run: bool) -> SyncReport:
        known = self.store.get(EntityKind.UNIT, unit_id, include_deleted=True)
        try:
            offer = self.origin.read_unit(unit_id)
        except RorError as error:
            if not _plan.is_unknown(error, self.options.unknown_codes):
                raise
            if known is None:
                raise UnknownIdentifierError(
                    f"the ROR does not know unit {unit_id} and the store holds nothing for it: "
                    "check the identifier (nothing was stored)"
                ) from error
            offer = Offer()  # the ROR no longer knows it: tombstone its subtree
        else:
            # Checked like a cycle's answer: the unit asked for, only its own establishment's rows, and
            # not older than what the store holds.
            _plan.check_unit_answer(unit_id, offer)
            offer = _plan.resolve_external_parents(self.store, self.source, offer)
            home = next(item.establishment_id for item in offer.units if item.id == unit_id)
            stale = _plan.stale_reason(self.store, self.source, home, offer, self._zone)
            if stale is not None:
                raise DataError(f"unit {unit_id}: {stale}")
        planned = ChangeSet()
        try:
            with self.store.transaction() as transaction:
                planned = transaction.replace_unit(offer, source=self.source, unit_id=unit_id)
                raise _Rollback
        except _Rollback:
            pass
        counts = planned.counts()
        verdict = self._breaker(counts, run.live(), force)
        if dry_run:
            return run.report(
                RunStatus.DRY_RUN, counts=_counts(counts), entities=_size(offer), breaker=verdict
            )
        if verdict.tripped and not force:
            self._blocked(run, counts, verdict)
        with self.store.transaction(run_id=run.run_id) as transaction:
            changes = transaction.replace_unit(offer, source=self.source, unit_id=unit_id)
        self._publisher(run).publish()
        report = run.report(
            RunStatus.SUCCESS, counts=_counts(changes.counts()), entities=_size(offer), breaker=verdict
        )
        _apply.close_run(self.store, report)
        return report.model_copy(update={"pending": len(self.store.pending(self.source))})

    # ---- helpers -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _operation(
        self, operation: Operation, progress: ProgressCallback | None, *, exclusive: bool = True
    ) -> Iterator[_Run]:
        if self._closed:
            raise ConfigError("this Sync is closed")
        guard = self.exclusive() if exclusive else contextlib.nullcontext()
        with guard:
            cursor = self.store.stats().last_change_seq if self.feed.active else None
            run = _Run(operation, self.source, progress, self.store, cursor)
            with self._running_guard:
                self._running = (*self._running, run.stop)
            try:
                yield run
            finally:
                with self._running_guard:
                    self._running = tuple(stop for stop in self._running if stop is not run.stop)

    def _breaker(self, planned: dict[ChangeKind, int], live: int, force: bool) -> BreakerVerdict:
        deletions, closures = planned[ChangeKind.DELETED], planned[ChangeKind.CLOSED]
        limit = max(math.ceil(self.options.breaker_share * live), self.options.breaker_floor)
        # Deleting every live entity of a source is never small, whatever the floor: an empty answer
        # would otherwise wipe a source of up to ``breaker_floor`` entities without a word.
        tripped = deletions + closures > limit or _wipes(deletions, live)
        return BreakerVerdict(
            deletions=deletions,
            closures=closures,
            live=live,
            limit=limit,
            tripped=tripped,
            forced=tripped and force,
        )

    def _blocked(
        self,
        run: _Run,
        planned: dict[ChangeKind, int],
        verdict: BreakerVerdict,
        *,
        scope: str = "",
        **fields: Any,
    ) -> NoReturn:
        verdict = verdict.model_copy(update={"latched": True})
        if verdict.deletions + verdict.closures > verdict.limit:
            why = (
                f"exceed the limit of {verdict.limit} (the larger of {self.options.breaker_share:.0%} "
                f"of {verdict.live} live entities and the floor of {self.options.breaker_floor})"
            )
        else:
            why = f"would delete every live entity of the source ({verdict.live})"
        report = run.report(
            RunStatus.BLOCKED,
            counts=_counts(planned),
            breaker=verdict,
            pending=len(self.store.pending(self.source)),
            error=(
                f"safety breaker: {scope}{verdict.deletions} deletions + {verdict.closures} closures "
                f"{why}; "
                f"nothing was committed and the breaker of source {self.source!r} is latched: the "
                "daemon applies nothing from it until `rorclient sync --force` (or pull --force) or "
                "`rorclient breaker reset` — check the ROR's answer first (keep_extraction keeps a "
                "pulled file)"
            ),
            **fields,
        )
        latch = BreakerLatch(
            source=self.source,
            run_id=run.run_id,
            operation=run.operation,
            tripped_at=report.finished,
            deletions=verdict.deletions,
            closures=verdict.closures,
            limit=verdict.limit,
            live=verdict.live,
            reason=report.error or "safety breaker",
        )
        _apply.record_failure(self.store, report, latch=latch)
        _log.error("%s", report.error, extra=_log_fields(report))
        raise SafetyBreakerError(report.error or "safety breaker", report)

    def _refuse_takeover(
        self,
        run: _Run,
        planned: dict[ChangeKind, int],
        verdict: BreakerVerdict,
        takeovers: dict[str, int],
        **fields: Any,
    ) -> NoReturn:
        """Stop a snapshot that would take over live rows of other sources (an operator's wrong
        ``--source``?). Not latched: the upstream answer is not in question, the operator's intent is."""
        report = run.report(
            RunStatus.BLOCKED,
            counts=_counts(planned),
            breaker=verdict,
            takeovers=takeovers,
            pending=len(self.store.pending(self.source)),
            error=(
                f"the {run.operation} of source {self.source!r} would take over "
                f"{_describe_takeovers(takeovers)}; nothing was committed; check --source, or --force "
                "to move them"
            ),
            **fields,
        )
        _apply.record_failure(self.store, report)
        _log.error("%s", report.error, extra=_log_fields(report))
        raise SafetyBreakerError(report.error or "takeover", report)

    def _check_latch(self, run: _Run, *, force: bool, dry_run: bool) -> bool:
        """Refuse to apply a source whose breaker is latched, unless forced (a dry run commits nothing);
        returns whether the run is forced (an operator accepted the latched change: ``accept_breaker``)."""
        latch = self.breaker_latch()
        if latch is not None and latch.accepted and not dry_run:
            _log.warning(
                "source %r: the operator accepted the changes the breaker stopped (run %s): forcing this run",
                self.source,
                latch.run_id,
            )
            return True
        if latch is None or force or dry_run:
            return force
        message = (
            f"the safety breaker of source {self.source!r} is latched since "
            f"{latch.tripped_at.isoformat(timespec='seconds')} ({latch.operation} run {latch.run_id}: "
            f"{latch.deletions} deletions + {latch.closures} closures over a limit of {latch.limit}); "
            "nothing is applied from this source until `rorclient sync --force` (or pull --force) or "
            "`rorclient breaker reset`"
        )
        verdict = BreakerVerdict(
            deletions=latch.deletions,
            closures=latch.closures,
            live=latch.live,
            limit=latch.limit,
            tripped=True,
            latched=True,
        )
        report = run.report(RunStatus.BLOCKED, breaker=verdict, error=message)
        raise BreakerLatchedError(message, report)

    def _releases(self, force: bool) -> bool:
        """Whether a run that ends well releases the source's latch: only a forced one (an operator's
        decision); without a latch, nothing to release."""
        return force and self.breaker_latch() is not None

    def _interrupted(self, run: _Run) -> SyncReport:
        report = run.report(
            RunStatus.INTERRUPTED,
            pending=len(self.store.pending(self.source)),
            error="stopped on request before the end; the watermark did not move",
        )
        _apply.record_failure(self.store, report)
        _log.warning("%s", report.summary(), extra=_log_fields(report))
        return report

    def _fail(self, run: _Run, error: RorError) -> None:
        report = run.report(RunStatus.FAILED, error=f"{type(error).__name__}: {error}")
        with contextlib.suppress(RorError):
            _apply.record_failure(self.store, report)
        _log.error("%s", report.summary(), extra=_log_fields(report))

    def _publisher(self, run: _Run) -> _apply.ChangePublisher:
        return _apply.ChangePublisher(self.store, self.feed, run.run_id, since=run.cursor)

    def _live_count(self) -> int:
        return self.store.stats().by_source.get(self.source, 0)

    def _local_clock(self) -> dt.datetime:
        return dt.datetime.now(self._zone).replace(tzinfo=None, microsecond=0)

    def _workdir(self) -> Path:
        """Where the source downloads its snapshot (the extraction file lands in ``extraction``)."""
        base = self.options.data_dir or Path(platformdirs.user_cache_dir("rorclient")) / "extractions"
        return base / _safe_name(self.source)

    def _certificate(self) -> CertificateStatus | None:
        try:
            info = self.origin.certificate
        except RorError as error:
            _log.warning("cannot read the client certificate: %s", error)
            return None
        if info is None:
            return None
        from rorclient.tls import EXPIRY_WARNING_DAYS

        # Recomputed at every call from not_after (the loaded info is as old as the client).
        left = _aware(info.not_after) - utcnow()
        days = math.floor(left.total_seconds() / 86400)
        return CertificateStatus(
            subject=info.subject,
            not_after=info.not_after,
            days_until_expiry=days,
            expires_soon=dt.timedelta() <= left <= dt.timedelta(days=EXPIRY_WARNING_DAYS),
            expired=left < dt.timedelta(),
            not_yet_valid=info.not_yet_valid,
        )


# --------------------------------------------------------------------------------------------------


def _pick_source(settings: Settings | None, name: str | None) -> SourceSettings:
    if settings is None:  # pragma: no cover - __init__ loads settings when no client is given
        raise ConfigError("settings are needed to build a ROR client")
    if name is not None:
        source = settings.source(name)
    else:
        candidates = [source for source in settings.sources if source.kind == "csd"] or list(settings.sources)
        if len(candidates) != 1:
            names = ", ".join(source.name for source in candidates) or "none"
            raise ConfigError(f"name the source to sync (web-service sources configured: {names})")
        source = candidates[0]
    return source


def _only_source_name(settings: Settings | None) -> str | None:
    if settings is not None and len(settings.sources) == 1:
        return settings.sources[0].name
    return None


def _wipes(deletions: int, live: int) -> bool:
    """Whether a run deletes every live entity of its source."""
    return live > 0 and deletions >= live


def _describe_takeovers(takeovers: dict[str, int]) -> str:
    """``215 live rows held by source 'idf'`` (and ``, 3 ... by source 'x'``)."""
    return ", ".join(
        f"{number} live row{'s' if number != 1 else ''} held by source {source!r}"
        for source, number in sorted(takeovers.items())
    )


def _counts(counts: dict[ChangeKind, int]) -> dict[str, int]:
    result = empty_counts()
    for kind, number in counts.items():
        result[kind.value] = number
    return result


def _failures(failed: dict[str, RorError]) -> tuple[FailedEstablishment, ...]:
    return tuple(
        FailedEstablishment(
            establishment_id=establishment_id,
            error=f"{type(error).__name__}: {error}",
            retryable=error.retryable,
        )
        for establishment_id, error in failed.items()
    )


def _size(offer: Offer) -> int:
    return sum(1 for _ in offer.entities())


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _safe_name(name: str) -> str:
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in name) or "source"


def _redacted(url: str) -> str:
    from rorclient.store import redact_url

    return redact_url(url)


def _log_fields(report: SyncReport) -> dict[str, Any]:
    """Structured fields for the JSON log formatter (``rorclient.daemon``)."""
    return {
        "run_id": report.run_id,
        "operation": report.operation,
        "source": report.source,
        "status": report.status.value,
        "counts": report.counts,
        "pending": report.pending,
        "seconds": round(report.seconds, 3),
    }
