"""A small scriptable FHIR + OAuth2 server on 127.0.0.1 for the FHIR client tests.

Independent of rorclient's own sandbox: each test installs the routes it needs and checks the requests
the client sent (``server.requests``).
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SECRET = "s3cr3t-Valu3-never-shown"
ROR_HEADERS = {
    "ror-profil-utilisateur-code": "CU22",
    "ror-profil-utilisateur-system": "1.2.250.1.213.1.6.1.66",
    "ror-role-metier-code": "AUTOMATE",
    "ror-role-metier-system": "1.2.250.1.213.1.1.4.6",
}


@dataclass
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    peer_certificate: dict[str, Any] | None = None

    def param(self, name: str) -> str | None:
        return next((value for key, value in self.query if key == name), None)


@dataclass
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Iterable[bytes] = b""
    cut_after: int | None = None
    """Announce the full length but close the connection after this many bytes."""


Route = Callable[[Request], Response]


def json_response(value: Any, status: int = 200, **headers: str) -> Response:
    return Response(status, {"Content-Type": "application/fhir+json", **headers}, json.dumps(value).encode())


def outcome(code: str, text: str, status: int, severity: str = "error", **headers: str) -> Response:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": text}],
    }
    return json_response(body, status, **headers)


class FhirTestServer:
    """Routes by (method, path); ``/token`` issues tokens ``tok-<n>`` checked on every other path."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        token_lifetime: float | None = 300,
        client_id: str = "my-app",
        secret: str | None = SECRET,
    ) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[Request] = []
        self.valid_tokens: set[str] = set()
        self.token_lifetime = token_lifetime
        self.client_id = client_id
        self.secret = secret
        self.token_body: Callable[[str], dict[str, Any]] | None = None
        self.token_failure: Response | None = None
        self._issued = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def do_DELETE(self) -> None:
                self._handle()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                peer = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
                request = Request(
                    self.command,
                    parts.path,
                    parse_qsl(parts.query, keep_blank_values=True),
                    {key.lower(): value for key, value in self.headers.items()},
                    body,
                    peer,
                )
                with server._lock:
                    server.requests.append(request)
                response = server.dispatch(request)
                self._send(response)

            def _send(self, response: Response) -> None:
                self.send_response(response.status)
                for key, value in response.headers.items():
                    self.send_header(key, value)
                if isinstance(response.body, bytes):
                    data = response.body
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if response.cut_after is not None:
                        self.wfile.write(data[: response.cut_after])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    self.wfile.write(data)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in response.body:
                    if chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        if ssl_context is not None:
            self._httpd.socket = ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        self.scheme = "https" if ssl_context is not None else "http"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05})

    # -- lifecycle ---------------------------------------------------------------------------------------

    def __enter__(self) -> FhirTestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    @property
    def root(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/fhir"

    @property
    def token_url(self) -> str:
        return f"{self.root}/token"

    def route(self, method: str, path: str) -> Callable[[Route], Route]:
        def register(function: Route) -> Route:
            self.routes[(method, path)] = function
            return function

        return register

    def api_requests(self) -> list[Request]:
        return [request for request in self.requests if request.path != "/token"]

    def token_requests(self) -> list[Request]:
        return [request for request in self.requests if request.path == "/token"]

    # -- dispatch ----------------------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        if request.path == "/token":
            return self._token(request)
        authorization = request.headers.get("authorization", "")
        token = authorization.removeprefix("Bearer ")
        if not authorization.startswith("Bearer ") or token not in self.valid_tokens:
            return outcome("login", "invalid or expired token", 401)
        route = self.routes.get((request.method, request.path))
        if route is None:
            return outcome("not-found", f"no route {request.method} {request.path}", 404)
        return route(request)

    def _token(self, request: Request) -> Response:
        if self.token_failure is not None:
            return self.token_failure
        form = dict(parse_qsl(request.body.decode()))
        if form.get("grant_type") != "client_credentials" or form.get("client_id") != self.client_id:
            return json_response({"error": "invalid_client", "error_description": "unknown client"}, 401)
        if self.secret is not None and form.get("client_secret") != self.secret:
            description = f"bad secret {form.get('client_secret')}"  # a careless server echoing it
            return json_response({"error": "invalid_client", "error_description": description}, 401)
        if self.secret is None and request.peer_certificate is None:
            return json_response(
                {"error": "invalid_client", "error_description": "certificate required"}, 401
            )
        with self._lock:
            self._issued += 1
            token = f"tok-{self._issued}"
            self.valid_tokens.add(token)
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if self.token_body is not None:
            body = self.token_body(token)
            with self._lock:
                self.valid_tokens.add(body["access_token"])
        elif self.token_lifetime is not None:
            body["expires_in"] = self.token_lifetime
        return json_response(body)
