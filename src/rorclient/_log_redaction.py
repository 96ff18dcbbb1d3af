"""Log lines and messages never carry a password: :func:`redact_text` masks the password of any URL or
connection string in a text, and the formatters rorclient installs apply it to every line.

Passwords are matched where a URL or DSN puts them (``scheme://user:password@``, ``password=...``); a
known password (:func:`redact_secret`) also where it stands alone as a token, never inside a word: a
one-letter password must not mask that letter elsewhere.
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
    """``text`` with ``secret`` replaced by ``***`` wherever it stands as a whole token — in a URL
    (``user:secret@``), after ``password=`` (quoted or not), or echoed alone by a driver (libpq quotes
    a malformed URL part: ``invalid percent-encoded token: "secret%zz"``) — but never inside a word: a
    one-letter password ``p`` leaves ``port`` alone."""
    if not secret:
        return text
    return re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", MASK, text)


class RedactingFormatter(logging.Formatter):
    """A text formatter whose output has the password of any URL replaced by ``***`` (message,
    arguments and traceback alike)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))
