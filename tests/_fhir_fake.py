"""An in-process FHIR API over a list of resources, with the sandbox's search semantics and a
truncation limit: what the ``fhir`` source's logic is tested against without a server."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rorclient.fhir import FhirTruncatedError, resources_for
from rorclient.models import Entity, Offer
from rorclient.sandbox._fhir_search import FhirResources, parse_search


@dataclass
class FakeExport:
    resources_list: list[dict[str, Any]]
    transaction_time: dt.datetime | None
    requested_at: dt.datetime

    def resources(self) -> Iterator[dict[str, Any]]:
        yield from self.resources_list


class FakeFhirApi:
    def __init__(self, resources: Iterable[dict[str, Any]], *, limit: int = 10_000) -> None:
        self.resources = list(resources)
        self.index = FhirResources.of(self.resources)
        self.limit = limit
        self.searches: list[tuple[str, list[tuple[str, str]]]] = []
        self.exports = 0
        self.type_filters: list[str | None] = []

    def search(self, resource_type: str, params: Sequence[tuple[str, str]]) -> Iterator[dict[str, Any]]:
        self.searches.append((resource_type, list(params)))
        query = parse_search(resource_type, params)
        matches = self.index.matches(query)
        if len(matches) >= self.limit:
            raise FhirTruncatedError(
                f"{len(matches)} results", resource_type=resource_type, limit=self.limit, total=len(matches)
            )
        for key in [*matches, *self.index.included(matches, query)]:
            yield self.index.by_key[key]

    @contextlib.contextmanager
    def export(
        self,
        *,
        type_filter: str | None = None,
        on_progress: Callable[[str | None], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[FakeExport]:
        self.exports += 1
        self.type_filters.append(type_filter)
        if on_progress is not None:
            on_progress("50%")
        yield FakeExport(
            list(self.index.by_key.values()),
            dt.datetime(2024, 6, 1, 10, tzinfo=dt.UTC),
            dt.datetime.now(dt.UTC),
        )


def region_resources(region: Iterable[Offer]) -> list[dict[str, Any]]:
    """The FHIR resources of a generated region, each once (a legal entity shared by several offers)."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for offer in region:
        for resource in resources_for(offer.entities()):
            seen.setdefault((resource["resourceType"], resource["id"]), resource)
    return list(seen.values())


def by_key_without_provenance(entities: Iterable[Entity]) -> dict[tuple[str, str], Entity]:
    """``{(kind, id): entity}`` with the FHIR provenance dropped, to compare with generated entities."""
    return {
        (e.kind.value, e.id): e.model_copy(update={"fhir": ()}) if hasattr(e, "fhir") else e for e in entities
    }
