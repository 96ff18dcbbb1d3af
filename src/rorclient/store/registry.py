"""Resolve a store URL to a store: built-in schemes first, then the ``rorclient.stores`` entry points."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

import platformdirs

from rorclient.errors import ConfigError
from rorclient.store._sql.postgres.url import redact_url
from rorclient.store.base import Store

__all__ = ["default_store_url", "open_store", "store_exists"]

ENTRY_POINT_GROUP = "rorclient.stores"


def default_store_url() -> str:
    """``sqlite:///<user data dir>/rorclient/ror.sqlite3``."""
    return f"sqlite:///{Path(platformdirs.user_data_dir('rorclient')) / 'ror.sqlite3'}"


def _open_sqlite(url: str) -> Store:
    from rorclient.store.sqlite import SqliteStore

    return SqliteStore.from_url(url)


def _open_memory(url: str) -> Store:
    from rorclient.store.memory import MemoryStore

    return MemoryStore(url=url)


def _open_postgres(url: str) -> Store:
    try:
        from rorclient.store.postgres import PostgresStore
    except ModuleNotFoundError as error:
        if error.name is None or not error.name.startswith("psycopg"):
            raise
        raise ConfigError("the PostgreSQL store needs psycopg 3: pip install 'rorclient[postgres]'") from None
    return PostgresStore.from_url(url)


_BUILTIN: dict[str, Callable[[str], Store]] = {
    "sqlite": _open_sqlite,
    "memory": _open_memory,
    "postgresql": _open_postgres,
    "postgres": _open_postgres,
}


def store_exists(url: str) -> bool:
    """Whether ``url`` names a store that exists already, checked without creating anything: a SQLite
    file, a PostgreSQL schema holding rorclient's tables.

    ``memory://`` is always ``True``: it names no place a typo could miss (a memory store is new and
    empty in each process, and says so). A third-party store is asked through its opener's ``exists``
    attribute, a callable ``(url) -> bool`` (e.g. an opener that is a class with an ``exists``
    classmethod, as ``PostgresStore`` has); an opener without one cannot tell, and the answer is
    ``True`` (opening it then decides), as for a scheme nobody registered (opening it is the error)."""
    scheme = url.partition("://")[0]
    if scheme == "sqlite":
        from rorclient.store.sqlite import path_from_url

        return path_from_url(url).is_file()
    if scheme in ("postgresql", "postgres"):
        try:
            from rorclient.store.postgres import PostgresStore
        except ModuleNotFoundError:
            return True  # opening it reports the missing driver
        return PostgresStore.exists(url)
    if scheme in _BUILTIN:
        return True
    exists = getattr(_registered_opener(scheme), "exists", None)
    return bool(exists(url)) if callable(exists) else True


def _registered_opener(scheme: str) -> Callable[[str], Store] | None:
    """The opener a third-party package registers for ``scheme`` (``None``: nobody does)."""
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name == scheme:
            opener: Callable[[str], Store] = entry_point.load()
            return opener
    return None


def open_store(url: str | None = None) -> Store:
    """Open the store ``url`` names (the default SQLite file when ``None``).

    Third-party stores register a callable ``(url) -> Store`` under the ``rorclient.stores`` entry-point
    group, named by URL scheme.
    """
    url = url or default_store_url()
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise ConfigError(
            f"store URL {redact_url(url)!r} has no scheme; expected sqlite:///path, memory:// or another"
        )
    opener = _BUILTIN.get(scheme) or _registered_opener(scheme)
    if opener is None:
        raise ConfigError(
            f"no store is registered for the URL scheme {scheme!r} (store URL {redact_url(url)!r})"
        )
    return opener(url)
