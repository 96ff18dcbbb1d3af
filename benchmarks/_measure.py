"""Run one measured task in a fresh process and print its figures as JSON (used by benchmarks/run.py).

python benchmarks/_measure.py iterparse FILE
python benchmarks/_measure.py load FILE STORE_URL
python benchmarks/_measure.py read FILE
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def bare_iterparse(path: Path) -> int:
    """The floor: lxml iterparse over the file, clearing elements, doing nothing with them."""
    from lxml import etree

    count = 0
    for _, element in etree.iterparse(str(path), events=("end",), huge_tree=False):
        count += 1
        element.clear(keep_tail=False)
        parent = element.getparent()
        if parent is not None:
            while element.getprevious() is not None:
                del parent[0]
    return count


def read_only(path: Path) -> int:
    from rorclient.csd import read_csd

    return sum(1 for _ in read_csd(path))


def load(path: Path, store_url: str) -> int:
    from rorclient.loader import load_files
    from rorclient.store import open_store

    with open_store(store_url) as store:
        return load_files(store, [path], source="bench").entities


def main() -> None:
    task, file = sys.argv[1], Path(sys.argv[2])
    started, cpu = time.perf_counter(), time.process_time()
    if task == "iterparse":
        count = bare_iterparse(file)
    elif task == "read":
        count = read_only(file)
    elif task == "load":
        count = load(file, sys.argv[3])
    else:
        raise SystemExit(f"unknown task {task}")
    wall = time.perf_counter() - started
    figures = {
        "task": task,
        "file": str(file),
        "bytes": file.stat().st_size,
        "count": count,
        "wall_s": round(wall, 3),
        "cpu_s": round(time.process_time() - cpu, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
