"""The extraction endpoint's files: one ``csd:CSD`` document per data version, built once, cached on disk.

Each format (plain XML, gzip, zip) is written on first request for the current version of the ground
truth, hashed for a strong ``ETag``, and served from disk with ``Range`` support; files of older
versions are deleted when a newer one is built (a download in progress keeps its open file). Builds run
in a background thread: a request that would wait too long (a national-size build takes minutes) is
answered 503 with ``Retry-After`` while the build goes on.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import shutil
import threading
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from rorclient.csd.writer import CsdWriter, WriterOptions
from rorclient.errors import ConfigError
from rorclient.sandbox._selection import apply_profile
from rorclient.sandbox._truth import GroundTruth

__all__ = ["FORMATS", "ExtractionCache", "ExtractionFile", "Unsatisfiable", "parse_range"]

Format = Literal["xml", "gzip", "zip"]
FORMATS: Final[dict[str, tuple[str, str]]] = {
    "xml": ("application/xml", "ror-extraction.xml"),
    "gzip": ("application/gzip", "ror-extraction.xml.gz"),
    "zip": ("application/zip", "ror-extraction.zip"),
}
_CHUNK: Final = 1024 * 1024


@dataclass(frozen=True)
class ExtractionFile:
    """One built extraction file."""

    path: Path
    size: int
    etag: str
    """Strong entity tag: a hash of the bytes, quoted."""
    last_modified: dt.datetime
    content_type: str
    filename: str
    version: int


class ExtractionCache:
    """Builds (in one background thread) and keeps the extraction files of the latest data version."""

    def __init__(
        self,
        truth: GroundTruth,
        directory: Path,
        *,
        profile: int,
        writer_options: WriterOptions | None = None,
    ) -> None:
        self._truth = truth
        self._directory = directory
        self._profile = profile
        self._writer_options = writer_options
        self._lock = threading.Lock()
        self._files: dict[tuple[int, str], ExtractionFile] = {}
        self._building: dict[tuple[int, str], Future[ExtractionFile]] = {}
        self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rorclient-sandbox-extraction")
        self._closing = threading.Event()

    def get(self, fmt: str, *, wait: float | None = None) -> ExtractionFile | None:
        """The file of the current data version in ``fmt`` (``xml``, ``gzip`` or ``zip``), built if needed.

        Waits at most ``wait`` seconds (``None``: as long as it takes) for a build, then returns ``None``
        while the build goes on in the background."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown extraction format {fmt!r}")
        with self._lock:
            key = (self._truth.version, fmt)
            cached = self._files.get(key)
            if cached is not None:
                return cached
            future = self._building.get(key)
            if future is None:
                future = self._builder.submit(self._build, *key)
                self._building[key] = future
        try:
            return future.result(timeout=wait)
        except FutureTimeout:
            return None

    def close(self) -> None:
        """Interrupt a build in progress and stop the builder thread."""
        self._closing.set()
        self._builder.shutdown(wait=True, cancel_futures=True)

    def _build(self, version: int, fmt: str) -> ExtractionFile:
        try:
            with self._lock:
                xml = self._files.get((version, "xml"))
            if xml is None:
                xml = self._build_xml(version)
            built = xml if fmt == "xml" else self._compress(xml, fmt)
            with self._lock:
                self._files[(version, "xml")] = xml
                self._files[(version, fmt)] = built
                self._forget_older(version)
            return built
        finally:
            with self._lock:
                self._building.pop((version, fmt), None)

    def _build_xml(self, version: int) -> ExtractionFile:
        self._directory.mkdir(parents=True, exist_ok=True)
        target = self._directory / f"extraction-v{version}.xml"
        partial = target.with_suffix(".part")
        with open(partial, "wb") as stream, CsdWriter(stream, options=self._writer_options) as writer:
            for offer in self._truth.offers():
                if self._closing.is_set():
                    raise ConfigError("the sandbox is stopping")
                writer.add_offer(apply_profile(offer, self._profile))
        partial.replace(target)
        return self._describe(target, "xml", version)

    def _compress(self, xml: ExtractionFile, fmt: str) -> ExtractionFile:
        suffix = ".xml.gz" if fmt == "gzip" else ".zip"
        target = self._directory / f"extraction-v{xml.version}{suffix}"
        partial = target.with_name(target.name + ".part")
        if fmt == "gzip":
            # mtime=0, no name: the same XML always compresses to the same bytes (stable ETag).
            with (
                open(xml.path, "rb") as source,
                open(partial, "wb") as raw,
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as compressed,
            ):
                shutil.copyfileobj(source, compressed, _CHUNK)
        else:
            member = zipfile.ZipInfo(FORMATS["xml"][1], date_time=(2024, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            with (
                zipfile.ZipFile(partial, "w") as archive,
                open(xml.path, "rb") as source,
                archive.open(member, "w", force_zip64=True) as stream,
            ):
                shutil.copyfileobj(source, stream, _CHUNK)
        partial.replace(target)
        return self._describe(target, fmt, xml.version)

    def _describe(self, path: Path, fmt: str, version: int) -> ExtractionFile:
        digest = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
        content_type, filename = FORMATS[fmt]
        return ExtractionFile(
            path=path,
            size=path.stat().st_size,
            etag=f'"{digest.hexdigest()}"',
            last_modified=dt.datetime.now(dt.UTC).replace(microsecond=0),
            content_type=content_type,
            filename=filename,
            version=version,
        )

    def _forget_older(self, version: int) -> None:
        for key in [key for key in self._files if key[0] < version]:
            self._files.pop(key).path.unlink(missing_ok=True)


class Unsatisfiable(Exception):
    """A Range the file cannot satisfy (answered with 416)."""


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The ``(first, last)`` byte positions (inclusive) of a single-range ``Range`` header.

    ``None`` means "ignore the header and send everything" (not a bytes range, malformed, or several
    ranges, which RFC 9110 lets a server ignore); :class:`Unsatisfiable` means 416.
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    first_text, last_text = first_text.strip(), last_text.strip()
    if not first_text:  # suffix range: the last N bytes
        if not last_text.isdigit():
            return None
        length = int(last_text)
        if length == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - length), size - 1
    if not first_text.isdigit() or (last_text and not last_text.isdigit()):
        return None
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None
    if first >= size:
        raise Unsatisfiable
    return first, min(int(last_text), size - 1) if last_text else size - 1
