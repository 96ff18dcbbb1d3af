"""``FileSource``: CSD files (the weekly open-data dumps, a saved extraction), plain, gzip or zip.

The files together are one snapshot of the source. They have no deltas and no per-identifier reads:
``Sync.sync()`` on a file source pulls them again when one of them changed since the last pull (its
modification or status-change time is later), and does nothing otherwise; ``refresh`` is refused.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rorclient.errors import ConfigError, RorError
from rorclient.models import Offer
from rorclient.sources.base import DownloadProgress, Snapshot, SourceTraits

if TYPE_CHECKING:
    from rorclient.tls import CertificateInfo

__all__ = ["FileSource"]


class FileSource:
    """The :class:`~rorclient.sources.Source` of a fixed list of CSD files."""

    traits = SourceTraits(deltas=False, reads=False, rereads_prove_deletions=True)
    certificate: CertificateInfo | None = None

    def __init__(self, name: str, files: Sequence[str | os.PathLike[str]]) -> None:
        self._name = name
        self.files = tuple(Path(file) for file in files)

    def __repr__(self) -> str:
        return f"FileSource({self._name!r}, {[str(file) for file in self.files]!r})"

    @property
    def name(self) -> str:
        return self._name

    def check(self) -> None:
        """Raise :class:`~rorclient.errors.ConfigError` unless every file exists and is a file."""
        if not self.files:
            raise ConfigError(f"source {self._name!r}: no file to load")
        missing = [str(file) for file in self.files if not file.exists()]
        if missing:
            raise ConfigError(f"file not found: {', '.join(missing)}")
        not_files = [str(file) for file in self.files if not file.is_file()]
        if not_files:
            raise ConfigError(f"not a file (a directory?): {', '.join(not_files)}")

    def snapshot(self, workdir: Path, *, progress: DownloadProgress | None = None) -> Snapshot:
        self.check()
        return Snapshot(files=self.files, bytes=sum(_size(file) for file in self.files))

    def snapshot_changed(self, since: dt.datetime | None) -> bool:
        if since is None:
            return True
        moment = since if since.tzinfo is not None else since.replace(tzinfo=dt.UTC)
        for file in self.files:
            try:
                status = file.stat()
            except OSError:
                return True  # a pull will say what is wrong with it
            touched = dt.datetime.fromtimestamp(max(status.st_mtime, status.st_ctime), dt.UTC)
            if touched > moment:
                return True
        return False

    def changed_establishments(
        self, since: dt.datetime, *, activity: tuple[str, ...] = (), patients: tuple[str, ...] = ()
    ) -> list[str]:
        raise self._no_reads("delta sync")

    def read_establishments(
        self, establishment_ids: Iterable[str], *, concurrency: int = 4
    ) -> Iterator[tuple[str, Offer | RorError]]:
        raise self._no_reads("refresh")

    def read_establishment(self, establishment_id: str) -> Offer:
        raise self._no_reads("refresh")

    def read_unit(self, unit_id: str) -> Offer:
        raise self._no_reads("refresh")

    def close(self) -> None:
        pass

    def _no_reads(self, what: str) -> ConfigError:
        return ConfigError(
            f"source {self._name!r} is made of files: it has no {what}; pull (or load) the files again"
        )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
