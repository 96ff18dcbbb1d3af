"""What the ``fhir`` source reads: whole exports, ``_lastUpdated`` deltas, establishment and unit graphs.

Independent of the sync engine: it takes any object with the :class:`FhirApi` calls (a
:class:`~rorclient.fhir.FhirClient`, a fake in tests) and returns entities and offers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from rorclient.fhir import _queries as Q
from rorclient.fhir._mapping import FhirAssembler
from rorclient.fhir._parse import OrgNode, offer_id, org_node
from rorclient.fhir._values import PARIS, FhirMappingError, Json, moment, referenced
from rorclient.fhir.errors import FhirTruncatedError
from rorclient.geography import region_of
from rorclient.models import (
    Activity,
    Entity,
    EntityKind,
    Equipment,
    Establishment,
    LegalEntity,
    Offer,
    Professional,
    Unit,
    UnitLevel,
)
from rorclient.sources.base import ChangesTooLargeError

_log = logging.getLogger("rorclient.fhir")

#: The resource types a delta searches, parents first.
DELTA_TYPES: tuple[str, ...] = (
    "Organization",
    "HealthcareService",
    "Location",
    "PractitionerRole",
    "Practitioner",
)
#: A truncated window is halved until it is shorter than this; then the delta gives up (pull instead).
MIN_WINDOW = dt.timedelta(seconds=1)


class ExportLike(Protocol):
    transaction_time: dt.datetime | None
    requested_at: dt.datetime

    def resources(self) -> Iterator[dict[str, Any]]: ...


class FhirApi(Protocol):
    """The :class:`~rorclient.fhir.FhirClient` calls the source makes."""

    def search(self, resource_type: str, params: Sequence[tuple[str, str]]) -> Iterator[dict[str, Any]]: ...

    def export(
        self,
        *,
        type_filter: str | None = None,
        on_progress: Callable[[str | None], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> AbstractContextManager[ExportLike]: ...


class DeltaTooLargeError(FhirTruncatedError, ChangesTooLargeError):
    """A ``_lastUpdated`` window shorter than :data:`MIN_WINDOW` still exceeds the server's limit: the
    delta cannot be read completely; a full pull is the way."""


@dataclass
class Delta:
    """What changed since a watermark: the establishments to read again, the legal entities changed
    (they have no establishment), and what could not be placed."""

    establishments: list[str] = field(default_factory=list)
    legal_entities: list[LegalEntity] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)
    newest: dt.datetime | None = None
    resources: int = 0
    windows: int = 0


@dataclass
class PulledExport:
    """An export, read: its entities (streamed once) and when it was taken."""

    assembler: FhirAssembler
    transaction_time: dt.datetime | None
    requested_at: dt.datetime
    resources: int

    def entities(self) -> Iterator[Entity]:
        return self.assembler.entities()


class FhirReads:
    def __init__(self, api: FhirApi, *, regions: Sequence[str] | None = None) -> None:
        self.api = api
        self.regions = tuple(regions) if regions else None

    # -- pull -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def export(
        self,
        *,
        on_progress: Callable[[str | None], None] | None = None,
        on_resource: Callable[[int], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[PulledExport]:
        """Run the ``$export`` (regional when ``regions`` are set) and read every file; the entities are
        assembled from a spill file, so memory stays flat."""
        from rorclient.fhir.client import region_type_filter  # the client module brings httpx

        type_filter = region_type_filter(self.regions) if self.regions else None
        with self.api.export(type_filter=type_filter, on_progress=on_progress, stop=stop) as export:
            assembler = FhirAssembler()
            try:
                count = 0
                for resource in export.resources():
                    assembler.add(resource)
                    count += 1
                    if on_resource is not None and count % 1000 == 0:
                        on_resource(count)
                    if stop is not None and count % 1000 == 0 and stop():
                        from rorclient.sync._plan import Interrupted

                        raise Interrupted
            except BaseException:
                assembler.close()
                raise
            yield PulledExport(assembler, export.transaction_time, export.requested_at, count)

    # -- sync -----------------------------------------------------------------------------------------

    def changes(self, since: dt.datetime, *, now: dt.datetime | None = None) -> Delta:
        """Every resource changed since ``since`` (aware), per type, in windows halved while the server
        would truncate them; raises :class:`DeltaTooLargeError` rather than return part of a delta."""
        delta = Delta()
        resources: dict[tuple[str, str], Json] = {}
        for resource_type in DELTA_TYPES:
            self._window(resource_type, since, None, now, resources, delta)
        # The answers hold the changed resources and, included, what places them: only the former count.
        changed = {key: resource for key, resource in resources.items() if _changed_since(resource, since)}
        delta.resources = len(changed)
        organizations = {
            key[1]: node
            for key, resource in resources.items()
            if key[0] == "Organization" and (node := _node(resource)) is not None
        }
        offers = {key[1]: resource for key, resource in resources.items() if key[0] == "HealthcareService"}
        roles_of: dict[str, list[Json]] = {}
        for key, resource in resources.items():
            if key[0] == "PractitionerRole":
                practitioner = referenced(resource.get("practitioner"))
                if practitioner is not None:
                    roles_of.setdefault(practitioner[1], []).append(resource)
        found: dict[str, None] = {}
        legal: dict[str, LegalEntity] = {}
        for key, resource in changed.items():
            stamp = _stamp(resource)
            if stamp is not None and (delta.newest is None or stamp > delta.newest):
                delta.newest = stamp
            try:
                owners = self._owners(key[0], resource, organizations, offers, roles_of)
            except FhirMappingError as error:
                delta.unplaced.append(str(error))
                continue
            for owner in owners:
                if owner.kind is EntityKind.LEGAL_ENTITY:
                    legal[owner.business_id] = _legal_entity(resource)
                else:
                    found[owner.business_id] = None
        delta.establishments = list(found)
        delta.legal_entities = list(legal.values())
        return delta

    def _window(
        self,
        resource_type: str,
        since: dt.datetime,
        until: dt.datetime | None,
        now: dt.datetime | None,
        into: dict[tuple[str, str], Json],
        delta: Delta,
    ) -> None:
        params = Q.delta(resource_type, since, until)
        if resource_type == "HealthcareService":
            params += Q.region_filter(self.regions)
        try:
            found = list(self.api.search(resource_type, params))
        except FhirTruncatedError as error:
            end = until or (now or dt.datetime.now(dt.UTC))
            if end - since < MIN_WINDOW * 2:
                raise DeltaTooLargeError(
                    f"{resource_type} changed in [{Q.instant(since)}, {Q.instant(end)}) exceed the server's "
                    f"limit of {error.limit} results even in the shortest window: pull instead",
                    resource_type=resource_type,
                    limit=error.limit,
                    total=error.total,
                ) from error
            middle = since + (end - since) / 2
            _log.info(
                "%s delta from %s truncated (limit %s): split at %s",
                resource_type,
                since,
                error.limit,
                middle,
            )
            self._window(resource_type, since, middle, now, into, delta)
            self._window(resource_type, middle, until, now, into, delta)
            return
        delta.windows += 1
        for resource in found:
            key = (str(resource.get("resourceType")), str(resource.get("id")))
            into[key] = resource

    def _owners(
        self,
        resource_type: str,
        resource: Mapping[str, Any],
        organizations: Mapping[str, OrgNode],
        offers: Mapping[str, Json],
        roles_of: Mapping[str, list[Json]],
    ) -> list[OrgNode]:
        """The establishments (or a legal entity) a changed resource belongs to."""
        if resource_type == "Organization":
            node = organizations.get(str(resource.get("id")))
            if node is None:
                return []
            if node.kind is EntityKind.LEGAL_ENTITY:
                return [node]
            return [_establishment_of(node, organizations, resource)]
        if resource_type == "HealthcareService":
            return [_owner_of_reference(resource.get("providedBy"), organizations, resource)]
        if resource_type == "Location":
            if resource.get("managingOrganization"):
                return [_owner_of_reference(resource.get("managingOrganization"), organizations, resource)]
            users = [
                offer
                for offer in offers.values()
                for item in offer.get("location", ())
                if (target := referenced(item)) is not None and target[1] == resource.get("id")
            ]
            return [_owner_of_reference(user.get("providedBy"), organizations, user) for user in users]
        if resource_type == "PractitionerRole":
            return _role_owners(resource, organizations, offers)
        if resource_type == "Practitioner":
            return [
                owner
                for role in roles_of.get(str(resource.get("id")), ())
                for owner in _role_owners(role, organizations, offers)
            ]
        return []

    # -- refresh --------------------------------------------------------------------------------------

    def establishment(self, identifier: str) -> tuple[str | None, Offer]:
        """``(establishment id, its subtree)`` for a FINESS or idNat_Struct; ``(None, Offer())`` when the
        ROR does not know it."""
        owners = list(self.api.search("Organization", Q.organization_and_owners(identifier)))
        target = _matching(owners, identifier)
        if target is None:
            return None, Offer()
        node = _node(target)
        if node is None or node.kind is not EntityKind.ESTABLISHMENT:
            kind = node.kind.value if node is not None else "unknown"
            raise FhirMappingError(
                f"{identifier} names a {kind.replace('_', ' ')}, not an establishment",
                path=f"Organization/{target.get('id')}",
            )
        parts = self.api.search("Organization", Q.organization_and_parts(identifier))
        offers = self.api.search("HealthcareService", Q.establishment_offers(identifier))
        entities = _assemble([owners, parts, offers])
        return node.business_id, _subtree_of_establishment(entities, node.business_id)

    def establishments_of(self, legal_entity_id: str) -> list[str]:
        """The establishments of a legal entity (idNat_Struct)."""
        found = list(self.api.search("Organization", Q.organization_and_parts(legal_entity_id)))
        legal = _matching(found, legal_entity_id)
        if legal is None:
            return []
        return [
            node.business_id
            for resource in found
            if (node := _node(resource)) is not None
            and node.kind is EntityKind.ESTABLISHMENT
            and node.part_of == legal.get("id")
        ]

    def unit(self, identifier: str) -> tuple[str, Offer]:
        """``(unit id, its subtree and owners)`` for an offer identifier or an identifiantOI; an empty
        offer when the ROR knows neither."""
        offers = list(self.api.search("HealthcareService", Q.offer(identifier)))
        if any(_offer_id(r) == identifier for r in offers if r.get("resourceType") == "HealthcareService"):
            return identifier, _subtree_of_unit(_assemble([offers]), identifier)
        owners = list(self.api.search("Organization", Q.organization_and_owners(identifier)))
        if _matching(owners, identifier) is None:
            return identifier, Offer()
        parts = self.api.search("Organization", Q.organization_and_parts(identifier))
        below = self.api.search("HealthcareService", Q.establishment_offers(identifier))
        return identifier, _subtree_of_unit(_assemble([owners, parts, below]), identifier)

    def in_scope(self, offer: Offer) -> bool:
        """Whether an establishment's subtree belongs to the configured regions (always, when national):
        as a regional ``$export`` decides, when one of its offers (elementary units, tagged with their
        region) is in one of them."""
        if not self.regions:
            return True
        regions = set(self.regions)
        return any(
            region_of(unit) in regions for unit in offer.units if unit.level is UnitLevel.ELEMENTARY_UNIT
        )


# -- helpers ------------------------------------------------------------------------------------------


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=PARIS) if value.tzinfo is None else value


def _stamp(resource: Mapping[str, Any]) -> dt.datetime | None:
    updated = (resource.get("meta") or {}).get("lastUpdated")
    return _aware(moment(str(updated))) if updated else None


def _changed_since(resource: Mapping[str, Any], since: dt.datetime) -> bool:
    stamp = _stamp(resource)
    return stamp is None or stamp >= since


def _node(resource: Mapping[str, Any]) -> OrgNode | None:
    try:
        return org_node(resource)
    except FhirMappingError:
        return None


def _offer_id(resource: Mapping[str, Any]) -> str | None:
    try:
        return offer_id(resource)
    except FhirMappingError:
        return None


def _legal_entity(resource: Mapping[str, Any]) -> LegalEntity:
    (entity,) = _assemble([[resource]])
    assert isinstance(entity, LegalEntity)
    return entity


def _establishment_of(
    node: OrgNode, organizations: Mapping[str, OrgNode], resource: Mapping[str, Any]
) -> OrgNode:
    current = node
    for _ in range(32):
        if current.kind is EntityKind.ESTABLISHMENT:
            return current
        parent = organizations.get(current.part_of) if current.part_of else None
        if parent is None:
            break
        current = parent
    raise FhirMappingError(
        f"the establishment owning {node.business_id} is not in the delta's answer",
        path=f"{resource.get('resourceType')}/{resource.get('id')}",
    )


def _owner_of_reference(
    value: Any, organizations: Mapping[str, OrgNode], resource: Mapping[str, Any]
) -> OrgNode:
    target = referenced(value)
    node = organizations.get(target[1]) if target else None
    if node is None:
        raise FhirMappingError(
            f"refers to {value.get('reference') if isinstance(value, dict) else value}, "
            "not in the delta's answer",
            path=f"{resource.get('resourceType')}/{resource.get('id')}",
        )
    return _establishment_of(node, organizations, resource)


def _role_owners(
    role: Mapping[str, Any], organizations: Mapping[str, OrgNode], offers: Mapping[str, Json]
) -> list[OrgNode]:
    owners: list[OrgNode] = []
    if role.get("organization"):
        owners.append(_owner_of_reference(role.get("organization"), organizations, role))
    for service in role.get("healthcareService", ()):
        target = referenced(service)
        offer = offers.get(target[1]) if target else None
        if offer is None:
            raise FhirMappingError(
                f"refers to {service.get('reference')}, not in the delta's answer",
                path=f"PractitionerRole/{role.get('id')}",
            )
        owners.append(_owner_of_reference(offer.get("providedBy"), organizations, offer))
    return owners


def _matching(resources: Iterable[Mapping[str, Any]], identifier: str) -> Mapping[str, Any] | None:
    for resource in resources:
        for item in resource.get("identifier", ()):
            if item.get("value") == identifier:
                return resource
    return None


def _assemble(parts: Iterable[Iterable[Mapping[str, Any]]]) -> list[Entity]:
    with FhirAssembler() as assembler:
        for part in parts:
            for resource in part:
                assembler.add(resource)
        return list(assembler.entities())


def _subtree_of_establishment(entities: list[Entity], establishment_id: str) -> Offer:
    establishment = next(e for e in entities if isinstance(e, Establishment) and e.id == establishment_id)
    units = {e.id for e in entities if isinstance(e, Unit) and e.establishment_id == establishment_id}
    kept: list[Entity] = [establishment]
    for entity in entities:
        if isinstance(entity, LegalEntity):
            keep = entity.id == establishment.legal_entity_id
        elif isinstance(entity, Unit):
            keep = entity.id in units
        elif isinstance(entity, (Activity, Equipment)):
            keep = entity.unit_id in units
        elif isinstance(entity, Professional):
            keep = establishment_id in entity.establishment_ids or bool(units & set(entity.unit_ids))
        else:
            keep = False
        if keep:
            kept.append(entity)
    return Offer.of(kept)


def _subtree_of_unit(entities: list[Entity], unit_id: str) -> Offer:
    units = {e.id: e for e in entities if isinstance(e, Unit)}
    if unit_id not in units:
        return Offer()
    inside = {unit_id}
    changed = True
    while changed:
        changed = False
        for unit in units.values():
            if unit.id not in inside and unit.parent_unit_id in inside:
                inside.add(unit.id)
                changed = True
    root = units[unit_id]
    above: set[str] = set()
    parent = root.parent_unit_id
    while parent is not None and parent in units and parent not in above:
        above.add(parent)
        parent = units[parent].parent_unit_id
    kept: list[Entity] = []
    legal_id: str | None = None
    for entity in entities:
        if isinstance(entity, Establishment) and entity.id == root.establishment_id:
            legal_id = entity.legal_entity_id
            kept.append(entity)
        elif isinstance(entity, Unit):
            if entity.id in inside or entity.id in above:
                kept.append(entity)
        elif isinstance(entity, (Activity, Equipment)):
            if entity.unit_id in inside:
                kept.append(entity)
        elif isinstance(entity, Professional) and inside & set(entity.unit_ids):
            kept.append(entity)
    kept.extend(e for e in entities if isinstance(e, LegalEntity) and e.id == legal_id)
    return Offer.of(kept)
