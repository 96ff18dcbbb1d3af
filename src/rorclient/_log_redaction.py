"""Log lines and messages never carry a password: :func:`redact_text` masks the password of any URL or
connection string in a text, and the formatters rorclient installs apply it to every line.

Passwords are matched only where a URL or DSN puts them (``scheme://user:password@``,
``password=...``), never as bare text: a one-letter password must not mask that letter elsewhere.
"""

from __future__ import annotations

import logging
import re

__all__ = ["MASK", "RedactingFormatter", "redact_secret", "redact_text"]

MASK = "***"
_USERINFO_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@]*):[^\s/?#@]*@")
# ``password=value`` in a URL query or a libpq keyword string (``password='a b'`` quoted, \' escaped).
_PARAMETER_PASSWORD = re.compile(
    r"""(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^&\s'"]*)""", re.IGNORECASE
)


def redact_text(text: str) -> str:
    """``text`` with the password of every URL in it (``scheme://user:password@``, ``password=...``)
    replaced by ``***``: for log lines and messages that may quote a URL."""
    text = _USERINFO_PASSWORD.sub(rf"\1:{MASK}@", text)
    return _PARAMETER_PASSWORD.sub(rf"\1{MASK}", text)


def redact_secret(text: str, secret: str) -> str:
    """``text`` with ``secret`` replaced by ``***`` where a URL or DSN holds a password: between
    ``user:`` and ``@``, or after ``password=`` (quoted or not). For a password :func:`redact_text`
    cannot delimit (one with a space, ``@`` or ``/`` that a driver echoes back unencoded)."""
    if not secret:
        return text
    escaped = re.escape(secret)
    text = re.sub(rf"(?<=:){escaped}(?=@)", MASK, text)
    return re.sub(
        rf"""(\b(?:ssl)?password\s*=\s*['"]?){escaped}""", lambda m: m.group(1) + MASK, text, flags=re.I
    )


class RedactingFormatter(logging.Formatter):
    """A text formatter whose output has the password of any URL replaced by ``***`` (message,
    arguments and traceback alike)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))
