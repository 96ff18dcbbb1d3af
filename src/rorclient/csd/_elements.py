"""Read one CSD entity element (organization, service, facility, provider, device) into model parts.

The reader hands each complete entity element to :class:`ElementParser`, which walks the small subtree
by hand (no XPath) and returns the model fields plus the ``entityID`` references the reader resolves.

**One walk.** Every element type the models hold has a table (:func:`_build_tables`): for each child
tag, the field it fills, how its value is read, and its repeat rule: *append* (the model holds a
sequence), *first* (the model holds one: the first is read, a repeat is kept as unmodeled), *last*
(each one is read, the last wins: contacts, patient types, ages, names), *nested* (the child's own
children are walked into the same fields: ``extension``, link lists; *nested once* for the sub-objects
whose second ``extension`` is kept as unmodeled). The table also says where unmodeled children go
(``extras``, ``extension_extras``, or nowhere for contacts, patient types, ages and names).
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
Repeated values (codes, records, ages) are cached and shared: never mutate a value once built. On the
model path (``ElementParser(models=True)``) those three are built as models once and reused, so that
validating an entity does not build them again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

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
from rorclient.models import Age, CodedValue, Contact, Geocode, Location, PersonName, RecordMeta, Telecom

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
    """Stands for a required field in a template until the reader fills it: neither orjson nor pydantic
    accepts it, so that a field left unfilled fails loudly on both paths."""

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
_new_coded = validator(CodedValue)
_new_record = validator(RecordMeta)
_new_age = validator(Age)
_GEOCODE = plain_template(Geocode)
_TELECOM = plain_template(Telecom)
_CONTACT = plain_template(Contact)
_LOCATION = plain_template(Location)
_PERSON_NAME = plain_template(PersonName)


# How the walk treats a child the table lists: the model holds a sequence of them (each one read), or one
# (the first read, and any further one kept as unmodeled; or the last read, each one read), or the child
# is read into the element's own values by a nested walk (each one, or the first one only).
_APPEND, _FIRST, _LAST, _NESTED, _NESTED_ONCE = "append", "first", "last", "nested", "nested once"


@dataclass(frozen=True, slots=True)
class _Table:
    """How to walk the children of one kind of element: ``entries`` maps a child's tag to the key it
    fills in the element's values, the reader of its value (``read(self, child)``; a nested walk is called
    ``read(self, child, values)``) and its repeat rule. A child the table does not list, or a repeat of a
    ``_FIRST`` or ``_NESTED_ONCE`` one, is kept with ``unmodeled`` in the list at ``extras``, or
    dropped when ``extras`` is ``None``."""

    entries: dict[str, tuple[str, Callable[..., Any], str]]
    extras: str | None = None
    unmodeled: Callable[[Any, etree._Element], Any] = lambda parser, element: None


# Readers of the walk: ``read(parser, child)``, or ``read(parser, child, values)`` for a nested walk.


def _text(parser: ElementParser, element: etree._Element) -> str | None:
    return element.text


def _text_or_empty(parser: ElementParser, element: etree._Element) -> str:
    return element.text or ""


def _address_line(parser: ElementParser, element: etree._Element) -> Values:
    return {"text": element.text or None, "parts": dict(element.attrib)}


def _nested(table: _Table) -> Callable[[ElementParser, etree._Element, Values], None]:
    """A nested walk: the children of the child are read into the element's own values."""

    def walk(parser: ElementParser, element: etree._Element, values: Values) -> None:
        parser._walk(table, element, values)

    return walk


def _link_list(tag: str, key: str) -> Callable[[ElementParser, etree._Element, Values], None]:
    """The ``entityID`` references of the ``tag`` children of a link list (their children ignored)."""

    def read(parser: ElementParser, element: etree._Element, values: Values) -> None:
        refs = values.setdefault(key, [])
        refs.extend((parser.entity_ref(link), link) for link in element if link.tag == tag)

    return read


def _drop_zone(parser: ElementParser, element: etree._Element, values: Values) -> None:
    """Remember the ``dropZone`` and where it stands among the extension's unmodeled children: an
    establishment reads it, a legal entity keeps it there (see :meth:`ElementParser.organization`)."""
    values["drop_zone"] = (len(values.get("extension_extras", ())), element)


def _tuples(values: Values, keys: tuple[str, ...]) -> None:
    """The walk's lists as the models' tuples."""
    for key in keys:
        found = values.get(key)
        if found is not None:
            values[key] = tuple(found)


def _complete(template: Values, found: Values, trailing: tuple[str, ...]) -> Values:
    """``found`` in the order and with the defaults of ``template``, then the ``trailing`` fields
    (serialised only when non-empty) that were found."""
    values = template.copy()
    trailing_found = {key: found.pop(key) for key in trailing if key in found}
    values.update(found)
    for key, value in trailing_found.items():
        values[key] = tuple(value)
    return values


def _trailing(values: Values, found: Values, *keys: str) -> None:
    for key in keys:
        value = found.get(key)
        if value:
            values[key] = tuple(value)


_ORGANIZATION_LISTS = (
    "other_ids",
    "types",
    "other_names",
    "addresses",
    "contacts",
    "extras",
    "extension_extras",
)
_FACILITY_LISTS = (
    "other_ids",
    "types",
    "other_names",
    "addresses",
    "contacts",
    "activity_fields",
    "extras",
    "extension_extras",
)
_PROVIDER_LISTS = ("other_ids", "types", "extras", "extension_extras")


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
    code_value: str  # the equipment code (TRE_R212)
    code: Any  # plain values, or a CodedValue on the model path
    other_ids: tuple[Values, ...]
    count: int | None
    record: Any  # plain values, or a RecordMeta on the model path
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

    # How the walk reads each element type: shared by every parser (see _build_tables below).
    _address: ClassVar[_Table]
    _geocode: ClassVar[_Table]
    _telecom: ClassVar[_Table]
    _contact: ClassVar[_Table]
    _location: ClassVar[_Table]
    _patients: ClassVar[_Table]
    _age: ClassVar[_Table]
    _name: ClassVar[_Table]
    _organization: ClassVar[_Table]
    _facility: ClassVar[_Table]
    _provider: ClassVar[_Table]
    _device: ClassVar[_Table]
    _service: ClassVar[_Table]

    def __init__(
        self,
        source: str,
        max_text_length: int,
        max_unmodeled_length: int = DEFAULT_MAX_UNMODELED_LENGTH,
        *,
        models: bool = False,
    ) -> None:
        self.source = source
        # On the model path, the shared value objects (codes, records, ages) are built as models once
        # and reused: validating an entity then only checks their type instead of building them again.
        self._models = models
        self.max_text_length = max_text_length
        self.max_unmodeled_length = max_unmodeled_length
        # At the default limit libxml2 already refuses longer texts and attribute values.
        self._check_lengths = max_text_length != LIBXML_TEXT_LIMIT
        self._entity: etree._Element | None = None
        self._entity_path = ""
        self._entity_position = 0
        self._coded_cache: dict[_CodedRow, Any] = {}
        self._record_cache: dict[_RecordRow, Any] = {}
        self._age_cache: dict[tuple[int, _CodedRow | None], Any] = {}

    def close(self) -> None:
        """Drop the caches: the parser is done."""
        self._coded_cache.clear()
        self._record_cache.clear()
        self._age_cache.clear()

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

    def coded(self, element: etree._Element) -> Any:
        """A :class:`~rorclient.models.CodedValue`: plain values, or the model on the model path
        (shared: do not mutate)."""
        code = element.get("code")
        if code is None:
            raise self.error("missing attribute code", element)
        row = (code, element.get("codingScheme") or "", element.text or None)
        value = self._coded_cache.get(row)
        return self.coded_from_row(row) if value is None else value

    def coded_from_row(self, row: _CodedRow) -> Any:
        value = self._coded_cache.get(row)
        if value is None:
            if len(self._coded_cache) >= _CODED_CACHE_LIMIT:
                self._coded_cache.clear()
            value = {"code": row[0], "coding_scheme": row[1], "display": row[2]}
            if self._models:
                value = _new_coded(value)
            self._coded_cache[row] = value
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

    def record(self, element: etree._Element) -> Any:
        """A :class:`~rorclient.models.RecordMeta`: plain values, or the model on the model path
        (shared: do not mutate)."""
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

    def record_from_row(self, row: _RecordRow) -> Any:
        """The RecordMeta of a row :meth:`record_row` validated."""
        value = self._record_cache.get(row)
        return self._new_record(row, None) if value is None else value

    def _new_record(self, row: tuple[Any, ...], element: etree._Element | None) -> Any:
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
        record = _new_record(value) if self._models else value
        if len(self._record_cache) >= _RECORD_CACHE_LIMIT:
            self._record_cache.clear()
        self._record_cache[row] = record
        return record

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

    # -- the walk ---------------------------------------------------------------------------------

    def _walk(self, table: _Table, element: etree._Element, values: Values) -> Values:
        """Read the children of ``element`` into ``values`` as ``table`` says (see :class:`_Table`)."""
        entry_of = table.entries.get
        for child in element:
            entry = entry_of(child.tag)  # type: ignore[arg-type]  # tags are str here
            if entry is not None:
                key, read, rule = entry
                if rule is _FIRST:
                    if key not in values:
                        values[key] = read(self, child)
                        continue
                elif rule is _APPEND:
                    if key in values:
                        values[key].append(read(self, child))
                    else:
                        values[key] = [read(self, child)]
                    continue
                elif rule is _LAST:
                    values[key] = read(self, child)
                    continue
                elif rule is _NESTED:
                    read(self, child, values)
                    continue
                elif key not in values:  # _NESTED_ONCE: ``key`` marks the first one read
                    values[key] = True
                    read(self, child, values)
                    continue
            if table.extras is not None:  # unmodeled, or a repeat of what the model holds once
                kept = values.get(table.extras)
                if kept is None:
                    values[table.extras] = [table.unmodeled(self, child)]
                else:
                    kept.append(table.unmodeled(self, child))
        return values

    def ref(self, element: etree._Element) -> Ref:
        return self.entity_ref(element), element

    def _facility_organizations(self, organizations: etree._Element, values: Values) -> None:
        for organization in organizations:
            if organization.tag != ORGANIZATION:
                continue
            values.setdefault("#organizations", []).append((self.entity_ref(organization), organization))
            for service in organization:
                if service.tag == SERVICE:
                    values.setdefault("#services", []).append((self.entity_ref(service), service))

    # -- value objects built by the walk ----------------------------------------------------------

    def address(self, element: etree._Element) -> Values:
        found = self._walk(self._address, element, {})
        values: Values = {
            "type": element.get("type"),
            "lines": tuple(found.get("lines", ())),
            "record": found.get("record"),
        }
        language = element.get("language")
        if language is not None:
            values["language"] = language
        _trailing(values, found, "extras", "extension_extras")
        return values

    def geocode(self, element: etree._Element) -> Values:
        found = self._walk(self._geocode, element, {})
        for name in ("latitude", "longitude"):
            if name not in found:
                raise self.error(f"missing {name}", element)
        return _complete(_GEOCODE, found, ("extras",))

    def telecom(self, element: etree._Element) -> Values:
        found = self._walk(self._telecom, element, {})
        if "channel" not in found:
            raise self.error("missing codedType (communication channel)", element)
        found.pop("#extension", None)
        return _complete(_TELECOM, found, ("extras", "extension_extras"))

    def contact(self, element: etree._Element) -> Values:
        found = self._walk(self._contact, element, {})
        self._require(found, element, confidentiality="confidentialityLevel", record="record")
        found["telecoms"] = tuple(found.get("telecoms", ()))
        return _complete(_CONTACT, found, ())

    def location(self, element: etree._Element) -> Values:
        found = self._walk(self._location, element, {})
        self._require(found, element, city="cityNumber", record="record")
        return _complete(_LOCATION, found, ("extras",))

    def patients(self, element: etree._Element) -> Values:
        found = self._walk(self._patients, element, {})
        self._require(
            found, element, age_min="patientTypeAgeMin", age_max="patientTypeAgeMax", record="record"
        )
        return {
            "supported": tuple(found.get("supported", ())),
            "age_min": found["age_min"],
            "age_max": found["age_max"],
            "record": found["record"],
        }

    def age(self, element: etree._Element) -> Any:
        """An :class:`~rorclient.models.Age`: plain values, or the model on the model path (shared: do
        not mutate)."""
        found = self._walk(self._age, element, {})
        value = found.get("value")
        if value is None:
            raise self.error("missing value", element)
        unit_row: _CodedRow | None = found.get("unit")
        key = (value, unit_row)
        age = self._age_cache.get(key)
        if age is None:
            if len(self._age_cache) >= _CODED_CACHE_LIMIT:
                self._age_cache.clear()
            unit = _DEFAULT_AGE_UNIT if unit_row is None else self.coded_from_row(unit_row)
            age = {"value": value, "unit": unit}
            if self._models:
                age = _new_age(age)
            self._age_cache[key] = age
        return age

    def person_name(self, demographic: etree._Element) -> Values:
        for name in demographic:  # the first name only (see the module docstring)
            if name.tag == NAME:
                found = self._walk(self._name, name, {})
                found["common_names"] = tuple(found.get("common_names", ()))
                return _complete(_PERSON_NAME, found, ())
        raise self.error("missing name", demographic)

    def _require(self, values: Values, element: etree._Element, **names: str) -> None:
        for key, xml_name in names.items():
            if key not in values:
                raise self.error(f"missing {xml_name}", element)

    # -- entities ---------------------------------------------------------------------------------

    def organization(self, element: etree._Element) -> OrganizationPart:
        entity_id = self.entity_ref(element)
        fields = self._walk(self._organization, element, {})
        parent: Ref | None = fields.pop("#parent", None)
        self._require(fields, element, name="primaryName", record="record")
        drop_zone = fields.pop("drop_zone", None)
        if drop_zone is not None:
            position, drop_element = drop_zone
            if parent is None:  # a legal entity has no dropZone field: keep the element, in place
                fields.setdefault("extension_extras", []).insert(position, self.unmodeled(drop_element))
            else:
                fields["drop_zone"] = self.boolean(drop_element)
        fields["id"] = self._structure_id(fields.get("other_ids", ()), element)
        _tuples(fields, _ORGANIZATION_LISTS)
        return OrganizationPart(entity_id, fields["id"], parent, fields)

    def _structure_id(self, ids: list[Values], element: etree._Element) -> str:
        for identifier in ids:
            if identifier["authority"] == Oid.ID_NAT_STRUCT:
                return str(identifier["value"])
        if ids:
            return str(ids[0]["value"])
        raise self.error("organization without otherID: no idNat_Struct", element)

    def facility(self, element: etree._Element) -> FacilityPart:
        entity_id = self.entity_ref(element)
        fields = self._walk(self._facility, element, {})
        self._require(fields, element, name="primaryName", record="record")
        if "other_ids" not in fields:
            raise self.error("facility without otherID: no identifiantOI", element)
        self._require(fields, element, care_mode="extension/careMode", patients="extension/patientsType")
        part = FacilityPart(
            entity_id,
            fields["other_ids"][0]["value"],
            fields,
            fields.pop("#organizations", []),
            fields.pop("#services", []),
            fields.pop("#equipment", []),
            fields.pop("#parent", None),
        )
        fields["id"] = part.business_id
        _tuples(fields, _FACILITY_LISTS)
        return part

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
        found = self._walk(self._service, element, {})
        code: _CodedRow | None = found.get("code")
        if code is None:
            raise self.error("missing codedType (operational activity)", element)
        record: _RecordRow | None = found.get("record")
        if record is None:
            raise self.error("missing record", element)
        return entity_id, (
            code,
            tuple(found.get("families", ())),
            record,
            tuple(found.get("extras", ())),
            tuple(found.get("extension_extras", ())),
        )

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
        found = self._walk(self._device, element, {})
        code: _CodedRow | None = found.get("code")
        if code is None:
            raise self.error("missing codedType (equipment)", element)
        if "record" not in found:
            raise self.error("missing record", element)
        return DevicePart(
            entity_id,
            code[0],
            self.coded_from_row(code),
            tuple(found.get("other_ids", ())),
            found.get("count"),
            found["record"],
            tuple(found.get("extras", ())),
            tuple(found.get("extension_extras", ())),
        )

    def provider(self, element: etree._Element) -> ProviderPart:
        self.entity_ref(element)
        fields = self._walk(self._provider, element, {})
        self._require(fields, element, person="demographic", record="record")
        business_id = next((i["value"] for i in fields.get("other_ids", ()) if i["value"]), "")
        if not business_id:
            raise self.error("provider without otherID: no idNat_PS", element)
        part = ProviderPart(
            business_id, fields, fields.pop("#organizations", []), fields.pop("#facilities", [])
        )
        fields["id"] = business_id
        _tuples(fields, _PROVIDER_LISTS)
        return part


def _build_tables(parser: type[ElementParser]) -> None:
    """The walk of every CSD element the reader models: child tag -> (key, reader, repeat rule)."""
    nested = _NESTED
    coded, record, text, unmodeled = parser.coded, parser.record, _text, parser.unmodeled
    address_extension = _Table({RECORD: ("record", record, _FIRST)}, "extension_extras", unmodeled)
    parser._address = _Table(
        {
            ADDRESS_LINE: ("lines", _address_line, _APPEND),
            EXTENSION: ("#extension", _nested(address_extension), _NESTED_ONCE),
        },
        "extras",
        unmodeled,
    )
    parser._geocode = _Table(
        {
            LATITUDE: ("latitude", parser.decimal, _FIRST),
            LONGITUDE: ("longitude", parser.decimal, _FIRST),
            COORDINATE_SYSTEM: ("coordinate_system", _text_or_empty, _FIRST),
            RECORD: ("record", record, _FIRST),
        },
        "extras",
        unmodeled,
    )
    telecom_extension = _Table(
        {CONFIDENTIALITY_LEVEL: ("confidentiality", coded, _FIRST), RECORD: ("record", record, _FIRST)},
        "extension_extras",
        unmodeled,
    )
    parser._telecom = _Table(
        {
            CODED_TYPE: ("channel", coded, _FIRST),
            EQUIPMENT: ("value", text, _FIRST),
            PURPOSE: ("purpose", text, _FIRST),
            EXTENSION: ("#extension", _nested(telecom_extension), _NESTED_ONCE),
        },
        "extras",
        unmodeled,
    )
    parser._contact = _Table(  # unknown children dropped, repeats: the last one wins
        {
            CONTACT_POINT: ("telecoms", parser.telecom, _APPEND),
            NAME: ("name", text, _LAST),
            FUNCTION: ("function", coded, _LAST),
            NATURE: ("nature", coded, _LAST),
            DESCRIPTION: ("description", text, _LAST),
            CONFIDENTIALITY_LEVEL: ("confidentiality", coded, _LAST),
            RECORD: ("record", record, _LAST),
        },
    )
    parser._location = _Table(
        {
            NAME: ("name", text, _FIRST),
            DESCRIPTION: ("description", text, _FIRST),
            STATUS: ("status", coded, _FIRST),
            ADDRESS: ("address", parser.address, _FIRST),
            GEO_COORDINATES: ("coordinates", parser.geocode, _FIRST),
            CITY_NUMBER: ("city", coded, _FIRST),
            RECORD: ("record", record, _FIRST),
        },
        "extras",
        unmodeled,
    )
    parser._patients = _Table(
        {
            SUPPORTED_PATIENT: ("supported", coded, _APPEND),
            PATIENT_TYPE_AGE_MIN: ("age_min", parser.age, _LAST),
            PATIENT_TYPE_AGE_MAX: ("age_max", parser.age, _LAST),
            RECORD: ("record", record, _LAST),
        },
    )
    parser._age = _Table({VALUE: ("value", parser.integer, _LAST), UNIT: ("unit", parser.coded_row, _LAST)})
    parser._name = _Table(
        {
            COMMON_NAME: ("common_names", _text_or_empty, _APPEND),
            FORENAME: ("forename", text, _LAST),
            SURNAME: ("surname", text, _LAST),
            HONORIFIC: ("honorific", coded, _LAST),
        },
    )
    organization_extension = _Table(
        {
            CONTACT: ("contacts", parser.contact, _APPEND),
            USE_NAME: ("use_name", text, _FIRST),
            LOCATION: ("location", parser.location, _FIRST),
            DROP_ZONE: ("drop_zone", _drop_zone, _NESTED_ONCE),  # decided once we know EJ or EG
            CREATION_DATE: ("creation_date", parser.date, _FIRST),
            CLOSING_DATE: ("closing_date", parser.date, _FIRST),
            CLOSING_REASON: ("closing_reason", coded, _FIRST),
        },
        "extension_extras",
        unmodeled,
    )
    parser._organization = _Table(
        {
            OTHER_ID: ("other_ids", parser.identifier, _APPEND),
            CODED_TYPE: ("types", coded, _APPEND),
            PRIMARY_NAME: ("name", _text_or_empty, _FIRST),
            OTHER_NAME: ("other_names", _text_or_empty, _APPEND),
            ADDRESS: ("addresses", parser.address, _APPEND),
            PARENT: ("#parent", parser.ref, _FIRST),
            EXTENSION: ("", _nested(organization_extension), nested),
            RECORD: ("record", record, _FIRST),
        },
        "extras",
        unmodeled,
    )
    facility_extension = _Table(
        {
            TYPE_ACTIVITY: ("activity_fields", coded, _APPEND),
            CARE_MODE: ("care_mode", coded, _FIRST),
            PATIENTS_TYPE: ("patients", parser.patients, _FIRST),
            SENSITIVE_UNIT: ("sensitive", parser.boolean, _FIRST),
            EQUIPMENT: ("#equipment", parser.ref, _APPEND),
            PARENT_FACILITY: ("#parent", parser.ref, _FIRST),
            CONTACT: ("contacts", parser.contact, _APPEND),
            CREATION_DATE: ("creation_date", parser.date, _FIRST),
            FINAL_CLOSING_DATE: ("final_closing_date", parser.date, _FIRST),
            LOCATION: ("location", parser.location, _FIRST),
        },
        "extension_extras",
        unmodeled,
    )
    parser._facility = _Table(
        {
            OTHER_ID: ("other_ids", parser.identifier, _APPEND),
            CODED_TYPE: ("types", coded, _APPEND),
            PRIMARY_NAME: ("name", _text_or_empty, _FIRST),
            ORGANIZATIONS: ("", parser._facility_organizations, nested),
            EXTENSION: ("", _nested(facility_extension), nested),
            RECORD: ("record", record, _FIRST),
            OTHER_NAME: ("other_names", _text_or_empty, _APPEND),
            ADDRESS: ("addresses", parser.address, _APPEND),
            GEOCODE: ("geocode", parser.geocode, _FIRST),
        },
        "extras",
        unmodeled,
    )
    parser._provider = _Table(
        {
            OTHER_ID: ("other_ids", parser.identifier, _APPEND),
            CODED_TYPE: ("types", coded, _APPEND),
            DEMOGRAPHIC: ("person", parser.person_name, _FIRST),
            ORGANIZATIONS: ("", _link_list(ORGANIZATION, "#organizations"), nested),
            FACILITIES: ("", _link_list(FACILITY, "#facilities"), nested),
            RECORD: ("record", record, _FIRST),
            EXTENSION: ("", _nested(_Table({}, "extension_extras", unmodeled)), nested),
        },
        "extras",
        unmodeled,
    )
    device_extension = _Table(
        {NB_IN_SERVICE: ("count", parser.integer, _FIRST)}, "extension_extras", unmodeled
    )
    parser._device = _Table(
        {
            OTHER_ID: ("other_ids", parser.identifier, _APPEND),
            CODED_TYPE: ("code", parser.coded_row, _FIRST),
            RECORD: ("record", record, _FIRST),
            EXTENSION: ("", _nested(device_extension), nested),
        },
        "extras",
        unmodeled,
    )
    # A service is kept as rows (plain tuples) until facilities reference it: see ServicePayload.
    service_extension = _Table(
        {ACT_FAMILY: ("families", parser.coded_row, _APPEND)}, "extension_extras", parser.unmodeled_row
    )
    parser._service = _Table(
        {
            CODED_TYPE: ("code", parser.coded_row, _FIRST),
            RECORD: ("record", parser.record_row, _FIRST),
            EXTENSION: ("", _nested(service_extension), nested),
        },
        "extras",
        parser.unmodeled_row,
    )


_build_tables(ElementParser)


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
