"""Load CSD files (open-data files, extraction files) into a store as one snapshot of a source."""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from rorclient import _parallel_load
from rorclient._parallel_load import later
from rorclient.csd.reader import read_csd
from rorclient.errors import ConfigError, DataError, RemoteError, RorError
from rorclient.store._rows import StagesRows
from rorclient.store.base import RunReport, Store, SyncState, utcnow

__all__ = ["LoadProgress", "LoadReport", "load_files"]

logger = logging.getLogger("rorclient.load")

#: Source name used when loading files without naming a source.
DEFAULT_FILE_SOURCE = "files"


class LoadProgress(BaseModel):
    """Where a load stands; passed to the progress callback as the files are read."""

    model_config = ConfigDict(frozen=True)

    file: str
    bytes_read: int
    bytes_total: int
    entities: int


class LoadReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    source: str
    files: tuple[str, ...]
    entities: int
    bytes: int
    counts: dict[str, int]
    started: dt.datetime
    finished: dt.datetime
    watermark: dt.datetime | None
    #: Most reader processes used for one file (1: read in the calling process).
    readers: int = 1

    @property
    def seconds(self) -> float:
        return (self.finished - self.started).total_seconds()


def load_files(
    store: Store,
    paths: Sequence[str | os.PathLike[str]],
    *,
    source: str = DEFAULT_FILE_SOURCE,
    progress: Callable[[LoadProgress], None] | None = None,
    readers: int | None = None,
) -> LoadReport:
    """Read every file and swap them into ``store`` as the new snapshot of ``source``.

    The files together are the whole of ``source``: entities of that source that none of them contains
    become tombstones. Nothing is visible to readers until every file has been read; any error (a bad
    file, a store failure) leaves the store exactly as it was, and the failed run is recorded.

    ``readers`` is the number of processes that read a large file in parallel (default: 2, or 1 on a
    single core; each costs about 40 MB). Files under 32 MB, stores whose bulk load takes models
    rather than rows (the memory store, third-party stores), platforms without ``fork`` and processes
    running other threads read with one process; ``LoadReport.readers`` says what was used.
    """
    if readers is not None and readers < 1:
        raise ConfigError(f"readers must be at least 1, not {readers}")
    wanted = _parallel_load.default_readers() if readers is None else readers
    files = [Path(path) for path in paths]
    if not files:
        raise ConfigError("no file to load")
    missing = [str(file) for file in files if not file.exists()]
    if missing:
        raise ConfigError(f"file not found: {', '.join(missing)}")
    not_files = [str(file) for file in files if not file.is_file()]
    if not_files:
        raise ConfigError(f"not a file (a directory?): {', '.join(not_files)}")
    sizes = [_size(file) for file in files]
    total = sum(sizes)
    run_id = uuid.uuid4().hex
    started = utcnow()
    tally = _Tally(total=total, progress=progress)
    used = 1
    try:
        with store.bulk_load(source=source, run_id=run_id) as bulk:
            for file, size in zip(files, sizes, strict=True):
                tally.file = str(file)
                processes = _parallel_load.usable_readers(wanted, size, bulk)
                logger.info("loading %s into source %r (%d reader(s))", file, source, processes)
                try:
                    if processes > 1:
                        assert isinstance(bulk, StagesRows)
                        result = _parallel_load.read_in_parallel(file, bulk, processes, on_rows=tally.rows)
                        tally.merge(result.newest)
                        used = max(used, processes)
                    else:
                        for entity in read_csd(file, progress=tally.report):
                            bulk.add(entity)
                            tally.count(entity.record.updated)
                except RemoteError as exc:  # an error answer saved to a file is bad input, not a ROR call
                    raise DataError(
                        f"the file holds a ROR error answer, not data: {exc}", source=str(file)
                    ) from exc
                tally.done += size
                tally.report(0)  # a last report per file: the caller's chance to stop before the swap
            bulk.set_sync_state(
                SyncState(source=source, watermark=tally.newest, taken_at=utcnow(), last_full_pull=utcnow())
            )
        counts = {kind.value: number for kind, number in bulk.result.items()}
    except RorError as exc:
        _record(
            store,
            RunReport(
                run_id=run_id,
                operation="load",
                source=source,
                started=started,
                finished=utcnow(),
                status="failed",
                entities=tally.entities,
                bytes=tally.done,
                error=str(exc),
            ),
        )
        raise
    finished = utcnow()
    _record(
        store,
        RunReport(
            run_id=run_id,
            operation="load",
            source=source,
            started=started,
            finished=finished,
            status="success",
            counts=counts,
            entities=tally.entities,
            bytes=total,
        ),
    )
    return LoadReport(
        run_id=run_id,
        source=source,
        files=tuple(str(f) for f in files),
        entities=tally.entities,
        bytes=total,
        counts=counts,
        started=started,
        finished=finished,
        watermark=tally.newest,
        readers=used,
    )


class _Tally:
    """What a load has read so far, reported to the progress callback."""

    def __init__(self, *, total: int, progress: Callable[[LoadProgress], None] | None) -> None:
        self.total = total
        self.progress = progress
        self.file = ""
        self.done = 0
        self.entities = 0
        self.newest: dt.datetime | None = None
        self._reported = 0

    def report(self, read: int) -> None:
        if self.progress is not None:
            # Never backwards: reading a zip also counts its directory, past the file's size.
            self._reported = max(self._reported, self.done + read)
            self.progress(
                LoadProgress(
                    file=self.file,
                    bytes_read=self._reported,
                    bytes_total=self.total,
                    entities=self.entities,
                )
            )

    def count(self, updated: dt.datetime) -> None:
        self.entities += 1
        self.merge(updated)

    def merge(self, updated: dt.datetime | None) -> None:
        if updated is not None and (self.newest is None or later(updated, self.newest)):
            self.newest = updated

    def rows(self, count: int, read: int) -> None:
        """``count`` entities staged by reader processes, the first of which has read ``read`` bytes."""
        self.entities += count
        self.report(read)


def _record(store: Store, report: RunReport) -> None:
    with store.transaction(run_id=report.run_id) as tx:
        tx.record_run(report)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
