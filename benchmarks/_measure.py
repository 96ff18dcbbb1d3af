"""Run one measured task in a fresh process and print its figures as JSON (used by benchmarks/run.py).

python benchmarks/_measure.py iterparse FILE
python benchmarks/_measure.py load FILE STORE_URL [READERS]
python benchmarks/_measure.py read FILE
python benchmarks/_measure.py walk|rows|floor FILE     (the parts benchmarks/bounds.py reports)
python benchmarks/_measure.py swap FILE STORE_URL       (a one-reader load; prints the swap's time too)
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


def bare_iterparse(path: Path) -> int:
    """The floor: lxml iterparse over the file, clearing elements, doing nothing with them."""
    from lxml import etree

    count = 0
    for _, element in etree.iterparse(str(path), events=("end",), huge_tree=False):
        count += 1
        # Inline, not _release(): a function call per element would slow the reference itself.
        element.clear(keep_tail=False)
        parent = element.getparent()
        if parent is not None:
            while element.getprevious() is not None:
                del parent[0]
    return count


def _release(element: Any) -> None:
    """Clear an element and delete its preceding siblings: the usual flat-memory iterparse idiom."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def read_only(path: Path) -> int:
    from rorclient.csd import read_csd

    return sum(1 for _ in read_csd(path))


def python_walk(path: Path) -> int:
    """A Python walk reading every element's tag, text and attributes: what any Python reader pays."""
    from lxml import etree

    csd = "{urn:ihe:iti:csd:2013}"
    entities = tuple(csd + name for name in ("organization", "service", "facility", "provider", "device"))
    count = 0
    for _, element in etree.iterparse(str(path), events=("end",), tag=entities):
        for node in element.iter():
            _ = (node.tag, node.text, node.attrib.items())
            count += 1
        _release(element)
    return count


def rows(path: Path, share: int = 0, shares: int = 1) -> int:
    """The reader and the serialisation of every entity it builds (the store's row), nothing stored."""
    from rorclient.csd import read_share
    from rorclient.store._sql.rows import staged_row

    count = 0
    for entity in read_share(path, share, shares):
        staged_row(entity)
        count += 1
    return count


def timed_swap(path: Path, store_url: str) -> tuple[int, float]:
    """A one-reader load into a SQLite store, with the time its swap took."""
    from rorclient.store._sql.sqlite import bulk as _sqlite_bulk

    spent = 0.0
    swap = _sqlite_bulk.SqliteBulkLoad.swap

    def timed(self: _sqlite_bulk.SqliteBulkLoad) -> None:
        nonlocal spent
        started = time.perf_counter()
        swap(self)
        spent = time.perf_counter() - started

    _sqlite_bulk.SqliteBulkLoad.swap = timed  # type: ignore[method-assign]
    count, _ = load(path, store_url, 1)
    return count, spent


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
    extra: dict[str, float] = {}
    if task == "walk":
        count = python_walk(file)
    elif task == "rows":
        count = rows(file)
    elif task == "floor":  # a reader that builds almost nothing: what every reader pays
        count = rows(file, 0, 1000)
    elif task == "swap":
        count, swap_s = timed_swap(file, sys.argv[3])
        extra["swap_s"] = round(swap_s, 3)
    elif task == "iterparse":
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
        **extra,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
