"""The benchmarks in one command: the load next to bare lxml iterparse, the delta sync next to the
network alone, each baseline measured in the same run.

    ./dev bench                          # load at 75 MB; delta of 300 establishments at 0 and 200 ms
    ./dev bench --large                  # the load at 1 GB too (generated once, ~15 s per 100 MB)
    ./dev bench --sizes 100MB --no-delta
    ./dev bench --keep                   # keep the SQLite stores for inspection

Load (each task in a fresh process, benchmarks/_measure.py): bare ``lxml.etree.iterparse`` over the
generated file (the reference), ``rorclient load --readers 1`` and ``rorclient load`` with the command's
default reader processes into a new SQLite store. Ratios are the reference's time over the load's:
``wall_ratio`` is what a user sees (the issue's target: at least 1/3), ``cpu_ratio`` compares the CPU
time of the whole process tree, which other work on a shared machine disturbs much less.

Delta (benchmarks/sync_bench.py): a sandbox in its own process (mTLS on loopback) with N establishments,
pulled once; then, per latency, most establishments renamed and one ``Sync.sync()`` that reads them all
at the given concurrency. The baseline is the network alone, ``N × latency / concurrency``; the figures
are the client's CPU per establishment and the effective parallelism ``N × latency / wall``.

Peak memory is the PSS of each task's process tree, sampled every 0.1 s. Results are printed as tables
and written to ``benchmarks/results/bench.json`` with the machine they were measured on and its load
average (another job on the machine shows there; wall-clock figures are only comparable on a quiet one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from _pss import run_sampled

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"
SEED = 2026


def parse_size(text: str) -> int:
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9}
    for suffix, factor in units.items():
        if text.upper().endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def ensure_file(data: Path, label: str, size: int) -> Path:
    from rorclient.sandbox.dataset import establishments_for_size, write_extraction

    path = data / f"extraction-{label}.xml"
    if path.exists():
        return path
    data.mkdir(parents=True, exist_ok=True)
    establishments = establishments_for_size(size, seed=SEED)
    print(f"generating {path.name}: {establishments} establishments ...", flush=True)
    started = time.perf_counter()
    write_extraction(path, seed=SEED, establishments=establishments)
    print(f"  {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def measure(*args: str) -> dict[str, Any]:
    """Run one task of benchmarks/_measure.py in a fresh process; add its tree's peak PSS."""
    done, peak = run_sampled([sys.executable, str(HERE / "_measure.py"), *args], marker="_measure.py")
    if done.returncode != 0:
        raise SystemExit(f"_measure.py {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["peak_mb"] = peak or result["peak_rss_mb"]
    return result


def bench_load(data: Path, label: str, keep: bool) -> dict[str, Any]:
    path = ensure_file(data, label, parse_size(label))
    store = data / f"bench-{label}.sqlite3"

    def clean() -> None:
        for leftover in data.glob(f"bench-{label}.sqlite3*"):
            leftover.unlink()

    clean()
    bare = measure("iterparse", str(path))
    alone = measure("load", str(path), f"sqlite:///{store}", "1")
    clean()
    load = measure("load", str(path), f"sqlite:///{store}")  # the command line's default readers
    if not keep:
        clean()
    mb = int(bare["bytes"]) / 1e6
    row: dict[str, Any] = {
        "file": path.name,
        "mb": round(mb, 1),
        "entities": load["count"],
        "iterparse_s": bare["wall_s"],
        "iterparse_cpu_s": bare["cpu_s"],
        "iterparse_peak_mb": bare["peak_mb"],
    }
    for name, result in (("one_reader", alone), ("load", load)):
        row[f"{name}_readers"] = result["readers"]
        row[f"{name}_s"] = result["wall_s"]
        row[f"{name}_cpu_s"] = result["cpu_s"]
        row[f"{name}_wall_ratio"] = round(bare["wall_s"] / result["wall_s"], 3)
        row[f"{name}_cpu_ratio"] = round(bare["cpu_s"] / result["cpu_s"], 3)
        row[f"{name}_peak_mb"] = result["peak_mb"]
    row["load_entities_s"] = round(int(load["count"]) / load["wall_s"])
    return row


def bench_delta(establishments: int, latencies: list[float], concurrency: int) -> list[dict[str, Any]]:
    from sync_bench import bench_sync

    rows = []
    for run in bench_sync(establishments, SEED, latencies, [concurrency])["runs"]:
        rows.append(
            {
                "establishments": run["listed"],
                "latency_ms": round(1000 * run["latency_s"]),
                "concurrency": run["concurrency"],
                "network_alone_s": run["ideal_s"],
                "wall_s": run["wall_s"],
                "cpu_s": run["cpu_s"],
                "cpu_ms_per_establishment": run["cpu_ms_per_establishment"],
                "effective_parallelism": run["effective_parallelism"],
                "wall_over_network": run["wall_over_ideal"],
                "peak_mb": run.get("peak_pss_mb", run["peak_rss_mb"]),
                "phases_cpu_s": run["phases_cpu_s"],
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    columns = [column for column in rows[0] if not isinstance(rows[0][column], dict)]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[column]) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=["75MB"], help="load file sizes (default 75MB)")
    parser.add_argument("--large", action="store_true", help="also the load at 1GB")
    parser.add_argument("--no-load", action="store_true")
    parser.add_argument("--no-delta", action="store_true")
    parser.add_argument("--delta-establishments", type=int, default=300)
    parser.add_argument("--latencies", type=float, nargs="+", default=[0.0, 0.2], help="seconds")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--keep", action="store_true", help="keep the SQLite stores")
    parser.add_argument("--data", type=Path, default=DATA, help="where generated files go")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where bench.json goes")
    args = parser.parse_args(argv)
    sizes = [*args.sizes, *(["1GB"] if args.large and "1GB" not in args.sizes else [])]
    meta: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_before": [round(value, 2) for value in os.getloadavg()],
    }
    load_rows = [] if args.no_load else [bench_load(args.data, label, args.keep) for label in sizes]
    for row in load_rows:
        print(json.dumps(row), flush=True)
    delta_rows = (
        [] if args.no_delta else bench_delta(args.delta_establishments, args.latencies, args.concurrency)
    )
    for row in delta_rows:
        print(json.dumps(row), flush=True)
    meta["load_average_after"] = [round(value, 2) for value in os.getloadavg()]
    args.results.mkdir(parents=True, exist_ok=True)
    figures = {**meta, "load": load_rows, "delta": delta_rows}
    (args.results / "bench.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\n{meta}")
    for title, rows in (("load", load_rows), ("delta", delta_rows)):
        if rows:
            print(f"\n{title}\n{table(rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
