"""The errors the FHIR client raises, under the families of :mod:`rorclient.errors`.

::

    RemoteError (exit 7)
    └── FhirError               the FHIR server answered an error (``status``, OperationOutcome ``issues``)
        ├── FhirTransientError  ...whose issues say "try again later" (transient, throttled...) (retryable)
        ├── FhirAuthError       the token endpoint refused the client, or the API refused the token/rights
        └── FhirTruncatedError  a search result set reaches the server's limit (``limit``, ``total``)

Connection failures, timeouts and HTTP 429/502/503/504 are the retryable transport errors of
:mod:`rorclient.ror.errors` (``ServerBusyError`` carries ``Retry-After``), as for the CSD services.
Messages name the URL without its query string; they never hold a client secret or a token.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from rorclient.errors import RemoteError

__all__ = ["FhirAuthError", "FhirError", "FhirIssue", "FhirTransientError", "FhirTruncatedError"]


class FhirIssue(BaseModel):
    """One ``OperationOutcome.issue``: ``severity`` (fatal, error, warning, information), ``code`` (the FHIR
    IssueType: invalid, not-found, transient, throttled...) and the human-readable text."""

    model_config = ConfigDict(frozen=True)

    severity: str | None = None
    code: str | None = None
    diagnostics: str | None = None
    details: str | None = None
    """``details.text``, or the first coding's display/code."""

    def text(self) -> str:
        """One line describing the issue."""
        what = self.diagnostics or self.details or "(no text)"
        return f"{self.severity or '?'}/{self.code or '?'}: {what}"


class FhirError(RemoteError):
    """The FHIR server answered an error. ``status`` is the HTTP status (``None`` for an error found in a
    successful answer), ``issues`` the OperationOutcome's issues (empty when it sent none)."""

    def __init__(self, message: str, *, status: int | None = None, issues: Sequence[FhirIssue] = ()) -> None:
        super().__init__(status, message)
        self.status = status
        self.issues = tuple(issues)
        details = "; ".join(issue.text() for issue in self.issues[:3])
        rendered = f"{message} [{details}]" if details else message
        self.args = (rendered,)

    def __str__(self) -> str:
        return str(self.args[0])


class FhirTransientError(FhirError):
    """The server says the failure is temporary (issue codes ``transient``, ``lock-error``, ``no-store``,
    ``exception``, ``timeout``, ``incomplete``, ``throttled``, or a 500 without an OperationOutcome):
    the same call may succeed later."""

    retryable = True


class FhirAuthError(FhirError):
    """Authentication or authorisation failed: the token endpoint refused the client id, secret or
    certificate (``error`` is its OAuth2 error code), or the API refused a fresh token (401) or the
    access profile (403). Check the ``client_id``, the secret or certificate, and the ``Ror-*`` values."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        issues: Sequence[FhirIssue] = (),
        error: str | None = None,
    ) -> None:
        super().__init__(message, status=status, issues=issues)
        self.error = error


class FhirTruncatedError(FhirError):
    """A search would return more results than the server delivers (``limit``, 10,000 on the national
    ROR): the server's ``total`` says so, the limit was reached with pages still to come, or the server's
    OperationOutcome says the results are truncated. Nothing returned by that search is complete:
    narrow the search (a shorter ``_lastUpdated`` window, one region) or use ``$export``."""

    def __init__(
        self,
        message: str,
        *,
        resource_type: str,
        limit: int,
        total: int | None = None,
        status: int | None = None,
        issues: Sequence[FhirIssue] = (),
    ) -> None:
        super().__init__(message, status=status, issues=issues)
        self.resource_type = resource_type
        self.limit = limit
        self.total = total
