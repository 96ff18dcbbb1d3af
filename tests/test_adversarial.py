"""Hostile scenarios end to end: the sandbox (mTLS, SOAP, extraction) answers badly, the daemon and the
command line run against it, and after each scenario no row is lost or written where it does not belong.

Each scenario names the promise of docs/sync.md ("Guarantees") it checks.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rorclient.cli import EXIT_BLOCKED, EXIT_OK, EXIT_PARTIAL, EXIT_UNKNOWN_IDENTIFIER, main
from rorclient.config import Settings
from rorclient.daemon import Daemon, DaemonOptions
from rorclient.health import read_health
from rorclient.models import EntityKind
from rorclient.sandbox import Sandbox
from rorclient.store.base import Store
from rorclient.store.sqlite import SqliteStore
from rorclient.sync import RunStatus, Sync

SOURCE = "sandbox"
FAST = {"interval": dt.timedelta(seconds=0.01), "jitter": 0.0, "retry_after": dt.timedelta(seconds=0.01)}

Row = tuple[Any, ...]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(establishments=20, seed=5) as sb:
        yield sb


@pytest.fixture
def config(sandbox: Sandbox, tmp_path: Path) -> Path:
    """A client configuration whose cycles run in batches of 2 (the ratchet needs several batches), one
    Lecture at a time (so that injected faults hit one establishment)."""
    path = sandbox.write_client_config(tmp_path / "client.toml", source_name=SOURCE)
    with path.open("a", encoding="utf-8") as out:
        out.write(
            f"\n[sync]\nbatch_size = 2\nconcurrency = 1\ndata_dir = {json.dumps(str(tmp_path / 'data'))}\n"
        )
    return path


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ror.db'}"


def cli(config: Path, store_url: str, *args: str) -> int:
    return main(["--config", str(config), "--store", store_url, "-q", *args])


def truth(sandbox: Sandbox) -> set[Row]:
    return {(row["kind"], row["id"], row["parent"], row["name"], row["closed"]) for row in sandbox.snapshot()}


def rows(store_url: str) -> set[Row]:
    with SqliteStore(Path(store_url.removeprefix("sqlite:///"))) as store:
        return live(store)


def live(store: Store) -> set[Row]:
    return {
        (row.kind.value, row.id, row.parent, row.name, row.closed)
        for row in store.iter_entities(source=SOURCE, include_deleted=False)
    }


def last_seq(store_url: str) -> int:
    with SqliteStore(Path(store_url.removeprefix("sqlite:///"))) as store:
        return store.stats().last_change_seq


def test_a_mass_unknown_answer_is_held_by_the_daemon_until_an_operator_resets_the_breaker(
    sandbox: Sandbox, config: Path, store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Guarantees: the breaker judges a whole cycle before any write; a tripped breaker is latched; the
    daemon holds a latched source instead of retrying (the ratchet)."""
    assert cli(config, store_url, "pull") == EXIT_OK
    before = rows(store_url)
    assert before == truth(sandbox)
    ids = sandbox.establishment_ids()
    saved = {key: sandbox.offer(key) for key in ids}
    for key in ids[: len(ids) * 3 // 5]:
        sandbox.remove_establishment(key)
    sandbox.clock.advance(seconds=60)
    settings = Settings.load(config, store_url=store_url, environ={})
    health = tmp_path / "health.json"
    with Sync.from_settings(settings, source=SOURCE) as sync:
        Daemon(sync, DaemonOptions(max_runs=5, health_file=health, full_every=None, **FAST)).run()
    assert rows(store_url) == before, "a blocked cycle committed part of a bad answer"
    state = read_health(health)
    assert state.status == "blocked" and state.breaker is not None
    capsys.readouterr()
    assert cli(config, store_url, "status") == EXIT_OK
    assert "latched" in capsys.readouterr().out
    assert cli(config, store_url, "sync") == EXIT_BLOCKED  # a plain sync refuses the latched source
    assert rows(store_url) == before
    # The ROR answers well again; the operator checks and releases the breaker; the next cycle applies.
    for offer in saved.values():
        assert offer is not None
        sandbox.put_offer(offer)
    sandbox.clock.advance(seconds=60)
    assert cli(config, store_url, "breaker", "reset") == EXIT_OK
    assert cli(config, store_url, "sync") == EXIT_OK
    assert rows(store_url) == truth(sandbox)


def test_a_cycle_that_leaves_establishments_pending_exits_10_until_it_completes(
    sandbox: Sandbox, config: Path, store_url: str
) -> None:
    """Guarantee: a partial run is visible to scripts (`rorclient sync && next-step` stops)."""
    assert cli(config, store_url, "pull") == EXIT_OK
    sandbox.clock.advance(seconds=30)
    sandbox.mutate(count=4, seed=3)
    sandbox.faults.add("lecture", "soap_fault", count=4)  # every attempt at the first establishment
    assert cli(config, store_url, "sync") == EXIT_PARTIAL
    sandbox.faults.clear()
    assert cli(config, store_url, "sync") == EXIT_OK
    assert rows(store_url) == truth(sandbox)


@pytest.mark.parametrize(
    ("option", "identifier"), [("--establishment", "1999999999"), ("--unit", "99/9999999")]
)
def test_refresh_of_an_identifier_nobody_knows_exits_11_and_stores_nothing(
    sandbox: Sandbox, config: Path, store_url: str, option: str, identifier: str
) -> None:
    """Guarantee: an operator's typo never passes for a successful refresh."""
    assert cli(config, store_url, "pull") == EXIT_OK
    before, seq = rows(store_url), last_seq(store_url)
    assert cli(config, store_url, "refresh", option, identifier) == EXIT_UNKNOWN_IDENTIFIER
    assert rows(store_url) == before and last_seq(store_url) == seq


def test_an_answer_older_than_the_store_is_kept_out_and_read_again(
    sandbox: Sandbox, config: Path, store_url: str
) -> None:
    """Guarantee: answers never go backwards (a lagging replica cannot undo a change)."""
    settings = Settings.load(config, store_url=store_url, environ={})
    with Sync.from_settings(settings, source=SOURCE) as sync:
        sync.pull()
        key = sandbox.establishment_ids()[0]
        old = sandbox.offer(key)
        assert old is not None
        sandbox.clock.advance(seconds=60)
        now = sandbox.clock.now()
        site = old.establishments[0]
        renamed = site.model_copy(
            update={"name": "RENAMED", "record": site.record.model_copy(update={"updated": now})}
        )
        sandbox.put_offer(old.model_copy(update={"establishments": (renamed,)}))
        assert sync.sync().status is RunStatus.SUCCESS
        # The old version comes back, one of its units stamped later so that Notif lists it.
        sandbox.clock.advance(seconds=60)
        unit = old.units[0]
        bumped = unit.model_copy(
            update={"record": unit.record.model_copy(update={"updated": sandbox.clock.now()})}
        )
        sandbox.put_offer(old.model_copy(update={"units": (bumped, *old.units[1:])}))
        report = sync.sync()
        assert report.stale == 1 and report.status is RunStatus.PARTIAL
        stored = sync.store.get(EntityKind.ESTABLISHMENT, key)
        assert stored is not None and stored.name == "RENAMED"
        assert [item.establishment_id for item in sync.store.pending(SOURCE)] == [key]


def test_an_operator_accepts_a_real_mass_removal_through_the_command_line(
    sandbox: Sandbox, config: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Guarantee: a latched breaker lets real changes through only on an operator's decision."""
    assert cli(config, store_url, "pull") == EXIT_OK
    ids = sandbox.establishment_ids()
    for key in ids[: len(ids) // 2]:
        sandbox.remove_establishment(key)
    sandbox.clock.advance(seconds=60)
    before = rows(store_url)
    assert cli(config, store_url, "sync") == EXIT_BLOCKED
    assert cli(config, store_url, "sync") == EXIT_BLOCKED  # latched: refused without reading
    assert rows(store_url) == before
    capsys.readouterr()
    assert cli(config, store_url, "breaker", "show", "--json") == EXIT_OK
    (latch,) = json.loads(capsys.readouterr().out)
    assert latch["source"] == SOURCE and latch["deletions"] > latch["limit"] and not latch["accepted"]
    assert cli(config, store_url, "breaker", "accept") == EXIT_OK
    assert cli(config, store_url, "sync") == EXIT_OK
    sites = {row for row in rows(store_url) if row[0] != "legal_entity"}
    assert sites == {row for row in truth(sandbox) if row[0] != "legal_entity"}
    capsys.readouterr()
    assert cli(config, store_url, "breaker", "show", "--json") == EXIT_OK
    assert json.loads(capsys.readouterr().out) == []
