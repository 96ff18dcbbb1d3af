"""PostgreSQL store URLs: the libpq URL, rorclient's ``schema`` parameter, and the URL fit to be shown.

Passwords never leave this module in clear: :attr:`Target.display` (what ``store.url``, ``repr`` and
every message show) has them replaced by ``***``, and :meth:`Target.scrub` removes them from any text
(libpq echoes a malformed URL back, password included). No driver is imported here, so
:func:`redact_url` can be used anywhere.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import unquote

from rorclient._log_redaction import MASK as _MASK
from rorclient._log_redaction import redact_secret, redact_text
from rorclient.errors import ConfigError

__all__ = [
    "DEFAULT_REMOTE_SSLMODE",
    "DEFAULT_SCHEMA",
    "SCHEMES",
    "Target",
    "parse_url",
    "redact_url",
]

SCHEMES = ("postgresql", "postgres")
DEFAULT_SCHEMA = "public"
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
_MAX_IDENTIFIER_BYTES = 63
#: What a connection to another host asks for when the URL (or ``PGSSLMODE``) sets no ``sslmode``: TLS,
#: with the server's certificate checked against ``sslrootcert`` and its name against the host.
DEFAULT_REMOTE_SSLMODE = "verify-full"


@dataclass(frozen=True)
class Target:
    """Where a store lives: the libpq connection URL, the schema, and the URL fit to be shown."""

    conninfo: str
    schema: str
    display: str
    secrets: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Target({self.display!r})"

    def scrub(self, text: str) -> str:
        """``text`` with every form of the password replaced by ``***`` wherever it stands as a whole
        token (in a URL, a connection string, or echoed alone by libpq), never inside a word: a
        one-letter password leaves that letter alone elsewhere."""
        for secret in self.secrets:  # the known password first: it may hold an "@" or a space
            text = redact_secret(text, secret)
        return redact_text(text)


def parse_url(url: str) -> Target:
    """Split ``postgresql://user:password@host:port/db?schema=name&libpq-parameter=...``.

    ``schema`` (default ``public``) is rorclient's; every other query parameter goes to libpq as is.
    Without an ``sslmode`` (in the URL or ``PGSSLMODE``), a host other than this machine is reached
    with ``sslmode=verify-full`` (docs/stores.md).
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ConfigError(
            f"PostgreSQL store URL {redact_url(url)!r} must start with postgresql:// (or postgres://)"
        )
    before_query, _, query = rest.partition("?")
    netloc, slash, path = before_query.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    secrets: list[str] = []
    shown_netloc = netloc
    if at and ":" in userinfo:
        user, _, password = userinfo.partition(":")
        secrets.append(password)
        shown_netloc = f"{user}:{_MASK}@{hosts}"
    schema = DEFAULT_SCHEMA
    kept: list[str] = []
    shown: list[str] = []
    for parameter in filter(None, query.split("&")):
        key, _, value = parameter.partition("=")
        if key == "schema":
            schema = unquote(value)
            shown.append(parameter)
            continue
        kept.append(parameter)
        if key in _SECRET_PARAMETERS:
            secrets.append(value)
            shown.append(f"{key}={_MASK}")
        else:
            shown.append(parameter)
    secrets += [unquote(secret) for secret in secrets]
    if _needs_verified_tls(hosts if at else netloc, kept):
        kept.append(f"sslmode={DEFAULT_REMOTE_SSLMODE}")
    conninfo = f"postgresql://{netloc}{slash}{path}" + (f"?{'&'.join(kept)}" if kept else "")
    display = f"{scheme}://{shown_netloc}{slash}{path}" + (f"?{'&'.join(shown)}" if shown else "")
    _check_schema(schema, display)
    # Longest first, so that a password containing another form of itself is masked whole.
    ordered = tuple(sorted({secret for secret in secrets if secret}, key=len, reverse=True))
    return Target(conninfo=conninfo, schema=schema, display=display, secrets=ordered)


def _needs_verified_tls(hosts: str, parameters: list[str]) -> bool:
    """Whether to add ``sslmode=verify-full``: no ``sslmode`` given (URL or ``PGSSLMODE``) and a host
    other than this machine (a Unix socket, ``localhost``, ``127.x`` or ``::1``)."""
    keys = {parameter.partition("=")[0]: unquote(parameter.partition("=")[2]) for parameter in parameters}
    if "sslmode" in keys or os.environ.get("PGSSLMODE"):
        return False
    names = [_host_name(host) for host in unquote(hosts).split(",")]
    if "host" in keys:
        names = [name.strip() for name in keys["host"].split(",")]
    return any(not _is_local(name) for name in names)


def _host_name(host: str) -> str:
    """``host`` without its port (``[::1]:5432`` -> ``::1``)."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _is_local(name: str) -> bool:
    if not name or name.startswith("/") or name.startswith("@") or name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def redact_url(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` parameter) replaced by ``***``.

    Use it wherever a store URL is printed or logged. Any URL is accepted: a ``user:password@`` part is
    masked whatever the scheme, and text that is not a URL at all is masked the same way.
    """
    scheme, sep, rest = url.partition("://")
    if sep and scheme in SCHEMES:
        try:
            return parse_url(url).display
        except ConfigError:
            pass
    before_query, question, query = rest.partition("?") if sep else url.partition("?")
    netloc, slash, path = before_query.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:{_MASK}@{hosts}"
    return (
        f"{scheme}{sep}{netloc}{slash}{path}{question}{query}"
        if sep
        else f"{netloc}{slash}{path}{question}{query}"
    )


def _check_schema(schema: str, display: str) -> None:
    if not schema or len(schema.encode()) > _MAX_IDENTIFIER_BYTES or "\x00" in schema:
        raise ConfigError(
            f"the schema of PostgreSQL store URL {display!r} must be a name of 1 to "
            f"{_MAX_IDENTIFIER_BYTES} bytes, got {schema!r}"
        )
