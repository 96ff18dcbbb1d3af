"""The exceptions rorclient raises.

Every error is a :class:`RorError`. Each class says, through ``retryable``, whether doing the same thing
again may succeed (a network blip) or will fail the same way (a bad file, a bad certificate)::

    RorError
    ├── ConfigError            bad settings, unknown store URL, missing file       (not retryable)
    ├── DataError              malformed, hostile or inconsistent CSD input         (not retryable)
    ├── StoreError             the local store failed or is inconsistent           (not retryable)
    │   └── SchemaVersionError the store was written by a newer rorclient
    ├── TlsError               certificate, key or chain cannot be used            (not retryable)
    ├── TransportError         connection, timeout, 5xx, 429                         (retryable)
    └── RemoteError            the ROR answered with an error (SOAP fault, inline)  (not retryable)
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ConfigError",
    "DataError",
    "RemoteError",
    "RorError",
    "SchemaVersionError",
    "StoreError",
    "TlsError",
    "TransportError",
]


class RorError(Exception):
    """Root of every error raised by rorclient."""

    retryable: ClassVar[bool] = False
    #: Process exit code the command line uses for this family of errors (see docs/cli.md).
    exit_code: ClassVar[int] = 1

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (reader processes): keep the class, message and attributes,
        # whatever the subclass's constructor takes.
        return _rebuild_error, (type(self), self.args, self.__dict__.copy())


class ConfigError(RorError):
    """The settings, a command-line option or a store URL cannot be used as given."""

    exit_code = 2


class DataError(RorError):
    """CSD input that cannot be accepted: not XML, hostile, wrong root, invalid value, broken reference.

    ``path`` is the element path (``/CSD/facilityDirectory/facility[3]/extension``) and ``line`` the line
    in the source document, when known. ``source`` names the file or stream.
    """

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        source: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.source:
            where.append(self.source)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.path:
            where.append(self.path)
        return f"{self.message} ({', '.join(where)})" if where else self.message


class StoreError(RorError):
    """The local store could not complete an operation; nothing partial was committed."""

    exit_code = 4


class SchemaVersionError(StoreError):
    """The store's schema is newer than this rorclient understands: upgrade rorclient."""


class TlsError(RorError):
    """A certificate, private key, password or CA chain cannot be used to authenticate."""

    exit_code = 5


class TransportError(RorError):
    """The ROR could not be reached or answered with a transient failure; retrying may help."""

    retryable = True
    exit_code = 6


class RemoteError(RorError):
    """The ROR answered with an error: a SOAP fault or an inline ``careServicesResponse/error``."""

    exit_code = 7

    def __init__(self, code: int | None, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"ROR error {code}: {message}" if code is not None else f"ROR error: {message}")


def _rebuild_error(cls: type[RorError], args: tuple[Any, ...], state: dict[str, Any]) -> RorError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error
