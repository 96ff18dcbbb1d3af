"""Pull: take a source's snapshot, load it as a new generation of the source, swap it in atomically.

The one load path: ``Sync.pull`` (a web-service extraction, a file source) and ``rorclient load`` /
:func:`rorclient.loader.load_files` (an ad-hoc file source) all come through :func:`load_snapshot`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rorclient import _parallel_load
from rorclient._private_files import private_directory
from rorclient.csd.reader import read_csd, read_values
from rorclient.errors import DataError, RemoteError
from rorclient.models import Entity
from rorclient.sources.base import DownloadProgress, Snapshot, Source
from rorclient.store.base import BulkLoad, ChangeKind, Store, SyncState
from rorclient.store.capabilities import StagesRows, values_row
from rorclient.sync._plan import Interrupted, StopFlag, to_frame

__all__ = ["LoadOutcome", "load_snapshot", "take_snapshot"]

_log = logging.getLogger("rorclient.sync")
_STOP_CHECK_EVERY = 500

#: ``on_progress(file, bytes_read, entities)``: ``bytes_read`` counts over all the snapshot's files.
LoadProgressCallback = Callable[[str, int, int], None]


class _StopDownload(Exception):
    """Raised from the download's progress callback to stop it (the partial file is kept)."""


@dataclass
class LoadOutcome:
    entities: int
    newest: dt.datetime | None
    planned: dict[ChangeKind, int]
    committed: dict[ChangeKind, int] | None
    """``None`` when the load was not swapped in (dry run, breaker)."""
    readers: int = 1
    """Most reader processes used for one file (1: read in the loading process)."""


def take_snapshot(
    source: Source,
    workdir: Path,
    *,
    stop: StopFlag,
    on_progress: DownloadProgress | None = None,
) -> Snapshot:
    """``source.snapshot(workdir)``, stopped (raising :class:`Interrupted`) when ``stop`` is set."""
    private_directory(workdir)  # 0700: a snapshot holds the ROR's confidential contacts

    def progress(done: int, total: int | None, /, *, note: str | None = None) -> None:
        if stop.is_set():
            raise _StopDownload
        if on_progress is not None:
            on_progress(done, total, note=note)

    try:
        return source.snapshot(workdir, progress=progress)
    except _StopDownload:
        raise Interrupted from None


def load_snapshot(
    store: Store,
    snapshot: Snapshot,
    *,
    source: str,
    run_id: str,
    zone: dt.tzinfo | None,
    stop: StopFlag,
    decide: Callable[[dict[ChangeKind, int], dict[str, int] | None], bool],
    state: Callable[[dt.datetime | None], SyncState],
    on_progress: LoadProgressCallback | None = None,
    readers: int | None = None,
) -> LoadOutcome:
    """Stage every entity of ``snapshot`` in a bulk load of ``source``; ``decide(preview, takeovers)``
    says whether to swap it in (``False``: discard it); ``state(newest)`` is the sync state written with
    the swap. ``takeovers``: the live rows of other sources the swap would take over, per source, or
    ``None`` from a third-party bulk load without :meth:`~rorclient.store.BulkLoad.takeovers`.

    ``readers``: processes reading one file of 32 MB or more in parallel (default: 2, or 1 on a single
    core). Stores whose bulk load takes models rather than rows, platforms without ``fork`` and
    processes running other threads read with one process. A file holding a ROR error answer is a
    :class:`~rorclient.errors.DataError` naming it; any error leaves the store as it was.
    """
    tally = _Tally(stop, on_progress)
    wanted = _parallel_load.default_readers() if readers is None else readers
    used = 1
    with store.bulk_load(source=source, run_id=run_id) as bulk:
        try:
            tally.report()
            for file in snapshot.files:
                tally.file = str(file)
                try:
                    used = max(used, _stage_file(bulk, file, wanted, zone, tally))
                except RemoteError as exc:  # an error answer saved to a file is bad input, not a ROR call
                    raise DataError(
                        f"the file holds a ROR error answer, not data: {exc}", source=str(file)
                    ) from exc
                tally.done += _size(file)
                tally.read = 0
                tally.report()  # a last report per file: the caller's chance to stop before the swap
            if snapshot.entities is not None:
                tally.file = source
                for entity in snapshot.entities:
                    _stage_entity(bulk, entity, zone, tally)
            tally.check_stop()
            planned = bulk.preview()
            takeovers = getattr(bulk, "takeovers", None)
            if not decide(planned, takeovers() if callable(takeovers) else None):
                bulk.abort()
                return LoadOutcome(tally.entities, tally.newest, planned, None, used)
            bulk.set_sync_state(state(tally.newest))
        except BaseException:
            with contextlib.suppress(Exception):
                bulk.abort()
            raise
    return LoadOutcome(tally.entities, tally.newest, planned, bulk.result, used)


def _stage_file(bulk: BulkLoad, file: Path, wanted: int, zone: dt.tzinfo | None, tally: _Tally) -> int:
    """Stage one CSD file; returns the reader processes used."""
    processes = _parallel_load.usable_readers(wanted, _size(file), bulk)
    _log.debug("loading %s (%d reader(s))", file, processes)
    if processes > 1:
        assert isinstance(bulk, StagesRows)
        result = _parallel_load.read_in_parallel(
            file, bulk, processes, on_rows=tally.rows, moment=lambda updated: to_frame(updated, zone)
        )
        tally.merge(None if result.newest is None else to_frame(result.newest, zone))
    elif isinstance(bulk, StagesRows):  # rorclient's SQL stores: rows made without building models
        for kind, fields in read_values(file, progress=tally.bytes_read):
            bulk.add_staged_rows((values_row(kind, fields),))
            _count_entity(fields["record"]["updated"], zone, tally)
    else:
        for entity in read_csd(file, progress=tally.bytes_read):
            _stage_entity(bulk, entity, zone, tally)
    return processes


def _stage_entity(bulk: BulkLoad, entity: Entity, zone: dt.tzinfo | None, tally: _Tally) -> None:
    bulk.add(entity)
    _count_entity(entity.record.updated, zone, tally)


def _count_entity(updated: dt.datetime, zone: dt.tzinfo | None, tally: _Tally) -> None:
    tally.entities += 1
    tally.merge(to_frame(updated, zone))
    if tally.entities % _STOP_CHECK_EVERY == 0:
        tally.check_stop()
        tally.report()


class _Tally:
    """What a load has read so far: entities, newest update, bytes (never reported backwards)."""

    def __init__(self, stop: StopFlag, on_progress: LoadProgressCallback | None) -> None:
        self.stop = stop
        self.on_progress = on_progress
        self.file = ""
        self.done = 0  # bytes of the files already read
        self.read = 0  # bytes read of the current file
        self.entities = 0
        self.newest: dt.datetime | None = None
        self._reported = 0

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise Interrupted

    def report(self) -> None:
        if self.on_progress is not None:
            # Never backwards: reading a zip also counts its directory, past the file's size.
            self._reported = max(self._reported, self.done + self.read)
            self.on_progress(self.file, self._reported, self.entities)

    def bytes_read(self, read: int) -> None:
        self.read = read

    def merge(self, updated: dt.datetime | None) -> None:
        if updated is not None and (self.newest is None or updated > self.newest):
            self.newest = updated

    def rows(self, count: int, read: int) -> None:
        """``count`` entities staged by reader processes, the first of which has read ``read`` bytes."""
        self.entities += count
        self.read = read
        self.check_stop()
        self.report()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
