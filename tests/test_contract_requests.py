"""Contract: every request the client sends is valid per the official XSD/WSDL types and has the shape of
the PLATINES request templates (element names, namespaces, order, attributes) and of the samples."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from rorclient.models import CodedValue
from rorclient.ror import ClientOptions, HttpRequest, HttpResponse, RorClient, VihfSettings
from tests._shared import PLATINES, SCHEMAS, require_shared

SOAP = "http://www.w3.org/2003/05/soap-envelope"
CSD = "urn:ihe:iti:csd:2013"
ROR = "urn:asip:ror:2015"
OFFICIAL_WSDL = SCHEMAS / "ROR-v2.4.wsdl"
SUBJECT = "CN=CLIENT_TEST_RORN,OU=33333333333,O=GIP - TEST3012,ST=Paris (75),C=FR"

NOTIF_RESPONSE = (
    f'<s:Envelope xmlns:s="{SOAP}"><s:Body><r:TR-Notif-ListeEtablissementMajApresDate_Reponse '
    f'xmlns:r="{ROR}"/></s:Body></s:Envelope>'
).encode()
EMPTY_LECTURE = (
    f'<s:Envelope xmlns:s="{SOAP}"><s:Body><careServicesResponse xmlns="{CSD}"><result><queryResult>'
    "<organizationDirectory/><serviceDirectory/><facilityDirectory/><providerDirectory/><deviceDirectory/>"
    "</queryResult></result></careServicesResponse></s:Body></s:Envelope>"
).encode()


class Recorder:
    """A fake ROR that records every request and answers with an empty, valid response."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        body = NOTIF_RESPONSE if b"TR-Notif" in request.content else EMPTY_LECTURE
        return HttpResponse(content=body, headers={"Content-Type": "application/soap+xml"})

    def envelope(self) -> etree._Element:
        return etree.fromstring(self.requests[-1].content)


@pytest.fixture(params=["own", "official"], ids=["own-wsdl", "official-wsdl"])
def wsdl(request: pytest.FixtureRequest) -> Path | None:
    if request.param == "official":
        require_shared()
    return OFFICIAL_WSDL if request.param == "official" else None


def make_client(recorder: Recorder, wsdl: Path | None, vihf: VihfSettings | None = None) -> RorClient:
    return RorClient(
        "https://ror.test/ROR/0.1/CSD_ROR_Binding",
        name="contract",
        options=ClientOptions(wsdl=wsdl, vihf=vihf, handler=recorder),
    )


# ---------------------------------------------------------------------------------------------------------
# The calls under contract

CALLS: dict[str, Any] = {
    "notif": lambda c: c.changed_establishments(dt.datetime(2018, 5, 30, 7, 0)),
    "notif-filters": lambda c: c.changed_establishments(
        "2018-05-30T07:00:00", activity=["01", CodedValue(code="04")], patients="01"
    ),
    "lecture-eg": lambda c: c.read_establishment("1830000002"),
    "lecture-eg-all-params": lambda c: c.read_establishment(
        "1830000002",
        since=dt.datetime(2017, 9, 12),
        activity=("02", "03"),
        patients=("01",),
        restricted=True,
    ),
    "lecture-oi": lambda c: c.read_unit("93/12345"),
}


def body_payload(envelope: etree._Element) -> etree._Element:
    body = envelope.find(f"{{{SOAP}}}Body")
    assert body is not None and len(body) == 1
    return body[0]


@pytest.mark.parametrize("call", sorted(CALLS))
def test_request_bodies_are_valid_against_the_official_schemas(
    call: str, wsdl: Path | None, csd_schema: Any, ror_wsdl_schema: Any
) -> None:
    recorder = Recorder()
    with make_client(recorder, wsdl) as client:
        CALLS[call](client)
    payload = body_payload(recorder.envelope())
    schema = ror_wsdl_schema if str(payload.tag).startswith(f"{{{ROR}}}") else csd_schema
    schema.validate(etree.tostring(payload).decode())


@pytest.mark.parametrize("call", sorted(CALLS))
def test_requests_carry_the_soap12_action_of_their_operation(call: str, wsdl: Path | None) -> None:
    recorder = Recorder()
    with make_client(recorder, wsdl) as client:
        CALLS[call](client)
    request = recorder.requests[-1]
    action = "ror-update" if call.startswith("notif") else "ror-search"
    assert request.method == "POST"
    assert request.headers["content-type"] == (
        f'application/soap+xml; charset=UTF-8; action="urn:asip:ror:2015:stored-function:{action}"'
    )
    assert request.url == "https://ror.test/ROR/0.1/CSD_ROR_Binding"


# ---------------------------------------------------------------------------------------------------------
# PLATINES templates


def platines_templates() -> Iterator[etree._Element]:
    """The request envelopes of the PLATINES SoapUI projects, comments and placeholders stripped."""
    require_shared()
    parser = etree.XMLParser(remove_comments=True, resolve_entities=False, no_network=True)
    for project in sorted(PLATINES.glob("*.xml")):
        text = project.read_text(encoding="utf-8", errors="replace")
        for raw in re.findall(r"<con:request>(.*?)</con:request>", text, re.S):
            source = html.unescape(raw.replace("<![CDATA[", "").replace("]]>", "")).strip()
            if not source.startswith("<soap:Envelope"):
                continue
            try:
                yield etree.fromstring(source.encode("utf-8"), parser)
            except etree.XMLSyntaxError:
                continue


def shape(
    element: etree._Element, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], frozenset[str]]]:
    """Each element's path of qualified names and the names of its attributes, in document order."""
    here = (*path, str(element.tag))
    yield here, frozenset(element.attrib)
    for child in element.iterchildren(etree.Element):
        yield from shape(child, here)


def template_for(payload_tag: str, function: str | None) -> etree._Element:
    for template in platines_templates():
        payload = body_payload(template)
        if payload.tag != payload_tag:
            continue
        if function is None or payload.find(f".//{{{CSD}}}{function}") is not None:
            return template
    raise AssertionError(f"no PLATINES template for {payload_tag} {function}")


def assert_same_structure(ours: etree._Element, template: etree._Element) -> None:
    template_shape = list(shape(template))
    allowed = {path: attributes for path, attributes in template_shape}
    order = [path for path, _ in template_shape]
    ours_shape = list(shape(ours))
    for path, attributes in ours_shape:
        assert path in allowed, f"{'/'.join(path)} is not in the PLATINES template"
        assert attributes <= allowed[path], f"{'/'.join(path)}: attributes {sorted(attributes)}"
    positions = [order.index(path) for path, _ in ours_shape]
    assert positions == sorted(positions), "elements are not in the PLATINES template's order"


FUNCTIONS = {
    "notif": (f"{{{ROR}}}TR-Notif-ListeEtablissementsMajApresDate_Demande", None),
    "notif-filters": (f"{{{ROR}}}TR-Notif-ListeEtablissementsMajApresDate_Demande", None),
    "lecture-eg": (f"{{{CSD}}}careServicesRequest", "TR_Lecture-OffresSanteEtablissement"),
    "lecture-eg-all-params": (f"{{{CSD}}}careServicesRequest", "TR_Lecture-OffresSanteEtablissement"),
    "lecture-oi": (f"{{{CSD}}}careServicesRequest", "TR_Lecture-OffreSanteOrganisationInterne"),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_requests_have_the_structure_of_the_platines_templates(call: str, wsdl: Path | None) -> None:
    recorder = Recorder()
    with make_client(recorder, wsdl) as client:
        CALLS[call](client)
    ours = recorder.envelope()
    assert [child.tag for child in ours] == [f"{{{SOAP}}}Header", f"{{{SOAP}}}Body"]
    assert_same_structure(ours, template_for(*FUNCTIONS[call]))


def test_every_parameter_lands_where_platines_puts_it() -> None:
    recorder = Recorder()
    with make_client(recorder, None) as client:
        CALLS["lecture-eg-all-params"](client)
    demand = recorder.envelope().find(f".//{{{CSD}}}etablissementDemandeLecture")
    assert demand is not None
    assert [etree.QName(child).localname for child in demand] == [
        "id_etablissement",
        "dateRef",
        "typeActivity",
        "typeActivity",
        "supportedPatient",
        "restrictedOrganisation",
    ]
    identifier = demand[0]
    assert (identifier.get("code"), identifier.get("assigningAuthorityName")) == (
        "1830000002",
        "1.2.250.1.71.1.2.14",
    )
    assert demand[1].text == "2017-09-12T00:00:00"
    assert [(e.get("code"), e.get("codingScheme")) for e in demand[2:4]] == [
        ("02", "1.2.250.1.213.3.3.17"),
        ("03", "1.2.250.1.213.3.3.17"),
    ]
    assert (demand[4].get("code"), demand[4].get("codingScheme")) == ("01", "1.2.250.1.213.3.3.29")
    assert demand[5].text == "1"  # PLATINES sends restrictionOI as 0/1


def test_lecture_without_options_sends_restriction_zero_like_platines(samples_dir: Path) -> None:
    recorder = Recorder()
    with make_client(recorder, None) as client:
        client.read_establishment("1830000002")
    demand = recorder.envelope().find(f".//{{{CSD}}}etablissementDemandeLecture")
    assert demand is not None
    assert [etree.QName(child).localname for child in demand] == [
        "id_etablissement",
        "restrictedOrganisation",
    ]
    assert demand[1].text == "0"


def test_notif_parameters_match_the_sample(samples_dir: Path) -> None:
    recorder = Recorder()
    with make_client(recorder, None) as client:
        client.changed_establishments("2018-05-30T07:00:00", activity="04", patients="01")
    ours = body_payload(recorder.envelope())
    sample = etree.parse(str(samples_dir / "notif_request_body.xml")).getroot()

    def items(root: etree._Element) -> list[tuple[str, dict[str, str], str]]:
        return [(str(e.tag), dict(e.attrib), (e.text or "").strip()) for e in root.iter(etree.Element)]

    assert items(ours) == items(sample)


# ---------------------------------------------------------------------------------------------------------
# VIHF


@pytest.mark.parametrize("call", sorted(CALLS))
def test_requests_with_vihf_keep_a_valid_body(call: str, csd_schema: Any, ror_wsdl_schema: Any) -> None:
    recorder = Recorder()
    vihf = VihfSettings(profile="CU22", issuer=SUBJECT)
    with make_client(recorder, None, vihf) as client:
        CALLS[call](client)
    envelope = recorder.envelope()
    payload = body_payload(envelope)
    schema = ror_wsdl_schema if str(payload.tag).startswith(f"{{{ROR}}}") else csd_schema
    schema.validate(etree.tostring(payload).decode())
    header = envelope.find(f"{{{SOAP}}}Header")
    assert header is not None and len(header) == 1


def test_vihf_header_has_the_structure_of_the_platines_sample(samples_dir: Path) -> None:
    recorder = Recorder()
    with make_client(recorder, None, VihfSettings(profile="CU22", issuer=SUBJECT)) as client:
        client.read_establishment("1830000002")
    ours = recorder.envelope().find(f"{{{SOAP}}}Header")
    sample = (
        etree.parse(str(samples_dir / "soap_lecture_request_with_vihf.xml"))
        .getroot()
        .find(f"{{{SOAP}}}Header")
    )
    assert ours is not None and sample is not None
    assert list(shape(ours)) == list(shape(sample))
    values = {
        attribute.get("Name"): attribute.findtext("{urn:oasis:names:tc:SAML:2.0:assertion}AttributeValue")
        for attribute in ours.iter("{urn:oasis:names:tc:SAML:2.0:assertion}Attribute")
        if attribute.findtext("{urn:oasis:names:tc:SAML:2.0:assertion}AttributeValue")
    }
    assert values == {
        "VIHF_Version": "2.0",
        "Ressource_URN": "urn:ROR",
        "urn:oasis:names:tc:xspa:1.0:subject:subject-id": "rorclient",
    }
    profile = ours.find(".//{urn:hl7-org:v3}Profil_Utilisateur")
    assert profile is not None
    assert profile.get("code") == "CU22" and profile.get("codeSystem") == "1.2.250.1.213.1.6.1.66"
    issuer = ours.find(".//{urn:oasis:names:tc:SAML:2.0:assertion}Issuer")
    assert issuer is not None and issuer.text == SUBJECT


def test_without_vihf_the_header_is_empty_as_in_the_templates() -> None:
    recorder = Recorder()
    with make_client(recorder, None) as client:
        client.read_unit("93/12345")
    header = recorder.envelope().find(f"{{{SOAP}}}Header")
    assert header is not None and len(header) == 0


def test_the_structure_check_catches_misplaced_or_unknown_elements() -> None:
    recorder = Recorder()
    with make_client(recorder, None) as client:
        CALLS["lecture-eg-all-params"](client)
    template = template_for(*FUNCTIONS["lecture-eg-all-params"])
    swapped = recorder.envelope()
    demand = swapped.find(f".//{{{CSD}}}etablissementDemandeLecture")
    assert demand is not None
    demand.append(demand[0])  # id_etablissement moved last
    with pytest.raises(AssertionError, match="order"):
        assert_same_structure(swapped, template)
    foreign = recorder.envelope()
    etree.SubElement(foreign.find(f".//{{{CSD}}}etablissementDemandeLecture"), f"{{{ROR}}}dateRef")
    with pytest.raises(AssertionError, match="not in the PLATINES template"):
        assert_same_structure(foreign, template)
