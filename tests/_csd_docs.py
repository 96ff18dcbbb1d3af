"""Small builders of CSD documents for the reader tests (strings in, bytes out; default namespace)."""

from __future__ import annotations

from collections.abc import Iterable

CSD_NS = "urn:ihe:iti:csd:2013"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
ID_NAT_STRUCT = "1.2.250.1.71.4.2.2"


def record(created: str = "2020-01-01T08:00:00", updated: str = "2020-02-01T08:00:00") -> str:
    return f'<record created="{created}" updated="{updated}" status="Active"/>'


def organization(
    entity: str,
    id_nat: str,
    *,
    parent: str | None = None,
    name: str = "ORGANISATION",
    before_parent: str = "",
    extension: str = "",
    rec: str | None = None,
) -> str:
    parent_xml = f'<parent entityID="{parent}"/>' if parent else ""
    extension_xml = f'<extension type="X" urn="X">{extension}</extension>' if extension else ""
    return (
        f'<organization entityID="{entity}">'
        f'<otherID code="{id_nat}" assigningAuthorityName="{ID_NAT_STRUCT}"/>'
        f'<codedType code="355" codingScheme="1.2.250.1.213.1.6.1.8"/>'
        f"<primaryName>{name}</primaryName>{before_parent}{parent_xml}{extension_xml}{rec or record()}"
        f"</organization>"
    )


def service(entity: str, code: str = "037", *, families: Iterable[str] = (), extension: str = "") -> str:
    family_xml = "".join(f'<actFamily code="{f}" codingScheme="1.2.250.1.213.3.3.61"/>' for f in families)
    extension_xml = (
        f'<extension type="X" urn="X">{family_xml}{extension}</extension>' if family_xml or extension else ""
    )
    return (
        f'<service entityID="{entity}"><codedType code="{code}" codingScheme="1.2.250.1.213.3.3.12">'
        f"Activité {code}</codedType>{extension_xml}{record()}</service>"
    )


PATIENTS = (
    "<patientsType><patientTypeAgeMin><value>16</value>"
    '<unit code="a" codingScheme="2.16.840.1.113883.6.8"/></patientTypeAgeMin>'
    "<patientTypeAgeMax><value>120</value>"
    '<unit code="a" codingScheme="2.16.840.1.113883.6.8"/></patientTypeAgeMax>' + record() + "</patientsType>"
)


def facility(
    entity: str,
    oi: str,
    *,
    eg: str | None,
    services: Iterable[str] = (),
    parent: str | None = None,
    equipment: Iterable[str] = (),
    level: str = "4",
    before_extension: str = "",
    extension_start: str = "",
    extension_end: str = "",
    care_mode: bool = True,
    sensitive: str = "false",
) -> str:
    service_xml = "".join(f'<service entityID="{s}"/>' for s in services)
    organizations = (
        f'<organizations><organization entityID="{eg}">{service_xml}</organization></organizations>'
    )
    care_mode_xml = '<careMode code="32" codingScheme="1.2.250.1.213.3.3.13">Consultation</careMode>'
    return (
        f'<facility entityID="{entity}"><otherID code="{oi}" assigningAuthorityName="X"/>'
        f'<codedType code="{level}" codingScheme="1.2.250.1.213.3.3.8"/>'
        f"<primaryName>UNITE {oi}</primaryName>{organizations if eg else ''}{before_extension}"
        f'<extension type="X" urn="X">{extension_start}'
        '<typeActivity code="01" codingScheme="1.2.250.1.213.3.3.17">MCO</typeActivity>'
        f"{care_mode_xml if care_mode else ''}{PATIENTS}"
        + "".join(f'<equipment entityID="{e}"/>' for e in equipment)
        + (f'<parentFacility entityID="{parent}"/>' if parent else "")
        + f"<sensitiveUnit>{sensitive}</sensitiveUnit>{extension_end}</extension>{record()}</facility>"
    )


def provider(
    entity: str, id_ps: str, *, units: Iterable[str] = (), egs: Iterable[str] = (), extra: str = ""
) -> str:
    orgs = "".join(f'<organization entityID="{e}"/>' for e in egs)
    facs = "".join(f'<facility entityID="{u}"/>' for u in units)
    return (
        f'<provider entityID="{entity}"><otherID code="{id_ps}" assigningAuthorityName="1.2.250.1.71.4.2.1"/>'
        '<codedType code="10" codingScheme="1.2.250.1.71.1.2.7">Médecin</codedType>'
        "<demographic><name><commonName>DUPONT Jean</commonName>"
        '<honorific code="DR" codingScheme="1.2.250.1.213.1.1.4.6"/>'
        "<forename>Jean</forename><surname>DUPONT</surname></name></demographic>"
        + (f"<organizations>{orgs}</organizations>" if orgs else "")
        + (f"<facilities>{facs}</facilities>" if facs else "")
        + extra
        + '<extension type="X" urn="X"><operationalStatus><exerciceModeInUnit code="S" codingScheme="X"/>'
        + record()
        + "</operationalStatus></extension>"
        + record()
        + "</provider>"
    )


def device(entity: str, code: str = "046", *, count: int | None = 2, extra: str = "") -> str:
    count_xml = f'<extension type="X" urn="X"><nbInService>{count}</nbInService></extension>' if count else ""
    return (
        f'<device entityID="{entity}"><otherID code="DEV-{entity}" assigningAuthorityName="X"/>{extra}'
        f'<codedType code="{code}" codingScheme="1.2.250.1.213.3.3.10">Equipement</codedType>'
        f"{count_xml}{record()}</device>"
    )


def directories(
    organizations: Iterable[str] = (),
    services: Iterable[str] = (),
    facilities: Iterable[str] = (),
    providers: Iterable[str] = (),
    devices: Iterable[str] = (),
) -> str:
    return (
        f"<organizationDirectory>{''.join(organizations)}</organizationDirectory>"
        f"<serviceDirectory>{''.join(services)}</serviceDirectory>"
        f"<facilityDirectory>{''.join(facilities)}</facilityDirectory>"
        f"<providerDirectory>{''.join(providers)}</providerDirectory>"
        f"<deviceDirectory>{''.join(devices)}</deviceDirectory>"
    )


def csd(**parts: Iterable[str]) -> bytes:
    """A ``csd:CSD`` document (CSD as the default namespace)."""
    return f'<CSD xmlns="{CSD_NS}">{directories(**parts)}</CSD>'.encode()


def lecture_response(**parts: Iterable[str]) -> bytes:
    return (
        f'<careServicesResponse xmlns="{CSD_NS}"><result><facilityNumber>1</facilityNumber>'
        f"<queryResult>{directories(**parts)}</queryResult></result></careServicesResponse>"
    ).encode()


def soap(body: bytes, *, header: str = "<soap:Header/>") -> bytes:
    """Wrap a body in a SOAP 1.2 envelope (dropping the body's XML declaration, if any)."""
    text = body.decode()
    if text.startswith("<?xml"):
        text = text[text.index("?>") + 2 :]
    envelope = (
        f'<soap:Envelope xmlns:soap="{SOAP12_NS}">{header}<soap:Body>{text}</soap:Body></soap:Envelope>'
    )
    return envelope.encode()


def simple_offer(**overrides: Iterable[str]) -> dict[str, Iterable[str]]:
    """EJ + EG + one service + one UE using it: the parts of a small valid document."""
    parts: dict[str, Iterable[str]] = {
        "organizations": [organization("ej", "1000000001"), organization("eg", "1000000002", parent="ej")],
        "services": [service("s1")],
        "facilities": [facility("f1", "93/1", eg="eg", services=["s1"])],
    }
    parts.update(overrides)
    return parts
