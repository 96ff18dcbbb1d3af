"""How the PostgreSQL store connects, names its advisory locks and reports errors.

Error messages name the store by :attr:`Target.display` and are scrubbed of the password (see
``.url``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from rorclient.errors import StoreError
from rorclient.store._sql.postgres.url import Target

__all__ = ["connect", "lock_key", "translate_errors"]


def connect(target: Target, *, autocommit: bool = True) -> psycopg.Connection[TupleRow]:
    """A connection whose ``search_path`` is the store's schema and whose time zone is UTC.

    A failure is a :class:`StoreError` whose message (and cause chain) never carries the password.
    """
    try:
        connection = psycopg.connect(target.conninfo, autocommit=True)
    except psycopg.Error as error:
        message = target.scrub(str(error).strip())
        raise StoreError(f"could not connect to the PostgreSQL store {target.display}: {message}") from None
    try:
        with translate_errors("set up a connection to", target):
            connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(target.schema)))
            connection.execute("SET TIME ZONE 'UTC'")
        connection.autocommit = autocommit
    except BaseException:
        connection.close()
        raise
    return connection


@contextmanager
def translate_errors(action: str, target: Target) -> Iterator[None]:
    """Turn driver errors into :class:`StoreError` naming the store (password masked) and the action."""
    try:
        yield
    except psycopg.errors.LockNotAvailable as error:
        raise StoreError(
            f"could not {action} the PostgreSQL store {target.display}: it stayed locked by another writer "
            f"for too long ({target.scrub(str(error).strip())})"
        ) from error
    except psycopg.Error as error:
        message = target.scrub(str(error).strip())
        failure = StoreError(f"could not {action} the PostgreSQL store {target.display}: {message}")
        if message != str(error).strip():
            raise failure from None
        raise failure from error


def lock_key(schema: str, purpose: str, name: str = "") -> int:
    """The 64-bit advisory-lock key of ``(schema, purpose, name)``.

    Advisory locks are shared by the whole database; hashing the schema in keeps two stores in
    different schemas of one database out of each other's way.
    """
    digest = hashlib.blake2b(f"rorclient\x00{schema}\x00{purpose}\x00{name}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)
