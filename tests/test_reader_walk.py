"""The repeat rules of the reader's walk, element by element: what the model holds once takes the first
occurrence and keeps any further one as unmodeled (entities, addresses, geocodes, contact points,
locations, devices, services), contacts, patient types, ages and names take the last one and drop what
they do not model, and sequences keep every occurrence in document order."""

from __future__ import annotations

from rorclient.csd.reader import read_offer, read_values
from rorclient.models import ENTITY_ADAPTER, ExtraElement, Offer
from tests import _csd_docs as docs

CSD = "{urn:ihe:iti:csd:2013}"
CODE = 'codingScheme="X"'


def _names(extras: tuple[ExtraElement, ...]) -> list[str]:
    return [extra.name.removeprefix(CSD) for extra in extras]


def _contact() -> str:
    point = (
        f'<contactPoint><codedType code="1" {CODE}/><codedType code="2" {CODE}/><equipment>a</equipment>'
        "<equipment>b</equipment><purpose>p1</purpose><purpose>p2</purpose>"
        f'<extension type="e" urn="e"><confidentialityLevel code="c1" {CODE}/>'
        f'<confidentialityLevel code="c2" {CODE}/>{docs.record()}'
        f"{docs.record('2019-01-01T00:00:00')}</extension>"
        '<extension type="f" urn="f"/></contactPoint>'
    )
    return (
        f'<contact><name>first</name><name>last</name><function code="f1" {CODE}/>'
        f'<function code="f2" {CODE}/><unknown>dropped</unknown>'
        f'<confidentialityLevel code="1" {CODE}/><confidentialityLevel code="2" {CODE}/>'
        f"{point}{point}{docs.record()}</contact>"
    )


def _location() -> str:
    return (
        "<location><name>n1</name><name>n2</name>"
        f'<status code="0" {CODE}/><status code="1" {CODE}/>'
        "<geoCoordinates><latitude>1.5</latitude><latitude>2.5</latitude><longitude>3</longitude>"
        "<coordinateSystem>A</coordinateSystem><coordinateSystem>B</coordinateSystem></geoCoordinates>"
        f'<cityNumber code="93001" {CODE}/><cityNumber code="93002" {CODE}/>'
        f"{docs.record()}{docs.record('2019-01-01T00:00:00')}</location>"
    )


def _document() -> bytes:
    age = (
        '<patientTypeAgeMin><value>1</value><value>2</value><unit code="m" codingScheme="U"/>'
        "</patientTypeAgeMin>"
    )
    patients = docs.PATIENTS.replace("</patientsType>", f"{age}<unknown/></patientsType>")
    facility = (
        docs.facility(
            "f1",
            "93/1",
            eg="eg",
            services=["s1"],
            equipment=["d1"],
            before_extension=(
                "<primaryName>SECOND</primaryName><geocode><latitude>1</latitude><longitude>2</longitude>"
                "</geocode><geocode><latitude>3</latitude><longitude>4</longitude></geocode>"
            ),
            extension_start=f'<careMode code="first" {CODE}/>',
            extension_end=f"<sensitiveUnit>true</sensitiveUnit>{_contact()}{_location()}{_location()}"
            "<finalClosingDate>2030-01-01</finalClosingDate><finalClosingDate>not a date</finalClosingDate>",
        )
        .replace(docs.PATIENTS, patients)
        .replace("</facility>", f"{docs.record('2019-01-01T00:00:00')}</facility>")
    )
    device = (
        docs.device("d1", count=3)
        .replace("<nbInService>3</nbInService>", "<nbInService>3</nbInService><nbInService>x</nbInService>")
        .replace("</device>", f'<codedType code="047" {CODE}/></device>')
    )
    service = docs.service("s1").replace("</service>", f'<codedType code="999" {CODE}/></service>')
    organizations = [
        docs.organization("ej", "1000000001", extension="<dropZone>true</dropZone><dropZone>x</dropZone>"),
        docs.organization(
            "eg",
            "1000000002",
            parent="ej",
            before_parent="<primaryName>SECOND</primaryName>",
            extension=(
                "<useName>U1</useName><useName>U2</useName><dropZone>1</dropZone><dropZone>x</dropZone>"
                f"<closingDate>2030-01-01</closingDate><closingDate>x</closingDate>{_contact()}"
            ),
        ).replace("</organization>", '<parent entityID="ej"/></organization>'),
    ]
    return docs.csd(
        organizations=organizations,
        services=[service],
        facilities=[facility],
        devices=[device],
    )


def test_repeated_children_follow_each_element_types_rule() -> None:
    offer = read_offer(_document())
    (ej,) = offer.legal_entities
    (eg,) = offer.establishments
    (unit,) = offer.units
    (activity,) = offer.activities
    (equipment,) = offer.equipment

    # Entities: the first counts, the next ones are kept as unmodeled, in document order.
    assert _names(ej.extension_extras) == ["dropZone", "dropZone"]  # a legal entity has no drop zone
    assert (eg.name, eg.use_name, eg.drop_zone, str(eg.closing_date)) == (
        "ORGANISATION",
        "U1",
        True,
        "2030-01-01",
    )
    assert _names(eg.extras) == ["primaryName", "parent"]
    assert _names(eg.extension_extras) == ["useName", "dropZone", "closingDate"]
    assert (unit.name, unit.care_mode.code, unit.sensitive) == ("UNITE 93/1", "first", False)
    assert unit.geocode is not None and unit.geocode.latitude == 1
    assert _names(unit.extras) == ["primaryName", "geocode", "record"]
    assert _names(unit.extension_extras) == ["careMode", "sensitiveUnit", "location", "finalClosingDate"]
    assert str(unit.final_closing_date) == "2030-01-01"
    assert (activity.code.code, _names(activity.extras)) == ("037", ["codedType"])
    assert (equipment.code.code, equipment.count) == ("046", 3)
    assert (_names(equipment.extras), _names(equipment.extension_extras)) == (["codedType"], ["nbInService"])

    # Patient types and ages: the last counts, unknown children are dropped.
    assert (unit.patients.age_min.value, unit.patients.age_min.unit.code) == (2, "m")

    # Contacts: the last name, function and confidentiality; every contact point, each reading the
    # first of what it holds once and keeping the rest (a second extension included).
    (contact,) = eg.contacts
    assert (contact.name, contact.function.code if contact.function else None) == ("last", "f2")
    assert contact.confidentiality.code == "2"
    assert len(contact.telecoms) == 2
    telecom = contact.telecoms[0]
    assert (telecom.channel.code, telecom.value, telecom.purpose) == ("1", "a", "p1")
    assert telecom.confidentiality is not None and telecom.confidentiality.code == "c1"
    assert _names(telecom.extras) == ["codedType", "equipment", "purpose", "extension"]
    assert _names(telecom.extension_extras) == ["confidentialityLevel", "record"]

    # Locations and their coordinates: the first counts, the rest is kept.
    location = unit.location
    assert location is not None and location.status is not None and location.coordinates is not None
    assert (location.name, location.status.code, location.city.code) == ("n1", "0", "93001")
    assert (location.coordinates.latitude, location.coordinates.coordinate_system) == (1.5, "A")
    assert _names(location.coordinates.extras) == ["latitude", "coordinateSystem"]
    assert _names(location.extras) == ["name", "status", "cityNumber", "record"]


def test_the_path_without_models_reads_the_same_repeats() -> None:
    data = _document()
    validated = [ENTITY_ADAPTER.validate_python(fields) for _, fields in read_values(data)]
    assert Offer.of(validated) == read_offer(data)
