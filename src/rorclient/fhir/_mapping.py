"""The FHIR ↔ model mapping: :func:`resources_for` (entities → resources) and :class:`FhirAssembler`
(resources, in any order → entities).

Two mechanisms make the mapping lossless both ways:

* **residue** (model → FHIR): fields a model carries that no FHIR element holds (CSD ``record`` of a
  sub-object, CSD ``extras``...) travel as JSON in the ``urn:rorclient:fhir:model-residue`` extension of
  the resource. Only rorclient writes it (the sandbox's FHIR face), so that its FHIR face serves exactly
  the entities its CSD face serves.
* **rest** (FHIR → model): elements of a resource the mapping does not reproduce are kept verbatim in the
  entity's ``fhir`` field (:class:`rorclient.models.FhirResource`), with the resource's logical id.

Both are computed, not listed: the residue is what parsing the natural rendering gets wrong; the rest is
what rendering the parsed entity does not give back.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any, Final

from pydantic_core import to_jsonable_python

from rorclient.fhir import _parse, _render
from rorclient.fhir import _systems as S
from rorclient.fhir._parse import OrgNode
from rorclient.fhir._values import PARIS, FhirMappingError, Json, logical_id, moment, referenced, value_of
from rorclient.models import (
    Activity,
    Entity,
    EntityKind,
    Equipment,
    Establishment,
    FhirResource,
    LegalEntity,
    Professional,
    Unit,
    UnitLevel,
)

__all__ = ["FhirAssembler", "entities_from_resources", "resources_for"]

_MODELLED_TYPES: Final = frozenset(
    {"Organization", "HealthcareService", "Location", "Practitioner", "PractitionerRole"}
)


# -- residue ------------------------------------------------------------------------------------------


#: Fields that say which row an entity is and where it belongs: they come from FHIR elements only, never
#: from a residue extension (a hostile or broken server must not move a row by sending one).
_PLACEMENT: Final = frozenset(
    {
        "id", "kind", "fhir", "legal_entity_id", "establishment_id", "parent_unit_id", "unit_id",
        "establishment_ids", "unit_ids",
    }
)  # fmt: skip


def _residue(original: Any, natural: Any) -> Json:
    """The fields of ``original`` that ``natural`` (parsed back from the natural rendering) lacks."""
    out: Json = {}
    for name in type(original).model_fields:
        if name in ("fhir", "kind"):
            continue
        value = getattr(original, name)
        if value != getattr(natural, name):
            if name in _PLACEMENT:
                raise FhirMappingError(
                    f"the FHIR form of {original.kind.value} {original.id} does not give back its {name}"
                )
            out[name] = to_jsonable_python(value)
    return out


def _with_residue(natural: Any, residue: Mapping[str, Any] | None) -> Any:
    if not residue:
        return natural
    placed = sorted(_PLACEMENT & set(residue))
    if placed:
        raise FhirMappingError(
            f"a rorclient residue extension may not set {', '.join(placed)} "
            f"({natural.kind.value} {getattr(natural, 'id', '')})"
        )
    merged = {**natural.model_dump(mode="json"), **residue}
    return type(natural).model_validate_json(json.dumps(merged))


def _residue_extension(residue: Json) -> Json:
    return {"url": S.EXT_MODEL_RESIDUE, "valueString": json.dumps(residue, ensure_ascii=False)}


def _read_residue(element: Mapping[str, Any] | None) -> Json | None:
    if not element:
        return None
    for item in element.get("extension", ()):
        if item.get("url") == S.EXT_MODEL_RESIDUE:
            try:
                value = json.loads(item["valueString"])
            except (KeyError, TypeError, ValueError) as exc:
                raise FhirMappingError("unreadable rorclient residue extension") from exc
            return value if isinstance(value, dict) else None
    return None


def _strip_residue(value: Any) -> Any:
    """``value`` without any residue extension, at any depth (what the natural rendering gives)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "extension":
                kept = [_strip_residue(e) for e in item if e.get("url") != S.EXT_MODEL_RESIDUE]
                if kept:
                    out[key] = kept
            else:
                out[key] = _strip_residue(item)
        return out
    if isinstance(value, list):
        return [_strip_residue(item) for item in value]
    return value


# -- rest ---------------------------------------------------------------------------------------------


def _rest(raw: Mapping[str, Any], rendered: Mapping[str, Any]) -> Json:
    """The elements of ``raw`` that ``rendered`` (the entity's natural rendering) does not give back."""
    rest: Json = {}
    for key, value in raw.items():
        if key in ("resourceType", "id"):
            continue
        if key == "extension":
            known = rendered.get("extension", [])
            extra = [item for item in value if item not in known and item.get("url") != S.EXT_MODEL_RESIDUE]
            if extra:
                rest[key] = extra
        elif key == "meta":
            meta = {k: v for k, v in value.items() if k != "lastUpdated" and rendered["meta"].get(k) != v}
            if meta:
                rest[key] = meta
        elif rendered.get(key) != value:
            rest[key] = value
    return rest


def _overlay(resource: Json, rest: Mapping[str, Any]) -> Json:
    for key, value in rest.items():
        if key == "extension":
            resource.setdefault("extension", []).extend(value)
        elif key == "meta":
            resource["meta"] = {**resource.get("meta", {}), **value}
        else:
            resource[key] = value
    return resource


def _provenance(raw: Mapping[str, Any], rendered: Mapping[str, Any]) -> FhirResource:
    rest = _rest(_strip_residue(raw), rendered)
    return FhirResource(
        resource_type=str(raw["resourceType"]),
        id=str(raw.get("id", "")),
        elements=json.dumps(rest, sort_keys=True, ensure_ascii=False) if rest else "{}",
    )


def _rest_of(entity: Any, resource_type: str) -> Json:
    for item in getattr(entity, "fhir", ()):
        if item.resource_type == resource_type and item.elements != "{}":
            value = json.loads(item.elements)
            return value if isinstance(value, dict) else {}
    return {}


# -- entities → resources -----------------------------------------------------------------------------


class _KnownGraph:
    """A graph that knows the references one entity makes (to parse its own rendering back)."""

    def __init__(self) -> None:
        self.organizations: dict[str, OrgNode] = {}
        self.offers: dict[str, str] = {}
        self.locations: dict[str, Json] = {}

    def organization(self, logical: str) -> OrgNode | None:
        return self.organizations.get(logical)

    def offer_unit(self, logical: str) -> str | None:
        return self.offers.get(logical)

    def location(self, logical: str) -> Json | None:
        return self.locations.get(logical)

    def establishment(self, business_id: str) -> None:
        self.organizations[logical_id(_render.PREFIX_ESTABLISHMENT, business_id)] = OrgNode(
            EntityKind.ESTABLISHMENT, business_id, "owner"
        )

    def owner_of(self, unit: Unit) -> None:
        self.establishment(unit.establishment_id)
        if unit.parent_unit_id is not None:
            self.organizations[logical_id(_render.PREFIX_INTERNAL_UNIT, unit.parent_unit_id)] = OrgNode(
                EntityKind.UNIT,
                unit.parent_unit_id,
                logical_id(_render.PREFIX_ESTABLISHMENT, unit.establishment_id),
            )


def _natural_organization(entity: LegalEntity | Establishment | Unit) -> Json:
    """The natural rendering alone (no residue): what a resource read gives back, to compute its rest."""
    if isinstance(entity, LegalEntity):
        return _render.legal_entity(entity)
    if isinstance(entity, Establishment):
        return _render.establishment(entity)
    return _render.internal_unit(entity)


def _organization_resource(entity: LegalEntity | Establishment | Unit) -> Json:
    graph = _KnownGraph()
    if isinstance(entity, LegalEntity):
        resource = _render.legal_entity(entity)
    elif isinstance(entity, Establishment):
        resource = _render.establishment(entity)
        graph.organizations[logical_id(_render.PREFIX_LEGAL_ENTITY, entity.legal_entity_id)] = OrgNode(
            EntityKind.LEGAL_ENTITY, entity.legal_entity_id, None
        )
    else:
        resource = _render.internal_unit(entity)
        graph.owner_of(entity)
    residue = _residue(entity, _parse.organization(resource, graph))
    if residue:
        resource["extension"].append(_residue_extension(residue))
    return _overlay(resource, _rest_of(entity, "Organization"))


def _offer_resources(
    unit: Unit, activities: Sequence[Activity], equipment: Sequence[Equipment]
) -> list[Json]:
    resources = _render.offer(unit, activities, equipment)
    graph = _KnownGraph()
    graph.owner_of(unit)
    for resource in resources[1:]:
        graph.locations[resource["id"]] = resource
    natural_unit, natural_activities, natural_equipment, _ = _parse.offer(resources[0], graph)
    _add_item_residue(resources, activities, equipment, natural_activities, natural_equipment)
    residue = _residue(unit, natural_unit)
    if residue:
        resources[0]["extension"].append(_residue_extension(residue))
    _overlay(resources[0], _rest_of(unit, "HealthcareService"))
    if len(resources) > 1:
        _overlay(resources[1], _rest_of(unit, "Location"))
    return resources


def _attached_resources(
    unit: Unit, activities: Sequence[Activity], equipment: Sequence[Equipment]
) -> list[Json]:
    """An internal unit's own activities and equipment (``_render.attached_offer``), with their residue."""
    resources = _render.attached_offer(unit, activities, equipment)
    natural_activities, natural_equipment = _attached_entities(resources[0], resources[1:], unit.id)
    _add_item_residue(resources, activities, equipment, natural_activities, natural_equipment)
    return resources


def _attached_entities(
    carrier: Mapping[str, Any], locations: Sequence[Json], unit_id: str
) -> tuple[list[Activity], list[Equipment]]:
    record = _parse.record_of(carrier)
    activities = [
        found
        for found in (
            _parse.activity_of(concept, unit_id, record) for concept in carrier.get("specialty", ())
        )
        if found is not None
    ]
    equipment = [item for raw in locations for item in _parse.equipment_of(raw, unit_id, record)]
    return activities, equipment


def _add_item_residue(
    resources: list[Json],
    activities: Sequence[Activity],
    equipment: Sequence[Equipment],
    natural_activities: Sequence[Activity],
    natural_equipment: Sequence[Equipment],
) -> None:
    concepts = list(resources[0].get("specialty", ()))
    for activity, natural, concept in zip(activities, natural_activities, concepts, strict=True):
        residue = _residue(activity, natural)
        if residue:
            concept["extension"] = [_residue_extension(residue)]
    if equipment:
        slots = [item for item in resources[1]["extension"] if item["url"] == S.EXT_EQUIPMENT]
        for item, natural_item, slot in zip(equipment, natural_equipment, slots, strict=True):
            residue = _residue(item, natural_item)
            if residue:
                slot["extension"].append(_residue_extension(residue))


def _professional_resources(entity: Professional) -> list[Json]:
    resources = _render.professional(entity)
    graph = _KnownGraph()
    for establishment_id in entity.establishment_ids:
        graph.establishment(establishment_id)
    for unit_id in entity.unit_ids:
        graph.offers[logical_id(_render.PREFIX_OFFER, unit_id)] = unit_id
    residue = _residue(entity, _parse.professional(resources[0], resources[1:], graph))
    if residue:
        resources[0]["extension"].append(_residue_extension(residue))
    _overlay(resources[0], _rest_of(entity, "Practitioner"))
    return resources


def resources_for(entities: Iterable[Entity]) -> Iterator[Json]:
    """The FHIR resources (ROR profiles, JSON dicts) that describe ``entities``.

    Legal entities, establishments, internal units and professionals are written as they come;
    elementary units wait until the input ends, for their activities and equipment: pass one site (an
    :class:`~rorclient.models.Offer`'s entities) at a time to keep memory flat. Logical ids are derived
    from the business identifiers (``hs-11-00012``...), so the same entity always gets the same id.
    """
    offers: dict[str, Unit] = {}
    internal: dict[str, Unit] = {}
    activities: defaultdict[str, list[Activity]] = defaultdict(list)
    equipment: defaultdict[str, list[Equipment]] = defaultdict(list)
    for entity in entities:
        if isinstance(entity, (LegalEntity, Establishment)):
            yield _organization_resource(entity)
        elif isinstance(entity, Unit):
            if entity.level is UnitLevel.ELEMENTARY_UNIT:
                offers[entity.id] = entity
            else:
                internal[entity.id] = entity
                yield _organization_resource(entity)
        elif isinstance(entity, Activity):
            activities[entity.unit_id].append(entity)
        elif isinstance(entity, Equipment):
            equipment[entity.unit_id].append(entity)
        else:
            yield from _professional_resources(entity)
    for unit_id in sorted((set(activities) | set(equipment)) & set(internal)):
        yield from _attached_resources(
            internal[unit_id], activities.pop(unit_id, []), equipment.pop(unit_id, [])
        )
    orphans = (set(activities) | set(equipment)) - set(offers)
    if orphans:
        raise FhirMappingError(
            "activities or equipment of units that are not elementary units of the input: "
            f"{sorted(orphans)[:5]}"
        )
    for unit_id, unit in offers.items():
        yield from _offer_resources(unit, activities.pop(unit_id, ()), equipment.pop(unit_id, ()))


# -- resources → entities -----------------------------------------------------------------------------


#: What a resource whose elements have the wrong JSON shape (a string where an object belongs...) raises
#: while being mapped; turned into a :class:`FhirMappingError` naming the resource.
_MALFORMED = (TypeError, AttributeError, KeyError, IndexError, ValueError)


def _malformed(resource: Mapping[str, Any], error: Exception) -> FhirMappingError:
    where = f"{resource.get('resourceType', 'resource')}/{resource.get('id')}"
    return FhirMappingError(f"malformed resource ({type(error).__name__}: {error})", path=where)


def _newness(resource: Mapping[str, Any]) -> str:
    """``meta.lastUpdated`` as a comparable text (UTC), ``""`` when absent."""
    text = (resource.get("meta") or {}).get("lastUpdated")
    if not text:
        return ""
    stamp = moment(str(text)).replace(tzinfo=PARIS)
    return stamp.astimezone(dt.UTC).isoformat()


class _Spill:
    """Resources parked on disk (in memory while small), read back by offset: flat memory on exports."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
        self._end = 0

    def put(self, resource: Mapping[str, Any]) -> tuple[int, int]:
        data = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()
        self._file.seek(self._end)
        self._file.write(data)
        slot = (self._end, len(data))
        self._end += len(data)
        return slot

    def get(self, slot: tuple[int, int]) -> Json:
        self._file.seek(slot[0])
        value: Json = json.loads(self._file.read(slot[1]))
        return value

    def close(self) -> None:
        self._file.close()

    def __del__(self) -> None:  # an assembler dropped unread (an error mid-export) leaves no open file
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()


_KIND_ORDER: Final = {EntityKind.LEGAL_ENTITY: 0, EntityKind.ESTABLISHMENT: 1, EntityKind.UNIT: 2}


class FhirAssembler:
    """Turns FHIR resources, added in any order (an export's files, a search's pages), into entities.

    ``add()`` every resource, then iterate :meth:`entities` once. Resources are parked on disk and
    only small indexes stay in memory. A resource seen twice (same type and logical id) counts once:
    the newest ``meta.lastUpdated`` wins. Resource types rorclient does not model are counted in
    ``ignored``. Unmappable resources raise :class:`FhirMappingError` (``strict``, the default) or
    are skipped and described in ``problems``.
    """

    def __init__(self, *, strict: bool = True) -> None:
        self.strict = strict
        self.problems: list[str] = []
        self.ignored: dict[str, int] = defaultdict(int)
        self._spill = _Spill()
        self._slots: dict[tuple[str, str], tuple[tuple[int, int], str]] = {}
        self._organizations: dict[str, OrgNode] = {}
        self._offers: dict[str, str] = {}
        self._roles: defaultdict[str, set[str]] = defaultdict(set)

    # Graph protocol ----------------------------------------------------------------------------------

    def organization(self, logical: str) -> OrgNode | None:
        return self._organizations.get(logical)

    def offer_unit(self, logical: str) -> str | None:
        return self._offers.get(logical)

    def location(self, logical: str) -> Json | None:
        return self._resource("Location", logical)

    # ------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._slots)

    def close(self) -> None:
        """Drop the spill file (done by :meth:`entities` when it ends; needed when it is never read)."""
        self._spill.close()

    def __enter__(self) -> FhirAssembler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _resource(self, resource_type: str, logical: str) -> Json | None:
        found = self._slots.get((resource_type, logical))
        return self._spill.get(found[0]) if found is not None else None

    def _problem(self, error: FhirMappingError, where: str | None = None) -> None:
        if error.path is None and where is not None:
            error = FhirMappingError(error.message, path=where)
        if self.strict:
            raise error
        self.problems.append(str(error))

    def add(self, resource: Mapping[str, Any]) -> None:
        if not isinstance(resource, Mapping):
            self._problem(FhirMappingError(f"not a FHIR resource: a JSON {type(resource).__name__}"))
            return
        resource_type = str(resource.get("resourceType", ""))
        if resource_type not in _MODELLED_TYPES:
            self.ignored[resource_type or "?"] += 1
            return
        logical = resource.get("id")
        if not logical:
            self._problem(FhirMappingError("resource without a logical id", path=resource_type))
            return
        key = (resource_type, str(logical))
        try:
            updated = _newness(resource)
            previous = self._slots.get(key)
            if previous is not None and previous[1] > updated:
                return
            if resource_type == "Organization":
                self._organizations[key[1]] = _parse.org_node(resource)
            elif resource_type == "HealthcareService":
                self._offers[key[1]] = _parse.offer_id(resource)
            elif resource_type == "PractitionerRole":
                practitioner = referenced(resource.get("practitioner"))
                if practitioner is None:
                    raise FhirMappingError(
                        "PractitionerRole without practitioner", path=_parse.where(resource)
                    )
                self._roles[practitioner[1]].add(key[1])
        except FhirMappingError as error:
            self._problem(error, f"{resource_type}/{logical}")
            return
        except _MALFORMED as error:
            self._problem(_malformed(resource, error))
            return
        self._slots[key] = (self._spill.put(resource), updated)

    def entities(self) -> Iterator[Entity]:
        """Every entity, owners first: legal entities, establishments, internal units (parents first),
        then each elementary unit followed by its activities and equipment, then professionals."""
        try:
            yield from self._organization_entities()
            for logical in list(self._offers):
                yield from self._guarded(self._offer_entities, logical, "HealthcareService")
            for key in [key for key in self._slots if key[0] == "Practitioner"]:
                yield from self._guarded(self._professional_entities, key[1], "Practitioner")
        finally:
            self._spill.close()

    def _guarded(self, build: Any, logical: str, resource_type: str) -> Iterator[Entity]:
        try:
            built = list(build(logical))
        except FhirMappingError as error:
            self._problem(error, f"{resource_type}/{logical}")
            return
        except _MALFORMED as error:
            self._problem(_malformed({"resourceType": resource_type, "id": logical}, error))
            return
        yield from built

    def _depth(self, node: OrgNode) -> int:
        depth = 0
        while node.part_of is not None and depth < 64:
            parent = self._organizations.get(node.part_of)
            if parent is None:
                break
            node, depth = parent, depth + 1
        return depth

    def _organization_entities(self) -> Iterator[Entity]:
        order = sorted(
            self._organizations.items(), key=lambda item: (_KIND_ORDER[item[1].kind], self._depth(item[1]))
        )
        for logical, _node in order:
            yield from self._guarded(self._organization_entity, logical, "Organization")

    def _organization_entity(self, logical: str) -> Iterator[Entity]:
        raw = self._resource("Organization", logical)
        assert raw is not None
        entity = _with_residue(_parse.organization(raw, self), _read_residue(raw))
        rendered = _natural_organization(entity)
        yield entity.model_copy(update={"fhir": (_provenance(raw, rendered),)})

    def _offer_entities(self, logical: str) -> Iterator[Entity]:
        raw = self._resource("HealthcareService", logical)
        assert raw is not None
        provider = referenced(raw.get("providedBy"))
        node = self._organizations.get(provider[1]) if provider else None
        if node is not None and node.kind is EntityKind.UNIT and node.business_id == self._offers[logical]:
            yield from self._attached_entities(raw, node.business_id)
            return
        natural, activities, equipment, locations = _parse.offer(raw, self)
        unit = _with_residue(natural, _read_residue(raw))
        concepts = [c for c in raw.get("specialty", ()) if _parse.activity_of(c, "", natural.record)]
        activities = [
            _with_residue(item, _read_residue(concept))
            for item, concept in zip(activities, concepts, strict=True)
        ]
        equipment = self._equipment_with_residue(unit, equipment, locations)
        rendered = _render.offer(unit, activities, equipment)
        provenance = [_provenance(raw, rendered[0])]
        if locations:
            provenance.append(_provenance(locations[0], rendered[1] if len(rendered) > 1 else {"meta": {}}))
            provenance.extend(_provenance(item, {"meta": {}}) for item in locations[1:])
        yield unit.model_copy(update={"fhir": tuple(provenance)})
        yield from activities
        yield from equipment

    def _attached_entities(self, raw: Json, unit_id: str) -> Iterator[Entity]:
        """The activities and equipment an internal unit's own offer carries (the unit itself comes
        from its Organization)."""
        locations = [
            found
            for item in raw.get("location", ())
            if (target := referenced(item)) is not None and (found := self.location(target[1])) is not None
        ]
        activities, equipment = _attached_entities(raw, locations, unit_id)
        concepts = [c for c in raw.get("specialty", ()) if _parse.activity_of(c, "", _parse.record_of(raw))]
        yield from (
            _with_residue(item, _read_residue(concept))
            for item, concept in zip(activities, concepts, strict=True)
        )
        slots = [
            item
            for location in locations
            for item in location.get("extension", ())
            if item.get("url") == S.EXT_EQUIPMENT and value_of(item, "equipmentType")
        ]
        yield from (
            _with_residue(item, _read_residue(slot)) for item, slot in zip(equipment, slots, strict=True)
        )

    @staticmethod
    def _equipment_with_residue(
        unit: Unit, equipment: list[Equipment], locations: list[Json]
    ) -> list[Equipment]:
        slots = [
            item
            for raw in locations
            for item in raw.get("extension", ())
            if item.get("url") == S.EXT_EQUIPMENT and value_of(item, "equipmentType")
        ]
        return [_with_residue(item, _read_residue(slot)) for item, slot in zip(equipment, slots, strict=True)]

    def _professional_entities(self, logical: str) -> Iterator[Entity]:
        raw = self._resource("Practitioner", logical)
        assert raw is not None
        roles = [
            role
            for role in (self._resource("PractitionerRole", r) for r in sorted(self._roles[logical]))
            if role
        ]
        entity = _with_residue(_parse.professional(raw, roles, self), _read_residue(raw))
        rendered = _render.professional(entity)
        provenance = [_provenance(raw, rendered[0])]
        provenance.extend(
            _provenance(role, rendered[index] if index < len(rendered) else {"meta": {}})
            for index, role in enumerate(roles, start=1)
        )
        yield entity.model_copy(update={"fhir": tuple(provenance)})


def entities_from_resources(resources: Iterable[Mapping[str, Any]], *, strict: bool = True) -> list[Entity]:
    """Every entity of a small set of resources (a search result): :class:`FhirAssembler` in one call."""
    with FhirAssembler(strict=strict) as assembler:
        for resource in resources:
            assembler.add(resource)
        return list(assembler.entities())
