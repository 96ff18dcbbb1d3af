"""Resumable, verified, atomic download of an extraction file.

The body is streamed to ``<dest>.part``; a small ``<dest>.part.json`` beside it remembers which URL
(hashed: a query string may hold a token) and which version of the file (``ETag``, ``Last-Modified``,
length) the partial bytes belong to. After a cut (network error, timeout, a crash, an exception from the
progress callback), the next attempt — a retry within the same call, or a later call — asks only for the
missing bytes with ``Range: bytes=<n>-`` and ``If-Range: <validator>``:

* ``206`` with a ``Content-Range`` starting at ``n``: the bytes are appended;
* ``200``: the file changed on the server (or ranges are not supported): the download starts over;
* ``416``: the part is dropped and the download starts over.

A download without a strong ``ETag`` or a ``Last-Modified`` cannot be resumed safely and starts over.
The finished file must have the announced length; it is flushed to disk (``fsync``) and renamed to
``dest`` in one step, so ``dest`` is either absent, the previous file, or the complete new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rorclient._private_files import create_private, open_private, private_directory
from rorclient.errors import ConfigError, TransportError
from rorclient.ror._http import BUSY_STATUSES, HttpSession, StreamedReply, busy_error
from rorclient.ror._retry import RetryPolicy, retry_call
from rorclient.ror.errors import HttpStatusError, IncompleteResponseError, ResponseTooLargeError, safe_url
from rorclient.ror.models import DownloadResult

__all__ = ["ProgressCallback", "download_file", "part_paths"]

_log = logging.getLogger("rorclient.ror")

#: ``progress(bytes_on_disk, total_bytes_or_None)``, called as the file grows. An exception raised by
#: the callback stops the download; the partial file is kept for the next call to resume.
ProgressCallback = Callable[[int, int | None], None]

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$")
_SIDECAR_VERSION = 1


class _RestartNeeded(TransportError):
    """The partial file cannot be continued; the next attempt starts from byte 0."""


def part_paths(dest: Path) -> tuple[Path, Path]:
    """The partial file and its sidecar for ``dest``."""
    return dest.with_name(dest.name + ".part"), dest.with_name(dest.name + ".part.json")


@dataclass
class _Download:
    session: HttpSession
    url: str
    dest: Path
    progress: ProgressCallback | None
    operation: str
    max_bytes: int | None = None
    transferred: int = 0
    resumed: bool = False
    restarts: int = 0
    etag: str | None = None
    total: int | None = None
    part: Path = field(init=False)
    sidecar: Path = field(init=False)

    def __post_init__(self) -> None:
        self.part, self.sidecar = part_paths(self.dest)

    def attempt(self) -> DownloadResult:
        offset, validator = self._resume_point()
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = validator or ""
        with self.session.stream(self.url, headers, operation=self.operation) as reply:
            offset = self._accept(reply, offset)
            self._write(reply, offset)
        return self._finish()

    def _resume_point(self) -> tuple[int, str | None]:
        state = self._read_sidecar()
        try:
            found = os.lstat(self.part)
        except FileNotFoundError:
            found = None
        if found is not None and not stat.S_ISREG(found.st_mode):  # e.g. a planted symbolic link
            self._drop_part()
            return 0, None
        size = found.st_size if found is not None else 0
        validator = _validator(state) if state else None
        if size and state and state.get("url_sha256") == _url_hash(self.url) and validator:
            self.etag = state.get("etag") or None
            self.total = _int_or_none(str(state["length"])) if state.get("length") is not None else None
            return size, validator
        if size or state:
            _log.info("%s: discarding a partial download of another file or version", self.operation)
        self._drop_part()
        return 0, None

    def _accept(self, reply: StreamedReply, offset: int) -> int:
        """Check the answer and return the offset its body starts at."""
        status, headers = reply.status, reply.headers
        if status in BUSY_STATUSES:
            raise busy_error(status, headers, self.operation, self.url)
        if status == 416:
            self._drop_part()
            raise _RestartNeeded(f"{self.operation}: the server refused to resume; starting over")
        if status not in (200, 206):
            raise HttpStatusError(status, f"{self.operation}: {safe_url(self.url)} answered HTTP {status}")
        etag = headers.get("etag")
        if status == 206:
            start, total = _content_range(headers.get("content-range"))
            changed = (self.etag and etag and etag != self.etag) or (
                self.total and total and total != self.total
            )
            if start != offset or changed:
                self._drop_part()
                raise _RestartNeeded(
                    f"{self.operation}: the server resumed at the wrong place; starting over"
                )
            self.resumed = True
            _log.info("%s: resuming at byte %d", self.operation, offset)
        else:
            if offset:
                self.restarts += 1
                _log.info(
                    "%s: the file changed on the server (or cannot be resumed); starting over", self.operation
                )
            offset, total = 0, _int_or_none(headers.get("content-length"))
        if self.max_bytes is not None and total is not None and total > self.max_bytes:
            self._drop_part()
            raise self._too_large(f"announces {total} bytes, more")
        self.etag, self.total = etag, total
        self._write_sidecar(etag=etag, last_modified=headers.get("last-modified"), length=total)
        return offset

    def _write(self, reply: StreamedReply, offset: int) -> None:
        with os.fdopen(self._open_part(offset), "r+b") as file:
            file.seek(offset)
            file.truncate()
            written = offset
            for chunk in reply.iter_raw():
                written += len(chunk)
                if self.max_bytes is not None and written > self.max_bytes:
                    file.close()
                    self._drop_part()
                    raise self._too_large("sent more")
                file.write(chunk)
                self.transferred += len(chunk)
                if self.progress is not None:
                    self.progress(written, self.total)
            file.flush()
            os.fsync(file.fileno())
        if self.total is not None and written != self.total:
            raise IncompleteResponseError(
                f"{self.operation}: {safe_url(self.url)} sent {written} of {self.total} bytes"
            )

    def _open_part(self, offset: int) -> int:
        """The ``.part`` file, ``0600``: continued when resuming, else created anew — in both cases
        without following a symbolic link, and a new one only if nothing is there (``O_EXCL``)."""
        if offset:
            return open_private(self.part, os.O_RDWR)
        self.part.unlink(missing_ok=True)
        return create_private(self.part)

    def _too_large(self, what: str) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"{self.operation}: {safe_url(self.url)} {what} than the {self.max_bytes} bytes allowed "
            "(max_download_bytes)",
            limit=self.max_bytes or 0,
        )

    def _finish(self) -> DownloadResult:
        os.replace(self.part, self.dest)
        _fsync_directory(self.dest.parent)
        self.sidecar.unlink(missing_ok=True)
        size = self.dest.stat().st_size
        return DownloadResult(
            path=self.dest,
            bytes=size,
            bytes_transferred=self.transferred,
            resumed=self.resumed,
            restarts=self.restarts,
            etag=self.etag,
            compressed=_compression(self.dest),
            url=safe_url(self.url),
        )

    def _read_sidecar(self) -> dict[str, Any] | None:
        try:
            with os.fdopen(open_private(self.sidecar, os.O_RDONLY), "rb") as file:
                state = json.loads(file.read(64 * 1024).decode("utf-8"))
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) and state.get("version") == _SIDECAR_VERSION else None

    def _write_sidecar(self, *, etag: str | None, last_modified: str | None, length: int | None) -> None:
        state = {
            "version": _SIDECAR_VERSION,
            "url_sha256": _url_hash(self.url),
            "etag": etag,
            "last_modified": last_modified,
            "length": length,
        }
        temporary = self.sidecar.with_name(self.sidecar.name + ".tmp")
        temporary.unlink(missing_ok=True)
        with os.fdopen(create_private(temporary), "wb") as file:
            file.write(json.dumps(state).encode("utf-8"))
        os.replace(temporary, self.sidecar)

    def _drop_part(self) -> None:
        self.part.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)


def download_file(
    session: HttpSession,
    url: str,
    dest: Path,
    *,
    policy: RetryPolicy,
    progress: ProgressCallback | None = None,
    operation: str = "extraction",
    max_bytes: int | None = None,
) -> DownloadResult:
    """Download ``url`` to ``dest`` (see the module docstring), retrying and resuming per ``policy``.
    A file larger than ``max_bytes`` (announced or sent) raises :class:`ResponseTooLargeError`; the
    directories created for ``dest`` are ``0700`` and the files ``0600``."""
    dest = Path(dest)
    try:
        private_directory(dest.parent)
        job = _Download(session, url, dest, progress, operation, max_bytes)
        return retry_call(job.attempt, policy, operation=operation)
    except OSError as exc:
        raise ConfigError(f"{operation}: cannot write {dest}: {exc.strerror or exc}") from exc


def _validator(state: dict[str, Any]) -> str | None:
    etag = state.get("etag")
    if isinstance(etag, str) and etag and not etag.startswith("W/"):
        return etag
    modified = state.get("last_modified")
    return modified if isinstance(modified, str) and modified else None


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    match = _CONTENT_RANGE.match(value or "")
    if match is None:
        return None, None
    total = match.group(3)
    return int(match.group(1)), None if total == "*" else int(total)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def _compression(path: Path) -> Literal["gzip", "zip"] | None:
    with path.open("rb") as file:
        magic = file.read(4)
    if magic.startswith(b"\x1f\x8b"):
        return "gzip"
    if magic in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    return None


def _fsync_directory(directory: Path) -> None:
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
