"""A ``kind = "fhir"`` source of the settings → :class:`~rorclient.fhir.FhirOptions`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr, ValidationError

from rorclient.config._settings import SourceSettings, client_credentials
from rorclient.errors import ConfigError
from rorclient.tls import Credentials

if TYPE_CHECKING:  # imported when called: it pulls in httpx
    from rorclient.fhir.client import FhirOptions

__all__ = ["fhir_options"]


def fhir_options(
    source: SourceSettings,
    *,
    environ: Mapping[str, str] | None = None,
    credentials: Credentials | None = None,
    **overrides: Any,
) -> FhirOptions:
    """The client options of ``source``: the secret read from ``client_secret_env``, the certificate
    loaded from ``client_cert`` (key in memory only), ``overrides`` (``handler``, ``page_size``...) on top.
    """
    if source.kind != "fhir":
        raise ConfigError(f"source {source.name!r} is of kind {source.kind!r}, not 'fhir'")
    env = os.environ if environ is None else environ
    secret = None
    if source.client_secret_env:
        value = env.get(source.client_secret_env)
        if not value:
            raise ConfigError(
                f"source {source.name!r}: environment variable {source.client_secret_env} "
                "(client_secret_env) is not set or empty"
            )
        secret = SecretStr(value)
    if credentials is None:
        credentials = client_credentials(source)
    fields: dict[str, Any] = {
        "base_url": source.base_url,
        "token_url": source.token_url,
        "client_id": source.client_id,
        "client_secret": secret,
        "credentials": credentials,
        "ca_bundle": source.ca_bundle,
        "profile_code": source.profile_code,
        "profile_system": source.profile_system,
        "role_code": source.role_code,
        "role_system": source.role_system,
        **overrides,
    }
    from rorclient.fhir.client import FhirOptions

    try:
        return FhirOptions(**fields)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"source {source.name!r}: {details}") from None
