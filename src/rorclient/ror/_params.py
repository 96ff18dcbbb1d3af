"""Checking and normalising the parameters of ROR calls before they are encoded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from rorclient.codes import Oid
from rorclient.errors import ConfigError
from rorclient.models import CodedValue

__all__ = [
    "ROR_TIME_ZONE",
    "CodeFilter",
    "activity_filter",
    "coded_filter",
    "date_ref",
    "identifier",
    "patients_filter",
]

#: ROR date-times carry no time zone; every known sample is Paris local time (digest §4.1, §14.6).
ROR_TIME_ZONE = ZoneInfo("Europe/Paris")

#: A filter on a nomenclature: codes (``"01"``) or :class:`~rorclient.models.CodedValue` objects.
CodeFilter = str | CodedValue | Iterable[str | CodedValue]


def date_ref(value: dt.datetime | dt.date | str, *, name: str = "since") -> str:
    """``value`` as the ``xs:dateTime`` ROR expects: ``YYYY-MM-DDThh:mm:ss``, naive, Paris local time.

    An aware datetime is converted to Paris time; a naive one is taken as Paris time already; a date
    means its midnight; a string must be an ISO 8601 date-time or date.
    """
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(f"{name} must be an ISO 8601 date-time, got {value!r}") from None
    if not isinstance(value, dt.datetime):
        if not isinstance(value, dt.date):
            raise ConfigError(f"{name} must be a datetime, a date or an ISO 8601 string")
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(ROR_TIME_ZONE).replace(tzinfo=None)
    return value.replace(microsecond=0).isoformat(timespec="seconds")


def coded_filter(values: CodeFilter, *, default_scheme: str, name: str) -> list[tuple[str, str]]:
    """``(code, codingScheme)`` pairs; plain codes get ``default_scheme`` (the TRE OID PLATINES sends)."""
    items = [values] if isinstance(values, str | CodedValue) else list(values)
    pairs = []
    for item in items:
        if isinstance(item, CodedValue):
            code, scheme = item.code.strip(), item.coding_scheme.strip() or default_scheme
        elif isinstance(item, str):
            code, scheme = item.strip(), default_scheme
        else:
            raise ConfigError(
                f"{name}: expected codes (str) or CodedValue objects, got {type(item).__name__}"
            )
        if not code:
            raise ConfigError(f"{name}: empty code")
        pairs.append((code, scheme))
    return pairs


def activity_filter(values: CodeFilter) -> list[tuple[str, str]]:
    """Activity fields (TRE_R227 champ d'activité, e.g. ``"01"`` MCO ... ``"04"`` médico-social)."""
    return coded_filter(values, default_scheme=Oid.ACTIVITY_FIELD, name="activity")


def patients_filter(values: CodeFilter) -> list[tuple[str, str]]:
    """Supported publics (TRE_R239 public pris en charge, e.g. ``"01"`` personnes âgées)."""
    return coded_filter(values, default_scheme=Oid.SUPPORTED_PATIENT, name="patients")


def identifier(value: str, *, name: str) -> str:
    """A non-empty, stripped identifier."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} must be a non-empty string")
    return value.strip()
