"""The settings models: ``Settings`` and its ``[store]``, ``[[sources]]`` and ``[sync]`` tables."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rorclient._sync_options import SyncOptions
from rorclient.errors import ConfigError
from rorclient.store import redact_url
from rorclient.store.registry import default_store_url

if TYPE_CHECKING:
    from rorclient._sync_options import RetryOptions
    from rorclient.sources import Source
    from rorclient.tls import Credentials

__all__ = ["Settings", "SourceSettings", "StoreSettings", "default_config_path"]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StoreSettings(_Section):
    url: str = Field(default_factory=default_store_url)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # repr() and str() of the settings end up in logs and tracebacks: never with the password.
        yield "url", redact_url(self.url)


#: Keys a ``kind = "fhir"`` source takes (issue 13), and those it requires.
FHIR_KEYS: Final = frozenset(
    {
        "name", "kind", "base_url", "token_url", "client_id", "client_secret_env", "client_cert",
        "client_key", "password_env", "password_file", "ca_bundle", "profile_code", "profile_system",
        "role_code", "role_system", "regions",
    }
)  # fmt: skip
FHIR_REQUIRED: Final = (
    "base_url", "token_url", "client_id", "profile_code", "profile_system", "role_code", "role_system",
)  # fmt: skip
_FHIR_ONLY: Final = FHIR_KEYS - {
    "name", "kind", "client_cert", "client_key", "password_env", "password_file", "ca_bundle",
}  # fmt: skip


class SourceSettings(_Section):
    """One source of ROR data: a regional ROR's CSD web services, a set of open-data files, or the
    national ROR's FHIR API."""

    name: str = Field(min_length=1)
    kind: Literal["csd", "file", "fhir"] = "csd"
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
    # kind = "fhir" (docs/fhir.md)
    base_url: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    profile_code: str | None = None
    profile_system: str | None = None
    role_code: str | None = None
    role_system: str | None = None
    regions: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _check_kind(self) -> SourceSettings:
        given = {key for key in self.model_fields_set if getattr(self, key) is not None}
        if self.kind == "fhir":
            unknown = sorted(given - FHIR_KEYS)
            if unknown:
                raise ValueError(
                    f"source {self.name!r} of kind 'fhir' does not take {', '.join(unknown)} "
                    f"(it takes: {', '.join(sorted(FHIR_KEYS))})"
                )
            missing = [key for key in FHIR_REQUIRED if key not in given]
            if missing:
                raise ValueError(f"source {self.name!r} of kind 'fhir' needs {', '.join(missing)}")
            if "client_secret_env" not in given and "client_cert" not in given:
                raise ValueError(
                    f"source {self.name!r} of kind 'fhir' needs client_secret_env (access profile 0) "
                    "or client_cert (mTLS, profiles 1-4)"
                )
            if self.regions is not None and not all(code.isalnum() for code in self.regions):
                raise ValueError(f'source {self.name!r}: regions are TRE_R30 codes such as "11"')
            return self
        misplaced = sorted(given & _FHIR_ONLY)
        if misplaced:
            raise ValueError(
                f"source {self.name!r} of kind {self.kind!r} does not take {', '.join(misplaced)} "
                "(keys of kind 'fhir')"
            )
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

    def pick_source(self, name: str | None = None) -> SourceSettings:
        """The source ``name``; without a name, the only web-service source, else the only source."""
        if name is not None:
            return self.source(name)
        candidates = [source for source in self.sources if source.kind == "csd"] or list(self.sources)
        if len(candidates) != 1:
            names = ", ".join(source.name for source in candidates) or "none"
            raise ConfigError(f"name the source to sync (web-service sources configured: {names})")
        return candidates[0]

    def build_source(self, name: str | None = None, *, retry: RetryOptions | None = None) -> Source:
        """The :class:`~rorclient.sources.Source` of :meth:`pick_source` ``(name)``, its client built on
        first use; ``retry`` (default: the ``[sync.retry]`` table) says how its web-service calls are
        repeated. See :func:`rorclient.config.source_from_settings`."""
        from rorclient.config._factories import source_from_settings

        return source_from_settings(self.pick_source(name), retry=retry or self.sync.retry)

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
        if error["type"] == "extra_forbidden":
            message = "Extra inputs are not permitted: unknown key"
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


def client_credentials(source: SourceSettings) -> Credentials | None:
    """The client certificate a ``[[sources]]`` entry names (``client_cert``), loaded; None without one."""
    if source.client_cert is None:
        return None
    from rorclient.tls import Credentials

    return Credentials.load(
        source.client_cert,
        source.client_key,
        password_env=source.password_env,
        password_file=source.password_file,
        ca_bundle=source.ca_bundle,
    )
