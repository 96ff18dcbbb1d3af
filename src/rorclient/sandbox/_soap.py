"""SOAP 1.2 requests and answers of the ROR v2.4 services: strict parsing, envelopes, faults.

Requests are checked by hand against the rules of the official XSD for the few request types (element
order and cardinality, required and fixed attributes, ``xs:dateTime`` / ``xs:boolean`` lexical forms,
no stray text), because the XSD needs an XSD 1.1 processor that is not a runtime dependency of
rorclient. The checks are as strict as the XSD; ``lenient_dates`` relaxes the one PLATINES itself
breaks (a one-digit hour, an empty Notif ``dateRef``). The XML is parsed without DTD, entity expansion
or network access, and a DOCTYPE is refused.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from lxml import etree

from rorclient.codes import CSD_NS, ROR_NS, SOAP12_NS, Oid
from rorclient.sandbox._clock import ror_wall_clock
from rorclient.sandbox._selection import LectureQuery

__all__ = [
    "LECTURE_URN",
    "EstablishmentRequest",
    "NotifRequest",
    "NotifRow",
    "SoapFault",
    "SoapRequest",
    "UnitRequest",
    "fault_envelope",
    "inline_error",
    "notif_response",
    "parse_request",
    "soap_envelope",
]

LECTURE_URN: Final = "urn:asip:ror:lecture:offreSoinEtablissement:2017"
SOAP11_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE_NS: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SAML2_NS: Final = "urn:oasis:names:tc:SAML:2.0:assertion"

_PARSER: Final = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_blank_text=False
)
_DATE_TIME: Final = re.compile(
    r"(?P<year>-?\d{4,})-(?P<month>\d\d)-(?P<day>\d\d)T(?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d)"
    r"(?P<fraction>\.\d+)?(?P<zone>Z|[+-]\d\d:\d\d)?"
)
_LENIENT_DATE_TIME: Final = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d\d?)-(?P<day>\d\d?)T(?P<hour>\d\d?):(?P<minute>\d\d?)(:(?P<second>\d\d?))?"
    r"(?P<fraction>\.\d+)?(?P<zone>Z|[+-]\d\d:\d\d)?"
)


class SoapFault(Exception):
    """A request the server answers with a SOAP 1.2 fault (``ror:erreur`` detail)."""

    def __init__(self, code: int, message: str, *, subcode: str = "Sender") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.subcode = subcode


class _Invalid(Exception):
    """The request breaks the schema; turned into a fault with the invalid-request code."""


@dataclass(frozen=True)
class NotifRequest:
    date_ref: dt.datetime | None
    fields: frozenset[str]
    publics: frozenset[str]

    operation = "notif"


@dataclass(frozen=True)
class EstablishmentRequest:
    establishment_id: str
    query: LectureQuery

    operation = "lecture"


@dataclass(frozen=True)
class UnitRequest:
    unit_id: str

    operation = "lecture"


@dataclass(frozen=True)
class SoapRequest:
    """A parsed SOAP request: the operation and the access-profile code of its VIHF token, if any."""

    operation: NotifRequest | EstablishmentRequest | UnitRequest
    profile_code: str | None


def _csd(name: str) -> str:
    return "{" + CSD_NS + "}" + name


# --------------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------------


def peek_operation(data: bytes) -> str:
    """``"notif"`` or ``"lecture"`` from a cheap look at a request body (to pick faults before parsing)."""
    return "notif" if b"TR-Notif-ListeEtablissementsMajApresDate_Demande" in data else "lecture"


def parse_request(
    data: bytes, *, invalid_code: int, unsupported_code: int, lenient_dates: bool
) -> SoapRequest:
    """Parse and check a SOAP 1.2 request; raises :class:`SoapFault` for anything the server refuses."""
    try:
        envelope = _parse_xml(data)
        body, header = _envelope_parts(envelope)
        profile_code = _profile_code(header) if header is not None else None
        operation = _operation(body, unsupported_code=unsupported_code, lenient_dates=lenient_dates)
    except _Invalid as exc:
        raise SoapFault(invalid_code, f"invalid request: {exc}") from None
    return SoapRequest(operation=operation, profile_code=profile_code)


def _parse_xml(data: bytes) -> etree._Element:
    if not data.strip():
        raise _Invalid("empty body")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise _Invalid(f"not well-formed XML: {exc}") from None
    if root.getroottree().docinfo.doctype:
        raise _Invalid("DTDs are not allowed")
    return root


def _envelope_parts(root: etree._Element) -> tuple[etree._Element, etree._Element | None]:
    if root.tag == "{" + SOAP11_NS + "}Envelope":
        raise SoapFault(400, "SOAP 1.1 envelope: this service speaks SOAP 1.2", subcode="VersionMismatch")
    if root.tag != "{" + SOAP12_NS + "}Envelope":
        raise _Invalid(f"the root element must be a SOAP 1.2 Envelope, not {_name(root)}")
    children = _children(root)
    header = None
    if children and children[0].tag == "{" + SOAP12_NS + "}Header":
        header = children.pop(0)
    if len(children) != 1 or children[0].tag != "{" + SOAP12_NS + "}Body":
        raise _Invalid("the Envelope must hold an optional Header and then one Body")
    payload = _children(children[0])
    if len(payload) != 1:
        raise _Invalid(f"the Body must hold exactly one element, it holds {len(payload)}")
    if header is not None:
        _check_must_understand(header)
    return payload[0], header


def _check_must_understand(header: etree._Element) -> None:
    for block in _children(header):
        flag = (block.get("{" + SOAP12_NS + "}mustUnderstand") or "").strip()
        if flag in ("true", "1") and block.tag != "{" + WSSE_NS + "}Security":
            raise SoapFault(400, f"header block {_name(block)} is not understood", subcode="MustUnderstand")


def _profile_code(header: etree._Element) -> str | None:
    """``Profil_Utilisateur/@code`` of a PLATINES-style VIHF assertion (``xsi:type`` is not required)."""
    for security in header.iter("{" + WSSE_NS + "}Security"):
        for attribute in security.iter("{" + SAML2_NS + "}Attribute"):
            if attribute.get("Name") != "Profil_Utilisateur":
                continue
            for value in attribute.iter("{" + SAML2_NS + "}AttributeValue"):
                for item in _children(value):
                    code = item.get("code")
                    if code:
                        return code.strip()
            raise _Invalid("the VIHF attribute Profil_Utilisateur carries no code")
    return None


def _operation(
    element: etree._Element, *, unsupported_code: int, lenient_dates: bool
) -> NotifRequest | EstablishmentRequest | UnitRequest:
    if element.tag == "{" + ROR_NS + "}TR-Notif-ListeEtablissementsMajApresDate_Demande":
        _attributes(element, required=(), optional=())
        (params,) = _sequence(element, [("params", 1, 1)])["params"]
        return _notif(params, lenient_dates)
    if element.tag == _csd("careServicesRequest"):
        _attributes(element, required=(), optional=())
        choice = _children(element)
        if len(choice) != 1 or choice[0].tag not in (_csd("expression"), _csd("function")):
            raise _Invalid("careServicesRequest must hold one expression or one function")
        if choice[0].tag == _csd("expression"):
            raise SoapFault(
                unsupported_code, "expression (XQuery) requests are not supported: send a function"
            )
        return _function(choice[0], lenient_dates)
    raise _Invalid(f"unknown operation {_name(element)}")


def _notif(params: etree._Element, lenient_dates: bool) -> NotifRequest:
    _attributes(params, required=(), optional=())
    parts = _sequence(params, [("dateRef", 1, 1), ("typeActivity", 0, None), ("supportedPatient", 0, None)])
    date_ref = _date_time(parts["dateRef"][0], lenient_dates)
    return NotifRequest(
        date_ref=date_ref, fields=_codes(parts["typeActivity"]), publics=_codes(parts["supportedPatient"])
    )


def _function(function: etree._Element, lenient_dates: bool) -> EstablishmentRequest | UnitRequest:
    _attributes(function, required=("urn", "encapsulated"), optional=())
    if function.get("urn") != LECTURE_URN:
        raise _Invalid(f"function/@urn must be {LECTURE_URN}, not {function.get('urn')!r}")
    if _boolean(function.get("encapsulated", ""), "function/@encapsulated") is not True:
        raise _Invalid("function/@encapsulated must be true")
    choice = _children(function)
    if len(choice) != 1:
        raise _Invalid("function must hold exactly one TR_Lecture-* element")
    _text_free(function)
    request = choice[0]
    _attributes(request, required=(), optional=())
    if request.tag == _csd("TR_Lecture-OffreSanteOrganisationInterne"):
        (identifier,) = _sequence(request, [("organisationID", 1, 1)])["organisationID"]
        return UnitRequest(unit_id=_other_id(identifier))
    if request.tag != _csd("TR_Lecture-OffresSanteEtablissement"):
        raise _Invalid(f"unknown function {_name(request)}")
    (demand,) = _sequence(request, [("etablissementDemandeLecture", 1, 1)])["etablissementDemandeLecture"]
    _attributes(demand, required=(), optional=())
    parts = _sequence(
        demand,
        [
            ("id_etablissement", 1, 1),
            ("dateRef", 0, 1),
            ("typeActivity", 0, None),
            ("supportedPatient", 0, None),
            ("restrictedOrganisation", 0, 1),
        ],
    )
    date_ref = _date_time(parts["dateRef"][0], lenient_dates) if parts["dateRef"] else None
    restricted = False
    if parts["restrictedOrganisation"]:
        flag = parts["restrictedOrganisation"][0]
        _attributes(flag, required=(), optional=())
        _no_children(flag)
        restricted = _boolean(flag.text or "", "restrictedOrganisation")
    return EstablishmentRequest(
        establishment_id=_other_id(parts["id_etablissement"][0]),
        query=LectureQuery(
            date_ref=date_ref,
            fields=_codes(parts["typeActivity"]),
            publics=_codes(parts["supportedPatient"]),
            restricted=restricted,
        ),
    )


# -- schema checks --------------------------------------------------------------------------------------


def _children(element: etree._Element) -> list[etree._Element]:
    return [child for child in element if isinstance(child.tag, str)]


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _name(element: etree._Element) -> str:
    return etree.QName(element).text


def _text_free(element: etree._Element) -> None:
    """Element-only content: text between children must be blank."""
    if (element.text or "").strip():
        raise _Invalid(f"{_local(element)} cannot hold text")
    for child in element:
        if (child.tail or "").strip():
            raise _Invalid(f"{_local(element)} cannot hold text")


def _no_children(element: etree._Element) -> None:
    if _children(element):
        raise _Invalid(f"{_local(element)} cannot hold elements")


def _sequence(
    element: etree._Element, spec: list[tuple[str, int, int | None]]
) -> dict[str, list[etree._Element]]:
    """Match the element's children against an XSD sequence of csd elements (name, min, max)."""
    _text_free(element)
    children = _children(element)
    found: dict[str, list[etree._Element]] = {name: [] for name, _, _ in spec}
    index = 0
    for name, low, high in spec:
        while index < len(children) and children[index].tag == _csd(name):
            if high is not None and len(found[name]) >= high:
                break
            found[name].append(children[index])
            index += 1
        if len(found[name]) < low:
            raise _Invalid(f"{_local(element)} lacks the required element {name}")
    if index < len(children):
        raise _Invalid(f"unexpected element {_name(children[index])} in {_local(element)}")
    return found


def _attributes(
    element: etree._Element, *, required: Iterable[str], optional: Iterable[str], any_other: bool = False
) -> None:
    names = set(element.attrib)
    for name in required:
        if name not in names:
            raise _Invalid(f"{_local(element)} lacks the required attribute {name}")
    allowed = set(required) | set(optional)
    extra = sorted(str(name) for name in names - allowed)
    if extra and not any_other:
        raise _Invalid(f"{_local(element)} has unexpected attribute(s) {', '.join(extra)}")


def _other_id(element: etree._Element) -> str:
    _attributes(element, required=("code", "assigningAuthorityName"), optional=())
    _no_children(element)
    if (element.text or "").strip():
        raise _Invalid(f"{_local(element)} cannot hold text")
    return element.get("code", "")


def _codes(elements: list[etree._Element]) -> frozenset[str]:
    codes = set()
    for element in elements:
        _attributes(element, required=("code", "codingScheme"), optional=(), any_other=True)
        _no_children(element)
        codes.add(element.get("code", "").strip())
    return frozenset(codes)


def _boolean(text: str, what: str) -> bool:
    value = text.strip()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise _Invalid(f"{what} is not an xs:boolean: {text!r}")


def _date_time(element: etree._Element, lenient: bool) -> dt.datetime | None:
    _attributes(element, required=(), optional=())
    _no_children(element)
    text = (element.text or "").strip()
    if not text and lenient:  # PLATINES: "possibilité de laisser vide"; None means "since ever"
        return None
    match = _DATE_TIME.fullmatch(text) or (_LENIENT_DATE_TIME.fullmatch(text) if lenient else None)
    if match is None:
        raise _Invalid(f"{_local(element)} is not an xs:dateTime (YYYY-MM-DDThh:mm:ss): {text!r}")
    parts = match.groupdict()
    try:
        year = int(parts["year"])
        hour = int(parts["hour"])
        extra_day = hour == 24 and int(parts["minute"]) == 0 and int(parts["second"] or 0) == 0
        value = dt.datetime(
            year,
            int(parts["month"]),
            int(parts["day"]),
            0 if extra_day else hour,
            int(parts["minute"]),
            int(parts["second"] or 0),
            int(float(parts["fraction"] or 0) * 1_000_000),
        )
    except ValueError as exc:
        raise _Invalid(f"{_local(element)} is not a valid date-time: {text!r} ({exc})") from None
    if extra_day:
        value += dt.timedelta(days=1)
    zone = parts["zone"]
    if zone:  # ROR date-times are naive Paris times: bring an explicit offset to Paris time
        offset = dt.timedelta() if zone == "Z" else _offset(zone)
        value = ror_wall_clock(value.replace(tzinfo=dt.timezone(offset)))
    return value


def _offset(zone: str) -> dt.timedelta:
    sign = -1 if zone[0] == "-" else 1
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if hours > 14 or minutes > 59 or (hours == 14 and minutes):
        raise _Invalid(f"invalid time-zone offset {zone}")
    return sign * dt.timedelta(hours=hours, minutes=minutes)


# --------------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------------

_ENVELOPE_HEAD: Final = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<soap:Envelope xmlns:soap="' + SOAP12_NS.encode() + b'"><soap:Body>'
)
_ENVELOPE_TAIL: Final = b"</soap:Body></soap:Envelope>\n"


def soap_envelope(body: bytes) -> bytes:
    """Wrap a serialised body element (without XML declaration) in a SOAP 1.2 envelope."""
    return _ENVELOPE_HEAD + body.strip() + _ENVELOPE_TAIL


def fault_envelope(code: int, message: str, *, subcode: str = "Sender") -> bytes:
    """A SOAP 1.2 fault whose detail is ``ror:erreur code=... message=...``.

    ``subcode`` is ``Sender`` (the request is at fault), ``Receiver`` (the server is) or one of the SOAP
    codes ``VersionMismatch`` / ``MustUnderstand``.
    """
    soap = "{" + SOAP12_NS + "}"
    envelope = etree.Element(soap + "Envelope", nsmap={"soap": SOAP12_NS, "ror": ROR_NS})
    fault = etree.SubElement(etree.SubElement(envelope, soap + "Body"), soap + "Fault")
    value = etree.SubElement(etree.SubElement(fault, soap + "Code"), soap + "Value")
    value.text = f"soap:{subcode}"
    reason = etree.SubElement(etree.SubElement(fault, soap + "Reason"), soap + "Text")
    reason.set("{http://www.w3.org/XML/1998/namespace}lang", "fr")
    reason.text = message
    detail = etree.SubElement(fault, soap + "Detail")
    etree.SubElement(detail, "{" + ROR_NS + "}erreur", code=str(code), message=message)
    return etree.tostring(envelope, encoding="UTF-8", xml_declaration=True) + b"\n"


def inline_error(code: int, message: str) -> bytes:
    """``careServicesResponse/error``: the Lecture answer for an identifier the server does not know."""
    response = etree.Element(_csd("careServicesResponse"), nsmap={"csd": CSD_NS})
    error = etree.SubElement(response, _csd("error"), code=str(code), message=message)
    error.text = message
    return etree.tostring(response, encoding="UTF-8")


@dataclass(frozen=True)
class NotifRow:
    establishment_id: str
    fields: tuple[str, ...]


def notif_response(rows: Iterable[NotifRow]) -> bytes:
    """``ror:TR-Notif-ListeEtablissementMajApresDate_Reponse`` listing establishments, then ``result``."""
    response = etree.Element(
        "{" + ROR_NS + "}TR-Notif-ListeEtablissementMajApresDate_Reponse",
        nsmap={"ror": ROR_NS, "csd": CSD_NS},
    )
    count = 0
    for row in rows:
        item = etree.SubElement(response, _csd("etablissementReponseNotif"))
        etree.SubElement(
            item,
            _csd("id_etablissement"),
            code=row.establishment_id,
            assigningAuthorityName=Oid.ID_NAT_STRUCT,
        )
        for code in row.fields:
            etree.SubElement(item, _csd("typeActivity"), code=code, codingScheme=Oid.ACTIVITY_FIELD)
        etree.SubElement(item, _csd("restrictedOrganisation")).text = "false"
        count += 1
    etree.SubElement(response, _csd("result")).text = str(count)
    return etree.tostring(response, encoding="UTF-8")
