"""Bulk ``$export`` jobs of the sandbox's FHIR face: built in a thread, written to files, deleted on
``DELETE``.

A job takes the data as they are at kick-off (``transactionTime``): every establishment's subtree
(legal entity, establishment, units, offers, places, professionals) as the access profile sees it,
each resource once; with a region filter, only the subtrees holding a resource tagged with one of
those regions. Files are JSON Bundles or NDJSON, mixed types in tranches or one type each.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from rorclient.models import Entity, Offer
from rorclient.sandbox._clock import ROR_ZONE
from rorclient.sandbox._fhir_search import regions_of
from rorclient.sandbox._selection import apply_profile

__all__ = ["ExportJob", "ExportOutput", "Mapper", "build_export"]

_log = logging.getLogger("rorclient.sandbox")

Mapper = Callable[[Iterable[Entity]], Iterable[dict[str, Any]]]


@dataclass(frozen=True)
class ExportOutput:
    type: str
    path: Path
    count: int


@dataclass
class ExportJob:
    id: str
    transaction_time: dt.datetime
    """Aware; the data are those of this instant."""
    polls_left: int
    export_type: str
    status: Literal["building", "ready", "failed"] = "building"
    outputs: list[ExportOutput] = field(default_factory=list)
    written: int = 0
    error: str | None = None
    deleted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def new(cls, now: dt.datetime, polls: int, export_type: str) -> ExportJob:
        moment = now if now.tzinfo is not None else now.replace(tzinfo=ROR_ZONE)
        return cls(uuid.uuid4().hex, moment, polls, export_type)

    def manifest(self, base_url: str, request_url: str) -> dict[str, Any]:
        return {
            "transactionTime": self.transaction_time.isoformat(),
            "request": request_url,
            "requiresAccessToken": True,
            "output": [
                {
                    "type": output.type,
                    "url": f"{base_url}/$export-file/{self.id}/{output.path.name}",
                    "count": output.count,
                }
                for output in self.outputs
            ],
            "error": [],
        }


def build_export(
    job: ExportJob,
    offers: Iterator[Offer],
    *,
    directory: Path,
    profile: int,
    regions: frozenset[str] | None,
    mapper: Mapper,
    file_format: Literal["bundle", "ndjson"],
    layout: Literal["mixed", "by_type"],
    per_file: int,
    base_url: str,
    stopping: threading.Event,
) -> None:
    """Write the job's files (run in a thread); the job ends ``ready`` or ``failed``."""
    files = _Files(directory, file_format, layout, per_file, base_url, job.export_type)
    seen: set[str] = set()
    try:
        for offer in offers:
            if stopping.is_set() or job.deleted:
                for output in files.close():
                    output.path.unlink(missing_ok=True)
                return
            resources = list(mapper(apply_profile(offer, profile).entities()))
            if regions is not None and not any(regions_of(resource) & regions for resource in resources):
                continue
            for resource in resources:
                key = f"{resource['resourceType']}/{resource['id']}"
                if key in seen:
                    continue
                seen.add(key)
                files.write(resource)
                job.written += 1
        outputs = files.close()
    except Exception as exc:  # a sandbox or mapping bug: the job fails, as a server's would
        _log.exception("sandbox FHIR export %s failed", job.id)
        files.close()
        with job.lock:
            job.status, job.error = "failed", f"the export failed: {exc}"
        return
    with job.lock:
        job.outputs, job.status = outputs, "ready"


class _Files:
    def __init__(
        self,
        directory: Path,
        file_format: Literal["bundle", "ndjson"],
        layout: Literal["mixed", "by_type"],
        per_file: int,
        base_url: str,
        mixed_type: str,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._format = file_format
        self._layout = layout
        self._per_file = per_file
        self._base_url = base_url
        self._mixed_type = mixed_type
        self._open: dict[str, tuple[IO[str], Path, int]] = {}
        self._done: list[ExportOutput] = []
        self._numbers = 0

    def write(self, resource: dict[str, Any]) -> None:
        group = resource["resourceType"] if self._layout == "by_type" else self._mixed_type
        current = self._open.get(group)
        if current is None:
            self._numbers += 1
            suffix = "ndjson" if self._format == "ndjson" else "json"
            path = self._directory / f"{self._numbers:04d}-{group}.{suffix}"
            opened: IO[str] = path.open("w", encoding="utf-8")
            if self._format == "bundle":
                opened.write('{"resourceType":"Bundle","type":"collection","entry":[\n')
            current = (opened, path, 0)
        stream, path, count = current
        text = json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
        if self._format == "ndjson":
            stream.write(text + "\n")
        else:
            full_url = json.dumps(f"{self._base_url}/{resource['resourceType']}/{resource['id']}")
            stream.write(("," if count else "") + f'{{"fullUrl":{full_url},"resource":{text}}}\n')
        count += 1
        if count >= self._per_file:
            self._finish(group, stream, path, count)
        else:
            self._open[group] = (stream, path, count)

    def _finish(self, group: str, stream: IO[str], path: Path, count: int) -> None:
        if self._format == "bundle":
            stream.write("]}\n")
        stream.close()
        self._open.pop(group, None)
        self._done.append(ExportOutput(group, path, count))

    def close(self) -> list[ExportOutput]:
        for group, (stream, path, count) in list(self._open.items()):
            self._finish(group, stream, path, count)
        return sorted(self._done, key=lambda output: output.path.name)
