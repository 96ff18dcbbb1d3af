"""A throw-away PKI shaped like IGC-Santé TEST, for the sandbox server and for tests.

:func:`build_test_pki` writes, into one directory::

    TEST AC RACINE FAKE-IGC-SANTE ELEMENTAIRE                        root-ca.pem
    └── TEST AC FAKE-IGC-SANTE ELEMENTAIRE ORGANISATIONS             intermediate-ca.pem, crl.pem
        ├── server          SSL_SERV-like: SAN localhost/127.0.0.1/::1, EKU serverAuth
        ├── client          AUTH_CLI-like: KU digitalSignature, EKU clientAuth
        ├── expiring_soon   a good client certificate that expires in 20 days
        ├── expired         ended 30 days ago
        ├── not_yet_valid   starts in 30 days
        ├── seal            "cachet" profile: KU nonRepudiation only, EKU emailProtection only
        └── revoked         a good client certificate listed in crl.pem
    TEST AC RACINE AUTRE AUTORITE                                     wrong-ca-root.pem
    └── wrong_ca        a good client certificate from a CA the server does not trust

Every issued certificate comes as a leaf PEM, a leaf + issuer PEM, a PEM private key encrypted with the
PKI password and a PKCS#12 bundle (AES, same password) holding key, leaf and CA chain. The good client
also comes as a legacy 3DES/SHA-1 PKCS#12, as one PEM file holding certificate, chain and encrypted key,
and with an unencrypted key (the only clear key written, for loader tests).

The certificates follow RFC 5280 closely enough for OpenSSL's ``VERIFY_X509_STRICT`` (the Python 3.13
default): critical basicConstraints and keyUsage, SKI/AKI everywhere, positive 159-bit serials, SANs on
the server. Every name is invented; nothing here is trusted outside the sandbox.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import BaseModel, ConfigDict, SecretStr

__all__ = ["IssuedCertificate", "KeyType", "TestPki", "build_test_pki"]

KeyType = Literal["ec", "rsa"]
DEFAULT_PASSWORD = "rorclient-test"  # noqa: S105 - a published password for a throw-away test PKI
DEFAULT_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
DEFAULT_APP_NAME = "CLIENT_TEST_RORCLIENT"

#: A reused PKI is rebuilt after this age, before its time-sensitive certificates change status
#: (``expiring_soon`` expires after 20 days, ``not_yet_valid`` starts after 30).
MAX_REUSE_AGE = dt.timedelta(days=7)

_MANIFEST = "pki.json"
_MANIFEST_VERSION = 1
_CRL_URL = "http://crl.invalid/fake-igc-sante/ACI-EL-ORG-TEST.crl"
_ORGANISATION_UNIT_NUMBER = "99999999999"  # invented 11-digit structure number, like IGC-Santé's OU


class IssuedCertificate(BaseModel):
    """The files of one certificate issued by the test PKI."""

    model_config = ConfigDict(frozen=True)

    name: str
    subject: str
    serial_number: str
    certificate: Path
    """Leaf certificate, PEM."""
    chain: Path
    """Leaf certificate followed by its issuing CA, PEM."""
    key: Path
    """Private key, PKCS#8 PEM encrypted with the PKI password."""
    pkcs12: Path
    """Key, leaf and CA chain in a PKCS#12 file protected by the PKI password."""


class TestPki(BaseModel):
    """Where :func:`build_test_pki` wrote everything; see the module docstring for what each entry is."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name

    model_config = ConfigDict(frozen=True)

    directory: Path
    password: SecretStr
    key_type: KeyType
    hosts: tuple[str, ...]
    created_at: dt.datetime
    root_ca: Path
    intermediate_ca: Path
    ca_bundle: Path
    """Intermediate and root CA, PEM: what a client trusts to verify the server and vice versa."""
    crl: Path
    """CRL signed by the intermediate CA, PEM, listing :attr:`revoked`."""
    wrong_ca_root: Path
    server: IssuedCertificate
    client: IssuedCertificate
    expiring_soon: IssuedCertificate
    expired: IssuedCertificate
    not_yet_valid: IssuedCertificate
    seal: IssuedCertificate
    revoked: IssuedCertificate
    wrong_ca: IssuedCertificate
    client_key_unencrypted: Path
    """The good client's private key in clear (mode 0600), to test loading unencrypted PEM keys."""
    client_combined_pem: Path
    """The good client's leaf, intermediate and encrypted key in a single PEM file."""
    client_legacy_pkcs12: Path
    """The good client as a legacy PKCS#12 (3DES + SHA-1 MAC), like older IGC-Santé downloads."""


def build_test_pki(
    directory: Path,
    *,
    password: str = DEFAULT_PASSWORD,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    key_type: KeyType = "ec",
    app_name: str = DEFAULT_APP_NAME,
    reuse: bool = False,
    now: dt.datetime | None = None,
) -> TestPki:
    """Create the test PKI in ``directory`` (created if needed) and return where its files are.

    ``key_type`` ``"ec"`` (P-256, a few milliseconds) suits tests; ``"rsa"`` (2048 bits, like IGC-Santé,
    about half a second) gives realistic keys. With ``reuse=True`` an existing PKI built with the same
    hosts, key type, application name and password, less than :data:`MAX_REUSE_AGE` old and still valid,
    is returned untouched: this is what the sandbox's ``--tls-dir`` relies on.
    """
    directory = Path(directory)
    moment = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    host_list = tuple(hosts)
    if not host_list:
        raise ValueError("the server certificate needs at least one host name or IP address")
    if reuse:
        existing = _reusable(directory, password, host_list, key_type, app_name, moment)
        if existing is not None:
            return existing
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    (directory / _MANIFEST).unlink(missing_ok=True)
    _Builder(directory, password.encode("utf-8"), key_type, moment).build(host_list, app_name)
    manifest = {
        "version": _MANIFEST_VERSION,
        "created_at": moment.isoformat(),
        "hosts": list(host_list),
        "key_type": key_type,
        "app_name": app_name,
    }
    (directory / _MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return _layout(directory, password, host_list, key_type, moment)


def server_ssl_context(pki: TestPki, *, check_revocation: bool = True) -> ssl.SSLContext:
    """A server-side context presenting the PKI's server certificate and requiring a client certificate
    issued by the test chain (TLS 1.2 minimum, strict X.509 checks). With ``check_revocation`` the CRL is
    loaded and the client's certificate is checked against it, so :attr:`TestPki.revoked` is refused.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(pki.server.chain, pki.server.key, password=pki.password.get_secret_value())
    context.load_verify_locations(cafile=pki.ca_bundle)
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    if check_revocation:
        context.load_verify_locations(cafile=pki.crl)
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return context


# --------------------------------------------------------------------------------------------------------
# Layout and reuse


def _issued(directory: Path, name: str) -> IssuedCertificate:
    cert = x509.load_pem_x509_certificate((directory / f"{name}.pem").read_bytes())
    return IssuedCertificate(
        name=name,
        subject=cert.subject.rfc4514_string(),
        serial_number=f"{cert.serial_number:X}",
        certificate=directory / f"{name}.pem",
        chain=directory / f"{name}.fullchain.pem",
        key=directory / f"{name}.key.pem",
        pkcs12=directory / f"{name}.p12",
    )


_ISSUED_NAMES = (
    "server",
    "client",
    "expiring_soon",
    "expired",
    "not_yet_valid",
    "seal",
    "revoked",
    "wrong_ca",
)


def _layout(
    directory: Path, password: str, hosts: tuple[str, ...], key_type: KeyType, created_at: dt.datetime
) -> TestPki:
    issued = {name: _issued(directory, name) for name in _ISSUED_NAMES}
    return TestPki(
        directory=directory,
        password=SecretStr(password),
        key_type=key_type,
        hosts=hosts,
        created_at=created_at,
        root_ca=directory / "root-ca.pem",
        intermediate_ca=directory / "intermediate-ca.pem",
        ca_bundle=directory / "ca-bundle.pem",
        crl=directory / "crl.pem",
        wrong_ca_root=directory / "wrong-ca-root.pem",
        client_key_unencrypted=directory / "client.key.unencrypted.pem",
        client_combined_pem=directory / "client.combined.pem",
        client_legacy_pkcs12=directory / "client.legacy.p12",
        **issued,
    )


def _reusable(
    directory: Path, password: str, hosts: tuple[str, ...], key_type: KeyType, app_name: str, now: dt.datetime
) -> TestPki | None:
    """The PKI already in ``directory`` if it matches the request and is still fit for use, else ``None``."""
    try:
        manifest = json.loads((directory / _MANIFEST).read_text(encoding="utf-8"))
        created_at = dt.datetime.fromisoformat(manifest["created_at"])
        matches = (
            manifest.get("version") == _MANIFEST_VERSION
            and tuple(manifest["hosts"]) == hosts
            and manifest["key_type"] == key_type
            and manifest["app_name"] == app_name
            and dt.timedelta(0) <= now - created_at < MAX_REUSE_AGE
        )
        if not matches:
            return None
        pki = _layout(directory, password, hosts, key_type, created_at)
        if not all(path.is_file() for path in _files(pki)):
            return None
        crl = x509.load_pem_x509_crl(pki.crl.read_bytes())
        pkcs12.load_key_and_certificates(pki.client.pkcs12.read_bytes(), password.encode("utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    margin = now + dt.timedelta(days=1)
    still_valid = all(
        x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc > margin
        for path in (pki.root_ca, pki.intermediate_ca, pki.server.certificate, pki.client.certificate)
    )
    next_update = crl.next_update_utc
    if not still_valid or next_update is None or next_update <= margin:
        return None
    return pki


def _files(pki: TestPki) -> list[Path]:
    files = [value for value in dict(pki).values() if isinstance(value, Path) and value != pki.directory]
    for value in dict(pki).values():
        if isinstance(value, IssuedCertificate):
            files += [value.certificate, value.chain, value.key, value.pkcs12]
    return files


# --------------------------------------------------------------------------------------------------------
# Certificate construction

_PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class _Authority:
    certificate: x509.Certificate
    key: _PrivateKey


def _ca_name(common_name: str, unit: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "RORCLIENT SANDBOX"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "0002 000000000"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _organisation_name(common_name: str) -> x509.Name:
    """``CN=<app>,OU=<11 digits>,O=...,ST=...,C=FR`` in RFC 4514 order, as IGC-Santé ORG certificates."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Paris (75)"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "RORCLIENT - TEST"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, _ORGANISATION_UNIT_NUMBER),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_encipherment: bool = False,
    ca: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class _Leaf:
    """What distinguishes one end-entity certificate from another."""

    name: str
    subject: x509.Name
    not_before: dt.datetime
    not_after: dt.datetime
    key_usage: x509.KeyUsage
    extended_key_usage: x509.ExtendedKeyUsage
    alternative_names: x509.SubjectAlternativeName | None = None


_CLIENT_AUTH = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])


class _Builder:
    """Generates keys and certificates and writes them; one instance per :func:`build_test_pki` call."""

    def __init__(self, directory: Path, password: bytes, key_type: KeyType, now: dt.datetime) -> None:
        self.directory = directory
        self.password = password
        self.key_type = key_type
        self.now = now

    def build(self, hosts: tuple[str, ...], app_name: str) -> None:
        now, day = self.now, dt.timedelta(days=1)
        root = self._authority(_ca_name("TEST AC RACINE FAKE-IGC-SANTE ELEMENTAIRE", "FAKE-IGC-SANTE TEST"))
        intermediate = self._authority(
            _ca_name("TEST AC FAKE-IGC-SANTE ELEMENTAIRE ORGANISATIONS", "FAKE-IGC-SANTE TEST"), root
        )
        foreign = self._authority(_ca_name("TEST AC RACINE AUTRE AUTORITE", "AUTRE AUTORITE TEST"))
        self._write("root-ca.pem", _pem(root.certificate))
        self._write("intermediate-ca.pem", _pem(intermediate.certificate))
        self._write("ca-bundle.pem", _pem(intermediate.certificate) + _pem(root.certificate))
        self._write("wrong-ca-root.pem", _pem(foreign.certificate))
        chain = (intermediate.certificate, root.certificate)

        self._issue(self._server_profile(hosts), intermediate, chain)
        three_years = 3 * 365 * day
        good_usage = _key_usage(digital_signature=True)

        def client(name: str, suffix: str, not_before: dt.datetime, not_after: dt.datetime) -> _Leaf:
            subject = _organisation_name(app_name + suffix)
            return _Leaf(name, subject, not_before, not_after, good_usage, _CLIENT_AUTH)

        key, cert = self._issue(client("client", "", now - day, now + three_years), intermediate, chain)
        self._write_client_extras(key, cert, chain)
        self._issue(client("expiring_soon", "_EXPIRING", now - day, now + 20 * day), intermediate, chain)
        self._issue(client("expired", "_EXPIRED", now - three_years, now - 30 * day), intermediate, chain)
        self._issue(
            client("not_yet_valid", "_NOT_YET_VALID", now + 30 * day, now + three_years), intermediate, chain
        )
        _, revoked = self._issue(
            client("revoked", "_REVOKED", now - day, now + three_years), intermediate, chain
        )
        self._write("crl.pem", self._crl(intermediate, revoked.serial_number))
        seal = _Leaf(
            "seal",
            _organisation_name(app_name + "_CACHET"),
            now - day,
            now + three_years,
            _key_usage(content_commitment=True),
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
        )
        self._issue(seal, intermediate, chain)
        self._issue(
            client("wrong_ca", "_WRONG_CA", now - day, now + three_years), foreign, (foreign.certificate,)
        )

    def _server_profile(self, hosts: tuple[str, ...]) -> _Leaf:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        common_name = next((name.value for name in names if isinstance(name, x509.DNSName)), hosts[0])
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "RORCLIENT SANDBOX"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        return _Leaf(
            "server",
            subject,
            self.now - dt.timedelta(days=1),
            self.now + dt.timedelta(days=365),
            # RSA key exchange is gone from TLS 1.3 but RSA server certificates traditionally carry it.
            _key_usage(digital_signature=True, key_encipherment=self.key_type == "rsa"),
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
            x509.SubjectAlternativeName(names),
        )

    def _new_key(self) -> _PrivateKey:
        if self.key_type == "rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return ec.generate_private_key(ec.SECP256R1())

    def _authority(self, name: x509.Name, issuer: _Authority | None = None) -> _Authority:
        key = self._new_key()
        builder = (
            self._base(name, key, issuer)
            .not_valid_before(self.now - dt.timedelta(days=1))
            .not_valid_after(self.now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0 if issuer else None), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
        )
        return _Authority(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)

    def _base(
        self, subject: x509.Name, key: _PrivateKey, issuer: _Authority | None
    ) -> x509.CertificateBuilder:
        """Subject, issuer, key, serial and the key identifiers every certificate carries."""
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        issuer_ski = (
            issuer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            if issuer
            else ski
        )
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.certificate.subject if issuer else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .add_extension(ski, critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False
            )
        )

    def _issue(
        self, leaf: _Leaf, issuer: _Authority, chain: tuple[x509.Certificate, ...]
    ) -> tuple[_PrivateKey, x509.Certificate]:
        """Sign ``leaf`` with ``issuer`` and write its PEM, chain, encrypted key and PKCS#12 files."""
        key = self._new_key()
        builder = (
            self._base(leaf.subject, key, issuer)
            .not_valid_before(leaf.not_before)
            .not_valid_after(leaf.not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(leaf.key_usage, critical=True)
            .add_extension(leaf.extended_key_usage, critical=False)
            .add_extension(
                x509.CRLDistributionPoints(
                    [x509.DistributionPoint([x509.UniformResourceIdentifier(_CRL_URL)], None, None, None)]
                ),
                critical=False,
            )
        )
        if leaf.alternative_names is not None:
            builder = builder.add_extension(leaf.alternative_names, critical=False)
        cert = builder.sign(issuer.key, hashes.SHA256())
        encryption = serialization.BestAvailableEncryption(self.password)
        self._write(f"{leaf.name}.pem", _pem(cert))
        self._write(f"{leaf.name}.fullchain.pem", _pem(cert) + _pem(chain[0]))
        self._write(f"{leaf.name}.key.pem", _key_pem(key, encryption), private=True)
        friendly = str(leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value).encode("utf-8")
        p12 = pkcs12.serialize_key_and_certificates(friendly, key, cert, list(chain), encryption)
        self._write(f"{leaf.name}.p12", p12, private=True)
        return key, cert

    def _write_client_extras(
        self, key: _PrivateKey, cert: x509.Certificate, chain: tuple[x509.Certificate, ...]
    ) -> None:
        encryption = serialization.BestAvailableEncryption(self.password)
        self._write("client.key.unencrypted.pem", _key_pem(key, serialization.NoEncryption()), private=True)
        self._write(
            "client.combined.pem", _pem(cert) + _pem(chain[0]) + _key_pem(key, encryption), private=True
        )
        legacy = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(2048)
            .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
            .hmac_hash(hashes.SHA1())  # noqa: S303 - deliberately the legacy format
            .build(self.password)
        )
        p12 = pkcs12.serialize_key_and_certificates(b"legacy", key, cert, list(chain), legacy)
        self._write("client.legacy.p12", p12, private=True)

    def _crl(self, issuer: _Authority, revoked_serial: int) -> bytes:
        revoked = (
            x509.RevokedCertificateBuilder()
            .serial_number(revoked_serial)
            .revocation_date(self.now - dt.timedelta(hours=1))
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
        ski = issuer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer.certificate.subject)
            .last_update(self.now - dt.timedelta(hours=1))
            .next_update(self.now + dt.timedelta(days=30))
            .add_revoked_certificate(revoked)
            .add_extension(x509.CRLNumber(1), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
            )
            .sign(issuer.key, hashes.SHA256())
        )
        return crl.public_bytes(serialization.Encoding.PEM)

    def _write(self, name: str, data: bytes, *, private: bool = False) -> None:
        path = self.directory / name
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: _PrivateKey, encryption: serialization.KeySerializationEncryption) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
