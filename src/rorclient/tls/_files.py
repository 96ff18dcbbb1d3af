"""Reading certificate, key and CA files: PKCS#12, PEM (the key possibly encrypted, possibly in the
certificate file) and DER, with the errors that say what is wrong with which file."""

from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path
from typing import Literal, TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from pydantic import SecretStr

from rorclient._secrets import (
    PasswordFileNotFoundError,
    PasswordResolutionError,
    PasswordSource,
    resolve_password,
    secret_bytes,
)
from rorclient.errors import (
    CertificateFileNotFoundError,
    CertificateFormatError,
    CertificatePasswordError,
    ConfigError,
    KeyMismatchError,
)

logger = logging.getLogger("rorclient.tls")

CertificateFormat = Literal["pkcs12", "pem", "der"]
_StrPath = str | os.PathLike[str]
_Extension = TypeVar("_Extension", bound=x509.ExtensionType)

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


def _extension(certificate: x509.Certificate, kind: type[_Extension]) -> _Extension | None:
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
