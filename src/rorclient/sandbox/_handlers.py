"""HTTPS transport of the sandbox: a threading HTTP/1.1 server with mTLS and fault injection on the wire."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import struct
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from rorclient.sandbox._app import Reply, SandboxApp
from rorclient.sandbox._faults import FaultRule
from rorclient.sandbox._fhir import FhirRequest, outcome_reply
from rorclient.sandbox._soap import peek_operation

__all__ = ["SandboxHTTPServer"]

_log = logging.getLogger("rorclient.sandbox")

_PIECES: Final = 16  # a trickled body is sent in this many pieces
_CHUNK: Final = 256 * 1024


class SandboxHTTPServer(ThreadingHTTPServer):
    """One thread per connection; TLS handshakes happen in the connection's thread, not the accept loop.

    :meth:`stop` ends the accept loop, cuts open (keep-alive) connections and joins every thread.
    """

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True  # quick restarts on the same port; a live listener still blocks the bind

    def __init__(self, address: tuple[str, int], app: SandboxApp, context: ssl.SSLContext) -> None:
        self.app = app
        self.context = context
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        # Headers and body go out in separate writes: without this, Nagle's algorithm meets the
        # client's delayed ACK and each answer waits ~40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wrapped = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return wrapped, address

    def track(self, connection: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def stop(self) -> None:
        """Stop serving and wait for every connection thread (call from another thread than the loop)."""
        self.stopping.set()
        self.shutdown()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(connection, socket.SHUT_RDWR)
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: SandboxHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "rorclient-sandbox"
    sys_version = ""

    # -- connection -----------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.app.options.request_timeout)
        self.server.track(self.connection, True)
        self._tls_ok = False
        try:
            self.connection.do_handshake()
            self._tls_ok = True
        except (ssl.SSLError, OSError) as exc:
            self.server.app.count("tls_failures")
            _log.debug("TLS handshake with %s failed: %s", self.client_address, exc)

    def handle(self) -> None:
        if self._tls_ok:
            super().handle()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s %s", self.address_string(), format % args)

    # -- routes ---------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._route("GET")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def _route(self, method: str) -> None:
        app = self.server.app
        options = app.options
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        body = self._read_body()
        if body is None:
            return
        if path == options.soap_path and method == "POST":
            operation = peek_operation(body)
            rule = app.faults.pick(operation)
            reply = self._early_fault(rule, operation) or app.soap(
                body, self.headers.get("Content-Type"), operation
            )
        elif path == options.extraction_path and method in ("GET", "HEAD"):
            rule = app.faults.pick("extraction")
            query = dict(parse_qsl(url.query))
            reply = self._early_fault(rule, "extraction") or app.extraction(
                query, _lowercase(self.headers.items()), head=method == "HEAD"
            )
        elif (fhir_operation := app.fhir.operation(method, unquote(path))) is not None:
            rule = app.faults.pick(fhir_operation)
            reply, rule = self._fhir(fhir_operation, rule, method, unquote(path), url.query, body)
        elif options.test_mode and (path == "/_sandbox" or path.startswith("/_sandbox/")):
            rule = None
            reply = app.control(method, path, body)
        elif path in (options.soap_path, options.extraction_path):
            rule = None
            app.count("other")
            reply = Reply(405, "text/plain; charset=utf-8", f"{method} not allowed here\n".encode())
            reply.headers.append(("Allow", "POST" if path == options.soap_path else "GET, HEAD"))
        else:
            rule = None
            app.count("other")
            reply = Reply(404, "text/plain; charset=utf-8", f"nothing at {path}\n".encode())
        self._transmit(reply, rule, head=method == "HEAD")

    def _fhir(
        self, operation: str, rule: FaultRule | None, method: str, path: str, query: str, body: bytes
    ) -> tuple[Reply, FaultRule | None]:
        """Answer a request of the FHIR face, with the faults that only make sense there."""
        app = self.server.app
        headers = _lowercase(self.headers.items())
        if rule is not None and rule.kind in ("429", "outcome", "soap_fault", "503", "500"):
            app.count(operation)
            if rule.kind == "429":
                reply = outcome_reply(429, "throttled", "too many requests (injected)", operation=operation)
                reply.headers.append(("Retry-After", str(rule.retry_after)))
                return reply, None
            if rule.kind == "503":
                reply = outcome_reply(503, "transient", "service unavailable (injected)", operation=operation)
                reply.headers.append(("Retry-After", str(rule.retry_after)))
                return reply, None
            if rule.kind == "500":
                return Reply(
                    500, "text/html; charset=utf-8", b"<html><body>Internal Server Error</body></html>\n"
                ), None
            return outcome_reply(500, "transient", "temporary failure (injected)", operation=operation), None
        if rule is not None and rule.kind == "expire_token":
            if operation != "fhir_download":
                app.fhir.revoke(headers)
                app.count(operation)
                reply = outcome_reply(401, "login", "expired access token (injected)", operation=operation)
                return reply, None
            # The token expires while the file streams: half the body, then the connection closes.
            reply = app.fhir.handle(operation, self._fhir_request(method, path, query, headers, body))
            app.fhir.revoke(headers)
            return reply, rule.model_copy(update={"kind": "truncate"})
        reply = app.fhir.handle(operation, self._fhir_request(method, path, query, headers, body))
        return reply, rule

    def _fhir_request(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> FhirRequest:
        options = self.server.app.options
        host = headers.get("host") or f"{options.host}:{self.server.server_address[1]}"
        certificate = isinstance(self.connection, ssl.SSLSocket) and bool(self.connection.getpeercert())
        return FhirRequest(
            method=method,
            path=path if path == options.fhir_token_path else path.removeprefix(options.fhir_path),
            query=parse_qsl(query, keep_blank_values=True),
            headers=headers,
            body=body,
            client_certificate=certificate,
            base_url=f"https://{host}{options.fhir_path}",
        )

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            self._plain(411, "send the body with a Content-Length\n")
            return None
        length_text = self.headers.get("Content-Length", "0")
        try:
            length = int(length_text)
        except ValueError:
            self._plain(400, "bad Content-Length\n")
            return None
        if length > self.server.app.options.max_request_bytes:
            self._plain(413, "request body too large\n")
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _plain(self, status: int, text: str) -> None:
        self.close_connection = True
        self._transmit(Reply(status, "text/plain; charset=utf-8", text.encode()), None, head=False)

    def _early_fault(self, rule: FaultRule | None, operation: str) -> Reply | None:
        """Faults answered without doing the work: 503, 500 and SOAP faults."""
        if rule is None:
            return None
        app = self.server.app
        if rule.kind == "503":
            app.count(operation)
            reply = Reply(
                503, "text/plain; charset=utf-8", b"service unavailable (injected)\n", operation=operation
            )
            reply.headers.append(("Retry-After", str(rule.retry_after)))
            return reply
        if rule.kind == "500":
            app.count(operation)
            return Reply(
                500, "text/html; charset=utf-8", b"<html><body>Internal Server Error</body></html>\n"
            )
        if rule.kind == "soap_fault":
            app.count(operation)
            return app.fault_reply(
                app.options.error_codes.injected, "injected fault", subcode="Receiver", operation=operation
            )
        return None

    # -- sending --------------------------------------------------------------------------------------

    def _transmit(self, reply: Reply, rule: FaultRule | None, *, head: bool) -> None:
        kind = rule.kind if rule is not None else None
        if kind == "latency" and rule is not None:
            self.server.stopping.wait(rule.delay)
        self.send_response(reply.status)
        content_type = reply.content_type
        if kind == "content_type" and content_type is not None:
            content_type = "text/html; charset=utf-8"
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        has_length = any(name.lower() == "content-length" for name, _ in reply.headers)
        for name, value in reply.headers:
            self.send_header(name, value)
        if not has_length and reply.status != 304:
            self.send_header("Content-Length", str(reply.size))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if head or reply.status == 304:
            return
        size = reply.size
        if kind in ("truncate", "reset"):
            self._send_body(reply, size // 2)
            self.wfile.flush()
            self.close_connection = True
            if kind == "reset":
                self._reset()
            return
        if kind == "trickle" and rule is not None:
            piece = max(1, -(-size // _PIECES))
            sent = 0
            while sent < size and not self.server.stopping.is_set():
                amount = min(piece, size - sent)
                self._send_body(reply, amount, start=sent)
                self.wfile.flush()
                sent += amount
                if sent < size:
                    self.server.stopping.wait(rule.delay)
            return
        self._send_body(reply, size)

    def _send_body(self, reply: Reply, amount: int, *, start: int = 0) -> None:
        if reply.file is None:
            self.wfile.write(reply.body[start : start + amount])
            return
        with open(reply.file.path, "rb") as stream:
            stream.seek(reply.offset + start)
            remaining = amount
            while remaining > 0:
                chunk = stream.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)

    def _reset(self) -> None:
        """Abort the connection now with a TCP RST (SO_LINGER 0; no TLS close_notify, no FIN). Data still
        in the send buffer may be lost, as with a real reset."""
        connection = self.connection
        with contextlib.suppress(OSError):
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(connection.detach())


def _lowercase(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}
