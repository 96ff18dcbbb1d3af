"""The streaming CSD reader: samples, wrappers, compression, sources, extras, references."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rorclient.csd import _index
from rorclient.csd.reader import read_csd, read_offer
from rorclient.csd.writer import csd_bytes
from rorclient.errors import ConfigError, DataError, RemoteError
from rorclient.models import (
    Activity,
    Address,
    AddressLine,
    CodedValue,
    Entity,
    EntityKind,
    Equipment,
    Establishment,
    Geocode,
    LegalEntity,
    Location,
    Offer,
    Professional,
    RecordMeta,
    Telecom,
    Unit,
    UnitLevel,
)
from tests import _csd_docs as docs

CSD = "{urn:ihe:iti:csd:2013}"


def kinds_and_ids(entities: list[Entity]) -> list[tuple[str, str]]:
    return [(entity.kind.value, entity.id) for entity in entities]


@pytest.fixture(params=[False, True], ids=["in-memory index", "spilled index"])
def spill(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Run a test with the entityID index in dictionaries, then spilled to SQLite from the start."""
    if request.param:
        monkeypatch.setattr(_index, "DEFAULT_SPILL_THRESHOLD", 0)
    return bool(request.param)


# -- the reference samples -----------------------------------------------------------------------


def test_minimal_lecture_response_gives_linked_entities(samples_dir: Path) -> None:
    offer = read_offer(samples_dir / "lecture_response_body.xml")

    (ej,) = offer.legal_entities
    (eg,) = offer.establishments
    (unit,) = offer.units
    (activity,) = offer.activities
    assert (ej.id, eg.id, eg.legal_entity_id) == ("1830000001", "1830000002", "1830000001")
    assert [t.code for t in ej.types] == ["13", "1200"]
    assert ej.types[0].display == "Etablissement public communal d'hospitalisation"
    assert eg.creation_date == dt.date(2001, 1, 1)
    assert eg.record.updated == dt.datetime(2019, 3, 2, 8, 30)
    assert (unit.id, unit.establishment_id, unit.parent_unit_id) == ("93/12345", "1830000002", None)
    assert unit.level is UnitLevel.ELEMENTARY_UNIT
    assert unit.care_mode.code == "32"
    assert (unit.patients.age_min.value, unit.patients.age_max.value) == (0, 120)
    assert [f.code for f in unit.activity_fields] == ["01"]
    assert unit.sensitive is False
    assert (activity.unit_id, activity.code.code, activity.code.display) == (
        "93/12345",
        "037",
        "Dermatologie",
    )
    assert activity.id == "93/12345#037"
    assert offer.equipment == ()
    assert offer.professionals == ()


def test_full_lecture_response_gives_every_entity_in_order(samples_dir: Path) -> None:
    entities = list(read_csd(samples_dir / "lecture_response_full_body.xml"))

    assert kinds_and_ids(entities) == [
        ("legal_entity", "1830000001"),
        ("establishment", "1830000002"),
        ("unit", "93/10000"),
        ("unit", "93/12345"),
        ("activity", "93/12345#037"),
        ("equipment", "93/12345#046"),
    ]
    _, eg, pole, ue, activity, equipment = entities
    assert isinstance(eg, Establishment)
    assert isinstance(pole, Unit)
    assert isinstance(ue, Unit)
    assert eg.drop_zone is True
    assert eg.addresses[0].type == "geographique"
    assert eg.addresses[0].post_code == "83000"
    assert eg.addresses[0].lines[0].parts["streetName"] == "RUE DE L'EXEMPLE"
    assert eg.addresses[0].record is not None
    (contact,) = eg.contacts
    assert contact.nature is not None
    assert contact.nature.display == "Accueil"
    assert contact.confidentiality.code == "1"
    (telecom,) = contact.telecoms
    assert (telecom.channel.code, telecom.value) == ("2", "0400000000")
    assert telecom.confidentiality is not None
    assert telecom.record is not None
    assert eg.location is not None
    assert eg.location.city.code == "83137"
    assert eg.location.status is not None
    assert eg.location.status.code == "3"
    assert eg.location.coordinates is not None
    assert eg.location.coordinates.latitude == Decimal("43.12")
    assert eg.location.coordinates.coordinate_system == "WGS84"
    assert not eg.closed
    assert pole.level is UnitLevel.POLE
    assert pole.care_mode.code == "null"
    assert (ue.parent_unit_id, ue.establishment_id, ue.parent_id) == ("93/10000", "1830000002", "93/10000")
    assert ue.creation_date == dt.date(2018, 1, 15)
    assert [extra.name for extra in ue.extras] == [f"{CSD}operatingHours"]
    assert isinstance(activity, Activity)
    assert activity.unit_id == "93/12345"
    assert isinstance(equipment, Equipment)
    assert (equipment.unit_id, equipment.code.code, equipment.count) == ("93/12345", "046", 2)
    assert equipment.code.display == "Holter ECG"


def test_inline_error_raises_remote_error(samples_dir: Path) -> None:
    with pytest.raises(RemoteError) as caught:
        list(read_csd(samples_dir / "error_body.xml"))

    assert (caught.value.code, caught.value.message) == (405, "placeholder message")


# -- SOAP wrappers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", ["lecture_response_body.xml", "lecture_response_full_body.xml"])
def test_soap_wrapped_response_reads_like_the_bare_body(samples_dir: Path, sample: str) -> None:
    body = (samples_dir / sample).read_bytes()
    header = '<soap:Header><wsse:Security xmlns:wsse="urn:x">token</wsse:Security></soap:Header>'

    wrapped = read_offer(docs.soap(body, header=header))

    assert wrapped == read_offer(body)


def test_soap_wrapped_csd_document_reads_like_the_bare_document() -> None:
    document = docs.csd(**docs.simple_offer())

    assert read_offer(docs.soap(document)) == read_offer(document)


def test_soap_fault_with_ror_erreur_raises_its_code_and_message() -> None:
    fault = (
        f'<soap:Envelope xmlns:soap="{docs.SOAP12_NS}" xmlns:ror="urn:asip:ror:2015"><soap:Body>'
        "<soap:Fault><soap:Code><soap:Value>soap:Sender</soap:Value></soap:Code>"
        '<soap:Reason><soap:Text xml:lang="fr">Requête invalide</soap:Text></soap:Reason>'
        '<soap:Detail><ror:erreur code="405" message="nombre d\'UE incorrect"/></soap:Detail>'
        "</soap:Fault></soap:Body></soap:Envelope>"
    ).encode()

    with pytest.raises(RemoteError) as caught:
        list(read_csd(fault))

    assert (caught.value.code, caught.value.message) == (405, "nombre d'UE incorrect")


def test_soap_fault_without_detail_raises_its_reason() -> None:
    fault = (
        f'<soap:Envelope xmlns:soap="{docs.SOAP12_NS}"><soap:Body><soap:Fault>'
        "<soap:Code><soap:Value>soap:Receiver</soap:Value></soap:Code>"
        "<soap:Reason><soap:Text>Erreur interne</soap:Text></soap:Reason>"
        "</soap:Fault></soap:Body></soap:Envelope>"
    ).encode()

    with pytest.raises(RemoteError) as caught:
        list(read_csd(fault))

    assert (caught.value.code, caught.value.message) == (None, "Erreur interne")


def test_a_server_fault_read_from_a_document_stays_retryable_as_the_clients_does() -> None:
    """One fault decoder for the client and the reader: soap:Receiver is the server's (retryable)
    failure, soap:Sender the request's, whichever path read the answer."""
    from rorclient.errors import ServerFaultError, SoapFaultError
    from rorclient.ror._responses import find_fault

    for code, expected, retryable in (
        ("Receiver", ServerFaultError, True),
        ("Sender", SoapFaultError, False),
    ):
        fault = (
            f'<soap:Envelope xmlns:soap="{docs.SOAP12_NS}"><soap:Body><soap:Fault>'
            f"<soap:Code><soap:Value>soap:{code}</soap:Value></soap:Code>"
            "<soap:Reason><soap:Text>Erreur interne</soap:Text></soap:Reason>"
            "</soap:Fault></soap:Body></soap:Envelope>"
        ).encode()
        with pytest.raises(RemoteError) as caught:
            list(read_csd(fault))
        from_client = find_fault(fault, source="test")
        assert type(caught.value) is type(from_client) is expected
        assert caught.value.retryable is retryable and caught.value.soap_code == code  # type: ignore[attr-defined]
        assert str(caught.value) == str(from_client)


def test_soap_wrapped_inline_error_raises_remote_error(samples_dir: Path) -> None:
    with pytest.raises(RemoteError) as caught:
        list(read_csd(docs.soap((samples_dir / "error_body.xml").read_bytes())))

    assert caught.value.code == 405


def test_csd_root_document_reads_like_a_lecture_response() -> None:
    parts = docs.simple_offer()

    assert read_offer(docs.csd(**parts)) == read_offer(docs.lecture_response(**parts))


# -- sources and compression -----------------------------------------------------------------------


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


class _NonSeekable(io.RawIOBase):
    """A stream that can only be read forward, like an HTTP response body."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self._data.read(min(len(buffer), 1000))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda data: data, id="plain"),
        pytest.param(gzip.compress, id="gzip"),
        pytest.param(lambda data: _zip([("extraction.xml", data)]), id="zip"),
        pytest.param(
            lambda data: _zip([("README.txt", b"hello"), ("dir/ror.XML", data)]), id="zip-xml-member"
        ),
        pytest.param(lambda data: _zip([("extraction", data)]), id="zip-only-member"),
    ],
)
@pytest.mark.parametrize("as_source", ["path", "bytes", "stream", "non-seekable stream"])
def test_every_source_and_compression_gives_the_same_offer(
    samples_dir: Path, tmp_path: Path, encode: object, as_source: str
) -> None:
    original = (samples_dir / "lecture_response_full_body.xml").read_bytes()
    data = encode(original)  # type: ignore[operator]
    source: object
    if as_source == "path":
        source = tmp_path / "input.bin"
        source.write_bytes(data)
    elif as_source == "bytes":
        source = data
    elif as_source == "stream":
        source = io.BytesIO(data)
    else:
        source = io.BufferedReader(_NonSeekable(data))

    assert read_offer(source) == read_offer(original)  # type: ignore[arg-type]


@pytest.mark.parametrize("encoding", ["UTF-8", "ISO-8859-1", "UTF-16"])
def test_declared_encodings_are_honoured(encoding: str) -> None:
    parts = docs.simple_offer(
        organizations=[
            docs.organization("ej", "1000000001", name="CENTRE HOSPITALIER DE SÈTE"),
            docs.organization("eg", "1000000002", parent="ej"),
        ]
    )
    text = f'<?xml version="1.0" encoding="{encoding}"?>' + docs.csd(**parts).decode()

    offer = read_offer(text.encode(encoding))

    assert offer.legal_entities[0].name == "CENTRE HOSPITALIER DE SÈTE"


def test_progress_reports_the_bytes_read_from_the_source(tmp_path: Path) -> None:
    data = docs.csd(
        **docs.simple_offer(facilities=[docs.facility(f"f{i}", f"93/{i}", eg="eg") for i in range(2000)])
    )
    compressed = gzip.compress(data)
    path = tmp_path / "extraction.xml.gz"
    path.write_bytes(compressed)
    seen: list[int] = []

    entities = list(read_csd(path, progress=seen.append))

    assert len(entities) == 2 + 2000
    assert len(seen) > 1
    assert seen == sorted(seen)
    assert seen[-1] == len(compressed)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot open CSD file"):
        list(read_csd(tmp_path / "absent.xml"))


def test_text_stream_is_refused() -> None:
    with pytest.raises(TypeError, match="binary"):
        list(read_csd(io.StringIO("<CSD/>")))  # type: ignore[arg-type]


def test_errors_name_the_source(tmp_path: Path) -> None:
    path = tmp_path / "bad.xml"
    path.write_bytes(b"<CSD")

    with pytest.raises(DataError) as caught:
        list(read_csd(path, source_name="open-data/ror-93.xml"))

    assert caught.value.source == "open-data/ror-93.xml"


# -- mapping and extras ----------------------------------------------------------------------------


def test_unmodeled_elements_are_kept_in_document_order() -> None:
    price = (
        '<price><priceType code="1" codingScheme="X"/><priceUnit code="2" codingScheme="X"/>'
        '<price><amount>12.5</amount><currency code="EUR" codingScheme="X"/></price>'
        + docs.record()
        + "</price>"
    )
    credential = '<credential><codedType code="C" codingScheme="X"/><number>42</number></credential>'
    hours = (
        "<operatingHours><openFlag>true</openFlag><beginEffectiveDate>2020-01-01</beginEffectiveDate>"
        "</operatingHours>"
    )
    parts = docs.simple_offer(
        organizations=[
            docs.organization(
                "ej", "1000000001", before_parent=credential, extension="<dropZone>true</dropZone>"
            ),
            docs.organization(
                "eg",
                "1000000002",
                parent="ej",
                extension=f"<useName>SITE</useName>{price}<dropZone>1</dropZone>",
            ),
        ],
        services=[docs.service("s1", families=["F1"], extension="<note>x</note>")],
        facilities=[
            docs.facility(
                "f1",
                "93/1",
                eg="eg",
                services=["s1"],
                equipment=["d1"],
                before_extension=hours,
                extension_start="<mailBoxMSS>" + docs.record() + "</mailBoxMSS>",
                extension_end="<psychiatricSector>75G01</psychiatricSector>",
            )
        ],
        providers=[
            docs.provider(
                "p1",
                "810000000001",
                units=["f1"],
                egs=["eg"],
                extra="<specialty code='SM' codingScheme='X'/>",
            )
        ],
        devices=[docs.device("d1", extra="<unknownThing/>")],
    )

    offer = read_offer(docs.csd(**parts))

    (ej,) = offer.legal_entities
    (eg,) = offer.establishments
    (unit,) = offer.units
    (activity,) = offer.activities
    (equipment,) = offer.equipment
    (professional,) = offer.professionals
    assert [e.name for e in ej.extras] == [f"{CSD}credential"]
    assert ej.extras[0].xml == (
        '<csd:credential xmlns:csd="urn:ihe:iti:csd:2013"><csd:codedType code="C" codingScheme="X"/>'
        "<csd:number>42</csd:number></csd:credential>"
    )
    assert [e.name for e in ej.extension_extras] == [f"{CSD}dropZone"]  # a legal entity has no drop zone
    assert (eg.use_name, eg.drop_zone) == ("SITE", True)
    assert [e.name for e in eg.extension_extras] == [f"{CSD}price"]
    assert [e.name for e in unit.extras] == [f"{CSD}operatingHours"]
    assert [e.name for e in unit.extension_extras] == [f"{CSD}mailBoxMSS", f"{CSD}psychiatricSector"]
    assert [f.code for f in activity.act_families] == ["F1"]
    assert [e.name for e in activity.extension_extras] == [f"{CSD}note"]
    assert [e.name for e in equipment.extras] == [f"{CSD}unknownThing"]
    assert equipment.other_ids[0].value == "DEV-d1"
    assert [e.name for e in professional.extras] == [f"{CSD}specialty"]
    assert [e.name for e in professional.extension_extras] == [f"{CSD}operationalStatus"]


def test_extras_do_not_depend_on_prefixes_or_the_soap_envelope(samples_dir: Path) -> None:
    prefixed = (samples_dir / "lecture_response_full_body.xml").read_bytes()  # csd: prefix
    default_ns = prefixed.replace(b"<csd:", b"<").replace(b"</csd:", b"</").replace(b"xmlns:csd=", b"xmlns=")

    units = [read_offer(source).units[1] for source in (prefixed, default_ns, docs.soap(prefixed))]

    assert units[0].extras == units[1].extras == units[2].extras
    assert (
        units[0]
        .extras[0]
        .xml.startswith('<csd:operatingHours xmlns:csd="urn:ihe:iti:csd:2013"><csd:openFlag>true')
    )


def test_unqualified_extension_content_stays_unqualified() -> None:
    """The XSD lets an extension start with an element of no namespace (``xs:any ##local``)."""
    local = '<localThing xmlns="" level="2"><child>v</child></localThing>'
    parts = docs.simple_offer(facilities=[docs.facility("f1", "93/1", eg="eg", extension_start=local)])

    (unit,) = read_offer(docs.csd(**parts)).units

    (extra,) = unit.extension_extras
    assert extra.name == "localThing"
    assert extra.xml == '<localThing level="2"><child>v</child></localThing>'


def test_professional_links_to_units_and_establishments() -> None:
    parts = docs.simple_offer(providers=[docs.provider("p1", "810000000001", units=["f1"], egs=["eg"])])

    (professional,) = read_offer(docs.lecture_response(**parts)).professionals

    assert isinstance(professional, Professional)
    assert (professional.id, professional.unit_ids, professional.establishment_ids) == (
        "810000000001",
        ("93/1",),
        ("1000000002",),
    )
    assert professional.person.common_names == ("DUPONT Jean",)
    assert (professional.person.forename, professional.person.surname) == ("Jean", "DUPONT")
    assert professional.person.honorific is not None
    assert professional.person.honorific.code == "DR"
    assert professional.types[0].code == "10"


def test_time_zones_are_kept_and_naive_stays_naive() -> None:
    aware = docs.organization(
        "ej", "1000000001", rec=docs.record("2020-01-01T08:00:00+02:00", "2020-01-02T08:00:00Z")
    )
    parts = docs.simple_offer(organizations=[aware, docs.organization("eg", "1000000002", parent="ej")])

    offer = read_offer(docs.csd(**parts))

    ej_record = offer.legal_entities[0].record
    assert ej_record.created == dt.datetime(2020, 1, 1, 6, 0, tzinfo=dt.UTC)
    assert ej_record.created.utcoffset() == dt.timedelta(hours=2)
    assert ej_record.updated.tzinfo is not None
    assert offer.establishments[0].record.created.tzinfo is None


@pytest.mark.parametrize(
    ("text", "expected"), [("true", True), ("1", True), ("false", False), (" 0 ", False)]
)
def test_sensitive_unit_accepts_every_xs_boolean_form(text: str, expected: bool) -> None:
    parts = docs.simple_offer(facilities=[docs.facility("f1", "93/1", eg="eg", sensitive=text)])

    assert read_offer(docs.csd(**parts)).units[0].sensitive is expected


def test_closing_date_and_reason_make_an_establishment_closed() -> None:
    closing = (
        "<closingDate>2024-12-31</closingDate>"
        '<closingReason code="DEF" codingScheme="1.2.250.1.213.1.6.1.136"/>'
    )
    parts = docs.simple_offer(
        organizations=[
            docs.organization("ej", "1000000001"),
            docs.organization("eg", "1000000002", parent="ej", extension=closing),
        ]
    )

    (eg,) = read_offer(docs.csd(**parts)).establishments

    assert eg.closing_date == dt.date(2024, 12, 31)
    assert eg.closing_reason is not None
    assert eg.closing_reason.code == "DEF"
    assert eg.closed


# -- references ------------------------------------------------------------------------------------


def test_forward_parent_references_wait_for_their_parent(spill: bool) -> None:
    parts = docs.simple_offer(
        organizations=[
            docs.organization("eg", "1000000002", parent="ej"),
            docs.organization("ej", "1000000001"),
        ],
        facilities=[
            docs.facility("ue", "93/3", eg="eg", services=["s1"], parent="uf"),
            docs.facility("uf", "93/2", eg="eg", parent="pole", level="3"),
            docs.facility("other", "93/9", eg="eg", level="1"),
            docs.facility("pole", "93/1", eg="eg", level="1"),
        ],
    )

    entities = list(read_csd(docs.csd(**parts)))

    assert kinds_and_ids(entities) == [
        ("legal_entity", "1000000001"),
        ("establishment", "1000000002"),
        ("unit", "93/9"),
        ("unit", "93/1"),
        ("unit", "93/2"),
        ("unit", "93/3"),
        ("activity", "93/3#037"),
    ]
    units = {e.id: e for e in entities if isinstance(e, Unit)}
    assert units["93/3"].parent_unit_id == "93/2"
    assert units["93/2"].parent_unit_id == "93/1"
    assert units["93/1"].parent_unit_id is None
    assert isinstance(entities[1], Establishment)
    assert entities[1].legal_entity_id == "1000000001"


def test_a_service_shared_by_two_units_gives_one_activity_per_unit(spill: bool) -> None:
    parts = docs.simple_offer(
        services=[docs.service("s1", "037"), docs.service("s2", "120")],
        facilities=[
            docs.facility("f1", "93/1", eg="eg", services=["s1", "s2"]),
            docs.facility("f2", "93/2", eg="eg", services=["s1", "s1"]),
        ],
    )

    offer = read_offer(docs.csd(**parts))

    assert [a.id for a in offer.activities] == ["93/1#037", "93/1#120", "93/2#037"]


def test_a_device_shared_by_two_units_gives_equipment_for_each(spill: bool) -> None:
    parts = docs.simple_offer(
        facilities=[
            docs.facility("f1", "93/1", eg="eg", equipment=["d1", "d2"]),
            docs.facility("f2", "93/2", eg="eg", equipment=["d1", "d1"]),
        ],
        devices=[
            docs.device("d1", "046", count=3),
            docs.device("d2", "047", count=None),
            docs.device("lonely", "048"),
        ],
    )

    entities = list(read_csd(docs.csd(**parts)))

    equipment = [e for e in entities if isinstance(e, Equipment)]
    assert [(e.id, e.count) for e in equipment] == [("93/1#046", 3), ("93/2#046", 3), ("93/1#047", None)]
    assert entities[-3:] == equipment  # devices come last


def test_spilled_index_reads_a_document_like_the_in_memory_one(monkeypatch: pytest.MonkeyPatch) -> None:
    facilities = [
        docs.facility(f"f{i}", f"93/{i}", eg="eg", services=["s1"], parent=f"f{i + 1}" if i < 40 else None)
        for i in range(41)
    ]
    document = docs.csd(**docs.simple_offer(facilities=facilities))
    in_memory = list(read_csd(document))

    monkeypatch.setattr(_index, "DEFAULT_SPILL_THRESHOLD", 10)
    spilled = list(read_csd(document))

    assert spilled == in_memory
    assert [e.id for e in in_memory if isinstance(e, Unit)][:3] == ["93/40", "93/39", "93/38"]


def test_spilled_services_survive_hash_collisions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spilled services are found by a truncated hash: a collision must cost time, never correctness."""
    from rorclient.csd import _service_file

    monkeypatch.setattr(_index, "DEFAULT_SPILL_THRESHOLD", 0)
    monkeypatch.setattr(_service_file, "_HASH_MASK", 0)  # every entityID collides
    services = [docs.service(f"s{i}", f"{i:03d}") for i in range(30)]
    facilities = [docs.facility(f"f{i}", f"93/{i}", eg="eg", services=[f"s{29 - i}"]) for i in range(30)]

    offer = read_offer(docs.csd(**docs.simple_offer(services=services, facilities=facilities)))

    assert [a.id for a in offer.activities] == [f"93/{i}#{29 - i:03d}" for i in range(30)]
    with pytest.raises(DataError, match="duplicate service entityID 's7'"):
        list(read_csd(docs.csd(**docs.simple_offer(services=[*services, docs.service("s7")]))))


def test_offer_groups_entities_by_kind(samples_dir: Path) -> None:
    offer = read_offer(samples_dir / "lecture_response_full_body.xml")

    assert isinstance(offer, Offer)
    assert [e.kind for e in offer.entities()] == [
        EntityKind.LEGAL_ENTITY,
        EntityKind.ESTABLISHMENT,
        EntityKind.UNIT,
        EntityKind.UNIT,
        EntityKind.ACTIVITY,
        EntityKind.EQUIPMENT,
    ]
    assert isinstance(offer.legal_entities[0], LegalEntity)


def test_reading_stops_cleanly_when_the_consumer_stops(tmp_path: Path) -> None:
    path = tmp_path / "doc.xml"
    path.write_bytes(docs.csd(**docs.simple_offer()))
    iterator = read_csd(path)

    first = next(iterator)
    iterator.close()  # type: ignore[attr-defined]

    assert first.kind is EntityKind.LEGAL_ENTITY


def test_extensions_and_unmodeled_children_of_sub_objects_are_kept(spill: bool, csd_schema: Any) -> None:
    """record/extension (reconciliation comments), geocode/extension (coordonneesFiables), a
    contactPoint's certificate, location/calculatedDistance, address/@language and further address
    extensions: read, kept verbatim, written back valid, read again equal."""
    comments = (
        '<extension type="recordExtension" urn="urn:ror"><recognation>R93</recognation>'
        "<comments>Fusion des UF 12 et 13</comments></extension>"
    )
    commented = docs.record().replace("/>", f">{comments}</record>")
    geocode_extension = (
        '<extension type="geoCodeExtension" urn="urn:ror"><coordonneesFiables>false</coordonneesFiables>'
        f"{docs.record()}</extension>"
    )
    location = (
        '<location><address type="geographique" language="fr"><addressLine cityName="BOBIGNY"/>'
        f'<extension type="a" urn="a"><note xmlns="">in the first</note>{docs.record()}</extension>'
        f'<extension type="b" urn="b">{docs.record("2019-01-01T00:00:00")}</extension></address>'
        '<address><addressLine cityName="PANTIN"/></address>'
        "<geoCoordinates><latitude>48.9</latitude><longitude>2.4</longitude><coordinateSystem>WGS84"
        f"</coordinateSystem>{geocode_extension}{docs.record()}</geoCoordinates>"
        '<cityNumber code="93008" codingScheme="1.2.250.1.213.2.12"/>'
        f"<calculatedDistance>2.5</calculatedDistance>{docs.record()}</location>"
    )
    contact = (
        '<contact><confidentialityLevel code="1" codingScheme="1.2.250.1.213.1.1.4.344"/><contactPoint>'
        '<codedType code="3" codingScheme="1.2.250.1.213.3.3.1"/><equipment>a@b.fr</equipment>'
        "<certificate>MIIBszCCAVmgAwIBAgIUQ</certificate>"
        '<extension type="c" urn="c"><note xmlns="">ext</note>'
        '<confidentialityLevel code="2" codingScheme="1.2.250.1.213.1.1.4.344"/>'
        f"{docs.record()}</extension></contactPoint>"
        f"{docs.record()}</contact>"
    )
    parts = docs.simple_offer(
        organizations=[
            docs.organization("ej", "1000000001", rec=commented),
            docs.organization("eg", "1000000002", parent="ej", extension=f"{contact}{location}"),
        ],
        services=[docs.service("s1").replace(docs.record(), commented)],
    )

    offer = read_offer(docs.csd(**parts))

    (ej,) = offer.legal_entities
    (eg,) = offer.establishments
    (activity,) = offer.activities
    assert [e.name for e in ej.record.extras] == [f"{CSD}extension"]
    assert "<csd:comments>Fusion des UF 12 et 13</csd:comments>" in ej.record.extras[0].xml
    assert activity.record.extras == ej.record.extras  # a service's record goes through the index
    assert eg.location is not None and eg.location.address is not None
    assert eg.location.address.language == "fr"
    assert eg.location.address.record is not None
    assert eg.location.address.record.created == dt.datetime(2020, 1, 1, 8, 0)
    assert [e.name for e in eg.location.address.extras] == [f"{CSD}extension"]
    assert [e.xml for e in eg.location.address.extension_extras] == ["<note>in the first</note>"]
    assert eg.location.coordinates is not None
    assert "<csd:coordonneesFiables>false</csd:coordonneesFiables>" in eg.location.coordinates.extras[0].xml
    assert [e.name for e in eg.location.extras] == [f"{CSD}address", f"{CSD}calculatedDistance"]
    assert eg.location.extras[1].xml == (
        '<csd:calculatedDistance xmlns:csd="urn:ihe:iti:csd:2013">2.5</csd:calculatedDistance>'
    )
    assert eg.location.address.part("cityName") == "BOBIGNY"  # a repeated child: the first one counts
    (telecom,) = eg.contacts[0].telecoms
    assert [e.name for e in telecom.extras] == [f"{CSD}certificate"]
    assert [e.xml for e in telecom.extension_extras] == ["<note>ext</note>"]
    assert telecom.confidentiality is not None and telecom.confidentiality.code == "2"

    written = csd_bytes(offer)
    assert read_offer(written) == offer
    # The repeated location/address is kept, not made valid: the rest of the output is.
    errors = [str(e.path) for e in csd_schema.iter_errors(io.BytesIO(written))]
    assert all(path.endswith(":location") for path in errors), errors


def test_an_empty_address_language_survives_the_store_serialisation() -> None:
    address = Address(lines=(AddressLine(text="x"),), language="")
    assert Address.model_validate_json(address.model_dump_json()) == address


def test_entities_without_the_kept_sub_object_content_serialise_as_before() -> None:
    """Fields added to sub-objects are left out of the stored JSON while empty: stores written by an
    earlier version keep their content hashes, so an upgrade reports no change."""
    record = RecordMeta(created=dt.datetime(2020, 1, 1), updated=dt.datetime(2020, 1, 2))
    address = Address(lines=(AddressLine(text="x"),), record=record)
    geocode = Geocode(latitude=Decimal("1.5"), longitude=Decimal("2"), record=record)
    telecom = Telecom(channel=CodedValue(code="2"), value="0100000000")
    location = Location(city=CodedValue(code="93008"), record=record, address=address, coordinates=geocode)

    assert record.model_dump_json() == (
        '{"created":"2020-01-01T00:00:00","updated":"2020-01-02T00:00:00","status":"Active","source_directory":null}'
    )
    for model in (address, geocode, telecom, location):
        dumped = model.model_dump(mode="json")
        assert "extras" not in dumped and "language" not in dumped, type(model).__name__
