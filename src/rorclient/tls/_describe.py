"""What a certificate says about itself (``rorclient cert inspect``, ``status``, the health file), and
the one certificate-expiry policy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import BaseModel, ConfigDict

from rorclient._secrets import (
    PasswordSource,
)
from rorclient.tls._files import (
    _KEY_LABELS,
    CertificateFormat,
    _der_certificate,
    _detect,
    _extension,
    _is_ca,
    _load_pkcs12,
    _pem_blocks,
    _pem_certificates,
    _read,
    _resolve,
    _split_leaf,
    _StrPath,
)

#: The one certificate-expiry threshold of rorclient (docs/configuration.md): a client certificate that
#: expires within this many days is logged as a warning when loaded and at every daemon cycle, flagged
#: ``expires_soon`` in ``status`` and ``cert inspect``, and makes the daemon's health ``degraded``.
#: IGC-Santé reminds holders earlier (60 days): ordering the renewal then leaves a margin.
EXPIRY_WARNING_DAYS = 30

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
