"""The one decoder of a SOAP 1.2 fault, shared by the web-service client and the CSD reader.

A fault whose code is ``soap:Receiver`` is the server's failure: a :class:`ServerFaultError`, retryable.
Any other (``soap:Sender``, unknown) is a :class:`SoapFaultError`: the request is at fault. ``code`` and
``message`` come from the ``ror:erreur`` (or ``csd:error``) detail when present, else the fault reason.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from rorclient.codes import CSD_NS, ROR_NS, SOAP12_NS
from rorclient.errors import ServerFaultError, SoapFaultError

__all__ = ["fault_error"]

_DETAIL: Final = f"{{{SOAP12_NS}}}Detail"
_TEXT: Final = f"{{{SOAP12_NS}}}Text"
_CODE_VALUE: Final = f"{{{SOAP12_NS}}}Code/{{{SOAP12_NS}}}Value"
_ERROR_DETAILS: Final = (f"{{{ROR_NS}}}erreur", f"{{{CSD_NS}}}error")


def fault_error(fault: etree._Element) -> SoapFaultError:
    """The error a ``soap:Fault`` element stands for (its subtree must be complete)."""
    soap_code = _fault_code(fault)
    code: int | None = None
    message: str | None = None
    for detail in fault.iter(_DETAIL):
        for element in detail.iter(*_ERROR_DETAILS):
            code = _int_or_none(element.get("code"))
            message = (element.get("message") or element.text or "").strip() or None
            break
    if message is None:
        reason = next((text.text for text in fault.iter(_TEXT) if text.text), None)
        message = (reason or "SOAP fault without reason").strip()
    error_class = ServerFaultError if soap_code == "Receiver" else SoapFaultError
    return error_class(code, message, soap_code=soap_code)


def _fault_code(fault: etree._Element) -> str | None:
    value = fault.find(_CODE_VALUE)
    if value is None or not value.text:
        return None
    prefix, _, local = value.text.strip().rpartition(":")
    return local if not prefix or value.nsmap.get(prefix) == SOAP12_NS else value.text.strip()


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None
