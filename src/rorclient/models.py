"""Typed, immutable models of the ROR health-care offer.

The models follow the ROR v2.4 exchange model (CSD profile + ROR extension) but speak business terms:

===================  ====================================  ==========================================
model                CSD element                           business key (``id``)
===================  ====================================  ==========================================
:class:`LegalEntity`   ``organization`` without ``parent``   idNat_Struct of the EJ
:class:`Establishment` ``organization`` with ``parent``      idNat_Struct of the EG
:class:`Unit`          ``facility`` (pôle/service/UF/UE)     identifiantOI (``<region>/<local id>``)
:class:`Activity`      ``service`` linked from a facility    ``<unit id>#<TRE_R211 code>``
:class:`Equipment`     ``device`` linked from a facility     ``<unit id>#<TRE_R212 code>``
:class:`Professional`  ``provider``                          idNat_PS
===================  ====================================  ==========================================

CSD ``entityID`` values are never kept: they only join elements inside one document. Elements that
rorclient does not model are kept verbatim in ``extras`` (children of the entity element) and
``extension_extras`` (children of its ROR ``extension``), so that nothing read is lost and the writer
can emit it again.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Iterable, Iterator
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from rorclient.codes import Oid

__all__ = [
    "Activity",
    "Address",
    "AddressLine",
    "Age",
    "Closure",
    "CodedValue",
    "Contact",
    "Entity",
    "EntityKind",
    "Equipment",
    "Establishment",
    "ExtraElement",
    "FhirResource",
    "Geocode",
    "Identifier",
    "LegalEntity",
    "Location",
    "Offer",
    "PatientsType",
    "PersonName",
    "Professional",
    "RecordMeta",
    "Telecom",
    "Unit",
    "UnitLevel",
]

#: Location status codes (TRE_R203) that mean the place is closed: 1 definitively, 2 temporarily.
CLOSED_LOCATION_STATUSES = frozenset({"1", "2"})


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_IS_NONE = functools.partial(operator.is_, None)


def _kept(default: tuple[()] | None = ()) -> Any:
    """A field added after the first release: left out of the serialised form while empty, so that
    stored entities without it keep their content hash (no spurious ``updated`` after an upgrade)."""
    return Field(default=default, exclude_if=operator.not_)


class EntityKind(StrEnum):
    """The kinds of entity a store holds; the values are the ``kind`` field of the JSONL export."""

    LEGAL_ENTITY = "legal_entity"
    ESTABLISHMENT = "establishment"
    UNIT = "unit"
    ACTIVITY = "activity"
    EQUIPMENT = "equipment"
    PROFESSIONAL = "professional"


class UnitLevel(StrEnum):
    """Level of an internal organisation, from TRE_R207-TypeOrganisationInterne."""

    POLE = "pole"
    SERVICE = "service"
    FUNCTIONAL_UNIT = "functional_unit"
    ELEMENTARY_UNIT = "elementary_unit"
    UNKNOWN = "unknown"

    @classmethod
    def from_code(cls, code: str) -> UnitLevel:
        return _UNIT_LEVEL_BY_CODE.get(code, cls.UNKNOWN)

    @property
    def code(self) -> str | None:
        for code, level in _UNIT_LEVEL_BY_CODE.items():
            if level is self:
                return code
        return None


_UNIT_LEVEL_BY_CODE = {
    "1": UnitLevel.POLE,
    "2": UnitLevel.SERVICE,
    "3": UnitLevel.FUNCTIONAL_UNIT,
    "4": UnitLevel.ELEMENTARY_UNIT,
}


# --------------------------------------------------------------------------------------------------
# Value objects
# --------------------------------------------------------------------------------------------------


class CodedValue(_Model):
    """A code from a nomenclature (CSD ``codedtype``): the code, the OID of its table, its label."""

    code: str
    coding_scheme: str = ""
    display: str | None = None


class Identifier(_Model):
    """A CSD ``otherID``: a value and the OID of the authority that assigned it."""

    value: str
    authority: str


class ExtraElement(_Model):
    """An XML element rorclient does not model, kept verbatim.

    ``name`` is the element's name in Clark notation (``{urn:ihe:iti:csd:2013}price``) and ``xml`` the
    serialised element, self-contained (it declares the namespaces it uses).
    """

    name: str
    xml: str


class FhirResource(_Model):
    """A FHIR resource an entity was read from (national ROR FHIR API).

    ``resource_type`` and ``id`` are the resource's type and logical id (technical; the entity's ``id``
    stays the business identifier shared with CSD). ``elements`` is the JSON object of the resource's
    elements rorclient does not model, kept verbatim so that nothing read is lost (``{}`` when the model
    carries everything).
    """

    resource_type: str
    id: str
    elements: str = "{}"


class RecordMeta(_Model):
    """The CSD ``record`` metadata carried by every object and many sub-objects (RG_EXP_020).

    Date-times are kept as the ROR sends them: without a time zone in every known sample.
    ``extras`` holds the record's ``extension`` elements verbatim (reconciliation data: ``recognation``,
    ``comments``).
    """

    created: dt.datetime
    updated: dt.datetime
    status: str = "Active"
    source_directory: str | None = None
    extras: tuple[ExtraElement, ...] = _kept()


class AddressLine(_Model):
    """One ``addressLine``: optional text and its structured parts (``postCode``, ``cityName``...)."""

    text: str | None = None
    parts: dict[str, str] = Field(default_factory=dict)


class Address(_Model):
    """A CSD ``address``. Its first ``extension`` gives ``record``; what else that extension holds is
    kept verbatim in ``extension_extras``, further ``extension`` elements (and any unknown child) in
    ``extras``. (An ``extras`` extension without a ``record`` here is written after the one carrying
    it; with no ``record`` at all it would be read back as the first one.)"""

    type: str | None = None
    lines: tuple[AddressLine, ...] = ()
    record: RecordMeta | None = None
    language: str | None = Field(default=None, exclude_if=_IS_NONE)
    extras: tuple[ExtraElement, ...] = _kept()
    extension_extras: tuple[ExtraElement, ...] = _kept()

    def part(self, name: str) -> str | None:
        """The first value of a structured part (``postCode``, ``cityName``...) across the lines."""
        for line in self.lines:
            if name in line.parts:
                return line.parts[name]
        return None

    @property
    def post_code(self) -> str | None:
        return self.part("postCode")

    @property
    def city(self) -> str | None:
        return self.part("cityName")


class Telecom(_Model):
    """A CSD ``contactPoint``: a channel (TRE_R200), the number or address, its confidentiality."""

    channel: CodedValue
    value: str | None = None
    purpose: str | None = None
    confidentiality: CodedValue | None = None
    record: RecordMeta | None = None
    #: Children not modelled (``certificate``, further ``extension`` elements), verbatim.
    extras: tuple[ExtraElement, ...] = _kept()
    #: Children of the first ``extension`` besides ``confidentialityLevel`` and ``record``, verbatim.
    extension_extras: tuple[ExtraElement, ...] = _kept()


class Contact(_Model):
    """A ROR contact (in the entity's extension) with its telecoms and confidentiality level."""

    name: str | None = None
    function: CodedValue | None = None
    nature: CodedValue | None = None
    description: str | None = None
    confidentiality: CodedValue
    telecoms: tuple[Telecom, ...] = ()
    record: RecordMeta


class Geocode(_Model):
    """CSD ``geocode``; ``extras`` keeps its ``extension`` elements (``coordonneesFiables``) verbatim."""

    latitude: Decimal
    longitude: Decimal
    coordinate_system: str = "WGS84"
    record: RecordMeta | None = None
    extras: tuple[ExtraElement, ...] = _kept()


class Location(_Model):
    """Where an entity is; ``status`` (TRE_R203) says whether the place is operational or closed."""

    name: str | None = None
    description: str | None = None
    status: CodedValue | None = None
    address: Address | None = None
    coordinates: Geocode | None = None
    city: CodedValue
    record: RecordMeta
    #: Children not modelled (``calculatedDistance`` of a search answer...), verbatim.
    extras: tuple[ExtraElement, ...] = _kept()


class Age(_Model):
    value: int
    unit: CodedValue = CodedValue(code="a", coding_scheme=Oid.UCUM)


class PatientsType(_Model):
    """Supported patients (TRE_R239) and age range of a unit."""

    supported: tuple[CodedValue, ...] = ()
    age_min: Age
    age_max: Age
    record: RecordMeta


class PersonName(_Model):
    common_names: tuple[str, ...]
    forename: str | None = None
    surname: str | None = None
    honorific: CodedValue | None = None


class Closure(_Model):
    """Why an entity counts as closed: a closing date, a final closing date or a location status."""

    date: dt.date | None = None
    reason: CodedValue | None = None
    final: bool = False
    location_status: CodedValue | None = None


def _location_closure(location: Location | None) -> CodedValue | None:
    if (
        location is not None
        and location.status is not None
        and location.status.code in CLOSED_LOCATION_STATUSES
    ):
        return location.status
    return None


# --------------------------------------------------------------------------------------------------
# Entities
# --------------------------------------------------------------------------------------------------


class _Organization(_Model):
    id: str
    other_ids: tuple[Identifier, ...] = ()
    types: tuple[CodedValue, ...] = ()
    name: str
    other_names: tuple[str, ...] = ()
    addresses: tuple[Address, ...] = ()
    contacts: tuple[Contact, ...] = ()
    use_name: str | None = None
    location: Location | None = None
    creation_date: dt.date | None = None
    closing_date: dt.date | None = None
    closing_reason: CodedValue | None = None
    record: RecordMeta
    extras: tuple[ExtraElement, ...] = ()
    extension_extras: tuple[ExtraElement, ...] = ()
    #: The FHIR resources this entity was read from (empty when read from CSD).
    fhir: tuple[FhirResource, ...] = _kept()

    @property
    def closure(self) -> Closure | None:
        status = _location_closure(self.location)
        if self.closing_date is None and status is None:
            return None
        return Closure(
            date=self.closing_date,
            reason=self.closing_reason,
            final=self.closing_date is not None or (status is not None and status.code == "1"),
            location_status=status,
        )

    @property
    def closed(self) -> bool:
        return self.closure is not None


class LegalEntity(_Organization):
    """Entité Juridique (EJ): the legal body that owns establishments."""

    kind: Literal[EntityKind.LEGAL_ENTITY] = EntityKind.LEGAL_ENTITY

    @property
    def parent_id(self) -> None:
        return None


class Establishment(_Organization):
    """Entité Géographique (EG): one site, attached to its legal entity."""

    kind: Literal[EntityKind.ESTABLISHMENT] = EntityKind.ESTABLISHMENT
    legal_entity_id: str
    drop_zone: bool | None = None

    @property
    def parent_id(self) -> str:
        return self.legal_entity_id


class Unit(_Model):
    """Organisation Interne (OI): pôle, service, unité fonctionnelle or unité élémentaire (UE)."""

    kind: Literal[EntityKind.UNIT] = EntityKind.UNIT
    id: str
    other_ids: tuple[Identifier, ...] = ()
    types: tuple[CodedValue, ...] = ()
    name: str
    other_names: tuple[str, ...] = ()
    establishment_id: str
    parent_unit_id: str | None = None
    addresses: tuple[Address, ...] = ()
    contacts: tuple[Contact, ...] = ()
    geocode: Geocode | None = None
    activity_fields: tuple[CodedValue, ...] = ()
    care_mode: CodedValue
    patients: PatientsType
    sensitive: bool = False
    creation_date: dt.date | None = None
    final_closing_date: dt.date | None = None
    location: Location | None = None
    record: RecordMeta
    extras: tuple[ExtraElement, ...] = ()
    extension_extras: tuple[ExtraElement, ...] = ()
    #: The FHIR resources this entity was read from (empty when read from CSD).
    fhir: tuple[FhirResource, ...] = _kept()

    @property
    def level(self) -> UnitLevel:
        for coded in self.types:
            if coded.coding_scheme in (Oid.UNIT_TYPE, ""):
                return UnitLevel.from_code(coded.code)
        return UnitLevel.UNKNOWN

    @property
    def parent_id(self) -> str:
        """The owner in the hierarchy: the parent unit, or the establishment for a top-level unit."""
        return self.parent_unit_id or self.establishment_id

    @property
    def closure(self) -> Closure | None:
        status = _location_closure(self.location)
        if self.final_closing_date is None and status is None:
            return None
        return Closure(
            date=self.final_closing_date,
            final=self.final_closing_date is not None or (status is not None and status.code == "1"),
            location_status=status,
        )

    @property
    def closed(self) -> bool:
        return self.closure is not None


class _UnitCodedEntry:
    """What activities and equipment share: a unit's entry keyed by the unit and a TRE code."""

    if TYPE_CHECKING:
        unit_id: str
        code: CodedValue

    @property
    def id(self) -> str:
        return f"{self.unit_id}#{self.code.code}"

    @property
    def parent_id(self) -> str:
        return self.unit_id

    @property
    def name(self) -> str:
        return self.code.display or self.code.code

    @property
    def closed(self) -> bool:
        """Activities and equipment carry no closure of their own: look at their unit."""
        return False


class Activity(_UnitCodedEntry, _Model):
    """An operational activity (TRE_R211) offered by a unit; keyed by the unit and the code."""

    kind: Literal[EntityKind.ACTIVITY] = EntityKind.ACTIVITY
    unit_id: str
    code: CodedValue
    act_families: tuple[CodedValue, ...] = ()
    record: RecordMeta
    extras: tuple[ExtraElement, ...] = ()
    extension_extras: tuple[ExtraElement, ...] = ()


class Equipment(_UnitCodedEntry, _Model):
    """A specific piece of equipment (TRE_R212) of a unit; keyed by the unit and the code."""

    kind: Literal[EntityKind.EQUIPMENT] = EntityKind.EQUIPMENT
    unit_id: str
    code: CodedValue
    other_ids: tuple[Identifier, ...] = ()
    count: int | None = None
    record: RecordMeta
    extras: tuple[ExtraElement, ...] = ()
    extension_extras: tuple[ExtraElement, ...] = ()


class Professional(_Model):
    """A health professional (ambulatory offer), linked to establishments and units."""

    kind: Literal[EntityKind.PROFESSIONAL] = EntityKind.PROFESSIONAL
    id: str
    other_ids: tuple[Identifier, ...] = ()
    types: tuple[CodedValue, ...] = ()
    person: PersonName
    establishment_ids: tuple[str, ...] = ()
    unit_ids: tuple[str, ...] = ()
    record: RecordMeta
    extras: tuple[ExtraElement, ...] = ()
    extension_extras: tuple[ExtraElement, ...] = ()
    #: The FHIR resources this entity was read from (empty when read from CSD).
    fhir: tuple[FhirResource, ...] = _kept()

    @property
    def parent_id(self) -> str | None:
        if self.unit_ids:
            return self.unit_ids[0]
        return self.establishment_ids[0] if self.establishment_ids else None

    @property
    def closed(self) -> bool:
        return False

    @property
    def name(self) -> str:
        parts = [p for p in (self.person.forename, self.person.surname) if p]
        return " ".join(parts) if parts else " ".join(self.person.common_names)


Entity = LegalEntity | Establishment | Unit | Activity | Equipment | Professional
"""Any entity of the offer; ``entity.kind`` tells which."""

#: Parses any entity from its JSON form (``model_dump_json``), dispatching on ``kind``.
ENTITY_ADAPTER: TypeAdapter[Entity] = TypeAdapter(Annotated[Entity, Field(discriminator="kind")])


class Offer(_Model):
    """A set of entities read together: one Lecture response, or a whole extraction held in memory."""

    legal_entities: tuple[LegalEntity, ...] = ()
    establishments: tuple[Establishment, ...] = ()
    units: tuple[Unit, ...] = ()
    activities: tuple[Activity, ...] = ()
    equipment: tuple[Equipment, ...] = ()
    professionals: tuple[Professional, ...] = ()

    def entities(self) -> Iterator[Entity]:
        """All entities, owners before what they own."""
        yield from self.legal_entities
        yield from self.establishments
        yield from self.units
        yield from self.activities
        yield from self.equipment
        yield from self.professionals

    @classmethod
    def of(cls, entities: Iterable[Entity]) -> Offer:
        """Group a stream of entities (as the CSD reader yields them) into an offer."""
        buckets: dict[EntityKind, list[object]] = {kind: [] for kind in EntityKind}
        for entity in entities:
            buckets[entity.kind].append(entity)
        return cls.model_validate(
            {
                "legal_entities": buckets[EntityKind.LEGAL_ENTITY],
                "establishments": buckets[EntityKind.ESTABLISHMENT],
                "units": buckets[EntityKind.UNIT],
                "activities": buckets[EntityKind.ACTIVITY],
                "equipment": buckets[EntityKind.EQUIPMENT],
                "professionals": buckets[EntityKind.PROFESSIONAL],
            }
        )
