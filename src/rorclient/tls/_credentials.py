"""Credentials: a client certificate, its key and the CAs to trust, loaded once into memory (the key is
never written in clear) and turned into :class:`ssl.SSLContext` objects."""

from __future__ import annotations

import datetime as dt
import logging
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from rorclient._secrets import (
    PasswordSource,
    load_cert_chain_from_memory,
)
from rorclient.errors import (
    CertificateExpiredError,
    CertificateFormatError,
    CertificateNotYetValidError,
    CertificateUsageError,
    ConfigError,
    KeyMismatchError,
    TlsError,
)
from rorclient.tls._describe import (
    CertificateInfo,
    _describe,
)
from rorclient.tls._files import (
    CertificateFormat,
    _der_certificate,
    _detect,
    _is_self_signed,
    _load_key_file,
    _load_pkcs12,
    _pem_blocks,
    _pem_certificates,
    _pem_key,
    _read,
    _read_ca_bundle,
    _resolve,
    _same_public_key,
    _split_leaf,
    _StrPath,
)

logger = logging.getLogger("rorclient.tls")

# --------------------------------------------------------------------------------------------------------
# Credentials


class Credentials:
    """A client certificate, its private key and the CAs to trust, ready to build an :class:`ssl.SSLContext`.

    Build with :meth:`from_pkcs12`, :meth:`from_pem` or :meth:`load`. Loading refuses a certificate that
    is expired, not yet valid or unfit for TLS client authentication, unless ``allow_invalid=True`` (meant
    for tests proving that a server refuses it too). The password is dropped once the key is loaded; the
    key lives only in memory, and the object cannot be pickled.
    """

    __slots__ = ("_ca_bundle", "_certificate", "_chain", "_key", "_source_format")

    def __init__(
        self,
        certificate: x509.Certificate,
        key: PrivateKeyTypes,
        chain: Sequence[x509.Certificate] = (),
        *,
        ca_bundle: _StrPath | None = None,
        allow_invalid: bool = False,
        source_format: CertificateFormat = "pem",
    ) -> None:
        """Low-level constructor from ``cryptography`` objects; prefer the ``from_*`` class methods."""
        if not _same_public_key(certificate, key):
            raise KeyMismatchError(
                f"the private key does not belong to the certificate {certificate.subject.rfc4514_string()}"
            )
        self._certificate = certificate
        self._key = key
        self._chain = tuple(cert for cert in chain if not _is_self_signed(cert) and cert != certificate)
        self._ca_bundle = _read_ca_bundle(Path(ca_bundle)) if ca_bundle is not None else None
        self._source_format: CertificateFormat = source_format
        self._check(allow_invalid=allow_invalid)

    @classmethod
    def from_pkcs12(
        cls,
        path: _StrPath,
        *,
        password: PasswordSource | None = None,
        password_env: str | None = None,
        password_file: _StrPath | None = None,
        ca_bundle: _StrPath | None = None,
        allow_invalid: bool = False,
    ) -> Credentials:
        """Load a PKCS#12 file (modern AES or legacy 3DES/RC2). The password comes from ``password``, from
        the environment variable named ``password_env`` or from the file ``password_file``.
        ``ca_bundle`` (PEM or DER) is what the server's certificate must chain to; without it the
        system's default CAs are trusted.
        """
        path = Path(path)
        data = _read(path, "PKCS#12 file")
        if _detect(data, path) != "pkcs12":
            raise CertificateFormatError(f"{path} is not a PKCS#12 (.p12/.pfx) file")
        secret = _resolve(password, password_env, password_file)
        key, certificates = _load_pkcs12(data, path, secret)
        if key is None:
            raise CertificateFormatError(f"{path} holds no private key")
        leaf, chain = _split_leaf(certificates, key, path)
        return cls(leaf, key, chain, ca_bundle=ca_bundle, allow_invalid=allow_invalid, source_format="pkcs12")

    @classmethod
    def from_pem(
        cls,
        cert: _StrPath,
        key: _StrPath | None = None,
        *,
        password: PasswordSource | None = None,
        password_env: str | None = None,
        password_file: _StrPath | None = None,
        ca_bundle: _StrPath | None = None,
        allow_invalid: bool = False,
    ) -> Credentials:
        """Load a certificate (PEM with optional chain, or DER) and its private key (PEM or DER, encrypted
        or not). Without ``key`` the key is looked for in the certificate file. The password, if any,
        decrypts the key.
        """
        cert_path = Path(cert)
        data = _read(cert_path, "certificate file")
        fmt = _detect(data, cert_path)
        if fmt == "pkcs12":
            raise CertificateFormatError(f"{cert_path} is a PKCS#12 file: use Credentials.from_pkcs12")
        secret = _resolve(password, password_env, password_file)
        if fmt == "der":
            certificates = [_der_certificate(data, cert_path)]
            private_key = _load_key_file(Path(key), secret) if key is not None else None
        else:
            blocks = _pem_blocks(data)
            certificates = _pem_certificates(blocks, cert_path)
            private_key = (
                _load_key_file(Path(key), secret) if key is not None else _pem_key(blocks, cert_path, secret)
            )
        if private_key is None:
            raise CertificateFormatError(f"no private key in {cert_path}; give the key file as well")
        leaf, chain = _split_leaf(certificates, private_key, cert_path)
        return cls(
            leaf, private_key, chain, ca_bundle=ca_bundle, allow_invalid=allow_invalid, source_format=fmt
        )

    @classmethod
    def load(
        cls,
        cert_path: _StrPath,
        key_path: _StrPath | None = None,
        *,
        password: PasswordSource | None = None,
        password_env: str | None = None,
        password_file: _StrPath | None = None,
        ca_bundle: _StrPath | None = None,
        allow_invalid: bool = False,
    ) -> Credentials:
        """Load credentials from ``cert_path``, recognising PKCS#12, PEM or DER by content."""
        path = Path(cert_path)
        if _detect(_read(path, "certificate file"), path) != "pkcs12":
            return cls.from_pem(
                path,
                key_path,
                password=password,
                password_env=password_env,
                password_file=password_file,
                ca_bundle=ca_bundle,
                allow_invalid=allow_invalid,
            )
        if key_path is not None:
            raise ConfigError(f"{path} is a PKCS#12 file, which holds the key: do not give a key file")
        return cls.from_pkcs12(
            path,
            password=password,
            password_env=password_env,
            password_file=password_file,
            ca_bundle=ca_bundle,
            allow_invalid=allow_invalid,
        )

    @property
    def info(self) -> CertificateInfo:
        """The client certificate described as of now."""
        return _describe(self._certificate, self._chain, self._source_format, True, dt.datetime.now(dt.UTC))

    def ssl_context(self, *, x509_strict: bool = True, ca_bundle: _StrPath | None = None) -> ssl.SSLContext:
        """A new client context: TLS 1.2 minimum, server certificate and host name verified against the CA
        bundle (or the system CAs), this certificate, its chain and key presented when the server asks.
        ``ca_bundle`` (PEM or DER), when given, replaces the bundle these credentials were loaded with.

        ``x509_strict`` enables OpenSSL's strict RFC 5280 checks of the server chain (the Python 3.13
        default). Build the context once and share it: creating one costs a few milliseconds.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        if x509_strict:
            context.verify_flags |= ssl.VERIFY_X509_STRICT
        bundle = _read_ca_bundle(Path(ca_bundle)) if ca_bundle is not None else self._ca_bundle
        try:
            if bundle is not None:
                context.load_verify_locations(cadata=bundle)
            else:
                context.load_default_certs(ssl.Purpose.SERVER_AUTH)
            load_cert_chain_from_memory(context, self._certificate, self._key, self._chain)
        except ssl.SSLError as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            raise TlsError(f"OpenSSL refused the client certificate {self._subject}: {reason}") from None
        return context

    def __repr__(self) -> str:
        info = self.info
        return (
            f"Credentials(subject={info.subject!r}, issuer={info.issuer!r}, "
            f"not_after={info.not_after.isoformat()!r}, sha256={info.fingerprint_sha256!r})"
        )

    def __reduce__(self) -> NoReturn:
        raise TypeError("Credentials hold a private key and cannot be pickled")

    @property
    def _subject(self) -> str:
        return self._certificate.subject.rfc4514_string()

    def _check(self, *, allow_invalid: bool) -> None:
        info = self.info
        if info.expires_soon:
            logger.warning(
                "the client certificate %s expires in %d days (%s UTC): renew it with IGC-Santé now",
                info.subject,
                info.days_until_expiry,
                f"{info.not_after:%Y-%m-%d}",
            )
        if not info.problems:
            return
        if allow_invalid:
            logger.warning("using client certificate %s despite: %s", info.subject, "; ".join(info.problems))
            return
        if info.expired:
            raise CertificateExpiredError(
                f"the client certificate {info.subject} expired on {info.not_after:%Y-%m-%d %H:%M} UTC; "
                "an expired IGC-Santé certificate cannot be renewed: order a new one"
            )
        if info.not_yet_valid:
            raise CertificateNotYetValidError(
                f"the client certificate {info.subject} is not valid before "
                f"{info.not_before:%Y-%m-%d %H:%M} UTC (check the system clock)"
            )
        raise CertificateUsageError(
            f"the certificate {info.subject} cannot authenticate a TLS client: "
            + "; ".join(info.problems)
            + "; use an ORG AUTH_CLI certificate"
        )
