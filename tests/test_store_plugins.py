"""Third-party stores: how ``open_store`` finds them, and the example store package in
``examples/custom_store`` (its own tests run here too, so CI keeps the example working)."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from rorclient.errors import ConfigError
from rorclient.store import registry
from rorclient.store.base import Store
from rorclient.store.memory import MemoryStore

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "custom_store"
sys.path.insert(0, str(EXAMPLE))

from test_jsonfile_store import (  # noqa: E402
    TestJsonFileStore,
    test_a_failed_write_leaves_the_file_as_it_was,
    test_a_file_that_is_not_a_store_is_a_store_error,
    test_everything_survives_closing_and_reopening,
    test_open_store_finds_it_through_the_packaged_entry_point,
)

__all__ = [
    "TestJsonFileStore",
    "test_a_failed_write_leaves_the_file_as_it_was",
    "test_a_file_that_is_not_a_store_is_a_store_error",
    "test_everything_survives_closing_and_reopening",
    "test_open_store_finds_it_through_the_packaged_entry_point",
]

opened: list[str] = []


def open_test_store(url: str) -> Store:
    """An entry-point target for the tests below."""
    opened.append(url)
    return MemoryStore(url=url)


def _install(monkeypatch: pytest.MonkeyPatch, **targets: str) -> None:
    """Pretend that packages declaring these ``rorclient.stores`` entry points are installed."""
    points = [
        EntryPoint(name=name, value=value, group=registry.ENTRY_POINT_GROUP)
        for name, value in targets.items()
    ]
    monkeypatch.setattr(
        registry, "entry_points", lambda group: [each for each in points if each.group == group]
    )


def test_a_registered_scheme_opens_the_store_its_entry_point_names(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, teststore=f"{__name__}:open_test_store", other="no.such.module:nothing")
    store = registry.open_store("teststore://anything?x=1")
    assert isinstance(store, MemoryStore)
    assert opened[-1] == "teststore://anything?x=1", "the opener gets the whole URL"


class CheckedStore(MemoryStore):
    """An entry-point target that can tell whether a URL names an existing store (``exists``)."""

    @classmethod
    def exists(cls, url: str) -> bool:
        return url == "checked://here"


def test_read_only_commands_ask_a_third_party_store_whether_it_exists(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rorclient.cli import main

    _install(monkeypatch, checked=f"{__name__}:CheckedStore", teststore=f"{__name__}:open_test_store")
    assert registry.store_exists("checked://here") and not registry.store_exists("checked://typo")
    assert registry.store_exists("teststore://x"), "an opener without `exists` cannot tell: opening decides"
    assert registry.store_exists("memory://"), "a memory store is no place a typo could miss"
    assert main(["--store", "checked://typo", "status"]) == 2
    assert "no store at checked://typo" in capsys.readouterr().err
    assert main(["--store", "checked://here", "status"]) == 0


def test_built_in_schemes_win_over_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, memory="no.such.module:nothing")
    assert isinstance(registry.open_store("memory://"), MemoryStore)


def test_an_unknown_scheme_is_a_config_error_that_hides_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch)
    with pytest.raises(ConfigError, match="no store is registered for the URL scheme 'postgresq'") as raised:
        registry.open_store("postgresq://ror:s3cret-pw@host/db")
    assert "s3cret-pw" not in str(raised.value)
    with pytest.raises(ConfigError, match="no scheme") as raised:
        registry.open_store("ror:s3cret-pw@host/db")
    assert "s3cret-pw" not in str(raised.value)


def test_postgresql_without_psycopg_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in [
        name
        for name in sys.modules
        if name.startswith(("rorclient.store.postgres", "rorclient.store._sql.postgres"))
    ]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigError, match=r"rorclient\[postgres\]"):
        registry.open_store("postgresql://ror@localhost/ror")
