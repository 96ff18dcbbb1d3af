"""Secret handling shared by the TLS code: password resolution and loading an in-memory key into OpenSSL.

Two rules hold everywhere in this module:

* a password is a :class:`pydantic.SecretStr` from the moment it is resolved, so it never shows in a
  ``repr``, a log line or an exception message; it is turned into bytes only at the call that needs it;
* a private key never reaches a file in clear. :meth:`ssl.SSLContext.load_cert_chain` only accepts paths
  (CPython gh-60691), so :func:`load_cert_chain_from_memory` re-encrypts the key with a random one-time
  passphrase and hands OpenSSL an anonymous in-memory file (``memfd``) or, where that does not exist, a
  0600 file in a private 0700 temporary directory that is deleted as soon as OpenSSL has read it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import ssl
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from pydantic import SecretStr

__all__ = [
    "PasswordFileNotFoundError",
    "PasswordResolutionError",
    "PasswordSource",
    "load_cert_chain_from_memory",
    "resolve_password",
    "secret_bytes",
]

#: What callers may pass as a password: plain text, bytes, or an already wrapped secret.
PasswordSource = str | bytes | SecretStr


class PasswordResolutionError(Exception):
    """A password source was named but could not be read. The message never contains the password."""


class PasswordFileNotFoundError(PasswordResolutionError):
    """The password file does not exist."""


def resolve_password(
    password: PasswordSource | None = None,
    *,
    password_env: str | None = None,
    password_file: str | os.PathLike[str] | None = None,
) -> SecretStr | None:
    """Return the password given directly, read from the environment variable named ``password_env``, or
    read from ``password_file`` (one trailing newline removed). At most one source may be given.

    Raises :class:`ValueError` when several sources are given and :class:`PasswordResolutionError` when the
    variable is unset or the file cannot be read.
    """
    given = [source for source in (password, password_env, password_file) if source is not None]
    if len(given) > 1:
        raise ValueError("give the password in only one way: password, password_env or password_file")
    if isinstance(password, SecretStr):
        return password
    if isinstance(password, bytes):
        return SecretStr(password.decode("utf-8", errors="surrogateescape"))
    if isinstance(password, str):
        return SecretStr(password)
    if password_env is not None:
        value = os.environ.get(password_env)
        if value is None:
            raise PasswordResolutionError(f"environment variable {password_env} is not set")
        return SecretStr(value)
    if password_file is not None:
        text = _read_password_file(Path(password_file))
        return SecretStr(text.removesuffix("\n").removesuffix("\r"))
    return None


def _read_password_file(path: Path) -> str:
    """The text of ``path``, refused when group or others have any access to it (POSIX): a password
    others can read is no longer a secret, and one others can write lets them choose it."""
    try:
        with path.open("rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise PasswordResolutionError(
                    f"the password file {path} is open to other users (mode {stat.S_IMODE(mode):04o}); "
                    f"make it private: chmod 600 {path}"
                )
            return file.read().decode("utf-8")
    except FileNotFoundError:
        raise PasswordFileNotFoundError(f"password file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PasswordResolutionError(f"cannot read the password file {path}: {type(exc).__name__}") from None


def secret_bytes(secret: SecretStr | None) -> bytes | None:
    """The UTF-8 bytes of ``secret``, for the single call that needs them."""
    return None if secret is None else secret.get_secret_value().encode("utf-8", errors="surrogateescape")


def load_cert_chain_from_memory(
    context: ssl.SSLContext,
    certificate: x509.Certificate,
    key: PrivateKeyTypes,
    chain: Sequence[x509.Certificate] = (),
) -> None:
    """Install ``certificate`` (followed by the intermediate ``chain``) and ``key`` in ``context`` without
    ever writing the key in clear to a file.
    """
    one_time = secrets.token_urlsafe(32).encode("ascii")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_time),
    )
    pem += b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in (certificate, *chain))
    with _one_time_file(pem) as path:
        context.load_cert_chain(path, password=one_time)


@contextlib.contextmanager
def _one_time_file(data: bytes) -> Iterator[str]:
    """Yield a path OpenSSL can open that holds ``data`` and disappears when the block exits."""
    fd = _memfd()
    if fd is not None:
        try:
            _write_all(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="rorclient-") as directory:
        path = os.path.join(directory, "credentials.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        try:
            yield path
        finally:
            os.unlink(path)


def _memfd() -> int | None:
    """An anonymous in-memory file descriptor reachable through ``/proc``, or ``None`` where unavailable."""
    if not hasattr(os, "memfd_create") or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.memfd_create("rorclient-credentials", os.MFD_CLOEXEC)
    except OSError:  # e.g. forbidden by a seccomp policy: fall back to the temporary file
        return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
