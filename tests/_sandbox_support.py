"""A minimal ROR client for the sandbox tests: TLS contexts, SOAP envelopes, PLATINES projects, Schematron.

Deliberately independent of rorclient's own web-services client: the sandbox is checked against the
specification, not against the code that will talk to it.
"""

from __future__ import annotations

import datetime as dt
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import elementpath
import httpx
from lxml import etree

from rorclient.sandbox.pki import IssuedCertificate, TestPki
from tests._shared import PLATINES, require_shared

SOAP = "http://www.w3.org/2003/05/soap-envelope"
CSD = "urn:ihe:iti:csd:2013"
ROR = "urn:asip:ror:2015"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS = {"soap": SOAP, "csd": CSD, "ror": ROR}
SOAP_CONTENT_TYPE = "application/soap+xml; charset=UTF-8"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


# -- TLS ------------------------------------------------------------------------------------------------


def client_context(
    pki: TestPki, cert: IssuedCertificate | None = None, *, max_version: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    """A client context trusting the sandbox CA, presenting ``cert`` (with its chain) if given."""
    context = ssl.create_default_context(cafile=str(pki.ca_bundle))
    if cert is not None:
        context.load_cert_chain(cert.chain, cert.key, password=pki.password.get_secret_value())
    if max_version is not None:
        context.maximum_version = max_version
    return context


def http_client(pki: TestPki, cert: IssuedCertificate | None = None, **kwargs: Any) -> httpx.Client:
    return httpx.Client(verify=client_context(pki, cert or pki.client), timeout=20, **kwargs)


# -- SOAP -----------------------------------------------------------------------------------------------


def vihf_header(profile_code: str) -> str:
    """A PLATINES-style unsigned VIHF assertion carrying ``Profil_Utilisateur/@code``."""
    return (
        f'<wsse:Security xmlns:wsse="{WSSE}">'
        '<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="x" Version="2.0" '
        'IssueInstant="2024-01-08T10:00:00Z"><saml2:AttributeStatement>'
        '<saml2:Attribute Name="VIHF_Version"><saml2:AttributeValue>2.0</saml2:AttributeValue>'
        "</saml2:Attribute>"
        '<saml2:Attribute Name="Profil_Utilisateur"><saml2:AttributeValue>'
        f'<Profil_Utilisateur xmlns="urn:hl7-org:v3" code="{profile_code}" '
        'codeSystem="1.2.250.1.213.1.6.1.66"/>'
        "</saml2:AttributeValue></saml2:Attribute></saml2:AttributeStatement></saml2:Assertion></wsse:Security>"
    )


def envelope(body: str, *, header: str = "") -> bytes:
    return (
        f'<soap:Envelope xmlns:soap="{SOAP}"><soap:Header>{header}</soap:Header>'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def _coded(name: str, codes: Iterable[str], scheme: str) -> str:
    return "".join(f'<csd:{name} code={quoteattr(code)} codingScheme="{scheme}"/>' for code in codes)


def lecture_body(
    establishment: str,
    *,
    date_ref: str | None = None,
    fields: Iterable[str] = (),
    publics: Iterable[str] = (),
    restricted: str | None = "0",
) -> str:
    parts = [
        f"<csd:id_etablissement code={quoteattr(establishment)} "
        'assigningAuthorityName="1.2.250.1.71.1.2.14"/>'
    ]
    if date_ref is not None:
        parts.append(f"<csd:dateRef>{escape(date_ref)}</csd:dateRef>")
    parts.append(_coded("typeActivity", fields, "1.2.250.1.213.3.3.17"))
    parts.append(_coded("supportedPatient", publics, "1.2.250.1.213.3.3.29"))
    if restricted is not None:
        parts.append(f"<csd:restrictedOrganisation>{restricted}</csd:restrictedOrganisation>")
    return (
        f'<csd:careServicesRequest xmlns:csd="{CSD}"><csd:function '
        'urn="urn:asip:ror:lecture:offreSoinEtablissement:2017" encapsulated="true">'
        "<csd:TR_Lecture-OffresSanteEtablissement><csd:etablissementDemandeLecture>"
        + "".join(parts)
        + "</csd:etablissementDemandeLecture></csd:TR_Lecture-OffresSanteEtablissement></csd:function>"
        "</csd:careServicesRequest>"
    )


def unit_body(unit_id: str) -> str:
    return (
        f'<csd:careServicesRequest xmlns:csd="{CSD}"><csd:function '
        'urn="urn:asip:ror:lecture:offreSoinEtablissement:2017" encapsulated="true">'
        f"<csd:TR_Lecture-OffreSanteOrganisationInterne><csd:organisationID code={quoteattr(unit_id)} "
        'assigningAuthorityName="identifiantOI"/></csd:TR_Lecture-OffreSanteOrganisationInterne>'
        "</csd:function></csd:careServicesRequest>"
    )


def notif_body(
    date_ref: str | dt.datetime, *, fields: Iterable[str] = (), publics: Iterable[str] = ()
) -> str:
    text = date_ref.isoformat() if isinstance(date_ref, dt.datetime) else date_ref
    return (
        f'<ror:TR-Notif-ListeEtablissementsMajApresDate_Demande xmlns:ror="{ROR}" xmlns:csd="{CSD}">'
        f"<csd:params><csd:dateRef>{escape(text)}</csd:dateRef>"
        + _coded("typeActivity", fields, "1.2.250.1.213.3.3.17")
        + _coded("supportedPatient", publics, "1.2.250.1.213.3.3.29")
        + "</csd:params></ror:TR-Notif-ListeEtablissementsMajApresDate_Demande>"
    )


def post(client: httpx.Client, url: str, data: bytes) -> httpx.Response:
    return client.post(url, content=data, headers={"Content-Type": SOAP_CONTENT_TYPE})


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data, _PARSER)


def body_child(response: httpx.Response | bytes) -> etree._Element:
    """The element inside ``soap:Body`` of a response."""
    data = response.content if isinstance(response, httpx.Response) else response
    root = parse(data)
    assert root.tag == f"{{{SOAP}}}Envelope", root.tag
    (child,) = root.find(f"{{{SOAP}}}Body")
    return child


def fault_detail(response: httpx.Response) -> tuple[str, int, str]:
    """(soap code value, ror:erreur code, message) of a SOAP fault."""
    fault = body_child(response)
    assert fault.tag == f"{{{SOAP}}}Fault"
    value = fault.findtext("soap:Code/soap:Value", namespaces=NS)
    error = fault.find("soap:Detail/ror:erreur", namespaces=NS)
    assert value is not None and error is not None
    return value, int(error.get("code", "0")), error.get("message", "")


def unit_ids(answer: etree._Element, *, elementary_only: bool = False) -> set[str]:
    path = "//csd:facilityDirectory/csd:facility" + ("[csd:codedType/@code='4']" if elementary_only else "")
    return {facility.find("csd:otherID", NS).get("code") for facility in answer.xpath(path, namespaces=NS)}


def notif_ids(answer: etree._Element) -> list[str]:
    return [e.get("code") for e in answer.findall("csd:etablissementReponseNotif/csd:id_etablissement", NS)]


# -- PLATINES SoapUI projects -----------------------------------------------------------------------------

_CON = {"con": "http://eviware.com/soapui/config"}
_PROPERTY = re.compile(r"\$\{(#Project#|Préparation de la requête#)([A-Za-z_0-9]+)\}")
# A PLATINES typo: "concat(...) + count(...)" adds a number to a string in the error branch of some
# RG_ALIM_020 assertions, which an XPath 2.0 engine refuses; the closing parenthesis is moved back.
_TYPO = re.compile(r"count\(([^()]*)\)\) \+ count\(([^()]*)\) else")


@dataclass
class PlatinesStep:
    test_case: str
    name: str
    request: str
    properties: dict[str, str]
    assertions: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(type, name, XPath or Schematron file, expected content)."""


def platines_steps(project: str, project_properties: dict[str, str]) -> list[PlatinesStep]:
    """The request steps of a SoapUI project, properties substituted (``project_properties`` override
    the project's own values)."""
    require_shared()
    tree = etree.parse(str(PLATINES / project), _PARSER)
    defaults = {
        prop.findtext("con:name", namespaces=_CON) or "": prop.findtext("con:value", namespaces=_CON) or ""
        for prop in tree.getroot().findall("con:properties/con:property", _CON)
    }
    project_values = {**defaults, **project_properties}
    steps = []
    for case in tree.iter("{http://eviware.com/soapui/config}testCase"):
        local: dict[str, str] = {}
        for step in case.findall("con:testStep", _CON):
            if step.get("type") == "properties":
                for prop in step.findall("con:config/con:properties/con:property", _CON):
                    local[prop.findtext("con:name", namespaces=_CON) or ""] = (
                        prop.findtext("con:value", namespaces=_CON) or ""
                    )
        resolved = {name: _substitute(value, project_values, {}) for name, value in local.items()}
        for step in case.findall("con:testStep", _CON):
            if step.get("type") != "request":
                continue
            config = step.find("con:config/con:request", _CON)
            text = config.findtext("con:request", namespaces=_CON) or ""
            item = PlatinesStep(
                test_case=case.get("name", ""),
                name=step.get("name", ""),
                request=_substitute(text, project_values, resolved),
                properties=resolved,
            )
            for assertion in config.findall("con:assertion", _CON):
                conf = assertion.find("con:configuration", _CON)
                path = (
                    conf.findtext("path") or conf.findtext("schematronProperty") or ""
                    if conf is not None
                    else ""
                )
                content = (conf.findtext("content") or "") if conf is not None else ""
                item.assertions.append(
                    (
                        assertion.get("type", ""),
                        assertion.get("name", ""),
                        _TYPO.sub(
                            r"count(\1) + count(\2)) else", _substitute(path, project_values, resolved)
                        ),
                        content,
                    )
                )
            steps.append(item)
    return steps


def _substitute(text: str, project: dict[str, str], local: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        scope, name = match.groups()
        return project.get(name, "") if scope == "#Project#" else local.get(name, "")

    return _PROPERTY.sub(value, text)


def with_vihf(request: str, profile_code: str) -> str:
    """Insert the VIHF token into the request's empty ``soap:Header``, as PLATINES does."""
    return request.replace("<soap:Header/>", f"<soap:Header>{vihf_header(profile_code)}</soap:Header>", 1)


def xpath2(document: etree._Element, expression: str) -> Any:
    return elementpath.select(document, expression)


# -- Schematron (ISO, XPath 2.0 binding, the subset PLATINES uses) -----------------------------------------

_SCH = {"sch": "http://purl.oclc.org/dsdl/schematron"}


def run_schematron(schema: Path, document: etree._Element, *, ignore: Iterable[str] = ()) -> list[str]:
    """Failed asserts and fired reports of a Schematron schema (patterns, rules, lets, asserts, reports;
    the first matching rule of a pattern wins). Tests in ``ignore`` are skipped."""
    require_shared()
    skipped = set(ignore)
    tree = etree.parse(str(schema), _PARSER)
    failures: list[str] = []
    variables = _lets(tree.getroot(), document, document, {})
    for pattern in tree.getroot().findall("sch:pattern", _SCH):
        pattern_vars = _lets(pattern, document, document, variables)
        seen: set[int] = set()
        for rule in pattern.findall("sch:rule", _SCH):
            context = _xslt(rule.get("context", ""))
            nodes = elementpath.select(document, context, variables=pattern_vars)
            for node in nodes if isinstance(nodes, list) else [nodes]:
                if id(node) in seen:
                    continue
                seen.add(id(node))
                rule_vars = _lets(rule, document, node, {**pattern_vars, "current": node})
                for check in rule:
                    if not isinstance(check.tag, str) or check.tag not in (
                        f"{{{_SCH['sch']}}}assert",
                        f"{{{_SCH['sch']}}}report",
                    ):
                        continue
                    test = check.get("test", "")
                    if test in skipped:
                        continue
                    outcome = elementpath.select(
                        document, f"boolean({_xslt(test)})", item=node, variables=rule_vars
                    )
                    failed = not outcome if check.tag.endswith("assert") else bool(outcome)
                    if failed:
                        failures.append(f"{schema.name}: {test} at {_where(node)}")
    return failures


def _lets(
    parent: etree._Element, document: etree._Element, node: Any, variables: dict[str, Any]
) -> dict[str, Any]:
    values = dict(variables)
    for let in parent.findall("sch:let", _SCH):
        values[let.get("name", "")] = elementpath.select(
            document, _xslt(let.get("value", "")), item=node, variables=values
        )
    return values


def _xslt(expression: str) -> str:
    return expression.replace("current()", "$current")


def _where(node: Any) -> str:
    if isinstance(node, etree._Element):
        return node.getroottree().getpath(node)
    return repr(node)
