"""``CsdSource``: a regional ROR's CSD v2.4 web services — extraction download, Notif, Lecture."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rorclient.errors import ConfigError, RorError
from rorclient.models import Offer
from rorclient.sources._client import SyncClient, build_client
from rorclient.sources.base import DownloadProgress, Snapshot, SourceTraits

if TYPE_CHECKING:
    from rorclient.config import SourceSettings
    from rorclient.tls import CertificateInfo

__all__ = ["CsdSource"]

#: The file name of a downloaded extraction inside the source's work directory.
EXTRACTION_NAME = "extraction"


class CsdSource:
    """The :class:`~rorclient.sources.Source` of a ROR's web services.

    ``client``: anything with the calls of :class:`rorclient.sync.SyncClient` (a
    :class:`rorclient.ror.RorClient`, a test double); or ``settings``, from which a ``RorClient`` is
    built on first use (importing ``httpx`` and ``zeep`` only then). :meth:`close` closes a client built
    here, not one passed in.
    """

    traits = SourceTraits(deltas=True, reads=True, rereads_prove_deletions=True)

    def __init__(
        self,
        name: str,
        client: SyncClient | None = None,
        *,
        settings: SourceSettings | None = None,
    ) -> None:
        if client is None and settings is None:
            raise ConfigError(f"source {name!r}: a CSD source needs a client or its settings")
        self._name = name
        self._client = client
        self._settings = settings
        self._owns_client = client is None
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"CsdSource({self._name!r})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def client(self) -> SyncClient:
        """The web-service client (built from the settings on first use)."""
        with self._guard:
            if self._client is None:
                assert self._settings is not None  # guarded by __init__
                self._client = build_client(self._settings)
            return self._client

    @property
    def certificate(self) -> CertificateInfo | None:
        if self._client is not None:
            return self._client.certificate
        settings = self._settings
        if settings is None or settings.client_cert is None:
            return None
        from rorclient.tls import inspect_certificate

        return inspect_certificate(
            settings.client_cert, password_env=settings.password_env, password_file=settings.password_file
        )

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
