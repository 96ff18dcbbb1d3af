"""Sources of ROR data, the one thing the sync engine drives (docs/architecture.md).

* :class:`Source` — the protocol (snapshot, changes since a watermark, reads of one identifier, traits);
* :class:`CsdSource` — a regional ROR's CSD web services (extraction, Notif, Lecture);
* :class:`FileSource` — CSD files (open data, a saved extraction), plain, gzip or zip;
* :class:`FhirSource` — the national ROR's FHIR API ($export, _lastUpdated deltas, graph reads);
* :func:`source_from_settings` — the source a ``[[sources]]`` entry describes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rorclient.errors import ConfigError
from rorclient.sources.base import (
    ChangesTooLargeError,
    DownloadProgress,
    EstablishmentReads,
    Snapshot,
    Source,
    SourceTraits,
)
from rorclient.sources.csd import CsdSource
from rorclient.sources.fhir import FhirSource
from rorclient.sources.file import FileSource

if TYPE_CHECKING:
    from rorclient._sync_options import RetryOptions
    from rorclient.config import SourceSettings

__all__ = [
    "ChangesTooLargeError",
    "CsdSource",
    "DownloadProgress",
    "EstablishmentReads",
    "FhirSource",
    "FileSource",
    "Snapshot",
    "Source",
    "SourceTraits",
    "source_from_settings",
]


def source_from_settings(settings: SourceSettings, *, retry: RetryOptions | None = None) -> Source:
    """The source one ``[[sources]]`` entry describes (``kind = "csd"``, ``"file"`` or ``"fhir"``);
    ``retry``: how its web-service calls are repeated (default: :class:`rorclient.ror.RetryPolicy`'s
    defaults)."""
    if settings.kind == "csd":
        return CsdSource(settings.name, settings=settings, retry=retry)
    if settings.kind == "file":
        return FileSource(settings.name, settings.files)
    if settings.kind == "fhir":
        return FhirSource(settings.name, settings=settings)
    raise ConfigError(f"source {settings.name!r}: unknown kind {settings.kind!r}")  # pragma: no cover
