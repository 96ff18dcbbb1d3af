"""Where settings become objects: the ROR client, the source and the options one ``[[sources]]`` entry
describes. The engine, the clients and the sources take plain arguments and never read settings; these
functions (and :meth:`~rorclient.config.Settings.build_source`) are the one place that does.

The web-service client and the FHIR client are imported when first built (they pull in ``httpx`` and
``zeep``), so that building a source stays cheap and ``import rorclient`` imports neither.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from rorclient._sync_options import RetryOptions
from rorclient.config._fhir import fhir_options
from rorclient.config._settings import SourceSettings, client_credentials
from rorclient.errors import ConfigError
from rorclient.sources import CsdWebServiceSource, FhirSource, FileSource, Source
from rorclient.sources.base import CertificateProbe

if TYPE_CHECKING:
    from rorclient.fhir._reads import FhirApi
    from rorclient.ror import ClientOptions, RorClient
    from rorclient.tls import CertificateInfo, Credentials

__all__ = ["ror_client", "source_from_settings"]


def ror_client(
    source: SourceSettings,
    *,
    options: ClientOptions | None = None,
    credentials: Credentials | None = None,
    retry: RetryOptions | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> RorClient:
    """The :class:`~rorclient.ror.RorClient` of a ``kind = "csd"`` source: its endpoints, its
    certificate loaded from ``client_cert`` (key in memory only) unless ``credentials`` are given, and
    ``options`` with ``ca_bundle``, ``allow_insecure_http`` and ``max_download_bytes`` taken from the
    source where ``options`` does not set them. ``retry`` (the ``[sync.retry]`` table) and ``cache_dir``
    set those two options the same way."""
    from rorclient.ror import ClientOptions, RetryPolicy, RorClient

    if source.kind != "csd":
        raise ConfigError(f"source {source.name!r} is of kind {source.kind!r}, not a web-service source")
    options = options or ClientOptions()
    given = options.model_fields_set
    from_settings: dict[str, object] = {
        "ca_bundle": source.ca_bundle,
        "allow_insecure_http": source.allow_insecure_http,
        "max_download_bytes": source.max_download_bytes,
    }
    if retry is not None:
        from_settings["retry"] = RetryPolicy(**retry.model_dump())
    if cache_dir is not None:
        from_settings["cache_dir"] = Path(cache_dir)
    options = options.model_copy(
        update={key: value for key, value in from_settings.items() if key not in given}
    )
    if credentials is None:
        credentials = client_credentials(source)
    return RorClient(
        source.soap_url,
        extraction_url=source.extraction_url,
        name=source.name,
        credentials=credentials,
        options=options,
    )


def source_from_settings(
    source: SourceSettings,
    *,
    retry: RetryOptions | None = None,
    environ: Mapping[str, str] | None = None,
) -> Source:
    """The :class:`~rorclient.sources.Source` one ``[[sources]]`` entry describes (``kind = "csd"``,
    ``"file"`` or ``"fhir"``), its client built on first use. ``retry``: how web-service calls are
    repeated (default: :class:`rorclient.ror.RetryPolicy`'s defaults); ``environ``: where a FHIR
    source's ``client_secret_env`` is read (default: ``os.environ``)."""
    if source.kind == "csd":
        return CsdWebServiceSource(
            source.name,
            connect=functools.partial(ror_client, source, retry=retry),
            certificate=certificate_probe(source),
        )
    if source.kind == "file":
        return FileSource(source.name, source.files)
    if source.kind == "fhir":
        return FhirSource(
            source.name,
            connect=functools.partial(_fhir_client, source, environ),
            regions=source.regions,
            certificate=certificate_probe(source),
        )
    raise ConfigError(f"source {source.name!r}: unknown kind {source.kind!r}")  # pragma: no cover


def certificate_probe(source: SourceSettings) -> CertificateProbe | None:
    """How to describe the source's client certificate without loading its key (``rorclient status``
    and the health file must show an expired certificate, which loading it would refuse)."""
    if source.client_cert is None:
        return None
    return functools.partial(_inspect, source.client_cert, source.password_env, source.password_file)


def _inspect(path: Path, password_env: str | None, password_file: Path | None) -> CertificateInfo:
    from rorclient.tls import inspect_certificate

    return inspect_certificate(path, password_env=password_env, password_file=password_file)


def _fhir_client(source: SourceSettings, environ: Mapping[str, str] | None) -> FhirApi:
    from rorclient.fhir.client import FhirClient

    return FhirClient(fhir_options(source, environ=environ))
