"""``FhirClient``: searches and bulk exports of the national ROR FHIR R4 API (digest §3-§7).

Example::

    from rorclient.fhir import FhirClient, FhirOptions

    options = FhirOptions(base_url=..., token_url=..., client_id="my-app", client_secret=secret,
                          profile_code="CU22", profile_system="1.2.250.1.213.1.6.1.66",
                          role_code="AUTOMATE", role_system="1.2.250.1.213.1.1.4.6")
    with FhirClient(options) as fhir:
        for resource in fhir.search("HealthcareService", [("_lastUpdated", "ge2026-06-01T00:00:00Z")]):
            ...
        with fhir.export(type_filter=region_type_filter(["11"])) as export:
            for resource in export.resources():
                ...

Every call carries ``Authorization: Bearer`` and the four ``Ror-*`` headers. Idempotent reads (search
pages, polls, file downloads) are retried per :class:`~rorclient.ror.RetryPolicy` on retryable errors
(connection failures, timeouts, 429/502/503/504 honouring ``Retry-After``, transient OperationOutcomes);
a 401 gets one fresh token and one more try. A bearer token is only ever sent to the host of
``base_url``: a ``next`` link, a polling URL or an export file elsewhere is refused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from rorclient.errors import ConfigError, DataError, RorError
from rorclient.fhir._auth import TokenSource
from rorclient.fhir._outcome import error_for_reply, is_truncation, issues_of, outcome_error
from rorclient.fhir._stream import iter_resources
from rorclient.fhir.errors import FhirAuthError, FhirError, FhirTransientError, FhirTruncatedError
from rorclient.ror._http import HttpReply, HttpSession, StreamedReply
from rorclient.ror._retry import RetryPolicy, retry_call
from rorclient.ror.errors import RequestTimeoutError, safe_url
from rorclient.ror.models import HttpHandler, Timeouts
from rorclient.tls import CertificateFileNotFoundError, CertificateFormatError, Credentials

__all__ = [
    "DEFAULT_EXPORT_TYPE",
    "REGION_TAG_SYSTEM",
    "FhirClient",
    "FhirExport",
    "FhirExportFile",
    "FhirOptions",
    "region_type_filter",
]

_log = logging.getLogger("rorclient.fhir")

#: System of the region tag (``meta.tag``) of every ROR resource: TRE_R30-RegionOM (digest §3.3).
REGION_TAG_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R30-RegionOM/FHIR/TRE-R30-RegionOM"
#: The ROR exports the graph linked to the offers (digest §3.2).
DEFAULT_EXPORT_TYPE = "HealthcareService"

_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_ACCEPT = "application/fhir+json, application/json;q=0.9"
_ACCEPT_FILES = "application/fhir+ndjson, application/fhir+json, application/json;q=0.9, */*;q=0.5"
_MAX_FILE_ERRORS = 1024 * 1024


def region_type_filter(regions: Sequence[str], resource_type: str = DEFAULT_EXPORT_TYPE) -> str | None:
    """The ``_typeFilter`` of a regional export (``None`` for no region): ``HealthcareService?_tag=`` the
    region codes (TRE_R30, e.g. ``"11"``), several regions joined with a comma (FHIR's "or")."""
    codes = [code.strip() for code in regions if code.strip()]
    if not codes:
        return None
    for code in codes:
        if not re.fullmatch(r"[0-9A-Za-z]{1,4}", code):
            raise ConfigError(f"region code {code!r} is not a TRE_R30 code such as '11'")
    return f"{resource_type}?_tag=" + ",".join(f"{REGION_TAG_SYSTEM}|{code}" for code in codes)


class FhirOptions(BaseModel):
    """Everything a :class:`FhirClient` needs, frozen. The secret is a :class:`~pydantic.SecretStr`
    (never shown); ``credentials`` (mTLS, profiles 1-4) hold the key in memory only."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    base_url: str
    """FHIR base, e.g. ``https://api-fhir.ror.esante.gouv.fr/ws-diffusion-fhir``."""
    token_url: str
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None
    """Profile 0; profiles 1-4 authenticate with ``credentials`` instead (both may be given)."""
    credentials: Credentials | None = None
    ca_bundle: Path | None = None
    """CA chain the servers' certificates must chain to when ``credentials`` (which carry their own) are
    not given; ``None`` trusts the system's CAs."""
    profile_code: str
    profile_system: str
    role_code: str
    role_system: str
    page_size: int = Field(default=200, ge=1, le=10_000)
    """``_count`` of searches that do not set it."""
    truncation_limit: int = Field(default=10_000, ge=1)
    """Results a search may return before the server truncates (10,000 on the national ROR)."""
    timeouts: Timeouts = Field(default_factory=Timeouts)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    token_renew_margin: float = Field(default=10.0, ge=0)
    """Seconds before expiry a token is renewed (at most half its lifetime)."""
    poll_interval: float = Field(default=5.0, ge=0)
    """First wait between export status polls when the server gives no ``Retry-After`` (then x1.5)."""
    max_poll_wait: float = Field(default=300.0, ge=0)
    """Longest wait between two polls, ``Retry-After`` included."""
    export_timeout: float = Field(default=12 * 3600.0, gt=0)
    """Seconds an export may take from kick-off to its manifest."""
    output_format: str = "application/fhir+json"
    """``_outputFormat``; the ROR refuses ``application/fhir+ndjson`` (digest §3.2)."""
    export_type: str | None = DEFAULT_EXPORT_TYPE
    """``_type`` of the kick-off (``None``: not sent)."""
    include_associated_data: str | None = "_myCompleteExtract"
    max_concurrency: int = Field(default=4, ge=1)
    handler: HttpHandler | None = None
    """Answer every request in this process instead of the network (tests, demonstrations)."""

    @field_validator("base_url", "token_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{safe_url(value)!r} is not an http(s) URL")
        if parts.username or parts.password:
            raise ValueError("put no user or password in the URL")
        return value.rstrip("/")

    def __repr__(self) -> str:
        auth = "mtls" if self.credentials is not None else "secret" if self.client_secret else "none"
        return (
            f"FhirOptions(base_url={safe_url(self.base_url)!r}, client_id={self.client_id!r}, "
            f"auth={auth!r}, profile_code={self.profile_code!r})"
        )

    __str__ = __repr__


class FhirExportFile(BaseModel):
    """One ``output`` of an export manifest."""

    model_config = ConfigDict(frozen=True)

    type: str | None = None
    url: str
    count: int | None = None


class FhirExport:
    """A completed bulk export job: when it was asked for, the server's ``transactionTime``, its files,
    and :meth:`resources` streaming them. Valid inside the ``with FhirClient.export()`` block only."""

    def __init__(
        self,
        client: FhirClient,
        *,
        requested_at: dt.datetime,
        transaction_time: dt.datetime | None,
        files: Sequence[FhirExportFile],
        requires_token: bool,
    ) -> None:
        self._client = client
        self.requested_at = requested_at
        """When the kick-off was sent (UTC): the watermark, minus an overlap, without ``transaction_time``."""
        self.transaction_time = transaction_time
        """The manifest's ``transactionTime``: everything changed up to it is in the export."""
        self.files = tuple(files)
        self._requires_token = requires_token

    def __repr__(self) -> str:
        return f"FhirExport(files={len(self.files)}, transaction_time={self.transaction_time!r})"

    def resources(self) -> Iterator[dict[str, Any]]:
        """Every resource of every file, in order, streamed (one entry in memory at a time). A token is
        renewed between and, after a 401, within downloads; a file cut short is fetched again and the
        resources already yielded are skipped."""
        for file in self.files:
            yield from self._client._file_resources(
                file.url, requires_token=self._requires_token, count=file.count
            )


class FhirClient:
    """A client for one FHIR source; thread-safe, one connection pool; close it (or use ``with``).

    Credentials problems found while loading the CA bundle raise :mod:`rorclient.tls` errors here.
    """

    def __init__(self, options: FhirOptions) -> None:
        self.options = options
        self._retry = options.retry
        context = _ssl_context(options)
        from rorclient import __version__

        self._http = HttpSession(
            ssl_context=context,
            timeouts=options.timeouts,
            max_concurrency=options.max_concurrency,
            user_agent=f"rorclient/{__version__}",
            client_subject=options.credentials.info.subject if options.credentials else None,
            handler=options.handler,
        )
        self._auth = TokenSource(
            self._http,
            token_url=options.token_url,
            client_id=options.client_id,
            client_secret=options.client_secret,
            retry=options.retry,
            renew_margin=options.token_renew_margin,
            timeout=options.timeouts.total,
        )
        self._base = urlsplit(options.base_url)
        self._closed = False
        self._export_lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------------------

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        self._closed = True
        self._http.close()

    def __repr__(self) -> str:
        return f"FhirClient({self.options!r})"

    @property
    def tokens_fetched(self) -> int:
        """How many access tokens this client fetched so far."""
        return self._auth.fetched

    # -- search -------------------------------------------------------------------------------------------

    def search(self, resource_type: str, params: Sequence[tuple[str, str]]) -> Iterator[dict[str, Any]]:
        """Every resource of every page of ``GET [base]/<resource_type>?<params>`` (matches and
        ``_include``/``_revinclude`` entries alike), following ``next`` links; ``_count`` is the page
        size unless ``params`` sets it.

        Raises :class:`FhirTruncatedError` before yielding anything when the server's ``total`` reaches
        the truncation limit, and as soon as it is met when the matches counted reach the limit (the page
        reaching it is not yielded), when the last page comes with fewer matches than the first page's
        ``total`` announced (whatever the limit), or when the server's OperationOutcome says the
        results were truncated: what was yielded until then must be discarded, never applied as
        complete.
        """
        if not _RESOURCE_TYPE.fullmatch(resource_type):
            raise ConfigError(f"{resource_type!r} is not a FHIR resource type")
        query = list(params)
        if not any(name == "_count" for name, _ in query):
            query.append(("_count", str(self.options.page_size)))
        url: str | None = f"{self.options.base_url}/{resource_type}?{urlencode(query)}"
        limit = self.options.truncation_limit
        seen_urls: set[str] = set()
        matches = 0
        first = True
        announced: int | None = None
        while url is not None:
            if url in seen_urls:
                raise FhirError(
                    f"FHIR search {resource_type}: the server's next link loops ({safe_url(url)})"
                )
            seen_urls.add(url)
            bundle = self._get_json(url, operation=f"FHIR search {resource_type}")
            if bundle.get("resourceType") != "Bundle":
                raise FhirError(f"FHIR search {resource_type}: {safe_url(url)} did not answer a Bundle")
            total = bundle.get("total")
            if first and isinstance(total, int) and total >= limit:
                raise FhirTruncatedError(
                    f"FHIR search {resource_type}: {total} results, the server returns at most {limit}",
                    resource_type=resource_type,
                    limit=limit,
                    total=total,
                )
            if first and isinstance(total, int):
                announced = total
            first = False
            url = self._next_link(bundle, url)
            resources, page_matches = self._page_resources(bundle, resource_type, limit)
            matches += page_matches
            if matches >= limit:
                # With pages left, the server cut the results; without, they may just fill the limit
                # exactly, which cannot be told from a cut: both are refused.
                raise FhirTruncatedError(
                    f"FHIR search {resource_type}: {matches} results reach the server's limit of {limit}",
                    resource_type=resource_type,
                    limit=limit,
                    total=total if isinstance(total, int) else None,
                )
            if url is None and announced is not None and matches < announced:
                raise FhirTruncatedError(
                    f"FHIR search {resource_type}: the server announced {announced} results but gave "
                    f"{matches}",
                    resource_type=resource_type,
                    limit=limit,
                    total=announced,
                )
            yield from resources

    def _page_resources(
        self, bundle: Mapping[str, Any], resource_type: str, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        entries = bundle.get("entry") or []
        if not isinstance(entries, list):
            raise FhirError(f"FHIR search {resource_type}: Bundle.entry is not an array")
        resources: list[dict[str, Any]] = []
        matches = 0
        for entry in entries:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                raise FhirError(f"FHIR search {resource_type}: a Bundle entry without a resource")
            search = entry.get("search")
            mode = search.get("mode") if isinstance(search, dict) else None
            if resource["resourceType"] == "OperationOutcome" or mode == "outcome":
                self._page_outcome(resource, resource_type, limit)
                continue
            if mode == "match" or (mode is None and resource["resourceType"] == resource_type):
                matches += 1
            resources.append(resource)
        return resources, matches

    def _page_outcome(self, outcome: Mapping[str, Any], resource_type: str, limit: int) -> None:
        issues = issues_of(outcome)
        if is_truncation(issues):
            raise FhirTruncatedError(
                f"FHIR search {resource_type}: the server says the results are truncated",
                resource_type=resource_type,
                limit=limit,
                issues=issues,
            )
        if any(issue.severity in ("fatal", "error") for issue in issues):
            raise outcome_error(
                f"FHIR search {resource_type}: the server reports an error", issues, status=None
            )
        for issue in issues:
            _log.info("FHIR search %s: server says %s", resource_type, issue.text())

    def _next_link(self, bundle: Mapping[str, Any], current: str) -> str | None:
        for link in bundle.get("link") or ():
            if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
                return self._own_url(urljoin(current, link["url"]), "next link")
        return None

    # -- export -------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def export(
        self,
        *,
        type_filter: str | None = None,
        on_progress: Callable[[str | None], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[FhirExport]:
        """Run a ``$export`` job and yield it once its manifest is ready; the job is ``DELETE``\\ d when
        the block ends, however it ends.

        ``type_filter`` is the ``_typeFilter`` (see :func:`region_type_filter`); ``on_progress`` receives
        the server's ``X-Progress`` (or ``None``) at each poll; ``stop`` is asked between polls and, when
        it answers true, the job is abandoned (deleted) and ``rorclient.sync`` ``Interrupted`` raised.
        An error file in the manifest with errors is a :class:`FhirError`: a partial export is never
        handed over as complete.
        """
        self._check_open()
        with self._export_lock:
            requested_at = dt.datetime.now(dt.UTC)
            poll_url, manifest = self._kick_off(type_filter)
            try:
                if manifest is None:
                    assert poll_url is not None
                    manifest = self._poll(poll_url, on_progress, stop)
                export = self._read_manifest(manifest, requested_at)
                yield export
            finally:
                if poll_url is not None:
                    self._delete_job(poll_url)

    def _kick_off(self, type_filter: str | None) -> tuple[str | None, dict[str, Any] | None]:
        options = self.options
        query: list[tuple[str, str]] = [("_outputFormat", options.output_format)]
        if options.export_type:
            query.append(("_type", options.export_type))
        if type_filter:
            query.append(("_typeFilter", type_filter))
        if options.include_associated_data:
            query.append(("includeAssociatedData", options.include_associated_data))
        url = f"{options.base_url}/$export?{urlencode(query)}"
        operation = "FHIR $export kick-off"

        def attempt() -> HttpReply:
            reply = self._send("GET", url, operation=operation, extra={"Prefer": "respond-async"})
            if reply.status not in (200, 202):
                raise error_for_reply(reply, operation)
            return reply

        reply = retry_call(attempt, self._retry, operation=operation)
        location = reply.headers.get("content-location")
        if location:
            return self._own_url(urljoin(url, location), "polling URL"), None
        if reply.status == 200:
            body = _json_object(reply, operation)
            if isinstance(body.get("output"), list):
                return None, body
        raise FhirError(
            f"{operation}: {safe_url(url)} answered HTTP {reply.status} without a Content-Location"
        )

    def _poll(
        self, url: str, on_progress: Callable[[str | None], None] | None, stop: Callable[[], bool] | None
    ) -> dict[str, Any]:
        operation = "FHIR $export status"
        deadline = time.monotonic() + self.options.export_timeout
        interval = self.options.poll_interval

        def attempt() -> HttpReply:
            reply = self._send("GET", url, operation=operation)
            if reply.status not in (200, 202, 429):
                raise error_for_reply(reply, operation)
            return reply

        while True:
            _check_stop(stop)
            reply = retry_call(attempt, self._retry, operation=operation)
            if reply.status == 200:
                return _json_object(reply, operation)
            if reply.status == 202 and on_progress is not None:
                on_progress(reply.headers.get("x-progress"))
            retry_after = _retry_after(reply.headers.get("retry-after"))
            if retry_after is not None:
                wait = min(retry_after, self.options.max_poll_wait)
            else:
                wait = min(interval, self.options.max_poll_wait)
                interval *= 1.5
            if time.monotonic() + wait > deadline:
                raise RequestTimeoutError(
                    f"{operation}: the export was not ready within {self.options.export_timeout:g} s",
                    phase="deadline",
                )
            _wait(wait, stop)

    def _read_manifest(self, manifest: Mapping[str, Any], requested_at: dt.datetime) -> FhirExport:
        where = "FHIR $export manifest"
        outputs = manifest.get("output")
        if not isinstance(outputs, list):
            raise FhirError(f"{where}: no output list")
        files = []
        for item in outputs:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                raise FhirError(f"{where}: an output without a url")
            count = item.get("count")
            files.append(
                FhirExportFile(
                    type=item.get("type") if isinstance(item.get("type"), str) else None,
                    url=urljoin(self.options.base_url + "/", item["url"]),
                    count=count if isinstance(count, int) else None,
                )
            )
        requires_token = manifest.get("requiresAccessToken") is not False
        if requires_token:
            for file in files:
                self._own_url(file.url, "export file")
        self._check_error_files(manifest, requires_token)
        return FhirExport(
            self,
            requested_at=requested_at,
            transaction_time=_instant(manifest.get("transactionTime")),
            files=files,
            requires_token=requires_token,
        )

    def _check_error_files(self, manifest: Mapping[str, Any], requires_token: bool) -> None:
        """Refuse an export whose ``error`` files report errors (warnings are logged), or whose ``error``
        entries cannot be read: what the server flags without our being able to read it proves nothing
        complete."""
        errors = manifest.get("error") or []
        if not isinstance(errors, list):
            raise FhirError(
                "FHIR $export manifest: its error entry is not a list; the export may be incomplete"
            )
        for item in errors:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                raise FhirError(
                    "FHIR $export manifest: an error entry without a url; the export may be incomplete"
                )
            url = urljoin(self.options.base_url + "/", item["url"])
            if requires_token:
                self._own_url(url, "export error file")
            for outcome in self._file_resources(url, requires_token=requires_token):
                issues = issues_of(outcome)
                if any(issue.severity in ("fatal", "error") for issue in issues):
                    raise FhirError(
                        "FHIR $export: the server reports errors; the export is incomplete", issues=issues
                    )
                for issue in issues:
                    _log.warning("FHIR $export: server says %s", issue.text())

    def _delete_job(self, url: str) -> None:
        """Tell the server it may drop the job and its files; failures are only logged."""
        try:
            reply = self._send("DELETE", url, operation="FHIR $export delete")
        except RorError as error:
            _log.warning("could not delete the FHIR export job %s: %s", safe_url(url), error)
            return
        if reply.status not in (200, 202, 204, 404):
            _log.warning("deleting the FHIR export job %s answered HTTP %d", safe_url(url), reply.status)

    def _file_resources(
        self, url: str, *, requires_token: bool, count: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The resources of one export file. ``count`` (the manifest's): a file that ends cleanly with
        fewer resources is fetched again, then refused — never handed over as the whole file."""
        operation = "FHIR $export download"
        yielded = 0
        failures = 0
        while True:
            try:
                with self._download(url, operation, requires_token) as reply:
                    for index, resource in enumerate(
                        iter_resources(reply.iter_bytes(), source=safe_url(url))
                    ):
                        if index < yielded:
                            continue
                        yielded += 1
                        yield resource
                if count is not None and yielded < count:
                    raise FhirTransientError(
                        f"{operation}: {safe_url(url)} holds {yielded} resources, the manifest announced "
                        f"{count}; the export is incomplete"
                    )
                return
            except RorError as error:
                failures += 1
                if not error.retryable or failures >= self._retry.max_attempts:
                    raise
                wait = self._retry.wait_before(failures, error)
                _log.warning(
                    "%s %s failed after %d resources (%s); again in %.1f s",
                    operation,
                    safe_url(url),
                    yielded,
                    error,
                    wait,
                )
                _sleep(wait)

    @contextlib.contextmanager
    def _download(self, url: str, operation: str, requires_token: bool) -> Iterator[StreamedReply]:
        for renewed in (False, True):
            token = self._auth.token() if requires_token else None
            headers = self._headers(token, {"Accept": _ACCEPT_FILES})
            with self._http.stream(url, headers, operation=operation) as reply:
                if reply.status == 401 and token is not None and not renewed:
                    self._auth.invalidate(token)
                    continue
                if reply.status != 200:
                    raise error_for_reply(_whole(reply), operation)
                yield reply
                return
        raise FhirAuthError(f"{operation}: {safe_url(url)} refused a fresh token", status=401)

    # -- plumbing -----------------------------------------------------------------------------------------

    def _headers(self, token: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        options = self.options
        headers = {
            "Accept": _ACCEPT,
            "Ror-Profil-Utilisateur-Code": options.profile_code,
            "Ror-Profil-Utilisateur-System": options.profile_system,
            "Ror-Role-Metier-Code": options.role_code,
            "Ror-Role-Metier-System": options.role_system,
        }
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if extra:
            headers.update(extra)
        return headers

    def _send(
        self, method: str, url: str, *, operation: str, extra: Mapping[str, str] | None = None
    ) -> HttpReply:
        """One request with a valid token; a 401 gets a fresh token and one more try."""
        self._check_open()
        total = self.options.timeouts.total
        token = self._auth.token()
        reply = self._http.request(method, url, self._headers(token, extra), operation=operation, total=total)
        if reply.status != 401:
            return reply
        self._auth.invalidate(token)
        token = self._auth.token()
        reply = self._http.request(method, url, self._headers(token, extra), operation=operation, total=total)
        if reply.status == 401:
            issues = issues_of(_json_or_none(reply.body))
            raise FhirAuthError(
                f"{operation}: {safe_url(url)} refused a fresh token", status=401, issues=issues
            )
        return reply

    def _get_json(self, url: str, *, operation: str) -> dict[str, Any]:
        def attempt() -> dict[str, Any]:
            reply = self._send("GET", url, operation=operation)
            if reply.status != 200:
                raise error_for_reply(reply, operation)
            return _json_object(reply, operation)

        return retry_call(attempt, self._retry, operation=operation)

    def _own_url(self, url: str, what: str) -> str:
        """``url`` if it is on the FHIR base's scheme, host and port (the bearer token goes there only)."""
        parts = urlsplit(url)
        if (parts.scheme, parts.hostname, parts.port) != (
            self._base.scheme,
            self._base.hostname,
            self._base.port,
        ):
            raise FhirError(
                f"the server gave a {what} on another host ({safe_url(url)}); the token is not sent there"
            )
        return url

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("the FHIR client is closed")


# ------------------------------------------------------------------------------------------------------------
# helpers


def _ssl_context(options: FhirOptions) -> ssl.SSLContext | None:
    if options.credentials is not None:
        return options.credentials.ssl_context()
    if options.ca_bundle is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=os.fspath(options.ca_bundle))
    except FileNotFoundError:
        raise CertificateFileNotFoundError(f"CA bundle not found: {options.ca_bundle}") from None
    except ssl.SSLError:
        raise CertificateFormatError(f"{options.ca_bundle} is not a PEM CA bundle") from None
    return context


def _json_object(reply: HttpReply, operation: str) -> dict[str, Any]:
    body = _json_or_none(reply.body)
    if not isinstance(body, dict):
        raise FhirTransientError(
            f"{operation}: {safe_url(reply.url)} answered {reply.status} without a JSON object"
        )
    return body


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _whole(reply: StreamedReply) -> HttpReply:
    """An error answer read (up to a limit) to find its OperationOutcome."""
    chunks: list[bytes] = []
    size = 0
    for chunk in reply.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > _MAX_FILE_ERRORS:
            break
    body = b"".join(chunks)
    return HttpReply(
        status=reply.status, headers=reply.headers, content=io.BytesIO(body), size=len(body), url=reply.url
    )


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(f"FHIR $export manifest: transactionTime {value[:40]!r} is not an instant") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _retry_after(value: str | None) -> float | None:
    from rorclient.ror._http import parse_retry_after

    return parse_retry_after(value)


def _check_stop(stop: Callable[[], bool] | None) -> None:
    if stop is not None and stop():
        from rorclient.sync._plan import Interrupted

        raise Interrupted


def _wait(seconds: float, stop: Callable[[], bool] | None) -> None:
    """Sleep ``seconds``, asking ``stop`` every fraction of a second."""
    left = seconds
    while True:
        _check_stop(stop)
        if left <= 0:
            return
        step = min(left, 0.2)
        _sleep(step)
        left -= step


def _sleep(seconds: float) -> None:
    """A seam for tests that record waits instead of sleeping."""
    time.sleep(seconds)
