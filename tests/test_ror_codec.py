"""The SOAP codec (WSDL loaded offline), the fault and Notif readers, the VIHF token and call parameters."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from lxml import etree

from rorclient.errors import ConfigError, DataError
from rorclient.models import CodedValue
from rorclient.ror import ServerFaultError, SoapFaultError, VihfSettings, default_wsdl_path
from rorclient.ror._params import activity_filter, date_ref, patients_filter
from rorclient.ror._responses import find_fault, parse_notif
from rorclient.ror._soap import SoapCodec
from rorclient.ror._vihf import PLATINES_XSI_NS, XSI_NS, vihf_header
from tests._shared import SCHEMAS, require_shared

SOAP = "http://www.w3.org/2003/05/soap-envelope"
CSD = "urn:ihe:iti:csd:2013"
ROR = "urn:asip:ror:2015"


# ---------------------------------------------------------------------------------------------------------
# WSDL loading


def test_own_wsdl_ships_as_package_data() -> None:
    path = default_wsdl_path()
    assert path.is_file() and path.suffix == ".wsdl"
    assert (path.parent / "rorclient-csd-requests.xsd").is_file()


def test_codec_builds_soap12_requests_with_the_wsdl_actions() -> None:
    codec = SoapCodec()
    notif = codec.notif("2024-01-01T00:00:00")
    lecture = codec.lecture_unit(("93/1", "identifiantOI"))
    assert notif.content_type == (
        'application/soap+xml; charset=UTF-8; action="urn:asip:ror:2015:stored-function:ror-update"'
    )
    assert lecture.action == "urn:asip:ror:2015:stored-function:ror-search"
    root = etree.fromstring(notif.body)
    assert root.tag == f"{{{SOAP}}}Envelope"
    assert notif.body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


@pytest.mark.parametrize(
    ("options"),
    [
        {},
        {"restricted": True},
        {"since": "2024-01-02T03:04:05", "activity": [("01", "1.2.250.1.213.3.3.65")]},
        {"patients": [("01", "1.2.250.1.213.3.3.66"), ("02", "1.2.250.1.213.3.3.66")]},
    ],
)
def test_lecture_requests_from_the_cached_envelope_are_what_zeep_builds(options: dict[str, object]) -> None:
    codec = SoapCodec()
    for code in ("010000123", "0100001230", "75/A.b:c+d-e_f"):
        cached = codec.lecture_establishment((code, "1.2.250.1.71.4.2.2"), **options)  # type: ignore[arg-type]
        built = codec._lecture_establishment(  # what zeep builds for this very request
            code,
            "1.2.250.1.71.4.2.2",
            options.get("since"),  # type: ignore[arg-type]
            options.get("activity", ()),  # type: ignore[arg-type]
            options.get("patients", ()),  # type: ignore[arg-type]
            restricted=bool(options.get("restricted", False)),
            header=None,
        )
        assert cached == built
        demand = etree.fromstring(cached.body).find(f".//{{{CSD}}}id_etablissement")
        assert demand is not None and demand.get("code") == code


def test_lecture_codes_that_need_escaping_are_built_by_zeep() -> None:
    codec = SoapCodec()
    for code in ('a"b', "a&b<c", "é123", "a b"):
        request = codec.lecture_establishment((code, "x"))
        demand = etree.fromstring(request.body).find(f".//{{{CSD}}}id_etablissement")
        assert demand is not None and demand.get("code") == code


def test_official_wsdl_loads_offline_from_the_files_beside_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    require_shared()
    codec = SoapCodec(SCHEMAS / "ROR-v2.4.wsdl")
    assert codec.wsdl_location.endswith("ROR-v2.4.wsdl")
    demand = etree.fromstring(codec.lecture_establishment(("1", "x"), restricted=True).body)
    assert demand.findtext(f".//{{{CSD}}}restrictedOrganisation") == "true"


def test_official_wsdl_with_schemas_elsewhere(tmp_path: Path) -> None:
    require_shared()
    shutil.copy(SCHEMAS / "ROR-v2.4.wsdl", tmp_path / "ROR-v2.4.wsdl")
    with pytest.raises(
        ConfigError, match=r"never downloads schemas.*IHE_ProfilCSD-ExtensionROR_fr-v2\.4\.xsd"
    ):
        SoapCodec(tmp_path / "ROR-v2.4.wsdl")
    codec = SoapCodec(tmp_path / "ROR-v2.4.wsdl", schema_dir=SCHEMAS)
    assert b"TR-Notif" in codec.notif("2024-01-01T00:00:00").body


def test_a_wsdl_without_the_ror_binding_is_refused(tmp_path: Path) -> None:
    wsdl = tmp_path / "other.wsdl"
    wsdl.write_text(
        '<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" targetNamespace="urn:other"/>',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="CareServicesRequest_Binding"):
        SoapCodec(wsdl)
    with pytest.raises(ConfigError, match="not found"):
        SoapCodec(tmp_path / "missing.wsdl")


# ---------------------------------------------------------------------------------------------------------
# Faults and Notif answers


def envelope(body: str) -> bytes:
    return f'<s:Envelope xmlns:s="{SOAP}"><s:Body>{body}</s:Body></s:Envelope>'.encode()


def fault(code: str, detail: str = "") -> str:
    return (
        f"<s:Fault><s:Code><s:Value>{code}</s:Value></s:Code>"
        f"<s:Reason><s:Text>raison</s:Text></s:Reason><s:Detail>{detail}</s:Detail></s:Fault>"
    )


def test_fault_codes_decide_the_error_class() -> None:
    detail = f'<ror:erreur xmlns:ror="{ROR}" code="405" message="compte faux"/>'
    receiver = find_fault(envelope(fault("s:Receiver", detail)), source="t")
    sender = find_fault(envelope(fault("s:Sender", detail)), source="t")
    assert isinstance(receiver, ServerFaultError) and receiver.retryable
    assert type(sender) is SoapFaultError and not sender.retryable
    assert (sender.code, sender.message, sender.soap_code) == (405, "compte faux", "Sender")


def test_fault_detail_may_be_a_csd_error_or_text() -> None:
    as_error = find_fault(
        envelope(fault("s:Sender", f'<e:error xmlns:e="{CSD}" code="12">texte</e:error>')), source="t"
    )
    assert as_error is not None and (as_error.code, as_error.message) == (12, "texte")
    bare = find_fault(envelope(fault("s:Sender")), source="t")
    assert bare is not None and (bare.code, bare.message) == (None, "raison")


def test_not_a_fault() -> None:
    assert find_fault(b"<html>busy</html>", source="t") is None
    assert find_fault(b"not xml", source="t") is None
    assert find_fault(envelope("<x/>"), source="t") is None


def test_notif_answer_from_the_sample(samples_dir: Path) -> None:
    entries = parse_notif((samples_dir / "notif_response_body.xml").read_bytes(), source="t")
    assert [(e.establishment_id, e.activity_fields, e.restricted) for e in entries] == [
        ("1830000002", ("01",), False)
    ]


def test_notif_answer_tolerates_the_legacy_names() -> None:
    body = (
        f'<r:TR-Notif-ListeEtablissementsMajApresDate_Reponse xmlns:r="{ROR}" xmlns:c="{CSD}">'
        '<c:etablissementID><c:id_etablissement code=" 75 " assigningAuthorityName="a"/>'
        "<c:restrictedOrganisation>1</c:restrictedOrganisation></c:etablissementID>"
        "</r:TR-Notif-ListeEtablissementsMajApresDate_Reponse>"
    )
    [entry] = parse_notif(envelope(body), source="t")
    assert (entry.establishment_id, entry.restricted, entry.activity_fields) == ("75", True, ())


def test_empty_notif_answer() -> None:
    body = f'<r:TR-Notif-ListeEtablissementMajApresDate_Reponse xmlns:r="{ROR}"/>'
    assert parse_notif(envelope(body), source="t") == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<unclosed", "not well-formed"),
        (envelope(f'<c:careServicesResponse xmlns:c="{CSD}"/>'), "expected a TR-Notif"),
        (envelope(""), "no body content"),
        (
            envelope(
                f'<r:TR-Notif-ListeEtablissementMajApresDate_Reponse xmlns:r="{ROR}" xmlns:c="{CSD}">'
                "<c:etablissementReponseNotif><c:id_etablissement/></c:etablissementReponseNotif>"
                "</r:TR-Notif-ListeEtablissementMajApresDate_Reponse>"
            ),
            "no id_etablissement",
        ),
        (
            envelope(
                f'<r:TR-Notif-ListeEtablissementMajApresDate_Reponse xmlns:r="{ROR}" xmlns:c="{CSD}">'
                '<c:etablissementReponseNotif><c:id_etablissement code="1" assigningAuthorityName="a"/>'
                "<c:restrictedOrganisation>maybe</c:restrictedOrganisation></c:etablissementReponseNotif>"
                "</r:TR-Notif-ListeEtablissementMajApresDate_Reponse>"
            ),
            "not a boolean",
        ),
        (b'<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>', "DOCTYPE"),
    ],
)
def test_bad_notif_answers_are_data_errors(body: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse_notif(body, source="notif answer")


def test_a_fault_in_a_notif_answer_is_raised() -> None:
    with pytest.raises(SoapFaultError, match="raison"):
        parse_notif(envelope(fault("s:Sender")), source="t")


# ---------------------------------------------------------------------------------------------------------
# VIHF


def test_vihf_token_defaults() -> None:
    header = vihf_header(
        VihfSettings(profile="CU23"),
        certificate_subject="CN=APP,C=FR",
        now=dt.datetime(2024, 1, 8, 10, tzinfo=dt.UTC),
    )
    saml = "{urn:oasis:names:tc:SAML:2.0:assertion}"
    assertion = header.find(f"{saml}Assertion")
    assert assertion is not None
    assert assertion.get("IssueInstant") == "2024-01-08T10:00:00Z" and assertion.get("Version") == "2.0"
    assert header.findtext(f".//{saml}Issuer") == "CN=APP,C=FR"
    assert header.findtext(f".//{saml}NameID") == "CN=APP,C=FR"
    profile = header.find(".//{urn:hl7-org:v3}Profil_Utilisateur")
    assert profile is not None
    assert (profile.get("code"), profile.get("displayName")) == ("CU23", "Accès public")
    assert profile.get(f"{{{XSI_NS}}}type") == "CE"
    role = header.find(".//{urn:hl7-org:v3}Role")
    assert role is not None and (role.get("code"), role.get("codeSystem")) == (
        "AUTOMATE",
        "1.2.250.1.213.1.1.4.6",
    )


def test_each_vihf_token_has_its_own_id() -> None:
    settings = VihfSettings(profile="CU22", issuer="CN=X")
    ids = {vihf_header(settings, certificate_subject=None)[0].get("ID") for _ in range(3)}
    assert len(ids) == 3


def test_vihf_platines_xsi_spelling_on_demand() -> None:
    header = vihf_header(
        VihfSettings(profile="CU19", platines_xsi_namespace=True), certificate_subject="CN=X"
    )
    profile = header.find(".//{urn:hl7-org:v3}Profil_Utilisateur")
    assert profile is not None and profile.get(f"{{{PLATINES_XSI_NS}}}type") == "CE"


def test_vihf_needs_an_issuer() -> None:
    with pytest.raises(ValueError, match="issuer"):
        vihf_header(VihfSettings(profile="CU22"), certificate_subject=None)


# ---------------------------------------------------------------------------------------------------------
# Parameters


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.datetime(2024, 1, 15, 8, 30, 5, 999), "2024-01-15T08:30:05"),
        (dt.datetime(2024, 1, 15, 8, 30, tzinfo=dt.UTC), "2024-01-15T09:30:00"),  # winter: UTC+1
        (dt.datetime(2024, 7, 15, 8, 30, tzinfo=dt.UTC), "2024-07-15T10:30:00"),  # summer: UTC+2
        (dt.date(2024, 3, 1), "2024-03-01T00:00:00"),
        ("2024-03-01", "2024-03-01T00:00:00"),
        ("2024-03-01T12:00:00+00:00", "2024-03-01T13:00:00"),
    ],
)
def test_date_ref_is_naive_paris_time(value: dt.datetime | dt.date | str, expected: str) -> None:
    assert date_ref(value) == expected


def test_code_filters() -> None:
    assert activity_filter("01") == [("01", "1.2.250.1.213.3.3.17")]
    assert patients_filter([CodedValue(code="02", coding_scheme="1.2.3"), " 03 "]) == [
        ("02", "1.2.3"),
        ("03", "1.2.250.1.213.3.3.29"),
    ]
    assert activity_filter(()) == []


def test_a_bad_wsdl_given_to_the_client_fails_at_construction(tmp_path: Path) -> None:
    from rorclient.ror import ClientOptions, RorClient

    with pytest.raises(ConfigError, match="WSDL file not found"):
        RorClient("https://ror.test/x", options=ClientOptions(wsdl=tmp_path / "missing.wsdl"))
