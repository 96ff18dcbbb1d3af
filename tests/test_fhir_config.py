"""``kind = "fhir"`` in the TOML contract: exactly the documented keys, refused clearly otherwise, turned
into client options without the secret ever showing."""

from __future__ import annotations

from pathlib import Path

import pytest

from rorclient.config import Settings, fhir_options
from rorclient.errors import ConfigError
from rorclient.sandbox.pki import build_test_pki

ISSUE_EXAMPLE = """
[[sources]]
name = "national"
kind = "fhir"
base_url = "https://api.example/ws-diffusion-fhir"
token_url = "https://auth.example/auth/realms/ror/protocol/openid-connect/token"
client_id = "my-app"
client_secret_env = "ROR_CLIENT_SECRET"
ca_bundle = "/etc/app/igc-sante-chain.pem"
profile_code = "CU22"
profile_system = "1.2.250.1.213.1.6.1.66"
role_code = "AUTOMATE"
role_system = "1.2.250.1.213.1.1.4.6"
regions = ["11"]
"""
SECRET = "s3cr3t-Value-that-must-never-show"


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return Settings.load(path, environ={})


def test_the_documented_fhir_source_loads(tmp_path: Path) -> None:
    source = _load(tmp_path, ISSUE_EXAMPLE).source("national")
    assert source.kind == "fhir"
    assert source.base_url == "https://api.example/ws-diffusion-fhir"
    assert source.client_secret_env == "ROR_CLIENT_SECRET"
    assert (source.profile_code, source.role_code) == ("CU22", "AUTOMATE")
    assert source.regions == ("11",)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('soap_url = "https://x/csd"', ""), "does not take soap_url"),
        (("files = []", ""), "does not take files"),
        (("regoins = ['11']", ""), r"regoins: Extra inputs are not permitted: unknown key"),
        (
            ("", 'token_url = "https://auth.example/auth/realms/ror/protocol/openid-connect/token"'),
            "needs token_url",
        ),
        (("", 'role_system = "1.2.250.1.213.1.1.4.6"'), "needs role_system"),
        (("", 'client_secret_env = "ROR_CLIENT_SECRET"'), "needs client_secret_env .* or client_cert"),
        (("", 'regions = ["11"]\n'), None),
    ],
)
def test_unknown_or_missing_keys_are_refused_naming_them(
    tmp_path: Path, edit: tuple[str, str], message: str | None
) -> None:
    added, removed = edit
    text = ISSUE_EXAMPLE.replace(removed, "") if removed else ISSUE_EXAMPLE
    text = text.replace('regions = ["11"]', f'regions = ["11"]\n{added}')
    if message is None:  # regions is optional
        assert _load(tmp_path, text).source("national").regions is None
        return
    with pytest.raises(ConfigError, match=message) as caught:
        _load(tmp_path, text)
    assert str(tmp_path / "config.toml") in str(caught.value)


def test_csd_and_file_sources_refuse_fhir_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kind 'csd' does not take client_id, token_url"):
        _load(tmp_path, '[[sources]]\nname = "idf"\nkind = "csd"\ntoken_url = "x"\nclient_id = "y"\n')


def test_options_carry_the_secret_from_the_environment_and_never_show_it(tmp_path: Path) -> None:
    source = _load(tmp_path, ISSUE_EXAMPLE).source("national")
    options = fhir_options(source, environ={"ROR_CLIENT_SECRET": SECRET})
    assert options.client_secret is not None and options.client_secret.get_secret_value() == SECRET
    assert (options.profile_system, options.role_system) == (
        "1.2.250.1.213.1.6.1.66",
        "1.2.250.1.213.1.1.4.6",
    )
    assert SECRET not in repr(options) and SECRET not in str(options)
    with pytest.raises(ConfigError, match=r"ROR_CLIENT_SECRET .*not set") as caught:
        fhir_options(source, environ={})
    assert SECRET not in str(caught.value)


def test_a_certificate_source_loads_its_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERT_PW", "pw-for-test")
    pki = build_test_pki(tmp_path / "pki", password="pw-for-test")
    text = ISSUE_EXAMPLE.replace('client_secret_env = "ROR_CLIENT_SECRET"\n', "")
    text = text.replace(
        'ca_bundle = "/etc/app/igc-sante-chain.pem"',
        f'client_cert = "{pki.client.pkcs12}"\npassword_env = "CERT_PW"\nca_bundle = "{pki.ca_bundle}"',
    )
    source = _load(tmp_path, text).source("national")
    options = fhir_options(source)
    assert options.credentials is not None and options.client_secret is None
    assert "pw-for-test" not in repr(options)


def test_a_non_fhir_source_is_not_turned_into_fhir_options(tmp_path: Path) -> None:
    source = _load(tmp_path, '[[sources]]\nname = "idf"\nkind = "csd"\n').source("idf")
    with pytest.raises(ConfigError, match="not 'fhir'"):
        fhir_options(source)
