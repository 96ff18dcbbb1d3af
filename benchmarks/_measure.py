"""Run one measured task in a fresh process and print its figures as JSON (used by benchmarks/run.py).

python benchmarks/_measure.py iterparse FILE
python benchmarks/_measure.py load FILE STORE_URL [READERS]
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


def load(path: Path, store_url: str, readers: int | None = None) -> tuple[int, int]:
    """``rorclient load`` as the command line runs it: ``readers`` reader processes (None: its default)."""
    from rorclient.loader import load_files
    from rorclient.store import open_store

    with open_store(store_url) as store:
        report = load_files(store, [path], source="bench", readers=readers)
    return report.entities, report.readers


def main() -> None:
    task, file = sys.argv[1], Path(sys.argv[2])
    started, cpu = time.perf_counter(), time.process_time()
    readers = 1
    if task == "iterparse":
        count = bare_iterparse(file)
    elif task == "read":
        count = read_only(file)
    elif task == "load":
        count, readers = load(file, sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else None)
    else:
        raise SystemExit(f"unknown task {task}")
    wall = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # reader processes, once they have ended
    figures = {
        "task": task,
        "file": str(file),
        "bytes": file.stat().st_size,
        "count": count,
        "readers": readers,
        "wall_s": round(wall, 3),
        "cpu_s": round(time.process_time() - cpu + children.ru_utime + children.ru_stime, 3),
        "peak_rss_mb": round(own.ru_maxrss / 1024, 1),
        "reader_peak_rss_mb": round(children.ru_maxrss / 1024, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
