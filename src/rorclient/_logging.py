"""Log output of the command line: text lines whose times carry their zone, and the filter that keeps
a run's closing record from repeating what the command prints itself."""

from __future__ import annotations

import datetime as dt
import logging

from rorclient._log_redaction import RedactingFormatter

__all__ = ["RUN_RECORD_FIELD", "SkipRunRecords", "TextLogFormatter"]

#: The ``extra=`` field the sync engine puts on the one record that closes each run.
RUN_RECORD_FIELD = "run_id"


class TextLogFormatter(RedactingFormatter):
    """``2026-12-04T16:14:46.264+01:00 INFO rorclient.sync: ...``: ISO 8601 in this machine's zone,
    with its offset, so a line read elsewhere or later is not ambiguous; any URL's password masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        when = dt.datetime.fromtimestamp(record.created).astimezone()
        return when.isoformat(timespec="milliseconds")


class SkipRunRecords(logging.Filter):
    """Drops the record closing a run (summary or error): a one-off command prints that summary, or
    its error as the one ``rorclient: error:`` line, itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not hasattr(record, RUN_RECORD_FIELD)
