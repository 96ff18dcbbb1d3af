"""The keyword arguments of :class:`~rorclient.sandbox.Sandbox`, typed (kept apart from the options
themselves so that adding an option touches two short lists, not one long file)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, TypedDict

from rorclient.csd.writer import WriterOptions
from rorclient.models import Entity
from rorclient.sandbox._options import ErrorCodes

__all__ = ["SandboxSettings"]


class SandboxSettings(TypedDict, total=False):
    """The keyword arguments of :class:`~rorclient.sandbox.Sandbox` (and of ``pytest_fixture``): the
    fields of :class:`SandboxOptions`, each optional, with the same meaning and defaults. A test keeps
    the two in step."""

    establishments: int
    seed: int
    data_dir: Path | None
    platines_fixture: bool
    clock_start: dt.datetime | None
    clock_ticking: bool
    build_index: Literal["background", "lazy"]
    host: str
    port: int
    tls_dir: Path | None
    client_cert: Literal["required", "optional", "none"]
    check_revocation: bool
    soap_path: str
    extraction_path: str
    test_mode: bool
    max_request_bytes: int
    request_timeout: float
    default_profile: int
    extraction_profile: int | None
    lenient_dates: bool
    lecture_date_ref: Literal["filter", "ignore"]
    extraction_wait: float
    fault_http_status: int
    error_codes: ErrorCodes
    writer_options: WriterOptions | None
    fault_seed: int | None
    fhir_path: str
    fhir_token_path: str
    fhir_client_id: str
    fhir_client_secret: str | None
    fhir_token_lifetime: float
    fhir_page_size: int
    fhir_max_page_size: int
    fhir_search_limit: int
    fhir_truncation: Literal["total", "capped", "outcome", "none"]
    fhir_export_format: Literal["bundle", "ndjson"]
    fhir_export_layout: Literal["mixed", "by_type"]
    fhir_export_file_resources: int
    fhir_export_polls: int
    fhir_poll_retry_after: int
    fhir_kickoff_status: Literal[200, 202]
    fhir_mapper: Callable[[Iterable[Entity]], Iterable[dict[str, Any]]] | None
