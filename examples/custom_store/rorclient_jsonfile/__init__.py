"""An example third-party rorclient store: the in-memory store, saved to one JSON file after each write.

URL: ``jsonfile:///path/to/store.json`` (``jsonfile://`` followed by the path, as for ``sqlite:///``:
three slashes for a relative path, four for an absolute one). The file is created by the first write and
read back when the store opens.

The behaviour — replacement rules, tombstones, the change log, bulk loads swapped in at once — is
:class:`rorclient.store.memory.MemoryStore`'s; this class only adds persistence. A committed write is
saved by writing a new file and renaming it over the old one, so the file is always a whole state. The
whole file is rewritten every time: fine for a few thousand entities, not for the national offer.

``MemoryStore`` offers no persistence hook, so :meth:`JsonFileStore._save` and ``_restore`` read and set
its internal state (``_state``, ``rorclient.store.memory._State``). That is the one shortcut this example
takes; a store with storage of its own implements the :class:`rorclient.store.Store` protocol over it
instead (see ``docs/stores.md``).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rorclient.errors import ConfigError, StoreError
from rorclient.store.base import Change, PendingEstablishment, RunReport, StoredEntity, SyncState
from rorclient.store.memory import MemoryStore, _MemoryBulkLoad, _MemoryTransaction, _State

__all__ = ["FORMAT", "JsonFileStore", "open_jsonfile_store"]

SCHEME = "jsonfile://"
FORMAT = 1
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
    def transaction(self, *, run_id: str | None = None) -> Iterator[_MemoryTransaction]:
        """:meth:`MemoryStore.transaction`, saved to the file once committed."""
        with super().transaction(run_id=run_id) as transaction:
            yield transaction
        self._save()

    @contextmanager
    def bulk_load(self, *, source: str, run_id: str | None = None) -> Iterator[_MemoryBulkLoad]:
        """:meth:`MemoryStore.bulk_load`, saved to the file once swapped in."""
        with super().bulk_load(source=source, run_id=run_id) as load:
            yield load
        self._save()

    def _save(self) -> None:
        with self._save_lock:
            state = self._state  # a committed state is never changed in place (its change log only grows)
            document: dict[str, Any] = {
                "format": FORMAT,
                "entities": [row.model_dump(mode="json") for row in state.entities.values()],
                "changes": [change.model_dump(mode="json") for change in list(state.changes)],
                "sync": [item.model_dump(mode="json") for item in state.sync.values()],
                "pending": [item.model_dump(mode="json") for item in state.pending.values()],
                "runs": [[order, report.model_dump(mode="json")] for order, report in state.runs.values()],
                "run_counter": state.run_counter,
            }
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
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise StoreError(f"{self.path} is not a JSON file store of format {FORMAT}")
        entities = [StoredEntity.model_validate(item) for item in document["entities"]]
        sync = [SyncState.model_validate(item) for item in document["sync"]]
        pending = [PendingEstablishment.model_validate(item) for item in document["pending"]]
        runs = [(int(order), RunReport.model_validate(item)) for order, item in document["runs"]]
        self._state = _State(
            entities={(row.kind, row.id): row for row in entities},
            sync={state.source: state for state in sync},
            pending={(item.source, item.establishment_id): item for item in pending},
            runs={report.run_id: (order, report) for order, report in runs},
            changes=[Change.model_validate(item) for item in document["changes"]],
            run_counter=int(document["run_counter"]),
        )
