"""``CsdWebServiceSource``: a regional ROR's CSD v2.4 web services — extraction download, Notif, Lecture."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rorclient.errors import ConfigError, RorError
from rorclient.models import Offer
from rorclient.sources._client import SyncClient
from rorclient.sources.base import CertificateProbe, DownloadProgress, Snapshot, SourceTraits

if TYPE_CHECKING:
    from rorclient.tls import CertificateInfo

__all__ = ["CsdWebServiceSource"]

#: The file name of a downloaded extraction inside the source's work directory.
EXTRACTION_NAME = "extraction"


class CsdWebServiceSource:
    """The :class:`~rorclient.sources.Source` of a ROR's web services.

    ``client``: anything with the calls of :class:`rorclient.sync.SyncClient` (a
    :class:`rorclient.ror.RorClient`, a test double), used as is and not closed here; or ``connect``,
    called on first use to build one (so that ``httpx`` and ``zeep`` are imported only then), which
    :meth:`close` closes. ``certificate``: describes the client certificate before the client exists
    (``status``); once it does, the client's own certificate is shown.
    :func:`rorclient.config.source_from_settings` builds one from a ``[[sources]]`` entry.
    """

    traits = SourceTraits(deltas=True, reads=True, rereads_prove_deletions=True)

    def __init__(
        self,
        name: str,
        client: SyncClient | None = None,
        *,
        connect: Callable[[], SyncClient] | None = None,
        certificate: CertificateProbe | None = None,
    ) -> None:
        if client is None and connect is None:
            raise ConfigError(f"source {name!r}: a CSD web-service source needs a client or a way to connect")
        self._name = name
        self._client = client
        self._connect = connect
        self._probe = certificate
        self._owns_client = client is None
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"CsdWebServiceSource({self._name!r})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def client(self) -> SyncClient:
        """The web-service client (built by ``connect`` on first use)."""
        with self._guard:
            if self._client is None:
                assert self._connect is not None  # guarded by __init__
                self._client = self._connect()
            return self._client

    @property
    def certificate(self) -> CertificateInfo | None:
        if self._client is not None:
            return self._client.certificate
        return self._probe() if self._probe is not None else None

    def snapshot(self, workdir: Path, *, progress: DownloadProgress | None = None) -> Snapshot:
        """Download the extraction into ``workdir`` (a partial download is resumed)."""
        workdir.mkdir(parents=True, exist_ok=True)
        result = self.client.download_extraction(workdir / EXTRACTION_NAME, progress=progress)
        return Snapshot(files=(Path(result.path),), bytes=result.bytes, temporary=True)

    def snapshot_changed(self, since: dt.datetime | None) -> bool:
        return True  # unknown without downloading it; deltas are the way to follow this source

    def changed_establishments(
        self, since: dt.datetime, *, activity: tuple[str, ...] = (), patients: tuple[str, ...] = ()
    ) -> list[str]:
        return self.client.changed_establishments(since, activity=activity, patients=patients)

    def read_establishments(
        self, establishment_ids: Iterable[str], *, concurrency: int = 4
    ) -> Iterator[tuple[str, Offer | RorError]]:
        return self.client.read_establishments(establishment_ids, concurrency=concurrency)

    def read_establishment(self, establishment_id: str) -> Offer:
        return self.client.read_establishment(establishment_id)

    def read_unit(self, unit_id: str) -> Offer:
        return self.client.read_unit(unit_id)

    def close(self) -> None:
        with self._guard:
            client, self._client = self._client, (None if self._owns_client else self._client)
        if client is not None and self._owns_client:
            client.close()
