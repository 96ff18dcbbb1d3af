"""``rorclient demo``: the whole path on one machine with no credentials.

It generates a synthetic region (schema-valid CSD, real nomenclature codes), loads it into the configured
store (the default SQLite file unless told otherwise) as the source ``demo``, and shows what an
application can then query. Loading it twice changes nothing: the second run reports no change.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from rorclient.config import Settings
from rorclient.loader import load_files
from rorclient.models import EntityKind
from rorclient.store import redact_url
from rorclient.store.base import EntityQuery, Store
from rorclient.store.registry import open_store

__all__ = ["DEMO_SOURCE", "run_demo"]

DEMO_SOURCE = "demo"


def run_demo(settings: Settings, *, establishments: int, seed: int, quiet: bool = False) -> int:
    from rorclient.sandbox.dataset import write_extraction

    def say(text: str) -> None:
        if not quiet:
            print(text)

    with tempfile.TemporaryDirectory(prefix="rorclient-demo-") as tmp:
        extraction = Path(tmp) / "extraction.xml.gz"
        write_extraction(extraction, seed=seed, establishments=establishments, compress="gzip")
        say(
            f"1. generated a synthetic extraction: {establishments} establishments, "
            f"{extraction.stat().st_size / 1e3:.0f} kB gzip"
        )
        with open_store(settings.store.url) as store:
            report = load_files(store, [extraction], source=DEMO_SOURCE)
            changed = ", ".join(f"{n} {kind}" for kind, n in report.counts.items() if n) or "no change"
            say(
                f"2. loaded {report.entities} entities into {redact_url(settings.store.url)} "
                f"in {report.seconds:.2f} s: {changed}"
            )
            _summarise(store, say)
    return 0


def _summarise(store: Store, say: Callable[[str], None]) -> None:
    stats = store.stats()
    say("3. the store now holds: " + ", ".join(f"{n} {kind}" for kind, n in sorted(stats.by_kind.items())))
    establishments = store.find(EntityQuery(kind=EntityKind.ESTABLISHMENT, source=DEMO_SOURCE, limit=200))
    if not establishments.items:
        return
    # Show the richest internal organisation: the one with the most units.
    establishment = max(
        establishments.items,
        key=lambda row: store.find(EntityQuery(kind=EntityKind.UNIT, establishment=row.id, limit=1)).total,
    )
    say(f"4. one establishment and its internal organisation ({establishment.id}):")
    say(f"   {establishment.name}" + (" [closed]" if establishment.closed else ""))
    _tree(store, establishment.id, "   ", say, depth=0)
    query = EntityQuery(kind=EntityKind.UNIT, source=DEMO_SOURCE, closed=True, limit=1)
    say(f"5. closed units in the demo source: {store.find(query).total}")
    say("   next: `rorclient export --format jsonl`, `rorclient status`, `rorclient changes --since 0`")


def _tree(store: Store, parent: str, indent: str, say: Callable[[str], None], depth: int) -> None:
    if depth > 4:
        return
    shown = 3
    children = store.find(EntityQuery(parent=parent, limit=shown))
    for child in children.items:
        mark = " [closed]" if child.closed else ""
        say(f"{indent}└─ {child.kind.value}: {child.name} ({child.id}){mark}")
        if child.kind is EntityKind.UNIT:
            _tree(store, child.id, indent + "   ", say, depth + 1)
    if children.total > shown:
        say(f"{indent}   … and {children.total - shown} more")
