"""Security hardening (issue 14, items 6-10, 12, 15): each test guards one promise of docs/ and failed
on the code before its fix."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import stat
from pathlib import Path

import pytest

from rorclient.cli import main
from rorclient.config import Settings
from rorclient.daemon import Daemon, DaemonOptions, configure_logging
from rorclient.health import CERTIFICATE_WARNING_DAYS, read_health
from rorclient.sandbox.pki import TestPki, build_test_pki
from rorclient.store._pg_url import parse_url
from rorclient.store.memory import MemoryStore
from rorclient.store.sqlite import SqliteStore
from rorclient.sync import Sync, SyncLockedError, SyncOptions
from rorclient.tls import EXPIRY_WARNING_DAYS, CertificateInfo, CertificatePasswordError, Credentials
from tests._sync_fakes import FakeRor

pytest_plugins = ("tests.pg",)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return build_test_pki(tmp_path_factory.mktemp("pki"))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _sync(ror: FakeRor, store: object, tmp_path: Path, source: str = "test") -> Sync:
    return Sync(
        store=store,  # type: ignore[arg-type]
        client=ror,
        source=source,
        options=SyncOptions(data_dir=tmp_path / "data"),
        clock=lambda: ror.now,
    )


# ---- item 12: read-only commands create nothing -----------------------------------------------------


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["export"], ["changes"]])
def test_read_only_commands_on_a_missing_store_fail_and_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    missing = tmp_path / "typo" / "ror.sqlite3"
    code, out, err = _run(capsys, "--store", f"sqlite:///{missing}", *command)
    assert code != 0
    assert f"no store at {missing}" in err
    assert not missing.exists() and not missing.parent.exists()
    assert out == ""


def test_read_only_commands_still_read_an_existing_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ror.sqlite3"
    SqliteStore(path).close()
    code, out, _ = _run(capsys, "--store", f"sqlite:///{path}", "status", "--json")
    assert code == 0 and json.loads(out)["entities"]["establishment"] == 0


# ---- item 15: secret files ------------------------------------------------------------------------


def test_a_password_file_readable_by_others_is_refused(pki: TestPki, tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(pki.password.get_secret_value() + "\n", encoding="utf-8")
    password_file.chmod(0o640)
    with pytest.raises(CertificatePasswordError, match=r"chmod 600") as caught:
        Credentials.from_pkcs12(pki.client.pkcs12, password_file=password_file)
    assert pki.password.get_secret_value() not in str(caught.value)
    password_file.chmod(0o600)
    assert Credentials.from_pkcs12(pki.client.pkcs12, password_file=password_file).info.subject


# ---- item 10: secrets and visibility --------------------------------------------------------------


def test_settings_repr_hides_the_store_password() -> None:
    settings = Settings.load(store_url="postgresql://ror:s3cr%40t-pw@db.example.org/ror", environ={})
    for text in (repr(settings), str(settings), repr(settings.store), str(settings.store)):
        assert "s3cr" not in text
        assert "ror:***@db.example.org/ror" in text
    assert settings.store.url.endswith("s3cr%40t-pw@db.example.org/ror")  # the value itself is intact


def test_log_lines_hide_passwords_in_store_urls() -> None:
    for json_lines in (False, True):
        stream = io.StringIO()
        configure_logging(json_lines=json_lines, stream=stream)
        try:
            logging.getLogger("rorclient.test").warning(
                "cannot open %s", "postgresql://ror:hunter2@db.example.org:5432/ror?schema=x"
            )
        finally:
            logging.getLogger("rorclient").handlers.clear()
        assert "hunter2" not in stream.getvalue()
        assert "ror:***@db.example.org" in stream.getvalue()


@pytest.mark.parametrize(
    ("url", "sslmode"),
    [
        ("postgresql://u:p@db.example.org/ror", "verify-full"),
        ("postgresql://u:p@10.1.2.3:5432/ror?schema=s", "verify-full"),
        ("postgresql://u:p@db.example.org/ror?sslmode=require", "require"),
        ("postgresql://u:p@localhost/ror", None),
        ("postgresql://u:p@127.0.0.1:5432/ror", None),
        ("postgresql://u:p@[::1]:5432/ror", None),
        ("postgresql:///ror?host=/var/run/postgresql", None),
    ],
)
def test_postgres_verifies_the_server_certificate_of_remote_hosts_by_default(
    url: str, sslmode: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGSSLMODE", raising=False)
    conninfo = parse_url(url).conninfo
    if sslmode is None:
        assert "sslmode" not in conninfo
    else:
        assert f"sslmode={sslmode}" in conninfo and conninfo.count("sslmode") == 1


def _certificate(days: int) -> CertificateInfo:
    not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=days, hours=1)
    return CertificateInfo.model_construct(
        subject="CN=client",
        not_after=not_after,
        days_until_expiry=days,
        expired=False,
        not_yet_valid=False,
        expires_soon=days <= EXPIRY_WARNING_DAYS,
    )


def test_one_certificate_expiry_threshold_of_30_days_everywhere(tmp_path: Path) -> None:
    assert EXPIRY_WARNING_DAYS == CERTIFICATE_WARNING_DAYS == 30
    ror = FakeRor(2)
    sync = _sync(ror, MemoryStore(), tmp_path)
    ror.certificate = _certificate(45)  # type: ignore[assignment]
    certificate = sync.status().certificate
    assert certificate is not None and certificate.days_until_expiry == 45 and not certificate.expires_soon
    ror.certificate = _certificate(29)  # type: ignore[assignment]
    certificate = sync.status().certificate
    assert certificate is not None and certificate.expires_soon


def test_the_daemon_rechecks_certificate_expiry_at_every_cycle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ror = FakeRor(2)
    ror.certificate = _certificate(20)  # type: ignore[assignment]
    health_file = tmp_path / "health.json"
    sync = _sync(ror, MemoryStore(), tmp_path)
    options = DaemonOptions(
        interval=dt.timedelta(seconds=0), jitter=0, max_runs=3, health_file=health_file, full_every=None
    )
    with caplog.at_level(logging.WARNING, logger="rorclient"):
        Daemon(sync, options).run()
    warnings = [record for record in caplog.records if "expires in 20 days" in record.getMessage()]
    assert len(warnings) == 3  # one per cycle, not only at start-up
    health = read_health(health_file)
    assert health.status == "degraded"
    assert health.certificate is not None and health.certificate.days_until_expiry == 20
    assert health.certificate.expires_soon


# ---- item 9: one sync lock per (store, source) ----------------------------------------------------


def test_two_sources_sync_in_parallel_into_one_store_but_one_source_never_twice(tmp_path: Path) -> None:
    path = tmp_path / "ror.db"
    with SqliteStore(path) as one, SqliteStore(path) as two, SqliteStore(path) as three:
        idf = _sync(FakeRor(3), one, tmp_path, source="idf")
        ara = _sync(FakeRor(3, seed=5), two, tmp_path, source="ara")
        idf_again = _sync(FakeRor(3), three, tmp_path, source="idf")
        with idf.exclusive():
            with ara.exclusive():  # another region: not blocked
                assert ara.pull().status == "success"
            with pytest.raises(SyncLockedError, match="'idf'"):
                idf_again.pull()
        assert idf_again.pull().status == "success"


def test_two_regions_sync_in_parallel_into_one_postgres_store(postgres_url: str, tmp_path: Path) -> None:
    from rorclient.store.postgres import PostgresStore

    with (
        PostgresStore.from_url(postgres_url) as one,
        PostgresStore.from_url(postgres_url) as two,
        PostgresStore.from_url(postgres_url) as three,
    ):
        idf = _sync(FakeRor(3), one, tmp_path, source="idf")
        ara = _sync(FakeRor(3, seed=5), two, tmp_path, source="ara")
        idf_again = _sync(FakeRor(3), three, tmp_path, source="idf")
        with idf.exclusive():
            assert ara.pull().status == "success"
            with pytest.raises(SyncLockedError, match="'idf'"):
                idf_again.sync()
        assert one.stats().by_source == {"ara": ara.status().entities}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)
