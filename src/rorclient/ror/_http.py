"""The one HTTP client of a ROR source: mTLS, timeouts, pooling, bounded concurrency, error mapping.

Everything rorclient sends to a ROR (SOAP calls and extraction downloads) goes through one
:class:`HttpSession`, hence one ``httpx.Client`` built on the source's :class:`ssl.SSLContext`. Every
``httpx`` and ``ssl`` exception is translated here into the errors of :mod:`rorclient.ror.errors`;
no third-party exception leaves this module.

SOAP calls (:meth:`HttpSession.call`) take a leaner path when the session talks to the network with
its own TLS context: kept-alive standard-library connections (:mod:`rorclient.ror._wire`), with the
same limits, the same errors and the same answers, at a third of httpx's CPU per call.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import io
import logging
import math
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, NoReturn

import httpx

from rorclient.errors import ConfigError, RorError, TlsError, TransportError
from rorclient.ror._wire import WireConnectionError, WireDecodingError, WirePool, WireTimeout
from rorclient.ror.errors import (
    CertificateRevokedError,
    ClientCertificateRejectedError,
    ConnectError,
    IncompleteResponseError,
    RequestTimeoutError,
    ResponseTooLargeError,
    ServerBusyError,
    ServerCertificateError,
    UnknownClientCaError,
    safe_url,
)
from rorclient.ror.models import HttpHandler, HttpRequest, HttpResponse, Timeouts

__all__ = [
    "BUSY_STATUSES",
    "HttpReply",
    "HttpSession",
    "StreamedReply",
    "busy_error",
    "parse_retry_after",
]

_log = logging.getLogger("rorclient.ror")

# Small SOAP requests go out in two writes (headers, body): without TCP_NODELAY, Nagle's algorithm holds
# the second until the server's delayed ACK, adding ~40 ms to every call.
_SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]

#: Statuses that mean "busy or temporarily unavailable, come back later".
BUSY_STATUSES = frozenset({429, 502, 503, 504})


#: An answer body up to this size stays in memory; a larger one goes to an anonymous temporary file
#: (created 0600, deleted when closed), so that a large Lecture answer is parsed from disk as it is read
#: instead of being held whole, twice, in memory.
SPOOL_IN_MEMORY = 2 * 1024 * 1024


@dataclass(frozen=True)
class HttpReply:
    """A complete answer: status, headers (lower-case names) and the body, spooled (:meth:`open`)."""

    status: int
    headers: Mapping[str, str]
    content: IO[bytes]
    size: int
    url: str

    @property
    def body(self) -> bytes:
        """The whole body in memory: for small answers (faults, Notif) only; large ones use :meth:`open`."""
        self.content.seek(0)
        return self.content.read()

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes of the body."""
        self.content.seek(0)
        return self.content.read(size)

    def open(self) -> IO[bytes]:
        """The body as a binary file, from its start."""
        self.content.seek(0)
        return self.content

    def close(self) -> None:
        """Release the body (its temporary file, when it spilled to disk)."""
        self.content.close()


class StreamedReply:
    """An answer whose body is read chunk by chunk (downloads); errors are already translated."""

    def __init__(self, response: httpx.Response, session: HttpSession, operation: str) -> None:
        self._response = response
        self._session = session
        self._operation = operation
        self.status = response.status_code
        self.headers: Mapping[str, str] = {name.lower(): value for name, value in response.headers.items()}
        self.url = str(response.url)

    def iter_raw(self) -> Iterator[bytes]:
        """The body as sent (no content decoding), in chunks."""
        try:
            yield from self._response.iter_raw()
        except httpx.HTTPError as exc:
            raise self._session.translate(exc, self._operation, self.url) from exc

    def iter_bytes(self) -> Iterator[bytes]:
        """The body with its ``Content-Encoding`` (gzip...) undone, in chunks."""
        try:
            yield from self._response.iter_bytes()
        except httpx.HTTPError as exc:
            raise self._session.translate(exc, self._operation, self.url) from exc


class HttpSession:
    """One pooled ``httpx.Client`` with the source's TLS context, timeouts and concurrency bound.

    At most ``max_concurrency`` requests run at once (further callers wait); the pool keeps as many
    connections alive. ``client_subject`` names the client certificate in TLS error messages.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None,
        timeouts: Timeouts,
        max_concurrency: int,
        user_agent: str,
        client_subject: str | None = None,
        max_response_bytes: int = 256 * 1024 * 1024,
        handler: HttpHandler | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.timeouts = timeouts
        self._client_subject = client_subject
        self._max_response_bytes = max_response_bytes
        self._slots = threading.BoundedSemaphore(max_concurrency)
        verify: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        limits = httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency)
        self._wire = (
            WirePool(ssl_context=ssl_context, user_agent=user_agent)
            if handler is None and ssl_context is not None
            else None
        )
        self._client = httpx.Client(
            timeout=_httpx_timeout(timeouts),
            headers={"User-Agent": user_agent},
            follow_redirects=False,
            trust_env=False,
            transport=_in_process(handler)
            if handler is not None
            else httpx.HTTPTransport(
                verify=verify, limits=limits, trust_env=False, socket_options=_SOCKET_OPTIONS
            ),
        )

    def close(self) -> None:
        """Close every pooled connection."""
        if self._wire is not None:
            self._wire.close()
        self._client.close()

    def call(
        self, url: str, body: bytes, headers: Mapping[str, str], *, operation: str, total: float | None
    ) -> HttpReply:
        """:meth:`post` for a SOAP call: over the leaner connections when the session has them."""
        if self._wire is None or not url.lower().startswith(("https://", "http://")):
            return self.post(url, body, headers, operation=operation, total=total)
        deadline = time.monotonic() + total if total is not None else None
        started = time.perf_counter()
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, prefix="rorclient-answer-")  # noqa: SIM115 - handed to the reply
        timeouts = self.timeouts

        def bounded(value: float | None) -> Callable[[], float | None]:
            def limit() -> float | None:
                if deadline is None:
                    return value
                left = max(deadline - time.monotonic(), 0.001)
                return left if value is None else min(value, left)

            return limit

        def on_chunk(size: int) -> None:
            if size > self._max_response_bytes:
                raise ResponseTooLargeError(
                    f"{operation}: the answer from {safe_url(url)} exceeds {self._max_response_bytes} bytes",
                    limit=self._max_response_bytes,
                )
            if deadline is not None and time.monotonic() > deadline:
                self._deadline_passed(operation, url, None)

        try:
            with self._slots:
                try:
                    reply = self._wire.exchange(
                        url,
                        body,
                        headers,
                        spool,
                        connect_timeout=bounded(timeouts.connect),
                        write_timeout=bounded(timeouts.write),
                        read_timeout=bounded(timeouts.read),
                        on_chunk=on_chunk,
                    )
                except (OSError, ValueError, http.client.HTTPException) as exc:
                    if deadline is not None and time.monotonic() >= deadline and isinstance(exc, WireTimeout):
                        self._deadline_passed(operation, url, total)
                    raise self._translate_wire(exc, operation, url) from exc
        except BaseException:
            spool.close()
            raise
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug(
                "%s POST %s -> %d (%d bytes, %.0f ms)",
                operation,
                safe_url(url),
                reply.status,
                reply.size,
                (time.perf_counter() - started) * 1000,
            )
        spool.seek(0)
        content: IO[bytes] = spool
        if reply.size <= SPOOL_IN_MEMORY:
            content = io.BytesIO(spool.read())
            spool.close()
        return HttpReply(
            status=reply.status, headers=reply.headers, content=content, size=reply.size, url=url
        )

    def _translate_wire(self, exc: BaseException, operation: str, url: str) -> RorError:
        """The rorclient error standing for an exception of :mod:`rorclient.ror._wire` (as
        :meth:`translate` does for httpx's)."""
        where = f"{operation}: {safe_url(url)}"
        tls = _tls_error(exc, where, self._client_subject)
        if tls is not None:
            return tls
        if isinstance(exc, WireTimeout):
            return RequestTimeoutError(f"{where}: {exc.phase} timeout", phase=exc.phase)
        if isinstance(exc, http.client.HTTPException):
            return IncompleteResponseError(f"{where}: the server closed the connection early ({exc!r})")
        if isinstance(exc, WireDecodingError):
            return IncompleteResponseError(f"{where}: the body cannot be decoded ({exc})")
        if isinstance(exc, WireConnectionError) and exc.phase == "connect":
            return ConnectError(f"{where}: cannot connect ({_first_line(exc)})")
        if isinstance(exc, OSError):
            return ConnectError(f"{where}: connection lost ({_first_line(exc)})")
        return TransportError(f"{where}: {type(exc).__name__}: {_first_line(exc)}")

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, operation: str, total: float | None
    ) -> HttpReply:
        """POST ``body`` and read the whole answer within ``total`` seconds (``None``: no overall limit)."""
        return self.request("POST", url, headers, body=body, operation=operation, total=total)

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        *,
        body: bytes | None = None,
        operation: str,
        total: float | None,
    ) -> HttpReply:
        """Send ``method`` (with ``body``, if any) and read the whole answer within ``total`` seconds."""
        deadline = time.monotonic() + total if total is not None else None
        started = time.perf_counter()
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, prefix="rorclient-answer-")  # noqa: SIM115 - handed to the reply
        try:
            with self._slots:
                try:
                    timeout = _httpx_timeout(self.timeouts, deadline)
                    with self._client.stream(
                        method, url, content=body, headers=dict(headers), timeout=timeout
                    ) as r:
                        size = self._read_body(r, spool, deadline, operation, url)
                except httpx.HTTPError as exc:
                    if (
                        deadline is not None
                        and time.monotonic() >= deadline
                        and isinstance(exc, httpx.TimeoutException)
                    ):
                        self._deadline_passed(operation, url, total)
                    raise self.translate(exc, operation, url) from exc
        except BaseException:
            spool.close()
            raise
        _log.debug(
            "%s %s %s -> %d (%d bytes, %.0f ms)",
            operation,
            method,
            safe_url(url),
            r.status_code,
            size,
            (time.perf_counter() - started) * 1000,
        )
        content: IO[bytes] = spool
        if size <= SPOOL_IN_MEMORY:
            # Still in memory: hand over plain bytes, so a caller that only reads ``body`` leaves no
            # temporary file to close; a larger answer keeps its private file until ``close()``.
            spool.seek(0)
            content = io.BytesIO(spool.read())
            spool.close()
        return HttpReply(
            status=r.status_code,
            headers={name.lower(): value for name, value in r.headers.items()},
            content=content,
            size=size,
            url=url,
        )

    def _read_body(
        self, response: httpx.Response, out: IO[bytes], deadline: float | None, operation: str, url: str
    ) -> int:
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self._max_response_bytes:
                raise ResponseTooLargeError(
                    f"{operation}: the answer from {safe_url(url)} exceeds {self._max_response_bytes} bytes",
                    limit=self._max_response_bytes,
                )
            out.write(chunk)
            if deadline is not None and time.monotonic() > deadline:
                self._deadline_passed(operation, url, None)
        return size

    def _deadline_passed(self, operation: str, url: str, total: float | None) -> NoReturn:
        limit = self.timeouts.total if total is None else total
        raise RequestTimeoutError(
            f"{operation}: {safe_url(url)} did not answer completely within {limit:g} s", phase="deadline"
        )

    @contextlib.contextmanager
    def stream(self, url: str, headers: Mapping[str, str], *, operation: str) -> Iterator[StreamedReply]:
        """GET ``url`` and yield the answer before its body is read (for downloads)."""
        with self._slots:
            try:
                with self._client.stream("GET", url, headers=dict(headers)) as response:
                    yield StreamedReply(response, self, operation)
            except httpx.HTTPError as exc:
                raise self.translate(exc, operation, url) from exc

    def translate(self, exc: httpx.HTTPError, operation: str, url: str) -> RorError:
        """The rorclient error standing for ``exc``."""
        where = f"{operation}: {safe_url(url)}"
        tls = _tls_error(exc, where, self._client_subject)
        if tls is not None:
            return tls
        if isinstance(exc, httpx.TimeoutException):
            phase = {
                httpx.ConnectTimeout: "connect",
                httpx.ReadTimeout: "read",
                httpx.WriteTimeout: "write",
                httpx.PoolTimeout: "pool",
            }.get(type(exc), "read")
            return RequestTimeoutError(f"{where}: {phase} timeout", phase=phase)
        if isinstance(exc, httpx.RemoteProtocolError):
            return IncompleteResponseError(f"{where}: the server closed the connection early ({exc})")
        if isinstance(exc, httpx.ConnectError | httpx.ProxyError):
            return ConnectError(f"{where}: cannot connect ({_first_line(exc)})")
        if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.CloseError):
            return ConnectError(f"{where}: connection lost ({_first_line(exc)})")
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return ConfigError(f"{where}: not a usable http(s) URL")
        if isinstance(exc, httpx.DecodingError):
            return IncompleteResponseError(f"{where}: the body cannot be decoded ({_first_line(exc)})")
        return TransportError(f"{where}: {type(exc).__name__}: {_first_line(exc)}")


def _httpx_timeout(timeouts: Timeouts, deadline: float | None = None) -> httpx.Timeout:
    """The per-step timeouts, none of them longer than what is left before ``deadline``."""

    def bounded(value: float | None) -> float | None:
        if deadline is None:
            return value
        left = max(deadline - time.monotonic(), 0.001)
        return left if value is None else min(value, left)

    return httpx.Timeout(
        connect=bounded(timeouts.connect),
        read=bounded(timeouts.read),
        write=bounded(timeouts.write),
        pool=bounded(timeouts.pool),
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


# --------------------------------------------------------------------------------------------------------
# TLS

_REJECTIONS: tuple[tuple[str, type[ClientCertificateRejectedError], str], ...] = (
    (
        "ALERT_UNKNOWN_CA",
        UnknownClientCaError,
        "does not trust the authority that issued the client certificate",
    ),
    ("ALERT_CERTIFICATE_REVOKED", CertificateRevokedError, "says the client certificate is revoked"),
    ("ALERT_CERTIFICATE_EXPIRED", ClientCertificateRejectedError, "says the client certificate has expired"),
    (
        "ALERT_UNSUPPORTED_CERTIFICATE",
        ClientCertificateRejectedError,
        "refused the client certificate as unfit for TLS client authentication",
    ),
    ("ALERT_BAD_CERTIFICATE", ClientCertificateRejectedError, "refused the client certificate as invalid"),
    ("ALERT_CERTIFICATE_UNKNOWN", ClientCertificateRejectedError, "could not verify the client certificate"),
    (
        "ALERT_CERTIFICATE_REQUIRED",
        ClientCertificateRejectedError,
        "requires a client certificate (configure client_cert for this source)",
    ),
    ("ALERT_ACCESS_DENIED", ClientCertificateRejectedError, "denied access to the client certificate"),
    (
        "ALERT_HANDSHAKE_FAILURE",
        ClientCertificateRejectedError,
        "aborted the TLS handshake (no acceptable client certificate or cipher)",
    ),
)


def _tls_error(exc: BaseException, where: str, subject: str | None) -> TlsError | None:
    ssl_error = _find_ssl_error(exc)
    text = " ".join(filter(None, (str(ssl_error) if ssl_error else None, str(exc))))
    if isinstance(ssl_error, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        reason = getattr(ssl_error, "verify_message", None) or "verification failed"
        return ServerCertificateError(
            f"{where}: the server's certificate cannot be trusted ({reason}); "
            "check ca_bundle and the host name"
        )
    for marker, error_class, explanation in _REJECTIONS:
        if marker in text:
            certificate = f" ({subject})" if subject else ""
            return error_class(f"{where}: the server {explanation}{certificate}", alert=marker.lower())
    if ssl_error is not None:
        reason = getattr(ssl_error, "reason", None) or type(ssl_error).__name__
        return TlsError(f"{where}: TLS failure ({reason})")
    return None


def _find_ssl_error(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


# --------------------------------------------------------------------------------------------------------
# Retry-After


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date; ``None`` if unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(moment.timestamp() - (time.time() if now is None else now), 0.0)


def busy_error(status: int, headers: Mapping[str, str], operation: str, url: str) -> ServerBusyError:
    """The error for a 429/502/503/504 answer."""
    retry_after = parse_retry_after(headers.get("retry-after"))
    hint = f", retry after {retry_after:g} s" if retry_after is not None else ""
    return ServerBusyError(
        f"{operation}: {safe_url(url)} answered HTTP {status}{hint}", status=status, retry_after=retry_after
    )


def _in_process(handler: HttpHandler) -> httpx.BaseTransport:
    """An httpx transport that asks ``handler`` instead of the network; the handler's ``OSError`` and
    ``TimeoutError`` become the httpx errors the network would give, translated like them."""

    def answer(request: httpx.Request) -> httpx.Response:
        seen = HttpRequest(
            method=request.method,
            url=str(request.url),
            headers={name.lower(): value for name, value in request.headers.items()},
            content=request.read(),
        )
        try:
            response: HttpResponse = handler(seen)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        if response.chunks is None:
            return httpx.Response(response.status, headers=response.headers, content=response.content)
        return httpx.Response(response.status, headers=response.headers, stream=_Chunks(response.chunks))

    return httpx.MockTransport(answer)


class _Chunks(httpx.SyncByteStream):
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._chunks:
                if not isinstance(chunk, bytes):
                    raise TypeError(f"HttpResponse.chunks must yield bytes, not {type(chunk).__name__}")
                yield chunk
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise httpx.RemoteProtocolError(f"body cut short: {exc}") from exc
