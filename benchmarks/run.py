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
    out = subprocess.run(
        [sys.executable, str(HERE / "_measure.py"), *args], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


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
        load = measure("load", str(path), f"sqlite:///{store}")
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
                "iterparse_rss_mb": bare["peak_rss_mb"],
                "load_s": load["wall_s"],
                "load_mb_s": round(mb / float(str(load["wall_s"])), 1),
                "load_entities_s": round(int(str(load["count"])) / float(str(load["wall_s"]))),
                "load_peak_rss_mb": load["peak_rss_mb"],
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
