"""identifiantOI is a national key: however the sandbox's data change (moves keep a unit's id,
RG_EXP_019; new units get a fresh one), no unit id is ever held by two establishments at once."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from rorclient.sandbox import Sandbox

START = dt.datetime(2025, 1, 6, 8, 0, 0)


def unit_homes(sandbox: Sandbox) -> dict[str, set[str]]:
    """Every unit id of the sandbox's current data → the establishments holding it."""
    homes: dict[str, set[str]] = defaultdict(set)
    for key in sandbox.establishment_ids():
        offer = sandbox.offer(key)
        assert offer is not None
        for unit in offer.units:
            homes[unit.id].add(key)
    return homes


def test_new_units_never_reuse_an_id_held_by_another_establishment() -> None:
    with Sandbox(establishments=6, seed=3, clock_start=START, clock_ticking=False) as sb:
        created: list[str] = []
        for round_number in range(40):
            sb.clock.advance(minutes=1)
            done = sb.mutate(count=3, kinds=["move", "new_unit"], seed=round_number)
            created.extend(m.unit for m in done if m.kind == "new_unit" and m.unit is not None)
        homes = unit_homes(sb)
        assert {unit: sites for unit, sites in homes.items() if len(sites) > 1} == {}
        assert len(created) == len(set(created))  # an id is issued once, even after its unit moved on
        units = {row["id"]: row["establishment"] for row in sb.snapshot() if row["kind"] == "unit"}
        assert units == {unit: next(iter(sites)) for unit, sites in homes.items()}


def test_new_establishments_do_not_collide_with_units_created_by_mutations() -> None:
    with Sandbox(establishments=6, seed=3, clock_start=START, clock_ticking=False) as sb:
        for round_number in range(10):
            sb.mutate(count=4, kinds=["new_unit", "move", "new_establishment"], seed=100 + round_number)
        assert all(len(sites) == 1 for sites in unit_homes(sb).values())
