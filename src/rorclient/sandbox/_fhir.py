"""The sandbox's FHIR face: the same simulated region as the CSD face, as the national ROR FHIR API
serves it (digest §2-§7).

* ``POST <fhir_token_path>``: OAuth2 ``client_credentials`` with ``client_id`` + ``client_secret``, or
  ``client_id`` alone on a connection presenting a valid client certificate; opaque tokens valid
  ``fhir_token_lifetime`` seconds (real time).
* Under ``<fhir_path>``: ``GET /<Type>`` searches (see :mod:`._fhir_search`) with ``next`` links to
  ``?_getpages=…`` pages of a result kept as it was; ``GET /<Type>/<id>``; ``GET /metadata``;
  ``GET|POST /$export`` → ``/$export-poll-status?_jobId=…`` (202 with ``X-Progress`` and
  ``Retry-After``, then the manifest; ``DELETE`` drops the job) → ``/$export-file/<job>/<file>``.

Every call but ``metadata`` needs a valid bearer token (else 401) and the four ``Ror-*`` headers (else
400); the profile code (CU23, CU22, CU20, CU19 → access profiles 0-3) filters the data as on the CSD
face. Errors are OperationOutcomes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from rorclient.models import Offer
from rorclient.sandbox._app import Reply
from rorclient.sandbox._clock import ROR_ZONE
from rorclient.sandbox._extraction import ExtractionFile
from rorclient.sandbox._fhir_export import ExportJob, Mapper, build_export
from rorclient.sandbox._fhir_search import (
    REFERENCES,
    REGION_TAG_SYSTEM,
    FhirResources,
    SearchError,
    SearchQuery,
    lower_bound,
    parse_search,
)
from rorclient.sandbox._selection import PROFILE_CODES, apply_profile

if TYPE_CHECKING:
    from rorclient.sandbox._app import SandboxApp

__all__ = ["FhirFace", "outcome_reply"]

_log = logging.getLogger("rorclient.sandbox")

_FHIR_JSON = "application/fhir+json; charset=utf-8"
_ROR_HEADERS = (
    "ror-profil-utilisateur-code",
    "ror-profil-utilisateur-system",
    "ror-role-metier-code",
    "ror-role-metier-system",
)
_TYPES = frozenset([*REFERENCES, "Practitioner"])
_OUTPUT_FORMATS = frozenset({"application/fhir+json", "application/json", "json"})
_KEPT_SEARCHES = 256
_KEPT_INDEXES = 8
_KEPT_JOBS = 16
#: Reverse includes that stay within an establishment's subtree.
_LOCAL_REVINCLUDES = frozenset({("PractitionerRole", "service"), ("Organization", "partof")})

_PRACTITIONER_ROLES = ("PractitionerRole", "practitioner")

_Scope = frozenset[str] | None


def outcome_reply(
    status: int, code: str, text: str, *, severity: str = "error", operation: str | None = None
) -> Reply:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": text}],
    }
    return Reply(status, _FHIR_JSON, _json_bytes(body), operation=operation)


@dataclass
class _Search:
    index: FhirResources
    query: SearchQuery
    keys: list[str]
    total: int
    truncated: bool
    count: int
    self_url: str


@dataclass(frozen=True)
class FhirRequest:
    method: str
    path: str
    """Relative to the FHIR base (``/Organization``, ``/$export``...), or the token path."""
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes
    client_certificate: bool
    base_url: str
    """``https://host:port<fhir_path>`` as the client addressed it."""


class FhirFace:
    """State of the FHIR face: tokens, kept searches, export jobs, resource indexes per version."""

    def __init__(self, app: SandboxApp, work_dir: Path) -> None:
        self.app = app
        self.options = app.options
        self._work_dir = work_dir / "fhir-export"
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._searches: OrderedDict[str, _Search] = OrderedDict()
        self._jobs: dict[str, ExportJob] = {}
        self._indexes: OrderedDict[tuple[int, int, _Scope], FhirResources] = OrderedDict()
        self._index_lock = threading.Lock()
        self._stopping = threading.Event()
        self._mapper: Mapper | None = self.options.fhir_mapper
        self._homes: tuple[int, dict[str, set[str]]] | None = None
        self.delta_indexes = True
        """Answer searches by identifier or ``_lastUpdated`` from the establishments concerned only
        (off: map everything for every search; the answers are the same)."""

    def close(self) -> None:
        self._stopping.set()

    # -- routing ------------------------------------------------------------------------------------

    def operation(self, method: str, path: str) -> str | None:
        """The fault-injection operation of a request, ``None`` if it is not for the FHIR face."""
        options = self.options
        if path == options.fhir_token_path:
            return "fhir_token"
        if path != options.fhir_path and not path.startswith(options.fhir_path + "/"):
            return None
        rest = path.removeprefix(options.fhir_path)
        if rest.startswith("/$export-poll-status"):
            return "fhir_status"
        if rest.startswith("/$export-file/"):
            return "fhir_download"
        if rest.startswith("/$export"):
            return "fhir_export"
        if rest.count("/") >= 2:
            return "fhir_read"
        return "fhir_search"

    def handle(self, operation: str, request: FhirRequest) -> Reply:
        self.app.count(operation)
        try:
            if operation == "fhir_token":
                return self._token(request)
            if request.path == "/metadata" and request.method == "GET":
                return self._metadata()
            refusal = self._check_access(request)
            if refusal is not None:
                return refusal
            profile = PROFILE_CODES[request.headers["ror-profil-utilisateur-code"]]
            return self._route(operation, request, profile)
        except SearchError as exc:
            return outcome_reply(400, "invalid", str(exc))
        except Exception as exc:  # a sandbox or mapping bug must not look like a client error
            _log.exception("the sandbox's FHIR face failed to answer %s %s", request.method, request.path)
            return outcome_reply(500, "exception", f"internal error: {exc}")

    def revoke(self, headers: Mapping[str, str]) -> None:
        """Expire the request's token now (fault ``expire_token``)."""
        token = _bearer(headers)
        if token is not None:
            with self._lock:
                self._tokens.pop(token, None)

    def _route(self, operation: str, request: FhirRequest, profile: int) -> Reply:
        method, path = request.method, request.path
        if operation == "fhir_export" and method in ("GET", "POST") and path == "/$export":
            return self._kick_off(request, profile)
        if operation == "fhir_status":
            return self._status(request)
        if operation == "fhir_download" and method == "GET":
            return self._download(path)
        if method != "GET":
            return outcome_reply(405, "not-supported", f"{method} is not supported here")
        if path in ("", "/") and any(name == "_getpages" for name, _ in request.query):
            return self._next_page(request)
        parts = path.strip("/").split("/")
        if len(parts) == 1 and parts[0] in _TYPES:
            return self._search(parts[0], request, profile)
        if len(parts) == 2 and parts[0] in _TYPES:
            resource = self._index(profile).by_key.get(f"{parts[0]}/{parts[1]}")
            if resource is None:
                return outcome_reply(404, "not-found", f"{parts[0]}/{parts[1]} is not known")
            return _fhir(200, resource)
        return outcome_reply(404, "not-found", f"nothing at {self.options.fhir_path}{path}")

    # -- auth ---------------------------------------------------------------------------------------

    def _token(self, request: FhirRequest) -> Reply:
        if request.method != "POST":
            return outcome_reply(405, "not-supported", "the token endpoint takes POST")
        form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
        options = self.options

        def refuse(error: str, description: str) -> Reply:
            body = {"error": error, "error_description": description}
            return Reply(401 if error == "invalid_client" else 400, "application/json", _json_bytes(body))

        if form.get("grant_type") != "client_credentials":
            return refuse("unsupported_grant_type", "only client_credentials is supported")
        if form.get("client_id") != options.fhir_client_id:
            return refuse("invalid_client", "unknown client")
        secret = form.get("client_secret")
        if secret is not None:
            if options.fhir_client_secret is None or not secrets.compare_digest(
                secret, options.fhir_client_secret
            ):
                return refuse("invalid_client", "invalid client credentials")
        elif not request.client_certificate:
            return refuse("invalid_client", "no client secret and no client certificate")
        token = "sbx." + secrets.token_urlsafe(24)
        lifetime = options.fhir_token_lifetime
        with self._lock:
            now = time.monotonic()
            self._tokens = {key: expiry for key, expiry in self._tokens.items() if expiry > now}
            self._tokens[token] = now + lifetime
        body = {"access_token": token, "expires_in": lifetime, "token_type": "Bearer", "scope": "profile"}
        return Reply(200, "application/json", _json_bytes(body), headers=[("Cache-Control", "no-store")])

    def _check_access(self, request: FhirRequest) -> Reply | None:
        token = _bearer(request.headers)
        with self._lock:
            expiry = self._tokens.get(token) if token is not None else None
        if expiry is None or expiry <= time.monotonic():
            reply = outcome_reply(401, "login", "missing, unknown or expired access token")
            reply.headers.append(("WWW-Authenticate", 'Bearer error="invalid_token"'))
            return reply
        missing = [name for name in _ROR_HEADERS if not request.headers.get(name)]
        if missing:
            return outcome_reply(400, "required", f"missing header(s): {', '.join(missing)}")
        code = request.headers["ror-profil-utilisateur-code"]
        if code not in PROFILE_CODES:
            known = ", ".join(sorted(PROFILE_CODES))
            return outcome_reply(403, "forbidden", f"access profile {code} is not served ({known})")
        return None

    # -- resources ----------------------------------------------------------------------------------

    def mapper(self) -> Mapper:
        if self._mapper is None:
            from rorclient.fhir._mapping import resources_for

            self._mapper = resources_for
        return self._mapper

    def _index(self, profile: int, scope: _Scope = None) -> FhirResources:
        """The resources of the current data as ``profile`` sees it (built once per data version), or
        of the establishments of ``scope`` only (see :meth:`_scope`)."""
        truth = self.app.truth
        with self._index_lock:
            key = (truth.version, profile, scope)
            index = self._indexes.get(key)
            if index is not None:
                self._indexes.move_to_end(key)
            else:
                offers: Iterable[Offer]
                if scope is None:
                    offers = truth.offers()
                else:
                    offers = [offer for offer in map(truth.offer, sorted(scope)) if offer is not None]
                mapper = self.mapper()
                index = FhirResources.of(
                    resource
                    for offer in offers
                    for resource in mapper(apply_profile(offer, profile).entities())
                )
                self._indexes[key] = index
                while len(self._indexes) > _KEPT_INDEXES:
                    self._indexes.popitem(last=False)
            return index

    def _scope(self, query: SearchQuery) -> _Scope:
        """The establishments a search can be answered from exactly, ``None`` for all of them.

        An offer's graph stays within its establishment's subtree, so:

        * by identifier: the establishment of an idNat_Struct, or of an identifiantOI / offer identifier,
          named by ``identifier`` or ``organization.identifier`` (identifiers are unique; any other value
          needs all the data);
        * by ``_lastUpdated``: the establishments changed since its lower bound (an establishment's
          newest record, its legal entity's included, bounds every resource made from it); with
          ``_revinclude=PractitionerRole:practitioner``, also every establishment where the
          professionals of those work.

        Any other ``_revinclude`` may reach into other establishments: all the data then.
        """
        if not self.delta_indexes:
            return None
        truth = self.app.truth
        revincludes = set(query.revincludes)
        if revincludes <= _LOCAL_REVINCLUDES:
            by_identifier = self._identified(query)
            if by_identifier:
                return by_identifier
        bound = lower_bound(query)
        if bound is None or not revincludes <= _LOCAL_REVINCLUDES | {_PRACTITIONER_ROLES}:
            return None
        after = bound.astimezone(ROR_ZONE).replace(tzinfo=None, microsecond=0) - dt.timedelta(seconds=1)
        changed = {summary.id for summary in truth.changed_since(after) if not summary.removed}
        if _PRACTITIONER_ROLES in revincludes:
            homes = self._professional_homes()
            for establishment_id in list(changed):
                offer = truth.offer(establishment_id)
                for professional in offer.professionals if offer is not None else ():
                    changed |= homes.get(professional.id, set())
        return frozenset(changed)

    def _identified(self, query: SearchQuery) -> frozenset[str] | None:
        truth = self.app.truth
        establishments: set[str] = set()
        for name, _, value in query.filters:
            if name not in ("identifier", "organization.identifier"):
                continue
            for token in value.split(","):
                identifier = token.rpartition("|")[2]
                if truth.offer(identifier) is not None:
                    establishments.add(identifier)
                    continue
                home = truth.unit_establishment(identifier)
                if home is None:
                    return None
                establishments.add(home)
        return frozenset(establishments) if establishments else None

    def _professional_homes(self) -> dict[str, set[str]]:
        """Professional id → the establishments whose offers hold them (once per data version)."""
        truth = self.app.truth
        with self._index_lock:
            version = truth.version
            if self._homes is None or self._homes[0] != version:
                homes: dict[str, set[str]] = {}
                for offer in truth.offers():
                    establishment_id = offer.establishments[0].id
                    for professional in offer.professionals:
                        homes.setdefault(professional.id, set()).add(establishment_id)
                self._homes = (version, homes)
            return self._homes[1]

    # -- search -------------------------------------------------------------------------------------

    def _search(self, resource_type: str, request: FhirRequest, profile: int) -> Reply:
        query = parse_search(resource_type, request.query)
        index = self._index(profile, self._scope(query))
        matches = index.matches(query)
        options = self.options
        count = min(
            query.count if query.count is not None else options.fhir_page_size, options.fhir_max_page_size
        )
        limit = options.fhir_search_limit
        search = _Search(
            index=index,
            query=query,
            keys=matches[:limit],
            total=len(matches),
            truncated=len(matches) > limit,
            count=count,
            self_url=f"{request.base_url}/{resource_type}?{urlencode(request.query)}",
        )
        search_id = uuid.uuid4().hex
        with self._lock:
            self._searches[search_id] = search
            while len(self._searches) > _KEPT_SEARCHES:
                self._searches.popitem(last=False)
        return self._page(search_id, search, 0, request.base_url)

    def _next_page(self, request: FhirRequest) -> Reply:
        params = dict(request.query)
        with self._lock:
            search = self._searches.get(params.get("_getpages", ""))
        if search is None:
            return outcome_reply(410, "not-found", "this search is no longer available: search again")
        try:
            offset = int(params.get("_getpagesoffset", "0"))
        except ValueError:
            return outcome_reply(400, "invalid", "bad _getpagesoffset")
        return self._page(params["_getpages"], search, max(offset, 0), request.base_url)

    def _page(self, search_id: str, search: _Search, offset: int, base_url: str) -> Reply:
        keys = search.keys[offset : offset + search.count]
        included = search.index.included(keys, search.query)
        entries: list[dict[str, Any]] = [
            {
                "fullUrl": f"{base_url}/{key}",
                "resource": search.index.by_key[key],
                "search": {"mode": mode},
            }
            for mode, group in (("match", keys), ("include", included))
            for key in group
        ]
        mode = self.options.fhir_truncation
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "id": search_id,
            "meta": {"lastUpdated": self._now().isoformat()},
            "type": "searchset",
        }
        if mode == "total" or (mode in ("capped", "outcome") and not search.truncated):
            bundle["total"] = search.total
        elif mode == "capped":
            bundle["total"] = len(search.keys)
        links = [{"relation": "self", "url": search.self_url}]
        following = offset + search.count
        if search.count > 0 and following < len(search.keys):
            query = urlencode(
                {
                    "_getpages": search_id,
                    "_getpagesoffset": following,
                    "_count": search.count,
                    "_bundletype": "searchset",
                }
            )
            links.append({"relation": "next", "url": f"{base_url}?{query}"})
        bundle["link"] = links
        if search.truncated and mode == "outcome" and offset == 0:
            limit = self.options.fhir_search_limit
            outcome = {
                "resourceType": "OperationOutcome",
                "issue": [
                    {
                        "severity": "warning",
                        "code": "too-costly",
                        "diagnostics": f"results truncated to {limit}: use $export or narrow the search",
                    }
                ],
            }
            entries.append({"resource": outcome, "search": {"mode": "outcome"}})
        bundle["entry"] = entries
        return _fhir(200, bundle)

    # -- export -------------------------------------------------------------------------------------

    def _kick_off(self, request: FhirRequest, profile: int) -> Reply:
        params = request.query
        if request.method == "POST" and request.body.strip():
            return outcome_reply(400, "not-supported", "send the $export parameters in the URL")
        types: list[str] = []
        regions: set[str] | None = None
        for name, value in params:
            if name == "_outputFormat":
                if value not in _OUTPUT_FORMATS:
                    return outcome_reply(
                        400, "invalid", f"_outputFormat {value} is not supported: use application/fhir+json"
                    )
            elif name == "_type":
                types.extend(part for part in value.split(",") if part)
                unknown = [part for part in types if part not in _TYPES]
                if unknown:
                    return outcome_reply(
                        400, "invalid", f"_type: unknown resource type(s) {', '.join(unknown)}"
                    )
            elif name == "_typeFilter":
                try:
                    found = _filter_regions(value)
                except SearchError as exc:
                    return outcome_reply(400, "invalid", str(exc))
                regions = (regions or set()) | found
            elif name == "_since":
                return outcome_reply(400, "not-supported", "_since is not supported by this server")
            elif name != "includeAssociatedData":
                return outcome_reply(400, "invalid", f"unknown $export parameter {name!r}")
        options = self.options
        job = ExportJob.new(
            self.app.clock.now(), options.fhir_export_polls, types[0] if types else "HealthcareService"
        )
        offers = self.app.truth.offers()  # the data as of now, whatever changes while the job runs
        with self._lock:
            self._jobs[job.id] = job
            abandoned = list(self._jobs)[:-_KEPT_JOBS]
        for old_id in abandoned:  # jobs never deleted by their clients
            self._drop_job(old_id)
        builder = threading.Thread(
            target=build_export,
            args=(job, offers),
            kwargs={
                "directory": self._work_dir / job.id,
                "profile": profile,
                "regions": frozenset(regions) if regions is not None else None,
                "mapper": self.mapper(),
                "file_format": options.fhir_export_format,
                "layout": options.fhir_export_layout,
                "per_file": options.fhir_export_file_resources,
                "base_url": request.base_url,
                "stopping": self._stopping,
            },
            name=f"rorclient-sandbox-export-{job.id[:8]}",
            daemon=True,
        )
        builder.start()
        location = f"{request.base_url}/$export-poll-status?_jobId={job.id}"
        return Reply(options.fhir_kickoff_status, _FHIR_JSON, b"", headers=[("Content-Location", location)])

    def _status(self, request: FhirRequest) -> Reply:
        job_id = dict(request.query).get("_jobId", "")
        if request.method == "DELETE":
            if not self._drop_job(job_id):
                return outcome_reply(404, "not-found", f"no export job {job_id!r}")
            return Reply(202, _FHIR_JSON, b"")
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            return outcome_reply(404, "not-found", f"no export job {job_id!r}")
        if request.method != "GET":
            return outcome_reply(405, "not-supported", f"{request.method} is not supported here")
        with job.lock:
            status, error = job.status, job.error
            waiting = status == "building" or job.polls_left > 0
            if waiting and job.polls_left > 0:
                job.polls_left -= 1
        if status == "failed":
            return outcome_reply(500, "processing", error or "the export failed")
        if waiting:
            progress = f"Build in progress - {job.written} resources written"
            headers = [("X-Progress", progress), ("Retry-After", str(self.options.fhir_poll_retry_after))]
            return Reply(202, _FHIR_JSON, b"", headers=headers)
        request_url = f"{request.base_url}/$export"
        return _fhir(200, job.manifest(request.base_url, request_url), content_type="application/json")

    def _drop_job(self, job_id: str) -> bool:
        """Forget a job and delete its files (a build still running stops); ``False`` if unknown."""
        with self._lock:
            job = self._jobs.pop(job_id, None)
        if job is None:
            return False
        job.deleted = True
        with job.lock:
            outputs = list(job.outputs)
        for output in outputs:
            output.path.unlink(missing_ok=True)
        return True

    def _download(self, path: str) -> Reply:
        parts = path.removeprefix("/$export-file/").split("/")
        with self._lock:
            job = self._jobs.get(parts[0]) if len(parts) == 2 else None
        output = next((o for o in job.outputs if o.path.name == parts[1]), None) if job is not None else None
        if job is None or output is None or not output.path.exists():
            return outcome_reply(404, "not-found", "no such export file (deleted or never made)")
        size = output.path.stat().st_size
        content_type = (
            "application/fhir+ndjson" if output.path.suffix == ".ndjson" else "application/fhir+json"
        )
        file = ExtractionFile(
            path=output.path,
            size=size,
            etag=f'"{job.id}-{output.path.name}"',
            last_modified=job.transaction_time,
            content_type=content_type,
            filename=output.path.name,
            version=0,
        )
        return Reply(200, content_type, file=file, length=size, operation="fhir_download")

    # -- misc ---------------------------------------------------------------------------------------

    def _metadata(self) -> Reply:
        resources = [
            {"type": kind, "interaction": [{"code": "read"}, {"code": "search-type"}]}
            for kind in sorted(_TYPES)
        ]
        body = {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "kind": "instance",
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json"],
            "software": {"name": "rorclient sandbox"},
            "rest": [
                {
                    "mode": "server",
                    "resource": resources,
                    "operation": [
                        {
                            "name": "export",
                            "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                        }
                    ],
                }
            ],
        }
        return _fhir(200, body)

    def _now(self) -> dt.datetime:
        return self.app.clock.now().replace(tzinfo=ROR_ZONE)


def _filter_regions(value: str) -> set[str]:
    """Region codes of a ``_typeFilter`` such as ``HealthcareService?_tag=<TRE_R30>|11,<TRE_R30>|27``."""
    resource_type, _, query = value.partition("?")
    if resource_type not in _TYPES or not query:
        raise SearchError(f"_typeFilter {value!r}: expected <Type>?_tag=...")
    regions: set[str] = set()
    for name, tokens in parse_qsl(query, keep_blank_values=True):
        if name != "_tag":
            raise SearchError(f"_typeFilter: only _tag (the region) is supported, not {name!r}")
        for token in tokens.split(","):
            system, bar, code = token.rpartition("|")
            if not bar or system != REGION_TAG_SYSTEM or not code:
                raise SearchError(f"_typeFilter: {token!r} is not a region tag ({REGION_TAG_SYSTEM}|<code>)")
            regions.add(code)
    return regions


def _bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "")
    return value[7:].strip() if value[:7].lower() == "bearer " else None


def _fhir(status: int, value: Any, *, content_type: str = _FHIR_JSON) -> Reply:
    return Reply(status, content_type, _json_bytes(value))


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")
