"""The sandbox's SOAP services: strict requests, faults, Lecture and Notif answers, access profiles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from lxml import etree

from rorclient.codes import Oid
from rorclient.models import CodedValue, Contact, Offer, RecordMeta, UnitLevel
from rorclient.sandbox import PLATINES_ESTABLISHMENT_ID, Sandbox, pytest_fixture
from rorclient.sandbox.dataset import REFERENCE_TIME, reconciliation_extension
from tests._sandbox_support import (
    CSD,
    NS,
    PLATINES,
    ROR,
    SOAP,
    body_child,
    envelope,
    fault_detail,
    http_client,
    lecture_body,
    notif_body,
    notif_ids,
    post,
    run_schematron,
    unit_body,
    unit_ids,
    vihf_header,
)

sandbox = pytest_fixture(establishments=12, seed=5, platines_fixture=True)

LECTURE_OPEN = (
    f'<csd:careServicesRequest xmlns:csd="{CSD}">'
    '<csd:function urn="urn:asip:ror:lecture:offreSoinEtablissement:2017" encapsulated="true">'
    "<csd:TR_Lecture-OffresSanteEtablissement><csd:etablissementDemandeLecture>"
)
LECTURE_CLOSE = (
    "</csd:etablissementDemandeLecture></csd:TR_Lecture-OffresSanteEtablissement>"
    "</csd:function></csd:careServicesRequest>"
)
ID = (
    f'<csd:id_etablissement code="{PLATINES_ESTABLISHMENT_ID}" assigningAuthorityName="1.2.250.1.71.1.2.14"/>'
)


@pytest.fixture(scope="module")
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with http_client(sandbox.pki) as c:
        yield c


def ask(sandbox: Sandbox, client: httpx.Client, body: str, *, header: str = "") -> etree._Element:
    answer = post(client, sandbox.soap_url, envelope(body, header=header))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/soap+xml")
    return body_child(answer)


def serialised(element: etree._Element) -> str:
    return etree.tostring(element, encoding="unicode")


# -- answers validate against the official schemas ---------------------------------------------------------


def test_lecture_answers_validate_against_the_xsd(
    sandbox: Sandbox, client: httpx.Client, csd_schema: Any
) -> None:
    for establishment in sandbox.establishment_ids():
        answer = ask(sandbox, client, lecture_body(establishment))
        csd_schema.validate(serialised(answer))
        assert answer.tag == f"{{{CSD}}}careServicesResponse"
        number = int(answer.findtext("csd:result/csd:facilityNumber", namespaces=NS) or "-1")
        assert number == len(unit_ids(answer, elementary_only=True))  # RG_ALIM_019
        organizations = answer.findall(
            "csd:result/csd:queryResult/csd:organizationDirectory/csd:organization", NS
        )
        legal = [o for o in organizations if o.find("csd:parent", NS) is None]
        sites = [o for o in organizations if o.find("csd:parent", NS) is not None]
        assert len(legal) == 1 and len(sites) == 1  # RG_ALIM_018
        assert sites[0].find("csd:parent", NS).get("entityID") == legal[0].get("entityID")
        for facility in answer.iterfind(
            ".//csd:facilityDirectory/csd:facility", NS
        ):  # each unit linked to the EG
            links = facility.findall("csd:organizations/csd:organization", NS)
            assert [link.get("entityID") for link in links] == [sites[0].get("entityID")]


def test_notif_answers_validate_against_the_wsdl_schema(
    sandbox: Sandbox, client: httpx.Client, ror_wsdl_schema: Any
) -> None:
    answer = ask(sandbox, client, notif_body("2001-01-01T00:00:00"))
    ror_wsdl_schema.validate(serialised(answer))
    assert answer.tag == f"{{{ROR}}}TR-Notif-ListeEtablissementMajApresDate_Reponse"
    ids = notif_ids(answer)
    assert sorted(ids) == sorted(sandbox.establishment_ids())
    assert int(answer.findtext("csd:result", namespaces=NS) or "0") == len(ids)
    for item in answer.findall("csd:etablissementReponseNotif", NS):
        assert item.find("csd:id_etablissement", NS).get("assigningAuthorityName") == Oid.ID_NAT_STRUCT
        assert item.findall("csd:typeActivity", NS)


def test_inline_error_for_an_unknown_establishment_or_unit(
    sandbox: Sandbox, client: httpx.Client, csd_schema: Any
) -> None:
    for body, message in (
        (lecture_body("1990000001"), "unknown establishment"),
        (unit_body("93/nope"), "unknown organisation"),
    ):
        answer = ask(sandbox, client, body)
        csd_schema.validate(serialised(answer))
        error = answer.find("csd:error", NS)
        assert error is not None and error.get("code") == "404" and message in (error.get("message") or "")
    assert sandbox.stats()["inline_errors"] >= 2


# -- strict requests --------------------------------------------------------------------------------------

INVALID = {
    "not XML": "<csd:careServicesRequest",
    "wrong urn": LECTURE_OPEN.replace(":2017", ":2016") + ID + LECTURE_CLOSE,
    "encapsulated false": LECTURE_OPEN.replace('encapsulated="true"', 'encapsulated="false"')
    + ID
    + LECTURE_CLOSE,
    "missing encapsulated": LECTURE_OPEN.replace(' encapsulated="true"', "") + ID + LECTURE_CLOSE,
    "missing id": LECTURE_OPEN + "<csd:dateRef>2020-01-01T00:00:00</csd:dateRef>" + LECTURE_CLOSE,
    "order": LECTURE_OPEN + "<csd:dateRef>2020-01-01T00:00:00</csd:dateRef>" + ID + LECTURE_CLOSE,
    "one-digit hour": LECTURE_OPEN + ID + "<csd:dateRef>2018-05-30T7:00:00</csd:dateRef>" + LECTURE_CLOSE,
    "bad date": LECTURE_OPEN + ID + "<csd:dateRef>2018-02-30T07:00:00</csd:dateRef>" + LECTURE_CLOSE,
    "empty date": LECTURE_OPEN + ID + "<csd:dateRef></csd:dateRef>" + LECTURE_CLOSE,
    "bad boolean": LECTURE_OPEN
    + ID
    + "<csd:restrictedOrganisation>oui</csd:restrictedOrganisation>"
    + LECTURE_CLOSE,
    "two ids": LECTURE_OPEN + ID + ID + LECTURE_CLOSE,
    "stray text": LECTURE_OPEN + ID + "hello" + LECTURE_CLOSE,
    "unknown element": LECTURE_OPEN + ID + "<csd:region>11</csd:region>" + LECTURE_CLOSE,
    "unqualified params": f'<ror:TR-Notif-ListeEtablissementsMajApresDate_Demande xmlns:ror="{ROR}"><params>'
    "<dateRef>2020-01-01T00:00:00</dateRef></params></ror:TR-Notif-ListeEtablissementsMajApresDate_Demande>",
    "codedtype without scheme": notif_body("2020-01-01T00:00:00").replace(
        "</csd:dateRef>", '</csd:dateRef><csd:typeActivity code="01"/>'
    ),
    "unknown root": f'<csd:CSD xmlns:csd="{CSD}"/>',
    "two body elements": lecture_body("1") + lecture_body("2"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_requests_get_a_sender_fault(
    sandbox: Sandbox, client: httpx.Client, ror_wsdl_schema: Any, case: str
) -> None:
    body = INVALID[case]
    data = envelope(body) if case != "not XML" else body.encode()
    answer = post(client, sandbox.soap_url, data)
    assert answer.status_code == 500
    code, error, message = fault_detail(answer)
    assert (code, error) == ("soap:Sender", 400)
    assert message.startswith("invalid request")
    ror_wsdl_schema.validate(serialised(body_child(answer).find("soap:Detail/ror:erreur", NS)))


def test_a_dtd_is_refused(sandbox: Sandbox, client: httpx.Client) -> None:
    data = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]>' + envelope(lecture_body("&e;"))
    code, error, message = fault_detail(post(client, sandbox.soap_url, data))
    assert (code, error) == ("soap:Sender", 400) and "DTD" in message


def test_expression_requests_are_not_supported(sandbox: Sandbox, client: httpx.Client) -> None:
    body = (
        f'<csd:careServicesRequest xmlns:csd="{CSD}">'
        '<csd:expression encapsulated="true" content-type="text/xml"/></csd:careServicesRequest>'
    )
    assert fault_detail(post(client, sandbox.soap_url, envelope(body)))[:2] == ("soap:Sender", 501)


def test_soap_1_1_gets_a_version_mismatch(sandbox: Sandbox, client: httpx.Client) -> None:
    data = f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>{lecture_body("1")}</s:Body></s:Envelope>'
    assert fault_detail(post(client, sandbox.soap_url, data.encode()))[0] == "soap:VersionMismatch"
    answer = client.post(
        sandbox.soap_url, content=envelope(lecture_body("1")), headers={"Content-Type": "text/xml"}
    )
    assert answer.status_code == 415


def test_must_understand_headers_are_honoured(sandbox: Sandbox, client: httpx.Client) -> None:
    header = f'<x:Routing xmlns:x="urn:example" xmlns:soap="{SOAP}" soap:mustUnderstand="true"/>'
    answer = post(client, sandbox.soap_url, envelope(lecture_body("1"), header=header))
    assert fault_detail(answer)[0] == "soap:MustUnderstand"


def test_lenient_dates_accept_what_platines_sends() -> None:
    with Sandbox(establishments=2, lenient_dates=True) as sb, http_client(sb.pki) as c:
        answer = ask(sb, c, notif_body("2018-05-30T7:00:00"))
        assert len(notif_ids(answer)) == 2
        answer = ask(sb, c, notif_body(""))
        assert len(notif_ids(answer)) == 2


def test_date_times_with_a_zone_are_converted_to_paris_time(sandbox: Sandbox, client: httpx.Client) -> None:
    newest = REFERENCE_TIME.replace(tzinfo=ZoneInfo("Europe/Paris"))
    assert (
        notif_ids(
            ask(sandbox, client, notif_body(newest.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")))
        )
        == []
    )


# -- Lecture semantics ----------------------------------------------------------------------------------


def test_activity_and_public_filters(sandbox: Sandbox, client: httpx.Client) -> None:
    offer = sandbox.offer(PLATINES_ESTABLISHMENT_ID)
    assert offer is not None
    answer = ask(sandbox, client, lecture_body(PLATINES_ESTABLISHMENT_ID, fields=["02", "03"]))
    assert len(unit_ids(answer, elementary_only=True)) == 2
    codes = {t.get("code") for t in answer.iterfind(".//csd:facility/csd:extension/csd:typeActivity", NS)}
    assert codes == {"02", "03"}
    answer = ask(sandbox, client, lecture_body(PLATINES_ESTABLISHMENT_ID, fields=["04"], publics=["02"]))
    assert unit_ids(answer) == {"93/900001", "93/900005"}  # the MS unit for PH, and its pôle
    answer = ask(sandbox, client, lecture_body(PLATINES_ESTABLISHMENT_ID, fields=["01"]))
    assert unit_ids(answer) == {"93/900001", "93/900002"}  # the UE and its pôle
    pole = answer.xpath(
        ".//csd:facility[csd:otherID/@code='93/900001']/csd:extension/csd:typeActivity", namespaces=NS
    )
    assert [t.get("code") for t in pole] == ["01"]  # the pôle shows only the requested field
    answer = ask(sandbox, client, lecture_body(PLATINES_ESTABLISHMENT_ID, fields=["05"]))
    assert unit_ids(answer) == set() and answer.findtext(".//csd:facilityNumber", namespaces=NS) == "0"
    assert (
        len(answer.findall(".//csd:organizationDirectory/csd:organization", NS)) == 2
    )  # RG_ALIM_018: EJ and EG even without UE


def test_lecture_date_ref_keeps_units_updated_after_it(sandbox: Sandbox, client: httpx.Client) -> None:
    establishment = next(i for i in sandbox.establishment_ids() if i != PLATINES_ESTABLISHMENT_ID)
    offer = sandbox.offer(establishment)
    assert offer is not None
    cut = sorted(unit.record.updated for unit in offer.units)[len(offer.units) // 2]
    answer = ask(sandbox, client, lecture_body(establishment, date_ref=cut.isoformat()))
    updated = {unit.id for unit in offer.units if unit.record.updated > cut}
    returned = unit_ids(answer)
    assert updated <= returned
    parents = {unit.id: unit.parent_unit_id for unit in offer.units}
    for unit_id in returned - updated:  # the rest are ancestors kept so that the tree holds
        assert any(_ancestor(parents, child, unit_id) for child in updated)
    with Sandbox(establishments=3, seed=5, lecture_date_ref="ignore") as sb, http_client(sb.pki) as c:
        answer = ask(sb, c, lecture_body(establishment, date_ref="2100-01-01T00:00:00"))
        assert unit_ids(answer) == {unit.id for unit in offer.units}


def _ancestor(parents: dict[str, str | None], child: str, candidate: str) -> bool:
    current = parents.get(child)
    while current is not None:
        if current == candidate:
            return True
        current = parents.get(current)
    return False


def test_restricted_organisation_drops_unit_details(
    sandbox: Sandbox, client: httpx.Client, csd_schema: Any
) -> None:
    establishment = next(
        i
        for i in sandbox.establishment_ids()
        if (o := sandbox.offer(i)) and o.equipment and any(u.location for u in o.units)
    )
    full = ask(sandbox, client, lecture_body(establishment, restricted="0"))
    restricted = ask(sandbox, client, lecture_body(establishment, restricted="true"))
    csd_schema.validate(serialised(restricted))
    assert full.findall(".//csd:facility/csd:extension/csd:location", NS)
    assert full.findall(".//csd:device", NS)
    assert not restricted.findall(".//csd:facility/csd:extension/csd:location", NS)
    assert not restricted.findall(".//csd:device", NS)
    assert unit_ids(full) == unit_ids(restricted)
    for facility in restricted.iterfind(".//csd:facility", NS):  # careMode, activity, patients stay
        assert facility.find("csd:extension/csd:careMode", NS) is not None
        assert facility.find("csd:extension/csd:patientsType", NS) is not None
    # PLATINES' restrictionOI Schematron; three of its asserts demand data this establishment need not
    # have (a telecom, record comments, a closed unit) rather than checking what the server removed.
    schema = PLATINES / "schematron" / "avecRestrictionOI.sch"
    presence = ["//*:contactPoint", "//*:comments", "//*:finalClosingDate"]
    assert run_schematron(schema, restricted.getroottree(), ignore=presence) == []


def test_reading_one_unit_returns_its_subtree_ancestors_and_owners(
    sandbox: Sandbox, client: httpx.Client, csd_schema: Any
) -> None:
    establishment, offer = next(
        (i, o)
        for i in sandbox.establishment_ids()
        if (o := sandbox.offer(i)) and any(u.parent_unit_id for u in o.units)
    )
    parents = {unit.id: unit.parent_unit_id for unit in offer.units}
    with_parent = [u for u in offer.units if u.parent_unit_id]
    middle = next((u for u in with_parent if u.id in parents.values()), with_parent[0])
    answer = ask(sandbox, client, unit_body(middle.id))
    csd_schema.validate(serialised(answer))
    expected = {
        u
        for u in parents
        if u == middle.id or _ancestor(parents, u, middle.id) or _ancestor(parents, middle.id, u)
    }
    assert unit_ids(answer) == expected
    assert len(answer.findall(".//csd:organizationDirectory/csd:organization", NS)) == 2
    assert establishment in {o.get("code") for o in answer.iterfind(".//csd:organization/csd:otherID", NS)}


# -- access profiles ------------------------------------------------------------------------------------


def _commented(record: RecordMeta) -> RecordMeta:
    return record.model_copy(update={"extras": (reconciliation_extension("vérifié", recognation="R"),)})


def _sensitive_variant(offer: Offer) -> Offer:
    """The offer with a sensitive elementary unit, restricted contacts, a drop zone, and reconciliation
    comments on the establishment, every unit and every unit's patientsType."""
    restricted = CodedValue(code="3", coding_scheme=Oid.CONFIDENTIALITY)
    unit = next(u for u in offer.units if u.level is UnitLevel.ELEMENTARY_UNIT)
    contact = Contact(
        nature=CodedValue(code="04", coding_scheme=Oid.CONTACT_NATURE),
        confidentiality=restricted,
        record=unit.record,
    )
    units = tuple(
        u.model_copy(update={"sensitive": True, "contacts": (contact,)})
        if u is unit
        else u.model_copy(
            update={
                "record": _commented(u.record),
                "patients": u.patients.model_copy(update={"record": _commented(u.patients.record)}),
            }
        )
        for u in offer.units
    )
    establishment = offer.establishments[0]
    contacts = (
        *establishment.contacts,
        contact.model_copy(
            update={"confidentiality": CodedValue(code="2", coding_scheme=Oid.CONFIDENTIALITY)}
        ),
    )
    return offer.model_copy(
        update={
            "units": units,
            "establishments": (
                establishment.model_copy(
                    update={
                        "drop_zone": True,
                        "contacts": contacts,
                        "record": _commented(establishment.record),
                    }
                ),
            ),
        }
    )


@pytest.fixture(scope="module")
def sensitive(sandbox: Sandbox) -> str:
    offer = sandbox.offer(PLATINES_ESTABLISHMENT_ID)
    assert offer is not None
    sandbox.put_offer(_sensitive_variant(offer))
    return PLATINES_ESTABLISHMENT_ID


def _levels(answer: etree._Element) -> set[str]:
    return {c.get("code") for c in answer.iterfind(".//csd:confidentialityLevel", NS)}


@pytest.mark.parametrize(("code", "profile"), [("CU23", 0), ("CU22", 1), ("CU20", 2), ("CU19", 3)])
def test_vihf_profiles_filter_what_they_must(
    sandbox: Sandbox, client: httpx.Client, sensitive: str, csd_schema: Any, code: str, profile: int
) -> None:
    answer = ask(sandbox, client, lecture_body(sensitive), header=vihf_header(code))
    csd_schema.validate(serialised(answer))
    sensitive_units = answer.xpath(".//csd:facility[csd:extension/csd:sensitiveUnit='true']", namespaces=NS)
    drop_zone = answer.findall(".//csd:dropZone", NS)
    commented = answer.xpath("//csd:record[csd:extension/csd:comments]/..", namespaces=NS)
    if profile == 1:
        assert sensitive_units and drop_zone and _levels(answer) >= {"1", "2", "3"}
    else:
        assert not sensitive_units and not drop_zone
        assert _levels(answer) <= ({"1"} if profile in (0, 3) else {"1", "2"})
    if profile in (1, 2):
        assert len(commented) > 1
    elif profile == 0:
        assert not commented
        assert answer.findall(".//csd:record/csd:extension/csd:recognation", NS)  # only comments go
    else:  # comments stay on organisations and MS-only units
        assert commented
        for owner in commented:
            facility = owner.xpath("ancestor-or-self::csd:facility[1]", namespaces=NS)
            codes = {
                c for f in facility for c in f.xpath("csd:extension/csd:typeActivity/@code", namespaces=NS)
            }
            assert (owner.tag == f"{{{CSD}}}organization" and not facility) or codes <= {"04"}
    # The PLATINES Schematron of the profile, but for three checks: one contradicts the XSD (which requires
    # sensitiveUnit in the extension of every internal organisation, not only of elementary units), two
    # target what the synthetic data lack (an activity on every pôle/service/UF, providers' status).
    ignore = [
        ".[*:extension/*:sensitiveUnit]/*:codedType[not(@code='4')]",
        "*:organizations/*:organization/*:service/@entityID",
        "count(*:extension/*:operationalStatus)=1",
    ]
    schema = PLATINES / "schematron" / f"filtre_profil{profile}.sch"
    assert run_schematron(schema, answer.getroottree(), ignore=ignore) == []


def test_the_default_profile_applies_without_a_token(sensitive: str) -> None:
    with Sandbox(establishments=1, platines_fixture=True, default_profile=0) as sb, http_client(sb.pki) as c:
        offer = sb.offer(sensitive)
        assert offer is not None
        sb.put_offer(_sensitive_variant(offer))
        answer = ask(sb, c, lecture_body(sensitive))
        assert _levels(answer) == {"1"} and not answer.findall(".//csd:dropZone", NS)
        assert "93/900002" in unit_ids(ask(sb, c, lecture_body(sensitive), header=vihf_header("CU22")))


def test_an_unknown_profile_is_refused(sandbox: Sandbox, client: httpx.Client) -> None:
    answer = post(client, sandbox.soap_url, envelope(lecture_body("1"), header=vihf_header("CU99")))
    assert fault_detail(answer)[:2] == ("soap:Sender", 403)


# -- Notif semantics ------------------------------------------------------------------------------------


def test_notif_filters_on_activity_field_and_public(sandbox: Sandbox, client: httpx.Client) -> None:
    everything = notif_ids(ask(sandbox, client, notif_body("2001-01-01T00:00:00")))
    ms = ask(sandbox, client, notif_body("2001-01-01T00:00:00", fields=["04"]))
    for item in ms.findall("csd:etablissementReponseNotif", NS):
        assert [t.get("code") for t in item.findall("csd:typeActivity", NS)] == ["04"]
    expected = [
        i
        for i in everything
        if any(f.code == "04" for u in sandbox.offer(i).units for f in u.activity_fields)
    ]
    assert notif_ids(ms) == expected
    ph = notif_ids(ask(sandbox, client, notif_body("2001-01-01T00:00:00", publics=["02"])))
    assert PLATINES_ESTABLISHMENT_ID in ph and set(ph) < set(everything)
    assert notif_ids(ask(sandbox, client, notif_body(REFERENCE_TIME.isoformat()))) == []
