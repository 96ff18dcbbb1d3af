"""The example store passes rorclient's conformance suite, keeps its data when reopened, and is what
``open_store`` returns for ``jsonfile://`` URLs once the package's entry point is installed.

Run it with ``pytest examples/custom_store`` (rorclient's own test suite runs it too).
"""

from __future__ import annotations

import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

pytest.register_assert_rewrite("rorclient.testing.store_conformance")

from rorclient_jsonfile import JsonFileStore, open_jsonfile_store  # noqa: E402

from rorclient.errors import StoreError  # noqa: E402
from rorclient.models import EntityKind  # noqa: E402
from rorclient.store import registry  # noqa: E402
from rorclient.store.base import Store, SyncState  # noqa: E402
from rorclient.testing.store_conformance import (  # noqa: E402
    EG1,
    SOURCE,
    T0,
    StoreConformance,
    apply_site,
    site,
    unit,
)

PYPROJECT = Path(__file__).resolve().parent / "pyproject.toml"


class TestJsonFileStore(StoreConformance):
    def make_store(self, tmp_path: Path) -> Store:
        return JsonFileStore(tmp_path / "store.json")


def test_everything_survives_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    state = SyncState(source=SOURCE, watermark=T0, taken_at=T0)
    with JsonFileStore(path) as store:
        apply_site(store, site(EG1, unit("11/1001"), unit("11/1002")))
        apply_site(store, site(EG1, unit("11/1001")))
        with store.transaction(run_id="r1") as tx:
            tx.set_sync_state(state)
        stats, log = store.stats(), store.changes()
    with JsonFileStore(path) as store:
        assert store.stats() == stats
        assert store.changes() == log
        assert store.sync_state(SOURCE) == state
        tombstone = store.get(EntityKind.UNIT, "11/1002", include_deleted=True)
        assert tombstone is not None
        assert tombstone.deleted
        assert tombstone.entity == unit("11/1002")


def test_a_failed_write_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    with JsonFileStore(path) as store:
        apply_site(store, site(EG1, unit("11/1001")))
    saved = path.read_bytes()

    def fail() -> None:
        with JsonFileStore(path).transaction() as tx:
            tx.replace_establishment(site(EG1), source=SOURCE, establishment_id=EG1)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    assert path.read_bytes() == saved


def test_a_file_that_is_not_a_store_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    path.write_text('{"format": 99}')
    with pytest.raises(StoreError, match="format"):
        JsonFileStore(path)


def test_open_store_finds_it_through_the_packaged_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``pip install`` of this package declares, without installing it: the entry points of
    ``pyproject.toml``, served by a stand-in for ``importlib.metadata.entry_points``."""
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"][registry.ENTRY_POINT_GROUP]
    installed = [
        EntryPoint(name=name, value=value, group=registry.ENTRY_POINT_GROUP)
        for name, value in declared.items()
    ]
    monkeypatch.setattr(
        registry, "entry_points", lambda group: [each for each in installed if each.group == group]
    )
    monkeypatch.chdir(tmp_path)
    store = registry.open_store("jsonfile:///ror.json")
    try:
        assert isinstance(store, JsonFileStore)
        assert store.url == "jsonfile:///ror.json"
        apply_site(store, site(EG1, unit("11/1001")))
    finally:
        store.close()
    assert (tmp_path / "ror.json").is_file()
    assert installed[0].load() is open_jsonfile_store
