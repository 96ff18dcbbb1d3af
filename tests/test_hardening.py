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

from rorclient._log_redaction import redact_text
from rorclient.cli import main
from rorclient.config import Settings
from rorclient.daemon import Daemon, DaemonOptions, configure_logging
from rorclient.health import CERTIFICATE_WARNING_DAYS, read_health
from rorclient.sandbox.pki import TestPki, build_test_pki
from rorclient.store._sql.postgres.url import parse_url
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


def test_read_only_commands_on_a_missing_postgres_schema_fail_and_create_nothing(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    schema = parse_url(postgres_url).schema
    for command in (["status"], ["export"], ["changes"]):
        code, out, err = _run(capsys, "--store", postgres_url, *command)
        assert code == 2 and "no store at postgresql://" in err and out == ""
        assert parse_url(postgres_url).secrets[0] not in err
    with psycopg.connect(parse_url(postgres_url).conninfo) as connection:
        found = connection.execute("SELECT to_regnamespace(%s::text)", (schema,)).fetchone()
    assert found is not None and found[0] is None  # the schema was not created


@pytest.mark.parametrize("command", [["pull"], ["sync"], ["refresh", "--establishment", "1830000002"]])
def test_dry_runs_on_a_missing_store_fail_and_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[sources]]\nname = "idf"\nsoap_url = "https://ror.test/CSD"\n', encoding="utf-8")
    missing = tmp_path / "typo.sqlite3"
    code, _, err = _run(
        capsys, "--config", str(config), "--store", f"sqlite:///{missing}", *command, "--dry-run"
    )
    assert code == 2 and f"no store at {missing}" in err
    assert not missing.exists()


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


@pytest.fixture
def rorclient_logger():  # type: ignore[no-untyped-def]
    """configure_logging() reconfigures the "rorclient" logger: put it back as it was."""
    logger = logging.getLogger("rorclient")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


@pytest.mark.usefixtures("rorclient_logger")
def test_log_lines_hide_passwords_in_store_urls() -> None:
    for json_lines in (False, True):
        stream = io.StringIO()
        configure_logging(json_lines=json_lines, stream=stream)
        logging.getLogger("rorclient.test").warning(
            "cannot open %s", "postgresql://ror:hunter2@db.example.org:5432/ror?schema=x"
        )
        assert "hunter2" not in stream.getvalue()
        assert "ror:***@db.example.org" in stream.getvalue()


def test_a_one_letter_password_is_masked_only_where_a_url_or_dsn_holds_it() -> None:
    target = parse_url("postgresql://ror:p@db.example.org:5432/ror")
    message = (
        'connection to server at "db.example.org", port 5432 failed for '
        "postgresql://ror:p@db.example.org:5432/ror (host=db.example.org password=p port=5432)"
    )
    assert target.scrub(message) == (
        'connection to server at "db.example.org", port 5432 failed for '
        "postgresql://ror:***@db.example.org:5432/ror (host=db.example.org password=*** port=5432)"
    )
    assert redact_text("opening port 5432 of postgresql://ror:p@db/ror") == (
        "opening port 5432 of postgresql://ror:***@db/ror"
    )
    echoed = 'invalid percent-encoded token: "p" in pq options=-c search_path=x'
    assert target.scrub(echoed) == 'invalid percent-encoded token: "***" in pq options=-c search_path=x'


def test_a_password_a_driver_echoes_unencoded_is_masked_whole() -> None:
    target = parse_url("postgresql://ror:p%40ss%20w@db.example.org/ror?sslpassword=k3y")
    echoed = "invalid URI postgresql://ror:p@ss w@db.example.org/ror password='p@ss w' sslpassword=k3y"
    scrubbed = target.scrub(echoed)
    assert "p@ss" not in scrubbed and "ss w" not in scrubbed and "k3y" not in scrubbed
    assert scrubbed == "invalid URI postgresql://ror:***@db.example.org/ror password=*** sslpassword=***"


@pytest.mark.usefixtures("rorclient_logger")
def test_a_daemon_on_postgres_never_shows_the_store_password(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    password = parse_url(postgres_url).secrets[0]
    health_file = tmp_path / "health.json"
    stream = io.StringIO()
    configure_logging(json_lines=True, stream=stream, level=logging.DEBUG)
    logging.getLogger("rorclient").propagate = True  # caplog sees the records too
    with caplog.at_level(logging.DEBUG):
        sync = Sync(
            store=postgres_url, client=FakeRor(2), source="idf", options=SyncOptions(data_dir=tmp_path / "d")
        )
        with sync:
            options = DaemonOptions(max_runs=2, interval=dt.timedelta(0), jitter=0, health_file=health_file)
            Daemon(sync, options).run()
            shown = [repr(sync), sync.store_url, repr(sync.store), sync.status().model_dump_json()]
    assert caplog.records and stream.getvalue()
    assert password not in caplog.text and password not in stream.getvalue()
    assert password not in health_file.read_text() and all(password not in text for text in shown)
    assert read_health(health_file).status == "ok"


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


# ---- item 6: transport ----------------------------------------------------------------------------

SOAP_URL = "https://ror.test/ROR/0.1/CSD_ROR_Binding"
EXTRACTION_URL = "https://ror.test/ROR/extraction"


def test_plain_http_endpoints_are_refused_unless_explicitly_allowed(caplog: pytest.LogCaptureFixture) -> None:
    from rorclient.config import SourceSettings, ror_client
    from rorclient.errors import ConfigError
    from rorclient.ror import ClientOptions, RorClient

    for endpoints in (
        {"soap_url": "http://ror.test/ROR/0.1/CSD_ROR_Binding"},
        {"extraction_url": "HTTP://ror.test/extraction"},
    ):
        with pytest.raises(ConfigError, match="allow_insecure_http"):
            RorClient(name="idf", **endpoints)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="allow_insecure_http"):
            ror_client(SourceSettings(name="idf", **endpoints))  # type: ignore[arg-type]
    source = SourceSettings(name="idf", soap_url="http://127.0.0.1:1/ror", allow_insecure_http=True)
    for _ in range(2):  # warned at each start
        with caplog.at_level(logging.WARNING, logger="rorclient"), ror_client(source):
            pass
    allowed = ClientOptions(allow_insecure_http=True)
    with caplog.at_level(logging.WARNING, logger="rorclient"), RorClient(source.soap_url, options=allowed):
        pass
    warnings = [record for record in caplog.records if "plain http://" in record.getMessage()]
    assert len(warnings) == 3 and all(record.levelno == logging.WARNING for record in warnings)
    with pytest.raises(ConfigError, match="allow_insecure_http"), ror_client(SourceSettings(name="s")) as ror:
        ror.load_file("http://data.example.org/ror.xml")


def test_ca_bundle_is_honoured_with_a_loaded_credentials_object() -> None:
    from rorclient.ror import ClientOptions, RetryPolicy, RorClient
    from rorclient.sandbox import Sandbox

    with Sandbox(establishments=2, seed=3) as sandbox:
        credentials = Credentials.from_pkcs12(sandbox.pki.client.pkcs12, password=sandbox.pki.password)
        with RorClient(
            sandbox.soap_url,
            credentials=credentials,
            options=ClientOptions(ca_bundle=sandbox.pki.ca_bundle, retry=RetryPolicy(max_attempts=1)),
        ) as ror:
            assert isinstance(ror.changed_establishments(since="2000-01-01"), list)


def _file_handler(content: bytes, *, length: bool = True):  # type: ignore[no-untyped-def]
    from rorclient.ror import HttpRequest, HttpResponse

    def handler(request: HttpRequest) -> HttpResponse:
        headers = {"ETag": '"v1"'} | ({"Content-Length": str(len(content))} if length else {})
        chunks = [content[i : i + 65536] for i in range(0, len(content), 65536)]
        return HttpResponse(status=200, headers=headers, chunks=chunks)

    return handler


def test_downloads_larger_than_the_cap_are_refused(tmp_path: Path) -> None:
    from rorclient.ror import ClientOptions, ResponseTooLargeError, RetryPolicy, RorClient

    content = b"x" * (1024 * 1024)
    for announced in (True, False):  # a Content-Length over the cap, or a body that keeps coming
        dest = tmp_path / f"extraction-{announced}"
        handler = _file_handler(content, length=announced)
        with (
            RorClient(
                extraction_url=EXTRACTION_URL,
                options=ClientOptions(
                    handler=handler,
                    max_download_bytes=256 * 1024,
                    retry=RetryPolicy(max_attempts=3, wait_scale=0),
                ),
            ) as ror,
            pytest.raises(ResponseTooLargeError, match="262144"),
        ):
            ror.download_extraction(dest)
        assert not dest.exists()
        part = dest.with_name(dest.name + ".part")
        assert not part.exists() or part.stat().st_size <= 256 * 1024
    with RorClient(
        extraction_url=EXTRACTION_URL, options=ClientOptions(handler=_file_handler(content))
    ) as ror:
        assert ror.download_extraction(tmp_path / "whole").bytes == len(content)


def test_a_large_soap_answer_is_not_buffered_whole_in_memory(samples_dir: Path) -> None:
    import tracemalloc

    from rorclient.ror import ClientOptions, HttpRequest, HttpResponse, RetryPolicy, RorClient

    body = (samples_dir / "lecture_response_body.xml").read_bytes().rstrip()
    cut = body.rindex(b"</")  # the comments go inside the root element, before its end tag
    filler = b"<!--" + b"f" * 1000 + b"-->"
    repeats = 40_000  # 40 MB of comments, streamed in chunks

    def chunks():  # type: ignore[no-untyped-def]
        yield body[:cut]
        block = filler * 64
        for _ in range(repeats // 64):
            yield block
        yield body[cut:]

    def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(status=200, headers={"Content-Type": "application/soap+xml"}, chunks=chunks())

    with RorClient(
        SOAP_URL, options=ClientOptions(handler=handler, retry=RetryPolicy(max_attempts=1))
    ) as ror:
        tracemalloc.start()
        try:
            offer = ror.read_establishment("1830000002")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert offer.establishments
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB of Python memory for a 40 MB answer"


def test_a_part_file_planted_as_a_symlink_is_not_followed(tmp_path: Path) -> None:
    from rorclient.ror import ClientOptions, HttpRequest, HttpResponse, RorClient

    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    dest = tmp_path / "downloads" / "extraction"
    dest.parent.mkdir()
    serve = _file_handler(b"<CSD/>" * 10)

    def planting(request: HttpRequest) -> HttpResponse:
        # Another local user plants the links while the request is in flight (after any check).
        for name in ("extraction.part", "extraction.part.json.tmp"):
            link = dest.with_name(name)
            link.unlink(missing_ok=True)
            link.symlink_to(victim)
        return serve(request)  # type: ignore[no-any-return]

    with RorClient(extraction_url=EXTRACTION_URL, options=ClientOptions(handler=planting)) as ror:
        ror.download_extraction(dest)
    assert victim.read_bytes() == b"precious"
    assert dest.read_bytes() == b"<CSD/>" * 10 and not dest.is_symlink()


def test_a_lock_file_planted_as_a_symlink_is_not_followed(tmp_path: Path) -> None:
    from rorclient.errors import StoreError

    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    path = tmp_path / "ror.db"
    with SqliteStore(path) as store:
        Path(f"{path}.sync-idf.lock").symlink_to(victim)
        sync = _sync(FakeRor(2), store, tmp_path, source="idf")
        with pytest.raises(StoreError, match="lock file"), sync.exclusive():
            pass
    assert victim.read_bytes() == b"precious"


# ---- item 7: files at rest ------------------------------------------------------------------------


@pytest.fixture
def loose_umask():  # type: ignore[no-untyped-def]
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("loose_umask")
def test_a_new_sqlite_store_its_wal_and_lock_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "ror.sqlite3"
    with SqliteStore(path) as store:
        sync = _sync(FakeRor(2), store, tmp_path, source="idf")
        with sync.exclusive():
            sync.pull()
            wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
            assert wal.exists() and shm.exists()
            assert _mode(wal) == _mode(shm) == 0o600
            assert _mode(Path(f"{path}.sync-idf.lock")) == 0o600
    assert _mode(path.parent) == 0o700
    assert _mode(path) == 0o600
    assert _mode(tmp_path / "data") == _mode(tmp_path / "data" / "idf") == 0o700  # the extraction's


@pytest.mark.usefixtures("loose_umask")
def test_an_existing_store_open_to_others_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ror.sqlite3"
    SqliteStore(path).close()
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="rorclient"):
        SqliteStore(path).close()
    assert any(
        str(path) in record.getMessage() and "chmod 600" in record.getMessage() for record in caplog.records
    )


@pytest.mark.usefixtures("loose_umask")
def test_downloads_and_part_files_are_private(tmp_path: Path) -> None:
    from rorclient.ror import ClientOptions, RorClient

    dest = tmp_path / "data" / "idf" / "extraction"
    seen: list[int] = []

    def progress(done: int, total: int | None) -> None:
        seen.append(_mode(dest.with_name("extraction.part")))

    handler = _file_handler(b"<CSD/>" * 100_000)
    with RorClient(extraction_url=EXTRACTION_URL, options=ClientOptions(handler=handler)) as ror:
        ror.download_extraction(dest, progress=progress)
    assert seen and set(seen) == {0o600}
    assert _mode(dest) == 0o600
    assert _mode(dest.parent) == 0o700


@pytest.mark.usefixtures("loose_umask")
def test_health_files_are_private(tmp_path: Path) -> None:
    from rorclient.health import Health, write_health

    path = tmp_path / "run" / "health.json"
    write_health(path, Health.build("starting", None, source="idf", store="sqlite:///x"))
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700


# ---- item 8: reader memory on hostile input -------------------------------------------------------

_FLOOD_READER = """
import resource, sys
from rorclient.csd import read_csd
from tests._csd_docs import csd, simple_offer

head, _, tail = csd(**simple_offer()).decode().partition("</facilityDirectory>")
count = int(sys.argv[1])

class Flood:
    # The document as a stream: two million unknown children of facilityDirectory, then the rest.
    def __init__(self):
        flood = [b"<junk>x</junk>" * 10_000] * (count // 10_000)
        self.parts = iter([head.encode(), *flood, ("</facilityDirectory>" + tail).encode()])
        self.buffer = b""
    def read(self, size=-1):
        while len(self.buffer) < max(size, 1):
            part = next(self.parts, None)
            if part is None:
                break
            self.buffer += part
        data, self.buffer = (self.buffer, b"") if size < 0 else (self.buffer[:size], self.buffer[size:])
        return data

before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
entities = list(read_csd(Flood(), source_name="flood"))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(entities), (after - before) // 1024)
"""


def test_unknown_children_of_a_directory_are_not_held_in_memory(tmp_path: Path) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", _FLOOD_READER, "2000000"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    entities, grown_mb = (int(value) for value in result.stdout.split())
    assert entities == 4
    assert grown_mb < 60, f"reading grew the process by {grown_mb} MB for 2,000,000 unknown elements"


def test_a_kept_unknown_element_over_the_cap_is_a_clear_error() -> None:
    from rorclient.csd import read_csd
    from rorclient.errors import DataError
    from tests._csd_docs import csd, facility, simple_offer

    big = "<notModelled>" + "y" * 5000 + "</notModelled>"
    document = csd(
        **simple_offer(facilities=[facility("f1", "93/1", eg="eg", services=["s1"], extension_end=big)])
    )
    with pytest.raises(DataError, match=r"max_unmodeled_length.*4096") as caught:
        list(read_csd(document, source_name="big.xml", max_unmodeled_length=4096))
    assert caught.value.path is not None and "facility" in caught.value.path
    assert caught.value.source == "big.xml"
    unit = next(e for e in read_csd(document) if getattr(e, "id", None) == "93/1")
    assert any("notModelled" in extra.xml for extra in unit.extension_extras)  # type: ignore[attr-defined]
