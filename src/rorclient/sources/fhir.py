"""``FhirSource``: the national ROR's FHIR API — ``$export`` pulls, ``_lastUpdated`` deltas, graph reads.

The protocol work is in :mod:`rorclient.fhir` (client, mapping, :class:`~rorclient.fhir._reads.FhirReads`);
this class is the :class:`~rorclient.sources.Source` the engine drives. See docs/fhir.md.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING

from rorclient.errors import ConfigError, RemoteError, RorError
from rorclient.fhir._reads import FhirApi, FhirReads
from rorclient.fhir._values import PARIS
from rorclient.models import Offer
from rorclient.sources.base import CertificateProbe, DownloadProgress, Snapshot, SourceTraits

if TYPE_CHECKING:
    from rorclient.tls import CertificateInfo

__all__ = ["UNKNOWN_UNIT_CODE", "FhirSource", "FhirUnknownIdentifierError"]

_log = logging.getLogger("rorclient.fhir")


#: The code of a unit the FHIR API does not return, as the CSD ROR answers an unknown one.
UNKNOWN_UNIT_CODE = 404


class FhirUnknownIdentifierError(RemoteError):
    """The FHIR API returns nothing for this establishment or unit.

    For an establishment it carries no code, so the engine never takes it for the ROR's "unknown"
    answer (``SyncOptions.unknown_codes``): a delta cycle keeps it pending, a refresh reports it, nothing
    is deleted (a resource can be hidden by the access profile; a typo must not remove a site). For a
    unit it carries :data:`UNKNOWN_UNIT_CODE`: ``refresh --unit`` and the refresh of its former
    establishment replace that subtree by nothing, as with CSD."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(code, message)


class FhirSource:
    """The :class:`~rorclient.sources.Source` of the national ROR FHIR API.

    ``api``: anything with :class:`~rorclient.fhir.FhirClient`'s ``search`` and ``export`` (a client, a
    test double), used as is and not closed here; or ``connect``, called on first use to build one,
    which :meth:`close` closes. ``regions`` limit pulls to a regional ``$export`` and deltas to
    establishments of those regions. ``certificate`` describes the client certificate (mTLS profiles)
    for ``status``. :func:`rorclient.config.source_from_settings` builds one from a ``[[sources]]`` entry.
    """

    #: Deltas never delete: an answer that lacks something proves nothing (access profiles filter).
    traits = SourceTraits(deltas=True, reads=True, rereads_prove_deletions=False)

    def __init__(
        self,
        name: str,
        api: FhirApi | None = None,
        *,
        connect: Callable[[], FhirApi] | None = None,
        regions: Iterable[str] | None = None,
        certificate: CertificateProbe | None = None,
    ) -> None:
        if api is None and connect is None:
            raise ConfigError(f"source {name!r}: a FHIR source needs a client or a way to connect")
        self._name = name
        self._api = api
        self._connect = connect
        self._owns_api = api is None
        self._probe = certificate
        self._regions = tuple(regions) if regions else None
        self._guard = threading.Lock()
        self._prefetched: dict[str, Offer] = {}

    def __repr__(self) -> str:
        return f"FhirSource({self._name!r})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def api(self) -> FhirApi:
        with self._guard:
            if self._api is None:
                assert self._connect is not None  # guarded by __init__
                self._api = self._connect()
            return self._api

    @property
    def reads(self) -> FhirReads:
        return FhirReads(self.api, regions=self._regions)

    @property
    def certificate(self) -> CertificateInfo | None:
        return self._probe() if self._probe is not None else None

    # -- pull -----------------------------------------------------------------------------------------

    def snapshot(self, workdir: Path, *, progress: DownloadProgress | None = None) -> Snapshot:
        """Run the ``$export`` and read all its files before the job is deleted; the entities are then
        streamed from a spill file. The watermark is the export's ``transactionTime`` (else the kick-off
        time), in the ROR's time frame."""

        def on_progress(text: str | None) -> None:  # each poll of the export job
            if text:
                _log.info("FHIR export of source %s: %s", self._name, text)
            if progress is not None:
                progress(0, None, note=f"export: {text}" if text else "export: in progress")

        def on_resource(count: int) -> None:  # the files, once the job is complete
            if progress is not None:
                progress(0, None, note=f"{count:,} resources read")

        with self.reads.export(on_progress=on_progress, on_resource=on_resource) as pulled:
            stamp = pulled.transaction_time or pulled.requested_at
            _log.info("FHIR export of source %s: %d resources", self._name, pulled.resources)
        return Snapshot(entities=pulled.entities(), watermark=_ror_time(stamp))

    def snapshot_changed(self, since: dt.datetime | None) -> bool:
        return True

    # -- sync -----------------------------------------------------------------------------------------

    def changed_establishments(
        self, since: dt.datetime, *, activity: tuple[str, ...] = (), patients: tuple[str, ...] = ()
    ) -> list[str]:
        """The establishments owning a resource changed at or after ``since`` (the ROR's time frame),
        and those of changed legal entities; a delta too large for any window raises
        :class:`~rorclient.fhir._reads.DeltaTooLargeError` (pull instead)."""
        reads = self.reads
        delta = reads.changes(since.replace(tzinfo=PARIS) if since.tzinfo is None else since)
        for problem in delta.unplaced:
            _log.warning(
                "FHIR delta of source %s: a changed resource cannot be placed: %s", self._name, problem
            )
        found = dict.fromkeys(delta.establishments)
        for legal in delta.legal_entities:
            found.update(dict.fromkeys(reads.establishments_of(legal.id)))
        if not self._regions:
            return list(found)
        in_scope = []
        for establishment_id in found:
            try:
                _, offer = reads.establishment(establishment_id)
            except RorError:
                in_scope.append(establishment_id)  # read again by the engine, which records the failure
                continue
            if reads.in_scope(offer):
                self._prefetched[establishment_id] = offer
                in_scope.append(establishment_id)
        return in_scope

    # -- reads ----------------------------------------------------------------------------------------

    def read_establishments(
        self, establishment_ids: Iterable[str], *, concurrency: int = 4
    ) -> Iterator[tuple[str, Offer | RorError]]:
        """Each establishment's graph, ``concurrency`` reads at a time (the client is thread-safe), in
        the order they complete."""
        ids = list(dict.fromkeys(establishment_ids))
        if concurrency <= 1 or len(ids) <= 1:
            for establishment_id in ids:
                yield establishment_id, self._read_or_error(establishment_id)
            return
        with ThreadPoolExecutor(max_workers=min(concurrency, len(ids))) as pool:
            futures = {
                pool.submit(self._read_or_error, establishment_id): establishment_id
                for establishment_id in ids
            }
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
            finally:
                for future in futures:
                    future.cancel()

    def _read_or_error(self, establishment_id: str) -> Offer | RorError:
        try:
            return self.read_establishment(establishment_id)
        except RorError as error:
            return error

    def read_establishment(self, establishment_id: str) -> Offer:
        with self._guard:
            prefetched = self._prefetched.pop(establishment_id, None)
        if prefetched is not None:
            return prefetched
        try:
            found, offer = self.reads.establishment(establishment_id)
        except RorError as error:
            raise _no_verdict(error) from error
        if found is None:
            raise FhirUnknownIdentifierError(
                f"the FHIR API returns no establishment {establishment_id} (source {self._name})"
            )
        return offer

    def read_unit(self, unit_id: str) -> Offer:
        try:
            _, offer = self.reads.unit(unit_id)
        except RorError as error:
            raise _no_verdict(error) from error
        if not offer.units:
            raise FhirUnknownIdentifierError(
                f"the FHIR API returns no unit {unit_id} (source {self._name})", UNKNOWN_UNIT_CODE
            )
        return offer

    def close(self) -> None:
        with self._guard:
            api, self._api = self._api, (None if self._owns_api else self._api)
        close = getattr(api, "close", None)
        if api is not None and self._owns_api and close is not None:
            close()


def _no_verdict(error: RorError) -> RorError:
    """``error`` without a code the engine could take for "unknown identifier": an HTTP 404 from a search
    (a proxy route gone, a wrong base path) says nothing about an establishment or a unit; only
    :class:`FhirUnknownIdentifierError` does. The HTTP status stays in ``error.status``."""
    if not isinstance(error, RemoteError) or error.code is None:
        return error
    quiet = copy.copy(error)
    quiet.code = None
    return quiet


def _ror_time(moment: dt.datetime) -> dt.datetime:
    """An instant in the ROR's time frame: naive French legal time."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(PARIS).replace(tzinfo=None)
