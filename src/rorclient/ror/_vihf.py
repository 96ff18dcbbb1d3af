"""The optional VIHF header: an unsigned SAML 2.0 assertion in ``wsse:Security`` (digest §9.2).

Built exactly as the PLATINES VIHF generator builds it: random UUID ``ID``, ``IssueInstant`` now in UTC,
``Issuer`` = certificate subject DN (format X509SubjectName), an ``AuthnStatement`` and the attributes
``VIHF_Version``, ``Ressource_URN``, role (``hl7:Role`` CE), ``subject-id``, ``Profil_Utilisateur`` (CE)
and ``VIHF_Profil`` (CE). No signature, no timestamp.
"""

from __future__ import annotations

import datetime as dt
import uuid

from lxml import etree

from rorclient.ror.models import VihfSettings

__all__ = ["PROFILE_LABELS", "vihf_header"]

WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SAML2_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
HL7_NS = "urn:hl7-org:v3"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
PLATINES_XSI_NS = "http://wwww.w3.org/2001/XMLSchema-instance"  # sic: PLATINES' JAXB spelling

ROLE_CODE_SYSTEM = "1.2.250.1.213.1.1.4.6"
PROFILE_CODE_SYSTEM = "1.2.250.1.213.1.6.1.66"
VIHF_PROFILE_CODE_SYSTEM = "1.2.250.1.213.1.1.4.312"

#: Labels of JDV_J68-ProfilAccesReferentiel-ROR (NOS 2023-06-14).
PROFILE_LABELS = {
    "CU18": "Orientation sanitaire et médico-sociale",
    "CU19": "Orientation médico-sociale",
    "CU20": "Coordination sanitaire et médico-sociale",
    "CU21": "Coordination médico-sociale",
    "CU22": "Régulation de soins non programmés",
    "CU23": "Accès public",
}


def vihf_header(
    settings: VihfSettings, *, certificate_subject: str | None, now: dt.datetime | None = None
) -> etree._Element:
    """The ``wsse:Security`` element to put in ``soap:Header``; a new assertion ID on every call."""
    issuer = settings.issuer or certificate_subject
    if not issuer:
        raise ValueError("a VIHF token needs an issuer: give VihfSettings.issuer or client credentials")
    instant = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    saml = f"{{{SAML2_NS}}}"
    security = etree.Element(f"{{{WSSE_NS}}}Security", nsmap={"wsse": WSSE_NS})
    assertion = etree.SubElement(
        security,
        f"{saml}Assertion",
        {"ID": str(uuid.uuid4()), "IssueInstant": instant, "Version": "2.0"},
        nsmap={"saml2": SAML2_NS},
    )
    issuer_element = etree.SubElement(
        assertion, f"{saml}Issuer", Format="urn:oasis:names:tc:SAML:2.0:nameid-format:X509SubjectName"
    )
    issuer_element.text = issuer
    subject = etree.SubElement(assertion, f"{saml}Subject")
    etree.SubElement(subject, f"{saml}NameID").text = settings.name_id or issuer
    authn = etree.SubElement(assertion, f"{saml}AuthnStatement", AuthnInstant=instant)
    context = etree.SubElement(authn, f"{saml}AuthnContext")
    etree.SubElement(
        context, f"{saml}AuthnContextClassRef"
    ).text = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
    statement = etree.SubElement(assertion, f"{saml}AttributeStatement")
    xsi = PLATINES_XSI_NS if settings.platines_xsi_namespace else XSI_NS
    _text_attribute(statement, "VIHF_Version", "2.0")
    _text_attribute(statement, "Ressource_URN", settings.resource_urn)
    _coded_attribute(
        statement,
        "urn:oasis:names:tc:xacml:2.0:subject:role",
        "Role",
        xsi,
        code=settings.role,
        code_system=ROLE_CODE_SYSTEM,
        display=settings.role_display,
    )
    _text_attribute(statement, "urn:oasis:names:tc:xspa:1.0:subject:subject-id", settings.subject_id)
    _coded_attribute(
        statement,
        "Profil_Utilisateur",
        "Profil_Utilisateur",
        xsi,
        code=settings.profile,
        code_system=PROFILE_CODE_SYSTEM,
        display=PROFILE_LABELS[settings.profile],
    )
    _coded_attribute(
        statement,
        "VIHF_Profil",
        "VIHF_Profil",
        xsi,
        code="profil_referentiel",
        code_system=VIHF_PROFILE_CODE_SYSTEM,
        display="Accès à un référentiel",
    )
    return security


def _attribute(statement: etree._Element, name: str) -> etree._Element:
    attribute = etree.SubElement(statement, f"{{{SAML2_NS}}}Attribute", Name=name)
    value: etree._Element = etree.SubElement(attribute, f"{{{SAML2_NS}}}AttributeValue")
    return value


def _text_attribute(statement: etree._Element, name: str, value: str) -> None:
    _attribute(statement, name).text = value


def _coded_attribute(
    statement: etree._Element,
    name: str,
    element: str,
    xsi: str,
    *,
    code: str,
    code_system: str,
    display: str,
) -> None:
    value = _attribute(statement, name)
    etree.SubElement(
        value,
        f"{{{HL7_NS}}}{element}",
        {f"{{{xsi}}}type": "CE", "code": code, "codeSystem": code_system, "displayName": display},
        nsmap={None: HL7_NS, "xsi": xsi},
    )
