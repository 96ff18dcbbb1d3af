"""FHIR data types ↔ the models' value objects: codings, instants, extensions, references."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final
from zoneinfo import ZoneInfo

from rorclient.errors import DataError
from rorclient.fhir._systems import scheme_of, system_of
from rorclient.models import CodedValue

Json = dict[str, Any]

#: ROR date-times carry no time zone in CSD; they are French legal time. FHIR instants carry one.
PARIS: Final = ZoneInfo("Europe/Paris")


class FhirMappingError(DataError):
    """A FHIR resource that cannot be mapped: no business identifier, a reference to a resource that is
    not there, a malformed value. ``path`` names the resource (``HealthcareService/123``)."""


# -- codings ------------------------------------------------------------------------------------------


def coding(value: CodedValue) -> Json:
    out: Json = {}
    if value.coding_scheme:
        out["system"] = system_of(value.coding_scheme)
    out["code"] = value.code
    if value.display is not None:
        out["display"] = value.display
    return out


def concept(*values: CodedValue) -> Json:
    return {"coding": [coding(value) for value in values]}


def coded(raw: Mapping[str, Any]) -> CodedValue:
    return CodedValue(
        code=str(raw.get("code", "")),
        coding_scheme=scheme_of(str(raw["system"])) if raw.get("system") else "",
        display=raw.get("display"),
    )


def codings(concept_value: Mapping[str, Any] | None) -> list[CodedValue]:
    if not concept_value:
        return []
    return [coded(item) for item in concept_value.get("coding", ())]


def first_coded(concept_value: Mapping[str, Any] | None) -> CodedValue | None:
    values = codings(concept_value)
    return values[0] if values else None


# -- date-times ---------------------------------------------------------------------------------------


def instant(value: dt.datetime) -> str:
    """A model date-time (naive, French legal time, or aware) as a FHIR instant."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=PARIS)
    return value.isoformat()


def moment(text: str) -> dt.datetime:
    """A FHIR instant, dateTime or date as a model date-time: naive French legal time."""
    try:
        if len(text) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
        if len(text) in (4, 7):  # FHIR partial dates: year, year-month
            return dt.datetime.fromisoformat(text + ("-01-01" if len(text) == 4 else "-01"))
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise FhirMappingError(f"not a FHIR date-time: {text!r}") from exc
    if value.tzinfo is not None:
        value = value.astimezone(PARIS).replace(tzinfo=None)
    return value


def day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError as exc:
        raise FhirMappingError(f"not a FHIR date: {text!r}") from exc


# -- extensions ---------------------------------------------------------------------------------------


def extension(url: str, **value: Any) -> Json:
    return {"url": url, **value}


def extensions_of(element: Mapping[str, Any] | None, url: str) -> Iterator[Json]:
    if not element:
        return
    for item in element.get("extension", ()):
        if item.get("url") == url:
            yield item


def extension_of(element: Mapping[str, Any] | None, url: str) -> Json | None:
    return next(extensions_of(element, url), None)


def value_of(element: Mapping[str, Any] | None, url: str) -> Any:
    """The ``value[x]`` of the first extension ``url`` of ``element``, or None."""
    found = extension_of(element, url)
    if found is None:
        return None
    for key, value in found.items():
        if key.startswith("value"):
            return value
    return None


# -- references and logical ids -----------------------------------------------------------------------

_NOT_ID_CHARS: Final = re.compile(r"[^A-Za-z0-9.-]")


def logical_id(prefix: str, business_id: str) -> str:
    """The logical id rorclient gives the resource of an entity (the sandbox's FHIR face): stable,
    derived from the business identifier, within FHIR's ``[A-Za-z0-9\\-\\.]{1,64}``."""
    return f"{prefix}-{_NOT_ID_CHARS.sub('-', business_id)}"[:64]


def reference(resource_type: str, logical: str) -> Json:
    return {"reference": f"{resource_type}/{logical}"}


def referenced(value: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """``(resource type, logical id)`` of a literal reference: relative, absolute or versioned."""
    if not value or not value.get("reference"):
        return None
    parts = str(value["reference"]).split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) < 2:
        return None
    return parts[-2], parts[-1]
