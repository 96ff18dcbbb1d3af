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

import datetime as dt
import logging
import os
import re
import ssl
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn, TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import BaseModel, ConfigDict, SecretStr

from rorclient._secrets import (
    PasswordFileNotFoundError,
    PasswordResolutionError,
    PasswordSource,
    load_cert_chain_from_memory,
    resolve_password,
    secret_bytes,
)
from rorclient.errors import (
    CertificateExpiredError,
    CertificateFileNotFoundError,
    CertificateFormatError,
    CertificateNotYetValidError,
    CertificatePasswordError,
    CertificateUsageError,
    ConfigError,
    KeyMismatchError,
    TlsError,
)

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

logger = logging.getLogger("rorclient.tls")

#: IGC-Santé notifies 60 days before expiry; rorclient warns from the same day on.
EXPIRY_WARNING_DAYS = 60

CertificateFormat = Literal["pkcs12", "pem", "der"]
_StrPath = str | os.PathLike[str]
_Extension = TypeVar("_Extension", bound=x509.ExtensionType)


# --------------------------------------------------------------------------------------------------------
# Inspection model


class CertificateInfo(BaseModel):
    """What a certificate says about itself, and whether it can authenticate a TLS client now.

    Never holds key material; ``model_dump_json()`` gives what ``rorclient cert inspect`` prints.
    """

    model_config = ConfigDict(frozen=True)

    subject: str
    """Subject DN in RFC 4514 order (``CN=…,OU=…,O=…,ST=…,C=FR``): what FHIR onboarding asks for."""
    issuer: str
    serial_number: str
    """Serial number in upper-case hexadecimal."""
    not_before: dt.datetime
    not_after: dt.datetime
    days_until_expiry: int
    """Whole days left before ``not_after``; negative once expired."""
    expired: bool
    not_yet_valid: bool
    expires_soon: bool
    """Still valid but expires within :data:`EXPIRY_WARNING_DAYS` days: time to renew."""
    key_usage: tuple[str, ...]
    """RFC 5280 names (``digitalSignature``, ``nonRepudiation``, …); empty when the extension is absent."""
    extended_key_usage: tuple[str, ...]
    """``clientAuth``, ``serverAuth``, … or dotted OIDs; empty when the extension is absent."""
    subject_alternative_names: tuple[str, ...]
    is_ca: bool
    can_authenticate_tls_client: bool
    problems: tuple[str, ...]
    """Why the certificate cannot authenticate a TLS client now; empty when it can."""
    fingerprint_sha256: str
    public_key: str
    """Algorithm and size, e.g. ``RSA 2048`` or ``EC secp256r1``."""
    public_key_pem: str
    """The public key, PEM: what CSD 2.4 onboarding asks for."""
    source_format: CertificateFormat
    has_private_key: bool
    chain: tuple[str, ...]
    """Subjects of the other certificates found in the file (intermediate and root CAs)."""


def inspect_certificate(
    path: _StrPath,
    *,
    password: PasswordSource | None = None,
    password_env: str | None = None,
    password_file: _StrPath | None = None,
    now: dt.datetime | None = None,
) -> CertificateInfo:
    """Describe the certificate in ``path``: PKCS#12 (needs its password), PEM (certificate alone, with
    its chain or with a key, which is not decrypted) or DER. The first end-entity certificate is described.
    """
    path = Path(path)
    data = _read(path, "certificate file")
    fmt = _detect(data, path)
    secret = _resolve(password, password_env, password_file)
    if fmt == "pkcs12":
        key, certificates = _load_pkcs12(data, path, secret)
        has_key = key is not None
    elif fmt == "pem":
        blocks = _pem_blocks(data)
        certificates = _pem_certificates(blocks, path)
        has_key = any(label in _KEY_LABELS for label, _ in blocks)
        key = None
    else:
        certificates, has_key, key = [_der_certificate(data, path)], False, None
    leaf, chain = _split_leaf(certificates, key, path)
    return _describe(leaf, chain, fmt, has_key, now or dt.datetime.now(dt.UTC))


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

    def ssl_context(self, *, x509_strict: bool = True) -> ssl.SSLContext:
        """A new client context: TLS 1.2 minimum, server certificate and host name verified against the CA
        bundle (or the system CAs), this certificate, its chain and key presented when the server asks.

        ``x509_strict`` enables OpenSSL's strict RFC 5280 checks of the server chain (the Python 3.13
        default). Build the context once and share it: creating one costs a few milliseconds.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        if x509_strict:
            context.verify_flags |= ssl.VERIFY_X509_STRICT
        try:
            if self._ca_bundle is not None:
                context.load_verify_locations(cadata=self._ca_bundle)
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


# --------------------------------------------------------------------------------------------------------
# Reading and parsing

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)
_CERT_LABELS = frozenset({b"CERTIFICATE", b"X509 CERTIFICATE"})
_KEY_LABELS = frozenset({b"PRIVATE KEY", b"ENCRYPTED PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY"})
_TLS_KEY_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
    dsa.DSAPrivateKey,
)
_PemBlocks = list[tuple[bytes, bytes]]


def _resolve(
    password: PasswordSource | None, password_env: str | None, password_file: _StrPath | None
) -> SecretStr | None:
    try:
        return resolve_password(password, password_env=password_env, password_file=password_file)
    except PasswordFileNotFoundError as exc:
        raise CertificateFileNotFoundError(str(exc)) from None
    except PasswordResolutionError as exc:
        raise CertificatePasswordError(str(exc)) from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CertificateFileNotFoundError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise CertificateFormatError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def _detect(data: bytes, path: Path) -> CertificateFormat:
    if _looks_like_pkcs12(data):
        return "pkcs12"
    if b"-----BEGIN " in data:
        return "pem"
    try:
        x509.load_der_x509_certificate(data)
    except ValueError:
        raise CertificateFormatError(
            f"{path} is neither a PKCS#12 file nor a PEM or DER certificate"
        ) from None
    return "der"


def _looks_like_pkcs12(data: bytes) -> bool:
    """A DER ``PFX`` starts with a SEQUENCE whose first element is ``INTEGER 3`` (RFC 7292)."""
    if len(data) < 5 or data[0] != 0x30:
        return False
    length_octets = data[1] & 0x7F if data[1] & 0x80 else 0
    offset = 2 + length_octets
    return data[offset : offset + 3] == b"\x02\x01\x03"


def _load_pkcs12(
    data: bytes, path: Path, secret: SecretStr | None
) -> tuple[PrivateKeyTypes | None, list[x509.Certificate]]:
    attempts = [secret_bytes(secret)] if secret is not None else [None, b""]
    for attempt in attempts:
        try:
            key, cert, additional = pkcs12.load_key_and_certificates(data, attempt)
        except ValueError:
            continue
        except UnsupportedAlgorithm as exc:
            raise CertificateFormatError(f"{path} uses an unsupported algorithm: {exc}") from None
        certificates = ([cert] if cert is not None else []) + list(additional)
        if not certificates:
            raise CertificateFormatError(f"{path} holds no certificate")
        return key, certificates
    if secret is None:
        raise CertificatePasswordError(
            f"{path} is password-protected: give its password (password, password_env or password_file; "
            "--password-env or --password-file on the command line)"
        )
    raise CertificatePasswordError(f"wrong password for {path} (or the PKCS#12 file is damaged)")


def _pem_blocks(data: bytes) -> _PemBlocks:
    return [(match.group(1), match.group(0)) for match in _PEM_BLOCK.finditer(data)]


def _pem_certificates(blocks: _PemBlocks, path: Path) -> list[x509.Certificate]:
    certificates = []
    for label, block in blocks:
        if label in _CERT_LABELS:
            try:
                certificates.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                raise CertificateFormatError(f"{path} holds a damaged PEM certificate") from None
    if not certificates:
        raise CertificateFormatError(f"{path} holds no PEM certificate")
    return certificates


def _pem_key(blocks: _PemBlocks, path: Path, secret: SecretStr | None) -> PrivateKeyTypes | None:
    keys = [block for label, block in blocks if label in _KEY_LABELS]
    if not keys:
        return None
    if len(keys) > 1:
        raise CertificateFormatError(f"{path} holds several private keys")
    block = keys[0]
    encrypted = block.startswith(b"-----BEGIN ENCRYPTED") or b"Proc-Type: 4,ENCRYPTED" in block
    if not encrypted:
        _warn_if_exposed(path)
        secret = None  # a password given for an unencrypted key is simply not needed
    elif secret is None:
        raise CertificatePasswordError(
            f"the private key in {path} is encrypted: give its password (password, password_env or "
            "password_file; --password-env or --password-file on the command line)"
        )
    try:
        key = serialization.load_pem_private_key(block, secret_bytes(secret))
    except ValueError:
        if encrypted:
            raise CertificatePasswordError(f"wrong password for the private key in {path}") from None
        raise CertificateFormatError(f"{path} holds a damaged private key") from None
    except (TypeError, UnsupportedAlgorithm):
        raise CertificateFormatError(f"{path} holds a private key that cannot be loaded") from None
    return _tls_key(key, path)


def _load_key_file(path: Path, secret: SecretStr | None) -> PrivateKeyTypes:
    data = _read(path, "private key file")
    if b"-----BEGIN " in data:
        key = _pem_key(_pem_blocks(data), path, secret)
        if key is None:
            raise CertificateFormatError(f"{path} holds no PEM private key")
        return key
    try:
        return _tls_key(serialization.load_der_private_key(data, secret_bytes(secret)), path)
    except TypeError:
        # DER keys carry no "encrypted" label: TypeError means a password was missing or superfluous.
        if secret is None:
            raise CertificatePasswordError(
                f"the private key in {path} is encrypted: give its password"
            ) from None
        return _tls_key(serialization.load_der_private_key(data, None), path)
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateFormatError(
            f"{path} is not a private key (PEM or DER), or its password is wrong"
        ) from None


def _tls_key(key: PrivateKeyTypes, path: Path) -> PrivateKeyTypes:
    if not isinstance(key, _TLS_KEY_TYPES):
        raise CertificateFormatError(f"the private key in {path} is of a type TLS cannot use")
    return key


def _warn_if_exposed(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("the private key in %s is not encrypted and other users can read it (chmod 600)", path)


def _der_certificate(data: bytes, path: Path) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise CertificateFormatError(f"{path} is not a DER certificate") from None


def _read_ca_bundle(path: Path) -> str:
    data = _read(path, "CA bundle")
    try:
        if b"-----BEGIN " in data:
            certificates = _pem_certificates(_pem_blocks(data), path)
        else:
            certificates = [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise CertificateFormatError(f"{path} is not a PEM or DER CA bundle") from None
    return "".join(cert.public_bytes(serialization.Encoding.PEM).decode("ascii") for cert in certificates)


def _split_leaf(
    certificates: list[x509.Certificate], key: PrivateKeyTypes | None, path: Path
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The end-entity certificate (the one matching ``key`` when there is a key) and the others."""
    if key is not None:
        matching = [cert for cert in certificates if _same_public_key(cert, key)]
        if not matching:
            raise KeyMismatchError(f"the private key does not match any certificate in {path}")
        leaf = matching[0]
    else:
        leaf = next((cert for cert in certificates if not _is_ca(cert)), certificates[0])
    return leaf, [cert for cert in certificates if cert is not leaf]


def _same_public_key(certificate: x509.Certificate, key: PrivateKeyTypes) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    try:
        return certificate.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)
    except (ValueError, UnsupportedAlgorithm):
        return False


def _is_self_signed(certificate: x509.Certificate) -> bool:
    return certificate.subject == certificate.issuer


def _is_ca(certificate: x509.Certificate) -> bool:
    constraints = _extension(certificate, x509.BasicConstraints)
    return constraints is not None and constraints.ca


# --------------------------------------------------------------------------------------------------------
# Description

_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}
_KEY_USAGE_NAMES = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "nonRepudiation"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)


@dataclass(frozen=True)
class _Usage:
    key_usage: tuple[str, ...] | None
    extended_key_usage: tuple[str, ...] | None

    def problems(self, *, is_ca: bool) -> list[str]:
        problems = []
        if is_ca:
            problems.append("it is a CA certificate, not an end-entity certificate")
        if self.key_usage is not None and "digitalSignature" not in self.key_usage:
            problems.append(
                f"its key usage ({', '.join(self.key_usage) or 'none'}) lacks digitalSignature, "
                "as in a seal or signature (cachet) certificate"
            )
        eku = self.extended_key_usage
        if eku is not None and not {"clientAuth", "anyExtendedKeyUsage"} & set(eku):
            problems.append(f"its extended key usage ({', '.join(eku) or 'none'}) lacks clientAuth")
        return problems


def _describe(
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    source_format: CertificateFormat,
    has_private_key: bool,
    now: dt.datetime,
) -> CertificateInfo:
    not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    expired, not_yet_valid = now > not_after, now < not_before
    is_ca = _is_ca(certificate)
    usage = _usage(certificate)
    problems = usage.problems(is_ca=is_ca)
    if expired:
        problems.append(f"it expired on {not_after:%Y-%m-%d %H:%M} UTC")
    if not_yet_valid:
        problems.append(f"it is not valid before {not_before:%Y-%m-%d %H:%M} UTC")
    public_key = certificate.public_key()
    return CertificateInfo(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        serial_number=f"{certificate.serial_number:X}",
        not_before=not_before,
        not_after=not_after,
        days_until_expiry=(not_after - now).days,
        expired=expired,
        not_yet_valid=not_yet_valid,
        expires_soon=not expired and not_after - now <= dt.timedelta(days=EXPIRY_WARNING_DAYS),
        key_usage=usage.key_usage or (),
        extended_key_usage=usage.extended_key_usage or (),
        subject_alternative_names=_alternative_names(certificate),
        is_ca=is_ca,
        can_authenticate_tls_client=not problems,
        problems=tuple(problems),
        fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(":").upper(),
        public_key=_describe_public_key(public_key),
        public_key_pem=public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii"),
        source_format=source_format,
        has_private_key=has_private_key,
        chain=tuple(cert.subject.rfc4514_string() for cert in chain),
    )


def _usage(certificate: x509.Certificate) -> _Usage:
    key_usage = _extension(certificate, x509.KeyUsage)
    extended = _extension(certificate, x509.ExtendedKeyUsage)
    return _Usage(
        key_usage=None
        if key_usage is None
        else tuple(name for attribute, name in _KEY_USAGE_NAMES if getattr(key_usage, attribute)),
        extended_key_usage=None
        if extended is None
        else tuple(_EKU_NAMES.get(oid, oid.dotted_string) for oid in extended),
    )


def _alternative_names(certificate: x509.Certificate) -> tuple[str, ...]:
    san = _extension(certificate, x509.SubjectAlternativeName)
    if san is None:
        return ()
    names = []
    for name in san:
        if isinstance(name, x509.DNSName):
            names.append(f"DNS:{name.value}")
        elif isinstance(name, x509.IPAddress):
            names.append(f"IP:{name.value}")
        elif isinstance(name, x509.RFC822Name):
            names.append(f"email:{name.value}")
        elif isinstance(name, x509.UniformResourceIdentifier):
            names.append(f"URI:{name.value}")
        else:
            names.append(str(name.value))
    return tuple(names)


def _describe_public_key(public_key: object) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA {public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"EC {public_key.curve.name}"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(public_key, dsa.DSAPublicKey):
        return f"DSA {public_key.key_size}"
    return type(public_key).__name__


def _extension(certificate: x509.Certificate, kind: type[_Extension]) -> _Extension | None:
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
