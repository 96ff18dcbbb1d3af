"""Hypothesis strategies for the ROR models, and a hand-built sample offer.

The strategies build *consistent* offers: every reference points at an entity of the same offer, units
come parents first, activities and equipment are grouped by unit in unit order, and every model is in
the canonical form the CSD reader produces (the business id is the first identifier of its entity,
optional texts are non-empty, extras are serialised as the reader serialises them), so
that ``read(write(offer)) == offer`` is a property to test.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import strategies as st
from lxml import etree

from rorclient.codes import CSD_NS, Oid
from rorclient.csd.reader import read_offer
from rorclient.csd.writer import ID_NAT_PS_OID, WriterOptions
from rorclient.models import (
    Activity,
    Address,
    AddressLine,
    Age,
    CodedValue,
    Contact,
    Equipment,
    Establishment,
    ExtraElement,
    Geocode,
    Identifier,
    LegalEntity,
    Location,
    Offer,
    PatientsType,
    PersonName,
    Professional,
    RecordMeta,
    Telecom,
    Unit,
)

UNIT_ID_AUTHORITY = WriterOptions().unit_id_authority

# Characters XML 1.0 can carry (no surrogates, no C0 controls but tab/newline/CR, no U+FFFE/U+FFFF).
_XML_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn"), include_characters="\t\n\r")
texts = st.text(_XML_CHARS, min_size=1, max_size=12)
any_texts = st.text(_XML_CHARS, max_size=12)
codes = st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_.", min_size=1, max_size=5)


@st.composite
def datetimes(draw: st.DrawFn) -> dt.datetime:
    value = draw(st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2030, 12, 31)))
    if draw(st.booleans()):
        value = value.replace(microsecond=0)
    zone = draw(
        st.sampled_from(
            (
                None,
                None,
                None,
                dt.UTC,
                dt.timezone(dt.timedelta(hours=2)),
                dt.timezone(-dt.timedelta(hours=5, minutes=30)),
            )
        )
    )
    return value.replace(tzinfo=zone)


@st.composite
def records(draw: st.DrawFn) -> RecordMeta:
    created = draw(datetimes())
    updated = created + draw(st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=900)))
    return RecordMeta(
        created=created,
        updated=updated,
        status=draw(st.sampled_from(("Active", "Active", "Inactive"))),
        source_directory=draw(st.none() | st.just("urn:ror:93")),
        extras=draw(_subsequence(RECORD_EXTRAS)),
    )


def coded(scheme: str | None = None) -> st.SearchStrategy[CodedValue]:
    scheme_strategy = st.just(scheme) if scheme is not None else st.sampled_from(("", Oid.CARE_MODE, "1.2.3"))
    return st.builds(CodedValue, code=codes, coding_scheme=scheme_strategy, display=st.none() | texts)


@st.composite
def addresses(draw: st.DrawFn) -> Address:
    part_names = ("postCode", "cityName", "streetName", "buildingNumber", "streetType")
    lines = draw(
        st.lists(
            st.builds(
                AddressLine,
                text=st.none() | texts,
                parts=st.dictionaries(st.sampled_from(part_names), any_texts, max_size=3),
            ),
            min_size=1,
            max_size=2,
        )
    )
    record = draw(st.none() | records())
    return Address(
        type=draw(st.none() | st.sampled_from(("geographique", "postale"))),
        lines=tuple(lines),
        record=record,
        language=draw(st.none() | st.just("fr") | st.just("")),
        # A further extension only round-trips after the first one, which holds the record.
        extras=draw(_subsequence(ADDRESS_EXTRAS)) if record is not None else (),
        extension_extras=draw(_subsequence(LOCAL_EXTRAS)) if record is not None else (),
    )


@st.composite
def geocodes(draw: st.DrawFn) -> Geocode:
    degrees = st.decimals(min_value=-180, max_value=180, places=6, allow_nan=False, allow_infinity=False)
    return Geocode(
        latitude=draw(degrees),
        longitude=draw(degrees),
        coordinate_system=draw(st.sampled_from(("WGS84", "Lambert93"))),
        record=draw(records()),  # the writer must emit a record; a model without one cannot round-trip
        extras=draw(_subsequence(GEOCODE_EXTRAS)),
    )


@st.composite
def telecoms(draw: st.DrawFn) -> Telecom:
    with_extension = draw(st.booleans())
    return Telecom(
        channel=draw(coded(Oid.TELECOM_CHANNEL)),
        value=draw(st.none() | texts),
        purpose=draw(st.none() | texts),
        confidentiality=draw(coded(Oid.CONFIDENTIALITY)) if with_extension else None,
        record=draw(records()) if with_extension else None,
        extras=draw(_subsequence(CONTACT_POINT_EXTRAS)),
        extension_extras=draw(_subsequence(LOCAL_EXTRAS)) if with_extension else (),
    )


@st.composite
def contacts(draw: st.DrawFn) -> Contact:
    return Contact(
        name=draw(st.none() | texts),
        function=draw(st.none() | coded(Oid.CONTACT_FUNCTION)),
        nature=draw(st.none() | coded(Oid.CONTACT_NATURE)),
        description=draw(st.none() | texts),
        confidentiality=draw(coded(Oid.CONFIDENTIALITY)),
        telecoms=tuple(draw(st.lists(telecoms(), max_size=2))),
        record=draw(records()),
    )


@st.composite
def locations(draw: st.DrawFn) -> Location:
    return Location(
        name=draw(st.none() | texts),
        description=draw(st.none() | texts),
        status=draw(st.none() | coded(Oid.LOCATION_STATUS)),
        address=draw(st.none() | addresses()),
        coordinates=draw(st.none() | geocodes()),
        city=draw(coded(Oid.CITY)),
        record=draw(records()),
        extras=draw(_subsequence(LOCATION_EXTRAS)),
    )


@st.composite
def patients(draw: st.DrawFn) -> PatientsType:
    ages = st.integers(min_value=0, max_value=130)
    unit = st.sampled_from(
        (CodedValue(code="a", coding_scheme=Oid.UCUM), CodedValue(code="mo", coding_scheme=Oid.UCUM))
    )
    return PatientsType(
        supported=tuple(draw(st.lists(coded(Oid.SUPPORTED_PATIENT), max_size=2))),
        age_min=Age(value=draw(ages), unit=draw(unit)),
        age_max=Age(value=draw(ages), unit=draw(unit)),
        record=draw(records()),
    )


# --------------------------------------------------------------------------------------------------
# Extras: schema-valid elements the models do not hold, in canonical form, listed in XSD order
# --------------------------------------------------------------------------------------------------


def extra(
    local: str,
    text: str | None = None,
    children: tuple[tuple[str, dict[str, str], str | None], ...] = (),
    **attrib: str,
) -> ExtraElement:
    """A CSD element as the reader keeps it: read from a small document, in the reader's canonical form."""
    element = etree.Element(f"{{{CSD_NS}}}{local}", attrib, nsmap={"csd": CSD_NS})
    element.text = text
    for name, child_attrib, child_text in children:
        etree.SubElement(element, f"{{{CSD_NS}}}{name}", child_attrib).text = child_text
    fragment = etree.tostring(element, encoding="unicode").replace(f' xmlns:csd="{CSD_NS}"', "", 1)
    record = '<csd:record created="2020-01-01T00:00:00" updated="2020-01-01T00:00:00" status="Active"/>'
    document = (
        f'<csd:CSD xmlns:csd="{CSD_NS}"><csd:organizationDirectory><csd:organization entityID="urn:uuid:1">'
        f'<csd:otherID code="1" assigningAuthorityName="{Oid.ID_NAT_STRUCT}"/><csd:codedType code="1"/>'
        f"<csd:primaryName>x</csd:primaryName>{fragment}{record}</csd:organization></csd:organizationDirectory>"
        "<csd:serviceDirectory/><csd:facilityDirectory/><csd:providerDirectory/><csd:deviceDirectory/></csd:CSD>"
    )
    (kept,) = read_offer(document.encode()).legal_entities[0].extras
    return kept


def kept(fragment: str) -> ExtraElement:
    """An element of a sub-object (``record``, ``geocode``...) as the reader keeps it, from its XML
    (``csd:`` prefix): the reader serialises every kept element the same way, wherever it sits."""
    document = (
        f'<csd:CSD xmlns:csd="{CSD_NS}"><csd:organizationDirectory><csd:organization entityID="urn:uuid:1">'
        f'<csd:otherID code="1" assigningAuthorityName="{Oid.ID_NAT_STRUCT}"/><csd:codedType code="1"/>'
        '<csd:primaryName>x</csd:primaryName><csd:record created="2020-01-01T00:00:00" '
        f'updated="2020-01-01T00:00:00" status="Active">{fragment}</csd:record></csd:organization>'
        "</csd:organizationDirectory><csd:serviceDirectory/><csd:facilityDirectory/><csd:providerDirectory/>"
        "<csd:deviceDirectory/></csd:CSD>"
    )
    (element,) = read_offer(document.encode()).legal_entities[0].record.extras
    return element


_RECORD = '<csd:record created="2021-03-04T05:06:07" updated="2021-03-04T05:06:07" status="Active"/>'
RECORD_EXTRAS = (
    kept(
        '<csd:extension type="recordExtension" urn="urn:ror:reconciliation">'
        "<csd:recognation>ROR-93</csd:recognation><csd:comments>Fusion des UF 12 et 13</csd:comments>"
        "</csd:extension>"
    ),
)
ADDRESS_EXTRAS = (
    kept(f'<csd:extension type="addressExtension" urn="urn:ror:address">{_RECORD}</csd:extension>'),
)
GEOCODE_EXTRAS = (
    kept(
        '<csd:extension type="geoCodeExtension" urn="urn:ror:geocode">'
        f"<csd:coordonneesFiables>true</csd:coordonneesFiables>{_RECORD}</csd:extension>"
    ),
)
CONTACT_POINT_EXTRAS = (kept("<csd:certificate>MIIBszCCAVmgAwIBAgIUQ</csd:certificate>"),)
LOCATION_EXTRAS = (kept("<csd:calculatedDistance>2.5</csd:calculatedDistance>"),)
# What the XSD's base extension type allows before its own children: one un-namespaced element.
LOCAL_EXTRAS = (kept("<note>vérifié</note>"),)

_CODED = {"code": "1", "codingScheme": "1.2.250.1.213.3.3.1"}
ORGANIZATION_EXTRAS = (
    extra("language", code="fr", codingScheme="urn:ietf:bcp:47"),
    extra("specialization", "Spé", code="13", codingScheme="x"),
    extra("contactPoint", children=(("codedType", _CODED, "Mobile"), ("equipment", {}, "0600000000"))),
)
ORGANISATION_EXTENSION_EXTRAS = (
    extra("financialHelpType", code="01", codingScheme="1.2.250.1.213.3.3.33"),
    extra("accomodationFamily", "true"),
    extra("nbTemporarySocialeHelpPlace", "3"),
    extra("careWithoutPatientApproval", "false"),
    extra("levelRecourseORSAN", code="2", codingScheme="1.2.250.1.213.1.1.4.345"),
)
FACILITY_EXTRAS = (
    extra("language", code="fr", codingScheme="urn:ietf:bcp:47"),
    extra(
        "operatingHours",
        children=(
            ("openFlag", {}, "true"),
            ("dayOfTheWeek", {}, "1"),
            ("beginEffectiveDate", {}, "2018-01-15"),
        ),
    ),
)
FACILITY_EXTENSION_EXTRAS = (
    extra("receptionType", code="1", codingScheme="1.2.250.1.213.3.3.31"),
    extra("receptionMode", "true"),
    extra("facilityType", code="01", codingScheme="1.2.250.1.213.3.3.39"),
    extra("psychiatricSector", "83G01"),
    extra("psychiatricSector", "83G02"),
    extra("managementType", code="1", codingScheme="1.2.250.1.213.3.3.23"),
)


def _subsequence(options: tuple[ExtraElement, ...]) -> st.SearchStrategy[tuple[ExtraElement, ...]]:
    return st.lists(st.booleans(), min_size=len(options), max_size=len(options)).map(
        lambda keep: tuple(item for item, kept in zip(options, keep, strict=True) if kept)
    )


# --------------------------------------------------------------------------------------------------
# Entities and offers
# --------------------------------------------------------------------------------------------------


@st.composite
def _organization_fields(draw: st.DrawFn, business_id: str) -> dict[str, object]:
    others = draw(
        st.lists(st.builds(Identifier, value=codes, authority=st.just("1.2.250.1.213.3.2")), max_size=1)
    )
    return {
        "id": business_id,
        "other_ids": (Identifier(value=business_id, authority=Oid.ID_NAT_STRUCT), *others),
        "name": draw(any_texts),
        "other_names": tuple(draw(st.lists(any_texts, max_size=2))),
        "addresses": tuple(draw(st.lists(addresses(), max_size=2))),
        "contacts": tuple(draw(st.lists(contacts(), max_size=2))),
        "use_name": draw(st.none() | texts),
        "location": draw(st.none() | locations()),
        "creation_date": draw(st.none() | st.dates(dt.date(1900, 1, 1), dt.date(2030, 1, 1))),
        "closing_date": draw(st.none() | st.dates(dt.date(1990, 1, 1), dt.date(2030, 1, 1))),
        "closing_reason": draw(st.none() | coded(Oid.CLOSING_REASON)),
        "record": draw(records()),
        "extras": draw(_subsequence(ORGANIZATION_EXTRAS)),
        "extension_extras": draw(_subsequence(ORGANISATION_EXTENSION_EXTRAS)),
    }


@st.composite
def units_of(
    draw: st.DrawFn, establishment_id: str, region: str, first_number: int, parents: list[str]
) -> list[Unit]:
    """0-4 units of one establishment; each parent is an earlier unit of the same establishment."""
    units: list[Unit] = []
    for number in range(draw(st.integers(min_value=0, max_value=4))):
        unit_id = f"{region}/{first_number + number}"
        candidates = [*parents, *(unit.id for unit in units)]
        parent = draw(st.none() | st.sampled_from(candidates)) if candidates else None
        level = draw(st.sampled_from("12344"))
        types = [CodedValue(code=level, coding_scheme=Oid.UNIT_TYPE, display=draw(st.none() | texts))]
        if draw(st.booleans()):
            types.append(draw(coded()))
        units.append(
            Unit(
                id=unit_id,
                other_ids=(Identifier(value=unit_id, authority=UNIT_ID_AUTHORITY),),
                types=tuple(types),
                name=draw(any_texts),
                other_names=tuple(draw(st.lists(any_texts, max_size=1))),
                establishment_id=establishment_id,
                parent_unit_id=parent,
                addresses=tuple(draw(st.lists(addresses(), max_size=1))),
                contacts=tuple(draw(st.lists(contacts(), max_size=2))),
                geocode=draw(st.none() | geocodes()),
                activity_fields=tuple(draw(st.lists(coded(Oid.ACTIVITY_FIELD), min_size=1, max_size=2))),
                care_mode=draw(coded(Oid.CARE_MODE) | st.just(CodedValue(code="null", coding_scheme=""))),
                patients=draw(patients()),
                sensitive=draw(st.booleans()),
                creation_date=draw(st.none() | st.dates(dt.date(1990, 1, 1), dt.date(2030, 1, 1))),
                final_closing_date=draw(st.none() | st.dates(dt.date(1990, 1, 1), dt.date(2030, 1, 1))),
                location=draw(st.none() | locations()),
                record=draw(records()),
                extras=draw(_subsequence(FACILITY_EXTRAS)),
                extension_extras=draw(_subsequence(FACILITY_EXTENSION_EXTRAS)),
            )
        )
    return units


@st.composite
def offers(draw: st.DrawFn) -> Offer:
    """A consistent offer: 1-2 legal entities, 1-3 establishments, their units, activities, equipment
    and professionals."""
    legal_entities: list[LegalEntity] = []
    establishments: list[Establishment] = []
    units: list[Unit] = []
    for ej in range(draw(st.integers(min_value=1, max_value=2))):
        ej_id = f"1831{ej:06d}"
        legal_entities.append(
            LegalEntity(
                types=tuple(draw(st.lists(coded(Oid.LEGAL_STATUS), min_size=1, max_size=2))),
                **draw(_organization_fields(ej_id)),
            )
        )
        for eg in range(draw(st.integers(min_value=1, max_value=2))):
            eg_id = f"1832{ej:02d}{eg:04d}"
            establishments.append(
                Establishment(
                    legal_entity_id=ej_id,
                    types=tuple(draw(st.lists(coded(Oid.ESTABLISHMENT_CATEGORY), min_size=1, max_size=2))),
                    drop_zone=draw(st.none() | st.booleans()),
                    **draw(_organization_fields(eg_id)),
                )
            )
            units.extend(draw(units_of(eg_id, "93", 10_000 * (ej * 10 + eg + 1), [])))
    activities: list[Activity] = []
    equipment: list[Equipment] = []
    for unit in units:
        for code in draw(st.lists(codes, max_size=2, unique=True)):
            activities.append(
                Activity(
                    unit_id=unit.id,
                    code=CodedValue(
                        code=code, coding_scheme=Oid.OPERATIONAL_ACTIVITY, display=draw(st.none() | texts)
                    ),
                    act_families=tuple(draw(st.lists(coded(Oid.ACT_FAMILY), max_size=2))),
                    record=draw(records()),
                )
            )
        for code in draw(st.lists(codes, max_size=2, unique=True)):
            equipment.append(
                Equipment(
                    unit_id=unit.id,
                    code=CodedValue(code=code, coding_scheme=Oid.EQUIPMENT, display=draw(st.none() | texts)),
                    other_ids=tuple(
                        draw(st.lists(st.builds(Identifier, value=codes, authority=codes), max_size=1))
                    ),
                    count=draw(st.none() | st.integers(min_value=0, max_value=50)),
                    record=draw(records()),
                )
            )
    professionals: list[Professional] = []
    for number in range(draw(st.integers(min_value=0, max_value=2))):
        professional_id = f"8100000000{number}"
        professionals.append(
            Professional(
                id=professional_id,
                other_ids=(Identifier(value=professional_id, authority=ID_NAT_PS_OID),),
                types=tuple(draw(st.lists(coded(Oid.PROFESSION), min_size=1, max_size=2))),
                person=PersonName(
                    common_names=tuple(draw(st.lists(any_texts, min_size=1, max_size=2))),
                    forename=draw(st.none() | texts),
                    surname=draw(st.none() | texts),
                    honorific=draw(st.none() | coded("1.2.250.1.213.1.1.4.11")),
                ),
                establishment_ids=tuple(
                    draw(st.lists(st.sampled_from([e.id for e in establishments]), max_size=2, unique=True))
                ),
                unit_ids=tuple(
                    draw(st.lists(st.sampled_from([u.id for u in units]), max_size=2, unique=True))
                )
                if units
                else (),
                record=draw(records()),
            )
        )
    return Offer(
        legal_entities=tuple(legal_entities),
        establishments=tuple(establishments),
        units=tuple(units),
        activities=tuple(activities),
        equipment=tuple(equipment),
        professionals=tuple(professionals),
    )


# --------------------------------------------------------------------------------------------------
# A hand-built offer mirroring samples/lecture_response_full_body.xml
# --------------------------------------------------------------------------------------------------


def sample_offer() -> Offer:
    """EJ + EG (address, contact with telecom, location, dropZone) + pôle → UE + activity + equipment."""
    record = RecordMeta(created=dt.datetime(2018, 1, 15, 10), updated=dt.datetime(2018, 1, 15, 10))
    changed = RecordMeta(created=dt.datetime(2018, 1, 15, 10), updated=dt.datetime(2019, 3, 2, 8, 30))
    legal_entity = LegalEntity(
        id="1830000001",
        other_ids=(Identifier(value="1830000001", authority=Oid.ID_NAT_STRUCT),),
        types=(
            CodedValue(code="13", coding_scheme=Oid.LEGAL_STATUS),
            CodedValue(code="1200", coding_scheme=Oid.LEGAL_STATUS_GROUP),
        ),
        name="CENTRE HOSPITALIER EXEMPLE",
        record=record,
    )
    establishment = Establishment(
        id="1830000002",
        other_ids=(Identifier(value="1830000002", authority=Oid.ID_NAT_STRUCT),),
        legal_entity_id="1830000001",
        types=(CodedValue(code="355", coding_scheme=Oid.ESTABLISHMENT_CATEGORY),),
        name="CH EXEMPLE - SITE PRINCIPAL",
        addresses=(
            Address(
                type="geographique",
                lines=(
                    AddressLine(
                        parts={
                            "streetName": "RUE DE L'EXEMPLE",
                            "buildingNumber": "1",
                            "postCode": "83000",
                            "cityName": "TOULON",
                        }
                    ),
                ),
                record=record,
            ),
        ),
        contacts=(
            Contact(
                nature=CodedValue(code="01", coding_scheme=Oid.CONTACT_NATURE, display="Accueil"),
                confidentiality=CodedValue(
                    code="1", coding_scheme=Oid.CONFIDENTIALITY, display="Accès libre"
                ),
                telecoms=(
                    Telecom(
                        channel=CodedValue(
                            code="2", coding_scheme=Oid.TELECOM_CHANNEL, display="Téléphone fixe"
                        ),
                        value="0400000000",
                        confidentiality=CodedValue(code="1", coding_scheme=Oid.CONFIDENTIALITY),
                        record=record,
                    ),
                ),
                record=record,
            ),
        ),
        location=Location(
            status=CodedValue(code="3", coding_scheme=Oid.LOCATION_STATUS, display="Opérationnel"),
            coordinates=Geocode(latitude=Decimal("43.12"), longitude=Decimal("5.93"), record=record),
            city=CodedValue(code="83137", coding_scheme=Oid.CITY, display="Toulon"),
            record=record,
        ),
        drop_zone=True,
        creation_date=dt.date(1990, 1, 1),
        record=changed,
    )
    all_ages = PatientsType(age_min=Age(value=0), age_max=Age(value=120), record=record)
    pole = Unit(
        id="93/10000",
        other_ids=(Identifier(value="93/10000", authority=UNIT_ID_AUTHORITY),),
        types=(CodedValue(code="1", coding_scheme=Oid.UNIT_TYPE, display="Pôle"),),
        name="POLE MEDECINE",
        establishment_id="1830000002",
        activity_fields=(CodedValue(code="01", coding_scheme=Oid.ACTIVITY_FIELD),),
        care_mode=CodedValue(code="null", coding_scheme=""),
        patients=all_ages,
        record=record,
    )
    elementary = Unit(
        id="93/12345",
        other_ids=(Identifier(value="93/12345", authority=UNIT_ID_AUTHORITY),),
        types=(CodedValue(code="4", coding_scheme=Oid.UNIT_TYPE, display="Unité élémentaire"),),
        name="CONSULTATIONS DERMATOLOGIE",
        establishment_id="1830000002",
        parent_unit_id="93/10000",
        activity_fields=(CodedValue(code="01", coding_scheme=Oid.ACTIVITY_FIELD, display="MCO"),),
        care_mode=CodedValue(code="32", coding_scheme=Oid.CARE_MODE, display="Consultation (CS)"),
        patients=PatientsType(age_min=Age(value=16), age_max=Age(value=120), record=record),
        creation_date=dt.date(2018, 1, 15),
        record=record,
        extras=(FACILITY_EXTRAS[1],),
    )
    return Offer(
        legal_entities=(legal_entity,),
        establishments=(establishment,),
        units=(pole, elementary),
        activities=(
            Activity(
                unit_id="93/12345",
                code=CodedValue(code="037", coding_scheme=Oid.OPERATIONAL_ACTIVITY, display="Dermatologie"),
                record=record,
            ),
        ),
        equipment=(
            Equipment(
                unit_id="93/12345",
                code=CodedValue(code="046", coding_scheme=Oid.EQUIPMENT, display="Holter ECG"),
                count=2,
                record=record,
            ),
        ),
        professionals=(
            Professional(
                id="810000000001",
                other_ids=(Identifier(value="810000000001", authority=ID_NAT_PS_OID),),
                types=(CodedValue(code="10", coding_scheme=Oid.PROFESSION, display="Médecin"),),
                person=PersonName(common_names=("DUPONT Jean",), forename="Jean", surname="DUPONT"),
                establishment_ids=("1830000002",),
                unit_ids=("93/12345",),
                record=record,
            ),
        ),
    )
