"""A FHIR pull against a CSD pull of the same sandbox region: wall time and peak RSS of the client.

    python benchmarks/fhir_pull.py                        # 6,000 establishments (issue 13's figure)
    python benchmarks/fhir_pull.py --establishments 500

A sandbox (``rorclient sandbox``, its own process) serves one generated region over both faces; each
pull then runs in a process of its own (``rorclient pull``'s code path: ``Sync.pull`` into a new SQLite
store), so that its peak RSS (``ru_maxrss``) is the client's alone: the FHIR one runs the ``$export``,
streams every file into the assembler's spill file, maps and bulk-loads; the CSD one downloads the
extraction and reads it. Targets (issue 13): FHIR peak RSS under 250 MB, FHIR time within 2× the CSD
time. Results are printed and written to ``benchmarks/results/fhir_pull.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "fhir_pull.json"
CSD, FHIR = "sandbox", "sandbox-fhir"


def child(config: str, source: str, store: str) -> None:
    """One pull in this process; prints its figures as JSON."""
    from rorclient.config import Settings
    from rorclient.sync import Sync, SyncOptions

    settings = Settings.load(config, environ={})
    options = SyncOptions(data_dir=Path(store.removeprefix("sqlite:///")).parent / f"{source}-data")
    started = time.perf_counter()
    with Sync.from_settings(settings, source=source, store=store, options=options) as sync:
        report = sync.pull()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps({"seconds": round(seconds, 2), "peak_rss_mb": round(peak, 1), "entities": report.entities})
    )


def run_pull(config: Path, source: str, workdir: Path) -> dict[str, Any]:
    store = f"sqlite:///{workdir / (source + '.db')}"
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(config), source, store], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"the {source} pull failed:\n{done.stderr[-3000:]}")
    output = done.stdout
    figures: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--establishments", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=3, metavar=("CONFIG", "SOURCE", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="rorclient-fhir-bench-") as tmp:
        workdir = Path(tmp)
        config = workdir / "client.toml"
        sandbox = subprocess.Popen(
            [
                sys.executable, "-m", "rorclient.cli", "sandbox", "--port", "0",
                "--establishments", str(args.establishments), "--seed", str(args.seed),
                "--write-config", str(config), "--config-source", "both",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 600
            while not config.exists() or "kind" not in config.read_text():
                if sandbox.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the sandbox did not start")
                time.sleep(0.5)
            time.sleep(1.0)
            csd = run_pull(config, CSD, workdir)
            fhir = run_pull(config, FHIR, workdir)
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=60)
    result = {
        "establishments": args.establishments,
        "csd": csd,
        "fhir": fhir,
        "time_ratio": round(fhir["seconds"] / csd["seconds"], 2),
        "targets": {"fhir_peak_rss_mb": 250, "time_ratio": 2.0},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
