"""Pull: download the extraction, load it as a new generation of the source, swap it in atomically."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rorclient import _parallel_load
from rorclient._private_files import private_directory
from rorclient.csd.reader import read_csd
from rorclient.store._rows import StagesRows
from rorclient.store.base import ChangeKind, Store, SyncState, utcnow
from rorclient.sync._client import SyncClient
from rorclient.sync._plan import Interrupted, StopFlag, to_frame

__all__ = ["LoadOutcome", "download", "load_extraction"]

_log = logging.getLogger("rorclient.sync")
_STOP_CHECK_EVERY = 500


class _StopDownload(Exception):
    """Raised from the download's progress callback to stop it (the partial file is kept)."""


@dataclass
class LoadOutcome:
    entities: int
    newest: dt.datetime | None
    planned: dict[ChangeKind, int]
    committed: dict[ChangeKind, int] | None
    """``None`` when the load was not swapped in (dry run, breaker)."""


def download(
    client: SyncClient,
    dest: Path,
    *,
    stop: StopFlag,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> tuple[Path, int]:
    """Download the extraction to ``dest`` (resuming a partial download); returns its path and size."""
    private_directory(dest.parent)  # 0700: the extraction holds the ROR's confidential contacts

    def progress(done: int, total: int | None) -> None:
        if stop.is_set():
            raise _StopDownload
        if on_progress is not None:
            on_progress(done, total)

    try:
        result = client.download_extraction(dest, progress=progress)
    except _StopDownload:
        raise Interrupted from None
    return Path(result.path), result.bytes


def load_extraction(
    store: Store,
    path: Path,
    *,
    source: str,
    run_id: str,
    zone: dt.tzinfo | None,
    stop: StopFlag,
    decide: Callable[[dict[ChangeKind, int]], bool],
    state: Callable[[dt.datetime | None], SyncState],
    on_progress: Callable[[int, int], None] | None = None,
    readers: int | None = None,
) -> LoadOutcome:
    """Stage every entity of ``path`` in a bulk load of ``source``; ``decide(preview)`` says whether to
    swap it in (``False``: discard it); ``state(newest)`` is the sync state written with the swap.
    ``readers``: reader processes for a large file (see :func:`rorclient.loader.load_files`)."""
    entities = 0
    newest: dt.datetime | None = None
    read_bytes = 0

    def count_bytes(done: int) -> None:
        nonlocal read_bytes
        read_bytes = done

    if on_progress is not None:
        on_progress(0, 0)

    def staged(count: int, read: int) -> None:  # a batch from reader processes
        nonlocal entities
        entities += count
        if stop.is_set():
            raise Interrupted
        if on_progress is not None:
            on_progress(read, entities)

    wanted = _parallel_load.default_readers() if readers is None else readers
    with store.bulk_load(source=source, run_id=run_id) as bulk:
        try:
            processes = _parallel_load.usable_readers(wanted, _size(path), bulk)
            if processes > 1:
                assert isinstance(bulk, StagesRows)
                result = _parallel_load.read_in_parallel(
                    path, bulk, processes, on_rows=staged, moment=lambda updated: to_frame(updated, zone)
                )
                newest = None if result.newest is None else to_frame(result.newest, zone)
            else:
                for entity in read_csd(path, progress=count_bytes):
                    bulk.add(entity)
                    entities += 1
                    updated = to_frame(entity.record.updated, zone)
                    if newest is None or updated > newest:
                        newest = updated
                    if entities % _STOP_CHECK_EVERY == 0:
                        if stop.is_set():
                            raise Interrupted
                        if on_progress is not None:
                            on_progress(read_bytes, entities)
            if stop.is_set():
                raise Interrupted
            planned = bulk.preview()
            if not decide(planned):
                bulk.abort()
                return LoadOutcome(entities, newest, planned, None)
            bulk.set_sync_state(state(newest))
        except BaseException:
            with contextlib.suppress(Exception):
                bulk.abort()
            raise
    return LoadOutcome(entities, newest, planned, bulk.result)


def full_pull_state(source: str, watermark: dt.datetime | None, taken_at: dt.datetime) -> SyncState:
    return SyncState(source=source, watermark=watermark, taken_at=taken_at, last_full_pull=utcnow())


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
