"""Every built-in store passes the conformance suite that third-party stores run too."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.register_assert_rewrite("rorclient.testing.store_conformance")

from rorclient.store.base import Store  # noqa: E402
from rorclient.store.memory import MemoryStore  # noqa: E402
from rorclient.store.sqlite import SqliteStore  # noqa: E402
from rorclient.testing.store_conformance import StoreConformance  # noqa: E402


class TestMemoryStore(StoreConformance):
    def make_store(self, tmp_path: Path) -> Store:
        return MemoryStore()


class TestSqliteStore(StoreConformance):
    def make_store(self, tmp_path: Path) -> Store:
        return SqliteStore(tmp_path / "ror.sqlite3")
