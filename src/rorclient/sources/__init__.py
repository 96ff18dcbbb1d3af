"""Sources of ROR data, the one thing the sync engine drives (docs/architecture.md).

* :class:`Source` — the protocol (snapshot, changes since a watermark, reads of one identifier, traits);
* :class:`CsdWebServiceSource` — a regional ROR's CSD web services (extraction, Notif, Lecture);
* :class:`FileSource` — CSD files (open data, a saved extraction), plain, gzip or zip;
* :class:`FhirSource` — the national ROR's FHIR API ($export, _lastUpdated deltas, graph reads).

Sources take plain arguments; :func:`rorclient.config.source_from_settings` builds the source a
``[[sources]]`` entry describes.
"""

from __future__ import annotations

from rorclient.sources.base import (
    CertificateProbe,
    ChangesTooLargeError,
    DownloadProgress,
    EstablishmentReads,
    Snapshot,
    Source,
    SourceTraits,
)
from rorclient.sources.csd import CsdWebServiceSource
from rorclient.sources.fhir import FhirSource
from rorclient.sources.file import FileSource

__all__ = [
    "CertificateProbe",
    "ChangesTooLargeError",
    "CsdWebServiceSource",
    "DownloadProgress",
    "EstablishmentReads",
    "FhirSource",
    "FileSource",
    "Snapshot",
    "Source",
    "SourceTraits",
]
