"""An example third-party rorclient store: the in-memory store, saved to one JSON file after each write.

URL: ``jsonfile:///path/to/store.json`` (``jsonfile://`` followed by the path, as for ``sqlite:///``:
three slashes for a relative path, four for an absolute one). The file is created by the first write and
read back when the store opens.

The behaviour — replacement rules, tombstones, the change log, bulk loads swapped in at once — is
:class:`rorclient.store.memory.MemoryStore`'s; this class only adds persistence. A committed write is
saved by writing a new file and renaming it over the old one, so the file is always a whole state. The
whole file is rewritten every time: fine for a few thousand entities, not for the national offer.

Persistence uses ``MemoryStore``'s public pair :meth:`~rorclient.store.memory.MemoryStore.dump` /
:meth:`~rorclient.store.memory.MemoryStore.restore` (a :class:`~rorclient.store.memory.MemorySnapshot`,
plain models). A store with storage of its own implements the :class:`rorclient.store.Store` protocol
over it instead, with the replacement rules of :mod:`rorclient.store.subtree` (see ``docs/stores.md``).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rorclient.errors import ConfigError, StoreError
from rorclient.store.base import BulkLoad, StoreTransaction
from rorclient.store.memory import MemorySnapshot, MemoryStore

__all__ = ["FORMAT", "JsonFileStore", "open_jsonfile_store"]

SCHEME = "jsonfile://"
FORMAT = 2
"""The version of the file layout; a file with another version is refused."""


def open_jsonfile_store(url: str) -> JsonFileStore:
    """The entry point rorclient calls for ``jsonfile://`` URLs (see ``pyproject.toml``)."""
    if not url.startswith(SCHEME) or len(url) <= len(SCHEME) + 1:
        raise ConfigError(
            f"JSON file store URL {url!r} must be jsonfile:///relative/path or jsonfile:////abs"
        )
    return JsonFileStore(Path(url[len(SCHEME) + 1 :]).expanduser(), url=url)


class JsonFileStore(MemoryStore):
    """A :class:`~rorclient.store.memory.MemoryStore` kept in a JSON file. See the module docstring."""

    def __init__(self, path: str | os.PathLike[str], *, url: str | None = None) -> None:
        self.path = Path(path)
        super().__init__(url=url or f"{SCHEME}/{self.path}")
        self._save_lock = threading.Lock()
        if self.path.exists():
            self._restore()

    def __repr__(self) -> str:
        return f"JsonFileStore({str(self.path)!r})"

    @contextmanager
    def transaction(self, *, run_id: str | None = None) -> Iterator[StoreTransaction]:
        """:meth:`MemoryStore.transaction`, saved to the file once committed."""
        with super().transaction(run_id=run_id) as transaction:
            yield transaction
        self._save()

    @contextmanager
    def bulk_load(self, *, source: str, run_id: str | None = None) -> Iterator[BulkLoad]:
        """:meth:`MemoryStore.bulk_load`, saved to the file once swapped in."""
        with super().bulk_load(source=source, run_id=run_id) as load:
            yield load
        self._save()

    def _save(self) -> None:
        with self._save_lock:
            document: dict[str, Any] = {"format": FORMAT, **self.dump().model_dump(mode="json")}
            partial = self.path.with_name(f"{self.path.name}.partial")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                partial.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
                os.replace(partial, self.path)
            except OSError as error:
                raise StoreError(f"could not save the JSON file store {self.path}: {error}") from error

    def _restore(self) -> None:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise StoreError(f"could not read the JSON file store {self.path}: {error}") from error
        if not isinstance(document, dict) or document.pop("format", None) != FORMAT:
            raise StoreError(f"{self.path} is not a JSON file store of format {FORMAT}")
        try:
            snapshot = MemorySnapshot.model_validate(document)
        except ValidationError as error:
            raise StoreError(f"{self.path} holds an invalid JSON file store: {error}") from error
        self.restore(snapshot)
