"""End to end against the sandbox (mTLS, SOAP, extraction): after every round of random changes and one
sync, the store's live export equals the sandbox's ground truth — with and without injected faults.

``RORCLIENT_SYNC_ROUNDS`` sets the number of rounds (default 20, the acceptance figure).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rorclient.config import Settings, ror_client
from rorclient.models import EntityKind
from rorclient.ror import ClientOptions, RetryPolicy
from rorclient.sandbox import Sandbox
from rorclient.sandbox.mutations import MUTATION_KINDS
from rorclient.store import open_store
from rorclient.store.base import Change, Store
from rorclient.sync import RunStatus, Sync, SyncOptions
from tests._sync_fakes import mutate_sandbox

ROUNDS = int(os.environ.get("RORCLIENT_SYNC_ROUNDS", "20"))
SOURCE = "sandbox"
FIELDS = ("kind", "id", "parent", "name", "closed", "deleted")

Row = tuple[Any, ...]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(establishments=25, seed=11) as sb:
        yield sb


@pytest.fixture
def settings(sandbox: Sandbox, tmp_path: Path) -> Settings:
    config = sandbox.write_client_config(tmp_path / "client.toml", source_name=SOURCE)
    return Settings.load(config, environ={})


pytest_plugins = ("tests.pg",)


@pytest.fixture(params=["sqlite", "memory", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The end-to-end sync must hold on every built-in store."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ror.db'}"
    elif request.param == "memory":
        url = "memory://"
    else:
        url = request.getfixturevalue("postgres_url")
    with open_store(url) as opened:
        yield opened


def truth(sandbox: Sandbox) -> set[Row]:
    return {tuple(row[field] for field in FIELDS) for row in sandbox.snapshot()}


def export(store: Store) -> set[Row]:
    return {
        (row.kind.value, row.id, row.parent, row.name, row.closed, row.deleted)
        for row in store.iter_entities(source=SOURCE, include_deleted=False)
    }


def check_truth_is_sound(sandbox: Sandbox) -> None:
    """The comparison is only meaningful if the sandbox never gives one unit id to two establishments."""
    homes: dict[str, str] = {}
    for key in sandbox.establishment_ids():
        offer = sandbox.offer(key)
        assert offer is not None
        for unit in offer.units:
            other = homes.setdefault(unit.id, key)
            assert other == key, f"sandbox bug: unit {unit.id} is in both {other} and {key}"


def mutate_round(sandbox: Sandbox, number: int) -> list[str]:
    """One round: a kind taken in turn (so that 9 rounds cover every kind) and four random ones."""
    sandbox.clock.advance(seconds=30)
    kind = MUTATION_KINDS[number % len(MUTATION_KINDS)]
    done = mutate_sandbox(sandbox, 1, kinds=[kind], seed=1000 + number)
    done += mutate_sandbox(sandbox, 4, seed=number)
    check_truth_is_sound(sandbox)
    return [mutation.kind for mutation in done]


def test_pull_then_rounds_of_changes_keep_the_store_equal_to_the_sandbox(
    sandbox: Sandbox, settings: Settings, store: Store, tmp_path: Path
) -> None:
    with Sync.from_settings(settings, store=store, options=SyncOptions(data_dir=tmp_path / "data")) as sync:
        pulled = sync.pull()
        assert pulled.status is RunStatus.SUCCESS and pulled.bytes > 0
        assert export(store) == truth(sandbox)
        kinds: Counter[str] = Counter()
        for number in range(ROUNDS):
            kinds.update(mutate_round(sandbox, number))
            report = sync.sync()
            assert report.status is RunStatus.SUCCESS, report.summary()
            assert export(store) == truth(sandbox), f"round {number}: {report.summary()}"
        if len(MUTATION_KINDS) <= ROUNDS:
            assert set(kinds) == set(MUTATION_KINDS)
        # Idempotence: the next cycle lists the last round again (overlap) and changes nothing.
        seen: list[Change] = []
        sync.on_change(seen.append)
        again = sync.sync()
        assert again.listed > 0 and again.total_changes == 0 and seen == []
        # A moved unit was moved, never deleted; closures were closures.
        logged = Counter(change.change.value for change in store.changes())
        assert logged["moved"] > 0 and logged["closed"] > 0 and logged["created"] > 0


def test_with_faults_on_a_fifth_of_lectures_the_store_converges_and_the_pending_list_empties(
    sandbox: Sandbox, settings: Settings, store: Store, tmp_path: Path
) -> None:
    client = ror_client(settings.source(SOURCE), options=ClientOptions(retry=RetryPolicy.no_retry()))
    options = SyncOptions(data_dir=tmp_path / "data")
    with client, Sync(source=SOURCE, client=client, store=store, options=options) as sync:
        sync.pull()
        sandbox.faults.add("lecture", "503", rate=0.1)
        sandbox.faults.add("lecture", "soap_fault", rate=0.05)
        sandbox.faults.add("lecture", "reset", rate=0.05)
        partial = 0
        for number in range(ROUNDS):
            mutate_round(sandbox, number)
            report = sync.sync()
            assert report.status in (RunStatus.SUCCESS, RunStatus.PARTIAL)
            partial += report.status is RunStatus.PARTIAL
            check_nothing_unapplied_is_behind_the_watermark(sandbox, store, options.overlap)
        assert partial > 0 and sandbox.stats().get("fault.503", 0) > 0
        sandbox.faults.clear()
        cycles = 0
        while store.pending(SOURCE) or export(store) != truth(sandbox):
            cycles += 1
            assert cycles <= 2, "did not converge within two cycles once the faults stopped"
            sync.sync()
        assert export(store) == truth(sandbox)
        assert store.pending(SOURCE) == []
        fired = {kind: n for kind, n in sandbox.stats().items() if kind.startswith("fault.")}
        print(f"\n{partial}/{ROUNDS} cycles partial; faults {fired}; converged {cycles} cycle(s) after")
    client.close()


def check_nothing_unapplied_is_behind_the_watermark(
    sandbox: Sandbox, store: Store, overlap: dt.timedelta
) -> None:
    """Every establishment whose stored subtree differs from the truth is pending, or changed after
    ``watermark - overlap`` (the next Notif lists it): no change can fall through."""
    state = store.sync_state(SOURCE)
    assert state is not None and state.watermark is not None
    pending = {item.establishment_id for item in store.pending(SOURCE)}
    stored: dict[str, set[Row]] = {}
    for row in store.iter_entities(source=SOURCE, include_deleted=False):
        if row.kind is not EntityKind.LEGAL_ENTITY and row.establishment is not None:
            fields = (row.kind.value, row.id, row.parent, row.name, row.closed)
            stored.setdefault(row.establishment, set()).add(fields)
    for key in sandbox.establishment_ids():
        offer = sandbox.offer(key)
        assert offer is not None
        expected = {
            (entity.kind.value, entity.id, entity.parent_id, entity.name, entity.closed)
            for entity in offer.entities()
            if entity.kind is not EntityKind.LEGAL_ENTITY
        }
        if stored.get(key, set()) == expected or key in pending:
            continue
        newest = max(entity.record.updated for entity in offer.entities())
        assert newest > state.watermark - overlap, f"{key} differs, is not pending, is behind the watermark"
