"""What a :class:`~rorclient.sources.CsdWebServiceSource` needs from a ROR client: the subset of
:class:`rorclient.ror.RorClient` it calls.

Declared as a protocol so that the engine does not import the web-service client (and ``httpx``/``zeep``)
until it builds one, and so that tests and other sources can plug in their own.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rorclient.errors import RorError
from rorclient.models import Offer

if TYPE_CHECKING:
    from rorclient.tls import CertificateInfo

__all__ = ["DownloadedFile", "SyncClient"]


class DownloadedFile(Protocol):
    """What a download returns (:class:`rorclient.ror.DownloadResult` fits)."""

    @property
    def path(self) -> Path: ...

    @property
    def bytes(self) -> int: ...


class SyncClient(Protocol):
    """The calls the engine makes; :class:`rorclient.ror.RorClient` implements them."""

    @property
    def certificate(self) -> CertificateInfo | None: ...

    def download_extraction(
        self, dest: str | os.PathLike[str], *, progress: Callable[[int, int | None], None] | None = None
    ) -> DownloadedFile: ...

    def changed_establishments(
        self,
        since: dt.datetime,
        *,
        activity: tuple[str, ...] = (),
        patients: tuple[str, ...] = (),
    ) -> list[str]: ...

    def read_establishments(
        self, establishment_ids: Iterable[str], *, concurrency: int = 4
    ) -> Iterator[tuple[str, Offer | RorError]]: ...

    def read_establishment(self, establishment_id: str) -> Offer: ...

    def read_unit(self, unit_id: str) -> Offer: ...

    def close(self) -> None: ...
