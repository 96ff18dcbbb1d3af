"""The entityID index of one CSD document: joins ``entityID`` references to business ids.

CSD documents reference entities by ``entityID`` (services before facilities, devices after them,
parents possibly after their children), so the reader must remember, for the whole document, which
business id each ``entityID`` stands for, the services facilities will reference, the device links
waiting for their device, and the entities waiting for a parent.

A Lecture response needs a few dozen entries: they live in dictionaries. A national extraction needs
about a million: past ``spill_threshold`` entries the index spills to disk, so that the reader's memory
stays flat whatever the size of the document. Services go to an append-only file
(:mod:`rorclient.csd._service_file`); everything else to a private temporary SQLite database (deleted
when closed; SQLite keeps at most ``_CACHE_KIB`` KiB of it in memory), with a small cache of recently
used nodes in front because consecutive facilities mostly point at the same establishment and at a
parent read just before.
"""

from __future__ import annotations

import marshal
import pickle
import sqlite3
from collections.abc import Iterator
from enum import IntEnum
from typing import Any, cast

from rorclient.csd._elements import ServicePayload
from rorclient.csd._service_file import ServiceFile

__all__ = ["DEFAULT_SPILL_THRESHOLD", "Conflict", "EntityIndex", "KeySpace", "NodeKind"]

#: Number of entries kept in dictionaries before the index spills to disk (~40 MB of dictionaries).
DEFAULT_SPILL_THRESHOLD = 100_000
# The spilled index's page cache. Its lookups mostly hit the recent-nodes cache or the OS page cache, so
# 4 MiB reads as fast as 16 MiB (measured) and keeps two readers of a national load 24 MB lighter.
_CACHE_KIB = 4 * 1024
_RECENT_NODES = 16_384


class NodeKind(IntEnum):
    """Entities other entities point at by ``entityID`` and that may wait for their own parent."""

    ORGANIZATION = 0
    FACILITY = 1


class KeySpace(IntEnum):
    """Sets of keys that must be unique in one document."""

    PROVIDER = 0
    DEVICE = 1
    EQUIPMENT = 2


class Conflict(IntEnum):
    """Why :meth:`EntityIndex.add_node` refused an entity."""

    ENTITY_ID = 0
    BUSINESS_ID = 1


Where = tuple[str, int | None]
"""An element path and line, kept to report references still unresolved at the end."""


class EntityIndex:
    """entityID → business id maps, service payloads, device links and deferred entities."""

    def __init__(self, spill_threshold: int = DEFAULT_SPILL_THRESHOLD) -> None:
        self._threshold = spill_threshold
        self._size = 0
        self._connection: sqlite3.Connection | None = None
        self._db: sqlite3.Cursor | None = None  # one reused cursor: cheaper than Connection.execute
        self._nodes: tuple[dict[str, str], dict[str, str]] = ({}, {})
        self._business: tuple[set[str], set[str]] = (set(), set())
        self._waiting_nodes: set[tuple[int, str]] = set()
        # Payloads are kept marshalled even in memory: bytes are compact and the garbage collector does
        # not have to walk them (nested tuples would be tracked and scanned at every full collection).
        self._services: dict[str, bytes] = {}
        self._service_file: ServiceFile | None = None  # once spilled
        self._keys: dict[int, set[str]] = {space: set() for space in KeySpace}
        self._device_links: dict[str, list[tuple[str, str, int | None]]] = {}
        self._deferred: dict[tuple[int, str], list[tuple[Any, str, int | None]]] = {}
        # Parents something waits for, also kept once spilled: most entities have no waiting child and
        # this set answers has_deferred() without a query.
        self._waited_for: set[tuple[int, str]] = set()
        # Once spilled: nodes recently added or looked up (spares most node queries).
        self._recent: dict[tuple[int, str], list[Any]] = {}

    @property
    def spilled(self) -> bool:
        """Whether the index lives in a temporary SQLite file."""
        return self._db is not None

    def close(self) -> None:
        if self._service_file is not None:
            self._service_file.close()
            self._service_file = None
        if self._connection is not None:
            self._connection.close()
            self._connection = self._db = None

    # -- organizations and facilities -------------------------------------------------------------

    def add_node(self, kind: NodeKind, entity_id: str, business_id: str, *, emitted: bool) -> Conflict | None:
        """Remember an entity; ``None`` when added, else what made it a duplicate."""
        if self._db is None:
            nodes, business = self._nodes[kind], self._business[kind]
            if entity_id in nodes:
                return Conflict.ENTITY_ID
            if business_id in business:
                return Conflict.BUSINESS_ID
            nodes[entity_id] = business_id
            business.add(business_id)
            if not emitted:
                self._waiting_nodes.add((kind, entity_id))
            self._grew()
            return None
        try:
            self._db.execute(
                "INSERT INTO node VALUES (?, ?, ?, ?)", (int(kind), entity_id, business_id, int(emitted))
            )
        except sqlite3.IntegrityError:
            row = self._db.execute(
                "SELECT 1 FROM node WHERE kind = ? AND entity_id = ?", (int(kind), entity_id)
            ).fetchone()
            return Conflict.ENTITY_ID if row is not None else Conflict.BUSINESS_ID
        self._remember((kind, entity_id), [business_id, emitted])
        return None

    def node(self, kind: NodeKind, entity_id: str) -> tuple[str, bool] | None:
        """The business id of an entity and whether it was emitted; ``None`` if not seen (yet)."""
        if self._db is None:
            business_id = self._nodes[kind].get(entity_id)
            if business_id is None:
                return None
            return business_id, (kind, entity_id) not in self._waiting_nodes
        recent = self._recent.get((kind, entity_id))
        if recent is not None:
            return recent[0], recent[1]
        row = self._db.execute(
            "SELECT business_id, emitted FROM node WHERE kind = ? AND entity_id = ?", (int(kind), entity_id)
        ).fetchone()
        if row is None:
            return None
        self._remember((kind, entity_id), [row[0], bool(row[1])])
        return row[0], bool(row[1])

    def _remember(self, key: tuple[int, str], node: list[Any]) -> None:
        if len(self._recent) >= _RECENT_NODES:
            self._recent.clear()
        self._recent[key] = node

    def set_emitted(self, kind: NodeKind, entity_id: str) -> None:
        if self._db is None:
            self._waiting_nodes.discard((kind, entity_id))
        else:
            self._db.execute(
                "UPDATE node SET emitted = 1 WHERE kind = ? AND entity_id = ?", (int(kind), entity_id)
            )
            recent = self._recent.get((kind, entity_id))
            if recent is not None:
                recent[1] = True

    # -- services ---------------------------------------------------------------------------------

    def add_service(self, entity_id: str, payload: ServicePayload, line: int | None) -> bool:
        """Remember the next service of the directory for the facilities to come.

        ``False`` if its entityID was already seen. Once spilled, duplicates are only found by
        :meth:`seal_services`, at the end of the directory.
        """
        if self._service_file is not None:
            self._service_file.add(entity_id, marshal.dumps(payload), line)
            return True
        if entity_id in self._services:
            return False
        self._services[entity_id] = marshal.dumps(payload)
        self._grew()
        return True

    def seal_services(self) -> tuple[str, int, int | None] | None:
        """Call when the service directory ends: (entityID, position, line) of a duplicate service."""
        return None if self._service_file is None else self._service_file.seal()

    def service(self, entity_id: str) -> ServicePayload | None:
        if self._service_file is None:
            data = self._services.get(entity_id)
        else:
            data = self._service_file.get(entity_id)
        return None if data is None else cast(ServicePayload, marshal.loads(data))  # noqa: S302 - our own data

    # -- unique keys ------------------------------------------------------------------------------

    def add_key(self, space: KeySpace, key: str) -> bool:
        """Add ``key`` to a set of unique keys; ``False`` if it was there already."""
        if self._db is None:
            keys = self._keys[space]
            if key in keys:
                return False
            keys.add(key)
            self._grew()
            return True
        try:
            self._db.execute("INSERT INTO key VALUES (?, ?)", (int(space), key))
        except sqlite3.IntegrityError:
            return False
        return True

    # -- device links -----------------------------------------------------------------------------

    def link_device(self, device_id: str, unit_id: str, where: Where) -> None:
        """Remember that a unit references a device that has not been read yet."""
        if self._db is None:
            self._device_links.setdefault(device_id, []).append((unit_id, *where))
            self._grew()
        else:
            self._db.execute("INSERT INTO device_link VALUES (?, ?, ?, ?)", (device_id, unit_id, *where))

    def take_device_links(self, device_id: str) -> list[str]:
        """The units linked to a device, forgetting the links."""
        if self._db is None:
            return [link[0] for link in self._device_links.pop(device_id, ())]
        rows = self._db.execute(
            "SELECT unit_id FROM device_link WHERE device_id = ? ORDER BY rowid", (device_id,)
        ).fetchall()
        if rows:
            self._db.execute("DELETE FROM device_link WHERE device_id = ?", (device_id,))
        return [row[0] for row in rows]

    def device_links_left(self) -> Iterator[tuple[str, Where]]:
        """Links to devices never read: (device entityID, where the first link is)."""
        if self._db is None:
            for device_id, links in self._device_links.items():
                yield device_id, (links[0][1], links[0][2])
            return
        query = "SELECT device_id, path, line FROM device_link ORDER BY rowid"
        for device_id, path, line in self._db.execute(query).fetchall():
            yield device_id, (path, line)

    # -- entities waiting for their parent --------------------------------------------------------

    def defer(self, kind: NodeKind, parent_id: str, item: Any, where: Where) -> None:
        """Keep ``item`` until the ``kind`` entity ``parent_id`` is emitted."""
        self._waited_for.add((kind, parent_id))
        if self._db is None:
            self._deferred.setdefault((kind, parent_id), []).append((item, *where))
            self._grew()
        else:
            self._db.execute(
                "INSERT INTO deferred (kind, parent_id, item, path, line) VALUES (?, ?, ?, ?, ?)",
                (int(kind), parent_id, pickle.dumps(item, pickle.HIGHEST_PROTOCOL), *where),
            )

    def release(self, kind: NodeKind, parent_id: str) -> list[Any]:
        """The items waiting for ``parent_id``, forgetting them."""
        if (kind, parent_id) not in self._waited_for:
            return []
        self._waited_for.discard((kind, parent_id))
        if self._db is None:
            return [entry[0] for entry in self._deferred.pop((kind, parent_id), ())]
        rows = self._db.execute(
            "SELECT item FROM deferred WHERE kind = ? AND parent_id = ? ORDER BY seq", (int(kind), parent_id)
        ).fetchall()
        if rows:
            self._db.execute("DELETE FROM deferred WHERE kind = ? AND parent_id = ?", (int(kind), parent_id))
        return [pickle.loads(row[0]) for row in rows]  # noqa: S301 - our own temporary file

    def has_deferred(self, kind: NodeKind, parent_id: str) -> bool:
        return (kind, parent_id) in self._waited_for

    def deferred_left(self) -> Iterator[tuple[NodeKind, str, Where]]:
        """Entities still waiting at the end: (kind of the parent, parent entityID, where the child is)."""
        if self._db is None:
            for (kind, parent_id), items in self._deferred.items():
                for _item, path, line in items:
                    yield NodeKind(kind), parent_id, (path, line)
            return
        query = "SELECT kind, parent_id, path, line FROM deferred ORDER BY seq"
        for kind, parent_id, path, line in self._db.execute(query).fetchall():
            yield NodeKind(kind), parent_id, (path, line)

    # -- spilling ---------------------------------------------------------------------------------

    def _grew(self) -> None:
        self._size += 1
        if self._size > self._threshold:
            self._spill()

    def _spill(self) -> None:
        db = sqlite3.connect("", isolation_level=None)  # "" = private temporary file, deleted on close
        for pragma in ("journal_mode = OFF", "synchronous = OFF", f"cache_size = -{_CACHE_KIB}"):
            db.execute(f"PRAGMA {pragma}")
        db.executescript(_SCHEMA)
        db.execute("BEGIN")
        for kind in NodeKind:
            db.executemany(
                "INSERT INTO node VALUES (?, ?, ?, ?)",
                (
                    (int(kind), entity_id, business_id, int((kind, entity_id) not in self._waiting_nodes))
                    for entity_id, business_id in self._nodes[kind].items()
                ),
            )
        self._service_file = ServiceFile()
        for entity_id, data in self._services.items():
            self._service_file.add(entity_id, data, None)
        for space, keys in self._keys.items():
            db.executemany("INSERT INTO key VALUES (?, ?)", ((space, key) for key in keys))
        db.executemany(
            "INSERT INTO device_link VALUES (?, ?, ?, ?)",
            ((device_id, *link) for device_id, links in self._device_links.items() for link in links),
        )
        db.executemany(
            "INSERT INTO deferred (kind, parent_id, item, path, line) VALUES (?, ?, ?, ?, ?)",
            (
                (kind, parent_id, pickle.dumps(item, pickle.HIGHEST_PROTOCOL), path, line)
                for (kind, parent_id), items in self._deferred.items()
                for item, path, line in items
            ),
        )
        self._connection = db
        self._db = db.cursor()
        self._nodes = ({}, {})
        self._business = (set(), set())
        self._waiting_nodes = set()
        self._services = {}
        self._keys = {space: set() for space in KeySpace}
        self._device_links = {}
        self._deferred = {}


_SCHEMA = """
CREATE TABLE node (
    kind INTEGER NOT NULL, entity_id TEXT NOT NULL, business_id TEXT NOT NULL, emitted INTEGER NOT NULL,
    PRIMARY KEY (kind, entity_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX node_business ON node (kind, business_id);
CREATE TABLE key (space INTEGER NOT NULL, key TEXT NOT NULL, PRIMARY KEY (space, key)) WITHOUT ROWID;
CREATE TABLE device_link (device_id TEXT NOT NULL, unit_id TEXT NOT NULL, path TEXT, line INTEGER);
CREATE INDEX device_link_device ON device_link (device_id);
CREATE TABLE deferred (
    seq INTEGER PRIMARY KEY, kind INTEGER NOT NULL, parent_id TEXT NOT NULL, item BLOB NOT NULL,
    path TEXT, line INTEGER
);
CREATE INDEX deferred_parent ON deferred (kind, parent_id);
"""
