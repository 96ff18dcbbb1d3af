"""``RorClient``: the three access services of a ROR v2.4 over one mutual-TLS HTTP client.

========================================  ====================================================================
service (ANS name)                        method
========================================  ====================================================================
TR-Recovery Extraction (REST)             :meth:`RorClient.download_extraction`
TR-Notif-ListeEtablissementsMajApresDate  :meth:`RorClient.changed_establishments`,
                                          :meth:`RorClient.changed_establishment_entries`
TR_Lecture-OffresSanteEtablissement       :meth:`RorClient.read_establishment`,
                                          :meth:`RorClient.read_establishments`
TR_Lecture-OffreSanteOrganisationInterne  :meth:`RorClient.read_unit`
open-data files (data.gouv.fr)            :meth:`RorClient.load_file`
========================================  ====================================================================

Example::

    from rorclient.ror import ClientOptions, RorClient
    from rorclient.tls import Credentials

    credentials = Credentials.load("/etc/app/ror.p12", password_env="ROR_CERT_PASSWORD")
    with RorClient(soap_url, credentials=credentials, options=ClientOptions(ca_bundle=chain)) as ror:
        for establishment_id in ror.changed_establishments(since=last_run):
            offer = ror.read_establishment(establishment_id)

A client for a ``[[sources]]`` entry of the settings: :func:`rorclient.config.ror_client`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import ssl
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import platformdirs
from lxml import etree

from rorclient.csd import read_csd, read_offer
from rorclient.errors import ConfigError, RorError
from rorclient.models import Entity, Offer
from rorclient.ror import _params
from rorclient.ror._download import ProgressCallback, download_file
from rorclient.ror._http import BUSY_STATUSES, HttpReply, HttpSession, busy_error
from rorclient.ror._options import DEFAULT_UNIT_ID_AUTHORITY, ClientOptions
from rorclient.ror._responses import check_xml_body, find_fault, parse_notif
from rorclient.ror._retry import retry_call
from rorclient.ror._soap import SoapCodec, SoapRequest
from rorclient.ror._vihf import vihf_header
from rorclient.ror.errors import HttpStatusError, safe_url
from rorclient.ror.models import DownloadResult, NotifEntry
from rorclient.tls import CertificateFileNotFoundError, CertificateFormatError, CertificateInfo, Credentials

__all__ = ["DEFAULT_UNIT_ID_AUTHORITY", "RorClient"]

_log = logging.getLogger("rorclient.ror")
_T = TypeVar("_T")

_FAULT_SNIFF_LIMIT = 64 * 1024
_FAULT_LIMIT = 1024 * 1024  # an error answer larger than this is not parsed for a SOAP fault


class RorClient:
    """A client for one ROR source; thread-safe, one connection pool, close it (or use ``with``).

    * ``soap_url``: the Notif and Lecture endpoint; ``extraction_url``: the extraction download (not
      published by ANS: see docs/ror-client.md); either may be left out when its calls are not made;
    * ``name``: the source's name, in messages and logs;
    * ``credentials``: the client certificate and key for mutual TLS (a loaded
      :class:`~rorclient.tls.Credentials`; ``None``: no client certificate);
    * ``options``: everything else, :class:`~rorclient.ror.ClientOptions` (trust, timeouts, retries,
      VIHF, WSDL, download limits, the in-process handler), defaults fit for a production ROR.

    :func:`rorclient.config.ror_client` builds one from a ``[[sources]]`` entry of the settings.
    """

    def __init__(
        self,
        soap_url: str | None = None,
        *,
        extraction_url: str | None = None,
        name: str = "ror",
        credentials: Credentials | None = None,
        options: ClientOptions | None = None,
    ) -> None:
        options = options or ClientOptions()
        self.name = name
        self.soap_url = soap_url
        self.extraction_url = extraction_url
        self.options = options
        """The :class:`~rorclient.ror.ClientOptions` this client was built with."""
        self._allow_insecure_http = options.allow_insecure_http
        for url in (self.soap_url, self.extraction_url):
            self._check_scheme(url)
        self._max_download_bytes = options.max_download_bytes
        self._credentials = credentials
        self._timeouts = options.timeouts
        self._retry = options.retry
        self._max_concurrency = options.max_concurrency
        self._vihf = options.vihf
        self._wsdl, self._schema_dir = options.wsdl, options.schema_dir
        self._establishment_authority = options.establishment_id_authority
        self._unit_authority = options.unit_id_authority
        cache_dir = options.cache_dir
        self._cache_dir = cache_dir if cache_dir else Path(platformdirs.user_cache_dir("rorclient"))
        self._handler = options.handler
        # A WSDL given by the user is checked now; rorclient's own is loaded on the first SOAP call.
        wsdl = options.wsdl
        self._codec: SoapCodec | None = SoapCodec(wsdl, schema_dir=self._schema_dir) if wsdl else None
        if credentials is None:
            context = _server_only_context(options.ca_bundle)
        else:  # a given bundle wins over the one the credentials were loaded with
            context = credentials.ssl_context(ca_bundle=options.ca_bundle)
        self._http = self._session(context)
        self._public_http: HttpSession | None = None
        self._lock = threading.Lock()
        self._closed = False

    # ----------------------------------------------------------------------------------------------------
    # lifecycle

    def __enter__(self) -> RorClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pools; the client cannot be used afterwards."""
        self._closed = True
        self._http.close()
        if self._public_http is not None:
            self._public_http.close()

    def __repr__(self) -> str:
        subject = self.certificate.subject if self.certificate else None
        url = safe_url(self.soap_url) if self.soap_url else None
        return f"RorClient(name={self.name!r}, soap_url={url!r}, certificate={subject!r})"

    @property
    def certificate(self) -> CertificateInfo | None:
        """The client certificate in use (``None`` without mTLS)."""
        return self._credentials.info if self._credentials else None

    # ----------------------------------------------------------------------------------------------------
    # Notif

    def changed_establishments(
        self,
        since: dt.datetime | dt.date | str,
        *,
        activity: _params.CodeFilter = (),
        patients: _params.CodeFilter = (),
    ) -> list[str]:
        """idNat_Struct of the establishments whose offer changed after ``since`` (Notif), in the server's
        order without repeats. ``since`` is a datetime (naive = Paris local time, as the ROR's), a date or
        an ISO 8601 string;
        ``activity`` (TRE_R227 codes) and ``patients`` (TRE_R239 codes) narrow the list."""
        entries = self.changed_establishment_entries(since, activity=activity, patients=patients)
        return list(dict.fromkeys(entry.establishment_id for entry in entries))

    def changed_establishment_entries(
        self,
        since: dt.datetime | dt.date | str,
        *,
        activity: _params.CodeFilter = (),
        patients: _params.CodeFilter = (),
    ) -> list[NotifEntry]:
        """Like :meth:`changed_establishments`, with each entry's activity fields and flag."""
        since_text = _params.date_ref(since)
        activity_codes = _params.activity_filter(activity)
        patient_codes = _params.patients_filter(patients)
        request = self._soap_codec().notif(
            since_text, activity=activity_codes, patients=patient_codes, header=self._header()
        )
        url = self._require(self.soap_url, "soap_url")
        return self._soap(request, lambda reply: parse_notif(reply.open(), source=_source(request, url)))

    # ----------------------------------------------------------------------------------------------------
    # Lecture

    def read_establishment(
        self,
        establishment_id: str,
        *,
        since: dt.datetime | dt.date | str | None = None,
        activity: _params.CodeFilter = (),
        patients: _params.CodeFilter = (),
        restricted: bool = False,
    ) -> Offer:
        """The offer of one establishment (EJ, EG, units, activities, equipment, professionals), read
        with TR_Lecture-OffresSanteEtablissement. ``since`` limits it to what changed after that time;
        ``activity``/``patients`` filter the units; ``restricted`` asks for the offer without
        unit-level detail (RG_ALIM_015). An unknown id raises :class:`~rorclient.errors.RemoteError`."""
        request = self._lecture_request(
            establishment_id, since=since, activity=activity, patients=patients, restricted=restricted
        )
        return self._lecture(request)

    def read_unit(self, unit_id: str) -> Offer:
        """The offer of one internal organisation (pôle, service, UF, UE) and what it belongs to, read
        with TR_Lecture-OffreSanteOrganisationInterne."""
        request = self._soap_codec().lecture_unit(
            (_params.identifier(unit_id, name="unit_id"), self._unit_authority), header=self._header()
        )
        # The answer may leave the unit's ancestors out: their parentFacility references come back
        # marked (rorclient.csd.reader.EXTERNAL_PARENT) for the sync engine to resolve against the store.
        return self._lecture(request, external_parents=True)

    def read_establishments(
        self,
        establishment_ids: Iterable[str],
        *,
        concurrency: int = 4,
        since: dt.datetime | dt.date | str | None = None,
        activity: _params.CodeFilter = (),
        patients: _params.CodeFilter = (),
        restricted: bool = False,
    ) -> Generator[tuple[str, Offer | RorError], None, None]:
        """Read many establishments, ``concurrency`` at a time (bounded by ``max_concurrency``), yielding
        ``(id, offer)`` or ``(id, error)`` as each read completes (not in input order). A failed read does
        not stop the others; ids are consumed lazily, so a long iterable is fine. Closing the generator
        early (``close()``, or leaving a ``for`` loop and dropping it) cancels the reads not yet started.
        The calls run in worker threads; the answers are parsed in the thread that iterates."""
        if concurrency < 1:
            raise ConfigError("concurrency must be at least 1")
        options: dict[str, Any] = {
            "since": since,
            "activity": activity,
            "patients": patients,
            "restricted": restricted,
        }

        def fetch(establishment_id: str) -> tuple[SoapRequest, HttpReply] | RorError:
            try:
                request = self._lecture_request(establishment_id, **options)
                return request, self._soap(request, self._sniffed_lecture(request), keep_reply=True)
            except RorError as error:
                return error

        # The worker threads only wait on the network; the answers are parsed here, in the consumer's
        # thread, one at a time: sixteen threads parsing at once took turns at the interpreter lock
        # (CPU spent on hand-offs) and held up each other's network calls.
        for establishment_id, fetched in _bounded_map(fetch, establishment_ids, concurrency):
            if isinstance(fetched, RorError):
                yield establishment_id, fetched
                continue
            request, reply = fetched
            try:
                offer: Offer | RorError = self._parse_lecture(request, reply)
            except RorError as error:
                if error.retryable:  # as if parsed within the call: its next attempts follow
                    try:
                        offer = self._lecture(request, failed=error)
                    except RorError as again:
                        offer = again
                else:
                    offer = error
            finally:
                reply.close()
            yield establishment_id, offer

    def _lecture_request(
        self,
        establishment_id: str,
        *,
        since: dt.datetime | dt.date | str | None,
        activity: _params.CodeFilter,
        patients: _params.CodeFilter,
        restricted: bool,
    ) -> SoapRequest:
        return self._soap_codec().lecture_establishment(
            (_params.identifier(establishment_id, name="establishment_id"), self._establishment_authority),
            since=_params.date_ref(since) if since is not None else None,
            activity=_params.activity_filter(activity),
            patients=_params.patients_filter(patients),
            restricted=restricted,
            header=self._header(),
        )

    def _lecture(
        self, request: SoapRequest, *, external_parents: bool = False, failed: RorError | None = None
    ) -> Offer:
        sniff = self._sniffed_lecture(request)

        def parse(reply: HttpReply) -> Offer:
            sniff(reply)
            return self._parse_lecture(request, reply, external_parents=external_parents)

        return self._soap(request, parse, failed=failed)

    def _sniffed_lecture(self, request: SoapRequest) -> Callable[[HttpReply], HttpReply]:
        """Raises the SOAP fault a small Lecture answer is (the retry policy decides on it), else returns
        the answer."""
        url = self._require(self.soap_url, "soap_url")

        def sniff(reply: HttpReply) -> HttpReply:
            if reply.size <= _FAULT_SNIFF_LIMIT:
                body = reply.body
                if b"Fault" in body:
                    fault = find_fault(body, source=_source(request, url))
                    if fault is not None:
                        raise fault
            return reply

        return sniff

    def _parse_lecture(
        self, request: SoapRequest, reply: HttpReply, *, external_parents: bool = False
    ) -> Offer:
        # Read from the spooled body as it is parsed: a large answer is never held whole in memory.
        source = _source(request, self._require(self.soap_url, "soap_url"))
        return read_offer(reply.open(), source_name=source, external_parents=external_parents)

    # ----------------------------------------------------------------------------------------------------
    # Extraction and files

    def download_extraction(
        self, dest: str | os.PathLike[str], *, progress: ProgressCallback | None = None
    ) -> DownloadResult:
        """Download the extraction (``extraction_url``) to ``dest``, resuming an interrupted download
        (``<dest>.part``) and retrying per the retry policy; see :mod:`rorclient.ror._download`.
        ``progress(bytes_on_disk, total_or_None)`` is called as the file grows; if it raises, the
        download stops and the next call resumes it. The file is kept as sent (plain, gzip or zip)."""
        url = self._require(self.extraction_url, "extraction_url")
        self._check_open()
        return download_file(
            self._http,
            url,
            Path(dest),
            policy=self._retry,
            progress=progress,
            max_bytes=self._max_download_bytes,
        )

    def load_file(
        self, path_or_url: str | os.PathLike[str], *, progress: Callable[[int], None] | None = None
    ) -> Iterator[Entity]:
        """Stream the entities of a CSD file (an extraction or a data.gouv.fr open-data file; plain, gzip or
        zip) through :func:`rorclient.csd.read_csd`. An ``http(s)://`` URL is downloaded first (resumably)
        into ``cache_dir``: with the client certificate when it is on the same host as this source's
        endpoints, else with the system's CAs."""
        source = os.fspath(path_or_url)
        if urlsplit(source).scheme.lower() in ("http", "https"):
            self._check_scheme(source)
            path = self._fetch(source)
            return read_csd(path, source_name=safe_url(source), progress=progress)
        return read_csd(Path(source), progress=progress)

    def _fetch(self, url: str) -> Path:
        self._check_open()
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
        name = Path(urlsplit(url).path).name or "download"
        dest = self._cache_dir / "downloads" / f"{digest}-{name}"
        session = self._http if self._same_host(url) else self._public_session()
        return download_file(
            session,
            url,
            dest,
            policy=self._retry,
            operation="file download",
            max_bytes=self._max_download_bytes,
        ).path

    def _same_host(self, url: str) -> bool:
        host = urlsplit(url).netloc
        return any(known and urlsplit(known).netloc == host for known in (self.soap_url, self.extraction_url))

    def _public_session(self) -> HttpSession:
        with self._lock:
            if self._public_http is None:
                self._public_http = self._session(None)
            return self._public_http

    # ----------------------------------------------------------------------------------------------------
    # plumbing

    def _soap_codec(self) -> SoapCodec:
        """The request codec, built on first use (loading a WSDL takes a few tens of milliseconds)."""
        with self._lock:
            if self._codec is None:
                self._codec = SoapCodec(self._wsdl, schema_dir=self._schema_dir)
            return self._codec

    def _session(self, context: ssl.SSLContext | None) -> HttpSession:
        from rorclient import __version__

        return HttpSession(
            ssl_context=context,
            timeouts=self._timeouts,
            max_concurrency=self._max_concurrency,
            user_agent=f"rorclient/{__version__}",
            client_subject=self.certificate.subject if self.certificate else None,
            handler=self._handler,
        )

    def _header(self) -> etree._Element | None:
        if self._vihf is None:
            return None
        subject = self._credentials.info.subject if self._credentials else None
        return vihf_header(self._vihf, certificate_subject=subject)

    def _soap(
        self,
        request: SoapRequest,
        parse: Callable[[HttpReply], _T],
        *,
        keep_reply: bool = False,
        failed: RorError | None = None,
    ) -> _T:
        """Send ``request`` and return ``parse(answer)``, retried per the policy. ``keep_reply``: the
        answer stays open (``parse`` returns it; the caller closes it). ``failed``: how a first attempt
        made elsewhere failed (the policy counts it and waits before the next)."""
        url = self._require(self.soap_url, "soap_url")
        self._check_open()
        headers = {"Content-Type": request.content_type, "Accept": "application/soap+xml, text/xml"}

        def attempt() -> _T:
            nonlocal failed
            if failed is not None:
                error, failed = failed, None
                raise error
            reply = self._http.call(
                url, request.body, headers, operation=request.operation, total=self._timeouts.total
            )
            done = False
            try:
                _raise_for_reply(reply, request.operation)
                result = parse(reply)
                done = True
                return result
            finally:
                if not (done and keep_reply):
                    reply.close()

        return retry_call(attempt, self._retry, operation=f"{self.name} {request.operation}")

    def _check_scheme(self, url: str | None) -> None:
        """Refuse ``http://`` (no TLS: no server authentication, confidential data in clear) unless
        ``allow_insecure_http``; then warn, at every start, that this is for tests only."""
        if not url or urlsplit(url).scheme.lower() != "http":
            return
        if not self._allow_insecure_http:
            raise ConfigError(
                f"source {self.name!r}: {safe_url(url)} is plain http://, refused (no TLS); use https://, "
                "or set allow_insecure_http = true for a local test server only"
            )
        _log.warning(
            "source %r uses plain http:// (%s): no TLS, for a local test server only (allow_insecure_http)",
            self.name,
            safe_url(url),
        )

    def _require(self, value: str | None, key: str) -> str:
        if not value:
            raise ConfigError(f"source {self.name!r} has no {key}")
        return value

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError(f"the client of source {self.name!r} is closed")


def _raise_for_reply(reply: HttpReply, operation: str) -> None:
    if reply.status in BUSY_STATUSES:
        raise busy_error(reply.status, reply.headers, operation, reply.url)
    if reply.status != 200:
        fault = (
            find_fault(reply.body, source=_where(operation, reply.url))
            if reply.size <= _FAULT_LIMIT
            else None
        )
        if fault is not None:
            raise fault
        raise HttpStatusError(
            reply.status, f"{operation}: {safe_url(reply.url)} answered HTTP {reply.status}"
        )
    check_xml_body(
        reply.head(1024), content_type=reply.headers.get("content-type"), source=_where(operation, reply.url)
    )


def _where(operation: str, url: str) -> str:
    return f"{operation}: {safe_url(url)}"


def _source(request: SoapRequest, url: str) -> str:
    return f"{request.operation} answer from {safe_url(url)}"


def _server_only_context(ca_bundle: str | os.PathLike[str] | None) -> ssl.SSLContext | None:
    """Without a client certificate: trust ``ca_bundle`` (or, when ``None``, the default CAs)."""
    if ca_bundle is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=os.fspath(ca_bundle))
    except FileNotFoundError:
        raise CertificateFileNotFoundError(f"CA bundle not found: {os.fspath(ca_bundle)}") from None
    except ssl.SSLError:
        raise CertificateFormatError(f"{os.fspath(ca_bundle)} is not a PEM CA bundle") from None
    return context


def _bounded_map(
    function: Callable[[str], _T], items: Iterable[str], concurrency: int
) -> Generator[tuple[str, _T], None, None]:
    """``(item, function(item))`` in completion order, at most ``2 * concurrency`` items in flight."""
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="rorclient-read")
    pending: dict[Future[_T], str] = {}
    iterator = iter(items)

    def submit_next() -> None:
        for item in iterator:
            pending[pool.submit(function, item)] = item
            return

    try:
        for _ in range(2 * concurrency):
            submit_next()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                item = pending.pop(future)
                submit_next()
                yield item, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
