"""Pull of a generated national-scale dataset into PostgreSQL and into SQLite: wall time and rows/s.

    python benchmarks/store_pull.py                          # 50,000 establishments (national scale)
    python benchmarks/store_pull.py --establishments 10000
    python benchmarks/store_pull.py --postgres-url postgresql://user:pw@host/db

A *pull* is what a full extraction does to a store: every entity of one source goes through
``store.bulk_load`` (staging, then one swap transaction). The dataset comes from
:func:`rorclient.sandbox.dataset.generate_dataset` (deterministic, streamed: memory stays flat), so the
figures include generating the entities; the ``generate only`` line measures that part alone, and
``store s`` is the wall time minus it. Each store is pulled twice: ``first`` into an empty store (every
row created), ``again`` with the same snapshot (nothing changes: the weekly refresh's best case).

PostgreSQL: ``--postgres-url`` (a fresh schema is created in that database and dropped afterwards), else
a throwaway cluster from the Debian binaries with PostgreSQL's default settings (fsync on), like
``tests/pg.py``. SQLite: a new file in a temporary directory, with the store's own settings (WAL,
``synchronous=NORMAL``). Results are printed and written to ``benchmarks/results/store_pull.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "store_pull.json"
SOURCE = "bench"


def generate_only(seed: int, establishments: int) -> tuple[int, float]:
    """Entities of the dataset and the seconds it takes to generate them (the floor of every pull)."""
    from rorclient.sandbox.dataset import generate_dataset

    started = time.perf_counter()
    rows = sum(len(list(offer.entities())) for offer in generate_dataset(seed, establishments))
    return rows, time.perf_counter() - started


def pull(store_url: str, seed: int, establishments: int) -> dict[str, Any]:
    """Bulk-load the dataset into ``store_url``; returns the figures of the load."""
    from rorclient.sandbox.dataset import generate_dataset
    from rorclient.store import open_store

    with open_store(store_url) as store:
        started = time.perf_counter()
        with store.bulk_load(source=SOURCE) as load:
            for offer in generate_dataset(seed, establishments):
                load.add_many(offer.entities())
            staged = time.perf_counter()
        finished = time.perf_counter()
        changed = sum(load.result.values())
        entities = sum(store.stats().by_kind.values())
    return {
        "added": load.count,
        "entities": entities,
        "changed": changed,
        "seconds": round(finished - started, 2),
        "staging_seconds": round(staged - started, 2),
        "swap_seconds": round(finished - staged, 2),
    }


@contextlib.contextmanager
def postgres_database(url: str | None) -> Iterator[str]:
    """A store URL naming a fresh schema, in ``url``'s database or in a throwaway cluster."""
    if url is None:
        sys.path.insert(0, str(REPO))
        from tests.pg import TemporaryPostgres, find_bindir

        bindir = find_bindir()
        if bindir is None:
            raise SystemExit("no PostgreSQL binaries: apt-get install postgresql, or pass --postgres-url")
        with TemporaryPostgres(bindir, durable=True, database="rorclient_bench") as started:
            yield f"{started}?schema=bench"
        return
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    yield f"{url}{'&' if '?' in url else '?'}schema={schema}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _describe(result: dict[str, Any]) -> str:
    return (
        f"{result['seconds']:7.1f} s wall, {result['rows_per_second']:>7,} rows/s, "
        f"store {result['store_seconds']:.1f} s (staging {result['staging_seconds']:.1f} s, "
        f"swap {result['swap_seconds']:.1f} s), {result['changed']:,} changes, "
        f"{result['entities']:,} entities stored"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--establishments", type=int, default=50_000, help="default: 50000 (national)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--postgres-url", help="a database to use instead of a throwaway cluster")
    parser.add_argument("--stores", default="postgresql,sqlite", help="comma-separated: postgresql,sqlite")
    args = parser.parse_args()
    stores = [name.strip() for name in args.stores.split(",") if name.strip()]

    rows, generation = generate_only(args.seed, args.establishments)
    print(f"{args.establishments:,} establishments, {rows:,} entities (repeated legal entities included)")
    print(f"generate only: {generation:.1f} s ({rows / generation:,.0f} rows/s)")
    figures: dict[str, Any] = {
        "establishments": args.establishments,
        "rows": rows,
        "generate_seconds": round(generation, 2),
        "python": platform.python_version(),
        "stores": {},
    }
    with contextlib.ExitStack() as stack:
        for name in stores:
            if name == "postgresql":
                url = stack.enter_context(postgres_database(args.postgres_url))
            elif name == "sqlite":
                directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="rorclient-bench-"))
                url = f"sqlite:///{directory}/ror.sqlite3"
            else:
                raise SystemExit(f"unknown store {name!r}: use postgresql or sqlite")
            runs = {}
            for attempt in ("first", "again"):
                result = pull(url, args.seed, args.establishments)
                result["rows_per_second"] = round(rows / result["seconds"])
                result["store_seconds"] = round(result["seconds"] - generation, 2)
                runs[attempt] = result
                print(f"{name:10} {attempt:5}: {_describe(result)}", flush=True)
            figures["stores"][name] = runs
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
