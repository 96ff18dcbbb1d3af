"""Stream the resources of an export file, whatever its shape, in flat memory.

The ROR's export file format is not documented (digest §3.5): ``_outputFormat`` is JSON, and a file may
hold NDJSON (one resource per line), one JSON Bundle, or several Bundles one after the other. This
reader takes any sequence of top-level JSON objects separated by whitespace: a Bundle yields the
``resource`` of each ``entry``, anything else with a ``resourceType`` is yielded as it is. Small objects
are decoded in one C call; an object larger than ``whole_limit`` (a Bundle of a national export) is
walked member by member so that only one entry at a time is held in memory.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any

from rorclient.errors import DataError

__all__ = ["iter_resources"]

_log = logging.getLogger("rorclient.fhir")

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_READ_AHEAD = 64 * 1024


def iter_resources(
    chunks: Iterable[bytes],
    *,
    source: str,
    whole_limit: int = 1024 * 1024,
    max_value: int = 64 * 1024 * 1024,
) -> Iterator[dict[str, Any]]:
    """Every resource in the UTF-8 JSON text given as ``chunks`` (see the module docstring). Raises
    :class:`~rorclient.errors.DataError` naming ``source`` and the character offset on bad input."""
    reader = _Reader(iter(chunks), source)
    while True:
        reader.skip_whitespace()
        if reader.at_end():
            return
        if reader.peek() != "{":
            raise reader.error("expected a JSON object (a resource or a Bundle)")
        value = reader.value(limit=whole_limit)
        if value is _TOO_BIG:
            yield from _walk_object(reader, max_value)
        else:
            yield from _expand(value, reader)


class _TooBig:
    pass


_TOO_BIG: Any = _TooBig()


class _Reader:
    """A window over the decoded text: ``buffer[position:]`` is what is left to parse."""

    def __init__(self, chunks: Iterator[bytes], source: str) -> None:
        self._chunks = chunks
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.source = source
        self.buffer = ""
        self.position = 0
        self._consumed = 0  # characters dropped from the front of the buffer
        self._ended = False
        self._started = False

    # -- input ------------------------------------------------------------------------------------------

    def _more(self) -> bool:
        """Read at least ``_READ_AHEAD`` more bytes (or up to the end); ``False`` at the end."""
        if self._ended:
            return False
        parts: list[str] = []
        size = 0
        try:
            while size < _READ_AHEAD:
                chunk = next(self._chunks, None)
                if chunk is None:
                    self._ended = True
                    parts.append(self._decoder.decode(b"", final=True))
                    break
                size += len(chunk)
                parts.append(self._decoder.decode(chunk))
        except UnicodeDecodeError as exc:
            raise self.error(f"not UTF-8 text ({exc.reason})") from None
        text = "".join(parts)
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        self._consumed += self.position
        self.buffer = self.buffer[self.position :] + text
        self.position = 0
        return bool(text) or not self._ended

    def at_end(self) -> bool:
        while self.position >= len(self.buffer):
            if not self._more():
                return True
        return False

    def peek(self) -> str:
        if self.at_end():
            raise self.error("unexpected end of the file")
        return self.buffer[self.position]

    def skip_whitespace(self) -> None:
        while True:
            match = _WHITESPACE.match(self.buffer, self.position)
            assert match is not None
            self.position = match.end()
            if self.position < len(self.buffer) or not self._more():
                return

    def expect(self, character: str) -> None:
        self.skip_whitespace()
        if self.peek() != character:
            raise self.error(f"expected {character!r}, found {self.buffer[self.position]!r}")
        self.position += 1

    def value(self, *, limit: int) -> Any:
        """The next JSON value; :data:`_TOO_BIG` when it is longer than ``limit`` characters."""
        self.skip_whitespace()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buffer, self.position)
            except json.JSONDecodeError as exc:
                if len(self.buffer) - self.position > limit:
                    return _TOO_BIG
                if not self._more():
                    raise self.error(f"invalid JSON ({exc.msg})") from None
                continue
            # A number or literal ending the buffer may go on in the next chunk.
            if end == len(self.buffer) and not isinstance(value, dict | list | str) and self._more():
                continue
            self.position = end
            return value

    def error(self, message: str) -> DataError:
        return DataError(message, source=self.source, path=f"character {self._consumed + self.position}")


def _walk_object(reader: _Reader, max_value: int) -> Iterator[dict[str, Any]]:
    """A top-level object too large to decode at once: its members one by one, a Bundle's entries as
    they come."""
    reader.expect("{")
    fields: dict[str, Any] = {}
    first = True
    while True:
        reader.skip_whitespace()
        if reader.peek() == "}":
            reader.position += 1
            break
        if not first:
            reader.expect(",")
        first = False
        key = reader.value(limit=max_value)
        if not isinstance(key, str):
            raise reader.error("expected a member name")
        reader.expect(":")
        reader.skip_whitespace()
        if key == "entry" and fields.get("resourceType") == "Bundle" and reader.peek() == "[":
            reader.position += 1
            yield from _walk_entries(reader, max_value)
            fields["entry"] = []
            continue
        value = reader.value(limit=max_value)
        if value is _TOO_BIG:
            raise reader.error(f"a JSON value is larger than {max_value} characters")
        fields[key] = value
    yield from _expand(fields, reader)


def _walk_entries(reader: _Reader, max_value: int) -> Iterator[dict[str, Any]]:
    first = True
    while True:
        reader.skip_whitespace()
        if reader.peek() == "]":
            reader.position += 1
            return
        if not first:
            reader.expect(",")
        first = False
        entry = reader.value(limit=max_value)
        if entry is _TOO_BIG:
            raise reader.error(f"a Bundle entry is larger than {max_value} characters")
        yield from _entry_resource(entry, reader)


def _expand(value: Any, reader: _Reader) -> Iterator[dict[str, Any]]:
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        raise reader.error("a JSON object without a resourceType")
    if value["resourceType"] != "Bundle":
        yield value
        return
    entries = value.get("entry") or []
    if not isinstance(entries, list):
        raise reader.error("Bundle.entry is not an array")
    for entry in entries:
        yield from _entry_resource(entry, reader)


def _entry_resource(entry: Any, reader: _Reader) -> Iterator[dict[str, Any]]:
    if not isinstance(entry, dict):
        raise reader.error("a Bundle entry is not an object")
    resource = entry.get("resource")
    if resource is None:
        _log.debug("%s: a Bundle entry without a resource skipped", reader.source)
        return
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise reader.error("a Bundle entry's resource has no resourceType")
    yield resource
