"""Client overhead of RorClient against the sandbox, over real mutual TLS on loopback.

    python benchmarks/client_overhead.py [--establishments 1000] [--latency 0.05] [--calls 300]
                                         [--concurrency 1 4 16] [--json]

The sandbox runs in a child process (its own interpreter and GIL), so the client's figures are the
client's alone:

1. **CPU per Lecture call**: ``--calls`` sequential ``read_establishment`` calls without injected latency;
   the client process's CPU time (``time.process_time``: envelope, TLS, HTTP, parsing into models) per
   call, p50 and p90, next to the wall time per call.
2. **Reading N establishments** with ``read_establishments`` at each ``--concurrency``, with ``--latency``
   seconds injected by the sandbox before each Lecture answer, next to the ideal
   ``N x latency / concurrency``. Target: within 1.25 x ideal at concurrency 16.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def serve(kind: str, establishments: int, tls_dir: Path) -> None:
    """Child process: run a server, print its coordinates as one JSON line, obey commands on stdin."""
    from rorclient.sandbox import Sandbox

    _tune_the_sandbox_sockets()
    with Sandbox(establishments=establishments, seed=1, tls_dir=tls_dir) as sandbox:
        pki = sandbox.pki
        coordinates = {
            "soap_url": sandbox.soap_url,
            "p12": str(pki.client.pkcs12),
            "password": pki.password.get_secret_value(),
            "ca_bundle": str(pki.ca_bundle),
            "ids": sandbox.establishment_ids(),
        }
        canned = _CannedServer(sandbox) if kind == "canned" else None
        if canned is not None:
            coordinates["soap_url"] = canned.url
        print(json.dumps(coordinates), flush=True)
        for line in sys.stdin:
            command, *args = line.split()
            if command == "latency":
                sandbox.faults.clear()
                if canned is not None:
                    canned.latency = float(args[0])
                elif float(args[0]) > 0:
                    sandbox.faults.add("lecture", "latency", delay=float(args[0]))
            elif command == "cpu":
                print(f"ok {time.process_time()}", flush=True)
                continue
            elif command == "quit":
                break
            print("ok", flush=True)
        if canned is not None:
            canned.close()


class _CannedServer:
    """A minimal mTLS HTTP/1.1 server answering every POST with one pre-rendered Lecture answer (the
    sandbox's first establishment) after ``latency`` seconds: the server's own cost is near zero, so the
    figures show the client's overhead alone."""

    def __init__(self, sandbox: Any) -> None:
        import socket
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from rorclient.csd import csd_bytes
        from rorclient.sandbox.pki import server_ssl_context

        offer = sandbox.offer(sandbox.establishment_ids()[0])
        body = (
            b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>'
            + csd_bytes(offer, root="careServicesResponse", xml_declaration=False)
            + b"</soap:Body></soap:Envelope>"
        )
        answer = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml; charset=UTF-8\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        self.latency = 0.0
        canned = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if canned.latency:
                    time.sleep(canned.latency)
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        context = server_ssl_context(sandbox.pki)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

            def get_request(self) -> tuple[Any, Any]:
                connection, address = self.socket.accept()
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return context.wrap_socket(connection, server_side=True), address

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}/ROR/0.1/CSD_ROR_Binding"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _tune_the_sandbox_sockets() -> None:
    """Two socket settings the sandbox lacks, which would make this measure the kernel, not the client
    (harmless once the sandbox sets them itself):

    * it writes response headers and body separately: without TCP_NODELAY, Nagle's algorithm and the
      client's delayed ACK add ~40 ms to every answer;
    * ``socketserver``'s listen backlog is 5: 16 connections opened at once overflow it and some wait
      for a SYN retransmission (1 s).
    """
    import socket

    from rorclient.sandbox._handlers import SandboxHTTPServer

    SandboxHTTPServer.request_queue_size = 128
    accept = SandboxHTTPServer.get_request

    def get_request(self: SandboxHTTPServer) -> tuple[Any, Any]:
        connection, address = accept(self)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address

    SandboxHTTPServer.get_request = get_request  # type: ignore[method-assign]


class Server:
    """The sandbox child process."""

    def __init__(self, kind: str, establishments: int, tls_dir: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, str(establishments), str(tls_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.coordinates: dict[str, Any] = json.loads(self.process.stdout.readline())

    def command(self, text: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().split()
        assert answer and answer[0] == "ok", answer
        return " ".join(answer[1:])

    def cpu(self) -> float:
        """CPU seconds the sandbox process has used so far."""
        return float(self.command("cpu"))

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        self.process.wait(timeout=30)


def client(server: Server, concurrency: int) -> Any:
    from rorclient.ror import ClientOptions, RetryPolicy, RorClient
    from rorclient.tls import Credentials

    c = server.coordinates
    return RorClient(
        c["soap_url"],
        name="bench",
        credentials=Credentials.load(c["p12"], password=c["password"]),
        options=ClientOptions(
            ca_bundle=c["ca_bundle"], max_concurrency=max(concurrency, 1), retry=RetryPolicy.no_retry()
        ),
    )


def cpu_per_call(server: Server, calls: int) -> dict[str, float]:
    ids: list[str] = server.coordinates["ids"]
    server.command("latency 0")
    cpu: list[float] = []
    wall: list[float] = []
    with client(server, 1) as ror:
        for warm_up in ids[:20]:
            ror.read_establishment(warm_up)
        for index in range(calls):
            started_cpu, started = time.process_time(), time.perf_counter()
            ror.read_establishment(ids[index % len(ids)])
            cpu.append(time.process_time() - started_cpu)
            wall.append(time.perf_counter() - started)
    deciles = statistics.quantiles(cpu, n=10)
    return {
        "calls": calls,
        "cpu_p50_ms": statistics.median(cpu) * 1000,
        "cpu_p90_ms": deciles[8] * 1000,
        "wall_p50_ms": statistics.median(wall) * 1000,
    }


def read_many(server: Server, count: int, latency: float, concurrency: int) -> dict[str, float]:
    from rorclient.errors import RorError

    ids: list[str] = server.coordinates["ids"]
    wanted = [ids[index % len(ids)] for index in range(count)]
    server.command(f"latency {latency}")
    with client(server, concurrency) as ror:
        ror.read_establishment(wanted[0])  # WSDL loaded, first connection open
        server_cpu, client_cpu, started = server.cpu(), time.process_time(), time.perf_counter()
        errors = sum(
            isinstance(result, RorError)
            for _, result in ror.read_establishments(wanted, concurrency=concurrency)
        )
        elapsed = time.perf_counter() - started
        client_cpu = time.process_time() - client_cpu
        server_cpu = server.cpu() - server_cpu
    ideal = count * latency / concurrency
    return {
        "concurrency": concurrency,
        "establishments": count,
        "seconds": elapsed,
        "ideal_seconds": ideal,
        "ratio": elapsed / ideal if ideal else float("nan"),
        "errors": errors,
        "client_cpu_seconds": client_cpu,
        "server_cpu_seconds": server_cpu,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--establishments", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument(
        "--server",
        choices=["sandbox", "canned", "both"],
        default="both",
        help="sandbox: the full simulator; canned: a fixed answer, to isolate the client (default: both)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    options = parser.parse_args()
    kinds = ["sandbox", "canned"] if options.server == "both" else [options.server]
    results = {kind: measure(kind, options) for kind in kinds}
    if options.json:
        print(json.dumps(results, indent=2))
        return
    for kind, figures in results.items():
        report(kind, figures, options)


def measure(kind: str, options: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rorclient-bench-") as tls_dir:
        server = Server(kind, options.establishments, Path(tls_dir))
        try:
            figures: dict[str, Any] = {"cpu_per_call": cpu_per_call(server, options.calls), "reads": []}
            for concurrency in options.concurrency:
                figures["reads"].append(
                    read_many(server, options.establishments, options.latency, concurrency)
                )
        finally:
            server.close()
    return figures


def report(kind: str, figures: dict[str, Any], options: argparse.Namespace) -> None:
    cpu = figures["cpu_per_call"]
    print(f"== server: {kind}")
    print(
        f"Lecture call, loopback mTLS, no latency ({cpu['calls']} calls): "
        f"client CPU p50 {cpu['cpu_p50_ms']:.2f} ms, p90 {cpu['cpu_p90_ms']:.2f} ms; "
        f"wall p50 {cpu['wall_p50_ms']:.2f} ms"
    )
    print(
        f"Reading {options.establishments} establishments, {options.latency * 1000:.0f} ms injected latency:"
    )
    print(
        f"{'concurrency':>12} {'seconds':>9} {'ideal':>9} {'ratio':>7} {'errors':>7} "
        f"{'client CPU s':>13} {'server CPU s':>13}"
    )
    for row in figures["reads"]:
        print(
            f"{row['concurrency']:>12} {row['seconds']:>9.2f} {row['ideal_seconds']:>9.2f} "
            f"{row['ratio']:>7.2f} {row['errors']:>7} {row['client_cpu_seconds']:>13.2f} "
            f"{row['server_cpu_seconds']:>13.2f}"
        )


if __name__ == "__main__":
    main()
