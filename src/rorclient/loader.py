"""Load CSD files (open-data files, extraction files) into a store as one snapshot of a source.

:func:`load_files` is a pull of an ad-hoc :class:`~rorclient.sources.FileSource`: the same load path as
``rorclient pull`` (parallel readers, atomic swap) and the same safety breaker.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from rorclient._sync_options import SyncOptions
from rorclient.errors import ConfigError
from rorclient.sources.file import FileSource
from rorclient.store.base import Store

__all__ = ["LoadProgress", "LoadReport", "load_files"]

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
    """Changes committed (planned, for a dry run)."""
    started: dt.datetime
    finished: dt.datetime
    watermark: dt.datetime | None
    #: Most reader processes used for one file (1: read in the calling process).
    readers: int = 1
    #: ``success``, or ``dry_run`` (nothing committed).
    status: str = "success"
    #: Entities of the source the load deletes (would delete, for a dry run).
    deletions: int = 0
    #: Live rows of other sources the load took over (would take over, for a dry run), per source.
    takeovers: dict[str, int] = Field(default_factory=dict)

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
    force: bool = False,
    dry_run: bool = False,
    options: SyncOptions | None = None,
) -> LoadReport:
    """Read every file and swap them into ``store`` as the new snapshot of ``source``.

    The files together are the whole of ``source``: entities of that source that none of them contains
    become tombstones. Nothing is visible to readers until every file has been read; any error (a bad
    file, a store failure) leaves the store exactly as it was, and the failed run is recorded.

    Like a pull, the load goes through the safety breaker: when it would delete or close more than the
    allowed share of the source's live entities (:class:`~rorclient.sync.SyncOptions`: 10 %, at least
    50), it raises :class:`~rorclient.sync.SafetyBreakerError` and commits nothing, unless ``force``.
    So does a load that would take over live rows another source holds (a wrong ``source``?): a row
    belongs to one source and writing it moves it; ``force`` moves them on purpose.
    ``dry_run``: read and compare, commit nothing (``LoadReport.counts`` are the planned changes).

    ``options``: the breaker's share and floor, the time zone... (``readers`` wins over
    ``options.readers``).

    ``readers`` is the number of processes that read a large file in parallel (default: 2, or 1 on a
    single core; each costs about 40 MB). Files under 32 MB, stores whose bulk load takes models
    rather than rows (the memory store, third-party stores), platforms without ``fork`` and processes
    running other threads read with one process; ``LoadReport.readers`` says what was used.
    """
    from rorclient.sync.engine import Sync
    from rorclient.sync.events import ProgressEvent

    if readers is not None and readers < 1:
        raise ConfigError(f"readers must be at least 1, not {readers}")
    files = FileSource(source, paths)
    files.check()

    def on_event(event: ProgressEvent) -> None:
        if progress is not None and event.phase == "load":
            progress(
                LoadProgress(
                    file=event.file or "",
                    bytes_read=event.done,
                    bytes_total=event.total or 0,
                    entities=event.entities or 0,
                )
            )

    base = options or SyncOptions()
    if readers is not None:
        base = base.model_copy(update={"readers": readers})
    with Sync(source=files, store=store, options=base) as sync:
        report = sync._snapshot_run("load", force=force, dry_run=dry_run, progress=on_event)
    return LoadReport(
        run_id=report.run_id,
        source=source,
        files=tuple(str(file) for file in files.files),
        entities=report.entities,
        bytes=report.bytes,
        counts=dict(report.counts),
        started=report.started,
        finished=report.finished,
        watermark=report.watermark,
        readers=report.readers or 1,
        status=report.status.value,
        deletions=report.breaker.deletions if report.breaker is not None else 0,
        takeovers=dict(report.takeovers),
    )
