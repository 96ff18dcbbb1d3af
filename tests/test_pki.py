"""The sandbox's IGC-Santé-like test PKI: structure, RFC 5280 conformance, exports, reuse, server context."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import ssl
import stat
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from rorclient.sandbox.pki import MAX_REUSE_AGE, TestPki, build_test_pki, server_ssl_context

PASSWORD = "pki-test-password"
E = TypeVar("E", bound=x509.ExtensionType)
LEAVES = ("server", "client", "expiring_soon", "expired", "not_yet_valid", "seal", "revoked", "wrong_ca")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return build_test_pki(tmp_path_factory.mktemp("pki"), password=PASSWORD)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def ext(cert: x509.Certificate, kind: type[E]) -> x509.Extension[E]:
    return cert.extensions.get_extension_for_class(kind)


def verifier(pki: TestPki, *, client: bool = False) -> PolicyBuilder:
    """The strict RFC 5280 verifier of ``cryptography``. Its client policy wants a SAN; IGC-Santé client
    certificates have none, so that one requirement is relaxed for clients.
    """
    builder = PolicyBuilder().store(Store([load(pki.root_ca)])).time(dt.datetime.now(dt.UTC))
    if not client:
        return builder
    leaf_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
    )
    return builder.extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=leaf_policy)


# ------------------------------------------------------------------------------------------------------
# Names and structure


def test_chain_has_igc_sante_like_names(pki: TestPki) -> None:
    root, intermediate = load(pki.root_ca), load(pki.intermediate_ca)
    assert root.subject == root.issuer
    assert str(root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value).startswith(
        "TEST AC RACINE "
    )
    assert intermediate.issuer == root.subject
    assert str(intermediate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value).endswith(
        "ELEMENTAIRE ORGANISATIONS"
    )
    assert re.fullmatch(
        r"CN=CLIENT_TEST_RORCLIENT,OU=\d{11},O=[^,]+,ST=Paris \(75\),C=FR",
        load(pki.client.certificate).subject.rfc4514_string(),
    )
    assert pki.client.subject == load(pki.client.certificate).subject.rfc4514_string()


@pytest.mark.parametrize("name", LEAVES)
def test_leaf_certificates_follow_rfc5280(pki: TestPki, name: str) -> None:
    issued = getattr(pki, name)
    cert = load(issued.certificate)
    issuer = load(pki.wrong_ca_root if name == "wrong_ca" else pki.intermediate_ca)
    assert cert.version == x509.Version.v3
    assert 0 < cert.serial_number < 2**159
    assert issued.serial_number == f"{cert.serial_number:X}"
    assert cert.not_valid_before_utc < cert.not_valid_after_utc
    constraints = ext(cert, x509.BasicConstraints)
    assert constraints.critical
    assert not constraints.value.ca
    assert ext(cert, x509.KeyUsage).critical
    assert ext(cert, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        cert.public_key()
    )
    assert (
        ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier
        == ext(issuer, x509.SubjectKeyIdentifier).value.digest
    )
    cert.verify_directly_issued_by(issuer)


def test_cas_are_critical_constrained_and_identified(pki: TestPki) -> None:
    for path, path_length in ((pki.root_ca, None), (pki.intermediate_ca, 0), (pki.wrong_ca_root, None)):
        cert = load(path)
        constraints = ext(cert, x509.BasicConstraints)
        assert constraints.critical
        assert constraints.value.ca
        assert constraints.value.path_length == path_length
        usage = ext(cert, x509.KeyUsage)
        assert usage.critical
        assert usage.value.key_cert_sign
        assert usage.value.crl_sign
        assert ext(cert, x509.SubjectKeyIdentifier)
        assert ext(cert, x509.AuthorityKeyIdentifier)
    assert pki.ca_bundle.read_bytes() == pki.intermediate_ca.read_bytes() + pki.root_ca.read_bytes()


def test_server_certificate_names_every_host(pki: TestPki) -> None:
    cert = load(pki.server.certificate)
    san = ext(cert, x509.SubjectAlternativeName)
    assert not san.critical  # the subject is not empty
    assert san.value.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.value.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_client_and_seal_profiles(pki: TestPki) -> None:
    client, seal = load(pki.client.certificate), load(pki.seal.certificate)
    assert ext(client, x509.KeyUsage).value.digital_signature
    assert list(ext(client, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    seal_usage = ext(seal, x509.KeyUsage).value
    assert seal_usage.content_commitment
    assert not seal_usage.digital_signature
    assert list(ext(seal, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]


def test_validity_windows(pki: TestPki) -> None:
    now = dt.datetime.now(dt.UTC)
    assert load(pki.expired.certificate).not_valid_after_utc < now
    assert load(pki.not_yet_valid.certificate).not_valid_before_utc > now
    expiring = load(pki.expiring_soon.certificate).not_valid_after_utc - now
    assert dt.timedelta(days=10) < expiring < dt.timedelta(days=60)
    assert load(pki.client.certificate).not_valid_after_utc - now > dt.timedelta(days=3 * 365 - 2)


# ------------------------------------------------------------------------------------------------------
# Strict path validation (cryptography's RFC 5280 verifier)


def test_strict_verifier_accepts_the_server_for_every_host(pki: TestPki) -> None:
    leaf, intermediate = load(pki.server.certificate), load(pki.intermediate_ca)
    for subject in (x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))):
        chain = verifier(pki).build_server_verifier(subject).verify(leaf, [intermediate])
        assert chain[-1] == load(pki.root_ca)


def test_strict_verifier_accepts_good_clients_and_rejects_bad_ones(pki: TestPki) -> None:
    intermediate = load(pki.intermediate_ca)
    for good in (pki.client, pki.expiring_soon, pki.revoked):  # revocation is not a path-validation matter
        verifier(pki, client=True).build_client_verifier().verify(load(good.certificate), [intermediate])
    for bad in (pki.expired, pki.not_yet_valid, pki.seal, pki.wrong_ca, pki.server):
        with pytest.raises(VerificationError):
            verifier(pki, client=True).build_client_verifier().verify(load(bad.certificate), [intermediate])


def test_crl_is_signed_by_the_intermediate_and_lists_the_revoked_certificate(pki: TestPki) -> None:
    crl = x509.load_pem_x509_crl(pki.crl.read_bytes())
    intermediate = load(pki.intermediate_ca)
    assert crl.issuer == intermediate.subject
    public_key = intermediate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert crl.is_signature_valid(public_key)
    assert [entry.serial_number for entry in crl] == [load(pki.revoked.certificate).serial_number]
    assert crl.next_update_utc is not None
    assert crl.next_update_utc > dt.datetime.now(dt.UTC)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1


# ------------------------------------------------------------------------------------------------------
# Exports


@pytest.mark.parametrize("name", LEAVES)
def test_pkcs12_holds_key_leaf_and_chain(pki: TestPki, name: str) -> None:
    issued = getattr(pki, name)
    key, cert, chain = pkcs12.load_key_and_certificates(issued.pkcs12.read_bytes(), PASSWORD.encode())
    assert cert == load(issued.certificate)
    assert key is not None
    assert key.public_key() == cert.public_key()
    expected_chain = [pki.wrong_ca_root] if name == "wrong_ca" else [pki.intermediate_ca, pki.root_ca]
    assert chain == [load(path) for path in expected_chain]
    with pytest.raises(ValueError, match="password"):
        pkcs12.load_key_and_certificates(issued.pkcs12.read_bytes(), b"wrong")


def test_pem_exports(pki: TestPki) -> None:
    key_pem = pki.client.key.read_bytes()
    assert key_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    key = load_pem_private_key(key_pem, PASSWORD.encode())
    assert key.public_key() == load(pki.client.certificate).public_key()
    assert (
        load_pem_private_key(pki.client_key_unencrypted.read_bytes(), None).public_key() == key.public_key()
    )
    assert x509.load_pem_x509_certificates(pki.client.chain.read_bytes()) == [
        load(pki.client.certificate),
        load(pki.intermediate_ca),
    ]
    combined = pki.client_combined_pem.read_bytes()
    assert combined.startswith(pki.client.chain.read_bytes())
    assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in combined
    _legacy_key, legacy_cert, _ = pkcs12.load_key_and_certificates(
        pki.client_legacy_pkcs12.read_bytes(), PASSWORD.encode()
    )
    assert legacy_cert == load(pki.client.certificate)


def test_only_the_designated_key_file_is_unencrypted_and_secrets_are_private(pki: TestPki) -> None:
    clear = [path for path in pki.directory.iterdir() if b"-----BEGIN PRIVATE KEY-----" in path.read_bytes()]
    assert clear == [pki.client_key_unencrypted]
    for path in pki.directory.iterdir():
        if path.suffix == ".p12" or "key" in path.name or path == pki.client_combined_pem:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_repr_does_not_show_the_password(pki: TestPki) -> None:
    assert PASSWORD not in repr(pki)
    assert PASSWORD not in pki.model_dump_json()


def test_ec_is_the_default_and_rsa_2048_is_available(pki: TestPki, tmp_path: Path) -> None:
    assert isinstance(load(pki.client.certificate).public_key(), ec.EllipticCurvePublicKey)
    rsa_pki = build_test_pki(tmp_path, key_type="rsa", hosts=("localhost",))
    public_key = load(rsa_pki.client.certificate).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert public_key.key_size == 2048
    assert ext(load(rsa_pki.server.certificate), x509.KeyUsage).value.key_encipherment


def test_ip_only_hosts_put_the_address_in_the_common_name(tmp_path: Path) -> None:
    cert = load(build_test_pki(tmp_path, hosts=("127.0.0.1",)).server.certificate)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "127.0.0.1"
    assert ext(cert, x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == []


def test_no_hosts_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="host"):
        build_test_pki(tmp_path, hosts=())


# ------------------------------------------------------------------------------------------------------
# Reuse (the sandbox's --tls-dir)


def test_reuse_returns_the_existing_pki_untouched(tmp_path: Path) -> None:
    first = build_test_pki(tmp_path, password=PASSWORD)
    modified = {path.name: path.stat().st_mtime_ns for path in tmp_path.iterdir()}
    again = build_test_pki(tmp_path, password=PASSWORD, reuse=True)
    assert again == first
    assert {path.name: path.stat().st_mtime_ns for path in tmp_path.iterdir()} == modified


def test_without_reuse_a_new_pki_replaces_the_old(tmp_path: Path) -> None:
    first = build_test_pki(tmp_path)
    assert build_test_pki(tmp_path).client.serial_number != first.client.serial_number


@pytest.mark.parametrize(
    "change",
    ["hosts", "app_name", "password", "too_old", "missing_file", "corrupt_manifest"],
)
def test_reuse_rebuilds_when_the_existing_pki_does_not_fit(tmp_path: Path, change: str) -> None:
    first = build_test_pki(tmp_path, password=PASSWORD)
    options: dict[str, object] = {"password": PASSWORD, "reuse": True}
    if change == "hosts":
        options["hosts"] = ("localhost",)
    elif change == "app_name":
        options["app_name"] = "CLIENT_TEST_OTHER"
    elif change == "password":
        options["password"] = "another password"
    elif change == "too_old":
        options["now"] = first.created_at + MAX_REUSE_AGE + dt.timedelta(minutes=1)
    elif change == "missing_file":
        first.revoked.pkcs12.unlink()
    else:
        (tmp_path / "pki.json").write_text("{not json", encoding="utf-8")
    again = build_test_pki(tmp_path, **options)  # type: ignore[arg-type]
    assert again.client.serial_number != first.client.serial_number
    assert again.revoked.pkcs12.is_file()


# ------------------------------------------------------------------------------------------------------
# Server context (in-memory handshakes; socket-level ones are in test_tls.py)


def handshake(client: ssl.SSLContext, server: ssl.SSLContext) -> tuple[str | None, ssl.SSLError | None]:
    """Run a TLS handshake through memory buffers; return the client CN the server saw, or its error."""
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    client_side = client.wrap_bio(client_in, client_out, server_hostname="localhost")
    server_side = server.wrap_bio(server_in, server_out, server_side=True)
    client_done = False
    for _ in range(10):
        if not client_done:
            try:
                client_side.do_handshake()
                client_done = True
            except ssl.SSLWantReadError:
                pass
        server_in.write(client_out.read())
        try:
            server_side.do_handshake()
        except ssl.SSLWantReadError:
            client_in.write(server_out.read())
            continue
        except ssl.SSLError as exc:
            return None, exc
        peer = server_side.getpeercert(binary_form=True)
        assert peer is not None
        subject = x509.load_der_x509_certificate(peer).subject
        return str(subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value), None
    raise AssertionError("handshake did not finish")


def stdlib_client(pki: TestPki, name: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.ca_bundle)
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    if name is not None:
        issued = getattr(pki, name)
        context.load_cert_chain(issued.chain, issued.key, password=PASSWORD)
    return context


def test_server_context_settings(pki: TestPki) -> None:
    context = server_ssl_context(pki)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF
    assert context.verify_flags & ssl.VERIFY_X509_STRICT
    assert not server_ssl_context(pki, check_revocation=False).verify_flags & ssl.VERIFY_CRL_CHECK_LEAF


def test_server_context_accepts_the_good_client(pki: TestPki) -> None:
    assert handshake(stdlib_client(pki, "client"), server_ssl_context(pki)) == ("CLIENT_TEST_RORCLIENT", None)


def test_server_context_requires_a_client_certificate(pki: TestPki) -> None:
    common_name, error = handshake(stdlib_client(pki, None), server_ssl_context(pki))
    assert common_name is None
    assert error is not None
    assert "certificate" in str(error).lower()


def test_server_context_refuses_the_revoked_client_thanks_to_the_crl(pki: TestPki) -> None:
    _, error = handshake(stdlib_client(pki, "revoked"), server_ssl_context(pki))
    assert isinstance(error, ssl.SSLCertVerificationError)
    assert error.verify_message == "certificate revoked"
    without_crl = handshake(stdlib_client(pki, "revoked"), server_ssl_context(pki, check_revocation=False))
    assert without_crl == ("CLIENT_TEST_RORCLIENT_REVOKED", None)
