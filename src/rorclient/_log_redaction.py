"""Log lines never carry a password: the formatters rorclient installs mask any URL's password."""

from __future__ import annotations

import logging

from rorclient.store._sql.postgres.url import redact_text

__all__ = ["RedactingFormatter", "redact_text"]


class RedactingFormatter(logging.Formatter):
    """A text formatter whose output has the password of any URL replaced by ``***`` (message,
    arguments and traceback alike)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))
