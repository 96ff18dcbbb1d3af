"""Concurrent load on the sandbox: N Lecture requests from T client threads over mTLS on loopback.

python benchmarks/sandbox_load.py [--requests 1000] [--threads 8] [--establishments 2000] [--seed 0]

The sandbox runs in its own process (``rorclient.sandbox.serve_forever``) so that clients and server do
not share an interpreter lock; each client thread keeps one httpx connection (keep-alive). The Lecture is
of a median-sized establishment (median number of units of the dataset). Prints requests/s, latency
percentiles and the error count (any transport error or non-200 answer), and exits 1 on any error.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from rorclient.sandbox.dataset import generate_dataset
from rorclient.sandbox.pki import TestPki, build_test_pki

LECTURE = (
    '<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>'
    '<csd:careServicesRequest xmlns:csd="urn:ihe:iti:csd:2013">'
    '<csd:function urn="urn:asip:ror:lecture:offreSoinEtablissement:2017" encapsulated="true">'
    "<csd:TR_Lecture-OffresSanteEtablissement><csd:etablissementDemandeLecture>"
    '<csd:id_etablissement code="{id}" assigningAuthorityName="1.2.250.1.71.1.2.14"/>'
    "<csd:restrictedOrganisation>0</csd:restrictedOrganisation>"
    "</csd:etablissementDemandeLecture></csd:TR_Lecture-OffresSanteEtablissement>"
    "</csd:function></csd:careServicesRequest></soap:Body></soap:Envelope>"
)
ACTION = "urn:asip:ror:2015:stored-function:ror-search"
HEADERS = {"Content-Type": f'application/soap+xml; charset=UTF-8; action="{ACTION}"'}


def median_establishment(seed: int, establishments: int) -> tuple[str, int]:
    sizes = sorted((len(o.units), o.establishments[0].id) for o in generate_dataset(seed, establishments))
    units, establishment = sizes[len(sizes) // 2]
    return establishment, units


def start_server(port: int, seed: int, establishments: int, tls_dir: Path) -> subprocess.Popen[str]:
    code = (
        "from pathlib import Path; from rorclient.sandbox import serve_forever; "
        f"serve_forever(port={port}, seed={seed}, establishments={establishments}, "
        f"tls_dir=Path({str(tls_dir)!r}), platines_fixture=False, "
        "announce=lambda line: print(line, flush=True))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Press Ctrl-C"):
            return process
    raise SystemExit(f"the sandbox did not start (exit code {process.wait()})")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--establishments", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    establishment, units = median_establishment(args.seed, args.establishments)
    with tempfile.TemporaryDirectory() as work:
        tls_dir = Path(work) / "pki"
        pki = build_test_pki(tls_dir)
        port = free_port()
        started = time.perf_counter()
        server = start_server(port, args.seed, args.establishments, tls_dir)
        startup = time.perf_counter() - started
        try:
            figures = run_load(port, pki, establishment, args.requests, args.threads)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    figures.update(
        {
            "establishments": args.establishments,
            "establishment": establishment,
            "units": units,
            "server_startup_s": round(startup, 2),
            "cpus": os.cpu_count(),
        }
    )
    print(json.dumps(figures, indent=2))
    return 1 if figures["errors"] else 0


def run_load(port: int, pki: TestPki, establishment: str, requests: int, threads: int) -> dict[str, object]:
    context = ssl.create_default_context(cafile=str(pki.ca_bundle))
    context.load_cert_chain(pki.client.chain, pki.client.key, password=pki.password.get_secret_value())
    url = f"https://127.0.0.1:{port}/ROR/0.1/CSD_ROR_Binding"
    body = LECTURE.format(id=establishment).encode()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    shares = [requests // threads + (1 if i < requests % threads else 0) for i in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def client(count: int) -> None:
        mine: list[float] = []
        failed: list[str] = []
        with httpx.Client(verify=context, timeout=30) as http:
            http.post(url, content=body, headers=HEADERS)  # connect and warm up, not measured
            barrier.wait()
            for _ in range(count):
                began = time.perf_counter()
                try:
                    answer = http.post(url, content=body, headers=HEADERS)
                    if answer.status_code != 200 or b"<csd:facilityNumber>" not in answer.content:
                        failed.append(f"HTTP {answer.status_code}")
                except httpx.HTTPError as exc:
                    failed.append(repr(exc))
                mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)
            errors.extend(failed)

    workers = [threading.Thread(target=client, args=(share,)) for share in shares]
    for worker in workers:
        worker.start()
    barrier.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "threads": threads,
        "errors": len(errors),
        "first_errors": errors[:5],
        "elapsed_s": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


if __name__ == "__main__":
    raise SystemExit(main())
