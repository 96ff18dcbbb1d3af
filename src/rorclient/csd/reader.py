"""The streaming CSD reader: one reader for every CSD document the ROR produces.

:func:`read_csd` turns an extraction file, an open-data file or a SOAP Lecture response into the models
of :mod:`rorclient.models`, in one pass, with flat memory::

    for entity in read_csd("extraction.xml.gz", progress=bar.update_to):
        store_batch.add(entity)

    offer = read_offer(lecture_response_bytes)   # small documents: everything at once

    for kind, fields in read_values("extraction.xml.gz"):   # a store's bulk load: no model built
        rows.append(values_row(kind, fields))               # (rorclient.store._sql.rows)

**Documents.** The root may be ``csd:CSD``, ``csd:careServicesResponse`` (its ``result/queryResult`` is
read; an inline ``csd:error`` raises :class:`~rorclient.errors.RemoteError`) or a SOAP 1.2 envelope
around either (a SOAP fault raises :class:`~rorclient.errors.RemoteError` with the code and message of
its ``ror:erreur`` detail). Input is a path, bytes or a binary stream, plain, gzip or zip (see
:mod:`rorclient.csd._input`).

**Order.** Entities come in document order: legal entities and establishments, then each unit followed
by its activities, then professionals, then equipment (devices come last in a CSD document). An entity
whose parent (``organization/parent``, ``facility/extension/parentFacility``) has not been emitted yet
waits for it, so owners always come before what they own.

**References.** ``entityID`` values only join elements inside the document; the models carry business
ids: idNat_Struct for organizations (the ``otherID`` whose ``assigningAuthorityName`` is
``1.2.250.1.71.4.2.2``, else the first ``otherID``), identifiantOI for units (the first ``otherID``),
idNat_PS for professionals (the first ``otherID`` with a ``code``). One service referenced by several
units gives one :class:`~rorclient.models.Activity` per unit; a service or device nobody references gives
nothing.

**Strictness.** The reader is strict: the first problem raises :class:`~rorclient.errors.DataError`
naming the source, the line and the element path (``/CSD/facilityDirectory/facility[3]/record/@updated``),
and nothing is skipped. Problems include: malformed or truncated XML, a DOCTYPE (``DTDs are not allowed``;
no DTD or external entity is ever loaded, no entity expanded, no network access), a wrong root element or
namespace, directories out of the XSD order, a missing required element, an invalid date, boolean or
number, a duplicate ``entityID`` or business id (two organizations with one idNat_Struct, two units with
one identifiantOI, two activities or equipment with one code in a unit), a reference to an entity absent
from the document (dangling ``parent``, ``organizations/organization``, ``service``, ``parentFacility``,
``equipment``, provider links) and a ``parentFacility`` cycle. A reference can only be known to dangle once
the whole document was read, so such an error may come after entities were already yielded: load them in
a transaction (as :meth:`~rorclient.store.Store.bulk_load` does) and drop it on error.

**Limits.** No text node or attribute value may exceed ``max_text_length`` characters (10,000,000 by
default, libxml2's own limit; a larger value switches libxml2's ``huge_tree`` mode on). Elements nest at
most 256 deep (2048 with ``huge_tree``).

**Kept and not kept.** Every field of the models is filled. Elements the models do not hold are kept
verbatim as :class:`~rorclient.models.ExtraElement`: children of the entity element in ``extras`` and
children of its ``extension`` elements in ``extension_extras``, in document order. Their serialisation
is canonical (the CSD namespace always as prefix ``csd``, only the namespaces used declared), so the same
content read from an extraction or from a SOAP Lecture response compares equal. Comments and processing
instructions are dropped, and so is ignorable whitespace between elements.
Sub-objects keep theirs in their own ``extras`` (``record/extension`` with its reconciliation comments,
``geocode/extension``, ``contactPoint/certificate``, ``location/calculatedDistance``...). What is still
not kept is listed in :mod:`rorclient.csd._elements` (``otherName/@xml:lang``, provider demographics
beyond the first name, children of link elements).

**Models or plain values.** The entities are built as plain values first (see
:mod:`rorclient.csd._elements`); :func:`read_csd` validates each into its model, :func:`read_values`
yields the values themselves, which serialise exactly as the models do (a store's bulk load encodes
them without building the models).

**Memory.** Each entity element is cleared once read and its predecessors deleted. The ``entityID``
index (business ids, services waiting for their facilities, device links, entities waiting for their
parent) lives in dictionaries for small documents and spills to anonymous temporary files past 100,000
entries (see :mod:`rorclient.csd._index`), so memory stays flat from a Lecture response to a national
extraction: about 100 MB peak RSS for a 1 GB, 316,000-unit document.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from lxml import etree
from pydantic import BaseModel, ValidationError

from rorclient.csd import _index
from rorclient.csd import _names as n
from rorclient.csd._elements import (
    DEFAULT_MAX_UNMODELED_LENGTH,
    LIBXML_TEXT_LIMIT,
    DevicePart,
    ElementParser,
    FacilityPart,
    Ref,
    Values,
    plain_template,
    validator,
)
from rorclient.csd._fault import fault_error
from rorclient.csd._index import Conflict, EntityIndex, KeySpace, NodeKind
from rorclient.csd._input import CsdSource, XmlInput, open_xml
from rorclient.errors import DataError, RemoteError
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
)

__all__ = [
    "DEFAULT_MAX_TEXT_LENGTH",
    "DEFAULT_MAX_UNMODELED_LENGTH",
    "EXTERNAL_PARENT",
    "CsdSource",
    "EntityValues",
    "read_csd",
    "read_offer",
    "read_share",
    "read_values",
]

_log = logging.getLogger(__name__)
_M = TypeVar("_M", bound=BaseModel)

#: Default limit on the length of one text node or attribute value (libxml2's own limit).
DEFAULT_MAX_TEXT_LENGTH = LIBXML_TEXT_LIMIT

#: Prefix of a ``parent_unit_id`` that names a ``parentFacility`` outside the document by its entityID
#: (``read_csd(..., external_parents=True)`` only); never a valid identifiantOI.
EXTERNAL_PARENT = "external-entityID:"

_ENTITY_OF_DIRECTORY = {
    n.ORGANIZATION_DIRECTORY: n.ORGANIZATION,
    n.SERVICE_DIRECTORY: n.SERVICE,
    n.FACILITY_DIRECTORY: n.FACILITY,
    n.PROVIDER_DIRECTORY: n.PROVIDER,
    n.DEVICE_DIRECTORY: n.DEVICE,
}
_DIRECTORY_RANK = {tag: rank for rank, tag in enumerate(n.DIRECTORIES)}
_ENTITY_TAGS = frozenset(_ENTITY_OF_DIRECTORY.values())
_PAYLOAD_TAGS = (n.CSD, n.CARE_SERVICES_RESPONSE)
_EVENT_TAGS = (
    *_ENTITY_TAGS,
    *n.DIRECTORIES,
    n.CSD,
    n.CARE_SERVICES_RESPONSE,
    n.RESULT,
    n.QUERY_RESULT,
    n.ERROR,
    n.SOAP_ENVELOPE,
    n.SOAP_BODY,
    n.SOAP_FAULT,
)
_EVENT_TAG_SET = frozenset(_EVENT_TAGS)
_READ_WHOLE = _ENTITY_TAGS | {n.SOAP_FAULT, n.ERROR}
_ENTITY_MODELS: tuple[type[BaseModel], ...] = (
    LegalEntity,
    Establishment,
    Unit,
    Activity,
    Equipment,
    Professional,
)
_VALIDATORS: dict[type[BaseModel], Any] = {model: validator(model) for model in _ENTITY_MODELS}
_KIND_OF_MODEL: dict[type[BaseModel], EntityKind] = {
    model: model.model_fields["kind"].get_default() for model in _ENTITY_MODELS
}
_TEMPLATES: dict[type[BaseModel], Values] = {model: plain_template(model) for model in _ENTITY_MODELS}

EntityValues = tuple[EntityKind, dict[str, Any]]
"""An entity as :func:`read_values` yields it: its kind and its plain fields (see
:mod:`rorclient.csd._elements`): what the model of that kind validates into, and what pydantic would
serialise the model as, in the same order."""
_KNOWN_NAMESPACES = {
    "CSD": n.CSD_NS,
    "careServicesResponse": n.CSD_NS,
    "Envelope": n.SOAP12_NS,
}


def read_csd(
    source: CsdSource,
    *,
    source_name: str | None = None,
    max_text_length: int = DEFAULT_MAX_TEXT_LENGTH,
    progress: Callable[[int], None] | None = None,
    max_unmodeled_length: int = DEFAULT_MAX_UNMODELED_LENGTH,
    external_parents: bool = False,
) -> Iterator[Entity]:
    """Stream the entities of a CSD document (see the module docstring for the full contract).

    ``source`` is a path, the document's bytes or a binary stream (plain, gzip or zip). ``source_name``
    names it in error messages (default: the path, the stream's ``name``, or ``<bytes>``).
    ``max_text_length`` bounds every text node and attribute value, in characters;
    ``max_unmodeled_length`` every element kept as an :class:`~rorclient.models.ExtraElement`, serialised
    (1,000,000 characters by default). ``progress``, if
    given, is called with the number of bytes read so far from the source (compressed bytes for a gzip
    or zip input) each time the parser reads more.

    The source is opened when iteration starts and closed when it ends or when the iterator is closed.
    Raises :class:`~rorclient.errors.DataError` for bad input (possibly after some entities were
    yielded: see the module docstring), :class:`~rorclient.errors.RemoteError` for an error response,
    :class:`~rorclient.errors.ConfigError` for a path that cannot be opened.

    ``external_parents``: a ``parentFacility`` that is not in the document is not an error; the units
    that hang below it get ``parent_unit_id = EXTERNAL_PARENT + <its entityID>``, for the caller to
    resolve (a Lecture OI answer may leave the unit's ancestors out; the sync engine resolves them
    against the store).
    """
    _check_limits(max_text_length, max_unmodeled_length)
    reader = _Reader(source, source_name, max_text_length, progress, None, max_unmodeled_length)
    reader.external_parents = external_parents
    return reader.entities()


def read_share(
    source: CsdSource,
    share: int,
    shares: int,
    *,
    source_name: str | None = None,
    max_text_length: int = DEFAULT_MAX_TEXT_LENGTH,
    progress: Callable[[int], None] | None = None,
    max_unmodeled_length: int = DEFAULT_MAX_UNMODELED_LENGTH,
) -> Iterator[Entity]:
    """One of ``shares`` disjoint parts of what :func:`read_csd` yields, for readers running in parallel.

    Every reader parses the whole document and checks what links entities together (ids and their
    duplicates, parents dangling or in a cycle, equipment links), but builds and yields only the
    entities it owns: in each directory, the ``position``-th entity (1-based) belongs to share
    ``position % shares``; activities go with their facility, equipment with its device. An entity's
    own content and own references (a facility's organization and services, a provider's links) are
    checked by its share only. Whatever :func:`read_csd` refuses, some share refuses; for an accepted
    document the shares together yield exactly the entities of :func:`read_csd`, each once, in a
    different order.
    """
    if not 0 <= share < shares:
        raise ValueError(f"share {share} is not one of {shares} shares")
    _check_limits(max_text_length, max_unmodeled_length)
    return _Reader(
        source, source_name, max_text_length, progress, (share, shares), max_unmodeled_length
    ).entities()


def read_values(
    source: CsdSource,
    *,
    share: tuple[int, int] | None = None,
    source_name: str | None = None,
    max_text_length: int = DEFAULT_MAX_TEXT_LENGTH,
    progress: Callable[[int], None] | None = None,
    max_unmodeled_length: int = DEFAULT_MAX_UNMODELED_LENGTH,
) -> Iterator[EntityValues]:
    """What :func:`read_csd` (or, with ``share=(share, shares)``, :func:`read_share`) yields, as plain
    values instead of models, for the bulk load of a store: the same document checks and errors, the
    same entities in the same order, no model built.

    Each entity is ``(kind, fields)``: validating ``fields`` with the model of ``kind`` gives the model
    :func:`read_csd` yields, and serialising ``fields`` (JSON, keys in order, ``Decimal`` as its string)
    gives that model's ``model_dump_json()`` byte for byte (see ``rorclient.store._sql.rows``).
    The dictionaries share their repeated parts (codes, records): do not mutate them.
    """
    if share is not None and not 0 <= share[0] < share[1]:
        raise ValueError(f"share {share[0]} is not one of {share[1]} shares")
    _check_limits(max_text_length, max_unmodeled_length)
    return _Reader(
        source, source_name, max_text_length, progress, share, max_unmodeled_length, True
    ).entities()


def read_offer(
    source: CsdSource,
    *,
    source_name: str | None = None,
    max_text_length: int = DEFAULT_MAX_TEXT_LENGTH,
    progress: Callable[[int], None] | None = None,
    max_unmodeled_length: int = DEFAULT_MAX_UNMODELED_LENGTH,
    external_parents: bool = False,
) -> Offer:
    """Read a whole CSD document into an :class:`~rorclient.models.Offer` (meant for Lecture responses
    and other documents that fit in memory); same arguments and errors as :func:`read_csd`."""
    return Offer.of(
        read_csd(
            source,
            source_name=source_name,
            max_text_length=max_text_length,
            progress=progress,
            max_unmodeled_length=max_unmodeled_length,
            external_parents=external_parents,
        )
    )


def _check_limits(max_text_length: int, max_unmodeled_length: int) -> None:
    if max_text_length < 1:
        raise ValueError("max_text_length must be positive")
    if max_unmodeled_length < 1:
        raise ValueError("max_unmodeled_length must be positive")


class _Reader:
    """One pass over one document."""

    def __init__(
        self,
        source: CsdSource,
        source_name: str | None,
        max_text_length: int,
        progress: Callable[[int], None] | None,
        share: tuple[int, int] | None = None,
        max_unmodeled_length: int = DEFAULT_MAX_UNMODELED_LENGTH,
        plain: bool = False,
    ) -> None:
        self._source = source
        self._share = share
        self._source_name = source_name
        self._max_text_length = max_text_length
        self._progress = progress
        self._name = source_name or "<csd>"
        self._parser = ElementParser(self._name, max_text_length, max_unmodeled_length, models=not plain)
        self._root: etree._Element | None = None
        self._index = EntityIndex(_index.DEFAULT_SPILL_THRESHOLD)
        self._directory: str | None = None
        self._entity_path = ""
        self._last_rank = -1
        self._count = 0
        self._content_seen = False
        self.external_parents = False
        self._plain = plain

    def entities(self) -> Iterator[Any]:
        with open_xml(self._source, source_name=self._source_name, progress=self._progress) as xml:
            self._name = self._parser.source = xml.name
            self._check_payload(xml)
            try:
                yield from self._events(xml)
                if self.external_parents:
                    yield from self._release_external_parents()
                self._check_leftovers()
            finally:
                if self._index.spilled:
                    _log.debug("%s: entityID index spilled to a temporary SQLite file", self._name)
                self._index.close()
                self._parser.close()  # its caches go now, whatever keeps this generator alive

    # -- document structure -----------------------------------------------------------------------

    def _check_payload(self, xml: XmlInput) -> None:
        if xml.root_tag not in (*_PAYLOAD_TAGS, n.SOAP_ENVELOPE):
            raise self._wrong_element(xml.root_tag, "root element")
        if xml.root_tag == n.SOAP_ENVELOPE:
            if xml.payload_tag is None:
                raise DataError("the SOAP body is empty", source=self._name)
            if xml.payload_tag not in (*_PAYLOAD_TAGS, n.SOAP_FAULT):
                raise self._wrong_element(xml.payload_tag, "SOAP body content")

    def _wrong_element(self, tag: str, role: str) -> DataError:
        namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
        expected = _KNOWN_NAMESPACES.get(local)
        if expected is not None and namespace != expected:
            found = f"namespace {namespace!r}" if namespace else "no namespace"
            return DataError(
                f"{local} in {found} instead of {expected!r} (wrong namespace)", source=self._name
            )
        return DataError(
            f"unexpected {role} {local!r}: expected CSD, careServicesResponse or a SOAP 1.2 envelope",
            source=self._name,
        )

    def _events(self, xml: XmlInput) -> Iterator[Any]:
        events = etree.iterparse(
            _PruningInput(xml, self._prune),
            events=("start", "end"),
            tag=_EVENT_TAGS,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=self._max_text_length > LIBXML_TEXT_LIMIT,
            remove_comments=True,
            remove_pis=True,
            remove_blank_text=True,
        )
        depth = 0  # nesting of entity tags: organization inside facility/organizations, etc.
        try:
            for event, element in events:
                tag: str = element.tag  # type: ignore[assignment]  # always a str here
                if self._root is None:
                    self._root = element
                if tag in _ENTITY_TAGS:
                    if event == "start":
                        if depth == 0:
                            self._start_entity(element, tag)
                        depth += 1
                        continue
                    depth -= 1
                    if depth == 0:
                        yield from self._entity(element, tag)
                        parent = element.getparent()
                        element.clear(keep_tail=False)
                        if parent is not None:
                            while element.getprevious() is not None:
                                del parent[0]
                elif depth == 0:
                    if event == "start":
                        self._start_structure(element, tag)
                    else:
                        self._end_structure(element, tag)
        except etree.XMLSyntaxError as exc:
            raise self._syntax_error(exc) from exc
        if not self._content_seen:
            raise DataError("the document holds no CSD directories", source=self._name)

    def _prune(self) -> None:
        """Drop the elements the reader does not model outside the entities (a SOAP header, unknown
        children of a directory...) once they are complete, so that a flood of them (two million
        unknown children of a directory) is never held in memory.

        Called before each read of the input, when every event parsed so far has been handled: along
        the chain of open elements (each one's last child), every earlier sibling whose tag has no event
        is complete and unused. The chain stops at an entity (its unknown children are kept as
        ``extras``, within ``max_unmodeled_length`` each) and at a fault or an error answer (read whole
        when it ends).
        """
        node = self._root
        while node is not None and node.tag not in _READ_WHOLE:
            last = node[-1] if len(node) else None
            if last is None:
                return
            previous = last.getprevious()
            while previous is not None:
                before = previous.getprevious()
                if previous.tag not in _EVENT_TAG_SET:
                    node.remove(previous)
                previous = before
            node = last

    def _syntax_error(self, exc: etree.XMLSyntaxError) -> DataError:
        if "too long" in exc.msg.lower():  # libxml2: "Text node too long", "AttValue length too long"
            return DataError(
                f"a text node or attribute value is longer than {self._max_text_length} characters "
                f"(max_text_length): {exc.msg}",
                line=exc.lineno or None,
                source=self._name,
            )
        return DataError(f"not well-formed XML: {exc.msg}", line=exc.lineno or None, source=self._name)

    def _start_structure(self, element: etree._Element, tag: str) -> None:
        parent = element.getparent()
        parent_tag = None if parent is None else parent.tag
        if tag in _DIRECTORY_RANK:
            if parent_tag not in (n.CSD, n.QUERY_RESULT):
                raise self._misplaced(element)
            rank = _DIRECTORY_RANK[tag]
            if rank <= self._last_rank:
                raise self._structure_error(
                    element,
                    "directories out of order (expected organizationDirectory, serviceDirectory, "
                    "facilityDirectory, providerDirectory, deviceDirectory, once each)",
                )
            self._last_rank = rank
            self._directory = tag
            self._entity_path = f"{_path_of(element)}/{n.local_name(_ENTITY_OF_DIRECTORY[tag])}"
            self._count = 0
            self._content_seen = True
        elif tag in _PAYLOAD_TAGS or tag == n.SOAP_FAULT:
            if parent_tag is not None and parent_tag != n.SOAP_BODY:
                raise self._misplaced(element)

        elif tag == n.RESULT or tag == n.ERROR:
            if parent_tag != n.CARE_SERVICES_RESPONSE:
                raise self._misplaced(element)

        elif tag == n.QUERY_RESULT:
            if parent_tag != n.RESULT:
                raise self._misplaced(element)
        elif tag == n.SOAP_BODY:
            if parent_tag != n.SOAP_ENVELOPE:
                raise self._misplaced(element)
        elif tag == n.SOAP_ENVELOPE and parent_tag is not None:
            raise self._misplaced(element)

    def _end_structure(self, element: etree._Element, tag: str) -> None:
        if tag in _DIRECTORY_RANK:
            self._directory = None
            element.clear(keep_tail=False)
            if tag == n.SERVICE_DIRECTORY:
                duplicate = self._index.seal_services()
                if duplicate is not None:
                    entity_id, position, line = duplicate
                    path = f"{self._entity_path}[{position}]/@entityID"
                    message = f"duplicate service entityID {entity_id!r}"
                    raise DataError(message, path=path, line=line, source=self._name)
        elif tag == n.ERROR:
            raise _remote_error(element.get("code"), element.get("message") or element.text)
        elif tag == n.SOAP_FAULT:
            raise fault_error(element)

    def _misplaced(self, element: etree._Element) -> DataError:
        return self._structure_error(element, f"unexpected {n.local_name(str(element.tag))} here")

    def _structure_error(self, element: etree._Element, message: str) -> DataError:
        return DataError(message, path=_path_of(element), line=element.sourceline, source=self._name)

    def _start_entity(self, element: etree._Element, tag: str) -> None:
        if self._directory is None or _ENTITY_OF_DIRECTORY[self._directory] != tag:
            raise self._misplaced(element)
        self._count += 1

    # -- entities ---------------------------------------------------------------------------------

    def _entity(self, element: etree._Element, tag: str) -> Iterator[Any]:
        self._parser.begin(element, self._entity_path, self._count)
        share = self._share
        owned = share is None or self._count % share[1] == share[0]
        if tag == n.FACILITY:
            yield from (self._facility(element) if owned else self._facility_links(element))
        elif tag == n.SERVICE:
            self._service(element)
        elif tag == n.ORGANIZATION:
            yield from self._organization(element, owned)
        elif tag == n.PROVIDER:
            if owned:
                yield self._provider(element)
            else:
                self._provider_key(element)
        elif owned:
            yield from self._device(self._parser.device(element), element)
        else:
            self._device_keys(element)

    def _organization(self, element: etree._Element, owned: bool) -> Iterator[Any]:
        part = self._parser.organization(element) if owned else self._parser.organization_links(element)
        legal_entity_id = (
            None if part.parent is None else self._emitted_parent(NodeKind.ORGANIZATION, part.parent[0])
        )
        ready = part.parent is None or legal_entity_id is not None
        conflict = self._index.add_node(
            NodeKind.ORGANIZATION, part.entity_id, part.business_id, emitted=ready
        )
        if conflict is not None:
            raise self._duplicate(conflict, "organization", part.business_id, element)
        if part.parent is None:
            if owned:
                yield self._make(LegalEntity, part.fields, element)
        elif legal_entity_id is not None:
            if owned:
                fields = {**part.fields, "legal_entity_id": legal_entity_id}
                yield self._make(Establishment, fields, element)
        else:
            where = self._parser.where(part.parent[1], "entityID")
            item = (part.entity_id, part.fields, owned)
            self._index.defer(NodeKind.ORGANIZATION, part.parent[0], item, where)
            return
        yield from self._release(NodeKind.ORGANIZATION, part.entity_id, part.business_id)

    def _service(self, element: etree._Element) -> None:
        entity_id, payload = self._parser.service(element)
        if not self._index.add_service(entity_id, payload, element.sourceline):
            raise self._parser.error(f"duplicate service entityID {entity_id!r}", element, "entityID")

    def _facility(self, element: etree._Element) -> Iterator[Any]:
        part = self._parser.facility(element)
        unit_id = part.business_id
        fields = part.fields
        fields["establishment_id"] = self._establishment_of(part, element)
        activities = self._activities(part)
        parent_unit_id = (
            None if part.parent is None else self._emitted_parent(NodeKind.FACILITY, part.parent[0])
        )
        ready = part.parent is None or parent_unit_id is not None
        conflict = self._index.add_node(NodeKind.FACILITY, part.entity_id, unit_id, emitted=ready)
        if conflict is not None:
            raise self._duplicate(conflict, "facility", unit_id, element)
        self._link_equipment(part)
        if parent_unit_id is not None:
            fields["parent_unit_id"] = parent_unit_id
        if part.parent is not None and parent_unit_id is None:
            where = self._parser.where(part.parent[1], "entityID")
            self._index.defer(NodeKind.FACILITY, part.parent[0], (part.entity_id, fields, activities), where)
            return
        yield self._make(Unit, fields, element)
        yield from activities
        yield from self._release(NodeKind.FACILITY, part.entity_id, unit_id)

    def _facility_links(self, element: etree._Element) -> Iterator[Any]:
        """A facility another share builds: indexed, linked and waiting like one built here, so that
        this share's entities resolve and the same reference errors are found."""
        part = self._parser.facility_links(element)
        parent_unit_id = (
            None if part.parent is None else self._emitted_parent(NodeKind.FACILITY, part.parent[0])
        )
        ready = part.parent is None or parent_unit_id is not None
        conflict = self._index.add_node(NodeKind.FACILITY, part.entity_id, part.business_id, emitted=ready)
        if conflict is not None:
            raise self._duplicate(conflict, "facility", part.business_id, element)
        self._link_equipment(part)
        if part.parent is not None and not ready:
            where = self._parser.where(part.parent[1], "entityID")
            self._index.defer(
                NodeKind.FACILITY, part.parent[0], (part.entity_id, part.business_id, ()), where
            )
            return
        yield from self._release(NodeKind.FACILITY, part.entity_id, part.business_id)

    def _establishment_of(self, part: FacilityPart, element: etree._Element) -> str:
        if not part.organizations:
            raise self._parser.error("facility without organizations/organization: no establishment", element)
        establishment_id: str | None = None
        for entity_id, ref in part.organizations:
            node = self._index.node(NodeKind.ORGANIZATION, entity_id)
            if node is None:
                raise self._dangling("organization", entity_id, ref)
            establishment_id = establishment_id or node[0]
        assert establishment_id is not None
        return establishment_id

    def _activities(self, part: FacilityPart) -> list[Any]:
        activities: list[Any] = []
        service_of_code: dict[str, str] = {}
        for entity_id, ref in part.services:
            payload = self._index.service(entity_id)
            if payload is None:
                raise self._dangling("service", entity_id, ref)
            code = payload[0][0]
            previous = service_of_code.setdefault(code, entity_id)
            if previous != entity_id:
                raise self._parser.error(
                    f"duplicate activity {part.business_id}#{code}: two services with code {code!r}",
                    ref,
                    "entityID",
                )
            if len(service_of_code) > len(activities):  # not the same service listed twice
                activities.append(self._make(Activity, self._parser.activity(part.business_id, payload), ref))
        return activities

    def _link_equipment(self, part: FacilityPart) -> None:
        linked: set[str] = set()
        for device_id, ref in part.equipment:
            if device_id not in linked:
                linked.add(device_id)
                self._index.link_device(device_id, part.business_id, self._parser.where(ref, "entityID"))

    def _provider(self, element: etree._Element) -> Any:
        part = self._parser.provider(element)
        if not self._index.add_key(KeySpace.PROVIDER, part.business_id):
            raise self._parser.error(f"duplicate provider idNat_PS {part.business_id!r}", element)
        fields = part.fields
        fields["establishment_ids"] = tuple(
            self._resolve(NodeKind.ORGANIZATION, ref) for ref in part.organizations
        )
        fields["unit_ids"] = tuple(self._resolve(NodeKind.FACILITY, ref) for ref in part.facilities)
        return self._make(Professional, fields, element)

    def _provider_key(self, element: etree._Element) -> None:
        business_id = self._parser.provider_id(element)
        if not self._index.add_key(KeySpace.PROVIDER, business_id):
            raise self._parser.error(f"duplicate provider idNat_PS {business_id!r}", element)

    def _device_keys(self, element: etree._Element) -> None:
        entity_id, code = self._parser.device_key(element)
        if not self._index.add_key(KeySpace.DEVICE, entity_id):
            raise self._parser.error(f"duplicate device entityID {entity_id!r}", element, "entityID")
        for unit_id in self._index.take_device_links(entity_id):
            if not self._index.add_key(KeySpace.EQUIPMENT, f"{unit_id}#{code}"):
                raise self._parser.error(
                    f"unit {unit_id!r} has two devices with equipment code {code!r}", element
                )

    def _device(self, part: DevicePart, element: etree._Element) -> Iterator[Any]:
        if not self._index.add_key(KeySpace.DEVICE, part.entity_id):
            raise self._parser.error(f"duplicate device entityID {part.entity_id!r}", element, "entityID")
        unit_ids = self._index.take_device_links(part.entity_id)
        if not unit_ids:
            _log.debug("%s: device %s is linked to no unit: no equipment", self._name, part.entity_id)
        code = part.code_value
        for unit_id in unit_ids:
            if not self._index.add_key(KeySpace.EQUIPMENT, f"{unit_id}#{code}"):
                raise self._parser.error(
                    f"unit {unit_id!r} has two devices with equipment code {code!r}", element
                )
            yield self._make(Equipment, part.equipment(unit_id), element)

    # -- references -------------------------------------------------------------------------------

    def _emitted_parent(self, kind: NodeKind, parent_id: str) -> str | None:
        """The business id of an already emitted parent, else ``None`` (the child must wait)."""
        node = self._index.node(kind, parent_id)
        return node[0] if node is not None and node[1] else None

    def _resolve(self, kind: NodeKind, ref: Ref) -> str:
        node = self._index.node(kind, ref[0])
        if node is None:
            raise self._dangling(n.local_name(str(ref[1].tag)), ref[0], ref[1])
        return node[0]

    def _release(self, kind: NodeKind, entity_id: str, business_id: str) -> Iterator[Any]:
        """Emit, depth first, every entity that waited for ``entity_id`` (and what waited for them)."""
        stack = [(entity_id, business_id)]
        while stack:
            parent_entity_id, parent_business_id = stack.pop()
            if not self._index.has_deferred(kind, parent_entity_id):
                continue
            for item in self._index.release(kind, parent_entity_id):
                child_id: str
                if kind is NodeKind.ORGANIZATION:
                    child_entity_id, fields, owned = item
                    child_id = fields["id"]
                    if owned:
                        fields = {**fields, "legal_entity_id": parent_business_id}
                        yield self._make(Establishment, fields, None)
                else:
                    child_entity_id, unit, activities = item
                    if isinstance(unit, str):  # built by another share: only its business id is here
                        child_id = unit
                    else:
                        child_id = unit["id"]
                        yield self._make(Unit, {**unit, "parent_unit_id": parent_business_id}, None)
                        yield from activities
                self._index.set_emitted(kind, child_entity_id)
                stack.append((child_entity_id, child_id))

    def _release_external_parents(self) -> Iterator[Any]:
        """Emit the units waiting for a ``parentFacility`` the document does not hold, marked external."""
        missing = dict.fromkeys(
            parent_id
            for kind, parent_id, _ in self._index.deferred_left()
            if kind is NodeKind.FACILITY and self._index.node(kind, parent_id) is None
        )
        for parent_id in missing:
            yield from self._release(NodeKind.FACILITY, parent_id, EXTERNAL_PARENT + parent_id)

    def _check_leftovers(self) -> None:
        for kind, parent_id, (path, line) in self._index.deferred_left():
            if self._index.node(kind, parent_id) is None:
                what = "parent organization" if kind is NodeKind.ORGANIZATION else "parentFacility"
                message = f"dangling reference: {what} {parent_id!r} is not in the document"
            else:
                message = (
                    f"reference cycle: {parent_id!r} never gets emitted (it waits on its own descendants)"
                )
            raise DataError(message, path=path, line=line, source=self._name)
        for device_id, (path, line) in self._index.device_links_left():
            raise DataError(
                f"dangling reference: equipment device {device_id!r} is not in the document",
                path=path,
                line=line,
                source=self._name,
            )

    # -- errors and construction ------------------------------------------------------------------

    def _dangling(self, what: str, entity_id: str, ref: etree._Element) -> DataError:
        return self._parser.error(
            f"dangling reference: {what} {entity_id!r} is not in the document", ref, "entityID"
        )

    def _duplicate(
        self, conflict: Conflict, what: str, business_id: str, element: etree._Element
    ) -> DataError:
        if conflict is Conflict.ENTITY_ID:
            return self._parser.error(f"duplicate {what} entityID", element, "entityID")
        kind = "idNat_Struct" if what == "organization" else "identifiantOI"
        return self._parser.error(f"duplicate {what} {kind} {business_id!r}", element)

    def _make(self, model: type[BaseModel], fields: Values, element: etree._Element | None) -> Any:
        """What the reader yields for an entity: its model, or its plain values (:func:`read_values`)."""
        return self._values(model, fields, element) if self._plain else self._build(model, fields, element)

    def _values(self, model: type[BaseModel], fields: Values, element: etree._Element | None) -> EntityValues:
        complete = _TEMPLATES[model].copy()
        complete.update(fields)
        return _KIND_OF_MODEL[model], complete

    def _build(self, model: type[_M], fields: Values, element: etree._Element | None) -> _M:
        try:
            return _VALIDATORS[model](fields)  # type: ignore[no-any-return]
        except ValidationError as exc:
            first = exc.errors()[0]
            location = ".".join(str(part) for part in first["loc"])
            message = f"invalid {model.__name__}: {location}: {first['msg']}"
            if element is None:
                raise DataError(message, source=self._name) from exc
            raise self._parser.error(message, element) from exc


class _PruningInput:
    """The input as lxml's ``iterparse`` reads it, calling ``before_read`` before each read."""

    def __init__(self, xml: XmlInput, before_read: Callable[[], None]) -> None:
        self._xml = xml
        self._before_read = before_read

    def read(self, size: int = -1, /) -> bytes:
        self._before_read()
        return self._xml.read(size)


def _path_of(element: etree._Element) -> str:
    names = [n.local_name(str(ancestor.tag)) for ancestor in element.iterancestors()]
    return "/" + "/".join([*reversed(names), n.local_name(str(element.tag))])


def _remote_error(code: str | None, message: str | None) -> RemoteError:
    try:
        number = int(code.strip()) if code is not None else None
    except ValueError:
        number = None
    return RemoteError(number, (message or "").strip() or "no message")
