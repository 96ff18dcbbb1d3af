"""The errors the ROR web-service client raises, under the families of :mod:`rorclient.errors`.

Every failure of a call is one of these (never an ``httpx``, ``ssl``, ``zeep`` or ``lxml`` exception).
``retryable`` says whether the same call may succeed later; the client has already retried those as far
as its :class:`~rorclient.ror.RetryPolicy` allows when you see one::

    TransportError (retryable, exit 6)
    ├── ConnectError              no connection, or it was reset/closed
    ├── RequestTimeoutError       connect/read/write/pool timeout, or the per-call deadline passed
    ├── IncompleteResponseError   the body stopped before its announced end
    └── ServerBusyError           HTTP 429, 502, 503, 504 (``status``, ``retry_after``)
    RemoteError (exit 7)
    ├── HttpStatusError           any other unexpected HTTP status (401, 403, 404, bare 500...)
    ├── UnexpectedResponseError   a success status whose body is not a SOAP/XML answer
    └── SoapFaultError            SOAP 1.2 fault, soap:Sender: the request is at fault (``code``, ``message``)
        └── ServerFaultError      SOAP 1.2 fault, soap:Receiver: the server is at fault (retryable)
    TlsError (exit 5, and per class)
    ├── ServerCertificateError         57  the server's certificate is untrusted or for another host
    └── ClientCertificateRejectedError 58  the server refused the client certificate in the handshake
        ├── UnknownClientCaError       59  ...because it does not trust the certificate's CA
        └── CertificateRevokedError    60  ...because the certificate is revoked

Certificate problems rorclient detects before any connection (expired, not yet valid, seal-only, wrong
password, key mismatch...) are the :mod:`rorclient.tls` errors, exit codes 50-56.

Messages name the operation and the URL with any user-info and query string removed; they never hold a
password, a key or a request body.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from rorclient.errors import RemoteError, TlsError, TransportError

__all__ = [
    "CertificateRevokedError",
    "ClientCertificateRejectedError",
    "ConnectError",
    "HttpStatusError",
    "IncompleteResponseError",
    "RequestTimeoutError",
    "ServerBusyError",
    "ServerCertificateError",
    "ServerFaultError",
    "SoapFaultError",
    "UnexpectedResponseError",
    "UnknownClientCaError",
]


def safe_url(url: str) -> str:
    """``url`` without user-info, query string or fragment, fit for a log line or an error message."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    query = "…" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


# --------------------------------------------------------------------------------------------------------
# Transport (retryable)


class ConnectError(TransportError):
    """The server could not be reached, or closed or reset the connection."""


class RequestTimeoutError(TransportError):
    """A timeout expired: ``phase`` is ``connect``, ``read``, ``write``, ``pool`` or ``deadline`` (the
    total time allowed for one request)."""

    def __init__(self, message: str, *, phase: str) -> None:
        self.phase = phase
        super().__init__(message)


class IncompleteResponseError(TransportError):
    """The response body ended before the length the server announced (a cut connection)."""


class ServerBusyError(TransportError):
    """The server answered 429, 502, 503 or 504. ``retry_after`` is its ``Retry-After`` in seconds
    (``None`` when absent or unreadable)."""

    def __init__(self, message: str, *, status: int, retry_after: float | None) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


# --------------------------------------------------------------------------------------------------------
# Remote (the server answered, with an error)


class HttpStatusError(RemoteError):
    """The server answered an unexpected HTTP status without a SOAP fault (``status``)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(None, message)


class UnexpectedResponseError(RemoteError):
    """The server answered a success status with a body that is not the expected SOAP/XML answer."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


class SoapFaultError(RemoteError):
    """A SOAP 1.2 fault whose code is ``soap:Sender`` (or unknown): the server refused the request.

    ``code`` and ``message`` come from the ``ror:erreur`` detail when present (else the fault reason);
    ``soap_code`` is the fault code's local name (``Sender``, ``Receiver``...).
    """

    def __init__(self, code: int | None, message: str, *, soap_code: str | None) -> None:
        self.soap_code = soap_code
        super().__init__(code, message)


class ServerFaultError(SoapFaultError):
    """A SOAP 1.2 fault whose code is ``soap:Receiver``: the server failed, the request may succeed later."""

    retryable = True


# --------------------------------------------------------------------------------------------------------
# TLS (found during the handshake)


class ServerCertificateError(TlsError):
    """The server's certificate does not chain to the configured CA bundle, has expired, or names another
    host. Check ``ca_bundle`` (the IGC-Santé chain) and the URL. Exit code 57."""

    exit_code = 57


class ClientCertificateRejectedError(TlsError):
    """The server refused the client certificate during the TLS handshake (``alert`` is the TLS alert).
    Exit code 58."""

    exit_code = 58

    def __init__(self, message: str, *, alert: str | None = None) -> None:
        self.alert = alert
        super().__init__(message)


class UnknownClientCaError(ClientCertificateRejectedError):
    """The server does not trust the authority that issued the client certificate: a certificate from
    another PKI, or a TEST certificate sent to production. Exit code 59."""

    exit_code = 59


class CertificateRevokedError(ClientCertificateRejectedError):
    """The server says the client certificate is revoked: order a new one from IGC-Santé. Exit code 60."""

    exit_code = 60
