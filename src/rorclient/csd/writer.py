"""Write models as CSD v2.4 XML (``csd:CSD`` extraction or ``careServicesResponse`` Lecture answer).

The output validates against the official CSD + ROR extension XSD. Writing streams with flat memory:

* each entity becomes one element, serialised as soon as it is added;
* the five CSD directories must appear in the order organization, service, facility, provider, device,
  so each directory is spooled to its own temporary file (in memory up to ``spool_threshold``) and the
  document is assembled on :meth:`CsdWriter.close`;
* a facility lists the ``service`` (activity) and ``device`` (equipment) elements of its unit, so units
  wait in memory until :meth:`CsdWriter.flush`. :meth:`CsdWriter.add_offer` flushes after each offer:
  pass the offer one establishment at a time (as :func:`rorclient.sandbox.dataset.generate_dataset`
  yields it) and memory holds one establishment, whatever the size of the document.

CSD ``entityID`` values are derived from the business keys (:func:`entity_uuid`), so that references
between documents, or between offers written separately, agree. Values the XSD requires but the ROR
never documented (``extension/@type``, ``extension/@urn``, the identifiantOI authority) come from
:class:`WriterOptions`.
"""

from __future__ import annotations

import gzip as gzip_module
import hashlib
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import IO, Any, Literal, TypeAlias, cast

from lxml import etree
from pydantic import BaseModel, ConfigDict

from rorclient.codes import CSD_NS, Oid
from rorclient.csd._order import sort_key
from rorclient.errors import DataError
from rorclient.models import (
    Activity,
    Address,
    Age,
    CodedValue,
    Contact,
    Entity,
    EntityKind,
    Equipment,
    Establishment,
    ExtraElement,
    Geocode,
    Identifier,
    LegalEntity,
    Location,
    Offer,
    PatientsType,
    Professional,
    RecordMeta,
    Telecom,
    Unit,
    UnitLevel,
)

__all__ = [
    "CsdWriter",
    "Root",
    "WriteStats",
    "WriterOptions",
    "csd_bytes",
    "entity_uuid",
    "write_csd",
    "write_lecture_response",
]

Root: TypeAlias = Literal["csd", "careServicesResponse"]
Output: TypeAlias = IO[bytes] | str | os.PathLike[str]
Source: TypeAlias = Offer | Iterable[Offer | Entity]

#: Namespace of the UUIDv5 entityIDs the writer derives from business keys.
ENTITY_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:rorclient:csd:entity")
_NAMESPACE_BYTES = ENTITY_ID_NAMESPACE.bytes

#: idNat_PS assigning authority (ASIP Santé OID for national health-professional identifiers).
ID_NAT_PS_OID = "1.2.250.1.71.4.2.1"
#: Placeholder authority of identifiantOI ``otherID``s (the ROR never published one).
UNIT_ID_AUTHORITY = "identifiantOI"

_DIRECTORIES = (
    "organizationDirectory",
    "serviceDirectory",
    "facilityDirectory",
    "providerDirectory",
    "deviceDirectory",
)
_NS_DECLARATION = f' xmlns:csd="{CSD_NS}"'.encode()
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


class WriterOptions(BaseModel):
    """Values the XSD requires but the ROR never published; placeholders unless you know better."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: ``type`` attribute of every ``extension`` element (required by the XSD, real value unknown).
    extension_type: str = "ROR"
    #: ``urn`` attribute of every ``extension`` element (required by the XSD, real value unknown).
    extension_urn: str = "urn:asip:ror:2015"
    #: ``assigningAuthorityName`` of the identifiantOI ``otherID`` of a facility (unknown in the spec).
    unit_id_authority: str = UNIT_ID_AUTHORITY
    #: ``assigningAuthorityName`` of the idNat_Struct ``otherID`` of an organization.
    structure_id_authority: str = Oid.ID_NAT_STRUCT
    #: ``assigningAuthorityName`` of the idNat_PS ``otherID`` of a provider.
    professional_id_authority: str = ID_NAT_PS_OID


class WriteStats(BaseModel):
    """What a writer wrote: elements per directory, elementary units, uncompressed size."""

    model_config = ConfigDict(frozen=True)

    organizations: int = 0
    services: int = 0
    facilities: int = 0
    providers: int = 0
    devices: int = 0
    elementary_units: int = 0
    bytes_written: int = 0


def entity_uuid(kind: EntityKind, business_id: str) -> str:
    """The ``entityID`` the writer gives an entity: ``urn:uuid:`` + UUIDv5 of its kind and business id."""
    # uuid.uuid5 spelled out (UUIDv5 is SHA-1 by definition): the same value without building UUID
    # objects, as this runs several times per entity of a large file.
    name = _NAMESPACE_BYTES + f"{kind.value}:{business_id}".encode()
    digest = bytearray(hashlib.sha1(name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _tag(name: str) -> str:
    return "{" + CSD_NS + "}" + name


class _Spool:
    """One directory's serialised elements, in memory up to a threshold, then in a temporary file."""

    def __init__(self, threshold: int) -> None:
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=threshold)  # noqa: SIM115
        self.count = 0
        self.size = 0

    def append(self, data: bytes) -> None:
        self.file.write(data)
        self.count += 1
        self.size += len(data)


class CsdWriter:
    """Incremental CSD writer; use as a context manager, add entities or offers, then close.

    ``root="csd"`` writes a ``csd:CSD`` document (an extraction); ``root="careServicesResponse"`` writes
    ``careServicesResponse/result`` with ``facilityNumber`` (the number of elementary units written,
    RG_ALIM_019, unless ``facility_number`` forces another value) and the directories as ``queryResult``.

    Legal entities and establishments are written once per id even if several offers carry them (the
    first one wins). Activities and equipment must be added before their unit is flushed; anything
    that cannot be represented raises :class:`~rorclient.errors.DataError`.
    """

    def __init__(
        self,
        out: Output,
        *,
        root: Root = "csd",
        options: WriterOptions | None = None,
        gzip: bool = False,
        facility_number: int | None = None,
        xml_declaration: bool = True,
        spool_threshold: int = 16 * 1024 * 1024,
    ) -> None:
        if root not in ("csd", "careServicesResponse"):
            raise ValueError(f"unknown root {root!r}: expected 'csd' or 'careServicesResponse'")
        self._root = root
        self._builder = _ElementBuilder(options or WriterOptions())
        self._facility_number = facility_number
        self._xml_declaration = xml_declaration
        self._out, self._to_close = _open_output(out, gzip)
        self._spools = {name: _Spool(spool_threshold) for name in _DIRECTORIES}
        self._pending_units: dict[str, Unit] = {}
        self._services: dict[str, list[str]] = {}
        self._devices: dict[str, list[str]] = {}
        self._written_organizations: set[str] = set()
        self._elementary_units = 0
        self._bytes = 0
        self._closed = False
        self._stats: WriteStats | None = None

    # -- context manager ------------------------------------------------------------------------------

    def __enter__(self) -> CsdWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._discard()

    # -- adding ---------------------------------------------------------------------------------------

    def add(self, entity: Entity) -> None:
        """Add one entity; units are held until :meth:`flush` (or :meth:`close`)."""
        self._check_open()
        if isinstance(entity, LegalEntity | Establishment):
            key = f"{entity.kind.value}:{entity.id}"
            if key not in self._written_organizations:
                self._written_organizations.add(key)
                self._emit("organizationDirectory", entity, self._builder.organization)
        elif isinstance(entity, Unit):
            if entity.id in self._pending_units:
                raise DataError(f"unit {entity.id} added twice", path=_where(entity))
            self._pending_units[entity.id] = entity
        elif isinstance(entity, Activity):
            self._emit("serviceDirectory", entity, self._builder.service)
            self._services.setdefault(entity.unit_id, []).append(entity_uuid(entity.kind, entity.id))
        elif isinstance(entity, Equipment):
            self._emit("deviceDirectory", entity, self._builder.device)
            self._devices.setdefault(entity.unit_id, []).append(entity_uuid(entity.kind, entity.id))
        else:
            self._emit("providerDirectory", entity, self._builder.provider)

    def add_offer(self, offer: Offer) -> None:
        """Add every entity of an offer, then :meth:`flush` its units."""
        for entity in offer.entities():
            self.add(entity)
        self.flush()

    def flush(self) -> None:
        """Write the pending units with the activities and equipment added so far.

        Raises :class:`~rorclient.errors.DataError` if an activity or equipment names a unit that is
        not pending (absent from the document, or already flushed).
        """
        self._check_open()
        for links, what in ((self._services, "activity"), (self._devices, "equipment")):
            for unit_id in links:
                if unit_id not in self._pending_units:
                    raise DataError(
                        f"{what} of unit {unit_id} cannot be linked: the unit is not in the document "
                        "or was already written",
                        path=f"facility[{unit_id}]",
                    )
        for unit in self._pending_units.values():
            services = self._services.get(unit.id, ())
            devices = self._devices.get(unit.id, ())
            self._emit("facilityDirectory", unit, self._builder.facility, services, devices)
            if unit.level is UnitLevel.ELEMENTARY_UNIT:
                self._elementary_units += 1
        self._pending_units.clear()
        self._services.clear()
        self._devices.clear()

    # -- finishing ------------------------------------------------------------------------------------

    def close(self) -> WriteStats:
        """Flush, assemble the document into the output and return what was written."""
        if self._closed:
            if self._stats is None:
                raise ValueError("the CSD writer was closed without completing its document")
            return self._stats
        try:
            self.flush()
            self._assemble()
        finally:
            self._closed = True
            self._release()
        self._stats = WriteStats(
            organizations=self._spools["organizationDirectory"].count,
            services=self._spools["serviceDirectory"].count,
            facilities=self._spools["facilityDirectory"].count,
            providers=self._spools["providerDirectory"].count,
            devices=self._spools["deviceDirectory"].count,
            elementary_units=self._elementary_units,
            bytes_written=self._bytes,
        )
        return self._stats

    @property
    def stats(self) -> WriteStats | None:
        """The figures of the finished document, ``None`` until :meth:`close`."""
        return self._stats

    @property
    def serialised_bytes(self) -> int:
        """Bytes of entity elements serialised so far (units count once flushed); the document adds
        only a few hundred bytes of envelope to this."""
        return sum(spool.size for spool in self._spools.values())

    # -- internals ------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("the CSD writer is closed")

    def _emit(self, directory: str, entity: Any, build: Callable[..., etree._Element], *args: Any) -> None:
        try:
            element = build(entity, *args)
            data = etree.tostring(element, encoding="UTF-8")
        except ValueError as exc:  # lxml rejects text that XML cannot carry (control characters...)
            raise DataError(
                f"cannot write {entity.kind.value} {entity.id}: {exc}", path=_where(entity)
            ) from exc
        # Each element is serialised on its own, so lxml declares the namespace on it; the document
        # root declares it once for all.
        self._spools[directory].append(data.replace(_NS_DECLARATION, b"", 1) + b"\n")

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._bytes += len(data)

    def _assemble(self) -> None:
        if self._xml_declaration:
            self._write(_XML_DECLARATION)
        ns = _NS_DECLARATION.decode()
        if self._root == "csd":
            self._write(f"<csd:CSD{ns}>\n".encode())
        else:
            number = self._elementary_units if self._facility_number is None else self._facility_number
            self._write(
                f"<csd:careServicesResponse{ns}><csd:result>"
                f"<csd:facilityNumber>{number}</csd:facilityNumber><csd:queryResult>\n".encode()
            )
        for name in _DIRECTORIES:
            spool = self._spools[name]
            if spool.count == 0:
                self._write(f"<csd:{name}/>\n".encode())
                continue
            self._write(f"<csd:{name}>\n".encode())
            spool.file.seek(0)
            self._copy(spool.file)
            self._write(f"</csd:{name}>\n".encode())
        if self._root == "csd":
            self._write(b"</csd:CSD>\n")
        else:
            self._write(b"</csd:queryResult></csd:result></csd:careServicesResponse>\n")

    def _copy(self, source: IO[bytes]) -> None:
        while chunk := source.read(1024 * 1024):
            self._write(chunk)

    def _release(self) -> None:
        for spool in self._spools.values():
            spool.file.close()
        for closer in reversed(self._to_close):
            closer()

    def _discard(self) -> None:
        if not self._closed:
            self._closed = True
            self._release()


def _open_output(out: Output, gzip: bool) -> tuple[IO[bytes], list[Callable[[], None]]]:
    closers: list[Callable[[], None]] = []
    stream: IO[bytes]
    if isinstance(out, str | os.PathLike):
        stream = open(out, "wb")  # noqa: SIM115 - closed by the writer
        closers.append(stream.close)
    else:
        stream = out
    if gzip:
        # mtime=0 and no file name: the same content always compresses to the same bytes.
        compressed = gzip_module.GzipFile(filename="", mode="wb", fileobj=stream, mtime=0)
        closers.append(compressed.close)
        stream = cast(IO[bytes], compressed)
    return stream, closers


def _where(entity: Any) -> str:
    element = {
        EntityKind.LEGAL_ENTITY: "organization",
        EntityKind.ESTABLISHMENT: "organization",
        EntityKind.UNIT: "facility",
        EntityKind.ACTIVITY: "service",
        EntityKind.EQUIPMENT: "device",
        EntityKind.PROFESSIONAL: "provider",
    }[entity.kind]
    return f"{element}[{entity.id}]"


# --------------------------------------------------------------------------------------------------
# One-call helpers
# --------------------------------------------------------------------------------------------------


def write_csd(
    source: Source,
    out: Output,
    *,
    root: Root = "csd",
    options: WriterOptions | None = None,
    gzip: bool = False,
    facility_number: int | None = None,
    xml_declaration: bool = True,
) -> WriteStats:
    """Write an offer, a stream of offers, or a stream of entities as one CSD document.

    Offers are flushed one by one (flat memory when each offer is one establishment); loose entities
    are flushed at the end, so their units are held in memory until then.
    """
    with CsdWriter(
        out,
        root=root,
        options=options,
        gzip=gzip,
        facility_number=facility_number,
        xml_declaration=xml_declaration,
    ) as writer:
        for item in _items(source):
            if isinstance(item, Offer):
                writer.add_offer(item)
            else:
                writer.add(item)
    stats = writer.stats
    assert stats is not None
    return stats


def write_lecture_response(
    offer: Offer,
    out: Output,
    *,
    options: WriterOptions | None = None,
    facility_number: int | None = None,
    xml_declaration: bool = True,
) -> WriteStats:
    """Write one establishment's offer as a Lecture ``careServicesResponse/result``."""
    return write_csd(
        offer,
        out,
        root="careServicesResponse",
        options=options,
        facility_number=facility_number,
        xml_declaration=xml_declaration,
    )


def csd_bytes(
    source: Source,
    *,
    root: Root = "csd",
    options: WriterOptions | None = None,
    facility_number: int | None = None,
    xml_declaration: bool = True,
) -> bytes:
    """The CSD document as bytes (for small documents: Lecture answers, tests)."""
    import io

    buffer = io.BytesIO()
    write_csd(
        source,
        buffer,
        root=root,
        options=options,
        facility_number=facility_number,
        xml_declaration=xml_declaration,
    )
    return buffer.getvalue()


def _items(source: Source) -> Iterator[Offer | Entity]:
    if isinstance(source, Offer):
        yield source
    else:
        yield from source


# --------------------------------------------------------------------------------------------------
# Models → elements
# --------------------------------------------------------------------------------------------------

_E = etree._Element


class _ElementBuilder:
    """Builds one lxml element per entity, children in XSD sequence order, extras slotted in."""

    def __init__(self, options: WriterOptions) -> None:
        self.options = options
        self._extension_attrib = {"type": options.extension_type, "urn": options.extension_urn}

    # -- entities -------------------------------------------------------------------------------------

    def organization(self, org: LegalEntity | Establishment) -> _E:
        element = etree.Element(_tag("organization"), entityID=entity_uuid(org.kind, org.id), nsmap=_NSMAP)
        self._identifiers(element, org.id, self.options.structure_id_authority, org.other_ids)
        self._coded_list(
            element, "codedType", org.types, owner=org, what="codedType (legal status or category)"
        )
        _text(element, "primaryName", org.name)
        for other in org.other_names:
            _text(element, "otherName", other)
        for address in org.addresses:
            self._address(element, "address", address, org)
        if isinstance(org, Establishment):
            etree.SubElement(
                element, _tag("parent"), entityID=entity_uuid(EntityKind.LEGAL_ENTITY, org.legal_entity_id)
            )
        extension = self._organization_extension(org)
        if extension is not None:
            element.append(extension)
        self._record(element, org.record)
        _slot_extras(element, "organization", org.extras)
        return element

    def _organization_extension(self, org: LegalEntity | Establishment) -> _E | None:
        drop_zone = org.drop_zone if isinstance(org, Establishment) else None
        if not (
            org.contacts
            or org.use_name is not None
            or org.location is not None
            or drop_zone is not None
            or org.creation_date is not None
            or org.closing_date is not None
            or org.closing_reason is not None
            or org.extension_extras
        ):
            return None
        extension = self._extension_element()
        for contact in org.contacts:
            self._contact(extension, contact)
        if org.use_name is not None:
            _text(extension, "useName", org.use_name)
        if org.location is not None:
            self._location(extension, org.location, org)
        if drop_zone is not None:
            _text(extension, "dropZone", _bool(drop_zone))
        if org.creation_date is not None:
            _text(extension, "creationDate", org.creation_date.isoformat())
        if org.closing_date is not None:
            _text(extension, "closingDate", org.closing_date.isoformat())
        if org.closing_reason is not None:
            _coded(extension, "closingReason", org.closing_reason)
        _slot_extras(extension, "organisationExtension", org.extension_extras)
        return extension

    def facility(self, unit: Unit, services: Sequence[str], devices: Sequence[str]) -> _E:
        element = etree.Element(_tag("facility"), entityID=entity_uuid(unit.kind, unit.id), nsmap=_NSMAP)
        self._identifiers(element, unit.id, self.options.unit_id_authority, unit.other_ids)
        self._coded_list(element, "codedType", unit.types, owner=unit, what="codedType (TRE_R207 level)")
        _text(element, "primaryName", unit.name)
        for other in unit.other_names:
            _text(element, "otherName", other)
        for address in unit.addresses:
            self._address(element, "address", address, unit)
        if unit.geocode is not None:
            self._geocode(element, "geocode", unit.geocode, unit.record)
        organizations = etree.SubElement(element, _tag("organizations"))
        owner = etree.SubElement(
            organizations,
            _tag("organization"),
            entityID=entity_uuid(EntityKind.ESTABLISHMENT, unit.establishment_id),
        )
        for service_id in services:
            etree.SubElement(owner, _tag("service"), entityID=service_id)
        element.append(self._facility_extension(unit, devices))
        self._record(element, unit.record)
        _slot_extras(element, "facility", unit.extras)
        return element

    def _facility_extension(self, unit: Unit, devices: Sequence[str]) -> _E:
        extension = self._extension_element()
        for contact in unit.contacts:
            self._contact(extension, contact)
        if unit.final_closing_date is not None:
            _text(extension, "finalClosingDate", unit.final_closing_date.isoformat())
        if unit.creation_date is not None:
            _text(extension, "creationDate", unit.creation_date.isoformat())
        self._coded_list(extension, "typeActivity", unit.activity_fields, owner=unit, what="typeActivity")
        _coded(extension, "careMode", unit.care_mode)
        self._patients(extension, unit.patients)
        for device_id in devices:
            etree.SubElement(extension, _tag("equipment"), entityID=device_id)
        if unit.location is not None:
            self._location(extension, unit.location, unit)
        if unit.parent_unit_id is not None:
            etree.SubElement(
                extension, _tag("parentFacility"), entityID=entity_uuid(EntityKind.UNIT, unit.parent_unit_id)
            )
        _text(extension, "sensitiveUnit", _bool(unit.sensitive))
        _slot_extras(extension, "facilityExtension", unit.extension_extras)
        return extension

    def service(self, activity: Activity) -> _E:
        element = etree.Element(
            _tag("service"), entityID=entity_uuid(activity.kind, activity.id), nsmap=_NSMAP
        )
        _coded(element, "codedType", activity.code)
        if activity.act_families or activity.extension_extras:
            extension = self._extension_element()
            for family in activity.act_families:
                _coded(extension, "actFamily", family)
            _slot_extras(extension, "serviceExtension", activity.extension_extras)
            element.append(extension)
        self._record(element, activity.record)
        _slot_extras(element, "service", activity.extras)
        return element

    def device(self, equipment: Equipment) -> _E:
        element = etree.Element(
            _tag("device"), entityID=entity_uuid(equipment.kind, equipment.id), nsmap=_NSMAP
        )
        for identifier in equipment.other_ids:
            _other_id(element, identifier.value, identifier.authority)
        _coded(element, "codedType", equipment.code)
        if equipment.count is not None or equipment.extension_extras:
            extension = self._extension_element()
            if equipment.count is not None:
                _text(extension, "nbInService", str(equipment.count))
            _slot_extras(extension, "deviceExtension", equipment.extension_extras)
            element.append(extension)
        self._record(element, equipment.record)
        _slot_extras(element, "device", equipment.extras)
        return element

    def provider(self, professional: Professional) -> _E:
        element = etree.Element(
            _tag("provider"), entityID=entity_uuid(professional.kind, professional.id), nsmap=_NSMAP
        )
        self._identifiers(
            element, professional.id, self.options.professional_id_authority, professional.other_ids
        )
        self._coded_list(
            element, "codedType", professional.types, owner=professional, what="codedType (profession)"
        )
        demographic = etree.SubElement(element, _tag("demographic"))
        name = etree.SubElement(demographic, _tag("name"))
        person = professional.person
        if not person.common_names:
            raise DataError(
                f"professional {professional.id} has no common name (CSD requires one)",
                path=_where(professional),
            )
        for common in person.common_names:
            _text(name, "commonName", common)
        if person.honorific is not None:
            _coded(name, "honorific", person.honorific)
        if person.forename is not None:
            _text(name, "forename", person.forename)
        if person.surname is not None:
            _text(name, "surname", person.surname)
        if professional.establishment_ids:
            organizations = etree.SubElement(element, _tag("organizations"))
            for establishment_id in professional.establishment_ids:
                etree.SubElement(
                    organizations,
                    _tag("organization"),
                    entityID=entity_uuid(EntityKind.ESTABLISHMENT, establishment_id),
                )
        if professional.unit_ids:
            facilities = etree.SubElement(element, _tag("facilities"))
            for unit_id in professional.unit_ids:
                etree.SubElement(facilities, _tag("facility"), entityID=entity_uuid(EntityKind.UNIT, unit_id))
        if professional.extension_extras:
            extension = self._extension_element()
            _slot_extras(extension, "providerExtension", professional.extension_extras)
            element.append(extension)
        self._record(element, professional.record)
        _slot_extras(element, "provider", professional.extras)
        return element

    # -- value objects --------------------------------------------------------------------------------

    def _extension_element(self, parent: _E | None = None) -> _E:
        if parent is None:
            return etree.Element(_tag("extension"), self._extension_attrib)
        extension: _E = etree.SubElement(parent, _tag("extension"), self._extension_attrib)
        return extension

    def _identifiers(
        self, parent: _E, business_id: str, authority: str, others: tuple[Identifier, ...]
    ) -> None:
        # The business id always comes first (readers take the first otherID of a facility or provider),
        # with the authority the model gives it if it lists it, else the configured one.
        own = next((identifier for identifier in others if identifier.value == business_id), None)
        _other_id(parent, business_id, own.authority if own is not None else authority)
        for identifier in others:
            if identifier is not own:
                _other_id(parent, identifier.value, identifier.authority)

    def _coded_list(
        self, parent: _E, name: str, values: tuple[CodedValue, ...], *, owner: Any, what: str
    ) -> None:
        if not values:
            raise DataError(
                f"{owner.kind.value} {owner.id} has no {what}: CSD requires at least one",
                path=_where(owner),
            )
        for value in values:
            _coded(parent, name, value)

    def _record(self, parent: _E, record: RecordMeta) -> None:
        attrib = {
            "created": record.created.isoformat(),
            "updated": record.updated.isoformat(),
            "status": record.status,
        }
        if record.source_directory is not None:
            attrib["sourceDirectory"] = record.source_directory
        element = etree.SubElement(parent, _tag("record"), attrib)
        _slot_extras(element, "record", record.extras)

    def _address(self, parent: _E, name: str, address: Address, owner: Any) -> None:
        if not address.lines:
            raise DataError(
                f"an address of {owner.kind.value} {owner.id} has no line: CSD requires one",
                path=_where(owner),
            )
        attrib = {"type": address.type} if address.type is not None else {}
        if address.language is not None:
            attrib["language"] = address.language
        element = etree.SubElement(parent, _tag(name), attrib)
        for line in address.lines:
            line_element = etree.SubElement(element, _tag("addressLine"), line.parts)
            if line.text is not None:
                line_element.text = line.text
        if address.record is not None or address.extension_extras:
            extension = self._extension_element(element)
            if address.record is not None:
                self._record(extension, address.record)
            _slot_extras(extension, "addressExtension", address.extension_extras)
        _slot_extras(element, "address", address.extras)

    def _contact(self, parent: _E, contact: Contact) -> None:
        element = etree.SubElement(parent, _tag("contact"))
        if contact.name is not None:
            _text(element, "name", contact.name)
        if contact.function is not None:
            _coded(element, "function", contact.function)
        if contact.nature is not None:
            _coded(element, "nature", contact.nature)
        if contact.description is not None:
            _text(element, "description", contact.description)
        _coded(element, "confidentialityLevel", contact.confidentiality)
        for telecom in contact.telecoms:
            self._telecom(element, telecom, contact)
        self._record(element, contact.record)

    def _telecom(self, parent: _E, telecom: Telecom, contact: Contact) -> None:
        element = etree.SubElement(parent, _tag("contactPoint"))
        _coded(element, "codedType", telecom.channel)
        if telecom.value is not None:
            _text(element, "equipment", telecom.value)
        if telecom.purpose is not None:
            _text(element, "purpose", telecom.purpose)
        if telecom.confidentiality is not None or telecom.record is not None or telecom.extension_extras:
            # The XSD wants both in the extension; the contact supplies whichever the telecom lacks.
            extension = self._extension_element(element)
            _coded(extension, "confidentialityLevel", telecom.confidentiality or contact.confidentiality)
            self._record(extension, telecom.record or contact.record)
            _slot_extras(extension, "contactPointExtension", telecom.extension_extras)
        _slot_extras(element, "contactPoint", telecom.extras)

    def _location(self, parent: _E, location: Location, owner: Any) -> None:
        element = etree.SubElement(parent, _tag("location"))
        if location.name is not None:
            _text(element, "name", location.name)
        if location.description is not None:
            _text(element, "description", location.description)
        if location.status is not None:
            _coded(element, "status", location.status)
        if location.address is not None:
            self._address(element, "address", location.address, owner)
        if location.coordinates is not None:
            self._geocode(element, "geoCoordinates", location.coordinates, location.record)
        _coded(element, "cityNumber", location.city)
        self._record(element, location.record)
        _slot_extras(element, "location", location.extras)

    def _geocode(self, parent: _E, name: str, geocode: Geocode, fallback: RecordMeta) -> None:
        element = etree.SubElement(parent, _tag(name))
        _text(element, "latitude", _decimal(geocode.latitude))
        _text(element, "longitude", _decimal(geocode.longitude))
        _text(element, "coordinateSystem", geocode.coordinate_system)
        # record is mandatory in a geocode: a model without one borrows its owner's.
        self._record(element, geocode.record or fallback)
        _slot_extras(element, "geocode", geocode.extras)

    def _patients(self, parent: _E, patients: PatientsType) -> None:
        element = etree.SubElement(parent, _tag("patientsType"))
        for supported in patients.supported:
            _coded(element, "supportedPatient", supported)
        _age(element, "patientTypeAgeMin", patients.age_min)
        _age(element, "patientTypeAgeMax", patients.age_max)
        self._record(element, patients.record)


_NSMAP = {"csd": CSD_NS}


def _text(parent: _E, name: str, value: str) -> None:
    etree.SubElement(parent, _tag(name)).text = value


def _coded(parent: _E, name: str, value: CodedValue) -> None:
    element = etree.SubElement(parent, _tag(name), code=value.code, codingScheme=value.coding_scheme)
    if value.display is not None:
        element.text = value.display


def _other_id(parent: _E, value: str, authority: str) -> None:
    etree.SubElement(parent, _tag("otherID"), code=value, assigningAuthorityName=authority)


def _age(parent: _E, name: str, age: Age) -> None:
    element = etree.SubElement(parent, _tag(name))
    _text(element, "value", str(age.value))
    _coded(element, "unit", age.unit)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _decimal(value: Decimal) -> str:
    # Fixed-point: str() may give exponent notation ("1E+1"), which xs:decimal does not allow.
    return format(value, "f")


def _slot_extras(element: _E, type_name: str, extras: tuple[ExtraElement, ...]) -> None:
    """Insert verbatim extra elements among ``element``'s children at their XSD sequence position."""
    if not extras:
        return
    children: list[tuple[float, int, _E]] = [
        (sort_key(type_name, child.tag), i, child)
        for i, child in enumerate(element)
        if isinstance(child.tag, str)
    ]
    base = len(children)
    for i, extra in enumerate(extras):
        children.append((sort_key(type_name, extra.name), base + i, _parse_extra(extra)))
    children.sort(key=lambda item: (item[0], item[1]))
    for child in list(element):
        element.remove(child)
    for _, _, child in children:
        element.append(child)


def _parse_extra(extra: ExtraElement) -> _E:
    try:
        element: _E = etree.fromstring(extra.xml.encode("utf-8"), _SAFE_PARSER)
    except etree.XMLSyntaxError as exc:
        raise DataError(f"extra element {extra.name} is not well-formed XML: {exc}") from exc
    if element.tag != extra.name:
        raise DataError(f"extra element declared as {extra.name} holds a {element.tag!s} element")
    return element
