"""Sources the engine drives (rorclient.sources): a file source pulled like a web-service extraction,
``rorclient load`` as a pull of an ad-hoc file source (same store, same safety breaker), a source that
streams entities, and what a source without deltas or reads does on ``sync`` and ``refresh``."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from rorclient.cli import EXIT_BLOCKED, main
from rorclient.csd.writer import write_csd
from rorclient.daemon import Daemon, DaemonOptions
from rorclient.errors import ConfigError, RorError
from rorclient.loader import load_files
from rorclient.models import Entity, EntityKind, Offer
from rorclient.sandbox.dataset import generate_dataset, write_extraction
from rorclient.sources import CsdWebServiceSource, FileSource, Snapshot, Source, SourceTraits
from rorclient.store.memory import MemoryStore
from rorclient.store.sqlite import SqliteStore
from rorclient.sync import RunStatus, SafetyBreakerError, Sync, SyncOptions
from tests._sync_fakes import FakeRor

FAST = {"interval": dt.timedelta(seconds=0.01), "jitter": 0.0, "retry_after": dt.timedelta(seconds=0.01)}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def export(capsys: pytest.CaptureFixture[str], store: str, *extra: str) -> list[dict[str, object]]:
    code, out, _ = run(capsys, "--store", store, "export", "--format", "jsonl", *extra)
    assert code == 0
    return [json.loads(line) for line in out.splitlines()]


def live_count(capsys: pytest.CaptureFixture[str], store: str) -> int:
    return len(export(capsys, store, "--live"))


def distinct(offers: Iterable[Offer]) -> int:
    """Entities of ``offers`` (a legal entity shared by two establishments counts once)."""
    return len({(entity.kind, entity.id) for offer in offers for entity in offer.entities()})


def file_config(tmp_path: Path, *files: Path, name: str = "od") -> Path:
    config = tmp_path / "config.toml"
    listed = ", ".join(json.dumps(str(file)) for file in files)
    config.write_text(f'[[sources]]\nname = "{name}"\nkind = "file"\nfiles = [{listed}]\n')
    return config


@pytest.fixture(scope="module")
def national(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("od") / "national.xml.gz"
    write_extraction(path, seed=11, establishments=300, compress="gzip")
    return path


@pytest.fixture(scope="module")
def partial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A well-formed file holding 3 of the 300 establishments (a truncated download, a wrong filter)."""
    path = tmp_path_factory.mktemp("od") / "partial.xml"
    write_extraction(path, seed=11, establishments=3)
    return path


# ---- rorclient load goes through the safety breaker ---------------------------------------------


def test_loading_a_partial_file_trips_the_breaker_and_keeps_the_store(
    tmp_path: Path,
    national: Path,
    partial: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = f"sqlite:///{tmp_path / 'od.db'}"
    assert run(capsys, "--store", store, "load", str(national), "--source", "od")[0] == 0
    before = export(capsys, store)
    code, _, err = run(capsys, "--store", store, "load", str(partial), "--source", "od")
    assert code == EXIT_BLOCKED == SafetyBreakerError.exit_code
    assert "safety breaker" in err and "nothing was committed" in err
    assert "would be deleted" in err  # said before anything is committed
    assert export(capsys, store) == before


def test_a_dry_run_load_says_what_it_would_delete_and_commits_nothing(
    tmp_path: Path,
    national: Path,
    partial: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = f"sqlite:///{tmp_path / 'od.db'}"
    run(capsys, "--store", store, "load", str(national), "--source", "od")
    live = live_count(capsys, store)
    code, out, err = run(
        capsys, "--store", store, "load", str(partial), "--source", "od", "--dry-run", "--json"
    )
    report = json.loads(out)
    assert code == 0 and report["status"] == "dry_run"
    assert report["deletions"] == report["counts"]["deleted"] > 0.9 * live
    assert f"{report['deletions']} of {live} live entities would be deleted" in err
    assert live_count(capsys, store) == live


def test_a_forced_load_of_a_partial_file_commits(
    tmp_path: Path, national: Path, partial: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'od.db'}"
    run(capsys, "--store", store, "load", str(national), "--source", "od")
    code, _, _ = run(capsys, "--store", store, "load", str(partial), "--source", "od", "--force")
    assert code == 0
    assert {row["id"] for row in export(capsys, store, "--live", "--kind", "establishment")} == {
        offer.establishments[0].id for offer in generate_dataset(11, 3)
    }


def test_load_files_raises_the_breaker_error_unless_forced(national: Path, partial: Path) -> None:
    with MemoryStore() as store:
        load_files(store, [national], source="od")
        live = store.stats().by_source["od"]
        with pytest.raises(SafetyBreakerError) as blocked:
            load_files(store, [partial], source="od")
        assert blocked.value.report.status is RunStatus.BLOCKED and blocked.value.report.operation == "load"
        assert store.stats().by_source["od"] == live
        report = load_files(store, [partial], source="od", force=True)
        assert report.status == "success" and report.deletions > 0.9 * live


# ---- a load never takes over another source's rows silently ----------------------------------


def owned_live(capsys: pytest.CaptureFixture[str], store: str, source: str) -> int:
    """Live rows of ``source`` that a load into another source would take over (legal entities and
    professionals are shared by regional sources by design)."""
    rows = export(capsys, store, "--live", "--source", source)
    return sum(1 for row in rows if row["kind"] not in ("legal_entity", "professional"))


def test_loading_a_file_into_a_source_that_does_not_hold_its_rows_is_refused(
    tmp_path: Path, national: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'od.db'}"
    assert run(capsys, "--store", store, "load", str(national), "--source", "idf")[0] == 0
    held = owned_live(capsys, store, "idf")
    before = export(capsys, store)
    code, _, err = run(capsys, "--store", store, "load", str(national))  # default source: files
    assert code == EXIT_BLOCKED == SafetyBreakerError.exit_code
    assert f"would take over {held} live rows held by source 'idf'" in err
    assert "nothing was committed" in err and "--force" in err
    assert export(capsys, store) == before

    code, out, err = run(capsys, "--store", store, "load", str(national), "--dry-run", "--json")
    report = json.loads(out)
    assert code == 0 and report["status"] == "dry_run" and report["takeovers"] == {"idf": held}
    assert f"would take over {held} live rows held by source 'idf'" in err
    assert export(capsys, store) == before

    code, out, _ = run(capsys, "--store", store, "load", str(national), "--force")
    assert code == 0 and f"taking over {held} live rows of source 'idf'" in out
    assert live_count(capsys, store) == len([row for row in before if not row["deleted"]])
    assert export(capsys, store, "--live", "--source", "idf") == []


def test_a_load_into_the_source_holding_the_rows_takes_nothing_over(national: Path) -> None:
    with MemoryStore() as store:
        load_files(store, [national], source="idf")
        report = load_files(store, [national], source="idf")
        assert report.status == "success" and report.takeovers == {}
        assert sum(report.counts.values()) == 0


def test_load_files_and_a_pull_refuse_to_take_over_another_sources_rows(national: Path) -> None:
    with MemoryStore() as store:
        load_files(store, [national], source="idf")
        before = store.stats()
        with pytest.raises(SafetyBreakerError, match="held by source 'idf'") as blocked:
            load_files(store, [national], source="files")
        assert blocked.value.report.status is RunStatus.BLOCKED and blocked.value.report.takeovers["idf"] > 0
        with Sync(source=FileSource("od", [national]), store=store) as sync:
            with pytest.raises(SafetyBreakerError, match="held by source 'idf'"):
                sync.pull()
            assert store.stats().by_source == before.by_source
            assert store.breaker_latches() == [], "an operator question, not a bad upstream answer"
            moved = sync.pull(force=True)
        assert moved.status is RunStatus.SUCCESS and moved.takeovers == blocked.value.report.takeovers
        assert "taking over" in moved.summary()
        assert store.stats().by_source.get("idf", 0) == 0


# ---- [[sources]] kind = "file" -----------------------------------------------------------------


def test_pull_of_a_file_source_gives_the_same_store_as_load(
    tmp_path: Path, national: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pulled, loaded = f"sqlite:///{tmp_path / 'p.db'}", f"sqlite:///{tmp_path / 'l.db'}"
    config = str(file_config(tmp_path, national))
    assert run(capsys, "--config", config, "--store", pulled, "pull")[0] == 0
    assert run(capsys, "--store", loaded, "load", str(national), "--source", "od")[0] == 0
    rows = export(capsys, pulled)
    assert len(rows) > 1000 and rows == export(capsys, loaded)
    _, out, _ = run(capsys, "--config", config, "--store", pulled, "status", "--json")
    assert json.loads(out)["sources"]["od"]["watermark"] is not None


def test_a_file_source_reads_plain_gzip_and_zip_files_as_one_snapshot(tmp_path: Path) -> None:
    offers = list(generate_dataset(20, 6))
    plain, packed, zipped = tmp_path / "a.xml", tmp_path / "b.xml.gz", tmp_path / "c.xml.zip"
    write_csd(offers[:2], plain)
    write_csd(offers[2:4], packed, gzip=True)
    write_csd(offers[4:], tmp_path / "c.xml")
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(tmp_path / "c.xml", "c.xml")
    with MemoryStore() as store, Sync(source=FileSource("od", [plain, packed, zipped]), store=store) as sync:
        report = sync.pull()
        assert report.status is RunStatus.SUCCESS
        assert {row.id for row in store.iter_entities(kind=EntityKind.ESTABLISHMENT)} == {
            offer.establishments[0].id for offer in offers
        }


def test_sync_of_a_file_source_pulls_again_only_when_a_file_changed(tmp_path: Path) -> None:
    path = tmp_path / "od.xml"
    write_extraction(path, seed=5, establishments=4)
    with MemoryStore() as store, Sync(source=FileSource("od", [path]), store=store) as sync:
        sync.pull()
        unchanged = sync.sync()
        assert unchanged.status is RunStatus.SUCCESS and unchanged.entities == 0
        write_extraction(path, seed=5, establishments=5)
        future = dt.datetime.now().timestamp() + 5  # later than the last pull, whatever the clock's grain
        os.utime(path, (future, future))
        changed = sync.sync()
        assert changed.operation == "sync" and changed.entities > 0 and changed.counts["created"] > 0
        assert store.stats().by_source["od"] == distinct(generate_dataset(5, 5))


def test_refresh_and_delta_reads_of_a_file_source_are_refused_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "od.xml"
    write_extraction(path, seed=5, establishments=2)
    config = str(file_config(tmp_path, path))
    store = f"sqlite:///{tmp_path / 'r.db'}"
    assert run(capsys, "--config", config, "--store", store, "pull")[0] == 0
    code, _, err = run(capsys, "--config", config, "--store", store, "refresh", "--establishment", "1")
    assert code == ConfigError.exit_code and "pull it again" in err
    with pytest.raises(ConfigError, match="made of files"):
        FileSource("od", [path]).changed_establishments(dt.datetime(2025, 1, 1))


def test_the_daemon_keeps_a_file_source_current(tmp_path: Path) -> None:
    path = tmp_path / "od.xml"
    write_extraction(path, seed=6, establishments=3)
    with SqliteStore(tmp_path / "d.db") as store:
        sync = Sync(source=FileSource("od", [path]), store=store, options=SyncOptions(data_dir=tmp_path))
        assert Daemon(sync, DaemonOptions(max_runs=2, **FAST)).run() == 0
        write_extraction(path, seed=6, establishments=4)
        future = dt.datetime.now().timestamp() + 5
        os.utime(path, (future, future))
        assert Daemon(sync, DaemonOptions(max_runs=1, **FAST)).run() == 0
        runs = [(run.operation, run.status) for run in reversed(store.runs(limit=10))]
        assert runs == [("pull", "success"), ("sync", "success"), ("sync", "success")]
        assert store.stats().by_source["od"] == distinct(generate_dataset(6, 4))
        sync.close()


# ---- a source that streams entities (the FHIR source's shape) ----------------------------------


class StreamSource:
    """A minimal Source: its snapshot is a stream of entities with its own watermark."""

    traits = SourceTraits(deltas=False, reads=False, rereads_prove_deletions=False)
    certificate = None
    name = "stream"

    def __init__(self, offers: list[Offer], watermark: dt.datetime) -> None:
        self.offers = offers
        self.watermark = watermark

    def snapshot(self, workdir: Path, *, progress: object = None) -> Snapshot:
        entities: Iterator[Entity] = (entity for offer in self.offers for entity in offer.entities())
        return Snapshot(entities=entities, watermark=self.watermark)

    def snapshot_changed(self, since: dt.datetime | None) -> bool:
        return True

    def changed_establishments(
        self, since: dt.datetime, *, activity: tuple[str, ...] = (), patients: tuple[str, ...] = ()
    ) -> list[str]:
        raise AssertionError("no deltas")

    def read_establishments(
        self, establishment_ids: Iterable[str], *, concurrency: int = 4
    ) -> Iterator[tuple[str, Offer | RorError]]:
        raise AssertionError("no reads")

    def read_establishment(self, establishment_id: str) -> Offer:
        raise AssertionError("no reads")

    def read_unit(self, unit_id: str) -> Offer:
        raise AssertionError("no reads")

    def close(self) -> None:
        pass


def test_a_streamed_snapshot_is_swapped_in_with_the_sources_own_watermark() -> None:
    offers = list(generate_dataset(8, 6))
    stamp = dt.datetime(2026, 3, 1, 12, 0)
    source = StreamSource(offers, stamp)
    assert isinstance(source, Source)
    with MemoryStore() as store, Sync(source=source, store=store) as sync:
        first = sync.pull()
        assert first.entities == sum(sum(1 for _ in offer.entities()) for offer in offers)
        assert first.watermark == stamp and store.sync_state("stream").watermark == stamp  # type: ignore[union-attr]
        source.offers = offers[:5]
        second = sync.pull(force=True)
        assert second.counts["deleted"] == sum(1 for _ in offers[5].entities())


def test_a_sync_built_on_a_client_drives_it_as_a_web_service_source(tmp_path: Path) -> None:
    ror = FakeRor(3)
    with MemoryStore() as store:
        sync = Sync(store=store, client=ror, source="t", options=SyncOptions(data_dir=tmp_path))
        assert isinstance(sync.origin, CsdWebServiceSource) and sync.origin.traits.deltas
        assert sync.client is ror
        sync.pull()
        assert ror.calls["extraction"] == 1
        assert not list((tmp_path / "t").iterdir())  # the downloaded extraction is not kept


def test_a_file_replaced_while_it_is_being_pulled_is_pulled_again_by_the_next_sync(tmp_path: Path) -> None:
    # The operator (or a cron job) drops the new weekly file while the old one is being loaded: the next
    # sync must see it, not take it for the file it has just loaded.
    path = tmp_path / "od.xml"
    write_extraction(path, seed=5, establishments=4)
    newer = tmp_path / "od.new.xml"
    write_extraction(newer, seed=5, establishments=5)
    replaced: list[bool] = []

    def replace_once(event: object) -> None:
        if getattr(event, "phase", None) == "commit" and not replaced:  # read, not yet swapped
            os.replace(newer, path)
            now = time.time_ns()  # the file system's own stamps are coarser than our clock
            os.utime(path, ns=(now, now))
            replaced.append(True)

    with MemoryStore() as store, Sync(source=FileSource("od", [path]), store=store) as sync:
        sync.pull(progress=replace_once)
        assert replaced and store.stats().by_source["od"] == distinct(generate_dataset(5, 4))
        again = sync.sync()
        assert again.counts["created"] > 0
        assert store.stats().by_source["od"] == distinct(generate_dataset(5, 5))


def test_sync_closes_the_source_it_built_from_settings_and_never_one_it_was_given(tmp_path: Path) -> None:
    from rorclient.config import Settings

    closed: list[str] = []

    class Tracked(FileSource):
        def close(self) -> None:
            closed.append(self.name)
            super().close()

    class TrackedSettings(Settings):
        def build_source(self, name: str | None = None, *, retry: object = None) -> Source:  # type: ignore[override]
            return Tracked(self.pick_source(name).name, ())

    path = file_config(tmp_path, tmp_path / "a.xml")
    settings = TrackedSettings.model_validate(Settings.load(path, environ={}).model_dump())
    with Sync.from_settings(settings, store="memory://") as sync:
        assert sync.source == "od" and isinstance(sync.origin, Tracked)
    assert closed == ["od"]
    given = Tracked("mine", ())
    with Sync(source=given, store="memory://"):
        pass
    assert closed == ["od"]
    with pytest.raises(ConfigError, match=r"Sync\.from_settings"):
        Sync(store="memory://")
