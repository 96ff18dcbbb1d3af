"""What a load costs, part by part, and the best ratio to bare iterparse each design could reach.

    python benchmarks/bounds.py [FILE]     # default: benchmarks/data/extraction-1GB.xml (see run.py)

Runs, each in a fresh process (benchmarks/_measure.py): bare iterparse; a Python walk reading every
element; rorclient's reader with the serialisation of every entity (no store); the floor a reader pays
whatever share it builds; a one-reader load into a new SQLite store, with its swap timed. Then prints the
bounds discussed in benchmarks/README.md for a machine with 2 and 4 cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(*args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(HERE / "_measure.py"), *args], check=True, capture_output=True, text=True
    ).stdout
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return figures


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "data" / "extraction-1GB.xml"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run ./dev bench first (it generates the files)")
    seconds = {task: measure(task, str(path))["wall_s"] for task in ("iterparse", "walk", "rows", "floor")}
    with tempfile.TemporaryDirectory() as scratch:
        load = measure("swap", str(path), f"sqlite:///{scratch}/bounds.db")
    seconds["load, one reader"] = load["wall_s"]
    seconds["swap"] = load["swap_s"]
    staging = max(0.0, load["wall_s"] - seconds["rows"] - load["swap_s"])  # staging and the rest
    seconds["staging and the rest"] = staging
    base = seconds["iterparse"]
    print(f"{path.name}: {path.stat().st_size / 1e6:,.0f} MB")
    print(f"{'part':<24} {'seconds':>8} {'x iterparse':>12}")
    for part, value in seconds.items():
        print(f"{part:<24} {value:>8.1f} {value / base:>12.2f}")
    target = 3 * base
    print(f"\none third of bare iterparse: {target:.1f} s")
    for cores in (2, 4):
        sequential_swap = (seconds["rows"] + staging) / cores + seconds["swap"]
        overlapped = (seconds["rows"] + staging + seconds["swap"]) / cores
        print(
            f"{cores} cores, perfect split: swap after reading {base / sequential_swap:.2f}, "
            f"swap overlapped {base / overlapped:.2f}"
        )


if __name__ == "__main__":
    main()
