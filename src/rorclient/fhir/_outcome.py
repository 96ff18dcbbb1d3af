"""Turning FHIR error answers (an HTTP status and, usually, an OperationOutcome) into typed errors."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from rorclient.errors import RorError
from rorclient.fhir.errors import FhirAuthError, FhirError, FhirIssue, FhirTransientError
from rorclient.ror._http import BUSY_STATUSES, HttpReply, busy_error
from rorclient.ror.errors import safe_url

__all__ = ["TRANSIENT_CODES", "error_for_reply", "is_truncation", "issues_of", "outcome_error"]

#: IssueType codes meaning "try again later": ``transient`` and its children in the FHIR value set.
TRANSIENT_CODES = frozenset(
    {"transient", "lock-error", "no-store", "exception", "timeout", "incomplete", "throttled"}
)

_TRUNCATION_TEXT = re.compile(r"truncat|tronqu|too many (results|resources)|10[ \u00a0.,]?000", re.IGNORECASE)
_MAX_ERROR_BODY = 1024 * 1024


def issues_of(outcome: Any) -> tuple[FhirIssue, ...]:
    """The issues of an OperationOutcome (any shape tolerated; not one → no issues)."""
    if not isinstance(outcome, Mapping) or outcome.get("resourceType") != "OperationOutcome":
        return ()
    found = []
    for raw in outcome.get("issue") or ():
        if not isinstance(raw, Mapping):
            continue
        details = raw.get("details")
        details_text = None
        if isinstance(details, Mapping):
            details_text = _text(details.get("text"))
            codings = details.get("coding")
            if (
                details_text is None
                and isinstance(codings, list)
                and codings
                and isinstance(codings[0], Mapping)
            ):
                details_text = _text(codings[0].get("display")) or _text(codings[0].get("code"))
        found.append(
            FhirIssue(
                severity=_text(raw.get("severity")),
                code=_text(raw.get("code")),
                diagnostics=_text(raw.get("diagnostics")),
                details=details_text,
            )
        )
    return tuple(found)


def is_truncation(issues: tuple[FhirIssue, ...]) -> bool:
    """Whether the issues say a result set was cut at the server's limit."""
    return any(
        issue.code == "too-costly"
        or _TRUNCATION_TEXT.search(" ".join(filter(None, (issue.diagnostics, issue.details))))
        for issue in issues
    )


def outcome_error(
    message: str, issues: tuple[FhirIssue, ...], *, status: int | None, server_error: bool = False
) -> FhirError:
    """The error for ``issues``: transient when any error issue's code is transient (or, for a 5xx
    without issues, always)."""
    failing = [issue for issue in issues if issue.severity in (None, "fatal", "error")] or list(issues)
    if any(issue.code in TRANSIENT_CODES for issue in failing) or (server_error and not issues):
        return FhirTransientError(message, status=status, issues=issues)
    return FhirError(message, status=status, issues=issues)


def error_for_reply(reply: HttpReply, operation: str) -> RorError:
    """The error an unexpected status stands for (the caller has handled the statuses it expects)."""
    where = f"{operation}: {safe_url(reply.url)}"
    if reply.status in BUSY_STATUSES:
        return busy_error(reply.status, reply.headers, operation, reply.url)
    issues = issues_of(_json_or_none(reply.body))
    message = f"{where} answered HTTP {reply.status}"
    if reply.status in (401, 403):
        return FhirAuthError(message, status=reply.status, issues=issues)
    return outcome_error(message, issues, status=reply.status, server_error=reply.status >= 500)


def _json_or_none(body: bytes) -> Any:
    if not body or len(body) > _MAX_ERROR_BODY:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:500]
    return None
