"""Writer locks; among them the *sync lock* of each (store, source): at most one process pulls or syncs a
source into a store at a time (:func:`sync_lock_name`), while other sources of the same store may.

:func:`writer_lock` picks, by store:

* a store with writer locks of its own (:class:`~rorclient.store.capabilities.LocksWriters`; the
  PostgreSQL store: a session advisory lock, shared by every host that opens the same database and
  schema) — used as is;
* a SQLite store (:class:`~rorclient.store.capabilities.LocalDatabase`): an exclusive ``flock`` on
  ``<database file>.<name>.lock`` (``<file>.lock`` for the name ``sync``; ``<file>.sync-idf.lock`` for
  the sync lock of source ``idf``), shared by every process of this host; the kernel releases it when
  the holder dies, even on ``kill -9``;
* a memory store: a lock of this process (the store lives in one process);
* any other store: an ``flock`` on a file named after the store URL under the user runtime directory —
  it only excludes processes of this host.

The lock is advisory: it orders the processes that ask for it (rorclient's pull, sync and daemon), it does
not stop other writers. Readers never take it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO

import platformdirs

from rorclient._private_files import open_private, private_directory
from rorclient.errors import ConfigError, StoreError
from rorclient.store.base import Store
from rorclient.store.capabilities import LocalDatabase, LocksWriters

__all__ = ["lock_file_path", "sync_lock_name", "writer_lock"]

_POLL = 0.05
_process_locks: dict[tuple[int, str], threading.Lock] = {}
_process_locks_guard = threading.Lock()


def writer_lock(
    store: Store, name: str = "sync", *, wait: bool | float = True
) -> AbstractContextManager[bool]:
    """Hold the store's lock ``name`` for the ``with`` block; yields whether it was acquired.

    ``wait=True`` waits as long as it takes, ``False`` (or ``0``) not at all, a number that many seconds.
    When the lock could not be had, the block runs with ``False`` (and holds nothing).
    """
    timeout = _timeout(wait)
    if isinstance(store, LocksWriters):
        return store.writer_lock(name, wait=wait)
    path = lock_file_path(store, name)
    if path is None:
        return _process_lock(store, name, timeout)
    return _file_lock(path, timeout)


def sync_lock_name(source: str) -> str:
    """The name of the sync lock of ``source``: one per (store, source), so that two regions sync into
    one store in parallel while two runs of one source never overlap."""
    return f"sync:{source}"


def lock_file_path(store: Store, name: str = "sync") -> Path | None:
    """The file :func:`writer_lock` locks for ``store`` (``None`` for an in-memory store)."""
    suffix = ".lock" if name == "sync" else f".{_file_part(name)}.lock"
    if store.url.startswith("sqlite:") and isinstance(store, LocalDatabase):
        database = store.path
        return database.with_name(database.name + suffix)
    if store.url.startswith("memory:"):
        return None
    digest = hashlib.sha256(store.url.encode("utf-8")).hexdigest()[:24]
    return Path(platformdirs.user_runtime_dir("rorclient")) / "locks" / f"{digest}{suffix}"


def _file_part(name: str) -> str:
    """``name`` as a part of a file name: kept when made of letters, digits, ``-`` and ``_`` (``:``
    becomes ``-``), else a hash of it (a source name may hold ``/`` or ``..``)."""
    text = name.replace(":", "-")
    if (
        text
        and len(text) <= 100
        and all(char.isascii() and (char.isalnum() or char in "-_") for char in text)
    ):
        return text
    return "lock-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:24]


def _timeout(wait: bool | float) -> float | None:
    if wait is True:
        return None
    if wait is False:
        return 0.0
    if isinstance(wait, int | float) and wait >= 0:
        return float(wait)
    raise ConfigError(f"wait must be True, False or a number of seconds >= 0, got {wait!r}")


@contextlib.contextmanager
def _process_lock(store: Store, name: str, timeout: float | None) -> Iterator[bool]:
    with _process_locks_guard:
        lock = _process_locks.setdefault((id(store), name), threading.Lock())
    acquired = lock.acquire(timeout=-1 if timeout is None else timeout)
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float | None) -> Iterator[bool]:
    try:
        private_directory(path.parent)
        # Never through a symbolic link another user planted: the pid written below would land in
        # whatever file it points to.
        handle = os.fdopen(open_private(path, os.O_RDWR | os.O_CREAT), "r+b")
    except OSError as error:
        raise StoreError(f"cannot open the lock file {path}: {error}") from error
    try:
        acquired = _acquire(handle, timeout)
        if acquired:
            _write_owner(handle)
        try:
            yield acquired
        finally:
            if acquired:
                _release(handle)
    finally:
        handle.close()


def _acquire(handle: IO[bytes], timeout: float | None) -> bool:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if _try_lock(handle):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(_POLL if deadline is None else max(0.0, min(_POLL, deadline - time.monotonic())))


def _write_owner(handle: IO[bytes]) -> None:
    """Leave the holder's pid in the file, for humans wondering who holds it."""
    with contextlib.suppress(OSError):
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _release(handle: IO[bytes]) -> None:
        with contextlib.suppress(OSError):
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _release(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
