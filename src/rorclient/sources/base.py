"""The ``Source`` protocol: what the sync engine (:class:`rorclient.sync.Sync`) drives.

A source is where ROR data comes from: a regional ROR's CSD web services
(:class:`~rorclient.sources.CsdWebServiceSource`), a set of open-data CSD files
(:class:`~rorclient.sources.FileSource`), the national FHIR API. The engine asks it for four things and
never looks further:

* :meth:`Source.snapshot` — a complete pull: CSD files that the engine reads (in parallel reader
  processes for large ones) and/or a plain stream of entities, plus what the watermark is derived from;
* :meth:`Source.changed_establishments` — the establishments to re-read since a watermark (only when
  :attr:`SourceTraits.deltas`); each is re-read with :meth:`Source.read_establishments` and applied as a
  subtree;
* :meth:`Source.read_establishments`, :meth:`Source.read_establishment`, :meth:`Source.read_unit` — the
  current state of one establishment's or one unit's subtree (delta cycles and ``refresh``);
* :attr:`Source.traits` — what the source can do and what its answers prove.

A new source is one class satisfying this protocol (structural typing: no base class to inherit),
built from a ``[[sources]]`` entry by :func:`rorclient.config.source_from_settings` if settings should
build it (sources never read settings themselves). See docs/architecture.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from rorclient.errors import RorError
from rorclient.models import Entity, Offer

if TYPE_CHECKING:
    from rorclient.tls import CertificateInfo

__all__ = [
    "CertificateProbe",
    "ChangesTooLargeError",
    "DownloadProgress",
    "EstablishmentReads",
    "Snapshot",
    "Source",
    "SourceTraits",
]


class ChangesTooLargeError(RorError):
    """:meth:`Source.changed_establishments` cannot list the changes completely (FHIR: more results than
    the server returns, even in the shortest window). Nothing was applied; the engine takes a snapshot
    instead of a delta."""


class CertificateProbe(Protocol):
    """``probe()`` describes a source's client certificate without loading its key (so that an expired
    one is still described, not refused): what :attr:`Source.certificate` answers before the source's
    client exists."""

    def __call__(self) -> CertificateInfo: ...


class DownloadProgress(Protocol):
    """``progress(done, total)`` in bytes (``total`` ``None`` when unknown), or ``progress(0, None,
    note=...)`` for what a source can only say in words (a FHIR export's ``X-Progress``, the resources
    read so far). What it raises stops the snapshot and propagates (the engine stops a pull this way)."""

    def __call__(self, done: int, total: int | None, /, *, note: str | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class SourceTraits:
    """What a source can do, and what its answers prove. The engine asks these instead of the type."""

    deltas: bool
    """:meth:`Source.changed_establishments` works. Without deltas, ``Sync.sync()`` takes a new snapshot
    when :meth:`Source.snapshot_changed` says so, and does nothing otherwise."""
    reads: bool
    """:meth:`Source.read_establishment` and friends work (``refresh``; delta cycles need them too)."""
    rereads_prove_deletions: bool
    """A complete re-read of an establishment proves that what is missing inside it is deleted (CSD
    Lecture: yes). When ``False`` (FHIR: deltas never delete), a delta cycle keeps what an answer lacks
    (``rorclient.sync._plan.keep_missing``); ``refresh`` still replaces the subtree it was asked for."""


@dataclass(frozen=True)
class Snapshot:
    """One complete pull of a source, as :meth:`Source.snapshot` hands it to the engine.

    The engine stages ``files`` (CSD, plain/gzip/zip; read by parallel reader processes when large) and
    then ``entities`` into one bulk load, and swaps it in atomically: what none of them holds becomes a
    tombstone. The watermark written with the swap is ``watermark`` when the source knows it (the FHIR
    ``$export`` transaction time), else the newest ``record/updated`` read — either bounded above by the
    ROR clock when the pull started.
    """

    files: tuple[Path, ...] = ()
    entities: Iterable[Entity] | None = None
    """A stream of entities (read once, in order: parents before children is not required)."""
    bytes: int = 0
    """Size of ``files`` (for progress and the report)."""
    watermark: dt.datetime | None = None
    """The source's own "everything up to here": naive, in the ROR's time frame."""
    temporary: bool = False
    """``files`` were downloaded for this pull: the engine deletes them afterwards unless
    ``SyncOptions.keep_extraction``."""


@runtime_checkable
class EstablishmentReads(Protocol):
    """The reads a delta cycle and a refresh make (:class:`rorclient.ror.RorClient` has them too)."""

    def read_establishments(
        self, establishment_ids: Iterable[str], *, concurrency: int = 4
    ) -> Iterator[tuple[str, Offer | RorError]]:
        """``(id, offer or error)`` for each identifier, in any order; an error for one does not stop
        the others. An unknown establishment is an error whose code is in ``SyncOptions.unknown_codes``
        (CSD: a ``RemoteError`` 404): the engine then tombstones it."""
        ...

    def read_establishment(self, establishment_id: str) -> Offer:
        """The establishment, its units and what they own, with its legal entity. Raises on failure."""
        ...

    def read_unit(self, unit_id: str) -> Offer:
        """The unit, its descendant units and what they own, with its establishment and legal entity."""
        ...


@runtime_checkable
class Source(EstablishmentReads, Protocol):
    """Where the data of one ``[[sources]]`` entry comes from; see the module docstring."""

    @property
    def name(self) -> str:
        """The source's name, stored with every entity (``[[sources]] name``)."""
        ...

    @property
    def traits(self) -> SourceTraits: ...

    @property
    def certificate(self) -> CertificateInfo | None:
        """The client certificate used, for ``status`` and the daemon's health (``None``: none).
        May raise a :class:`~rorclient.errors.RorError` when the certificate cannot be read."""
        ...

    def snapshot(self, workdir: Path, *, progress: DownloadProgress | None = None) -> Snapshot:
        """Fetch a complete snapshot. ``workdir``: where to download (created by the source if needed;
        owned by this source). ``progress`` is called while downloading."""
        ...

    def snapshot_changed(self, since: dt.datetime | None) -> bool:
        """Whether a snapshot taken now may differ from the one pulled at ``since`` (an aware UTC
        date-time; ``None``: never pulled). Used by sources without deltas; ``True`` when unknown."""
        ...

    def changed_establishments(
        self, since: dt.datetime, *, activity: tuple[str, ...] = (), patients: tuple[str, ...] = ()
    ) -> list[str]:
        """Identifiers of the establishments changed after ``since`` (naive, the ROR's time frame),
        including removed ones. Only called when :attr:`SourceTraits.deltas`."""
        ...

    def close(self) -> None:
        """Release connections; the engine calls it when it built the source."""
        ...
