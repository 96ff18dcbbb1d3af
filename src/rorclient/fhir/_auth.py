"""OAuth2 ``client_credentials`` tokens for the ROR FHIR API (digest §6): a secret, or mutual TLS.

Profile 0 sends ``client_id`` + ``client_secret``; profiles 1-4 send ``client_id`` alone over a TLS
connection presenting the IGC-Santé certificate (RFC 8705), which the shared :class:`HttpSession` does
whenever it was built on the certificate's context. The token is cached and fetched again shortly
before it expires (``expires_in``, else the JWT's ``exp``, else a minute) and once after the API
refused it (401). The secret and the tokens never reach a log line, a ``repr`` or an error message.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from pydantic import SecretStr

from rorclient.fhir.errors import FhirAuthError, FhirTransientError
from rorclient.ror._http import BUSY_STATUSES, HttpReply, HttpSession, busy_error
from rorclient.ror._retry import RetryPolicy, retry_call
from rorclient.ror.errors import safe_url

__all__ = ["TokenSource"]

_log = logging.getLogger("rorclient.fhir")

#: Lifetime assumed when the server gives neither ``expires_in`` nor a JWT ``exp``.
DEFAULT_LIFETIME = 60.0
_OPERATION = "FHIR token"


class TokenSource:
    """Bearer tokens from ``token_url`` for ``client_id``; thread-safe."""

    def __init__(
        self,
        session: HttpSession,
        *,
        token_url: str,
        client_id: str,
        client_secret: SecretStr | None,
        retry: RetryPolicy,
        renew_margin: float = 10.0,
        timeout: float | None = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self._retry = retry
        self._renew_margin = renew_margin
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._token: SecretStr | None = None
        self._renew_at = 0.0
        self.fetched = 0
        """How many tokens were fetched (for tests and diagnostics)."""

    def __repr__(self) -> str:
        kind = "secret" if self._secret is not None else "mtls"
        url = safe_url(self.token_url)
        return f"TokenSource(token_url={url!r}, client_id={self.client_id!r}, auth={kind!r})"

    def token(self) -> str:
        """A token valid for at least the renewal margin (fetched if needed)."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._fetch()
            assert self._token is not None
            return self._token.get_secret_value()

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (the API refused it): the next :meth:`token` fetches a new one. A token
        already replaced by another thread is left alone."""
        with self._lock:
            if self._token is not None and self._token.get_secret_value() == token:
                self._token = None

    def _fetch(self) -> None:
        started = self._clock()
        reply = retry_call(self._request, self._retry, operation=_OPERATION)
        access_token, lifetime = _parse(reply, self._scrub)
        # Renew ``renew_margin`` seconds before expiry, or halfway through a very short lifetime.
        margin = min(self._renew_margin, lifetime / 2)
        self._token = SecretStr(access_token)
        self._renew_at = started + lifetime - margin
        self.fetched += 1
        _log.debug("FHIR token fetched from %s, valid %.0f s", safe_url(self.token_url), lifetime)

    def _request(self) -> HttpReply:
        form = {"grant_type": "client_credentials", "client_id": self.client_id}
        if self._secret is not None:
            form["client_secret"] = self._secret.get_secret_value()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        # Transport errors name the URL without its query and never the request body (the secret).
        reply = self._session.post(
            self.token_url,
            urlencode(form).encode("ascii"),
            headers,
            operation=_OPERATION,
            total=self._timeout,
        )
        if reply.status in BUSY_STATUSES:
            raise busy_error(reply.status, reply.headers, _OPERATION, reply.url)
        if reply.status >= 500:
            raise FhirTransientError(
                f"{_OPERATION}: {safe_url(reply.url)} answered HTTP {reply.status}", status=reply.status
            )
        if reply.status != 200:
            raise _refusal(reply, self._scrub)
        return reply

    def _scrub(self, text: str) -> str:
        if self._secret is not None:
            secret = self._secret.get_secret_value()
            if secret:
                text = text.replace(secret, "**********")
        return text


def _refusal(reply: HttpReply, scrub: Callable[[str], str]) -> FhirAuthError:
    """The token endpoint's refusal (OAuth2 ``error`` / ``error_description``), without the secret."""
    body = _json(reply.body)
    error = body.get("error") if isinstance(body, dict) else None
    description = body.get("error_description") if isinstance(body, dict) else None
    parts = [f"{_OPERATION}: {safe_url(reply.url)} refused the client (HTTP {reply.status})"]
    if isinstance(error, str):
        parts.append(scrub(error[:100]))
    if isinstance(description, str):
        parts.append(scrub(description[:300]))
    return FhirAuthError(
        ": ".join(parts), status=reply.status, error=error if isinstance(error, str) else None
    )


def _parse(reply: HttpReply, scrub: Callable[[str], str]) -> tuple[str, float]:
    body = _json(reply.body)
    where = f"{_OPERATION}: {safe_url(reply.url)}"
    if not isinstance(body, dict):
        raise FhirAuthError(f"{where} answered 200 without a JSON token")
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise FhirAuthError(f"{where} answered 200 without an access_token")
    token_type = body.get("token_type")
    if isinstance(token_type, str) and token_type.lower() != "bearer":
        raise FhirAuthError(f"{where} issued a {scrub(token_type[:30])!r} token, not a Bearer token")
    lifetime = _lifetime(body.get("expires_in"), access_token)
    return access_token, lifetime


def _lifetime(expires_in: Any, access_token: str) -> float:
    if isinstance(expires_in, int | float | str):
        try:
            seconds = float(expires_in)
        except ValueError:
            seconds = -1.0
        if 0 < seconds < 1e9:
            return seconds
    expiry = _jwt_expiry(access_token)
    if expiry is not None:
        return max(expiry - time.time(), 0.0)
    return DEFAULT_LIFETIME


def _jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (signature not checked: only used to know when to renew)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
