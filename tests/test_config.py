"""Settings precedence and the TOML contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rorclient.config import Settings
from rorclient.errors import ConfigError

CONTRACT_TOML = """
[store]
url = "sqlite:////var/lib/app/ror.sqlite3"

[[sources]]
name = "idf"
kind = "csd"
soap_url = "https://ror.example/ROR/0.1/CSD_ROR_Binding"
extraction_url = "https://ror.example/extraction"
client_cert = "/etc/app/ror.p12"
client_key = "/etc/app/ror.key"
password_env = "ROR_CERT_PASSWORD"
ca_bundle = "/etc/app/igc-sante-chain.pem"

[[sources]]
name = "open-data"
kind = "file"
files = ["/srv/ror/week.xml.gz"]
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONTRACT_TOML)
    return path


def test_reads_every_documented_key(config_file: Path) -> None:
    settings = Settings.load(config_file, environ={})
    assert settings.store.url == "sqlite:////var/lib/app/ror.sqlite3"
    idf = settings.source("idf")
    assert idf.kind == "csd"
    assert idf.soap_url == "https://ror.example/ROR/0.1/CSD_ROR_Binding"
    assert idf.extraction_url == "https://ror.example/extraction"
    assert idf.client_cert == Path("/etc/app/ror.p12")
    assert idf.client_key == Path("/etc/app/ror.key")
    assert idf.password_env == "ROR_CERT_PASSWORD"
    assert idf.ca_bundle == Path("/etc/app/igc-sante-chain.pem")
    assert settings.source("open-data").files == (Path("/srv/ror/week.xml.gz"),)


def test_precedence_arguments_then_environment_then_file(config_file: Path) -> None:
    env = {"RORCLIENT_STORE_URL": "memory://env"}
    assert Settings.load(config_file, environ=env).store.url == "memory://env"
    assert Settings.load(config_file, environ=env, store_url="memory://arg").store.url == "memory://arg"


def test_config_file_from_environment(config_file: Path) -> None:
    settings = Settings.load(environ={"RORCLIENT_CONFIG": str(config_file)})
    assert settings.config_file == config_file
    assert [s.name for s in settings.sources] == ["idf", "open-data"]


def test_default_store_lives_in_the_user_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    settings = Settings.load(environ={})
    assert settings.store.url.startswith("sqlite:///")
    assert settings.store.url.endswith("rorclient/ror.sqlite3")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[store]\nurll = 'x'\n", "store.urll"),
        ("[[sources]]\nname = 'a'\nkind = 'ftp'\n", "sources.0.kind"),
        ("[[sources]]\nname = 'a'\n[[sources]]\nname = 'a'\n", "repeated: a"),
        ("[[sources]]\nname = 'a'\nkind = 'file'\nsoap_url = 'https://x'\n", "kind 'file'"),
        ("[store\n", "not valid TOML"),
    ],
)
def test_bad_files_are_rejected_with_the_key_named(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        Settings.load(path, environ={})


def test_missing_file_and_unknown_source_are_config_errors(tmp_path: Path, config_file: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        Settings.load(tmp_path / "absent.toml", environ={})
    with pytest.raises(ConfigError, match="unknown source 'paca'"):
        Settings.load(config_file, environ={}).source("paca")


def test_the_sync_table_sets_the_sync_options(tmp_path: Path) -> None:
    """Breaker, overlap and the rest are configurable from TOML, for the command line and the daemon."""
    from rorclient.sync import Sync

    path = tmp_path / "c.toml"
    path.write_text(
        '[store]\nurl = "memory://"\n[sync]\nbreaker_share = 0.25\nbreaker_floor = 5\noverlap = "PT10M"\n'
        '[[sources]]\nname = "r"\nsoap_url = "https://ror.test/x"\n'
    )
    settings = Settings.load(path)
    options = settings.sync_options(readers=3)
    assert (options.breaker_share, options.breaker_floor, options.readers) == (0.25, 5, 3)
    assert options.overlap.total_seconds() == 600
    short = tmp_path / "short.toml"
    short.write_text('[sync]\noverlap = "1h30m"\n')  # the daemon's --interval syntax works here too
    assert Settings.load(short).sync.overlap.total_seconds() == 5400
    with Sync.from_settings(settings, source="r") as sync:
        assert sync.options.breaker_floor == 5
    assert hash(settings) == hash(Settings.load(path))  # settings stay frozen and hashable


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[sync]\nbreaker_shar = 0.2\n", "sync.breaker_shar"),
        ("[sync]\nbreaker_share = 2\n", "sync.breaker_share"),
        ("[sync.retry]\nmax_atempts = 2\n", "sync.retry.max_atempts"),
        ("[sync.retry]\nmax_attempts = 0\n", "sync.retry.max_attempts"),
        ('[sync.retry]\nmax_wait = "soon"\n', "sync.retry.max_wait"),
    ],
)
def test_a_bad_sync_table_is_rejected_when_the_settings_load(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.load(path)


# ---- settings become objects in rorclient.config, and only there ----------------------------------


def test_ror_client_takes_the_source_and_lets_given_options_win(monkeypatch: pytest.MonkeyPatch) -> None:
    from rorclient.config import SourceSettings, ror_client
    from rorclient.ror import ClientOptions, RetryPolicy
    from rorclient.sync import RetryOptions

    source = SourceSettings(
        name="idf",
        soap_url="http://127.0.0.1:1/ror",
        extraction_url="http://127.0.0.1:1/extraction",
        allow_insecure_http=True,
        max_download_bytes=1234,
    )
    with ror_client(source, retry=RetryOptions(max_attempts=2)) as ror:
        assert (ror.name, ror.soap_url, ror.extraction_url) == ("idf", source.soap_url, source.extraction_url)
        assert ror.options.allow_insecure_http and ror.options.max_download_bytes == 1234
        assert ror.options.retry.max_attempts == 2 and ror.certificate is None
    given = ClientOptions(max_download_bytes=99, retry=RetryPolicy.no_retry())
    with ror_client(source, options=given, retry=RetryOptions(max_attempts=3)) as ror:
        assert ror.options.max_download_bytes == 99 and ror.options.retry.max_attempts == 1
        assert ror.options.allow_insecure_http  # not set in the given options: the source's
    with pytest.raises(ConfigError, match="'open-data' is of kind 'file'"):
        ror_client(SourceSettings(name="open-data", kind="file"))


def test_a_source_built_from_settings_connects_on_first_use_and_describes_an_expired_certificate(
    tmp_path: Path,
) -> None:
    from rorclient.config import SourceSettings, source_from_settings
    from rorclient.sandbox.pki import build_test_pki
    from rorclient.sources import CsdWebServiceSource, FileSource
    from rorclient.tls import CertificateExpiredError

    pki = build_test_pki(tmp_path / "pki", password="pw-for-test")
    password_file = tmp_path / "password"
    password_file.write_text("pw-for-test")
    password_file.chmod(0o600)
    source = SourceSettings(
        name="idf",
        soap_url="https://ror.test/ROR",
        client_cert=pki.expired.pkcs12,
        password_file=password_file,
    )
    built = source_from_settings(source)
    assert isinstance(built, CsdWebServiceSource) and built.name == "idf"
    info = built.certificate  # described without loading the key: status shows it, expired
    assert info is not None and info.subject == pki.expired.subject and info.expired
    with pytest.raises(CertificateExpiredError):
        built.client  # noqa: B018 - connecting loads the certificate, and refuses it
    files = source_from_settings(SourceSettings(name="od", kind="file", files=(tmp_path / "a.xml",)))
    assert isinstance(files, FileSource) and files.name == "od"


def test_settings_pick_and_build_the_source_to_sync(config_file: Path) -> None:
    settings = Settings.load(config_file, environ={})
    assert settings.pick_source().name == "idf"  # the only web-service source
    assert settings.build_source("open-data").name == "open-data"
    with pytest.raises(ConfigError, match="unknown source 'nope'"):
        settings.build_source("nope")
