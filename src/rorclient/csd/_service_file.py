"""Service payloads of a large CSD document, kept in an anonymous temporary file.

A national extraction holds ~400,000 services, all read before any facility references them (the XSD
fixes the directory order and the reader enforces it). So they are written once, in document order, to
an append-only file, and found again through one sorted array of 64-bit keys built when the service
directory ends: no per-service dictionary entry, no B-tree insert, one small read per lookup.

A key is ``hash(entityID)`` truncated to 39 bits, followed by the service's sequence number (24 bits).
A hash match is always confirmed against the ``entityID`` stored with the payload, so a collision costs
an extra read, never a wrong answer.
"""

from __future__ import annotations

import marshal
import tempfile
from array import array
from bisect import bisect_left
from collections.abc import Iterator

from rorclient.errors import DataError

__all__ = ["MAX_SERVICES", "ServiceFile"]

_SEQUENCE_BITS = 24
_HASH_MASK = (1 << 39) - 1
#: Most services one document may hold once the index is spilled.
MAX_SERVICES = 1 << _SEQUENCE_BITS


class ServiceFile:
    """Append payloads with :meth:`add`, call :meth:`seal` once, then look them up with :meth:`get`."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="rorclient-services-")  # noqa: SIM115 - closed in close()
        self._offsets = array("q", [0])  # offsets[i]..offsets[i + 1]: the i-th record
        self._keys = array("q")
        self._lines = array("l")
        self._sealed = False

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, entity_id: str, payload: bytes, line: int | None) -> None:
        """Append the next service of the directory (``line``: where it is, to report a duplicate)."""
        if self._sealed:
            raise RuntimeError("services added after the service directory was sealed")
        sequence = len(self._keys)
        if sequence >= MAX_SERVICES:
            raise DataError(f"the document holds more than {MAX_SERVICES} services")
        record = marshal.dumps((entity_id, payload))
        self._file.write(record)
        self._offsets.append(self._offsets[-1] + len(record))
        self._keys.append((hash(entity_id) & _HASH_MASK) << _SEQUENCE_BITS | sequence)
        self._lines.append(line or 0)

    def seal(self) -> tuple[str, int, int | None] | None:
        """Sort the keys. Returns the entityID, position (1-based, in document order) and line of the first
        service whose entityID repeats an earlier one, or ``None``."""
        if self._sealed:
            return None
        self._sealed = True
        self._file.flush()
        self._keys = array("q", sorted(self._keys))
        duplicate: int | None = None
        for group in self._collisions():
            first_of: dict[str, int] = {}
            for sequence in sorted(group):
                entity_id = self._record(sequence)[0]
                if entity_id in first_of and (duplicate is None or sequence < duplicate):
                    duplicate = sequence
                first_of.setdefault(entity_id, sequence)
        if duplicate is None:
            return None
        return self._record(duplicate)[0], duplicate + 1, self._lines[duplicate] or None

    def _collisions(self) -> Iterator[list[int]]:
        """Sequence numbers of the services sharing a hash, group by group (sorted keys)."""
        group: list[int] = []
        previous = -1
        for key in self._keys:
            prefix = key >> _SEQUENCE_BITS
            if prefix != previous:
                if len(group) > 1:
                    yield group
                group = []
                previous = prefix
            group.append(key & (MAX_SERVICES - 1))
        if len(group) > 1:
            yield group

    def get(self, entity_id: str) -> bytes | None:
        """The payload of a service, ``None`` if the document has none with this entityID."""
        if not self._sealed:
            self.seal()
        wanted = hash(entity_id) & _HASH_MASK
        keys = self._keys
        position = bisect_left(keys, wanted << _SEQUENCE_BITS)
        while position < len(keys) and keys[position] >> _SEQUENCE_BITS == wanted:
            stored_id, payload = self._record(keys[position] & (MAX_SERVICES - 1))
            if stored_id == entity_id:
                return payload
            position += 1
        return None

    def close(self) -> None:
        self._file.close()

    def _record(self, sequence: int) -> tuple[str, bytes]:
        start = self._offsets[sequence]
        self._file.seek(start)
        entity_id, payload = marshal.loads(self._file.read(self._offsets[sequence + 1] - start))  # noqa: S302
        return entity_id, payload
