"""Every setting of the sandbox server, with its default."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rorclient.csd.writer import WriterOptions
from rorclient.models import Entity
from rorclient.sandbox.dataset import MAX_ESTABLISHMENTS

__all__ = ["ErrorCodes", "SandboxOptions"]


class ErrorCodes(BaseModel):
    """The ``code`` of ``ror:erreur`` / ``careServicesResponse/error`` per situation.

    The ROR only documents 405 (RG_ALIM_019); these defaults are invented (CSD-v2.4-digest §8)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    invalid_request: int = 400
    forbidden_profile: int = 403
    unknown_establishment: int = 404
    unknown_organisation: int = 404
    unsupported: int = 501
    internal: int = 500
    injected: int = 500


class SandboxOptions(BaseModel):
    """Settings of a sandbox server (``Sandbox(**options)`` takes the same names)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    # -- data and time --
    establishments: int = Field(default=20, ge=0, le=MAX_ESTABLISHMENTS)
    """Size of the generated dataset (ignored with ``data_dir``)."""
    seed: int = 1
    data_dir: Path | None = None
    """Serve the CSD files (``*.xml``, ``*.xml.gz``, ``*.zip``) of this directory, not generated data."""
    platines_fixture: bool = False
    """Add the PLATINES prerequisite establishment ``1830000002`` (4 UE, one per activity field 01-04)."""
    clock_start: dt.datetime | None = None
    """Starting time of the sandbox clock (naive: Paris time, as the ROR's); default: now."""
    clock_ticking: bool = True
    """The clock follows real time (else it only moves with ``advance``)."""
    build_index: Literal["background", "lazy"] = "background"
    """When to scan the data for Notif: at start in a thread, or on the first Notif that needs it."""

    # -- network --
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    """TCP port; 0 picks a free one."""
    tls_dir: Path | None = None
    """Where the test PKI lives (reused when recent enough); default: a temporary directory."""
    client_cert: Literal["required", "optional", "none"] = "required"
    check_revocation: bool = True
    soap_path: str = "/ROR/0.1/CSD_ROR_Binding"
    extraction_path: str = "/ROR/extraction"
    test_mode: bool = True
    """Serve the control API under ``/_sandbox/``."""
    max_request_bytes: int = Field(default=1_000_000, ge=1024)
    request_timeout: float = Field(default=30.0, gt=0)
    """Seconds an idle or slow connection is kept."""

    # -- behaviour --
    default_profile: int = Field(default=1, ge=0, le=3)
    """Access profile (0 CU23, 1 CU22, 2 CU20, 3 CU19) of requests without a VIHF token."""
    extraction_profile: int | None = Field(default=None, ge=0, le=3)
    """Access profile the extraction is filtered with; default: ``default_profile``."""
    lenient_dates: bool = False
    """Accept the date-times PLATINES sends but the XSD refuses (``2018-05-30T7:00:00``, empty)."""
    lecture_date_ref: Literal["filter", "ignore"] = "filter"
    """Lecture ``dateRef``: keep only units updated after it (and their ancestors), or ignore it."""
    extraction_wait: float = Field(default=10.0, ge=0)
    """Seconds an extraction request waits for a build before a 503 with ``Retry-After`` (the build goes
    on in the background)."""
    fault_http_status: int = 500
    """HTTP status of SOAP faults (SOAP 1.2 says 400 for Sender faults; many ROR stacks answer 500)."""
    error_codes: ErrorCodes = ErrorCodes()
    writer_options: WriterOptions | None = None
    fault_seed: int | None = None
    """Seed of the rate-based fault injection; default: ``seed``."""

    # -- FHIR face (docs/sandbox.md, "The FHIR face") --
    fhir_path: str = "/ws-diffusion-fhir"
    """FHIR base path, as on the national ROR."""
    fhir_token_path: str = "/auth/realms/ror/protocol/openid-connect/token"  # noqa: S105 - a path
    fhir_client_id: str = "rorclient-sandbox"
    fhir_client_secret: str | None = "sandbox-secret"  # noqa: S105 - the sandbox's published test secret
    """Secret of access profile 0; a client presenting a valid certificate needs none (``None``: the
    token endpoint only takes certificates)."""
    fhir_token_lifetime: float = Field(default=300.0, gt=0)
    """Seconds a token is valid (real time, not the sandbox clock)."""
    fhir_page_size: int = Field(default=200, ge=1)
    """``_count`` of a search that does not give one."""
    fhir_max_page_size: int = Field(default=1000, ge=1)
    fhir_search_limit: int = Field(default=10_000, ge=1)
    """Results a search returns at most (10,000 on the national ROR); set it low in tests."""
    fhir_truncation: Literal["total", "capped", "outcome", "none"] = "total"
    """What a truncated search says: its true ``total``; a ``total`` equal to the limit; no ``total``
    but an OperationOutcome entry; or nothing at all (no ``total`` on any search)."""
    fhir_export_format: Literal["bundle", "ndjson"] = "bundle"
    """Export files as one JSON Bundle each, or NDJSON (the ROR's choice is not documented)."""
    fhir_export_layout: Literal["mixed", "by_type"] = "mixed"
    """Files hold every resource type in tranches, or one type each (as Bulk Data says)."""
    fhir_export_file_resources: int = Field(default=5000, ge=1)
    """Resources per export file."""
    fhir_export_polls: int = Field(default=1, ge=0)
    """Status polls answered 202 before the manifest (at least until the files are built)."""
    fhir_poll_retry_after: int = Field(default=1, ge=0)
    """``Retry-After`` of a 202 status answer."""
    fhir_kickoff_status: Literal[200, 202] = 202
    fhir_mapper: Callable[[Iterable[Entity]], Iterable[dict[str, Any]]] | None = None
    """Entities → FHIR resources; default: :func:`rorclient.fhir._mapping.resources_for`."""

    @field_validator("soap_path", "extraction_path", "fhir_path", "fhir_token_path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/") or value.startswith("/_sandbox"):
            raise ValueError(f"an endpoint path starts with / and not with /_sandbox: {value!r}")
        return value.rstrip("/") or "/"
