"""Client credentials: loading, checks, secrets hygiene, inspection, and real mTLS handshakes on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import logging
import os
import pickle
import queue
import socket
import ssl
import stat
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

import rorclient._secrets
from rorclient.errors import ConfigError, TlsError
from rorclient.sandbox.pki import TestPki, build_test_pki, server_ssl_context
from rorclient.tls import (
    CertificateExpiredError,
    CertificateFileNotFoundError,
    CertificateFormatError,
    CertificateInfo,
    CertificateNotYetValidError,
    CertificatePasswordError,
    CertificateUsageError,
    Credentials,
    KeyMismatchError,
    inspect_certificate,
)

PASSWORD = "Tr0ub4dor&3-ñ-secret"  # distinctive, so a leak anywhere is easy to spot
WRONG_PASSWORD = "N0t-the-Passw0rd-42"
CLEAR_KEY_MARKERS = (b"BEGIN PRIVATE KEY", b"BEGIN EC PRIVATE KEY", b"BEGIN RSA PRIVATE KEY")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return build_test_pki(tmp_path_factory.mktemp("tls-pki"), password=PASSWORD)


class MtlsServer:
    """A threaded TLS server on 127.0.0.1 that greets each client by its certificate's CN.

    Connections are served one at a time; each outcome ("accepted CN" or "refused <reason>") is queued.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self.outcomes: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(5)
            try:
                with self._context.wrap_socket(connection, server_side=True) as tls:
                    peer = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")
                    name = str(peer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
                    tls.sendall(f"hello {name}\n".encode())
                    self.outcomes.put(f"accepted {name}")
            except ssl.SSLCertVerificationError as exc:
                self.outcomes.put(f"refused {exc.verify_message}")
            except (ssl.SSLError, OSError) as exc:
                self.outcomes.put(f"refused {exc}")
            finally:
                connection.close()

    def exchange(self, context: ssl.SSLContext, hostname: str = "localhost") -> tuple[str | None, str]:
        """Connect with ``context``; return what the client read (``None`` if TLS failed) and the
        server's outcome.
        """
        received: str | None
        try:
            with (
                socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock,
                context.wrap_socket(sock, server_hostname=hostname) as tls,
            ):
                received = tls.recv(200).decode() or None
        except (ssl.SSLError, ConnectionError):
            received = None
        return received, self.outcomes.get(timeout=5)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def server(pki: TestPki) -> Iterator[MtlsServer]:
    running = MtlsServer(server_ssl_context(pki))
    yield running
    running.close()


def good_client(pki: TestPki) -> Credentials:
    return Credentials.from_pkcs12(pki.client.pkcs12, password=PASSWORD, ca_bundle=pki.ca_bundle)


# ------------------------------------------------------------------------------------------------------
# Successful mutual TLS from every supported credential format

LOADERS: dict[str, Callable[[TestPki], Credentials]] = {
    "pkcs12": good_client,
    "legacy 3DES pkcs12": lambda pki: Credentials.from_pkcs12(
        pki.client_legacy_pkcs12, password=PASSWORD, ca_bundle=pki.ca_bundle
    ),
    "pem + encrypted key": lambda pki: Credentials.from_pem(
        pki.client.chain, pki.client.key, password=PASSWORD, ca_bundle=pki.ca_bundle
    ),
    "pem + clear key": lambda pki: Credentials.from_pem(
        pki.client.certificate, pki.client_key_unencrypted, ca_bundle=pki.ca_bundle
    ),
    "pem with key inside": lambda pki: Credentials.from_pem(
        pki.client_combined_pem, password=PASSWORD, ca_bundle=pki.ca_bundle
    ),
    "load() detects pkcs12": lambda pki: Credentials.load(
        pki.client.pkcs12, password=PASSWORD, ca_bundle=pki.ca_bundle
    ),
    "load() detects pem": lambda pki: Credentials.load(
        pki.client.certificate, pki.client.key, password=PASSWORD, ca_bundle=pki.ca_bundle
    ),
}


@pytest.mark.parametrize("loader", LOADERS.values(), ids=LOADERS.keys())
def test_good_client_certificate_completes_mutual_tls(
    pki: TestPki, server: MtlsServer, loader: Callable[[TestPki], Credentials]
) -> None:
    credentials = loader(pki)
    assert credentials.info.subject == pki.client.subject
    assert server.exchange(credentials.ssl_context()) == (
        "hello CLIENT_TEST_RORCLIENT\n",
        "accepted CLIENT_TEST_RORCLIENT",
    )


def test_mutual_tls_over_tls12_and_by_ip_address(pki: TestPki, server: MtlsServer) -> None:
    context = good_client(pki).ssl_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    received, outcome = server.exchange(context, hostname="127.0.0.1")
    assert received == "hello CLIENT_TEST_RORCLIENT\n"
    assert outcome == "accepted CLIENT_TEST_RORCLIENT"


def test_client_context_settings(pki: TestPki) -> None:
    context = good_client(pki).ssl_context()
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.verify_flags & ssl.VERIFY_X509_STRICT
    assert [ca["subject"][-1][0][1] for ca in context.get_ca_certs()] == [
        "TEST AC FAKE-IGC-SANTE ELEMENTAIRE ORGANISATIONS",
        "TEST AC RACINE FAKE-IGC-SANTE ELEMENTAIRE",
    ]
    assert not good_client(pki).ssl_context(x509_strict=False).verify_flags & ssl.VERIFY_X509_STRICT


def test_server_certificate_passes_strict_x509_verification(pki: TestPki, server: MtlsServer) -> None:
    context = good_client(pki).ssl_context()
    assert context.verify_flags & ssl.VERIFY_X509_STRICT
    received, _ = server.exchange(context)
    assert received is not None


# ------------------------------------------------------------------------------------------------------
# The server side refuses what it must, and Credentials refuses it first where it can


def test_server_refuses_a_client_without_certificate(pki: TestPki, server: MtlsServer) -> None:
    context = ssl.create_default_context(cafile=pki.ca_bundle)
    received, outcome = server.exchange(context)
    assert received is None
    assert outcome.startswith("refused")
    assert "certificate" in outcome.lower()


REFUSED = {
    "expired": ("certificate has expired", CertificateExpiredError),
    "not_yet_valid": ("certificate is not yet valid", CertificateNotYetValidError),
    "seal": ("unsuitable certificate purpose", CertificateUsageError),
    "revoked": ("certificate revoked", None),
    "wrong_ca": ("unable to get local issuer certificate", None),
}


@pytest.mark.parametrize("name", REFUSED)
def test_server_refuses_bad_client_certificates(pki: TestPki, server: MtlsServer, name: str) -> None:
    reason, _ = REFUSED[name]
    issued = getattr(pki, name)
    credentials = Credentials.from_pkcs12(
        issued.pkcs12, password=PASSWORD, ca_bundle=pki.ca_bundle, allow_invalid=True
    )
    assert server.exchange(credentials.ssl_context()) == (None, f"refused {reason}")


@pytest.mark.parametrize("name", [name for name, (_, error) in REFUSED.items() if error is not None])
def test_credentials_refuse_unusable_certificates_before_any_connection(pki: TestPki, name: str) -> None:
    _, error = REFUSED[name]
    assert error is not None
    issued = getattr(pki, name)
    with pytest.raises(error) as caught:
        Credentials.from_pkcs12(issued.pkcs12, password=PASSWORD, ca_bundle=pki.ca_bundle)
    assert issued.subject in str(caught.value)
    with pytest.raises(error):
        Credentials.from_pem(issued.certificate, issued.key, password=PASSWORD)


def test_revoked_certificate_is_refused_over_tls12_too(pki: TestPki, server: MtlsServer) -> None:
    credentials = Credentials.from_pkcs12(pki.revoked.pkcs12, password=PASSWORD, ca_bundle=pki.ca_bundle)
    context = credentials.ssl_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    assert server.exchange(context) == (None, "refused certificate revoked")


def test_seal_certificate_is_explained(pki: TestPki) -> None:
    with pytest.raises(CertificateUsageError, match="digitalSignature") as caught:
        Credentials.from_pkcs12(pki.seal.pkcs12, password=PASSWORD)
    assert "clientAuth" in str(caught.value)


def test_client_without_the_test_ca_does_not_trust_the_server(pki: TestPki, server: MtlsServer) -> None:
    credentials = Credentials.from_pkcs12(pki.client.pkcs12, password=PASSWORD)  # system CAs only
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        credentials.ssl_context().wrap_socket(sock, server_hostname="localhost")
    server.outcomes.get(timeout=5)


def test_client_checks_the_server_host_name(pki: TestPki, server: MtlsServer) -> None:
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock,
        pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"),
    ):
        good_client(pki).ssl_context().wrap_socket(sock, server_hostname="ror.example.invalid")
    server.outcomes.get(timeout=5)


# ------------------------------------------------------------------------------------------------------
# Expiry warning


def test_certificate_expiring_within_60_days_logs_a_warning(
    pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="rorclient.tls"):
        credentials = Credentials.from_pkcs12(pki.expiring_soon.pkcs12, password=PASSWORD)
    assert credentials.info.expires_soon
    assert [record.levelno for record in caplog.records] == [logging.WARNING]
    assert "expires in" in caplog.text
    assert pki.expiring_soon.subject in caplog.text


def test_certificate_far_from_expiry_logs_nothing(pki: TestPki, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="rorclient"):
        assert not good_client(pki).info.expires_soon
    assert caplog.records == []


# ------------------------------------------------------------------------------------------------------
# Errors


def test_error_classes_have_distinct_exit_codes() -> None:
    classes = [
        CertificateFileNotFoundError,
        CertificateFormatError,
        CertificatePasswordError,
        KeyMismatchError,
        CertificateExpiredError,
        CertificateNotYetValidError,
        CertificateUsageError,
    ]
    codes = [cls.exit_code for cls in classes]
    assert all(issubclass(cls, TlsError) for cls in classes)
    assert len(set(codes)) == len(codes)
    assert TlsError.exit_code not in codes


def test_wrong_or_missing_password(pki: TestPki) -> None:
    with pytest.raises(CertificatePasswordError, match="wrong password"):
        Credentials.from_pkcs12(pki.client.pkcs12, password=WRONG_PASSWORD)
    with pytest.raises(CertificatePasswordError, match="password-protected"):
        Credentials.from_pkcs12(pki.client.pkcs12)
    with pytest.raises(CertificatePasswordError, match="wrong password"):
        Credentials.from_pem(pki.client.certificate, pki.client.key, password=WRONG_PASSWORD)
    with pytest.raises(CertificatePasswordError, match="encrypted"):
        Credentials.from_pem(pki.client_combined_pem)


def test_password_from_environment_variable(pki: TestPki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RORCLIENT_TEST_P12_PASSWORD", PASSWORD)
    credentials = Credentials.from_pkcs12(pki.client.pkcs12, password_env="RORCLIENT_TEST_P12_PASSWORD")
    assert credentials.info.subject == pki.client.subject
    monkeypatch.delenv("RORCLIENT_TEST_P12_PASSWORD")
    with pytest.raises(CertificatePasswordError, match="RORCLIENT_TEST_P12_PASSWORD is not set"):
        Credentials.from_pkcs12(pki.client.pkcs12, password_env="RORCLIENT_TEST_P12_PASSWORD")


def test_password_from_file(pki: TestPki, tmp_path: Path) -> None:
    password_file = tmp_path / "password.txt"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    password_file.chmod(0o600)  # a password file others can read is refused
    credentials = Credentials.from_pem(pki.client.certificate, pki.client.key, password_file=password_file)
    assert credentials.info.subject == pki.client.subject
    with pytest.raises(CertificateFileNotFoundError, match="password file"):
        Credentials.from_pkcs12(pki.client.pkcs12, password_file=tmp_path / "missing.txt")


def test_password_given_twice_is_a_configuration_error(pki: TestPki) -> None:
    with pytest.raises(ConfigError, match="only one way"):
        Credentials.from_pkcs12(pki.client.pkcs12, password=PASSWORD, password_env="ANYTHING")


def test_missing_and_unreadable_files(pki: TestPki, tmp_path: Path) -> None:
    with pytest.raises(CertificateFileNotFoundError, match=r"missing\.p12"):
        Credentials.load(tmp_path / "missing.p12", password=PASSWORD)
    with pytest.raises(CertificateFileNotFoundError, match=r"missing\.key"):
        Credentials.from_pem(pki.client.certificate, tmp_path / "missing.key")
    with pytest.raises(CertificateFileNotFoundError, match="CA bundle"):
        Credentials.from_pkcs12(pki.client.pkcs12, password=PASSWORD, ca_bundle=tmp_path / "none.pem")
    with pytest.raises(CertificateFormatError, match="cannot read"):
        Credentials.load(tmp_path, password=PASSWORD)


def test_unknown_formats(pki: TestPki, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.p12"
    garbage.write_bytes(b"\x00\x01 not a certificate at all")
    with pytest.raises(CertificateFormatError, match="neither"):
        Credentials.load(garbage, password=PASSWORD)
    with pytest.raises(CertificateFormatError, match="not a PKCS#12"):
        Credentials.from_pkcs12(pki.client.certificate, password=PASSWORD)
    with pytest.raises(CertificateFormatError, match="from_pkcs12"):
        Credentials.from_pem(pki.client.pkcs12, password=PASSWORD)
    with pytest.raises(CertificateFormatError, match="no private key"):
        Credentials.from_pem(pki.client.certificate)
    with pytest.raises(CertificateFormatError, match="no PEM certificate"):
        Credentials.from_pem(pki.client.key, password=PASSWORD)
    with pytest.raises(CertificateFormatError, match="CA bundle"):
        Credentials.from_pkcs12(pki.client.pkcs12, password=PASSWORD, ca_bundle=garbage)


def test_key_that_does_not_match_the_certificate(pki: TestPki) -> None:
    with pytest.raises(KeyMismatchError, match="does not match"):
        Credentials.from_pem(pki.client.certificate, pki.revoked.key, password=PASSWORD)


def test_pkcs12_with_a_separate_key_file_is_a_configuration_error(pki: TestPki) -> None:
    with pytest.raises(ConfigError, match="PKCS#12"):
        Credentials.load(pki.client.pkcs12, pki.client.key, password=PASSWORD)


def test_der_certificate_with_der_key(pki: TestPki, tmp_path: Path) -> None:
    certificate = x509.load_pem_x509_certificate(pki.client.certificate.read_bytes())
    key = serialization.load_pem_private_key(pki.client.key.read_bytes(), PASSWORD.encode())
    (tmp_path / "client.cer").write_bytes(certificate.public_bytes(serialization.Encoding.DER))
    der_key = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSWORD.encode()),
    )
    (tmp_path / "client.key.der").write_bytes(der_key)
    credentials = Credentials.load(tmp_path / "client.cer", tmp_path / "client.key.der", password=PASSWORD)
    assert credentials.info.source_format == "der"
    with pytest.raises(CertificatePasswordError):
        Credentials.load(tmp_path / "client.cer", tmp_path / "client.key.der")


def test_world_readable_clear_key_logs_a_warning(
    pki: TestPki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    exposed = tmp_path / "exposed.key"
    exposed.write_bytes(pki.client_key_unencrypted.read_bytes())
    exposed.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="rorclient.tls"):
        Credentials.from_pem(pki.client.certificate, exposed)
    assert "not encrypted" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rorclient.tls"):
        Credentials.from_pem(pki.client.certificate, pki.client_key_unencrypted)  # mode 0600
    assert caplog.records == []


# ------------------------------------------------------------------------------------------------------
# Secrets never leak


def test_password_never_appears_in_logs_reprs_or_errors(
    pki: TestPki, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RORCLIENT_TEST_WRONG", WRONG_PASSWORD)
    wrong_file = tmp_path / "wrong.txt"
    wrong_file.write_text(WRONG_PASSWORD, encoding="utf-8")
    wrong_file.chmod(0o600)
    failures: list[BaseException] = []
    with caplog.at_level(logging.DEBUG):
        texts = [
            repr(good_client(pki)),
            repr(Credentials.from_pkcs12(pki.expired.pkcs12, password=PASSWORD, allow_invalid=True)),
            repr(Credentials.from_pkcs12(pki.expiring_soon.pkcs12, password=SecretStr(PASSWORD))),
            good_client(pki).info.model_dump_json(),
            repr(pki),
        ]
        attempts: list[Callable[[], object]] = [
            lambda: Credentials.from_pkcs12(pki.client.pkcs12, password=WRONG_PASSWORD),
            lambda: Credentials.from_pkcs12(pki.client.pkcs12, password_env="RORCLIENT_TEST_WRONG"),
            lambda: Credentials.from_pem(pki.client.certificate, pki.client.key, password_file=wrong_file),
            lambda: Credentials.from_pkcs12(pki.expired.pkcs12, password=PASSWORD),
            lambda: inspect_certificate(pki.client.pkcs12, password=WRONG_PASSWORD.encode()),
        ]
        for attempt in attempts:
            with pytest.raises(TlsError) as caught:
                attempt()
            failures.append(caught.value)
    texts += [str(exc) for exc in failures]
    texts += ["".join(traceback.format_exception(exc)) for exc in failures]
    texts.append(caplog.text)
    for text in texts:
        assert PASSWORD not in text
        assert WRONG_PASSWORD not in text
        assert "PRIVATE KEY" not in text
    assert all(exc.__cause__ is None for exc in failures)


def test_credentials_cannot_be_pickled(pki: TestPki) -> None:
    with pytest.raises(TypeError, match="private key"):
        pickle.dumps(good_client(pki))


# ------------------------------------------------------------------------------------------------------
# The private key never reaches a file in clear


@pytest.fixture
def seen_key_files(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bytes, int]]:
    """Record every file given to ``load_cert_chain`` as OpenSSL reads it: path, content, mode."""
    seen: list[tuple[str, bytes, int]] = []
    original = ssl.SSLContext.load_cert_chain

    def spy(self: ssl.SSLContext, certfile: str, keyfile: str | None = None, password: object = None) -> None:
        seen.append((certfile, Path(certfile).read_bytes(), os.stat(certfile).st_mode))
        original(self, certfile, keyfile, password)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    return seen


def assert_encrypted_with_a_one_time_password(content: bytes) -> None:
    assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in content
    assert not any(marker in content for marker in CLEAR_KEY_MARKERS)
    with pytest.raises(ValueError):  # not the user's password either: a random one-time passphrase
        serialization.load_pem_private_key(content, PASSWORD.encode())


def open_memfds() -> list[str]:
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return [target for target in targets if "rorclient-credentials" in target]


def test_key_is_handed_to_openssl_encrypted_in_memory(
    pki: TestPki, server: MtlsServer, seen_key_files: list[tuple[str, bytes, int]]
) -> None:
    credentials = Credentials.from_pem(
        pki.client.certificate, pki.client_key_unencrypted, ca_bundle=pki.ca_bundle
    )
    context = credentials.ssl_context()
    [(path, content, _)] = seen_key_files
    assert_encrypted_with_a_one_time_password(content)
    if sys.platform == "linux":
        assert path.startswith("/proc/self/fd/")  # an anonymous memfd: nothing on any file system
        assert open_memfds() == []  # and it is closed once loaded
    received, _ = server.exchange(context)
    assert received == "hello CLIENT_TEST_RORCLIENT\n"


def test_without_memfd_the_key_goes_to_a_private_temporary_file_deleted_at_once(
    pki: TestPki,
    server: MtlsServer,
    seen_key_files: list[tuple[str, bytes, int]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(rorclient._secrets, "_memfd", lambda: None)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    context = good_client(pki).ssl_context()
    [(path, content, mode)] = seen_key_files
    assert Path(path).parent.parent == tmp_path
    assert stat.S_IMODE(mode) == 0o600
    assert_encrypted_with_a_one_time_password(content)
    assert os.listdir(tmp_path) == []
    received, _ = server.exchange(context)
    assert received == "hello CLIENT_TEST_RORCLIENT\n"


def test_temporary_directory_is_private_and_removed_even_if_openssl_fails(
    pki: TestPki, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(rorclient._secrets, "_memfd", lambda: None)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    modes: list[int] = []

    def failing(
        self: ssl.SSLContext, certfile: str, keyfile: str | None = None, password: object = None
    ) -> None:
        modes.append(os.stat(Path(certfile).parent).st_mode)
        raise ssl.SSLError(1, "simulated OpenSSL failure")

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", failing)
    with pytest.raises(TlsError, match="OpenSSL refused"):
        good_client(pki).ssl_context()
    assert [stat.S_IMODE(mode) for mode in modes] == [0o700]
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------------------------------
# Inspection


def test_inspect_pkcs12(pki: TestPki) -> None:
    info = inspect_certificate(pki.client.pkcs12, password=PASSWORD)
    assert info.subject == pki.client.subject
    assert info.issuer.startswith("CN=TEST AC FAKE-IGC-SANTE ELEMENTAIRE ORGANISATIONS,")
    assert info.serial_number == pki.client.serial_number
    assert info.source_format == "pkcs12"
    assert info.has_private_key
    assert info.key_usage == ("digitalSignature",)
    assert info.extended_key_usage == ("clientAuth",)
    assert info.can_authenticate_tls_client
    assert info.problems == ()
    assert not info.expired
    assert not info.not_yet_valid
    assert not info.expires_soon
    assert not info.is_ca
    assert 3 * 365 - 2 <= info.days_until_expiry <= 3 * 365
    assert info.public_key == "EC secp256r1"
    assert info.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert len(info.fingerprint_sha256.split(":")) == 32
    assert [subject.split(",")[0] for subject in info.chain] == [
        "CN=TEST AC FAKE-IGC-SANTE ELEMENTAIRE ORGANISATIONS",
        "CN=TEST AC RACINE FAKE-IGC-SANTE ELEMENTAIRE",
    ]


def test_inspect_pem_files_without_decrypting_the_key(pki: TestPki) -> None:
    alone = inspect_certificate(pki.client.certificate)
    assert (alone.source_format, alone.has_private_key, alone.chain) == ("pem", False, ())
    combined = inspect_certificate(pki.client_combined_pem)  # no password needed to describe it
    assert combined.has_private_key
    assert combined.subject == pki.client.subject
    server_info = inspect_certificate(pki.server.chain)
    assert server_info.subject_alternative_names == ("DNS:localhost", "IP:127.0.0.1", "IP:::1")
    assert server_info.extended_key_usage == ("serverAuth",)
    assert not server_info.can_authenticate_tls_client


def test_inspect_der_certificate(pki: TestPki, tmp_path: Path) -> None:
    certificate = x509.load_pem_x509_certificate(pki.root_ca.read_bytes())
    (tmp_path / "ACR-EL-TEST.cer").write_bytes(certificate.public_bytes(serialization.Encoding.DER))
    info = inspect_certificate(tmp_path / "ACR-EL-TEST.cer")
    assert info.source_format == "der"
    assert info.is_ca
    assert not info.can_authenticate_tls_client
    assert info.subject == info.issuer


def test_inspect_reports_validity_problems(pki: TestPki) -> None:
    expired = inspect_certificate(pki.expired.certificate)
    assert expired.expired
    assert expired.days_until_expiry < 0
    assert not expired.can_authenticate_tls_client
    assert any("expired" in problem for problem in expired.problems)
    assert inspect_certificate(pki.not_yet_valid.certificate).not_yet_valid
    assert inspect_certificate(pki.expiring_soon.certificate).expires_soon
    seal = inspect_certificate(pki.seal.certificate)
    assert seal.key_usage == ("nonRepudiation",)
    assert seal.extended_key_usage == ("emailProtection",)
    assert len(seal.problems) == 2


def test_inspect_at_a_given_time_flags_the_30_day_renewal_window(pki: TestPki) -> None:
    not_after = inspect_certificate(pki.client.certificate).not_after
    assert not inspect_certificate(pki.client.certificate, now=not_after - dt.timedelta(days=31)).expires_soon
    soon = inspect_certificate(pki.client.certificate, now=not_after - dt.timedelta(days=29))
    assert soon.expires_soon
    assert soon.days_until_expiry == 29


def test_inspect_needs_the_pkcs12_password(pki: TestPki) -> None:
    with pytest.raises(CertificatePasswordError):
        inspect_certificate(pki.client.pkcs12)


def test_certificate_info_round_trips_through_json(pki: TestPki) -> None:
    info = inspect_certificate(pki.client.pkcs12, password=PASSWORD)
    assert CertificateInfo.model_validate_json(info.model_dump_json()) == info
    assert "PRIVATE" not in info.model_dump_json()
