"""Settings: keyword arguments, then ``RORCLIENT_*`` environment variables, then a TOML file, then defaults.

The TOML format is a contract (docs/configuration.md)::

    [store]
    url = "sqlite:////var/lib/app/ror.sqlite3"

    [[sources]]
    name = "idf"                 # stored with every entity
    kind = "csd"                 # "csd" web services, or "file" for open-data files
    soap_url = "https://.../ROR/0.1/CSD_ROR_Binding"
    extraction_url = "https://.../extraction"
    client_cert = "/etc/app/ror.p12"
    client_key = "/etc/app/ror.key"
    password_env = "ROR_CERT_PASSWORD"
    ca_bundle = "/etc/app/igc-sante-chain.pem"

    [[sources]]
    name = "national"
    kind = "fhir"                # the national ROR's FHIR API
    base_url = "https://.../ws-diffusion-fhir"
    token_url = "https://.../auth/realms/ror/protocol/openid-connect/token"
    client_id = "my-app"
    client_secret_env = "ROR_CLIENT_SECRET"   # profile 0; or client_cert (+ password_env...) for mTLS
    profile_code = "CU22"
    profile_system = "1.2.250.1.213.1.6.1.66"
    role_code = "AUTOMATE"
    role_system = "1.2.250.1.213.1.1.4.6"
    regions = ["11"]             # optional: regional $export

Environment variables: ``RORCLIENT_CONFIG`` (path of the TOML file), ``RORCLIENT_STORE_URL``,
``RORCLIENT_NOMENCLATURE`` (path of an ANS NOS export used to label codes).
Without ``RORCLIENT_CONFIG`` the file ``config.toml`` under ``platformdirs.user_config_dir("rorclient")``
is read when it exists.

The settings become objects here and nowhere else (docs/architecture.md): :func:`source_from_settings`
(and :meth:`Settings.build_source`) builds the :class:`~rorclient.sources.Source` of a ``[[sources]]``
entry, :func:`ror_client` its :class:`~rorclient.ror.RorClient`, :func:`fhir_options` its
:class:`~rorclient.fhir.FhirOptions`, and :meth:`rorclient.sync.Sync.from_settings` a whole engine. The
engine, the clients and the sources below take plain arguments and never import this package.
"""

from __future__ import annotations

from rorclient.config._factories import certificate_probe, ror_client, source_from_settings
from rorclient.config._fhir import fhir_options
from rorclient.config._settings import Settings, SourceSettings, StoreSettings, default_config_path

__all__ = [
    "Settings",
    "SourceSettings",
    "StoreSettings",
    "certificate_probe",
    "default_config_path",
    "fhir_options",
    "ror_client",
    "source_from_settings",
]
