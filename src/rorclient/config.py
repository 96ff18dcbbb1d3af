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

Environment variables: ``RORCLIENT_CONFIG`` (path of the TOML file), ``RORCLIENT_STORE_URL``,
``RORCLIENT_NOMENCLATURE`` (path of an ANS NOS export used to label codes).
Without ``RORCLIENT_CONFIG`` the file ``config.toml`` under ``platformdirs.user_config_dir("rorclient")``
is read when it exists.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rorclient._sync_options import SyncOptions
from rorclient.errors import ConfigError
from rorclient.store._pg_url import redact_url
from rorclient.store.registry import default_store_url

__all__ = ["Settings", "SourceSettings", "StoreSettings", "default_config_path"]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StoreSettings(_Section):
    url: str = Field(default_factory=default_store_url)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # repr() and str() of the settings end up in logs and tracebacks: never with the password.
        yield "url", redact_url(self.url)


class SourceSettings(_Section):
    """One source of ROR data: a regional ROR's web services, or a set of open-data files."""

    name: str = Field(min_length=1)
    kind: Literal["csd", "file"] = "csd"
    soap_url: str | None = None
    extraction_url: str | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    password_env: str | None = None
    password_file: Path | None = None
    ca_bundle: Path | None = None
    files: tuple[Path, ...] = ()
    allow_insecure_http: bool = False
    """Accept ``http://`` endpoints (a local test server only: warned about at each start)."""
    max_download_bytes: int = Field(default=16 * 1024**3, ge=1)
    """Largest extraction or file download accepted, in bytes (default 16 GiB)."""

    @model_validator(mode="after")
    def _check_kind(self) -> SourceSettings:
        if self.kind == "file" and (self.soap_url or self.extraction_url):
            raise ValueError("a source of kind 'file' takes 'files', not web-service URLs")
        return self


class Settings(_Section):
    store: StoreSettings = Field(default_factory=StoreSettings)
    sources: tuple[SourceSettings, ...] = ()
    nomenclature: Path | None = None
    sync: SyncOptions = Field(default_factory=SyncOptions)
    """The ``[sync]`` table: :class:`~rorclient.sync.SyncOptions` (``breaker_share``, ``overlap``...)."""
    config_file: Path | None = None

    def sync_options(self, **overrides: Any) -> SyncOptions:
        """The ``[sync]`` table's :class:`~rorclient.sync.SyncOptions`, with ``overrides`` not None on top."""
        changes = {key: value for key, value in overrides.items() if value is not None}
        if not changes:
            return self.sync
        try:
            return SyncOptions.model_validate({**self.sync.model_dump(exclude_unset=True), **changes})
        except ValidationError as exc:
            raise ConfigError(f"invalid sync options: {_describe(exc)}") from None

    @model_validator(mode="after")
    def _unique_sources(self) -> Settings:
        names = [source.name for source in self.sources]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"source names must be unique; repeated: {', '.join(duplicates)}")
        return self

    def source(self, name: str) -> SourceSettings:
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise ConfigError(f"unknown source {name!r} (known: {known})")

    @classmethod
    def load(
        cls,
        config_file: str | os.PathLike[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build settings with the documented precedence; ``overrides`` win over everything.

        ``store_url=`` is accepted as a shortcut for ``store={"url": ...}``.
        """
        env = os.environ if environ is None else environ
        path = Path(config_file) if config_file else _env_path(env, "RORCLIENT_CONFIG")
        if path is None and default_config_path().is_file():
            path = default_config_path()
        data: dict[str, Any] = _read_toml(path) if path else {}
        if path:
            data["config_file"] = path
        store_url = overrides.pop("store_url", None) or env.get("RORCLIENT_STORE_URL")
        if store_url:
            data["store"] = {**data.get("store", {}), "url": store_url}
        if env.get("RORCLIENT_NOMENCLATURE") and "nomenclature" not in overrides:
            data["nomenclature"] = env["RORCLIENT_NOMENCLATURE"]
        data.update({key: value for key, value in overrides.items() if value is not None})
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            where = f" in {path}" if path else ""
            raise ConfigError(f"invalid settings{where}: {_describe(exc)}") from None


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir("rorclient")) / "config.toml"


def _env_path(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name)
    return Path(value) if value else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(str(item) for item in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)
