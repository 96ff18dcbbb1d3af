"""The CSD writer: schema-valid documents, stable entityIDs, extras in place, typed errors."""

from __future__ import annotations

import gzip
import io
import uuid
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from rorclient.codes import CSD_NS
from rorclient.csd._order import ORDER
from rorclient.csd.writer import (
    ENTITY_ID_NAMESPACE,
    CsdWriter,
    WriterOptions,
    csd_bytes,
    entity_uuid,
    write_csd,
    write_lecture_response,
)
from rorclient.errors import DataError
from rorclient.models import (
    Activity,
    CodedValue,
    EntityKind,
    Equipment,
    ExtraElement,
    Identifier,
    Offer,
    RecordMeta,
)
from tests.strategies import ORGANISATION_EXTENSION_EXTRAS, ORGANIZATION_EXTRAS, sample_offer

NS = {"csd": CSD_NS}


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def assert_valid(schema: Any, data: bytes) -> None:
    errors = list(schema.iter_errors(io.BytesIO(data)))
    assert not errors, errors[0]


def local_children(element: etree._Element) -> list[str]:
    return [etree.QName(child).localname for child in element]


# --------------------------------------------------------------------------------------------------
# Schema validity and document shape
# --------------------------------------------------------------------------------------------------


def test_sample_offer_written_as_extraction_validates_against_the_official_xsd(csd_schema: Any) -> None:
    data = csd_bytes(sample_offer())
    assert_valid(csd_schema, data)
    root = parse(data)
    assert root.tag == f"{{{CSD_NS}}}CSD"
    assert local_children(root) == [
        "organizationDirectory",
        "serviceDirectory",
        "facilityDirectory",
        "providerDirectory",
        "deviceDirectory",
    ]
    assert len(root.findall("csd:organizationDirectory/csd:organization", NS)) == 2
    assert len(root.findall("csd:facilityDirectory/csd:facility", NS)) == 2


def test_lecture_response_counts_elementary_units_as_facility_number(csd_schema: Any) -> None:
    buffer = io.BytesIO()
    stats = write_lecture_response(sample_offer(), buffer)
    data = buffer.getvalue()
    assert_valid(csd_schema, data)
    root = parse(data)
    assert root.tag == f"{{{CSD_NS}}}careServicesResponse"
    assert root.findtext("csd:result/csd:facilityNumber", namespaces=NS) == "1"  # RG_ALIM_019: UEs only
    assert root.find("csd:result/csd:queryResult/csd:facilityDirectory", NS) is not None
    assert stats.elementary_units == 1
    assert stats.facilities == 2


def test_facility_number_can_be_forced_for_error_injection() -> None:
    data = csd_bytes(sample_offer(), root="careServicesResponse", facility_number=7)
    assert parse(data).findtext("csd:result/csd:facilityNumber", namespaces=NS) == "7"


def test_empty_document_has_all_five_directories(csd_schema: Any) -> None:
    data = csd_bytes([])
    assert_valid(csd_schema, data)
    assert len(parse(data)) == 5


def test_xml_declaration_can_be_left_out_for_embedding_in_a_soap_body() -> None:
    with_declaration = csd_bytes(sample_offer())
    without = csd_bytes(sample_offer(), xml_declaration=False)
    assert with_declaration.startswith(b"<?xml")
    assert without.startswith(b"<csd:CSD")
    assert with_declaration.endswith(without)


def test_namespace_is_declared_once_on_the_root() -> None:
    data = csd_bytes(sample_offer())
    assert data.count(f'xmlns:csd="{CSD_NS}"'.encode()) == 1


# --------------------------------------------------------------------------------------------------
# Mapping of the models
# --------------------------------------------------------------------------------------------------


def test_entity_ids_are_uuid5_urns_derived_from_kind_and_business_id() -> None:
    value = entity_uuid(EntityKind.UNIT, "93/12345")
    assert value == entity_uuid(EntityKind.UNIT, "93/12345")
    assert value != entity_uuid(EntityKind.ESTABLISHMENT, "93/12345")
    assert value.startswith("urn:uuid:")
    assert uuid.UUID(value.removeprefix("urn:uuid:")) == uuid.uuid5(ENTITY_ID_NAMESPACE, "unit:93/12345")


def test_references_join_the_entities_of_the_document() -> None:
    offer = sample_offer()
    root = parse(csd_bytes(offer))
    ej, eg = root.findall("csd:organizationDirectory/csd:organization", NS)
    assert eg.find("csd:parent", NS).get("entityID") == ej.get("entityID")
    pole, ue = root.findall("csd:facilityDirectory/csd:facility", NS)
    assert ue.find("csd:extension/csd:parentFacility", NS).get("entityID") == pole.get("entityID")
    assert pole.find("csd:extension/csd:parentFacility", NS) is None
    for facility in (pole, ue):
        owner = facility.find("csd:organizations/csd:organization", NS)
        assert owner.get("entityID") == eg.get("entityID")
    service = root.find("csd:serviceDirectory/csd:service", NS)
    assert [s.get("entityID") for s in ue.iterfind("csd:organizations/csd:organization/csd:service", NS)] == [
        service.get("entityID")
    ]
    device = root.find("csd:deviceDirectory/csd:device", NS)
    assert ue.find("csd:extension/csd:equipment", NS).get("entityID") == device.get("entityID")
    provider = root.find("csd:providerDirectory/csd:provider", NS)
    assert provider.find("csd:organizations/csd:organization", NS).get("entityID") == eg.get("entityID")
    assert provider.find("csd:facilities/csd:facility", NS).get("entityID") == ue.get("entityID")


def test_business_ids_are_written_as_other_ids() -> None:
    offer = sample_offer()
    unit = offer.units[0].model_copy(update={"other_ids": ()})
    root = parse(csd_bytes(offer.model_copy(update={"units": (unit, offer.units[1])})))
    first = root.find("csd:facilityDirectory/csd:facility/csd:otherID", NS)
    assert first.get("code") == "93/10000"
    assert first.get("assigningAuthorityName") == WriterOptions().unit_id_authority
    organization_ids = root.findall("csd:organizationDirectory/csd:organization/csd:otherID", NS)
    assert [element.get("code") for element in organization_ids] == ["1830000001", "1830000002"]


def test_the_business_id_is_the_first_other_id_whatever_the_model_order() -> None:
    offer = sample_offer()
    unit = offer.units[1]
    reordered = unit.model_copy(
        update={"other_ids": (Identifier(value="X-1", authority="1.2.3"), *unit.other_ids)}
    )
    root = parse(csd_bytes(offer.model_copy(update={"units": (offer.units[0], reordered)})))
    ids = root.findall("csd:facilityDirectory/csd:facility", NS)[1].findall("csd:otherID", NS)
    assert [(e.get("code"), e.get("assigningAuthorityName")) for e in ids] == [
        ("93/12345", WriterOptions().unit_id_authority),
        ("X-1", "1.2.3"),
    ]


def test_unit_values_land_in_the_facility_extension() -> None:
    root = parse(csd_bytes(sample_offer()))
    pole, ue = root.findall("csd:facilityDirectory/csd:facility", NS)
    assert pole.find("csd:extension/csd:careMode", NS).attrib == {"code": "null", "codingScheme": ""}
    extension = ue.find("csd:extension", NS)
    assert extension.findtext("csd:sensitiveUnit", namespaces=NS) == "false"
    assert extension.find("csd:careMode", NS).get("code") == "32"
    assert extension.findtext("csd:patientsType/csd:patientTypeAgeMin/csd:value", namespaces=NS) == "16"
    assert local_children(extension) == [
        "creationDate",
        "typeActivity",
        "careMode",
        "patientsType",
        "equipment",
        "parentFacility",
        "sensitiveUnit",
    ]


def test_placeholder_extension_attributes_are_configurable(csd_schema: Any) -> None:
    options = WriterOptions(extension_type="T", extension_urn="urn:x", unit_id_authority="1.2.3")
    data = csd_bytes(sample_offer(), options=options)
    assert_valid(csd_schema, data)
    extensions = parse(data).findall(".//csd:extension", NS)
    assert extensions
    assert {(e.get("type"), e.get("urn")) for e in extensions} == {("T", "urn:x")}


def test_decimals_are_written_without_exponent(csd_schema: Any) -> None:
    from decimal import Decimal

    offer = sample_offer()
    establishment = offer.establishments[0]
    assert establishment.location is not None
    assert establishment.location.coordinates is not None
    coordinates = establishment.location.coordinates.model_copy(
        update={"latitude": Decimal("4E+1"), "longitude": Decimal("-1E-7")}
    )
    location = establishment.location.model_copy(update={"coordinates": coordinates})
    offer = offer.model_copy(
        update={"establishments": (establishment.model_copy(update={"location": location}),)}
    )
    data = csd_bytes(offer)
    assert_valid(csd_schema, data)
    geo = parse(data).find(".//csd:geoCoordinates", NS)
    assert geo.findtext("csd:latitude", namespaces=NS) == "40"
    assert geo.findtext("csd:longitude", namespaces=NS) == "-0.0000001"


# --------------------------------------------------------------------------------------------------
# Extras
# --------------------------------------------------------------------------------------------------


def test_extras_are_written_at_their_xsd_sequence_position(csd_schema: Any) -> None:
    offer = sample_offer()
    establishment = offer.establishments[0].model_copy(
        update={"extras": ORGANIZATION_EXTRAS, "extension_extras": ORGANISATION_EXTENSION_EXTRAS}
    )
    data = csd_bytes(offer.model_copy(update={"establishments": (establishment,)}))
    assert_valid(csd_schema, data)
    eg = parse(data).findall("csd:organizationDirectory/csd:organization", NS)[1]
    assert local_children(eg) == [
        "otherID",
        "codedType",
        "primaryName",
        "address",
        "language",
        "specialization",
        "contactPoint",
        "parent",
        "extension",
        "record",
    ]
    assert local_children(eg.find("csd:extension", NS)) == [
        "contact",
        "location",
        "dropZone",
        "financialHelpType",
        "accomodationFamily",
        "nbTemporarySocialeHelpPlace",
        "careWithoutPatientApproval",
        "creationDate",
        "levelRecourseORSAN",
    ]


def test_extra_content_is_emitted_verbatim() -> None:
    offer = sample_offer()
    extra = ORGANIZATION_EXTRAS[2]
    legal_entity = offer.legal_entities[0].model_copy(update={"extras": (extra,)})
    root = parse(csd_bytes(offer.model_copy(update={"legal_entities": (legal_entity,)})))
    element = root.find("csd:organizationDirectory/csd:organization/csd:contactPoint", NS)
    assert element.findtext("csd:equipment", namespaces=NS) == "0600000000"
    assert element.find("csd:codedType", NS).attrib == {"code": "1", "codingScheme": "1.2.250.1.213.3.3.1"}


def test_order_tables_match_the_official_xsd(csd_schema: Any) -> None:
    for type_name, sequence in ORDER.items():
        xsd_type = csd_schema.types[type_name]
        names = [e.local_name for e in xsd_type.content.iter_elements() if getattr(e, "local_name", None)]
        assert tuple(names) == sequence, type_name


def test_malformed_extra_is_a_data_error() -> None:
    offer = sample_offer()
    bad = ExtraElement(name=f"{{{CSD_NS}}}language", xml="<csd:language")
    legal_entity = offer.legal_entities[0].model_copy(update={"extras": (bad,)})
    with pytest.raises(DataError, match="language"):
        csd_bytes(offer.model_copy(update={"legal_entities": (legal_entity,)}))


# --------------------------------------------------------------------------------------------------
# Streaming and errors
# --------------------------------------------------------------------------------------------------


def _second_site(offer: Offer) -> Offer:
    """The same legal entity with another establishment and unit (two offers sharing an EJ)."""
    establishment = offer.establishments[0].model_copy(update={"id": "1830000003", "other_ids": ()})
    unit = offer.units[1].model_copy(
        update={"id": "93/22222", "other_ids": (), "establishment_id": "1830000003", "parent_unit_id": None}
    )
    return Offer(legal_entities=offer.legal_entities, establishments=(establishment,), units=(unit,))


def test_offers_sharing_a_legal_entity_write_it_once(csd_schema: Any) -> None:
    offer = sample_offer()
    data = csd_bytes([offer, _second_site(offer)])
    assert_valid(csd_schema, data)
    ids = [
        e.get("code")
        for e in parse(data).iterfind("csd:organizationDirectory/csd:organization/csd:otherID", NS)
    ]
    assert ids == ["1830000001", "1830000002", "1830000003"]


def test_loose_entities_in_any_order_are_linked_at_the_end(csd_schema: Any) -> None:
    offer = sample_offer()
    shuffled = [*offer.equipment, *offer.activities, *offer.professionals, *reversed(offer.units)]
    data = csd_bytes([*shuffled, *offer.establishments, *offer.legal_entities])
    assert_valid(csd_schema, data)
    root = parse(data)
    ue = root.findall("csd:facilityDirectory/csd:facility", NS)[0]  # units were added in reverse
    assert ue.find("csd:otherID", NS).get("code") == "93/12345"
    assert len(ue.findall("csd:organizations/csd:organization/csd:service", NS)) == 1
    assert len(ue.findall("csd:extension/csd:equipment", NS)) == 1


def test_activity_of_a_unit_absent_from_the_document_is_a_data_error() -> None:
    record = RecordMeta(created="2020-01-01T00:00:00", updated="2020-01-01T00:00:00")
    orphan = Activity(unit_id="93/404", code=CodedValue(code="037"), record=record)
    with pytest.raises(DataError, match="93/404"):
        csd_bytes([orphan])


def test_activity_added_after_its_unit_was_flushed_is_a_data_error(tmp_path: Path) -> None:
    offer = sample_offer()
    late = Equipment(unit_id="93/12345", code=CodedValue(code="047"), record=offer.units[0].record)
    writer = CsdWriter(tmp_path / "out.xml")
    writer.add_offer(offer)
    writer.add(late)
    with pytest.raises(DataError, match="93/12345"):
        writer.close()
    with pytest.raises(ValueError, match="without completing"):
        writer.close()


def test_unit_without_activity_field_is_a_data_error() -> None:
    offer = sample_offer()
    unit = offer.units[0].model_copy(update={"activity_fields": ()})
    with pytest.raises(DataError, match="typeActivity") as caught:
        csd_bytes(offer.model_copy(update={"units": (unit, offer.units[1])}))
    assert caught.value.path == "facility[93/10000]"


def test_organization_without_type_is_a_data_error() -> None:
    offer = sample_offer()
    legal_entity = offer.legal_entities[0].model_copy(update={"types": ()})
    with pytest.raises(DataError, match="1830000001"):
        csd_bytes(offer.model_copy(update={"legal_entities": (legal_entity,)}))


def test_text_xml_cannot_carry_is_a_data_error() -> None:
    offer = sample_offer()
    legal_entity = offer.legal_entities[0].model_copy(update={"name": "bad\x00name"})
    with pytest.raises(DataError, match="legal_entity 1830000001"):
        csd_bytes(offer.model_copy(update={"legal_entities": (legal_entity,)}))


def test_writer_refuses_entities_once_closed(tmp_path: Path) -> None:
    writer = CsdWriter(tmp_path / "out.xml")
    stats = writer.close()
    assert writer.close() == stats
    with pytest.raises(ValueError, match="closed"):
        writer.add(sample_offer().legal_entities[0])


def test_gzip_output_is_deterministic_and_decompresses_to_the_plain_document(tmp_path: Path) -> None:
    plain = csd_bytes(sample_offer())
    first, second = tmp_path / "a.xml.gz", tmp_path / "b.xml.gz"
    write_csd(sample_offer(), first, gzip=True)
    write_csd(sample_offer(), second, gzip=True)
    assert first.read_bytes() == second.read_bytes()
    assert gzip.decompress(first.read_bytes()) == plain


def test_stats_count_what_was_written(tmp_path: Path) -> None:
    stats = write_csd(sample_offer(), tmp_path / "out.xml")
    assert (stats.organizations, stats.services, stats.facilities, stats.providers, stats.devices) == (
        2,
        1,
        2,
        1,
        1,
    )
    assert stats.bytes_written == (tmp_path / "out.xml").stat().st_size


def test_small_spool_threshold_spills_to_disk_with_the_same_output(tmp_path: Path) -> None:
    offer = sample_offer()
    target = tmp_path / "spilled.xml"
    with CsdWriter(target, spool_threshold=64) as writer:
        writer.add_offer(offer)
        writer.add_offer(_second_site(offer))
    assert target.read_bytes() == csd_bytes([offer, _second_site(offer)])
