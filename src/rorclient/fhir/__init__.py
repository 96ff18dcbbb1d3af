"""The national ROR FHIR R4 API ("modèle d'exposition 3.0"): client, errors, and the mapping to and
from the models.

:class:`FhirClient` talks to the API (tokens, searches, ``$export``); :func:`resources_for` turns
entities into ROR-profile resources; :class:`FhirAssembler` turns resources (an ``$export``'s files, a
search's pages, in any order) into entities with the same business identifiers as CSD. See
docs/fhir.md and the mapping table in docs/data-model.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rorclient.fhir._mapping import FhirAssembler, entities_from_resources, resources_for
from rorclient.fhir._values import FhirMappingError
from rorclient.fhir.errors import FhirAuthError, FhirError, FhirIssue, FhirTransientError, FhirTruncatedError

if TYPE_CHECKING:
    from rorclient.fhir.client import (
        REGION_TAG_SYSTEM,
        FhirClient,
        FhirExport,
        FhirExportFile,
        FhirOptions,
        region_type_filter,
    )

#: Names served by the client module, imported on first use: the client brings httpx, which the mapping,
#: the sync engine and the ``fhir`` source's module do not need until a request is made.
_CLIENT_NAMES = frozenset(
    {"REGION_TAG_SYSTEM", "FhirClient", "FhirExport", "FhirExportFile", "FhirOptions", "region_type_filter"}
)


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        value = getattr(importlib.import_module("rorclient.fhir.client"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rorclient.fhir' has no attribute {name!r}")


__all__ = [
    "REGION_TAG_SYSTEM",
    "FhirAssembler",
    "FhirAuthError",
    "FhirClient",
    "FhirError",
    "FhirExport",
    "FhirExportFile",
    "FhirIssue",
    "FhirMappingError",
    "FhirOptions",
    "FhirTransientError",
    "FhirTruncatedError",
    "entities_from_resources",
    "region_type_filter",
    "resources_for",
]
