"""Changes over time: mutations are visible through Notif after their time and through Lecture, and the
ground-truth snapshot equals what a client gets by re-reading every establishment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rorclient.csd import read_offer
from rorclient.errors import ConfigError
from rorclient.models import EntityKind, Offer
from rorclient.sandbox import MUTATION_KINDS, Mutation, Sandbox
from rorclient.sandbox.dataset import REFERENCE_TIME
from tests._sandbox_support import (
    NS,
    body_child,
    envelope,
    http_client,
    lecture_body,
    notif_body,
    notif_ids,
    post,
    unit_body,
    unit_ids,
)

START = dt.datetime(2025, 1, 6, 8, 0, 0)
KIND_ORDER = list(EntityKind)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(establishments=40, seed=7, clock_start=START, clock_ticking=False) as sb:
        yield sb


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with http_client(sandbox.pki) as c:
        yield c


def notif(sandbox: Sandbox, client: httpx.Client, since: dt.datetime) -> set[str]:
    return set(notif_ids(body_child(post(client, sandbox.soap_url, envelope(notif_body(since))))))


def lecture(sandbox: Sandbox, client: httpx.Client, establishment: str) -> Offer | None:
    answer = post(client, sandbox.soap_url, envelope(lecture_body(establishment)))
    if body_child(answer).find("csd:error", NS) is not None:
        return None
    return read_offer(answer.content)


def reread(sandbox: Sandbox, client: httpx.Client) -> list[dict[str, Any]]:
    """What a client rebuilds from scratch: Notif since ever for the establishment list, then a Lecture of
    each, in the export-contract shape."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for establishment in sorted(notif(sandbox, client, dt.datetime(1900, 1, 1))):
        offer = lecture(sandbox, client, establishment)
        if offer is None:  # notified, then unknown: removed
            continue
        for entity in offer.entities():
            rows.setdefault(
                (entity.kind.value, entity.id),
                {
                    "kind": entity.kind.value,
                    "id": entity.id,
                    "parent": entity.parent_id,
                    "name": entity.name,
                    "updated": entity.record.updated.isoformat(),
                    "closed": entity.closed,
                    "deleted": False,
                    "establishment": None if entity.kind is EntityKind.LEGAL_ENTITY else establishment,
                },
            )
    return [rows[key] for key in sorted(rows, key=lambda k: (KIND_ORDER.index(EntityKind(k[0])), k[1]))]


def touched(mutation: Mutation) -> set[str]:
    return {mutation.establishment} | (
        {mutation.target_establishment} if mutation.target_establishment else set()
    )


def test_every_kind_of_mutation_shows_in_notif_after_its_time_and_in_lecture(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    assert notif(sandbox, client, REFERENCE_TIME) == set()  # nothing changed since the data were made
    before = {i: sandbox.offer(i) for i in sandbox.establishment_ids()}
    mutations: list[Mutation] = []
    for kind in MUTATION_KINDS:
        sandbox.clock.advance(seconds=60)
        (mutation,) = sandbox.mutate(count=1, kinds=[kind], seed=len(mutations))
        assert (mutation.kind, mutation.at) == (kind, sandbox.clock.now())
        mutations.append(mutation)
    for i, mutation in enumerate(mutations):
        later = set().union(*(touched(m) for m in mutations[i:]))
        assert notif(sandbox, client, mutation.at - dt.timedelta(seconds=1)) == later
        assert touched(mutation) <= later
        changed_after = set().union(set(), *(touched(m) for m in mutations[i + 1 :]))
        assert notif(sandbox, client, mutation.at) == changed_after
    assert notif(sandbox, client, sandbox.clock.now()) == set()
    # ... and through Lecture
    by_kind = {m.kind: m for m in mutations}
    after = {key: lecture(sandbox, client, key) for key in set().union(*(touched(m) for m in mutations))}

    def unit(offer: Offer | None, unit_id: str | None) -> Any:
        assert offer is not None
        return next((u for u in offer.units if u.id == unit_id), None)

    rename = by_kind["rename"]
    assert (
        unit(after[rename.establishment], rename.unit).name
        != unit(before[rename.establishment], rename.unit).name
    )
    new_unit = by_kind["new_unit"]
    created = unit(after[new_unit.establishment], new_unit.unit)
    assert created is not None and created.record.created == created.record.updated == new_unit.at
    assert unit(after[by_kind["closure"].establishment], by_kind["closure"].unit).closed
    assert not unit(after[by_kind["reopening"].establishment], by_kind["reopening"].unit).closed
    assert unit(after[by_kind["deletion"].establishment], by_kind["deletion"].unit) is None
    change = by_kind["contact_change"]
    old_contacts = unit(before[change.establishment], change.unit).contacts
    assert unit(after[change.establishment], change.unit).contacts != old_contacts
    move = by_kind["move"]
    assert unit(after[move.establishment], move.unit) is None
    moved = unit(after[move.target_establishment], move.unit)
    assert moved is not None and moved.establishment_id == move.target_establishment
    fresh = after[by_kind["new_establishment"].establishment]
    assert fresh is not None and by_kind["new_establishment"].establishment not in before
    assert {e.record.created for e in fresh.entities()} == {by_kind["new_establishment"].at}
    closed = after[by_kind["establishment_closure"].establishment]
    assert (
        closed is not None
        and closed.establishments[0].closing_date == by_kind["establishment_closure"].at.date()
    )


def test_snapshot_equals_a_full_reread_before_and_after_mutations(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    assert reread(sandbox, client) == sandbox.snapshot()
    for _ in range(3):
        sandbox.clock.advance(minutes=5)
        sandbox.mutate(count=6)
        assert reread(sandbox, client) == sandbox.snapshot()
    moved = sandbox.mutate(count=1, kinds=["move"])[0]
    snapshot = {(row["kind"], row["id"]): row for row in sandbox.snapshot()}
    assert snapshot[("unit", moved.unit)]["establishment"] == moved.target_establishment


def test_a_moved_unit_is_read_by_its_identifier_in_its_new_establishment(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    move = sandbox.mutate(count=1, kinds=["move"], seed=3)[0]
    answer = body_child(post(client, sandbox.soap_url, envelope(unit_body(move.unit or ""))))
    assert move.unit in unit_ids(answer)
    sites = [
        o.get("code")
        for o in answer.iterfind(".//csd:organizationDirectory/csd:organization[csd:parent]/csd:otherID", NS)
    ]
    assert sites == [move.target_establishment]


def test_a_removed_establishment_is_notified_once_then_unknown(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    victim = sandbox.establishment_ids()[3]
    sandbox.clock.advance(seconds=30)
    assert sandbox.remove_establishment(victim)
    assert not sandbox.remove_establishment(victim)
    assert notif(sandbox, client, sandbox.clock.now() - dt.timedelta(seconds=1)) == {victim}
    assert lecture(sandbox, client, victim) is None
    assert victim not in {row["establishment"] for row in sandbox.snapshot()}
    assert reread(sandbox, client) == sandbox.snapshot()


def test_mutations_are_reproducible_with_a_seed() -> None:
    runs = []
    for _ in range(2):
        with Sandbox(establishments=20, seed=3, clock_start=START, clock_ticking=False) as sb:
            runs.append((sb.mutate(count=8, seed=42), sb.snapshot()))
    assert runs[0] == runs[1]


def test_an_impossible_mutation_kind_raises(sandbox: Sandbox) -> None:
    with pytest.raises(ConfigError, match="unknown mutation"):
        sandbox.mutate(count=1, kinds=["teleport"])
    with pytest.raises(ConfigError, match="negative"):
        sandbox.mutate(count=-1)
    with Sandbox(establishments=1, seed=1) as lonely, pytest.raises(ConfigError, match="move"):
        lonely.mutate(count=1, kinds=["move"])
