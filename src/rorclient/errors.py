"""The exceptions rorclient raises: one hierarchy, defined here.

Every error is a :class:`RorError`. Each class says, through ``retryable``, whether doing the same thing
again may succeed (a network blip) or will fail the same way (a bad file, a bad certificate); each maps
to a process exit code (docs/cli.md)::

    RorError
    ├── ConfigError                bad settings, unknown store URL, missing file      (not retryable) 2
    │   └── NotInitializedError    a delta sync of a source never pulled
    ├── DataError                  malformed, hostile or inconsistent CSD input        (not retryable) 3
    ├── StoreError                 the local store failed or is inconsistent          (not retryable) 4
    │   └── SchemaVersionError     the store was written by a newer rorclient
    ├── TlsError                   certificate, key or chain cannot be used           (not retryable) 5
    │   ├── CertificateFileNotFoundError, CertificateFormatError, CertificatePasswordError,
    │   │   KeyMismatchError, CertificateExpiredError, CertificateNotYetValidError,
    │   │   CertificateUsageError                       found before connecting (rorclient.tls) 50-56
    │   ├── ServerCertificateError                      the server's certificate is untrusted    57
    │   └── ClientCertificateRejectedError              the server refused ours in the handshake 58
    │       ├── UnknownClientCaError                                                              59
    │       └── CertificateRevokedError                                                           60
    ├── TransportError             connection, timeout, 5xx, 429                         (retryable) 6
    │   └── ConnectError, RequestTimeoutError, IncompleteResponseError, ServerBusyError
    ├── RemoteError                the ROR answered with an error (SOAP fault, inline) (not retryable) 7
    │   ├── HttpStatusError, UnexpectedResponseError
    │   └── SoapFaultError         SOAP 1.2 fault, soap:Sender
    │       └── ServerFaultError   SOAP 1.2 fault, soap:Receiver                         (retryable)
    ├── SafetyBreakerError         a run would delete or close too much; nothing committed          8
    └── SyncLockedError            another process holds the store's sync lock                      9

The web-service errors are importable from :mod:`rorclient.ror.errors` too, the certificate ones from
:mod:`rorclient.tls`, the sync ones from :mod:`rorclient.sync`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from rorclient.sync.report import SyncReport

__all__ = [
    "BreakerLatchedError",
    "CertificateExpiredError",
    "CertificateFileNotFoundError",
    "CertificateFormatError",
    "CertificateNotYetValidError",
    "CertificatePasswordError",
    "CertificateRevokedError",
    "CertificateUsageError",
    "ClientCertificateRejectedError",
    "ConfigError",
    "ConnectError",
    "DataError",
    "HttpStatusError",
    "IncompleteResponseError",
    "KeyMismatchError",
    "NotInitializedError",
    "RemoteError",
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "RorError",
    "SafetyBreakerError",
    "SchemaVersionError",
    "ServerBusyError",
    "ServerCertificateError",
    "ServerFaultError",
    "SoapFaultError",
    "StoreError",
    "SyncLockedError",
    "TlsError",
    "TransportError",
    "UnexpectedResponseError",
    "UnknownClientCaError",
    "UnknownIdentifierError",
]


class RorError(Exception):
    """Root of every error raised by rorclient."""

    retryable: ClassVar[bool] = False
    #: Process exit code the command line uses for this family of errors (see docs/cli.md).
    exit_code: ClassVar[int] = 1

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (reader processes): keep the class, message and attributes,
        # whatever the subclass's constructor takes.
        return _rebuild_error, (type(self), self.args, self.__dict__.copy())


class ConfigError(RorError):
    """The settings, a command-line option or a store URL cannot be used as given."""

    exit_code = 2


class DataError(RorError):
    """CSD input that cannot be accepted: not XML, hostile, wrong root, invalid value, broken reference.

    ``path`` is the element path (``/CSD/facilityDirectory/facility[3]/extension``) and ``line`` the line
    in the source document, when known. ``source`` names the file or stream.
    """

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        source: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.source:
            where.append(self.source)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.path:
            where.append(self.path)
        return f"{self.message} ({', '.join(where)})" if where else self.message


class StoreError(RorError):
    """The local store could not complete an operation; nothing partial was committed."""

    exit_code = 4


class SchemaVersionError(StoreError):
    """The store's schema is newer than this rorclient understands: upgrade rorclient."""


class TlsError(RorError):
    """A certificate, private key, password or CA chain cannot be used to authenticate."""

    exit_code = 5


class TransportError(RorError):
    """The ROR could not be reached or answered with a transient failure; retrying may help."""

    retryable = True
    exit_code = 6


class RemoteError(RorError):
    """The ROR answered with an error: a SOAP fault or an inline ``careServicesResponse/error``."""

    exit_code = 7

    def __init__(self, code: int | None, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"ROR error {code}: {message}" if code is not None else f"ROR error: {message}")


def _rebuild_error(cls: type[RorError], args: tuple[Any, ...], state: dict[str, Any]) -> RorError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


# --------------------------------------------------------------------------------------------------------
# Certificates and keys, found before any connection (rorclient.tls)


class CertificateFileNotFoundError(TlsError):
    """A certificate, key, CA bundle or password file does not exist. Exit code 50."""

    exit_code = 50


class CertificateFormatError(TlsError):
    """A file cannot be read, is neither PKCS#12, PEM nor DER, or holds no certificate or no private key.
    Exit code 51.
    """

    exit_code = 51


class CertificatePasswordError(TlsError):
    """The password is wrong, is needed but was not given, or its environment variable or file cannot be
    read. Exit code 52.
    """

    exit_code = 52


class KeyMismatchError(TlsError):
    """The private key does not belong to the certificate. Exit code 53."""

    exit_code = 53


class CertificateExpiredError(TlsError):
    """The certificate's validity period has ended; IGC-Santé cannot renew it: order a new one.
    Exit code 54.
    """

    exit_code = 54


class CertificateNotYetValidError(TlsError):
    """The certificate's validity period has not started yet (or the system clock is wrong). Exit code 55."""

    exit_code = 55


class CertificateUsageError(TlsError):
    """The certificate cannot authenticate a TLS client: a seal/signature ("cachet") certificate without
    digitalSignature or clientAuth, or a CA certificate. Exit code 56.
    """

    exit_code = 56


# --------------------------------------------------------------------------------------------------------
# The ROR web services (rorclient.ror)

# Transport (retryable)


class ConnectError(TransportError):
    """The server could not be reached, or closed or reset the connection."""


class RequestTimeoutError(TransportError):
    """A timeout expired: ``phase`` is ``connect``, ``read``, ``write``, ``pool`` or ``deadline`` (the
    total time allowed for one request)."""

    def __init__(self, message: str, *, phase: str) -> None:
        self.phase = phase
        super().__init__(message)


class IncompleteResponseError(TransportError):
    """The response body ended before the length the server announced (a cut connection)."""


class ServerBusyError(TransportError):
    """The server answered 429, 502, 503 or 504. ``retry_after`` is its ``Retry-After`` in seconds
    (``None`` when absent or unreadable)."""

    def __init__(self, message: str, *, status: int, retry_after: float | None) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


# --------------------------------------------------------------------------------------------------------
# Remote (the server answered, with an error)


class HttpStatusError(RemoteError):
    """The server answered an unexpected HTTP status without a SOAP fault (``status``)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(None, message)


class UnexpectedResponseError(RemoteError):
    """The server answered a success status with a body that is not the expected SOAP/XML answer."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


class ResponseTooLargeError(UnexpectedResponseError):
    """An answer or a download is larger than the configured cap (``max_download_bytes``, or the SOAP
    answer limit): refused rather than filling the disk or the memory. Not retryable."""

    def __init__(self, message: str, *, limit: int) -> None:
        self.limit = limit
        super().__init__(message)


class SoapFaultError(RemoteError):
    """A SOAP 1.2 fault whose code is ``soap:Sender`` (or unknown): the server refused the request.

    ``code`` and ``message`` come from the ``ror:erreur`` detail when present (else the fault reason);
    ``soap_code`` is the fault code's local name (``Sender``, ``Receiver``...).
    """

    def __init__(self, code: int | None, message: str, *, soap_code: str | None) -> None:
        self.soap_code = soap_code
        super().__init__(code, message)


class ServerFaultError(SoapFaultError):
    """A SOAP 1.2 fault whose code is ``soap:Receiver``: the server failed, the request may succeed later."""

    retryable = True


# --------------------------------------------------------------------------------------------------------
# TLS (found during the handshake)


class ServerCertificateError(TlsError):
    """The server's certificate does not chain to the configured CA bundle, has expired, or names another
    host. Check ``ca_bundle`` (the IGC-Santé chain) and the URL. Exit code 57."""

    exit_code = 57


class ClientCertificateRejectedError(TlsError):
    """The server refused the client certificate during the TLS handshake (``alert`` is the TLS alert).
    Exit code 58."""

    exit_code = 58

    def __init__(self, message: str, *, alert: str | None = None) -> None:
        self.alert = alert
        super().__init__(message)


class UnknownClientCaError(ClientCertificateRejectedError):
    """The server does not trust the authority that issued the client certificate: a certificate from
    another PKI, or a TEST certificate sent to production. Exit code 59."""

    exit_code = 59


class CertificateRevokedError(ClientCertificateRejectedError):
    """The server says the client certificate is revoked: order a new one from IGC-Santé. Exit code 60."""

    exit_code = 60


# --------------------------------------------------------------------------------------------------------
# The sync engine (rorclient.sync)


class SafetyBreakerError(RorError):
    """A run would delete or close more than the allowed share of the store; nothing was committed.

    ``report`` is the run's report (status ``blocked``, its ``breaker`` verdict and the planned counts).
    Check the ROR's answer (a truncated or filtered extraction?) and run again with ``force=True``
    (``--force``) if the changes are real. Also raised, without latching the breaker, by a pull, load,
    sync or refresh that would take over live rows another source holds (``report.takeovers``). Exit
    code 8.
    """

    exit_code = 8

    def __init__(self, message: str, report: SyncReport) -> None:
        self.report = report
        super().__init__(message)


class BreakerLatchedError(SafetyBreakerError):
    """The source's safety breaker tripped earlier and stays latched (``store.breaker_latches()``):
    nothing is applied from that source until an operator runs it with ``force=True`` (``--force``) or
    releases it (:meth:`Sync.reset_breaker`, ``rorclient breaker reset``). Exit code 8."""


class UnknownIdentifierError(RorError):
    """A refresh named an establishment or unit that the source does not know; nothing was changed.
    Neither the ROR nor the store knows it (a typo?), or a FHIR source returns nothing for an
    establishment the store holds (kept: an answer without it proves nothing). Exit code 11."""

    exit_code = 11


class SyncLockedError(RorError):
    """Another process (a daemon, another ``rorclient sync``) is pulling or syncing this store. Exit
    code 9."""

    exit_code = 9


class NotInitializedError(ConfigError):
    """A delta sync was asked for a source that was never pulled: run ``pull`` first."""
