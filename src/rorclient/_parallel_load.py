"""Read one large CSD file with several processes, for the load of a pull (:mod:`rorclient.sync._pull`).

Reading is the slow part of a load (lxml builds each element, Python turns it into models), and it
runs on one core. Here ``n`` reader processes each parse the whole file but build only their share of
the entities (:func:`rorclient.csd.reader.read_values`, the plain values of ``read_share``), turn them
into staging rows and send the rows
through a pipe; the calling process writes them into the store's bulk load. A share still checks every
reference of the document, so a broken file fails in parallel exactly as it fails alone: the first
error a reader reports is raised, the other readers are stopped, and nothing reaches the live store.

Readers are forked (no re-import of the caller's ``__main__``, no pickling of the work); a process
that runs other threads cannot fork safely, so it reads alone (see :func:`usable_readers`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from rorclient.csd.reader import read_values
from rorclient.errors import RorError
from rorclient.store.capabilities import StagesRows, values_row

__all__ = [
    "MIN_PARALLEL_BYTES",
    "FileResult",
    "default_readers",
    "read_in_parallel",
    "usable_readers",
    "wall_clock",
]

logger = logging.getLogger("rorclient.load")

#: Files smaller than this are read by one process: starting readers would cost more than it saves.
MIN_PARALLEL_BYTES = 32 * 1024 * 1024
#: At most this many readers by default. Each reader parses the whole file (more pay off less and
#: less) and costs about 40 MB: two keep a national load under 250 MB; ask for more with ``readers``.
MAX_DEFAULT_READERS = 2
_BATCH_ROWS = 1_000
_JOIN_TIMEOUT = 5.0  # seconds a reader gets to end after terminate() before it is killed

_ROWS, _DONE, _FAILED = "rows", "done", "failed"


@dataclass(frozen=True, slots=True)
class FileResult:
    """What the readers of one file found: entities staged and the newest ``record/@updated``."""

    entities: int
    newest: dt.datetime | None


def wall_clock(moment: dt.datetime) -> dt.datetime:
    """``moment`` without its time zone: naive and aware date-times cannot be compared, and ROR
    date-times are naive, so loads compare wall clocks."""
    return moment.replace(tzinfo=None)


def default_readers() -> int:
    """Reader processes used when none is asked for: two, or one on a single core."""
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_READERS))


def usable_readers(requested: int, size: int, bulk: object) -> int:
    """How many readers to run for a file of ``size`` bytes; 1 means read in this process."""
    if requested <= 1 or size < MIN_PARALLEL_BYTES:
        return 1
    if not isinstance(bulk, StagesRows):
        logger.info("this store's bulk load takes entities, not rows: reading with one process")
        return 1
    if "fork" not in multiprocessing.get_all_start_methods():
        logger.info("this platform cannot fork reader processes: reading with one process")
        return 1
    if threading.active_count() > 1:
        logger.info("other threads are running, forking is unsafe: reading with one process")
        return 1
    return requested


def read_in_parallel(
    path: Path,
    bulk: StagesRows,
    readers: int,
    *,
    on_rows: Callable[[int, int], None],
    moment: Callable[[dt.datetime], dt.datetime] = wall_clock,
) -> FileResult:
    """Stage every entity of ``path`` into ``bulk`` with ``readers`` processes.

    ``on_rows(count, bytes_read)`` is called after each batch is staged, with the batch's row count and
    the bytes the first reader has read so far; what it raises stops the readers and the load.
    ``FileResult.newest`` is the ``record/@updated`` whose ``moment`` is the latest. Raises what a
    reader raised (a :class:`~rorclient.errors.DataError` for a bad file), or
    :class:`~rorclient.errors.RorError` if a reader process dies.
    """
    context = multiprocessing.get_context("fork")
    processes: list[Any] = []
    pending: dict[Connection, int] = {}
    entities = 0
    furthest = 0  # bytes read by the first reader, never reported backwards
    newest: dt.datetime | None = None
    try:
        for share in range(readers):
            receiver, sender = context.Pipe(duplex=False)
            pending[receiver] = share
            process = context.Process(
                target=_read_share,
                args=(sender, list(pending), path, share, readers, moment),
                name=f"rorclient-reader-{share}",
                daemon=True,
            )
            try:
                process.start()
            finally:
                sender.close()
            processes.append(process)
        while pending:
            for ready in wait(list(pending)):
                assert isinstance(ready, Connection)
                share = pending[ready]
                try:
                    message = ready.recv()
                except (EOFError, OSError):  # a reader killed before or in the middle of a message
                    processes[share].join(_JOIN_TIMEOUT)
                    raise RorError(
                        f"reader process {share} of {path} died (exit code {processes[share].exitcode})"
                    ) from None
                if message[0] == _ROWS:
                    rows: list[tuple[Any, ...]] = message[1]
                    bulk.add_staged_rows(rows)
                    entities += len(rows)
                    furthest = max(furthest, message[2])
                    on_rows(len(rows), furthest)
                elif message[0] == _DONE:
                    del pending[ready]
                    ready.close()
                    found = message[1]
                    if found is not None and (newest is None or moment(found) > moment(newest)):
                        newest = found
                else:
                    raise message[1]
    finally:
        for connection in pending:
            connection.close()  # a reader still writing gets EPIPE
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join(_JOIN_TIMEOUT)
            if process.is_alive():
                process.kill()
                process.join()
    return FileResult(entities=entities, newest=newest)


def _read_share(
    connection: Connection,
    inherited: list[Connection],
    path: Path,
    share: int,
    shares: int,
    moment: Callable[[dt.datetime], dt.datetime],
) -> None:
    """A reader process: stage rows of one share and send them in batches, then the newest update."""
    # The loading process decides when to stop: a handler it installed (the daemon's graceful SIGTERM)
    # must not keep a reader alive after terminate(), and Ctrl-C reaches the loading process too.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for receiver in inherited:  # the loading process's ends: held open here, a full pipe never breaks
        receiver.close()
    read = 0

    def count_bytes(done: int) -> None:
        nonlocal read
        read = done

    try:
        batch: list[tuple[Any, ...]] = []
        newest: dt.datetime | None = None
        latest: dt.datetime | None = None
        progress = count_bytes if share == 0 else None
        for kind, fields in read_values(path, share=(share, shares), progress=progress):
            batch.append(values_row(kind, fields))  # the row of the model, without building it
            updated = fields["record"]["updated"]
            when = moment(updated)
            if latest is None or when > latest:
                newest, latest = updated, when
            if len(batch) >= _BATCH_ROWS:
                connection.send((_ROWS, batch, read))
                batch = []
        connection.send((_ROWS, batch, read))
        connection.send((_DONE, newest))
    except BaseException as error:  # whatever stops a reader is the load's error
        with contextlib.suppress(OSError):  # the loading process may already be gone
            connection.send((_FAILED, _portable(error)))
    finally:
        connection.close()


def _portable(error: BaseException) -> BaseException:
    """``error`` if it survives pickling (rorclient's errors do), else a RorError saying what it was."""
    try:
        pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    except Exception:
        return RorError(f"a reader process failed: {type(error).__name__}: {error}")
    return error
