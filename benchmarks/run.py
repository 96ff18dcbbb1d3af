"""The load benchmark: `rorclient load` next to bare lxml iterparse over the same generated files.

    ./dev bench                    # ~100 MB and ~1 GB extractions (generated once into benchmarks/data/)
    ./dev bench --sizes 100MB      # only the small one
    ./dev bench --keep             # keep the SQLite stores for inspection

Each measurement runs in a fresh process (benchmarks/_measure.py) so that peak RSS is that task's own.
Results are printed as a table and written to benchmarks/results/load.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

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


def ensure_file(label: str, size: int) -> Path:
    from rorclient.sandbox.dataset import establishments_for_size, write_extraction

    path = DATA / f"extraction-{label}.xml"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    establishments = establishments_for_size(size, seed=SEED)
    print(f"generating {path.name}: {establishments} establishments ...", flush=True)
    started = time.perf_counter()
    write_extraction(path, seed=SEED, establishments=establishments)
    print(f"  {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def measure(*args: str) -> dict[str, object]:
    """Run one task in a fresh process; add the peak memory of its process tree (PSS, Linux)."""
    with subprocess.Popen(
        [sys.executable, str(HERE / "_measure.py"), *args], stdout=subprocess.PIPE, text=True
    ) as process:
        peak_kib = 0
        while process.poll() is None:
            peak_kib = max(peak_kib, _tree_pss_kib(process.pid))
            time.sleep(0.1)
        out = process.stdout.read() if process.stdout else ""
    if process.returncode != 0:
        raise SystemExit(f"_measure.py {' '.join(args)} failed with exit code {process.returncode}")
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    if peak_kib:
        result["tree_peak_pss_mb"] = round(peak_kib / 1024, 1)
    return result


def _tree_pss_kib(pid: int) -> int:
    """Proportional set size of ``pid`` and its descendants: pages shared after a fork count once
    in all, unlike RSS, which counts them in every process."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            if b"_measure.py" not in Path(f"/proc/{current}/cmdline").read_bytes():
                continue  # forked from this script but not yet running the task: not its memory
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:  # gone meanwhile, or not Linux
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=["100MB", "1GB"])
    parser.add_argument("--keep", action="store_true", help="keep the SQLite stores")
    args = parser.parse_args()
    rows = []
    for label in args.sizes:
        path = ensure_file(label, parse_size(label))
        store = DATA / f"bench-{label}.sqlite3"
        for leftover in DATA.glob(f"bench-{label}.sqlite3*"):
            leftover.unlink()
        bare = measure("iterparse", str(path))
        alone = measure("load", str(path), f"sqlite:///{store}", "1")
        for leftover in DATA.glob(f"bench-{label}.sqlite3*"):
            leftover.unlink()
        load = measure("load", str(path), f"sqlite:///{store}")  # the command line's default readers
        if not args.keep:
            for leftover in DATA.glob(f"bench-{label}.sqlite3*"):
                leftover.unlink()
        mb = int(str(bare["bytes"])) / 1e6
        rows.append(
            {
                "file": path.name,
                "mb": round(mb, 1),
                "entities": load["count"],
                "iterparse_mb_s": round(mb / float(str(bare["wall_s"])), 1),
                # Peaks are sampled from outside (PSS of the process tree): a child's own ru_maxrss
                # starts from this script's size (Linux carries the high-water mark across exec).
                "iterparse_peak_mb": bare.get("tree_peak_pss_mb", bare["peak_rss_mb"]),
                "one_reader_load_s": alone["wall_s"],
                "one_reader_ratio": round(float(str(bare["wall_s"])) / float(str(alone["wall_s"])), 2),
                "one_reader_peak_mb": alone.get("tree_peak_pss_mb", alone["peak_rss_mb"]),
                "readers": load["readers"],
                "load_s": load["wall_s"],
                "load_mb_s": round(mb / float(str(load["wall_s"])), 1),
                "load_entities_s": round(int(str(load["count"])) / float(str(load["wall_s"]))),
                "load_peak_mb": load.get("tree_peak_pss_mb", load["peak_rss_mb"]),
                "ratio_to_iterparse": round(float(str(bare["wall_s"])) / float(str(load["wall_s"])), 2),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "rows": rows}
    (RESULTS / "load.json").write_text(json.dumps(meta, indent=2) + "\n")
    print()
    columns = list(rows[0]) if rows else []
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row[column]) for column in columns) + " |")


if __name__ == "__main__":
    main()
