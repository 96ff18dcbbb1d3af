"""Small HTTP/1.1 exchanges over pooled standard-library connections (the SOAP calls' fast path).

A delta cycle makes hundreds of small SOAP calls; through ``httpx`` each one cost about 0.6 ms of
client CPU (request and header objects, URL parsing, the pool's bookkeeping), three times what the
same exchange costs on a kept-alive ``http.client`` connection. :class:`WirePool` keeps such
connections (one per concurrent call at most, reused last-in first-out, dropped when idle for
:data:`KEEPALIVE_EXPIRY` seconds or when the server has closed them) and raises only the standard
library's exceptions: :class:`~rorclient.ror._http.HttpSession` translates them like httpx's.
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO
from urllib.parse import urlsplit

__all__ = [
    "KEEPALIVE_EXPIRY",
    "WireConnectionError",
    "WireDecodingError",
    "WirePool",
    "WireReply",
    "WireTimeout",
]

#: An idle connection older than this is closed rather than reused (httpx's default keep-alive expiry).
KEEPALIVE_EXPIRY = 5.0
_CHUNK = 64 * 1024


class WireTimeout(TimeoutError):
    """A network step took longer than its limit; ``phase`` is ``connect``, ``write`` or ``read``."""

    def __init__(self, phase: str) -> None:
        super().__init__(f"{phase} timed out")
        self.phase = phase


class WireDecodingError(ValueError):
    """The body's ``Content-Encoding`` cannot be undone."""


class WireConnectionError(ConnectionError):
    """The connection failed (the cause says how); ``phase`` is ``connect``, ``write`` or ``read``."""

    def __init__(self, phase: str, cause: OSError) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.phase = phase


@dataclass(frozen=True)
class WireReply:
    status: int
    headers: dict[str, str]
    """Lower-case names; a repeated header's values joined with ``, ``."""
    size: int
    """Bytes of the body after its content encoding was undone."""


class _Connection:
    def __init__(self, connection: http.client.HTTPConnection) -> None:
        self.http = connection
        self.idle_since = time.monotonic()

    def usable(self) -> bool:
        """Idle recently and not closed (nor written to) by the server since its last answer."""
        sock = self.http.sock
        if sock is None or time.monotonic() - self.idle_since > KEEPALIVE_EXPIRY:
            return False
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return False
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        return not poller.poll(0)

    def close(self) -> None:
        self.http.close()


class WirePool:
    """Kept-alive connections to the origin of ``url``s given to :meth:`exchange` (one origin per pool).

    Thread-safe; the caller bounds how many exchanges run at once. ``ssl_context`` is used for
    ``https://`` URLs.
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None, user_agent: str) -> None:
        self._context = ssl_context
        self._user_agent = user_agent
        self._idle: list[_Connection] = []
        self._origin: tuple[str, str, int] | None = None
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def exchange(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        out: IO[bytes],
        *,
        connect_timeout: Callable[[], float | None],
        write_timeout: Callable[[], float | None],
        read_timeout: Callable[[], float | None],
        on_chunk: Callable[[int], None],
    ) -> WireReply:
        """POST ``body`` to ``url`` and write the decoded answer body to ``out``; ``on_chunk(size so
        far)`` after each chunk (it may raise to stop). The timeouts are asked for when each step
        starts (they may shrink with a deadline)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        origin = (scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 80))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = self._checkout(origin, connect_timeout())
        phase = "connect"
        try:
            if connection.http.sock is None:
                connection.http.connect()
            sock = connection.http.sock
            assert sock is not None
            phase = "write"
            sock.settimeout(write_timeout())
            connection.http.putrequest("POST", target, skip_accept_encoding=True)
            connection.http.putheader("User-Agent", self._user_agent)
            connection.http.putheader("Accept-Encoding", "gzip, deflate")
            for name, value in headers.items():
                connection.http.putheader(name, value)
            connection.http.putheader("Content-Length", str(len(body)))
            connection.http.endheaders(body)
            phase = "read"
            sock.settimeout(read_timeout())
            response = connection.http.getresponse()
            reply_headers: dict[str, str] = {}
            for name, value in response.getheaders():
                key = name.lower()
                reply_headers[key] = f"{reply_headers[key]}, {value}" if key in reply_headers else value
            size = _read_body(response, reply_headers.get("content-encoding", ""), out, on_chunk)
            reusable = not response.will_close
        except TimeoutError as exc:
            connection.close()
            raise WireTimeout(phase) from exc
        except http.client.HTTPException:  # an answer cut short or malformed (RemoteDisconnected too)
            connection.close()
            raise
        except OSError as exc:  # ssl.SSLError included: the translation finds it as the cause
            if phase == "write":
                # The server may have said why before it closed (TLS 1.3 sends its verdict on the client
                # certificate after the handshake): read it rather than report a broken pipe.
                reason = _pending_error(connection)
                if reason is not None:
                    connection.close()
                    raise WireConnectionError("read", reason) from reason
            connection.close()
            raise WireConnectionError(phase, exc) from exc
        except BaseException:
            connection.close()
            raise
        if reusable:
            self._checkin(connection)
        else:
            connection.close()
        return WireReply(status=response.status, headers=reply_headers, size=size)

    def _checkout(self, origin: tuple[str, str, int], timeout: float | None) -> _Connection:
        with self._lock:
            if self._origin != origin:  # another origin: the idle connections are of no use
                stale, self._idle, self._origin = self._idle, [], origin
            else:
                stale = []
            found: _Connection | None = None
            while self._idle:
                candidate = self._idle.pop()
                if candidate.usable():
                    found = candidate
                    break
                stale.append(candidate)
        for connection in stale:
            connection.close()
        if found is not None:
            return found
        scheme, host, port = origin
        if scheme == "https":
            secure = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._context)
            return _Connection(secure)
        return _Connection(http.client.HTTPConnection(host, port, timeout=timeout))

    def _checkin(self, connection: _Connection) -> None:
        connection.idle_since = time.monotonic()
        with self._lock:
            if not self._closed:
                self._idle.append(connection)
                return
        connection.close()


def _pending_error(connection: _Connection) -> OSError | None:
    """The error reading from ``connection`` raises now, if any (a TLS alert waiting to be read)."""
    sock = connection.http.sock
    if sock is None:
        return None
    try:
        sock.settimeout(0.5)
        sock.recv(1)
    except OSError as exc:
        return exc if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError) else None
    return None


def _read_body(
    response: http.client.HTTPResponse, encoding: str, out: IO[bytes], on_chunk: Callable[[int], None]
) -> int:
    coding = encoding.strip().lower()
    decoder: zlib._Decompress | None = None
    if coding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
    elif coding == "deflate":
        decoder = zlib.decompressobj()
    elif coding not in ("", "identity"):
        raise WireDecodingError(f"unsupported content encoding {encoding!r}")
    size = 0
    while True:
        chunk = response.read(_CHUNK)
        if not chunk:
            if response.length:  # the server closed the connection before the announced length
                raise http.client.IncompleteRead(b"", response.length)
            break
        if decoder is not None:
            try:
                chunk = decoder.decompress(chunk)
            except zlib.error as exc:
                raise WireDecodingError(f"the {coding} body cannot be decoded: {exc}") from None
        size += len(chunk)
        on_chunk(size)
        out.write(chunk)
    if decoder is not None:
        tail = decoder.flush()
        if tail:
            size += len(tail)
            on_chunk(size)
            out.write(tail)
        if not decoder.eof:
            raise WireDecodingError(f"the {coding} body is truncated")
    return size
