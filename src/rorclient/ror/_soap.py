"""The SOAP 1.2 request codec: zeep builds the Notif and Lecture envelopes from a WSDL loaded offline.

The default WSDL is rorclient's own (``wsdl/rorclient-ror-v2.4.wsdl`` and its XSD, package data). A user
may give the official ``ROR-v2.4.wsdl`` instead: its remote ``schemaLocation``s (esante.gouv.fr, w3.org)
are then read from files of the same name in ``schema_dir`` (default: the WSDL's directory). Nothing is
ever fetched from the network: an unmapped remote schema is a :class:`~rorclient.errors.ConfigError`.

zeep only builds envelopes here (``Client.create_message``); rorclient sends them itself through its
shared HTTP client, and reads answers with its own streaming parsers, never into zeep objects.

A delta cycle sends hundreds of Lecture requests that differ only by the establishment's code: zeep
builds the envelope once per set of options, with a placeholder code, and the requests of plain codes
are that envelope's bytes with the code put in place of the placeholder (byte for byte what zeep would
build, pinned by the tests). Other codes, and requests with a header (the VIHF token is new at every
call), are built by zeep each time.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import zeep
import zeep.exceptions
from lxml import etree

from rorclient.errors import ConfigError

__all__ = [
    "LECTURE_ESTABLISHMENT_FUNCTION",
    "LECTURE_OPERATION",
    "LECTURE_URN",
    "NOTIF_OPERATION",
    "Coded",
    "SoapCodec",
    "SoapRequest",
    "default_wsdl_path",
]

NOTIF_OPERATION = "TR-Notif-ListeEtablissementsMajApresDate_Demande"
LECTURE_OPERATION = "careServicesRequest_Request"
LECTURE_URN = "urn:asip:ror:lecture:offreSoinEtablissement:2017"
LECTURE_ESTABLISHMENT_FUNCTION = "TR_Lecture-OffresSanteEtablissement"
LECTURE_UNIT_FUNCTION = "TR_Lecture-OffreSanteOrganisationInterne"
BINDING = "{urn:asip:ror:2015}CareServicesRequest_Binding"
SOAP12_ENVELOPE_NS = "http://www.w3.org/2003/05/soap-envelope"

_PACKAGE = "rorclient.ror"
_WSDL_DIR = "wsdl"
_WSDL_NAME = "rorclient-ror-v2.4.wsdl"
_PACKAGE_FILES = frozenset({_WSDL_NAME, "rorclient-csd-requests.xsd"})
_PLACEHOLDER_ADDRESS = "https://ror.invalid/ROR/0.1/CSD_ROR_Binding"
_ZEEP_CLIENT: Any = zeep.Client  # zeep is untyped: its client is handled as Any, inside this module only

#: A code and the OID of its nomenclature (``codedtype``'s ``code`` and ``codingScheme``).
Coded = tuple[str, str]

#: Codes that XML serialises as they are (no escaping, ASCII): these may fill a cached envelope.
_PLAIN_CODE = re.compile(r"[A-Za-z0-9._:/+-]{1,200}")
_PLACEHOLDER_CODE = "RORCLIENTxCODExPLACEHOLDER"
#: Cached Lecture envelopes kept at most (one per set of options; a sync uses one).
_MAX_TEMPLATES = 32


@dataclass(frozen=True)
class SoapRequest:
    """A serialised envelope, ready to POST."""

    operation: str
    """``notif`` or ``lecture`` (for logs, errors and retries)."""
    action: str
    body: bytes

    @property
    def content_type(self) -> str:
        """SOAP 1.2 media type carrying the action (RFC 3902)."""
        return f'application/soap+xml; charset=UTF-8; action="{self.action}"'


def default_wsdl_path() -> Path:
    """Where rorclient's own WSDL is installed."""
    return Path(str(resources.files(_PACKAGE).joinpath(_WSDL_DIR, _WSDL_NAME)))


class SoapCodec:
    """Builds the request envelopes of the two ROR v2.4 operations from a WSDL (see the module docstring).

    Loading a WSDL takes a few tens of milliseconds: build one codec per client. Thread-safe.
    """

    def __init__(
        self, wsdl: str | os.PathLike[str] | None = None, *, schema_dir: str | os.PathLike[str] | None = None
    ):
        location = Path(wsdl) if wsdl is not None else default_wsdl_path()
        if wsdl is not None and not location.is_file():
            raise ConfigError(f"WSDL file not found: {location}")
        transport = _OfflineTransport(Path(schema_dir) if schema_dir is not None else location.parent)
        try:
            self._client: Any = _ZEEP_CLIENT(str(location), transport=transport)
            self._service = self._client.create_service(BINDING, _PLACEHOLDER_ADDRESS)
            binding: Any = self._client.wsdl.bindings[BINDING]
            self._actions = {
                name: str(binding.get(name).soapaction) for name in (NOTIF_OPERATION, LECTURE_OPERATION)
            }
        except ConfigError:
            raise
        except (KeyError, ValueError, etree.LxmlError, zeep.exceptions.Error) as exc:
            raise ConfigError(
                f"cannot use the WSDL {location}: {type(exc).__name__}: {exc} (it must define the binding "
                f"{BINDING} with the operations {NOTIF_OPERATION} and {LECTURE_OPERATION})"
            ) from None
        self._lock = threading.Lock()
        self._templates: dict[tuple[Any, ...], tuple[bytes, bytes] | None] = {}

    @property
    def wsdl_location(self) -> str:
        """The WSDL in use (a path)."""
        return str(self._client.wsdl.location)

    def notif(
        self,
        since: str,
        *,
        activity: Sequence[Coded] = (),
        patients: Sequence[Coded] = (),
        header: etree._Element | None = None,
    ) -> SoapRequest:
        """TR-Notif-ListeEtablissementsMajApresDate: establishments changed after ``since``
        (``YYYY-MM-DDThh:mm:ss``), optionally filtered by activity field and supported public."""
        params = {"dateRef": since, "typeActivity": _coded(activity), "supportedPatient": _coded(patients)}
        return self._build("notif", NOTIF_OPERATION, header, params=params)

    def lecture_establishment(
        self,
        establishment: Coded,
        *,
        since: str | None = None,
        activity: Sequence[Coded] = (),
        patients: Sequence[Coded] = (),
        restricted: bool = False,
        header: etree._Element | None = None,
    ) -> SoapRequest:
        """TR_Lecture-OffresSanteEtablissement for ``establishment`` (idNat_Struct, authority OID)."""
        code, authority = establishment
        if header is None and _PLAIN_CODE.fullmatch(code):
            key = (authority, since, tuple(activity), tuple(patients), restricted)
            template = self._template(key)
            if template is not None:
                prefix, suffix = template
                return SoapRequest(
                    operation="lecture",
                    action=self._actions[LECTURE_OPERATION],
                    body=prefix + code.encode("ascii") + suffix,
                )
        return self._lecture_establishment(
            code, authority, since, activity, patients, restricted=restricted, header=header
        )

    def _lecture_establishment(
        self,
        code: str,
        authority: str,
        since: str | None,
        activity: Sequence[Coded],
        patients: Sequence[Coded],
        *,
        restricted: bool,
        header: etree._Element | None,
    ) -> SoapRequest:
        demand: dict[str, Any] = {"id_etablissement": {"code": code, "assigningAuthorityName": authority}}
        if since is not None:
            demand["dateRef"] = since
        demand["typeActivity"] = _coded(activity)
        demand["supportedPatient"] = _coded(patients)
        demand["restrictedOrganisation"] = "1" if restricted else "0"
        function = {LECTURE_ESTABLISHMENT_FUNCTION: {"etablissementDemandeLecture": demand}}
        return self._lecture(function, header)

    def _template(self, key: tuple[Any, ...]) -> tuple[bytes, bytes] | None:
        """The Lecture envelope for ``key``'s options, split around the establishment's code (``None``:
        the placeholder does not come out exactly once, so every request of these options goes to zeep)."""
        with self._lock:
            if key in self._templates:
                return self._templates[key]
        authority, since, activity, patients, restricted = key
        request = self._lecture_establishment(
            _PLACEHOLDER_CODE, authority, since, activity, patients, restricted=restricted, header=None
        )
        marker = f'"{_PLACEHOLDER_CODE}"'.encode("ascii")
        parts = request.body.split(marker)
        template = (parts[0] + b'"', b'"' + parts[1]) if len(parts) == 2 else None
        with self._lock:
            if len(self._templates) >= _MAX_TEMPLATES:
                self._templates.clear()
            self._templates[key] = template
        return template

    def lecture_unit(self, unit: Coded, *, header: etree._Element | None = None) -> SoapRequest:
        """TR_Lecture-OffreSanteOrganisationInterne for ``unit`` (identifiantOI, authority)."""
        code, authority = unit
        function = {
            LECTURE_UNIT_FUNCTION: {"organisationID": {"code": code, "assigningAuthorityName": authority}}
        }
        return self._lecture(function, header)

    def _lecture(self, function: dict[str, Any], header: etree._Element | None) -> SoapRequest:
        function.update({"urn": LECTURE_URN, "encapsulated": True})
        return self._build("lecture", LECTURE_OPERATION, header, function=function)

    def _build(self, operation: str, name: str, header: etree._Element | None, **body: Any) -> SoapRequest:
        if header is not None:
            body["_soapheaders"] = [header]
        try:
            with self._lock:
                envelope = self._client.create_message(self._service, name, **body)
        except (TypeError, ValueError, zeep.exceptions.Error) as exc:
            raise ConfigError(f"the WSDL in use cannot encode a {operation} request: {exc}") from None
        _ensure_header(envelope)
        return SoapRequest(
            operation=operation,
            action=self._actions[name],
            body=etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"),
        )


def _coded(values: Sequence[Coded]) -> list[dict[str, str]]:
    return [{"code": code, "codingScheme": scheme} for code, scheme in values]


def _ensure_header(envelope: etree._Element) -> None:
    """PLATINES templates always carry a ``soap:Header`` (empty without VIHF); zeep omits an empty one."""
    tag = f"{{{SOAP12_ENVELOPE_NS}}}Header"
    if envelope.find(tag) is None:
        envelope.insert(0, etree.Element(tag))


class _OfflineTransport(zeep.Transport):
    """Serves WSDL/XSD documents from disk and package data only; never opens a connection."""

    def __init__(self, schema_dir: Path) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # zeep is untyped
        self._schema_dir = schema_dir

    def load(self, url: str) -> bytes:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ftp"):
            local = self._schema_dir / Path(parts.path).name
            if not local.is_file():
                raise ConfigError(
                    f"the WSDL imports {url}; rorclient never downloads schemas: put a copy named "
                    f"{local.name} in {self._schema_dir}"
                )
            return local.read_bytes()
        path = Path(parts.path if parts.scheme == "file" else url)
        if path.name in _PACKAGE_FILES and path.parent == default_wsdl_path().parent:
            return resources.files(_PACKAGE).joinpath(_WSDL_DIR, path.name).read_bytes()
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the schema document {path}: {exc.strerror}") from None

    def get(self, address: str, params: Any, headers: Any) -> Any:
        raise ConfigError(f"zeep tried to GET {address}: rorclient sends requests itself")

    def post(self, address: str, message: Any, headers: Any) -> Any:
        raise ConfigError(f"zeep tried to POST to {address}: rorclient sends requests itself")
