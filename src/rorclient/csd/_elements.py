"""Read one CSD entity element (organization, service, facility, provider, device) into model parts.

The reader hands each complete entity element to :class:`ElementParser`, which walks the small subtree
by hand (no XPath) and returns the model fields plus the ``entityID`` references the reader resolves.
Elements the models do not hold are kept as :class:`~rorclient.models.ExtraElement`: children of the
entity element go to ``extras``, children of its ``extension`` element(s) to ``extension_extras``, in
document order. A second occurrence of an element the model holds only once (a second ``careMode``,
``record``...) is kept there too, so nothing read is dropped.

Sub-objects keep what they do not model too, in their own ``extras``: ``record/extension``
(reconciliation), ``geocode/extension`` (``coordonneesFiables``), a ``contactPoint``'s ``certificate``,
``location/calculatedDistance``, an address's further ``extension`` elements (and ``address/@language``
as a field).

Not kept (the models have no place for them; documented in :mod:`rorclient.csd.reader`):
``otherName/@xml:lang``, provider ``demographic`` beyond its first ``name`` (contact points, addresses,
gender, date of birth, further names, name ``otherName``/``suffix``/``extension``), and the children of
the link elements (``facility/organizations/organization/{service/*,extension}``,
``provider/organizations/organization/*``, ``provider/facilities/facility/*``).

**Plain values.** Every value object is built as a plain ``dict`` holding the model's fields in the
model's order, defaults included and the fields serialised only when non-empty left out while empty,
so that it serialises exactly as pydantic serialises the model (the stored JSON and content hash) and
validates into exactly the model (the reader validates whole entities once, on the model path only).
Repeated values (codes, records, ages) are cached and shared: never mutate a value once built.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from lxml import etree
from pydantic import BaseModel

from rorclient.codes import CSD_NS, Oid
from rorclient.csd._names import (
    ACT_FAMILY,
    ADDRESS,
    ADDRESS_LINE,
    CARE_MODE,
    CITY_NUMBER,
    CLOSING_DATE,
    CLOSING_REASON,
    CODED_TYPE,
    COMMON_NAME,
    CONFIDENTIALITY_LEVEL,
    CONTACT,
    CONTACT_POINT,
    COORDINATE_SYSTEM,
    CREATION_DATE,
    DEMOGRAPHIC,
    DESCRIPTION,
    DROP_ZONE,
    EQUIPMENT,
    EXTENSION,
    FACILITIES,
    FACILITY,
    FINAL_CLOSING_DATE,
    FORENAME,
    FUNCTION,
    GEO_COORDINATES,
    GEOCODE,
    HONORIFIC,
    LATITUDE,
    LOCATION,
    LONGITUDE,
    NAME,
    NATURE,
    NB_IN_SERVICE,
    ORGANIZATION,
    ORGANIZATIONS,
    OTHER_ID,
    OTHER_NAME,
    PARENT,
    PARENT_FACILITY,
    PATIENT_TYPE_AGE_MAX,
    PATIENT_TYPE_AGE_MIN,
    PATIENTS_TYPE,
    PRIMARY_NAME,
    PURPOSE,
    RECORD,
    SENSITIVE_UNIT,
    SERVICE,
    STATUS,
    SUPPORTED_PATIENT,
    SURNAME,
    TYPE_ACTIVITY,
    UNIT,
    USE_NAME,
    VALUE,
    local_name,
)
from rorclient.csd._values import parse_boolean, parse_date, parse_datetime, parse_decimal, parse_integer
from rorclient.errors import DataError
from rorclient.models import Age, Contact, Geocode, Location, PersonName, Telecom

__all__ = [
    "DEFAULT_MAX_UNMODELED_LENGTH",
    "LIBXML_TEXT_LIMIT",
    "DevicePart",
    "ElementParser",
    "FacilityPart",
    "OrganizationPart",
    "ProviderPart",
    "Ref",
    "ServicePayload",
    "Values",
    "plain_template",
    "validator",
]

#: libxml2 refuses longer text nodes and attribute values unless ``huge_tree`` is on.
LIBXML_TEXT_LIMIT = 10_000_000

Ref = tuple[str, etree._Element]
"""An ``entityID`` reference and the element holding it (for error locations)."""

_M = TypeVar("_M", bound=BaseModel)
_V = TypeVar("_V")
_CodedRow = tuple[str, str, str | None]
_ExtraRow = tuple[str, str]
_RecordRow = tuple[str, str, str | None, str | None, tuple[_ExtraRow, ...]]

Values = dict[str, Any]
"""The plain fields of a model (see the module docstring)."""

ServicePayload = tuple[
    _CodedRow, tuple[_CodedRow, ...], _RecordRow, tuple[_ExtraRow, ...], tuple[_ExtraRow, ...]
]
"""What the reader keeps of a ``service`` until facilities reference it: only plain values (code, act
families, record, extras, extension extras), so that the index can spill it to disk compactly."""

# Caches of immutable values: codes repeat a lot, record time stamps within an entity and its
# neighbours. Bounded so that they cost a few MB at most.
_CODED_CACHE_LIMIT = 16_384
_RECORD_CACHE_LIMIT = 4_096
_CANONICAL_NSMAP = {"csd": CSD_NS}
_CSD_PREFIX = f"{{{CSD_NS}}}"


def validator(model: type[_M]) -> Callable[[dict[str, Any]], _M]:
    """Build ``model`` from a field dict with exactly the validation of ``model(**fields)``, minus the
    Python frame of ``BaseModel.__init__`` (a measurable share of the reader's time)."""
    return model.__pydantic_validator__.validate_python


class _Required:
    """Stands for a required field in a template until the reader fills it; serialises to nothing
    and validates into nothing, so that a field left unfilled fails loudly on both paths."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<required>"


REQUIRED = _Required()


def plain_template(model: type[BaseModel]) -> Values:
    """The complete plain fields of ``model`` with their defaults, in the model's order, required fields
    as :data:`REQUIRED`; fields serialised only when non-empty (``exclude_if``) are left out."""
    template: Values = {}
    for name, info in model.model_fields.items():
        if info.exclude_if is not None:
            continue
        if info.is_required():
            template[name] = REQUIRED
        else:
            default = info.get_default(call_default_factory=True)
            template[name] = default.model_dump() if isinstance(default, BaseModel) else default
    return template


_DEFAULT_AGE_UNIT: Values = Age.model_fields["unit"].get_default().model_dump()
_GEOCODE = plain_template(Geocode)
_TELECOM = plain_template(Telecom)
_CONTACT = plain_template(Contact)
_LOCATION = plain_template(Location)
_PERSON_NAME = plain_template(PersonName)


# The children of a ``location`` the model holds, and the field each fills (the first occurrence).
_LOCATION_FIELDS = {
    NAME: "name",
    DESCRIPTION: "description",
    STATUS: "status",
    ADDRESS: "address",
    GEO_COORDINATES: "coordinates",
    CITY_NUMBER: "city",
    RECORD: "record",
}


@dataclass(slots=True)
class OrganizationPart:
    entity_id: str
    business_id: str
    parent: Ref | None
    fields: Values


@dataclass(slots=True)
class FacilityPart:
    entity_id: str
    business_id: str
    fields: Values
    organizations: list[Ref] = field(default_factory=list)
    services: list[Ref] = field(default_factory=list)
    equipment: list[Ref] = field(default_factory=list)
    parent: Ref | None = None


@dataclass(slots=True)
class ProviderPart:
    business_id: str
    fields: Values
    organizations: list[Ref] = field(default_factory=list)
    facilities: list[Ref] = field(default_factory=list)


@dataclass(slots=True)
class DevicePart:
    entity_id: str
    code: Values
    other_ids: tuple[Values, ...]
    count: int | None
    record: Values
    extras: tuple[Values, ...]
    extension_extras: tuple[Values, ...]

    def equipment(self, unit_id: str) -> Values:
        """The fields of the :class:`~rorclient.models.Equipment` of this device in ``unit_id``."""
        return {
            "unit_id": unit_id,
            "code": self.code,
            "other_ids": self.other_ids,
            "count": self.count,
            "record": self.record,
            "extras": self.extras,
            "extension_extras": self.extension_extras,
        }


#: Default cap on the serialised size of one kept unmodeled element (characters): far above anything a
#: ROR sends, far below what would exhaust memory when repeated.
DEFAULT_MAX_UNMODELED_LENGTH = 1_000_000


class ElementParser:
    """Reads entity elements; errors name the element path and line inside the current entity."""

    def __init__(
        self, source: str, max_text_length: int, max_unmodeled_length: int = DEFAULT_MAX_UNMODELED_LENGTH
    ) -> None:
        self.source = source
        self.max_text_length = max_text_length
        self.max_unmodeled_length = max_unmodeled_length
        # At the default limit libxml2 already refuses longer texts and attribute values.
        self._check_lengths = max_text_length != LIBXML_TEXT_LIMIT
        self._entity: etree._Element | None = None
        self._entity_path = ""
        self._entity_position = 0
        self._coded_cache: dict[_CodedRow, Values] = {}
        self._record_cache: dict[_RecordRow, Values] = {}
        self._age_cache: dict[tuple[int, _CodedRow | None], Values] = {}

    # -- locations and errors ---------------------------------------------------------------------

    def begin(self, entity: etree._Element, path: str, position: int) -> None:
        """Start reading ``entity``, the ``position``-th element at ``path`` in the document."""
        self._entity = entity
        self._entity_path = path
        self._entity_position = position
        if self._check_lengths:
            self._check_sizes(entity)

    def _check_sizes(self, entity: etree._Element) -> None:
        # At the default limit libxml2 enforces it while parsing; any other limit is checked here, once
        # per entity, so that the hot paths below read texts and attributes without any test.
        limit = self.max_text_length
        for element in entity.iter():
            if element.text is not None and len(element.text) > limit:
                raise self.error(f"text longer than {limit} characters (max_text_length)", element)
            for name, value in element.attrib.items():
                if len(value) > limit:
                    raise self.error(
                        f"attribute longer than {limit} characters (max_text_length)", element, str(name)
                    )

    def where(
        self, element: etree._Element | None = None, attribute: str | None = None
    ) -> tuple[str, int | None]:
        """The path (``/CSD/facilityDirectory/facility[3]/record/@updated``) and line of ``element``."""
        entity = self._entity
        node = entity if element is None else element
        steps: list[str] = []
        while node is not None and node is not entity:
            parent = node.getparent()
            step = local_name(str(node.tag))
            if parent is not None:
                same = [sibling for sibling in parent if sibling.tag == node.tag]
                if len(same) > 1:
                    step += f"[{next(i for i, s in enumerate(same, 1) if s is node)}]"
            steps.append(step)
            node = parent
        path = "/".join([f"{self._entity_path}[{self._entity_position}]", *reversed(steps)])
        if attribute is not None:
            path += f"/@{attribute}"
        target = entity if element is None else element
        return path, None if target is None else target.sourceline

    def error(
        self, message: str, element: etree._Element | None = None, attribute: str | None = None
    ) -> DataError:
        path, line = self.where(element, attribute)
        return DataError(message, path=path, line=line, source=self.source)

    # -- scalar values ----------------------------------------------------------------------------

    def required_attribute(self, element: etree._Element, name: str) -> str:
        value = element.get(name)
        if value is None:
            raise self.error(f"missing attribute {name}", element)
        return value

    def entity_ref(self, element: etree._Element) -> str:
        value = element.get("entityID")
        if not value:
            raise self.error("missing entityID", element)
        return value

    def date(self, element: etree._Element) -> dt.date:
        return self._simple(element, parse_date, "xs:date")

    def boolean(self, element: etree._Element) -> bool:
        return self._simple(element, parse_boolean, "xs:boolean")

    def integer(self, element: etree._Element) -> int:
        return self._simple(element, parse_integer, "xs:integer")

    def decimal(self, element: etree._Element) -> Decimal:
        return self._simple(element, parse_decimal, "xs:decimal")

    def _simple(self, element: etree._Element, parse: Callable[[str], _V | None], type_name: str) -> _V:
        """The element's text as an XML Schema simple type, or a DataError naming it."""
        value = parse(element.text or "")
        if value is None:
            raise self.error(f"invalid {type_name} {element.text!r}", element)
        return value

    # -- value objects ----------------------------------------------------------------------------

    def coded_row(self, element: etree._Element) -> _CodedRow:
        code = element.get("code")
        if code is None:
            raise self.error("missing attribute code", element)
        return code, element.get("codingScheme") or "", element.text or None

    def coded(self, element: etree._Element) -> Values:
        """A :class:`~rorclient.models.CodedValue` (shared: do not mutate)."""
        code = element.get("code")
        if code is None:
            raise self.error("missing attribute code", element)
        row = (code, element.get("codingScheme") or "", element.text or None)
        value = self._coded_cache.get(row)
        return self.coded_from_row(row) if value is None else value

    def coded_from_row(self, row: _CodedRow) -> Values:
        value = self._coded_cache.get(row)
        if value is None:
            if len(self._coded_cache) >= _CODED_CACHE_LIMIT:
                self._coded_cache.clear()
            value = self._coded_cache[row] = {"code": row[0], "coding_scheme": row[1], "display": row[2]}
        return value

    def identifier(self, element: etree._Element) -> Values:
        code = element.get("code")
        if code is None:
            raise self.error("missing attribute code", element)
        return {"value": code, "authority": element.get("assigningAuthorityName") or ""}

    def record_row(self, element: etree._Element) -> _RecordRow:
        """The attributes and extensions of a ``record``, validated."""
        row = self._record_key(element)
        if row not in self._record_cache:
            self._new_record(row, element)
        return row  # _new_record checked created and updated

    def record(self, element: etree._Element) -> Values:
        """A :class:`~rorclient.models.RecordMeta` (shared: do not mutate)."""
        row = self._record_key(element)
        value = self._record_cache.get(row)
        return self._new_record(row, element) if value is None else value

    def _record_key(self, element: etree._Element) -> tuple[Any, ...]:
        return (
            element.get("created"),
            element.get("updated"),
            element.get("status"),
            element.get("sourceDirectory"),
            tuple(self.unmodeled_row(child) for child in element) if len(element) else (),
        )

    def record_from_row(self, row: _RecordRow) -> Values:
        """The RecordMeta of a row :meth:`record_row` validated."""
        value = self._record_cache.get(row)
        return self._new_record(row, None) if value is None else value

    def _new_record(self, row: tuple[Any, ...], element: etree._Element | None) -> Values:
        created_text, updated_text, status, source_directory, extras = row
        created = self._datetime(created_text, element, "created")
        updated = (
            created if updated_text == created_text else self._datetime(updated_text, element, "updated")
        )
        value: Values = {
            "created": created,
            "updated": updated,
            "status": "Active" if status is None else status,
            "source_directory": source_directory,
        }
        if extras:
            value["extras"] = _extra_elements(extras)
        if len(self._record_cache) >= _RECORD_CACHE_LIMIT:
            self._record_cache.clear()
        self._record_cache[row] = value
        return value

    def _datetime(self, text: str | None, element: etree._Element | None, name: str) -> dt.datetime:
        if text is None:
            raise self.error(f"missing attribute {name}", element)
        value = parse_datetime(text)
        if value is None:
            raise self.error(f"invalid xs:dateTime {text!r}", element, name)
        return value

    def unmodeled_row(self, element: etree._Element) -> _ExtraRow:
        """An unmodeled element, serialised canonically.

        The serialisation does not depend on the prefixes or the namespace declarations of the
        surrounding document (SOAP envelope, ``csd:`` prefix or default namespace): the CSD namespace
        always has the prefix ``csd`` (so that unqualified elements, which the XSD allows in extensions,
        stay unqualified), other namespaces get generated prefixes, and only the namespaces the
        fragment uses are declared. Equal content from two sources therefore gives equal strings (and
        equal store content hashes).
        """
        tag = str(element.tag)
        xml = None
        if tag.startswith(_CSD_PREFIX) and element.nsmap == _CANONICAL_NSMAP:
            xml = etree.tostring(element, encoding="unicode", with_tail=False)
            if xml.count("xmlns") != 1:
                xml = None
        if xml is None:
            xml = _canonical_xml(element)
        if len(xml) > self.max_unmodeled_length:
            raise self.error(
                f"an element the models do not hold ({local_name(tag)}) is {len(xml)} characters long, more "
                f"than max_unmodeled_length ({self.max_unmodeled_length}) allows",
                element,
            )
        return tag, xml

    def unmodeled(self, element: etree._Element) -> Values:
        """An :class:`~rorclient.models.ExtraElement`."""
        tag, xml = self.unmodeled_row(element)
        return {"name": tag, "xml": xml}

    def address(self, element: etree._Element) -> Values:
        lines: list[Values] = []
        record: Values | None = None
        extras: list[Values] = []
        extension_extras: list[Values] = []
        extension_seen = False
        for child in element:
            if child.tag == ADDRESS_LINE:
                lines.append({"text": child.text or None, "parts": dict(child.attrib)})
            elif child.tag == EXTENSION and not extension_seen:
                extension_seen = True
                for sub in child:
                    if sub.tag == RECORD and record is None:
                        record = self.record(sub)
                    else:
                        extension_extras.append(self.unmodeled(sub))
            else:
                extras.append(self.unmodeled(child))
        values: Values = {"type": element.get("type"), "lines": tuple(lines), "record": record}
        language = element.get("language")
        if language is not None:
            values["language"] = language
        if extras:
            values["extras"] = tuple(extras)
        if extension_extras:
            values["extension_extras"] = tuple(extension_extras)
        return values

    def geocode(self, element: etree._Element) -> Values:
        values: Values = {}
        extras: list[Values] = []
        for child in element:
            tag = child.tag
            if tag == LATITUDE and "latitude" not in values:
                values["latitude"] = self.decimal(child)
            elif tag == LONGITUDE and "longitude" not in values:
                values["longitude"] = self.decimal(child)
            elif tag == COORDINATE_SYSTEM and "coordinate_system" not in values:
                values["coordinate_system"] = child.text or ""
            elif tag == RECORD and "record" not in values:
                values["record"] = self.record(child)
            else:
                extras.append(self.unmodeled(child))
        for name in ("latitude", "longitude"):
            if name not in values:
                raise self.error(f"missing {name}", element)
        geocode = _GEOCODE.copy()
        geocode.update(values)
        if extras:
            geocode["extras"] = tuple(extras)
        return geocode

    def telecom(self, element: etree._Element) -> Values:
        values: Values = {}
        extras: list[Values] = []
        extension_extras: list[Values] = []
        extension_seen = False
        for child in element:
            tag = child.tag
            if tag == CODED_TYPE and "channel" not in values:
                values["channel"] = self.coded(child)
            elif tag == EQUIPMENT and "value" not in values:
                values["value"] = child.text
            elif tag == PURPOSE and "purpose" not in values:
                values["purpose"] = child.text
            elif tag == EXTENSION and not extension_seen:
                extension_seen = True
                for sub in child:
                    if sub.tag == CONFIDENTIALITY_LEVEL and "confidentiality" not in values:
                        values["confidentiality"] = self.coded(sub)
                    elif sub.tag == RECORD and "record" not in values:
                        values["record"] = self.record(sub)
                    else:
                        extension_extras.append(self.unmodeled(sub))
            else:
                extras.append(self.unmodeled(child))
        if "channel" not in values:
            raise self.error("missing codedType (communication channel)", element)
        telecom = _TELECOM.copy()
        telecom.update(values)
        if extras:
            telecom["extras"] = tuple(extras)
        if extension_extras:
            telecom["extension_extras"] = tuple(extension_extras)
        return telecom

    def contact(self, element: etree._Element) -> Values:
        values: Values = {}
        telecoms: list[Values] = []
        for child in element:
            tag = child.tag
            if tag == CONTACT_POINT:
                telecoms.append(self.telecom(child))
            elif tag == NAME:
                values["name"] = child.text
            elif tag == FUNCTION:
                values["function"] = self.coded(child)
            elif tag == NATURE:
                values["nature"] = self.coded(child)
            elif tag == DESCRIPTION:
                values["description"] = child.text
            elif tag == CONFIDENTIALITY_LEVEL:
                values["confidentiality"] = self.coded(child)
            elif tag == RECORD:
                values["record"] = self.record(child)
        self._require(values, element, confidentiality="confidentialityLevel", record="record")
        values["telecoms"] = tuple(telecoms)
        contact = _CONTACT.copy()
        contact.update(values)
        return contact

    def location(self, element: etree._Element) -> Values:
        values: Values = {}
        extras: list[Values] = []
        for child in element:
            tag = child.tag
            key = _LOCATION_FIELDS.get(tag)  # type: ignore[arg-type]  # tags are str here
            if key is None or key in values:
                extras.append(self.unmodeled(child))
            elif key == "name" or key == "description":
                values[key] = child.text
            elif key == "address":
                values[key] = self.address(child)
            elif key == "coordinates":
                values[key] = self.geocode(child)
            elif key == "record":
                values[key] = self.record(child)
            else:  # status, city
                values[key] = self.coded(child)
        self._require(values, element, city="cityNumber", record="record")
        location = _LOCATION.copy()
        location.update(values)
        if extras:
            location["extras"] = tuple(extras)
        return location

    def patients(self, element: etree._Element) -> Values:
        values: Values = {}
        supported: list[Values] = []
        for child in element:
            tag = child.tag
            if tag == SUPPORTED_PATIENT:
                supported.append(self.coded(child))
            elif tag == PATIENT_TYPE_AGE_MIN:
                values["age_min"] = self.age(child)
            elif tag == PATIENT_TYPE_AGE_MAX:
                values["age_max"] = self.age(child)
            elif tag == RECORD:
                values["record"] = self.record(child)
        self._require(
            values, element, age_min="patientTypeAgeMin", age_max="patientTypeAgeMax", record="record"
        )
        return {
            "supported": tuple(supported),
            "age_min": values["age_min"],
            "age_max": values["age_max"],
            "record": values["record"],
        }

    def age(self, element: etree._Element) -> Values:
        """An :class:`~rorclient.models.Age` (shared: do not mutate)."""
        value: int | None = None
        unit: Values | None = None
        for child in element:
            if child.tag == VALUE:
                value = self.integer(child)
            elif child.tag == UNIT:
                unit = self.coded(child)
        if value is None:
            raise self.error("missing value", element)
        key = (value, None if unit is None else (unit["code"], unit["coding_scheme"], unit["display"]))
        age = self._age_cache.get(key)
        if age is None:
            if len(self._age_cache) >= _CODED_CACHE_LIMIT:
                self._age_cache.clear()
            age = self._age_cache[key] = {"value": value, "unit": _DEFAULT_AGE_UNIT if unit is None else unit}
        return age

    def person_name(self, demographic: etree._Element) -> Values:
        for name in demographic:
            if name.tag != NAME:
                continue
            values: Values = {}
            common: list[str] = []
            for child in name:
                tag = child.tag
                if tag == COMMON_NAME:
                    common.append(child.text or "")
                elif tag == FORENAME:
                    values["forename"] = child.text
                elif tag == SURNAME:
                    values["surname"] = child.text
                elif tag == HONORIFIC:
                    values["honorific"] = self.coded(child)
            person = _PERSON_NAME.copy()
            person["common_names"] = tuple(common)
            person.update(values)
            return person
        raise self.error("missing name", demographic)

    def _require(self, values: Values, element: etree._Element, **names: str) -> None:
        for key, xml_name in names.items():
            if key not in values:
                raise self.error(f"missing {xml_name}", element)

    # -- entities ---------------------------------------------------------------------------------

    def organization(self, element: etree._Element) -> OrganizationPart:
        entity_id = self.entity_ref(element)
        ids: list[Values] = []
        types: list[Values] = []
        other_names: list[str] = []
        addresses: list[Values] = []
        contacts: list[Values] = []
        extras: list[Values] = []
        ext_extras: list[Values] = []
        fields: Values = {}
        parent: Ref | None = None
        for child in element:
            tag = child.tag
            if tag == OTHER_ID:
                ids.append(self.identifier(child))
            elif tag == CODED_TYPE:
                types.append(self.coded(child))
            elif tag == PRIMARY_NAME and "name" not in fields:
                fields["name"] = child.text or ""
            elif tag == OTHER_NAME:
                other_names.append(child.text or "")
            elif tag == ADDRESS:
                addresses.append(self.address(child))
            elif tag == PARENT and parent is None:
                parent = (self.entity_ref(child), child)
            elif tag == EXTENSION:
                self._organization_extension(child, fields, contacts, ext_extras)
            elif tag == RECORD and "record" not in fields:
                fields["record"] = self.record(child)
            else:
                extras.append(self.unmodeled(child))
        self._require(fields, element, name="primaryName", record="record")
        drop_zone = fields.pop("drop_zone", None)
        if drop_zone is not None:
            value, drop_element = drop_zone
            if parent is None:  # a legal entity has no dropZone field: keep the element, in place
                ext_extras.insert(value, self.unmodeled(drop_element))
            else:
                fields["drop_zone"] = self.boolean(drop_element)
        fields.update(
            id=self._structure_id(ids, element),
            other_ids=tuple(ids),
            types=tuple(types),
            other_names=tuple(other_names),
            addresses=tuple(addresses),
            contacts=tuple(contacts),
            extras=tuple(extras),
            extension_extras=tuple(ext_extras),
        )
        return OrganizationPart(entity_id, fields["id"], parent, fields)

    def _organization_extension(
        self,
        extension: etree._Element,
        fields: Values,
        contacts: list[Values],
        ext_extras: list[Values],
    ) -> None:
        for child in extension:
            tag = child.tag
            if tag == CONTACT:
                contacts.append(self.contact(child))
            elif tag == USE_NAME and "use_name" not in fields:
                fields["use_name"] = child.text
            elif tag == LOCATION and "location" not in fields:
                fields["location"] = self.location(child)
            elif tag == DROP_ZONE and "drop_zone" not in fields:
                fields["drop_zone"] = (len(ext_extras), child)  # decided once we know EJ or EG
            elif tag == CREATION_DATE and "creation_date" not in fields:
                fields["creation_date"] = self.date(child)
            elif tag == CLOSING_DATE and "closing_date" not in fields:
                fields["closing_date"] = self.date(child)
            elif tag == CLOSING_REASON and "closing_reason" not in fields:
                fields["closing_reason"] = self.coded(child)
            else:
                ext_extras.append(self.unmodeled(child))

    def _structure_id(self, ids: list[Values], element: etree._Element) -> str:
        for identifier in ids:
            if identifier["authority"] == Oid.ID_NAT_STRUCT:
                return str(identifier["value"])
        if ids:
            return str(ids[0]["value"])
        raise self.error("organization without otherID: no idNat_Struct", element)

    def facility(self, element: etree._Element) -> FacilityPart:
        entity_id = self.entity_ref(element)
        ids: list[Values] = []
        types: list[Values] = []
        other_names: list[str] = []
        addresses: list[Values] = []
        extras: list[Values] = []
        ext_extras: list[Values] = []
        fields: Values = {}
        part = FacilityPart(entity_id, "", fields)
        for child in element:
            tag = child.tag
            if tag == OTHER_ID:
                ids.append(self.identifier(child))
            elif tag == CODED_TYPE:
                types.append(self.coded(child))
            elif tag == PRIMARY_NAME and "name" not in fields:
                fields["name"] = child.text or ""
            elif tag == ORGANIZATIONS:
                self._facility_organizations(child, part)
            elif tag == EXTENSION:
                self._facility_extension(child, part, ext_extras)
            elif tag == RECORD and "record" not in fields:
                fields["record"] = self.record(child)
            elif tag == OTHER_NAME:
                other_names.append(child.text or "")
            elif tag == ADDRESS:
                addresses.append(self.address(child))
            elif tag == GEOCODE and "geocode" not in fields:
                fields["geocode"] = self.geocode(child)
            else:
                extras.append(self.unmodeled(child))
        self._require(fields, element, name="primaryName", record="record")
        if not ids:
            raise self.error("facility without otherID: no identifiantOI", element)
        self._require(fields, element, care_mode="extension/careMode", patients="extension/patientsType")
        part.business_id = ids[0]["value"]
        fields.update(
            id=part.business_id,
            other_ids=tuple(ids),
            types=tuple(types),
            other_names=tuple(other_names),
            addresses=tuple(addresses),
            contacts=tuple(fields.pop("contacts", ())),
            activity_fields=tuple(fields.pop("activity_fields", ())),
            extras=tuple(extras),
            extension_extras=tuple(ext_extras),
        )
        return part

    def _facility_organizations(self, organizations: etree._Element, part: FacilityPart) -> None:
        for organization in organizations:
            if organization.tag != ORGANIZATION:
                continue
            part.organizations.append((self.entity_ref(organization), organization))
            for service in organization:
                if service.tag == SERVICE:
                    part.services.append((self.entity_ref(service), service))

    def _facility_extension(
        self, extension: etree._Element, part: FacilityPart, ext_extras: list[Values]
    ) -> None:
        fields = part.fields
        for child in extension:
            tag = child.tag
            if tag == TYPE_ACTIVITY:
                fields.setdefault("activity_fields", []).append(self.coded(child))
            elif tag == CARE_MODE and "care_mode" not in fields:
                fields["care_mode"] = self.coded(child)
            elif tag == PATIENTS_TYPE and "patients" not in fields:
                fields["patients"] = self.patients(child)
            elif tag == SENSITIVE_UNIT and "sensitive" not in fields:
                fields["sensitive"] = self.boolean(child)
            elif tag == EQUIPMENT:
                part.equipment.append((self.entity_ref(child), child))
            elif tag == PARENT_FACILITY and part.parent is None:
                part.parent = (self.entity_ref(child), child)
            elif tag == CONTACT:
                fields.setdefault("contacts", []).append(self.contact(child))
            elif tag == CREATION_DATE and "creation_date" not in fields:
                fields["creation_date"] = self.date(child)
            elif tag == FINAL_CLOSING_DATE and "final_closing_date" not in fields:
                fields["final_closing_date"] = self.date(child)
            elif tag == LOCATION and "location" not in fields:
                fields["location"] = self.location(child)
            else:
                ext_extras.append(self.unmodeled(child))

    # -- references only: entities another reader process builds (see reader.read_share) ----------

    def organization_links(self, element: etree._Element) -> OrganizationPart:
        """The ids and ``parent`` of an organization, read as :meth:`organization` reads them; its only
        field is ``id``."""
        entity_id = self.entity_ref(element)
        first: str | None = None
        id_nat: str | None = None
        parent: Ref | None = None
        for child in element:
            tag = child.tag
            if tag == OTHER_ID:
                code = self.required_attribute(child, "code")
                if first is None:
                    first = code
                if id_nat is None and child.get("assigningAuthorityName") == Oid.ID_NAT_STRUCT:
                    id_nat = code
            elif tag == PARENT and parent is None:
                parent = (self.entity_ref(child), child)
        business_id = id_nat if id_nat is not None else first
        if business_id is None:
            raise self.error("organization without otherID: no idNat_Struct", element)
        return OrganizationPart(entity_id, business_id, parent, {"id": business_id})

    def facility_links(self, element: etree._Element) -> FacilityPart:
        """What the document's other facilities and devices need of a facility: its ids, its
        ``parentFacility`` and its ``equipment`` links; no fields, no services, no validation."""
        part = FacilityPart(self.entity_ref(element), "", {})
        has_id = False
        for child in element:
            tag = child.tag
            if tag == OTHER_ID and not has_id:  # the first otherID, whatever its code, as facility()
                part.business_id = self.required_attribute(child, "code")
                has_id = True
            elif tag == EXTENSION:
                for sub in child:
                    if sub.tag == EQUIPMENT:
                        part.equipment.append((self.entity_ref(sub), sub))
                    elif sub.tag == PARENT_FACILITY and part.parent is None:
                        part.parent = (self.entity_ref(sub), sub)
        if not has_id:
            raise self.error("facility without otherID: no identifiantOI", element)
        return part

    def provider_id(self, element: etree._Element) -> str:
        """The idNat_PS of a provider, read as :meth:`provider` reads it."""
        self.entity_ref(element)
        for child in element:
            if child.tag == OTHER_ID:
                value = self.required_attribute(child, "code")
                if value:
                    return value
        raise self.error("provider without otherID: no idNat_PS", element)

    def device_key(self, element: etree._Element) -> tuple[str, str]:
        """The ``entityID`` and equipment code of a device, read as :meth:`device` reads them."""
        entity_id = self.entity_ref(element)
        for child in element:
            if child.tag == CODED_TYPE:
                return entity_id, self.required_attribute(child, "code")
        raise self.error("missing codedType (equipment)", element)

    def service(self, element: etree._Element) -> tuple[str, ServicePayload]:
        entity_id = self.entity_ref(element)
        code: _CodedRow | None = None
        record: _RecordRow | None = None
        families: list[_CodedRow] = []
        extras: list[_ExtraRow] = []
        ext_extras: list[_ExtraRow] = []
        for child in element:
            tag = child.tag
            if tag == CODED_TYPE and code is None:
                code = self.coded_row(child)
            elif tag == RECORD and record is None:
                record = self.record_row(child)
            elif tag == EXTENSION:
                for sub in child:
                    if sub.tag == ACT_FAMILY:
                        families.append(self.coded_row(sub))
                    else:
                        ext_extras.append(self.unmodeled_row(sub))
            else:
                extras.append(self.unmodeled_row(child))
        if code is None:
            raise self.error("missing codedType (operational activity)", element)
        if record is None:
            raise self.error("missing record", element)
        return entity_id, (code, tuple(families), record, tuple(extras), tuple(ext_extras))

    def activity(self, unit_id: str, payload: ServicePayload) -> Values:
        """The fields of the :class:`~rorclient.models.Activity` of a service in ``unit_id``."""
        code, families, record, extras, ext_extras = payload
        return {
            "unit_id": unit_id,
            "code": self.coded_from_row(code),
            "act_families": tuple(self.coded_from_row(row) for row in families),
            "record": self.record_from_row(record),
            "extras": _extra_elements(extras),
            "extension_extras": _extra_elements(ext_extras),
        }

    def device(self, element: etree._Element) -> DevicePart:
        entity_id = self.entity_ref(element)
        ids: list[Values] = []
        code: Values | None = None
        count: int | None = None
        record: Values | None = None
        extras: list[Values] = []
        ext_extras: list[Values] = []
        for child in element:
            tag = child.tag
            if tag == OTHER_ID:
                ids.append(self.identifier(child))
            elif tag == CODED_TYPE and code is None:
                code = self.coded(child)
            elif tag == RECORD and record is None:
                record = self.record(child)
            elif tag == EXTENSION:
                for sub in child:
                    if sub.tag == NB_IN_SERVICE and count is None:
                        count = self.integer(sub)
                    else:
                        ext_extras.append(self.unmodeled(sub))
            else:
                extras.append(self.unmodeled(child))
        if code is None:
            raise self.error("missing codedType (equipment)", element)
        if record is None:
            raise self.error("missing record", element)
        return DevicePart(entity_id, code, tuple(ids), count, record, tuple(extras), tuple(ext_extras))

    def provider(self, element: etree._Element) -> ProviderPart:
        self.entity_ref(element)
        ids: list[Values] = []
        types: list[Values] = []
        extras: list[Values] = []
        ext_extras: list[Values] = []
        fields: Values = {}
        part = ProviderPart("", fields)
        for child in element:
            tag = child.tag
            if tag == OTHER_ID:
                ids.append(self.identifier(child))
            elif tag == CODED_TYPE:
                types.append(self.coded(child))
            elif tag == DEMOGRAPHIC and "person" not in fields:
                fields["person"] = self.person_name(child)
            elif tag == ORGANIZATIONS:
                part.organizations.extend(
                    (self.entity_ref(org), org) for org in child if org.tag == ORGANIZATION
                )
            elif tag == FACILITIES:
                part.facilities.extend(
                    (self.entity_ref(facility), facility) for facility in child if facility.tag == FACILITY
                )
            elif tag == RECORD and "record" not in fields:
                fields["record"] = self.record(child)
            elif tag == EXTENSION:
                ext_extras.extend(self.unmodeled(sub) for sub in child)
            else:
                extras.append(self.unmodeled(child))
        self._require(fields, element, person="demographic", record="record")
        part.business_id = next((i["value"] for i in ids if i["value"]), "")
        if not part.business_id:
            raise self.error("provider without otherID: no idNat_PS", element)
        fields.update(
            id=part.business_id,
            other_ids=tuple(ids),
            types=tuple(types),
            extras=tuple(extras),
            extension_extras=tuple(ext_extras),
        )
        return part


def _canonical_xml(element: etree._Element) -> str:
    """Serialise a copy of ``element`` rebuilt under the canonical namespace map."""
    copy = etree.Element(element.tag, dict(element.attrib), nsmap=_CANONICAL_NSMAP)
    _copy_children(element, copy)
    etree.cleanup_namespaces(copy)
    return etree.tostring(copy, encoding="unicode")


def _copy_children(source: etree._Element, target: etree._Element) -> None:
    target.text = source.text
    for child in source:
        if not isinstance(child.tag, str):  # comments and processing instructions are not kept
            continue
        copy = etree.SubElement(target, child.tag, dict(child.attrib))
        _copy_children(child, copy)
        copy.tail = child.tail


def _extra_elements(rows: tuple[_ExtraRow, ...]) -> tuple[Values, ...]:
    return tuple({"name": name, "xml": xml} for name, xml in rows)
