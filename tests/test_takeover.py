"""Delta cycles and refreshes never take over rows another source holds without ``force``.

Two sources of one store hold disjoint establishments ("idf" the first few, "test" the rest). When an
answer read by "test" holds an establishment "idf" holds (two sources configured over the same
establishments, a region moved), writing it would move those rows to "test" silently: the run is refused
(exit 8, nothing committed, not latched), a dry run and the report count them, ``force`` moves them and
says so at WARNING. Legal entities and professionals are shared by design and never counted.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rorclient.daemon import Daemon, DaemonOptions
from rorclient.health import read_health
from rorclient.models import EntityKind, Offer
from rorclient.sandbox.dataset import generate_dataset
from rorclient.sources.fhir import FhirSource
from rorclient.store.base import SHARED_KINDS, Store, SyncState
from rorclient.store.memory import MemoryStore
from rorclient.store.registry import open_store
from rorclient.store.sqlite import SqliteStore
from rorclient.sync import RunStatus, SafetyBreakerError, Sync, SyncOptions
from tests._fhir_fake import FakeFhirApi, region_resources
from tests._sync_fakes import FakeRor, live_rows

OTHER = "idf"
SOURCE = "test"
FAST = {"interval": dt.timedelta(seconds=0.01), "jitter": 0.0, "retry_after": dt.timedelta(seconds=0.01)}


def owned(offer: Offer) -> int:
    """Rows of ``offer`` a takeover counts (legal entities and professionals are shared)."""
    return len({(e.kind, e.id) for e in offer.entities() if e.kind not in SHARED_KINDS})


def sources_of(store: Store, offer: Offer) -> set[str]:
    """The sources holding the live rows of ``offer`` that a takeover counts."""
    rows = (store.get(e.kind, e.id) for e in offer.entities() if e.kind not in SHARED_KINDS)
    return {row.source for row in rows if row is not None}


pytest_plugins = ("tests.pg",)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        opened: Store = MemoryStore()
    elif request.param == "sqlite":
        opened = SqliteStore(tmp_path / "ror.db")
    else:
        opened = open_store(request.getfixturevalue("postgres_url"))
    yield opened
    opened.close()


@pytest.fixture
def ror() -> FakeRor:
    return FakeRor(8)


def engine(ror: FakeRor, store: Store, tmp_path: Path, source: str = SOURCE) -> Sync:
    options = SyncOptions(data_dir=tmp_path / "data")
    return Sync(store=store, client=ror, source=source, options=options, clock=lambda: ror.now)


@pytest.fixture
def split(ror: FakeRor, store: Store, tmp_path: Path) -> tuple[list[str], Sync]:
    """ "idf" pulls the first three establishments, "test" the others; returns idf's and test's engine."""
    theirs = list(ror.offers)[:3]
    ror.extraction_filter = lambda key: key in theirs
    engine(ror, store, tmp_path, OTHER).pull()
    ror.extraction_filter = lambda key: key not in theirs
    ours = engine(ror, store, tmp_path)
    ours.pull()
    ror.extraction_filter = None
    ror.hidden = set(theirs[1:])  # Notif lists only the first of idf's establishments when it changes
    assert sources_of(store, ror.offers[theirs[0]]) == {OTHER}
    return theirs, ours


def state_of(store: Store) -> tuple[Any, ...]:
    return live_rows(store), store.stats().last_change_seq, store.sync_state(SOURCE)


# ---- CSD delta ----------------------------------------------------------------------------------


def test_a_delta_cycle_refuses_to_take_over_another_sources_rows_unless_forced(
    ror: FakeRor, store: Store, split: tuple[list[str], Sync], caplog: pytest.LogCaptureFixture
) -> None:
    theirs, sync = split
    ror.mutate(theirs[0], "rename")
    ror.mutate(list(ror.offers)[-1], "rename")  # one of ours changes too: the cycle applies neither
    expected = {OTHER: owned(ror.offers[theirs[0]])}
    before = state_of(store)

    with pytest.raises(SafetyBreakerError) as refused:
        sync.sync()
    report = refused.value.report
    assert refused.value.exit_code == 8 and report.status is RunStatus.BLOCKED
    assert report.takeovers == expected
    message = str(refused.value)
    assert f"would take over {expected[OTHER]} live rows held by source 'idf'" in message
    assert f"establishment {theirs[0]}" in message and "nothing was committed" in message
    assert state_of(store) == before, "the cycle commits nothing, its own changes included"
    assert store.breaker_latches() == [], "not latched: which source holds the rows is the question"
    assert store.runs()[0].status == "blocked"

    with pytest.raises(SafetyBreakerError):  # not latched, but asked again: refused again
        sync.sync()
    dry = sync.sync(dry_run=True)
    assert dry.status is RunStatus.DRY_RUN and dry.takeovers == expected and state_of(store) == before
    assert "taking over" in dry.summary()

    with caplog.at_level(logging.WARNING, logger="rorclient.sync"):
        forced = sync.sync(force=True)
    assert forced.status is RunStatus.SUCCESS and forced.takeovers == expected
    assert sources_of(store, ror.offers[theirs[0]]) == {SOURCE}
    assert any(
        record.levelno == logging.WARNING
        and "taking over" in record.getMessage()
        and "forced" in record.getMessage()
        for record in caplog.records
    )
    assert sync.sync().takeovers == {}, "the rows are the source's own now"


def test_a_delta_cycle_over_its_own_rows_takes_nothing_over(
    ror: FakeRor, store: Store, split: tuple[list[str], Sync]
) -> None:
    theirs, sync = split
    ror.hidden = set(theirs)
    ror.mutate(list(ror.offers)[-1], "new_unit")
    report = sync.sync()
    assert report.status is RunStatus.SUCCESS and report.takeovers == {} and report.total_changes > 0


def test_shared_legal_entities_are_not_takeovers(ror: FakeRor, store: Store, tmp_path: Path) -> None:
    # "idf" holds a legal entity of one of "test"'s establishments: regional sources share them.
    ours = engine(ror, store, tmp_path)
    ours.pull()
    key = next(iter(ror.offers))
    legal = ror.offers[key].legal_entities[0]
    with store.transaction() as transaction:
        transaction.replace_establishment(
            Offer(legal_entities=(legal,)), source=OTHER, establishment_id="9999999999"
        )
    assert store.get(EntityKind.LEGAL_ENTITY, legal.id).source == OTHER  # type: ignore[union-attr]
    ror.mutate(key, "rename")
    assert ours.sync().status is RunStatus.SUCCESS


# ---- refresh ------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["establishment", "unit"])
def test_a_refresh_refuses_to_take_over_another_sources_rows_unless_forced(
    ror: FakeRor, store: Store, split: tuple[list[str], Sync], target: str, caplog: pytest.LogCaptureFixture
) -> None:
    theirs, sync = split
    offer = ror.offers[theirs[0]]
    identifier = theirs[0] if target == "establishment" else offer.units[0].id
    before = state_of(store)

    with pytest.raises(SafetyBreakerError) as refused:
        sync.refresh(**{target: identifier})
    report = refused.value.report
    assert refused.value.exit_code == 8 and report.status is RunStatus.BLOCKED
    assert report.takeovers[OTHER] > 0 and f"{target} {identifier}" in str(refused.value)
    assert state_of(store) == before and store.breaker_latches() == []

    dry = sync.refresh(**{target: identifier}, dry_run=True)
    assert dry.status is RunStatus.DRY_RUN and dry.takeovers == report.takeovers
    assert state_of(store) == before

    with caplog.at_level(logging.WARNING, logger="rorclient.sync"):
        forced = sync.refresh(**{target: identifier}, force=True)
    assert forced.status is RunStatus.SUCCESS and forced.takeovers == report.takeovers
    if target == "establishment":
        assert forced.takeovers == {OTHER: owned(offer)}
        assert sources_of(store, offer) == {SOURCE}
    else:
        assert store.get(EntityKind.UNIT, identifier).source == SOURCE  # type: ignore[union-attr]
    assert any("taking over" in record.getMessage() for record in caplog.records)


# ---- daemon -------------------------------------------------------------------------------------


def test_the_daemon_reports_a_refused_takeover_and_retries_each_interval(
    ror: FakeRor, store: Store, split: tuple[list[str], Sync], tmp_path: Path
) -> None:
    theirs, sync = split
    ror.mutate(theirs[0], "rename")
    before = state_of(store)
    health = tmp_path / "health.json"
    Daemon(sync, DaemonOptions(max_runs=2, health_file=health, full_every=None, **FAST)).run()
    state = read_health(health)
    assert state.status == "blocked" and state.breaker is None
    assert state.last_error is not None and "held by source 'idf'" in state.last_error
    assert state.last_run is not None and state.last_run.takeovers == {OTHER: owned(ror.offers[theirs[0]])}
    assert [run.status for run in store.runs()[:2]] == ["blocked", "blocked"], "asked again, not held"
    last = sync.status().last_run  # what `rorclient status` shows
    assert last is not None and last.status == "blocked" and "held by source 'idf'" in (last.error or "")
    assert state_of(store) == before


# ---- FHIR delta ---------------------------------------------------------------------------------


def _touch(resources: list[dict[str, Any]], logical: str) -> list[dict[str, Any]]:
    changed = copy.deepcopy(resources)
    for resource in changed:
        if resource["id"] == logical:
            resource["meta"]["lastUpdated"] = "2024-06-02T09:00:00+02:00"
    return changed


def test_a_fhir_delta_refuses_to_take_over_rows_of_a_csd_source_unless_forced(
    store: Store, tmp_path: Path
) -> None:
    region = list(generate_dataset(5, 6))
    held = region[2]  # the CSD source holds this establishment; the FHIR source the others
    site = held.establishments[0].id
    with store.transaction() as transaction:
        transaction.replace_establishment(held, source="csd", establishment_id=site)
        for offer in region:
            if offer is not held:
                transaction.replace_establishment(
                    offer, source="national", establishment_id=offer.establishments[0].id
                )
        transaction.set_sync_state(
            SyncState(
                source="national", watermark=dt.datetime(2024, 6, 1, 14, 0), taken_at=dt.datetime.now(dt.UTC)
            )
        )
    resources = region_resources(region)
    unit = held.units[-1].id.replace("/", "-")
    api = FakeFhirApi(_touch(resources, next(r["id"] for r in resources if r["id"].endswith(unit))))
    with Sync(source=FhirSource("national", api), store=store) as sync:
        before = live_rows(store), store.stats().last_change_seq
        with pytest.raises(SafetyBreakerError) as refused:
            sync.sync()
        assert refused.value.report.takeovers == {"csd": owned(held)}
        assert "held by source 'csd'" in str(refused.value)
        assert (live_rows(store), store.stats().last_change_seq) == before
        assert store.breaker_latches() == []
        forced = sync.sync(force=True)
    assert forced.status is RunStatus.SUCCESS and forced.takeovers == {"csd": owned(held)}
    assert sources_of(store, held) == {"national"}


# ---- the command line, file sources (a file source's sync is a pull) ---------------------------


def test_rorclient_sync_of_a_file_source_refuses_a_takeover_with_exit_8_then_forces_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import time

    from rorclient.cli import EXIT_BLOCKED, main
    from rorclient.csd.writer import write_csd

    offers = list(generate_dataset(7, 6))
    first, second = tmp_path / "a.xml", tmp_path / "b.xml"
    write_csd(offers[:3], first)
    write_csd(offers[3:], second)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[[sources]]\nname = "a"\nkind = "file"\nfiles = ["{first}"]\n'
        f'[[sources]]\nname = "b"\nkind = "file"\nfiles = ["{second}"]\n'
    )
    store = f"sqlite:///{tmp_path / 'ror.db'}"
    base = ["--config", str(config), "--store", store]
    assert main([*base, "pull", "--source", "a"]) == 0
    assert main([*base, "pull", "--source", "b"]) == 0
    write_csd(offers[2:], second)  # b's file now holds one of a's establishments too
    later = time.time() + 5
    os.utime(second, (later, later))
    capsys.readouterr()

    assert main([*base, "sync", "--source", "b"]) == EXIT_BLOCKED
    err = capsys.readouterr().err
    assert f"would take over {owned(offers[2])} live rows held by source 'a'" in err
    with SqliteStore(tmp_path / "ror.db") as opened:
        assert sources_of(opened, offers[2]) == {"a"}
    assert main([*base, "sync", "--source", "b", "--force"]) == 0
    assert "taking over" in capsys.readouterr().out
    with SqliteStore(tmp_path / "ror.db") as opened:
        assert sources_of(opened, offers[2]) == {"b"}
