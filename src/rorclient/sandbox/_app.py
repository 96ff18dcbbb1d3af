"""What the sandbox answers, independent of HTTP transport: SOAP operations, extraction, control API."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rorclient.csd.writer import csd_bytes
from rorclient.errors import ConfigError
from rorclient.sandbox._clock import SandboxClock
from rorclient.sandbox._extraction import FORMATS, ExtractionCache, ExtractionFile, Unsatisfiable, parse_range
from rorclient.sandbox._faults import FaultInjector
from rorclient.sandbox._mutator import apply_mutations
from rorclient.sandbox._options import SandboxOptions
from rorclient.sandbox._selection import PROFILE_CODES, LectureQuery, select_establishment, select_unit
from rorclient.sandbox._soap import (
    EstablishmentRequest,
    NotifRequest,
    NotifRow,
    SoapFault,
    UnitRequest,
    fault_envelope,
    inline_error,
    notif_response,
    parse_request,
    soap_envelope,
)
from rorclient.sandbox._truth import GroundTruth
from rorclient.sandbox.mutations import Mutation

__all__ = ["Reply", "SandboxApp"]

_log = logging.getLogger("rorclient.sandbox")

SOAP_CONTENT_TYPE = "application/soap+xml; charset=UTF-8"
_JSON = "application/json"


@dataclass
class Reply:
    """An HTTP answer: a body in memory, or a byte range of an extraction file."""

    status: int
    content_type: str | None = None
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    file: ExtractionFile | None = None
    offset: int = 0
    length: int = 0
    operation: str | None = None
    """``notif``, ``lecture`` or ``extraction``: the operation faults are injected into."""

    @property
    def size(self) -> int:
        return self.length if self.file is not None else len(self.body)


class SandboxApp:
    """The sandbox's state (ground truth, clock, faults, counters) and request handling."""

    def __init__(
        self, options: SandboxOptions, truth: GroundTruth, clock: SandboxClock, work_dir: Path
    ) -> None:
        self.options = options
        self.truth = truth
        self.clock = clock
        self.faults = FaultInjector(options.fault_seed if options.fault_seed is not None else options.seed)
        profile = (
            options.extraction_profile if options.extraction_profile is not None else options.default_profile
        )
        self.extraction_cache = ExtractionCache(
            truth, work_dir / "extraction", profile=profile, writer_options=options.writer_options
        )
        self._stats_lock = threading.Lock()
        self._stats: dict[str, int] = {}
        from rorclient.sandbox._fhir import FhirFace

        self.fhir = FhirFace(self, work_dir)
        self._mutation_lock = threading.Lock()
        self._mutation_rng = random.Random(f"rorclient-sandbox-mutations:{options.seed}")  # noqa: S311

    # -- counters -------------------------------------------------------------------------------------

    def count(self, name: str, amount: int = 1) -> None:
        with self._stats_lock:
            self._stats[name] = self._stats.get(name, 0) + amount

    def stats(self) -> dict[str, int]:
        """Requests per operation (``notif``, ``lecture``, ``extraction``, ``fhir_token``, ``fhir_search``,
        ``fhir_read``, ``fhir_export``, ``fhir_status``, ``fhir_download``, ``control``, ``other``), plus
        ``soap_faults``, ``inline_errors``, ``tls_failures`` and ``fault.<kind>`` per injected fault."""
        with self._stats_lock:
            counts = dict(self._stats)
        for kind, fired in self.faults.fired().items():
            counts[f"fault.{kind}"] = fired
        return counts

    # -- changes --------------------------------------------------------------------------------------

    def mutate(
        self, count: int = 5, kinds: Sequence[str] | None = None, seed: int | None = None
    ) -> list[Mutation]:
        with self._mutation_lock:
            rng = random.Random(seed) if seed is not None else self._mutation_rng  # noqa: S311
            return apply_mutations(self.truth, count, kinds, rng, self.clock.now(), seed=self.options.seed)

    # -- SOAP -----------------------------------------------------------------------------------------

    def soap(self, body: bytes, content_type: str | None, operation: str) -> Reply:
        """Answer a SOAP POST; ``operation`` (peeked from the body) only labels counters."""
        self.count(operation)
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if media != "application/soap+xml":
            return Reply(
                415,
                "text/plain; charset=utf-8",
                f"SOAP 1.2 expects Content-Type application/soap+xml, not {media or 'none'}\n".encode(),
            )
        codes = self.options.error_codes
        try:
            request = parse_request(
                body,
                invalid_code=codes.invalid_request,
                unsupported_code=codes.unsupported,
                lenient_dates=self.options.lenient_dates,
            )
            profile = self._profile(request.profile_code)
            answer = self._answer(request.operation, profile)
        except SoapFault as fault:
            return self.fault_reply(fault.code, fault.message, subcode=fault.subcode, operation=operation)
        except Exception as exc:  # a sandbox bug must not look like a client error
            _log.exception("sandbox failed to answer a SOAP request")
            return self.fault_reply(
                codes.internal, f"internal error: {exc}", subcode="Receiver", operation=operation
            )
        return Reply(200, SOAP_CONTENT_TYPE, soap_envelope(answer), operation=operation)

    def fault_reply(
        self, code: int, message: str, *, subcode: str = "Sender", operation: str | None = None
    ) -> Reply:
        self.count("soap_faults")
        return Reply(
            self.options.fault_http_status,
            SOAP_CONTENT_TYPE,
            fault_envelope(code, message, subcode=subcode),
            operation=operation,
        )

    def _profile(self, code: str | None) -> int:
        if code is None:
            return self.options.default_profile
        if code not in PROFILE_CODES:
            known = ", ".join(sorted(PROFILE_CODES))
            raise SoapFault(
                self.options.error_codes.forbidden_profile, f"access profile {code} not served ({known})"
            )
        return PROFILE_CODES[code]

    def _answer(self, request: NotifRequest | EstablishmentRequest | UnitRequest, profile: int) -> bytes:
        if isinstance(request, NotifRequest):
            return self._notif(request)
        codes = self.options.error_codes
        if isinstance(request, UnitRequest):
            home = self.truth.unit_establishment(request.unit_id)
            offer = self.truth.offer(home) if home is not None else None
            answer = select_unit(offer, request.unit_id, profile) if offer is not None else None
            if answer is None:
                self.count("inline_errors")
                return inline_error(codes.unknown_organisation, f"unknown organisation {request.unit_id}")
        else:
            offer = self.truth.offer(request.establishment_id)
            if offer is None:
                self.count("inline_errors")
                return inline_error(
                    codes.unknown_establishment, f"unknown establishment {request.establishment_id}"
                )
            query = request.query
            if self.options.lecture_date_ref == "ignore":
                query = LectureQuery(fields=query.fields, publics=query.publics, restricted=query.restricted)
            answer = select_establishment(offer, query, profile)
        return csd_bytes(
            answer, root="careServicesResponse", options=self.options.writer_options, xml_declaration=False
        )

    def _notif(self, request: NotifRequest) -> bytes:
        since = request.date_ref or dt.datetime.min
        rows = []
        for summary in self.truth.changed_since(since):
            if request.fields and not summary.removed and not summary.fields & request.fields:
                continue
            if request.publics and not summary.removed and not summary.publics & request.publics:
                continue
            fields = summary.fields & request.fields if request.fields else summary.fields
            rows.append(NotifRow(summary.id, tuple(sorted(fields))))
        return notif_response(rows)

    # -- extraction -----------------------------------------------------------------------------------

    def extraction(self, query: Mapping[str, str], headers: Mapping[str, str], *, head: bool) -> Reply:
        """Answer a GET (or HEAD) of the extraction: ``?format=xml|gzip|zip``, ETag, Range, If-Range
        (``headers`` keyed by lower-case names)."""
        self.count("extraction")
        fmt = query.get("format", "xml") or "xml"
        if fmt not in FORMATS:
            message = f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}\n"
            return Reply(400, "text/plain; charset=utf-8", message.encode(), operation="extraction")
        file = self.extraction_cache.get(fmt, wait=self.options.extraction_wait)
        if file is None:
            retry = str(max(1, round(self.options.extraction_wait)))
            reply = Reply(
                503, "text/plain; charset=utf-8", b"the extraction is being built\n", operation="extraction"
            )
            reply.headers.append(("Retry-After", retry))
            return reply
        common = [
            ("ETag", file.etag),
            ("Last-Modified", email.utils.format_datetime(file.last_modified, usegmt=True)),
            ("Accept-Ranges", "bytes"),
            ("Content-Disposition", f'attachment; filename="{file.filename}"'),
            ("Cache-Control", "no-cache"),
        ]
        if_none_match = headers.get("if-none-match")
        if if_none_match is not None and _etag_listed(if_none_match, file.etag, weak=True):
            return Reply(304, None, headers=common, operation="extraction")
        first, last = 0, file.size - 1
        status = 200
        range_header = headers.get("range")
        if range_header is not None and _if_range_holds(headers.get("if-range"), file):
            try:
                selected = parse_range(range_header, file.size)
            except Unsatisfiable:
                return Reply(
                    416,
                    "text/plain; charset=utf-8",
                    b"requested range not satisfiable\n",
                    headers=[*common, ("Content-Range", f"bytes */{file.size}")],
                    operation="extraction",
                )
            if selected is not None:
                first, last = selected
                status = 206
                common.append(("Content-Range", f"bytes {first}-{last}/{file.size}"))
        length = max(0, last - first + 1)
        if head:
            return Reply(
                status,
                file.content_type,
                headers=[*common, ("Content-Length", str(length))],
                operation="extraction",
            )
        return Reply(
            status,
            file.content_type,
            headers=common,
            file=file,
            offset=first,
            length=length,
            operation="extraction",
        )

    # -- control API ----------------------------------------------------------------------------------

    def control(self, method: str, path: str, body: bytes) -> Reply:
        """The ``/_sandbox/...`` JSON API (test mode only)."""
        self.count("control")
        route = path.removeprefix("/_sandbox").strip("/")
        try:
            payload: Any = json.loads(body) if body.strip() else {}
            if not isinstance(payload, dict):
                raise ConfigError("the request body must be a JSON object")
            result = self._control(method, route, payload)
        except (ConfigError, ValueError, TypeError) as exc:
            return _json(400, {"error": str(exc)})
        if result is None:
            return _json(404, {"error": f"no control endpoint {method} /_sandbox/{route}"})
        return _json(200, result)

    def _control(self, method: str, route: str, payload: dict[str, Any]) -> Any:
        if (method, route) == ("GET", "status"):
            return {
                "establishments": self.truth.count(),
                "version": self.truth.version,
                "now": self.clock.now().isoformat(),
            }
        if route == "clock" and method in ("GET", "POST"):
            if method == "POST" and "set" in payload:
                self.clock.set(dt.datetime.fromisoformat(str(payload["set"])))
            elif method == "POST":
                self.clock.advance(seconds=float(payload.get("advance", 0)))
            return {"now": self.clock.now().isoformat()}
        if (method, route) == ("POST", "mutate"):
            kinds = payload.get("kinds")
            mutations = self.mutate(
                int(payload.get("count", 5)), list(kinds) if kinds else None, payload.get("seed")
            )
            return [mutation.model_dump(mode="json") for mutation in mutations]
        if (method, route) == ("POST", "remove"):
            removed = self.truth.remove(str(payload["establishment"]), self.clock.now())
            return {"removed": removed}
        if (method, route) == ("GET", "snapshot"):
            return self.truth.snapshot()
        if (method, route) == ("GET", "stats"):
            return self.stats()
        if route == "faults":
            return self._faults(method, payload)
        if route.startswith("faults/") and method == "DELETE":
            return {"removed": self.faults.remove(int(route.removeprefix("faults/")))}
        return None

    def _faults(self, method: str, payload: dict[str, Any]) -> Any:
        if method == "GET":
            return [rule.model_dump(mode="json") for rule in self.faults.rules()]
        if method == "DELETE":
            self.faults.clear()
            return {"cleared": True}
        if method == "POST":
            rule_id = self.faults.add(
                str(payload.get("operation", "*")),
                str(payload.get("kind", "503")),
                rate=payload.get("rate"),
                count=payload.get("count"),
                delay=float(payload.get("delay", 0.05)),
                retry_after=int(payload.get("retry_after", 1)),
            )
            return {"id": rule_id}
        return None


def _json(status: int, value: Any) -> Reply:
    return Reply(status, _JSON, json.dumps(value, ensure_ascii=False).encode("utf-8") + b"\n")


def _etag_listed(header: str, etag: str, *, weak: bool) -> bool:
    tags = [tag.strip() for tag in header.split(",")]
    if "*" in tags:
        return True
    if weak:
        tags = [tag.removeprefix("W/") for tag in tags]
    return etag in tags


def _if_range_holds(if_range: str | None, file: ExtractionFile) -> bool:
    """RFC 9110 §13.1.5: honour Range only if the validator still matches (strong comparison)."""
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith('"'):
        return value == file.etag
    if value.startswith("W/"):
        return False
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return when == file.last_modified
