"""Strict parsers for the XML Schema simple types CSD uses (dates, booleans, numbers).

Each parser returns ``None`` when the lexical form is invalid; the caller turns that into a
:class:`~rorclient.errors.DataError` naming the element. XML Schema collapses whitespace around these
types, so surrounding blanks are accepted.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

__all__ = ["parse_boolean", "parse_date", "parse_datetime", "parse_decimal", "parse_integer"]

_DATETIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00))?",
    re.ASCII,
)
_DATE = re.compile(r"(\d{4})-(\d\d)-(\d\d)(Z|[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00))?", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_CACHE_LIMIT = 65_536
_datetime_cache: dict[str, dt.datetime] = {}
_date_cache: dict[str, dt.date] = {}


def parse_datetime(text: str) -> dt.datetime | None:
    """An ``xs:dateTime``: naive when the text has no time zone, aware when it has one.

    ``24:00:00`` (allowed by XML Schema) is the first instant of the next day; fractions of a second
    beyond microseconds are truncated. Years outside 1..9999 are refused (Python cannot hold them).
    """
    cached = _datetime_cache.get(text)
    if cached is not None:
        return cached
    value: dt.datetime | None = None
    if len(text) == 19 and text[10] == "T" and text[4] == text[7] == "-" and text[13] == text[16] == ":":
        # The common form, YYYY-MM-DDThh:mm:ss: fromisoformat checks the digits (ASCII only) and ranges.
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            value = None
    if value is None:
        value = _parse_datetime(text.strip())
    if value is not None:
        if len(_datetime_cache) >= _CACHE_LIMIT:
            _datetime_cache.clear()
        _datetime_cache[text] = value
    return value


def _parse_datetime(text: str) -> dt.datetime | None:
    match = _DATETIME.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    end_of_day = hour == "24"
    if end_of_day:
        if minute != "00" or second != "00" or (fraction and fraction.strip(".0")):
            return None
        hour = "00"
    try:
        value = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int(fraction[1:7].ljust(6, "0")) if fraction else 0,
            tzinfo=_zone(zone),
        )
        return value + dt.timedelta(days=1) if end_of_day else value
    except (ValueError, OverflowError):
        return None


def _zone(zone: str | None) -> dt.tzinfo | None:
    if zone is None:
        return None
    if zone == "Z":
        return dt.UTC
    sign = -1 if zone[0] == "-" else 1
    offset = dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return dt.UTC if not offset else dt.timezone(sign * offset)


def parse_date(text: str) -> dt.date | None:
    """An ``xs:date``; a time zone, if any, is validated and dropped (a date cannot carry one)."""
    cached = _date_cache.get(text)
    if cached is not None:
        return cached
    match = _DATE.fullmatch(text.strip())
    if match is None:
        return None
    try:
        value = dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None
    if len(_date_cache) >= _CACHE_LIMIT:
        _date_cache.clear()
    _date_cache[text] = value
    return value


def parse_boolean(text: str) -> bool | None:
    """An ``xs:boolean``: ``true``, ``false``, ``1`` or ``0``."""
    return _BOOLEANS.get(text.strip())


def parse_integer(text: str) -> int | None:
    """An ``xs:integer`` (optional sign, decimal digits)."""
    if text.isascii() and text.isdigit():  # the common form, without the pattern
        return int(text)
    text = text.strip()
    return int(text) if _INTEGER.fullmatch(text) else None


def parse_decimal(text: str) -> Decimal | None:
    """An ``xs:decimal`` (no exponent, no ``NaN``/``INF``)."""
    text = text.strip()
    if not _DECIMAL.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes what Decimal refuses
        return None
