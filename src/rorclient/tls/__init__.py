"""Client credentials for mutual TLS with the ROR (IGC-Santé ORG / AUTH_CLI certificates).

:class:`Credentials` loads a certificate and its private key from a PKCS#12 file (``.p12``/``.pfx``) or
from PEM files (the key may be encrypted and may sit in the certificate file), checks that they can
authenticate a TLS client, and builds the :class:`ssl.SSLContext` every HTTP/SOAP client of rorclient
shares. The private key stays in memory: it is never written to disk in clear (see
:mod:`rorclient._secrets`). Passwords are held as :class:`pydantic.SecretStr` and never appear in
``repr``, logs or error messages.

:func:`inspect_certificate` describes any certificate file (with or without a key) as a
:class:`CertificateInfo`, ready to print or dump as JSON.

Errors are :class:`~rorclient.errors.TlsError` subclasses (defined in :mod:`rorclient.errors`, importable
from here); each has its own process exit code:

====================================  ====  ==========================================================
class                                 exit  raised when
====================================  ====  ==========================================================
:class:`CertificateFileNotFoundError`   50  a certificate, key, CA bundle or password file is missing
:class:`CertificateFormatError`         51  a file is unreadable, of unknown format, or lacks a key
:class:`CertificatePasswordError`       52  the password is wrong, missing, or its source unreadable
:class:`KeyMismatchError`               53  the private key does not belong to the certificate
:class:`CertificateExpiredError`        54  the certificate's validity has ended
:class:`CertificateNotYetValidError`    55  the certificate's validity has not started
:class:`CertificateUsageError`          56  the certificate cannot authenticate a TLS client
                                            (seal / signature-only, CA certificate, no clientAuth)
====================================  ====  ==========================================================
"""

from __future__ import annotations

from rorclient.errors import (
    CertificateExpiredError,
    CertificateFileNotFoundError,
    CertificateFormatError,
    CertificateNotYetValidError,
    CertificatePasswordError,
    CertificateUsageError,
    KeyMismatchError,
)
from rorclient.errors import TlsError as TlsError  # the family, importable from here as before
from rorclient.tls._credentials import Credentials
from rorclient.tls._describe import EXPIRY_WARNING_DAYS, CertificateInfo, inspect_certificate
from rorclient.tls._files import CertificateFormat

__all__ = [
    "EXPIRY_WARNING_DAYS",
    "CertificateExpiredError",
    "CertificateFileNotFoundError",
    "CertificateFormat",
    "CertificateFormatError",
    "CertificateInfo",
    "CertificateNotYetValidError",
    "CertificatePasswordError",
    "CertificateUsageError",
    "Credentials",
    "KeyMismatchError",
    "inspect_certificate",
]
