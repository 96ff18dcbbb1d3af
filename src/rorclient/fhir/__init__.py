"""The national ROR FHIR R4 API ("modèle d'exposition 3.0"): client, errors (and, from helper modules,
the mapping to rorclient's models). See docs/fhir.md."""

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
    "FhirAuthError",
    "FhirClient",
    "FhirError",
    "FhirExport",
    "FhirExportFile",
    "FhirIssue",
    "FhirOptions",
    "FhirTransientError",
    "FhirTruncatedError",
    "region_type_filter",
]
