"""Which live rows of OTHER sources a planned write would take over.

A row belongs to one source; the store lets a write take it over (a region moving from one source to
another), so the engine decides: a pull, a delta cycle or a refresh that would take over rows another
source holds is refused unless forced. Snapshots count them in the store (``BulkLoad.takeovers``); delta
cycles and refreshes count them here, from their plan: a row taken over is always in the plan's change
set (``subtree.change_for`` reports it ``updated`` when nothing else changed), never as ``created`` or
``deleted`` (a write only tombstones rows of its own source), so only those changes are looked up.
Legal entities and professionals (:data:`~rorclient.store.base.SHARED_KINDS`) are not counted: regional
sources legitimately hold them in turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rorclient.models import EntityKind
from rorclient.store.base import SHARED_KINDS, ChangeKind, ChangeSet, Store

__all__ = ["Takeovers", "describe_takeovers"]

_NEVER_TAKEN = frozenset({ChangeKind.CREATED, ChangeKind.DELETED})


@dataclass
class Takeovers:
    """The rows of other sources a run's plan takes over, gathered establishment by establishment."""

    source: str
    rows: dict[tuple[EntityKind, str], str] = field(default_factory=dict)
    """``{(kind, id): the source holding the live row now}``."""
    establishments: dict[str, set[str]] = field(default_factory=dict)
    """``{former source: what was read to take its rows ("establishment 1880000042", "unit 32/1")}``."""

    def count(self, store: Store, where: str, changes: ChangeSet) -> None:
        """Add the rows of other sources that ``changes`` (the plan of ``where``) would take over."""
        for change in changes.changes:
            if change.kind in SHARED_KINDS or change.change in _NEVER_TAKEN:
                continue
            key = (change.kind, change.id)
            if key in self.rows:
                continue
            row = store.get(change.kind, change.id)
            if row is not None and row.source != self.source:
                self.rows[key] = row.source
                self.establishments.setdefault(row.source, set()).add(where)

    def count_plan(self, store: Store, plan: dict[str, ChangeSet], *, kind: str = "establishment") -> None:
        """:meth:`count` over a plan (``{establishment id: its change set}``; ``kind``: what the keys are)."""
        for key, changes in plan.items():
            self.count(store, f"{kind} {key}", changes)

    def by_source(self) -> dict[str, int]:
        """``{former source: rows taken over}``, sources in order (the reports' ``takeovers``)."""
        counts: dict[str, int] = {}
        for former in self.rows.values():
            counts[former] = counts.get(former, 0) + 1
        return dict(sorted(counts.items()))

    def where(self, shown: int = 5) -> str:
        """``establishment 1880000042, establishment 1600000017 (rows of 'idf')``: a few per source."""
        parts = []
        for former, places in sorted(self.establishments.items()):
            read = sorted(places)
            more = f" and {len(read) - shown} more" if len(read) > shown else ""
            parts.append(f"{', '.join(read[:shown])}{more} (rows of {former!r})")
        return "; ".join(parts)

    def __bool__(self) -> bool:
        return bool(self.rows)


def describe_takeovers(takeovers: dict[str, int]) -> str:
    """``215 live rows held by source 'idf'`` (and ``, 3 ... by source 'x'``)."""
    return ", ".join(
        f"{number} live row{'s' if number != 1 else ''} held by source {source!r}"
        for source, number in sorted(takeovers.items())
    )
