"""Hostile, malformed and inconsistent CSD input: every case is a typed DataError saying where."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pytest

from rorclient.csd import _index
from rorclient.csd.reader import read_csd
from rorclient.errors import DataError
from tests import _csd_docs as docs


def read_error(source: bytes, **options: int) -> DataError:
    with pytest.raises(DataError) as caught:
        list(read_csd(source, **options))  # type: ignore[arg-type]
    return caught.value


@pytest.fixture(params=[False, True], ids=["in-memory index", "spilled index"])
def spill(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    if request.param:
        monkeypatch.setattr(_index, "DEFAULT_SPILL_THRESHOLD", 0)
    return bool(request.param)


# -- DTDs and entities -----------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE CSD [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<CSD xmlns="urn:ihe:iti:csd:2013"><organizationDirectory><organization entityID="a">
<primaryName>&lol9;</primaryName></organization></organizationDirectory></CSD>
"""


def test_billion_laughs_is_refused_before_any_expansion() -> None:
    error = read_error(BILLION_LAUGHS)

    assert error.message == "DTDs are not allowed"


@pytest.mark.parametrize("system_id", ["file:///etc/passwd", "http://127.0.0.1:9/evil.dtd"])
def test_external_entities_are_never_loaded(system_id: str) -> None:
    document = (
        f'<?xml version="1.0"?><!DOCTYPE CSD [<!ENTITY xxe SYSTEM "{system_id}">]>'
        f'<CSD xmlns="urn:ihe:iti:csd:2013"><organizationDirectory><organization entityID="a">'
        f"<primaryName>&xxe;</primaryName></organization></organizationDirectory></CSD>"
    ).encode()

    error = read_error(document)

    assert error.message == "DTDs are not allowed"
    assert "root:" not in str(error)


def test_external_dtd_is_refused() -> None:
    document = b'<!DOCTYPE CSD SYSTEM "http://127.0.0.1:9/csd.dtd"><CSD xmlns="urn:ihe:iti:csd:2013"/>'

    assert read_error(document).message == "DTDs are not allowed"


def test_any_doctype_is_refused() -> None:
    document = b"<!DOCTYPE CSD><CSD xmlns='urn:ihe:iti:csd:2013'>" + docs.directories().encode() + b"</CSD>"

    assert read_error(document).message == "DTDs are not allowed"


def test_doctype_inside_a_soap_envelope_is_refused() -> None:
    document = b"<!DOCTYPE Envelope []>" + docs.soap(docs.lecture_response(**docs.simple_offer()))

    assert read_error(document).message == "DTDs are not allowed"


# -- broken XML ------------------------------------------------------------------------------------


def test_truncated_document_names_the_line(samples_dir: Path) -> None:
    data = (samples_dir / "lecture_response_full_body.xml").read_bytes()

    error = read_error(data[: len(data) // 2])

    assert "not well-formed XML" in error.message
    assert error.line is not None
    assert error.line > 1


def test_document_cut_after_the_last_entity_is_refused() -> None:
    data = docs.csd(**docs.simple_offer())

    error = read_error(data[: data.index(b"</facilityDirectory>")])

    assert "not well-formed XML" in error.message


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"   \n  ", id="blank"),
        pytest.param(b"\x00\x01\x02garbage\xff", id="binary garbage"),
        pytest.param(b"hello, world", id="text"),
        pytest.param(b'{"json": true}', id="json"),
        pytest.param(b"<CSD xmlns='urn:ihe:iti:csd:2013'><unclosed>", id="unclosed"),
    ],
)
def test_non_xml_input_is_a_data_error(data: bytes) -> None:
    error = read_error(data)

    assert error.message.startswith(("not well-formed XML", "the document is empty"))


def test_deep_nesting_is_refused() -> None:
    depth = 5000
    document = (
        b"<CSD xmlns='urn:ihe:iti:csd:2013'><organizationDirectory><organization entityID='a'>"
        + b"<x>" * depth
        + b"</x>" * depth
        + b"</organization></organizationDirectory></CSD>"
    )

    assert "not well-formed XML" in read_error(document).message


# -- wrong documents -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(b"<foo/>", "unexpected root element 'foo'", id="unknown root"),
        pytest.param(
            b"<careServicesRequest xmlns='urn:ihe:iti:csd:2013'/>",
            "unexpected root element 'careServicesRequest'",
            id="request instead of response",
        ),
        pytest.param(b"<CSD xmlns='urn:other'/>", "wrong namespace", id="wrong namespace"),
        pytest.param(b"<CSD/>", "wrong namespace", id="no namespace"),
        pytest.param(
            b"<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body/></s:Envelope>",
            "wrong namespace",
            id="SOAP 1.1",
        ),
        pytest.param(
            docs.soap(b"<Notif xmlns='urn:asip:ror:2015'/>"),
            "unexpected SOAP body content 'Notif'",
            id="SOAP body with another document",
        ),
        pytest.param(docs.soap(b""), "the SOAP body is empty", id="empty SOAP body"),
        pytest.param(
            b"<CSD xmlns='urn:ihe:iti:csd:2013'/>", "the document holds no CSD directories", id="empty CSD"
        ),
    ],
)
def test_wrong_document_is_refused(document: bytes, expected: str) -> None:
    assert expected in read_error(document).message


def test_directories_out_of_order_are_refused() -> None:
    document = (
        b"<CSD xmlns='urn:ihe:iti:csd:2013'><organizationDirectory/><facilityDirectory/>"
        b"<serviceDirectory/></CSD>"
    )

    error = read_error(document)

    assert "directories out of order" in error.message
    assert error.path == "/CSD/serviceDirectory"


def test_entity_in_the_wrong_directory_is_refused() -> None:
    document = docs.csd(organizations=[docs.service("s1")])

    error = read_error(document)

    assert "unexpected service" in error.message
    assert error.path == "/CSD/organizationDirectory/service"


# -- invalid values --------------------------------------------------------------------------------


def test_invalid_date_names_the_attribute_path_and_line() -> None:
    bad = docs.facility("f2", "93/2", eg="eg").replace(
        '<record created="2020-01-01T08:00:00" updated="2020-02-01T08:00:00" status="Active"/></facility>',
        '<record created="2020-01-01T08:00:00" updated="2020-02-30T08:00:00" status="Active"/></facility>',
    )
    parts = docs.simple_offer(facilities=[docs.facility("f1", "93/1", eg="eg"), "\n\n", bad])

    error = read_error(docs.csd(**parts))

    assert error.message == "invalid xs:dateTime '2020-02-30T08:00:00'"
    assert error.path == "/CSD/facilityDirectory/facility[2]/record/@updated"
    assert error.line == 3


@pytest.mark.parametrize(
    "stamp",
    [
        "2020-01-01 10:00:00",
        "2020-01-01T10:00",
        "2020-13-01T00:00:00",
        "2020-01-01T10:00:00+25:00",
        "2020-W01-1T10:10:10",
        "2020-01-01T24:00:01",
        "20200101T100000",
        "",
    ],
)
def test_invalid_xs_datetime_forms_are_refused(stamp: str) -> None:
    organization = docs.organization("ej", "1000000001", rec=docs.record(created=stamp))

    error = read_error(docs.csd(organizations=[organization]))

    assert error.message == f"invalid xs:dateTime {stamp!r}"
    assert error.path == "/CSD/organizationDirectory/organization[1]/record/@created"


@pytest.mark.parametrize(
    ("extension", "expected_message", "expected_path"),
    [
        pytest.param(
            "<creationDate>15/01/2018</creationDate>",
            "invalid xs:date '15/01/2018'",
            "/CSD/facilityDirectory/facility[1]/extension/creationDate",
            id="date",
        ),
        pytest.param(
            "<finalClosingDate>2018-13-01</finalClosingDate>",
            "invalid xs:date '2018-13-01'",
            "/CSD/facilityDirectory/facility[1]/extension/finalClosingDate",
            id="month 13",
        ),
    ],
)
def test_invalid_values_name_their_element(extension: str, expected_message: str, expected_path: str) -> None:
    parts = docs.simple_offer(facilities=[docs.facility("f1", "93/1", eg="eg", extension_start=extension)])

    error = read_error(docs.csd(**parts))

    assert (error.message, error.path) == (expected_message, expected_path)


def test_invalid_boolean_is_refused() -> None:
    parts = docs.simple_offer(facilities=[docs.facility("f1", "93/1", eg="eg", sensitive="yes")])

    error = read_error(docs.csd(**parts))

    assert error.message == "invalid xs:boolean 'yes'"
    assert error.path == "/CSD/facilityDirectory/facility[1]/extension/sensitiveUnit"


def test_missing_required_element_is_refused() -> None:
    parts = docs.simple_offer(facilities=[docs.facility("f1", "93/1", eg="eg", care_mode=False)])

    error = read_error(docs.csd(**parts))

    assert error.message == "missing extension/careMode"
    assert error.path == "/CSD/facilityDirectory/facility[1]"


def test_organization_without_identifier_is_refused() -> None:
    no_id = docs.organization("ej", "X").replace(
        '<otherID code="X" assigningAuthorityName="1.2.250.1.71.4.2.2"/>', ""
    )

    error = read_error(docs.csd(organizations=[no_id]))

    assert "no idNat_Struct" in error.message
    assert error.path == "/CSD/organizationDirectory/organization[1]"


# -- duplicates ------------------------------------------------------------------------------------


def test_two_establishments_with_one_id_nat_struct_are_refused(spill: bool) -> None:
    parts = docs.simple_offer(
        organizations=[
            docs.organization("ej", "1000000001"),
            docs.organization("eg", "1000000002", parent="ej"),
            docs.organization("eg-bis", "1000000002", parent="ej"),
        ]
    )

    error = read_error(docs.csd(**parts))

    assert error.message == "duplicate organization idNat_Struct '1000000002'"
    assert error.path == "/CSD/organizationDirectory/organization[3]"


def test_two_units_with_one_identifiant_oi_are_refused(spill: bool) -> None:
    parts = docs.simple_offer(
        facilities=[docs.facility("f1", "93/1", eg="eg"), docs.facility("f2", "93/1", eg="eg")]
    )

    error = read_error(docs.csd(**parts))

    assert error.message == "duplicate facility identifiantOI '93/1'"
    assert error.path == "/CSD/facilityDirectory/facility[2]"


def test_two_facilities_with_one_entity_id_are_refused(spill: bool) -> None:
    parts = docs.simple_offer(
        facilities=[docs.facility("f1", "93/1", eg="eg"), docs.facility("f1", "93/2", eg="eg")]
    )

    assert read_error(docs.csd(**parts)).message == "duplicate facility entityID"


def test_two_services_with_one_entity_id_are_refused(spill: bool) -> None:
    parts = docs.simple_offer(
        services=[docs.service("s1"), docs.service("s2"), "\n", docs.service("s1", "120")]
    )

    error = read_error(docs.csd(**parts))

    assert error.message == "duplicate service entityID 's1'"
    assert error.path == "/CSD/serviceDirectory/service[3]/@entityID"
    assert error.line == 2


def test_two_services_with_one_code_in_a_unit_are_refused() -> None:
    parts = docs.simple_offer(
        services=[docs.service("s1", "037"), docs.service("s2", "037")],
        facilities=[docs.facility("f1", "93/1", eg="eg", services=["s1", "s2"])],
    )

    error = read_error(docs.csd(**parts))

    assert "duplicate activity 93/1#037" in error.message
    assert error.path == "/CSD/facilityDirectory/facility[1]/organizations/organization/service[2]/@entityID"


def test_two_devices_with_one_code_in_a_unit_are_refused(spill: bool) -> None:
    parts = docs.simple_offer(
        facilities=[docs.facility("f1", "93/1", eg="eg", equipment=["d1", "d2"])],
        devices=[docs.device("d1", "046"), docs.device("d2", "046")],
    )

    error = read_error(docs.csd(**parts))

    assert "two devices with equipment code '046'" in error.message
    assert error.path == "/CSD/deviceDirectory/device[2]"


def test_two_providers_with_one_id_are_refused(spill: bool) -> None:
    parts = docs.simple_offer(providers=[docs.provider("p1", "8100"), docs.provider("p2", "8100")])

    assert read_error(docs.csd(**parts)).message == "duplicate provider idNat_PS '8100'"


# -- dangling references ---------------------------------------------------------------------------


def test_unit_of_an_unknown_establishment_is_refused(spill: bool) -> None:
    parts = docs.simple_offer(facilities=[docs.facility("f1", "93/1", eg="nowhere")])

    error = read_error(docs.csd(**parts))

    assert error.message == "dangling reference: organization 'nowhere' is not in the document"
    assert error.path == "/CSD/facilityDirectory/facility[1]/organizations/organization/@entityID"


def test_unit_without_establishment_is_refused() -> None:
    parts = docs.simple_offer(facilities=[docs.facility("f1", "93/1", eg=None)])

    assert "no establishment" in read_error(docs.csd(**parts)).message


def test_unit_with_an_unknown_service_is_refused(spill: bool) -> None:
    parts = docs.simple_offer(facilities=[docs.facility("f1", "93/1", eg="eg", services=["s1", "s404"])])

    error = read_error(docs.csd(**parts))

    assert error.message == "dangling reference: service 's404' is not in the document"
    assert error.path == "/CSD/facilityDirectory/facility[1]/organizations/organization/service[2]/@entityID"


def test_unknown_parent_facility_is_refused_at_the_end(spill: bool) -> None:
    parts = docs.simple_offer(
        facilities=[
            docs.facility("f1", "93/1", eg="eg"),
            docs.facility("f2", "93/2", eg="eg", parent="ghost"),
        ]
    )

    error = read_error(docs.csd(**parts))

    assert error.message == "dangling reference: parentFacility 'ghost' is not in the document"
    assert error.path == "/CSD/facilityDirectory/facility[2]/extension/parentFacility/@entityID"
    assert error.line == 1


def test_parent_facility_cycle_is_refused(spill: bool) -> None:
    parts = docs.simple_offer(
        facilities=[
            docs.facility("f1", "93/1", eg="eg", parent="f2"),
            docs.facility("f2", "93/2", eg="eg", parent="f1"),
        ]
    )

    assert "reference cycle" in read_error(docs.csd(**parts)).message


def test_establishment_of_an_unknown_legal_entity_is_refused(spill: bool) -> None:
    parts = docs.simple_offer(
        organizations=[docs.organization("eg", "1000000002", parent="ghost")], facilities=[]
    )

    error = read_error(docs.csd(**parts))

    assert error.message == "dangling reference: parent organization 'ghost' is not in the document"
    assert error.path == "/CSD/organizationDirectory/organization[1]/parent/@entityID"


def test_equipment_of_an_unknown_device_is_refused(spill: bool) -> None:
    parts = docs.simple_offer(
        facilities=[docs.facility("f1", "93/1", eg="eg", equipment=["d1", "d404"])],
        devices=[docs.device("d1")],
    )

    error = read_error(docs.csd(**parts))

    assert error.message == "dangling reference: equipment device 'd404' is not in the document"
    assert error.path == "/CSD/facilityDirectory/facility[1]/extension/equipment[2]/@entityID"


def test_provider_of_an_unknown_unit_is_refused(spill: bool) -> None:
    parts = docs.simple_offer(providers=[docs.provider("p1", "8100", units=["f404"])])

    error = read_error(docs.csd(**parts))

    assert error.message == "dangling reference: facility 'f404' is not in the document"
    assert error.path == "/CSD/providerDirectory/provider[1]/facilities/facility/@entityID"


# -- size limits -----------------------------------------------------------------------------------


def _with_text(size: int) -> bytes:
    head, tail = docs.csd(**docs.simple_offer()).split(b"<primaryName>ORGANISATION</primaryName>", 1)
    return head + b"<primaryName>" + b"x" * size + b"</primaryName>" + tail


def test_a_50_mb_text_node_is_a_typed_error_not_a_crash() -> None:
    error = read_error(_with_text(50 * 1024 * 1024))

    assert "max_text_length" in error.message
    assert error.line == 1


def test_a_lower_text_limit_is_enforced_with_the_path() -> None:
    error = read_error(_with_text(2_000), max_text_length=1_000)

    assert error.message == "text longer than 1000 characters (max_text_length)"
    assert error.path == "/CSD/organizationDirectory/organization[1]/primaryName"


def test_a_lower_limit_applies_to_attributes_too() -> None:
    document = docs.csd(**docs.simple_offer()).replace(b'code="1000000001"', b'code="' + b"9" * 2_000 + b'"')

    error = read_error(document, max_text_length=1_000)

    assert error.path == "/CSD/organizationDirectory/organization[1]/otherID/@code"


def test_a_raised_text_limit_reads_longer_texts() -> None:
    size = 12_000_000
    entities = list(read_csd(_with_text(size), max_text_length=size))

    assert entities[0].name == "x" * size  # type: ignore[union-attr]


# -- compression -----------------------------------------------------------------------------------


def test_zip_bomb_like_member_fails_fast_on_its_content() -> None:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("bomb.xml", "w") as member,
    ):
        member.write(b"<CSD xmlns='urn:ihe:iti:csd:2013'><organizationDirectory><organization entityID='a'>")
        member.write(b"<primaryName>")
        chunk = b"0" * (1 << 20)
        for _ in range(64):  # 64 MB of text, a few dozen KB compressed
            member.write(chunk)
        member.write(b"</primaryName></organization></organizationDirectory></CSD>")
    assert len(buffer.getvalue()) < 1 << 20

    assert "max_text_length" in read_error(buffer.getvalue()).message


def test_truncated_gzip_is_a_data_error() -> None:
    compressed = gzip.compress(docs.csd(**docs.simple_offer()))

    error = read_error(compressed[: len(compressed) // 2])

    assert "truncated" in error.message


def test_corrupt_zip_is_a_data_error() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("doc.xml", docs.csd(**docs.simple_offer()))
    data = bytearray(buffer.getvalue())
    data[-30:] = b"\x00" * 30  # break the central directory

    assert "zip" in read_error(bytes(data)).message


def test_zip_without_xml_member_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", b"a")
        archive.writestr("b.txt", b"b")

    assert "none ends with .xml" in read_error(buffer.getvalue()).message


def test_empty_zip_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w"):
        pass

    assert read_error(buffer.getvalue()).message == "the zip archive is empty"
