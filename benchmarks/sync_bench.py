"""The sync engine end to end against a sandbox in its own process, over mTLS on loopback.

python benchmarks/sync_bench.py pull [--establishments 50000]
python benchmarks/sync_bench.py sync [--establishments 1000] [--latency 0 0.2] [--concurrency 4 16]

``pull``: a national-scale sandbox (~50,000 establishments); one ``Sync.pull()`` into a new SQLite store,
in a fresh process: wall time (download and load separately) and that process's peak RSS. The sandbox
builds its extraction before the measure starts (a HEAD request waits for it).

``sync``: pull, then every establishment renamed at least once (most of them), then one ``Sync.sync()``
that Notif makes list all of them, with ``--latency`` seconds injected into every Lecture: wall time next
to the ideal ``listed × latency / concurrency`` (the network alone), the client's CPU time per
establishment (all its threads; imports and set-up excluded) and the effective parallelism
``listed × latency / wall``, per latency and concurrency. ``RORCLIENT_BENCH_PROFILE=FILE`` writes a
cProfile of the sync's main thread (planning, applying; the reads run in worker threads).

Prints JSON and writes it to ``benchmarks/results/sync_<task>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _pss import run_sampled

RESULTS = Path(__file__).resolve().parent / "results"

# Runs in a fresh process so that its peak RSS is the operation's own.
CHILD = r"""
import cProfile, datetime as dt, json, os, resource, sys, time
from pathlib import Path
from rorclient.config import Settings
from rorclient.store.sqlite import SqliteStore
from rorclient.sync import Sync, SyncOptions

config, database, data, operation, concurrency = sys.argv[1:6]
settings = Settings.load(config, environ={})
phases = {}
phases_cpu = {}
profile_to = os.environ.get("RORCLIENT_BENCH_PROFILE")
started = time.perf_counter()

def progress(event):
    if event.phase not in phases:
        phases[event.phase] = time.perf_counter() - started
        phases_cpu[event.phase] = time.process_time() - cpu_started

options = SyncOptions(data_dir=Path(data), concurrency=int(concurrency), breaker_share=1.0)
with SqliteStore(database) as store, Sync.from_settings(settings, store=store, options=options) as sync:
    if operation == "rewind":  # make Notif list every establishment on the next sync
        state = store.sync_state(sync.source)
        with store.transaction() as transaction:
            transaction.set_sync_state(state.model_copy(update={"watermark": dt.datetime(2000, 1, 1)}))
        print(json.dumps({}))
        sys.exit(0)
    profiler = cProfile.Profile() if profile_to and operation != "pull" else None
    if profiler is not None:
        profiler.enable()
    # The operation alone: not the imports (a daemon pays them once), the store's opening or the TLS
    # context's set-up.
    import rorclient.ror  # noqa: F401
    started, cpu_started = time.perf_counter(), time.process_time()
    report = sync.pull(progress=progress) if operation == "pull" else sync.sync(progress=progress)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_to)
wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
print(json.dumps({
    "wall_s": round(wall, 2),
    "cpu_s": round(cpu, 2),
    "phases_s": {name: round(at, 2) for name, at in phases.items()},
    "phases_cpu_s": {name: round(at, 2) for name, at in phases_cpu.items()},
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    "report": json.loads(report.model_dump_json()),
}))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SandboxProcess:
    """``rorclient.sandbox.serve_forever`` in a child process, test mode on (control API)."""

    def __init__(self, work: Path, establishments: int, seed: int) -> None:
        self.port = free_port()
        self.work = work
        self.config = work / "client.toml"
        code = (
            "from pathlib import Path; from rorclient.sandbox import serve_forever; "
            f"serve_forever(port={self.port}, seed={seed}, establishments={establishments}, "
            f"tls_dir=Path({str(work / 'pki')!r}), write_config=Path({str(self.config)!r}), "
            "test_mode=True, platines_fixture=False, extraction_wait=3600, "
            "announce=lambda line: print(line, flush=True))"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("Press Ctrl-C"):
                break
        else:
            raise SystemExit(f"the sandbox did not start (exit code {self.process.wait()})")
        from rorclient.sandbox.pki import build_test_pki

        pki = build_test_pki(work / "pki", reuse=True)
        context = ssl.create_default_context(cafile=str(pki.ca_bundle))
        context.load_cert_chain(pki.client.chain, pki.client.key, password=pki.password.get_secret_value())
        self.http = httpx.Client(verify=context, timeout=3600, base_url=f"https://127.0.0.1:{self.port}")

    def control(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        answer = self.http.request(method, f"/_sandbox/{path}", json=payload)
        answer.raise_for_status()
        return answer.json()

    def warm_extraction(self) -> float:
        started = time.perf_counter()
        self.http.head("/ROR/extraction").raise_for_status()
        return time.perf_counter() - started

    def close(self) -> None:
        self.http.close()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def measure(sandbox: SandboxProcess, operation: str, concurrency: int = 4) -> dict[str, Any]:
    """Run ``operation`` in a fresh process (:data:`CHILD`); its figures, with the peak PSS sampled
    from outside (``peak_pss_mb``)."""
    database, data = sandbox.work / "ror.db", sandbox.work / "data"
    command = [sys.executable, "-c", CHILD, str(sandbox.config), str(database), str(data), operation]
    done, peak = run_sampled([*command, str(concurrency)], marker=str(sandbox.config))
    if done.returncode:
        raise SystemExit(f"{operation} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if peak:
        result["peak_pss_mb"] = peak
    return result


def bench_pull(establishments: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rorclient-sync-bench-") as work:
        sandbox = SandboxProcess(Path(work), establishments, seed)
        try:
            build = sandbox.warm_extraction()
            result = measure(sandbox, "pull")
            size = (Path(work) / "ror.db").stat().st_size
        finally:
            sandbox.close()
    report = result.pop("report")
    return {
        "task": "pull",
        "establishments": establishments,
        "entities": report["entities"],
        "extraction_mb": round(report["bytes"] / 1e6, 1),
        "sandbox_extraction_build_s": round(build, 1),
        **result,
        "store_mb": round(size / 1e6, 1),
        "entities_per_s": round(report["entities"] / result["wall_s"]),
        "cpus": os.cpu_count(),
    }


def bench_sync(
    establishments: int, seed: int, latencies: list[float], concurrencies: list[int]
) -> dict[str, Any]:
    """One sandbox, pulled once; then for each latency and concurrency: most establishments renamed,
    the watermark rewound so that Notif lists every establishment, and one measured ``Sync.sync()``."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="rorclient-sync-bench-") as work:
        sandbox = SandboxProcess(Path(work), establishments, seed)
        try:
            sandbox.warm_extraction()
            measure(sandbox, "pull")
            for round_number, (latency, concurrency) in enumerate(
                (latency, concurrency) for latency in latencies for concurrency in concurrencies
            ):
                sandbox.control("DELETE", "faults")
                if latency:
                    fault = {"operation": "lecture", "kind": "latency", "delay": latency}
                    sandbox.control("POST", "faults", fault)
                sandbox.control("POST", "clock", {"advance": 60})
                for batch in range(3 * establishments // 1000 + 1):
                    sandbox.control(
                        "POST",
                        "mutate",
                        {"count": 1000, "kinds": ["rename"], "seed": 1000 * round_number + batch},
                    )
                measure(sandbox, "rewind")
                result = measure(sandbox, "sync", concurrency)
                report = result.pop("report")
                listed = report["listed"]
                ideal = listed * latency / concurrency  # the network alone: the baseline
                runs.append(
                    {
                        "latency_s": latency,
                        "concurrency": concurrency,
                        "listed": listed,
                        "changed": report["applied"] - report["unchanged"],
                        "counts": {kind: n for kind, n in report["counts"].items() if n},
                        **result,
                        "ideal_s": round(ideal, 2),
                        "cpu_ms_per_establishment": round(1000 * result["cpu_s"] / max(1, listed), 2),
                        # How many Lecture latencies overlapped on average (``concurrency`` at best).
                        "effective_parallelism": round(listed * latency / result["wall_s"], 1),
                        "wall_over_ideal": round(result["wall_s"] / ideal, 2) if ideal else None,
                    }
                )
        finally:
            sandbox.close()
    return {"task": "sync", "establishments": establishments, "runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=["pull", "sync"])
    parser.add_argument("--establishments", type=int)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.05])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 16])
    args = parser.parse_args()
    if args.task == "pull":
        figures = bench_pull(args.establishments or 50_000, args.seed)
    else:
        figures = bench_sync(args.establishments or 1000, args.seed, args.latency, args.concurrency)
    text = json.dumps(figures, indent=2)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"sync_{args.task}.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
