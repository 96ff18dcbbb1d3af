"""End to end against the sandbox over real mutual TLS: the three services, bad certificates, fault
scripts and resumed extraction downloads."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rorclient.config import Settings, ror_client
from rorclient.csd import read_csd
from rorclient.errors import RemoteError, RorError, TlsError
from rorclient.models import Offer
from rorclient.ror import (
    CertificateRevokedError,
    ClientCertificateRejectedError,
    ClientOptions,
    HttpStatusError,
    IncompleteResponseError,
    RequestTimeoutError,
    RetryPolicy,
    RorClient,
    ServerBusyError,
    ServerCertificateError,
    ServerFaultError,
    SoapFaultError,
    Timeouts,
    UnknownClientCaError,
    VihfSettings,
    _retry,
)
from rorclient.sandbox import Sandbox
from rorclient.tls import (
    CertificateExpiredError,
    CertificateNotYetValidError,
    CertificatePasswordError,
    CertificateUsageError,
    Credentials,
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(establishments=40, seed=7) as sb:
        yield sb


@pytest.fixture(autouse=True)
def no_faults(sandbox: Sandbox) -> Iterator[None]:
    sandbox.faults.clear()
    yield
    sandbox.faults.clear()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(_retry, "_sleep", recorded.append)
    return recorded


_UNSET: Any = object()


def connect(
    sandbox: Sandbox,
    *,
    extraction_url: str | None = None,
    client_cert: Path | None = _UNSET,
    password: Any = _UNSET,
    credentials: Credentials | None = None,
    **options: Any,
) -> RorClient:
    """A client of the sandbox: its client certificate (``client_cert``: another one, ``None``: none)
    loaded with ``password`` (default: the right one) unless ``credentials`` are given."""
    pki = sandbox.pki
    if credentials is None:
        cert = pki.client.pkcs12 if client_cert is _UNSET else client_cert
        secret = pki.password if password is _UNSET else password
        credentials = Credentials.load(cert, password=secret) if cert is not None else None
    return RorClient(
        sandbox.soap_url,
        extraction_url=extraction_url or sandbox.extraction_url,
        name="sandbox",
        credentials=credentials,
        options=ClientOptions(**{"ca_bundle": pki.ca_bundle, **options}),
    )


def establishment_ids(sandbox: Sandbox) -> list[str]:
    return sorted(row["id"] for row in sandbox.snapshot() if row["kind"] == "establishment")


# ---------------------------------------------------------------------------------------------------------
# The three services


def test_notif_lists_every_establishment_changed_since_a_date(sandbox: Sandbox) -> None:
    with connect(sandbox) as ror:
        assert sorted(ror.changed_establishments(dt.datetime(2000, 1, 1))) == establishment_ids(sandbox)
        entries = ror.changed_establishment_entries(dt.datetime(2000, 1, 1))
    assert all(entry.activity_fields for entry in entries)


def test_notif_after_changes_lists_only_the_changed_establishments(sandbox: Sandbox) -> None:
    sandbox.clock.advance(seconds=3600)
    before = sandbox.clock.now()
    mutations = sandbox.mutate(count=4, seed=3)
    with connect(sandbox) as ror:
        changed = set(ror.changed_establishments(before - dt.timedelta(seconds=1)))
    touched = {m.establishment for m in mutations} | {m.target_establishment for m in mutations} - {None}
    assert changed == touched


def test_lecture_of_an_establishment_and_of_a_unit(sandbox: Sandbox) -> None:
    target = establishment_ids(sandbox)[0]
    with connect(sandbox) as ror:
        offer = ror.read_establishment(target)
        [establishment] = offer.establishments
        assert establishment.id == target and len(offer.legal_entities) == 1
        unit = offer.units[0]
        by_unit = ror.read_unit(unit.id)
    assert unit.id in {u.id for u in by_unit.units}
    truth = {
        row["id"]
        for row in sandbox.snapshot()
        if row.get("establishment") == target and row["kind"] == "unit"
    }
    assert {u.id for u in offer.units} == truth


def test_lecture_filters_are_applied_by_the_server(sandbox: Sandbox) -> None:
    target = establishment_ids(sandbox)[1]
    with connect(sandbox) as ror:
        full = ror.read_establishment(target)
        restricted = ror.read_establishment(target, restricted=True)
        none_after = ror.read_establishment(target, since=dt.datetime(2099, 1, 1))
    assert full.establishments and restricted.establishments
    assert len(none_after.units) <= len(full.units)


def test_unknown_establishment_is_a_remote_error(sandbox: Sandbox) -> None:
    with connect(sandbox) as ror, pytest.raises(RemoteError) as caught:
        ror.read_establishment("0000000000")
    assert caught.value.code == 404 and "unknown establishment" in caught.value.message


def test_many_lectures_in_parallel(sandbox: Sandbox) -> None:
    ids = establishment_ids(sandbox)
    with connect(sandbox, max_concurrency=4) as ror:
        results = dict(ror.read_establishments([*ids, "0000000000"], concurrency=4))
    assert all(isinstance(results[i], Offer) for i in ids)
    assert isinstance(results["0000000000"], RemoteError)


def test_extraction_download_matches_the_ground_truth(sandbox: Sandbox, tmp_path: Path) -> None:
    with connect(sandbox) as ror:
        plain = ror.download_extraction(tmp_path / "ror.xml")
    with connect(sandbox, extraction_url=sandbox.extraction_url + "?format=gzip") as ror:
        packed = ror.download_extraction(tmp_path / "ror.xml.gz")
        entities = list(ror.load_file(packed.path))
    assert plain.compressed is None and packed.compressed == "gzip" and plain.etag
    assert [e.id for e in read_csd(plain.path)] == [e.id for e in entities]
    assert sorted(e.id for e in entities if e.kind == "establishment") == establishment_ids(sandbox)


def test_client_from_the_toml_configuration(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.write_client_config(tmp_path / "config.toml")
    settings = Settings.load(config, environ={})
    with ror_client(settings.source("sandbox")) as ror:
        assert ror.certificate is not None and ror.certificate.subject == sandbox.pki.client.subject
        assert ror.changed_establishments("2000-01-01")


def test_vihf_profile_is_sent_and_honoured(sandbox: Sandbox) -> None:
    target = establishment_ids(sandbox)[0]
    with connect(sandbox, vihf=VihfSettings(profile="CU23")) as ror:
        assert ror.read_establishment(target).establishments
    with connect(sandbox, vihf=VihfSettings(profile="CU18")) as ror, pytest.raises(SoapFaultError) as caught:
        ror.read_establishment(target)
    assert caught.value.code == 403 and not caught.value.retryable


# ---------------------------------------------------------------------------------------------------------
# Bad certificates


@pytest.mark.parametrize(
    ("certificate", "error", "exit_code"),
    [
        ("expired", CertificateExpiredError, 54),
        ("not_yet_valid", CertificateNotYetValidError, 55),
        ("seal", CertificateUsageError, 56),
    ],
)
def test_unusable_certificates_fail_before_any_connection(
    sandbox: Sandbox, certificate: str, error: type[TlsError], exit_code: int
) -> None:
    before = sandbox.stats()
    with pytest.raises(error) as caught:
        connect(sandbox, client_cert=getattr(sandbox.pki, certificate).pkcs12)
    assert caught.value.exit_code == exit_code
    assert sandbox.stats() == before


def test_wrong_password_fails_before_any_connection(sandbox: Sandbox) -> None:
    with pytest.raises(CertificatePasswordError) as caught:
        connect(sandbox, password="not the password")
    assert caught.value.exit_code == 52 and "not the password" not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "error", "exit_code", "words"),
    [
        ({"certificate": "wrong_ca"}, UnknownClientCaError, 59, "does not trust the authority"),
        ({"certificate": "revoked"}, CertificateRevokedError, 60, "revoked"),
        ({"forced": "expired"}, ClientCertificateRejectedError, 58, "has expired"),
        ({"no_certificate": True}, ClientCertificateRejectedError, 58, "requires a client certificate"),
        ({"untrusted_server": True}, ServerCertificateError, 57, "cannot be trusted"),
    ],
    ids=["wrong-ca", "revoked", "expired-forced", "no-certificate", "untrusted-server"],
)
def test_certificates_the_server_refuses_fail_fast_and_are_not_retried(
    sandbox: Sandbox,
    sleeps: list[float],
    options: dict[str, Any],
    error: type[TlsError],
    exit_code: int,
    words: str,
) -> None:
    pki = sandbox.pki
    settings: dict[str, Any] = {}
    if "certificate" in options:
        settings["client_cert"] = getattr(pki, options["certificate"]).pkcs12
    if "forced" in options:
        settings["credentials"] = Credentials.from_pkcs12(
            getattr(pki, options["forced"]).pkcs12,
            password=pki.password,
            ca_bundle=pki.ca_bundle,
            allow_invalid=True,
        )
    if options.get("no_certificate"):
        settings["client_cert"] = None
    if options.get("untrusted_server"):
        settings["ca_bundle"] = pki.wrong_ca_root
    with connect(sandbox, **settings) as ror, pytest.raises(TlsError) as caught:
        ror.changed_establishments("2024-01-01")
    assert type(caught.value) is error and caught.value.exit_code == exit_code
    assert words in str(caught.value) and not sleeps


def test_each_certificate_failure_has_its_own_exit_code() -> None:
    classes: list[type[TlsError]] = [
        CertificatePasswordError,
        CertificateExpiredError,
        CertificateNotYetValidError,
        CertificateUsageError,
        ServerCertificateError,
        ClientCertificateRejectedError,
        UnknownClientCaError,
        CertificateRevokedError,
    ]
    codes = [cls.exit_code for cls in classes]
    assert len(set(codes)) == len(codes)


@pytest.mark.parametrize("memfd", [True, False], ids=["memfd", "temp-file-fallback"])
def test_no_key_material_is_left_on_disk(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memfd: bool
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    if not memfd:
        monkeypatch.delattr(os, "memfd_create", raising=False)
    with connect(sandbox, cache_dir=tmp_path / "cache") as ror:
        assert ror.changed_establishments("2000-01-01")
    assert list(scratch.iterdir()) == []
    assert not (tmp_path / "cache").exists()


# ---------------------------------------------------------------------------------------------------------
# Fault scripts


@pytest.mark.parametrize("operation", ["lecture", "notif"])
def test_503_with_retry_after_is_waited_out(sandbox: Sandbox, sleeps: list[float], operation: str) -> None:
    sandbox.faults.add(operation, "503", count=2, retry_after=4)
    with connect(sandbox) as ror:
        if operation == "lecture":
            ror.read_establishment(establishment_ids(sandbox)[0])
        else:
            ror.changed_establishments("2000-01-01")
    assert len(sleeps) == 2 and all(4 <= wait < 5 for wait in sleeps)


def test_a_503_that_lasts_is_reported_with_its_retry_after(sandbox: Sandbox, sleeps: list[float]) -> None:
    sandbox.faults.add("lecture", "503", retry_after=2)
    with connect(sandbox, retry=RetryPolicy(max_attempts=3)) as ror, pytest.raises(ServerBusyError) as caught:
        ror.read_establishment(establishment_ids(sandbox)[0])
    assert (caught.value.status, caught.value.retry_after) == (503, 2) and len(sleeps) == 2


@pytest.mark.parametrize("kind", ["reset", "truncate", "soap_fault", "content_type"])
def test_transient_faults_are_retried_until_success(sandbox: Sandbox, sleeps: list[float], kind: str) -> None:
    sandbox.faults.add("lecture", kind, count=2)
    target = establishment_ids(sandbox)[0]
    with connect(sandbox) as ror:
        assert ror.read_establishment(target).establishments[0].id == target
    assert len(sleeps) == (0 if kind == "content_type" else 2)


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("reset", RorError),
        ("truncate", IncompleteResponseError),
        ("soap_fault", ServerFaultError),
    ],
)
def test_faults_that_last_fail_with_their_typed_error(
    sandbox: Sandbox, sleeps: list[float], kind: str, error: type[RorError]
) -> None:
    sandbox.faults.add("notif", kind)
    with connect(sandbox, retry=RetryPolicy(max_attempts=3)) as ror, pytest.raises(error) as caught:
        ror.changed_establishments("2000-01-01")
    assert caught.value.retryable and len(sleeps) == 2


def test_a_500_page_is_not_retried(sandbox: Sandbox, sleeps: list[float]) -> None:
    sandbox.faults.add("lecture", "500")
    with connect(sandbox) as ror, pytest.raises(HttpStatusError) as caught:
        ror.read_unit("x")
    assert caught.value.status == 500 and not sleeps


def test_a_slow_answer_times_out_then_succeeds(sandbox: Sandbox, sleeps: list[float]) -> None:
    sandbox.faults.add("notif", "latency", count=1, delay=0.5)
    with connect(sandbox, timeouts=Timeouts(read=0.1)) as ror:
        assert ror.changed_establishments("2000-01-01")
    assert len(sleeps) == 1


def test_a_trickling_answer_hits_the_total_deadline(sandbox: Sandbox, sleeps: list[float]) -> None:
    sandbox.faults.add("notif", "trickle", delay=0.05)
    options = {"timeouts": Timeouts(total=0.2), "retry": RetryPolicy(max_attempts=2)}
    with connect(sandbox, **options) as ror, pytest.raises(RequestTimeoutError) as caught:
        ror.changed_establishments("2000-01-01")
    assert caught.value.phase == "deadline" and len(sleeps) == 1


# ---------------------------------------------------------------------------------------------------------
# Resumable extraction


@pytest.fixture(scope="module")
def reference_extraction(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    with connect(sandbox) as ror:
        return ror.download_extraction(tmp_path_factory.mktemp("ref") / "ror.xml").path.read_bytes()


class Cut(Exception):
    pass


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_a_cut_extraction_resumes_where_it_stopped(
    sandbox: Sandbox, reference_extraction: bytes, tmp_path: Path, fraction: float
) -> None:
    dest = tmp_path / "ror.xml"

    def cut(done: int, total: int | None) -> None:
        assert total == len(reference_extraction)
        if done >= total * fraction:
            raise Cut(done)

    with connect(sandbox) as ror:
        with pytest.raises(Cut) as stopped:
            ror.download_extraction(dest, progress=cut)
        kept = stopped.value.args[0]
        assert kept >= len(reference_extraction) * fraction and not dest.exists()
        result = ror.download_extraction(dest)
    assert result.resumed and result.bytes_transferred == len(reference_extraction) - kept
    assert dest.read_bytes() == reference_extraction


@pytest.mark.parametrize("kind", ["truncate", "reset"])
def test_a_connection_cut_during_the_extraction_is_resumed_within_the_call(
    sandbox: Sandbox, reference_extraction: bytes, tmp_path: Path, sleeps: list[float], kind: str
) -> None:
    sandbox.faults.add("extraction", kind, count=1)
    with connect(sandbox) as ror:
        result = ror.download_extraction(tmp_path / "ror.xml")
    assert result.resumed and result.bytes == len(reference_extraction)
    assert result.bytes_transferred == len(reference_extraction)
    assert (tmp_path / "ror.xml").read_bytes() == reference_extraction and len(sleeps) == 1
