"""The national ROR FHIR R4 API ("modèle d'exposition 3.0"): client, errors, and the mapping to and
from the models.

:class:`FhirClient` talks to the API (tokens, searches, ``$export``); :func:`resources_for` turns
entities into ROR-profile resources; :class:`FhirAssembler` turns resources (an ``$export``'s files, a
search's pages, in any order) into entities with the same business identifiers as CSD. See
docs/fhir.md and the mapping table in docs/data-model.md.
"""

from __future__ import annotations

from rorclient.fhir._mapping import FhirAssembler, entities_from_resources, resources_for
from rorclient.fhir._values import FhirMappingError
from rorclient.fhir.client import (
    REGION_TAG_SYSTEM,
    FhirClient,
    FhirExport,
    FhirExportFile,
    FhirOptions,
    region_type_filter,
)
from rorclient.fhir.errors import FhirAuthError, FhirError, FhirIssue, FhirTransientError, FhirTruncatedError

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
