"""Durations as people write them in settings and options: ``15m``, ``1h30m``, ``7d``, ``90s``."""

from __future__ import annotations

import datetime as dt
import re

from rorclient.errors import ConfigError

__all__ = ["parse_duration"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|w|d|h|m|s)?", re.IGNORECASE)
_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, None: 1.0}


def parse_duration(text: str) -> dt.timedelta:
    """``"15m"``, ``"7d"``, ``"1h30m"``, ``"90s"``, ``"2w"`` or a number of seconds → a timedelta."""
    cleaned = text.strip()
    position, total = 0, 0.0
    while position < len(cleaned):
        match = _DURATION.match(cleaned, position)
        if match is None or match.end() == position:
            raise ConfigError(f"not a duration: {text!r} (expected e.g. 15m, 1h30m, 7d, 90s)")
        total += float(match.group(1)) * _UNITS[match.group(2).lower() if match.group(2) else None]
        position = match.end()
        while position < len(cleaned) and cleaned[position] == " ":
            position += 1
    if not cleaned:
        raise ConfigError("empty duration")
    return dt.timedelta(seconds=total)


def format_duration(value: dt.timedelta) -> str:
    """The shortest exact form :func:`parse_duration` reads back: ``15m``, ``7d``, ``1h30m``, ``90s``."""
    seconds = int(value.total_seconds())
    if seconds != value.total_seconds() or seconds <= 0:
        return f"{value.total_seconds():g}s"
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
