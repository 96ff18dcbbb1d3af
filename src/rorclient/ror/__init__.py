"""The ROR v2.4 web-service client: extraction download, Notif and Lecture over mutual TLS.

See :class:`RorClient` and docs/ror-client.md. Importing this package imports ``httpx`` and ``zeep``;
``import rorclient`` alone does not.
"""

from __future__ import annotations

from rorclient.ror._download import ProgressCallback
from rorclient.ror._options import DEFAULT_MAX_DOWNLOAD_BYTES, ClientOptions
from rorclient.ror._params import CodeFilter
from rorclient.ror._retry import RetryPolicy, disable_retry_waits
from rorclient.ror._soap import default_wsdl_path
from rorclient.ror.client import DEFAULT_UNIT_ID_AUTHORITY, RorClient
from rorclient.ror.errors import (
    CertificateRevokedError,
    ClientCertificateRejectedError,
    ConnectError,
    HttpStatusError,
    IncompleteResponseError,
    RequestTimeoutError,
    ResponseTooLargeError,
    ServerBusyError,
    ServerCertificateError,
    ServerFaultError,
    SoapFaultError,
    UnexpectedResponseError,
    UnknownClientCaError,
)
from rorclient.ror.models import (
    DownloadResult,
    HttpHandler,
    HttpRequest,
    HttpResponse,
    NotifEntry,
    Timeouts,
    VihfProfile,
    VihfSettings,
)

__all__ = [
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "DEFAULT_UNIT_ID_AUTHORITY",
    "CertificateRevokedError",
    "ClientCertificateRejectedError",
    "ClientOptions",
    "CodeFilter",
    "ConnectError",
    "DownloadResult",
    "HttpHandler",
    "HttpRequest",
    "HttpResponse",
    "HttpStatusError",
    "IncompleteResponseError",
    "NotifEntry",
    "ProgressCallback",
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "RorClient",
    "ServerBusyError",
    "ServerCertificateError",
    "ServerFaultError",
    "SoapFaultError",
    "Timeouts",
    "UnexpectedResponseError",
    "UnknownClientCaError",
    "VihfProfile",
    "VihfSettings",
    "default_wsdl_path",
    "disable_retry_waits",
]
