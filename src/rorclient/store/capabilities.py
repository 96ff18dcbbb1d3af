"""What a store may offer beyond the :class:`~rorclient.store.Store` contract; rorclient asks for each
with ``isinstance`` against the protocol below, never by looking into a store's private modules.

The contract itself (reads, transactions, bulk loads, the change log, sync state, pending
establishments, breaker latches, run reports) is not optional: every store has it and
:mod:`rorclient.testing.store_conformance` checks all of it. The capabilities are:

========================  =======================================  ===================================
capability                who has it                               what rorclient does without it
========================  =======================================  ===================================
:class:`LocksWriters`     PostgreSQL (session advisory locks,      an ``flock`` file per lock, shared
                          shared by every host)                    by the processes of this host
:class:`LocalDatabase`    SQLite (one file)                        the lock file goes under the user
                                                                   runtime directory, named after the
                                                                   store URL
:class:`StagesRows`       the bulk loads of SQLite and             a snapshot file is read by one
                          PostgreSQL                               process instead of several
========================  =======================================  ===================================

The rows a :class:`StagesRows` bulk load takes are tuples, one per entity, the same columns for both
SQL stores: :func:`staged_row` makes one from a model, :func:`values_row` from the plain values the CSD
reader yields (:func:`rorclient.csd.reader.read_values`), the same bytes without building the model.
Reader processes make them, the loading process passes them on.

A third-party store needs none of them; the conformance suite exercises each one a store declares.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rorclient.store._sql.rows import staged_row, values_row

__all__ = ["LocalDatabase", "LocksWriters", "StagesRows", "staged_row", "values_row"]


@runtime_checkable
class LocksWriters(Protocol):
    """A store with writer locks of its own, which exclude every process on every host that opens the
    same store (rorclient's pull, sync and daemon take them through ``rorclient._lock.writer_lock``)."""

    def writer_lock(self, name: str = "sync", *, wait: bool | float = True) -> AbstractContextManager[bool]:
        """Hold the lock ``name`` for the ``with`` block; yields whether it was acquired (``wait``: ``True``
        as long as it takes, ``False`` not at all, a number that many seconds)."""
        ...


@runtime_checkable
class LocalDatabase(Protocol):
    """A store kept in one local database file: its writer locks are files next to it, so that every
    process of this host that opens the file shares them."""

    @property
    def path(self) -> Path:
        """The database file."""
        ...


@runtime_checkable
class StagesRows(Protocol):
    """A bulk load (what :meth:`~rorclient.store.Store.bulk_load` yields) that also takes entities as
    rows encoded by rorclient's SQL stores: the reader processes of a parallel load send rows, not
    models, which spares a second serialisation."""

    def add_staged_rows(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Stage rows made by :func:`staged_row` (here, or in reader processes)."""
        ...
