"""Embedded use: load CSD files into a store, then query it from an application.

    python examples/query_store.py FILE [FILE...]

Uses an in-memory store so that it leaves nothing behind; pass ``--store sqlite:///ror.sqlite3`` to keep
the data.
"""

from __future__ import annotations

import argparse

from rorclient import EntityKind, EntityQuery, open_store
from rorclient.loader import load_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--store", default="memory://")
    args = parser.parse_args()

    with open_store(args.store) as store:
        report = load_files(store, args.files, source="example")
        print(f"{report.entities} entities loaded: {report.counts}")

        # Elementary units still open, with the establishment they belong to.
        query = EntityQuery(kind=EntityKind.UNIT, closed=False, limit=5)
        for row in store.find(query).items:
            establishment = store.get(EntityKind.ESTABLISHMENT, row.establishment or "")
            where = establishment.name if establishment else "?"
            print(f"{row.id:<14} {row.name:<50} at {where}")

        # Everything that changed, for a downstream consumer that keeps its own cursor.
        for change in store.changes(since=0, limit=3):
            print(change.seq, change.change, change.kind, change.id)


if __name__ == "__main__":
    main()
