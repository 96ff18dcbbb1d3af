"""End to end over the sandbox's FHIR face: a pull, rounds of mutations and syncs, a refresh and a last
pull converge exactly on the sandbox's truth; a region synced over CSD then over FHIR keeps its rows;
truncated deltas are split or replaced by a pull, never applied in part; faults are survived."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rorclient.cli import main
from rorclient.config import Settings
from rorclient.daemon import Daemon, DaemonOptions
from rorclient.errors import SafetyBreakerError
from rorclient.health import read_health
from rorclient.models import EntityKind
from rorclient.progress import describe_progress
from rorclient.sandbox import Sandbox
from rorclient.sandbox.mutations import MUTATION_KINDS
from rorclient.store import open_store
from rorclient.store.base import Store
from rorclient.sync import ProgressEvent, RunStatus, Sync, SyncOptions
from tests._sync_fakes import mutate_sandbox

SOURCE = "sandbox"
FHIR_SOURCE = "sandbox-fhir"
FIELDS = ("kind", "id", "parent", "name", "closed", "deleted")
Row = tuple[Any, ...]


def start(**settings: Any) -> Sandbox:
    values: dict[str, Any] = {"establishments": 15, "seed": 11, "fhir_poll_retry_after": 0}
    values.update(settings)
    return Sandbox(**values).start()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    sb = start()
    try:
        yield sb
    finally:
        sb.stop()


def fhir_settings(sandbox: Sandbox, path: Path) -> Settings:
    return Settings.load(sandbox.write_client_config(path, SOURCE, kinds=("fhir",)), environ={})


pytest_plugins = ("tests.pg",)


@pytest.fixture(params=["sqlite", "memory", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The FHIR path must hold on every built-in store."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ror.db'}"
    elif request.param == "memory":
        url = "memory://"
    else:
        url = request.getfixturevalue("postgres_url")
    with open_store(url) as opened:
        yield opened


def truth(sandbox: Sandbox) -> dict[tuple[str, str], Row]:
    return {(row["kind"], row["id"]): tuple(row[field] for field in FIELDS) for row in sandbox.snapshot()}


def rows(store: Store, source: str = SOURCE) -> dict[tuple[str, str], Row]:
    return {
        (row.kind.value, row.id): (row.kind.value, row.id, row.parent, row.name, row.closed, row.deleted)
        for row in store.iter_entities(source=source, include_deleted=False)
    }


def test_pull_rounds_of_sync_a_refresh_and_a_pull_converge_exactly(
    sandbox: Sandbox, store: Store, tmp_path: Path
) -> None:
    settings = fhir_settings(sandbox, tmp_path / "client.toml")
    with Sync.from_settings(settings, store=store, options=SyncOptions(data_dir=tmp_path / "data")) as sync:
        pulled = sync.pull()
        assert pulled.status is RunStatus.SUCCESS
        assert rows(store) == truth(sandbox)
        kinds: Counter[str] = Counter()
        for number in range(len(MUTATION_KINDS)):
            sandbox.clock.advance(seconds=30)
            kind = MUTATION_KINDS[number % len(MUTATION_KINDS)]
            done = mutate_sandbox(sandbox, 1, kinds=[kind], seed=1000 + number)
            done += mutate_sandbox(sandbox, 3, seed=number)
            kinds.update(mutation.kind for mutation in done)
            report = sync.sync()
            assert report.status is RunStatus.SUCCESS, report.summary()
            expected, got = truth(sandbox), rows(store)
            # every entity the ROR has is in the store exactly as the ROR has it...
            assert {key: got.get(key) for key in expected} == expected, f"round {number}"
            # ...and what the store has beyond it was deleted upstream: a delta never deletes
            assert not (set(got) - set(expected)) or kinds["deletion"] or kinds["move"]
        assert set(kinds) == set(MUTATION_KINDS)
        kept = set(rows(store)) - set(truth(sandbox))
        assert kept, "deletions happened upstream; a delta must not have applied them"
        # A refresh replaces exactly the establishment's subtree: a unit deleted upstream goes.
        gone = next(
            key
            for key in sorted(kept)
            if key[0] == "unit"
            and (site := store_establishment(store, key)) is not None
            and sandbox.offer(site) is not None
        )
        site = store_establishment(store, gone)
        assert site is not None
        refreshed = sync.refresh(establishment=site)
        assert refreshed.status is RunStatus.SUCCESS, refreshed.summary()
        got = rows(store)
        assert gone not in got
        inside = {key: row for key, row in got.items() if store_establishment(store, key) == site}
        assert inside and all(truth(sandbox).get(key) == row for key, row in inside.items())
        # A pull reconciles the deletions, through the breaker.
        final = sync.pull()
        assert final.status is RunStatus.SUCCESS
        assert rows(store) == truth(sandbox)
        # Idempotence: the next delta changes nothing.
        again = sync.sync()
        assert again.total_changes == 0


def store_establishment(store: Store, key: tuple[str, str]) -> str | None:
    stored = store.get(EntityKind(key[0]), key[1])
    return stored.establishment if stored is not None else None


def _entities(store: Store, source: str = SOURCE) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for row in store.iter_entities(source=source, include_deleted=False):
        data = json.loads(row.entity.model_dump_json())
        data.pop("fhir", None)
        found[(row.kind.value, row.id)] = data
    return found


def test_a_region_synced_over_csd_then_over_fhir_keeps_the_same_rows(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    csd = Settings.load(
        sandbox.write_client_config(tmp_path / "csd.toml", SOURCE, kinds=("csd",)), environ={}
    )
    fhir = Settings.load(
        sandbox.write_client_config(tmp_path / "fhir.toml", FHIR_SOURCE, kinds=("fhir",)), environ={}
    )
    with open_store(f"sqlite:///{tmp_path / 'ror.db'}") as store:
        with Sync.from_settings(csd, store=store, options=SyncOptions(data_dir=tmp_path / "data")) as sync:
            sync.pull()
            sandbox.clock.advance(seconds=30)
            mutate_sandbox(sandbox, 4, seed=7)
            assert sync.sync().status is RunStatus.SUCCESS
        over_csd = _entities(store)
        with Sync.from_settings(fhir, store=store, options=SyncOptions(data_dir=tmp_path / "data")) as sync:
            # Moving the region to another source is an operator's decision: refused unless forced.
            # (Legal entities and professionals, shared by regional sources, are not counted.)
            owned = sum(1 for kind, _ in over_csd if kind not in ("legal_entity", "professional"))
            with pytest.raises(SafetyBreakerError, match=f"{owned} live rows held by source 'sandbox'"):
                sync.pull()
            assert _entities(store) == over_csd and _entities(store, FHIR_SOURCE) == {}
            switched = sync.pull(force=True)
            assert switched.status is RunStatus.SUCCESS
            assert switched.takeovers == {SOURCE: owned}
            counts = switched.counts
            assert counts.get("created", 0) == 0 and counts.get("deleted", 0) == 0, counts
            assert _entities(store, FHIR_SOURCE) == over_csd  # same identities, same content
            assert _entities(store) == {}
            sandbox.clock.advance(seconds=30)
            mutate_sandbox(sandbox, 4, seed=8)
            assert sync.sync().status is RunStatus.SUCCESS
            expected, got = truth(sandbox), rows(store, FHIR_SOURCE)
            assert {key: got.get(key) for key in expected} == expected


def test_truncated_deltas_are_split_or_replaced_by_a_pull_never_applied_in_part(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = start(fhir_search_limit=6)
    try:
        settings = fhir_settings(sandbox, tmp_path / "client.toml")
        with (
            open_store("memory://") as store,
            Sync.from_settings(
                settings, store=store, options=SyncOptions(data_dir=tmp_path / "data")
            ) as sync,
        ):
            sync.pull()
            for seed in range(4):  # changes spread over time: windows can be split under the limit
                sandbox.clock.advance(seconds=60)
                mutate_sandbox(sandbox, 2, seed=seed, kinds=["rename"])
            with caplog.at_level("INFO", logger="rorclient.fhir"):
                split = sync.sync()
            assert split.status is RunStatus.SUCCESS
            assert "truncated" in caplog.text and "split at" in caplog.text
            expected, got = truth(sandbox), rows(store)
            assert {key: got.get(key) for key in expected} == expected
            sandbox.clock.advance(seconds=60)
            mutate_sandbox(sandbox, 12, seed=99, kinds=["rename", "new_unit", "contact_change"])
            with caplog.at_level("WARNING", logger="rorclient.sync"):
                pulled_instead = sync.sync()  # all at one instant: no window is small enough
            assert "pulling instead" in caplog.text
            assert pulled_instead.status is RunStatus.SUCCESS
            assert rows(store) == truth(sandbox)  # a whole snapshot, not part of a delta
            assert pulled_instead.entities == len(truth(sandbox))
    finally:
        sandbox.stop()


def test_a_regional_source_pulls_and_syncs_its_regions_only(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.write_client_config(tmp_path / "client.toml", SOURCE, kinds=("fhir",))
    everything = truth(sandbox)
    units = [key[1] for key in everything if key[0] == "unit" and "/" in key[1]]
    region = sorted(units)[len(units) // 2].split("/")[0]
    config.write_text(config.read_text() + f'regions = ["{region}"]\n', encoding="utf-8")
    settings = Settings.load(config, environ={})

    def regional() -> dict[tuple[str, str], Row]:
        sites = {
            site
            for site in sandbox.establishment_ids()
            if any(
                unit.id.startswith(f"{region}/") and unit.level.value == "elementary_unit"
                for unit in sandbox.offer(site).units  # type: ignore[union-attr]
            )
        }
        expected = {}
        for row in sandbox.snapshot():
            if row["establishment"] in sites or (
                row["kind"] == "legal_entity"
                and any(
                    r["kind"] == "establishment" and r["parent"] == row["id"] and r["id"] in sites
                    for r in sandbox.snapshot()
                )
            ):
                expected[(row["kind"], row["id"])] = tuple(row[field] for field in FIELDS)
        return expected

    with (
        open_store("memory://") as store,
        Sync.from_settings(settings, store=store, options=SyncOptions(data_dir=tmp_path / "data")) as sync,
    ):
        assert sync.pull().status is RunStatus.SUCCESS
        expected = regional()
        assert expected and len(expected) < len(everything)
        assert rows(store) == expected
        sandbox.clock.advance(seconds=30)
        mutate_sandbox(sandbox, 6, seed=3, kinds=["rename", "contact_change", "new_unit"])
        assert sync.sync().status is RunStatus.SUCCESS
        expected, got = regional(), rows(store)
        assert {key: got.get(key) for key in expected} == expected
        outside = {key for key in got if key not in expected}
        assert not outside, outside  # nothing of another region came in


def test_faults_are_survived(tmp_path: Path) -> None:
    sandbox = start(establishments=8)
    try:
        settings = fhir_settings(sandbox, tmp_path / "client.toml")
        sandbox.faults.add("fhir_download", "expire_token", count=1)
        sandbox.faults.add("fhir_status", "429", count=1)
        with (
            open_store("memory://") as store,
            Sync.from_settings(
                settings, store=store, options=SyncOptions(data_dir=tmp_path / "data")
            ) as sync,
        ):
            assert sync.pull().status is RunStatus.SUCCESS
            assert rows(store) == truth(sandbox)
            sandbox.clock.advance(seconds=30)
            mutate_sandbox(sandbox, 3, seed=5, kinds=["rename", "closure", "new_unit"])
            sandbox.faults.add("fhir_search", "503", count=2)
            assert sync.sync().status is RunStatus.SUCCESS
            assert rows(store) == truth(sandbox)
    finally:
        sandbox.stop()


def test_the_daemon_pulls_then_syncs_a_fhir_source(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = fhir_settings(sandbox, tmp_path / "client.toml")
    with open_store("memory://") as store:
        sync = Sync.from_settings(settings, store=store, options=SyncOptions(data_dir=tmp_path / "data"))
        daemon = Daemon(
            sync,
            DaemonOptions(
                max_runs=2,
                interval=dt.timedelta(seconds=0.01),
                jitter=0.0,
                health_file=tmp_path / "health.json",
            ),
        )
        assert daemon.run() == 0
        assert [run.operation for run in reversed(store.runs())] == ["pull", "sync"]
        assert read_health(tmp_path / "health.json").status == "ok"
        assert rows(store) == truth(sandbox)
        sync.close()


def test_the_cli_pulls_syncs_and_refreshes_a_fhir_source(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.write_client_config(
        tmp_path / "client.toml", SOURCE, kinds=("fhir",), store_url=f"sqlite:///{tmp_path / 'ror.db'}"
    )
    base = ["--config", str(config)]
    assert main([*base, "pull", "--source", SOURCE]) == 0
    sandbox.clock.advance(seconds=30)
    mutate_sandbox(sandbox, 3, seed=4, kinds=["rename", "contact_change"])
    assert main([*base, "sync"]) == 0  # the only source: no --source needed
    site = sandbox.establishment_ids()[0]
    assert main([*base, "refresh", "--establishment", site]) == 0
    unit = sandbox.offer(site).units[0].id  # type: ignore[union-attr]
    assert main([*base, "refresh", "--unit", unit]) == 0
    with open_store(f"sqlite:///{tmp_path / 'ror.db'}") as store:
        assert rows(store) == truth(sandbox)


def test_a_pull_shows_the_exports_x_progress_in_the_progress_display(tmp_path: Path) -> None:
    sandbox = start(fhir_export_polls=2)
    try:
        settings = fhir_settings(sandbox, tmp_path / "ror.toml")
        events: list[ProgressEvent] = []
        with (
            open_store(f"sqlite:///{tmp_path / 'ror.db'}") as store,
            Sync.from_settings(
                settings, store=store, options=SyncOptions(data_dir=tmp_path / "data")
            ) as sync,
        ):
            assert sync.pull(progress=events.append).status is RunStatus.SUCCESS
    finally:
        sandbox.stop()
    notes = [event.note for event in events if event.phase == "download" and event.note]
    assert any(note.startswith("export: Build in progress") for note in notes)  # the server's X-Progress
    line = describe_progress("pull", "download", 0, None, "bytes", elapsed=3, note=notes[0])
    assert line.endswith(notes[0])
