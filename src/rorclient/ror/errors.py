"""The errors the ROR web-service client raises, under the families of :mod:`rorclient.errors` (where
they are defined: one hierarchy; importable from here too).

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

from rorclient.errors import (
    CertificateRevokedError,
    ClientCertificateRejectedError,
    ConnectError,
    HttpStatusError,
    IncompleteResponseError,
    RequestTimeoutError,
    ServerBusyError,
    ServerCertificateError,
    ServerFaultError,
    SoapFaultError,
    UnexpectedResponseError,
    UnknownClientCaError,
)

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
    "safe_url",
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
