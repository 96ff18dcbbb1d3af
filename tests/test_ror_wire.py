"""SOAP calls over kept-alive connections (``HttpSession.call``): one TLS handshake for many calls, a
connection the server closed is replaced, encoded and cut answers are handled like httpx's."""

from __future__ import annotations

import contextlib
import gzip
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rorclient.ror import IncompleteResponseError, RequestTimeoutError, Timeouts
from rorclient.ror._http import HttpSession
from rorclient.sandbox.pki import TestPki, build_test_pki

ANSWER = b"<?xml version='1.0'?><Envelope>" + b"x" * 50_000 + b"</Envelope>"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return build_test_pki(tmp_path_factory.mktemp("pki"))


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (the timeout test) breaks the answer's write: expected


class Server:
    """A TLS HTTP/1.1 server on 127.0.0.1 counting its connections; ``mode`` shapes its answers."""

    def __init__(self, pki: TestPki) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.mode = "plain"
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                server.connections += 1
                super().setup()

            def do_POST(self) -> None:
                server.requests.append(self.rfile.read(int(self.headers["Content-Length"])))
                body, headers = ANSWER, {"Content-Type": "application/soap+xml"}
                if server.mode == "gzip":
                    body, headers["Content-Encoding"] = gzip.compress(ANSWER), "gzip"
                if server.mode == "close":
                    headers["Connection"] = "close"
                length = len(body) + (100 if server.mode == "cut" else 0)
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                if server.mode == "slow":
                    threading.Event().wait(1.0)
                self.wfile.write(body)
                self.wfile.flush()
                if server.mode in ("cut", "close"):
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pki.server.chain, pki.server.key, password=pki.password.get_secret_value())
        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/ROR/0.1/CSD_ROR_Binding"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(pki: TestPki) -> Iterator[Server]:
    running = Server(pki)
    yield running
    running.close()


def session(pki: TestPki, **timeouts: float) -> HttpSession:
    context = ssl.create_default_context(cafile=str(pki.ca_bundle))
    context.load_cert_chain(pki.client.chain, pki.client.key, password=pki.password.get_secret_value())
    return HttpSession(
        ssl_context=context, timeouts=Timeouts(**timeouts), max_concurrency=4, user_agent="rorclient/test"
    )


def call(http: HttpSession, url: str, body: bytes = b"<request/>") -> bytes:
    reply = http.call(url, body, {"Content-Type": "application/soap+xml"}, operation="lecture", total=30)
    try:
        assert reply.status == 200
        return reply.body
    finally:
        reply.close()


def test_many_calls_share_one_connection(pki: TestPki, server: Server) -> None:
    with contextlib.closing(session(pki)) as http:
        answers = [call(http, server.url, f"<request n='{n}'/>".encode()) for n in range(20)]
    assert answers == [ANSWER] * 20
    assert server.connections == 1  # one TLS handshake, not twenty
    assert server.requests == [f"<request n='{n}'/>".encode() for n in range(20)]


def test_a_connection_the_server_closes_is_replaced(pki: TestPki, server: Server) -> None:
    server.mode = "close"
    with contextlib.closing(session(pki)) as http:
        assert [call(http, server.url) for _ in range(3)] == [ANSWER] * 3
    assert server.connections == 3


def test_a_gzip_answer_is_decoded(pki: TestPki, server: Server) -> None:
    server.mode = "gzip"
    with contextlib.closing(session(pki)) as http:
        assert call(http, server.url) == ANSWER


def test_an_answer_shorter_than_announced_is_incomplete(pki: TestPki, server: Server) -> None:
    server.mode = "cut"
    with contextlib.closing(session(pki)) as http, pytest.raises(IncompleteResponseError):
        call(http, server.url)


def test_a_slow_answer_is_a_read_timeout(pki: TestPki, server: Server) -> None:
    server.mode = "slow"
    with contextlib.closing(session(pki, read=0.2)) as http, pytest.raises(RequestTimeoutError) as caught:
        call(http, server.url)
    assert caught.value.phase == "read"
    server.mode = "plain"  # and the session still works afterwards, on a new connection
    with contextlib.closing(session(pki)) as http:
        assert call(http, server.url) == ANSWER
