"""Small, safe readers for what is not a CSD document: SOAP faults and the Notif answer.

Lecture answers go to the streaming CSD reader (:func:`rorclient.csd.read_offer`). The Notif answer is a
flat list of identifiers, read here with a hardened lxml parser: no DTD, no entity expansion, no network,
libxml2's size limits kept.
"""

from __future__ import annotations

from lxml import etree

from rorclient.codes import CSD_NS, ROR_NS, SOAP12_NS
from rorclient.csd._fault import fault_error
from rorclient.errors import DataError, SoapFaultError
from rorclient.ror.errors import UnexpectedResponseError
from rorclient.ror.models import NotifEntry

__all__ = ["check_xml_body", "find_fault", "parse_notif"]

_ENVELOPE = f"{{{SOAP12_NS}}}Envelope"
_BODY = f"{{{SOAP12_NS}}}Body"
_FAULT = f"{{{SOAP12_NS}}}Fault"
_NOTIF_RESPONSES = frozenset(
    {
        f"{{{ROR_NS}}}TR-Notif-ListeEtablissementMajApresDate_Reponse",
        f"{{{ROR_NS}}}TR-Notif-ListeEtablissementsMajApresDate_Reponse",  # plural, as the request: tolerated
    }
)
# ``etablissementID`` is the pre-12/2017 name PLATINES' Schematron still looks for: tolerated.
_NOTIF_ENTRIES = frozenset({f"{{{CSD_NS}}}etablissementReponseNotif", f"{{{CSD_NS}}}etablissementID"})
_BOM = b"\xef\xbb\xbf"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True, remove_pis=True
    )


def check_xml_body(body: bytes, *, content_type: str | None, source: str) -> None:
    """Refuse a success answer that is plainly not XML (an HTML error page, a proxy's message...)."""
    head = body[:512].lstrip().removeprefix(_BOM).lstrip()
    if not head.startswith(b"<") or head[:15].lower().startswith((b"<!doctype html", b"<html")):
        shown = content_type or "no content type"
        raise UnexpectedResponseError(f"{source} answered with {shown} content that is not a SOAP envelope")


def _parse(body: bytes, source: str) -> etree._Element:
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise DataError(
            f"the answer is not well-formed XML: {exc.msg}", line=exc.lineno, source=source
        ) from None
    if root.getroottree().docinfo.doctype:
        raise DataError("the answer carries a DOCTYPE, which is not allowed", source=source)
    return root


def _payload(root: etree._Element, source: str) -> etree._Element:
    if root.tag != _ENVELOPE:
        return root
    body = root.find(_BODY)
    if body is None or len(body) == 0:
        raise DataError("the SOAP envelope has no body content", path="/Envelope/Body", source=source)
    return body[0]


def find_fault(body: bytes, *, source: str) -> SoapFaultError | None:
    """The error a SOAP 1.2 fault in ``body`` stands for, or ``None`` when ``body`` is not a fault."""
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError:
        return None
    fault = root.find(f"{_BODY}/{_FAULT}") if root.tag == _ENVELOPE else None
    return fault_error(fault) if fault is not None else None


def parse_notif(body: bytes, *, source: str) -> list[NotifEntry]:
    """The establishments listed in a Notif answer (a SOAP envelope or its bare body element).

    Raises :class:`~rorclient.ror.errors.SoapFaultError` for a fault and
    :class:`~rorclient.errors.DataError` for an answer of the wrong shape.
    """
    root = _parse(body, source)
    payload = _payload(root, source)
    if payload.tag == _FAULT:
        raise fault_error(payload)
    if payload.tag not in _NOTIF_RESPONSES:
        raise DataError(
            f"expected a TR-Notif-ListeEtablissementMajApresDate_Reponse, got {etree.QName(payload).text}",
            source=source,
        )
    entries = []
    for index, element in enumerate(payload.iterchildren(*_NOTIF_ENTRIES), start=1):
        path = f"/{etree.QName(payload).localname}/{etree.QName(element).localname}[{index}]"
        identifier = element.find(f"{{{CSD_NS}}}id_etablissement")
        code = identifier.get("code", "").strip() if identifier is not None else ""
        if not code:
            raise DataError("an establishment has no id_etablissement/@code", path=path, source=source)
        entries.append(
            NotifEntry(
                establishment_id=code,
                id_authority=identifier.get("assigningAuthorityName") if identifier is not None else None,
                activity_fields=tuple(
                    typed.get("code", "").strip()
                    for typed in element.iterchildren(f"{{{CSD_NS}}}typeActivity")
                    if typed.get("code")
                ),
                restricted=_boolean(element.findtext(f"{{{CSD_NS}}}restrictedOrganisation"), path, source),
            )
        )
    return entries


def _boolean(text: str | None, path: str, source: str) -> bool | None:
    if text is None:
        return None
    value = text.strip()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise DataError(f"restrictedOrganisation is not a boolean: {value!r}", path=path, source=source)
