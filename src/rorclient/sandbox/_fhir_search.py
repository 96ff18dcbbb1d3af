"""FHIR search over the sandbox's resources: the parameters a ROR sync uses, ``_include`` and
``_revinclude``.

Supported (anything else is refused with a 400 OperationOutcome naming the parameter):

* ``_lastUpdated`` with ``eq ne gt lt ge le sa eb`` prefixes, repeatable (AND); a date without time
  or a date-time without zone is Paris time, as the ROR's;
* ``_id``, ``identifier`` (``value``, ``system|value``, ``|value``; a comma means "or"), ``_tag``
  (``system|code``, comma = or);
* ``organization`` (a reference) and ``organization.identifier`` with ``:above``: resources whose
  organisation — or, with ``:above``, an organisation it is part of — has that identifier (digest §5);
* ``_include`` / ``_revinclude`` (``Type:param``, with or without ``:iterate``): every include is
  applied until nothing new comes, as if all were ``:iterate``;
* ``_count``, and ``_sort``, ``_total``, ``_format``, ``_elements``, ``_summary`` which are ignored
  (results always come by ``meta.lastUpdated`` then id).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rorclient.sandbox._clock import ROR_ZONE

__all__ = [
    "REFERENCES",
    "REGION_TAG_SYSTEM",
    "FhirResources",
    "SearchError",
    "SearchQuery",
    "lower_bound",
    "parse_search",
]

REGION_TAG_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R30-RegionOM/FHIR/TRE-R30-RegionOM"

#: Reference search parameters: resource type → parameter → elements holding the references.
REFERENCES: dict[str, dict[str, tuple[str, ...]]] = {
    "HealthcareService": {"organization": ("providedBy",), "location": ("location",)},
    "Organization": {"partof": ("partOf",)},
    "Location": {"organization": ("managingOrganization",), "partof": ("partOf",)},
    "PractitionerRole": {
        "practitioner": ("practitioner",),
        "service": ("healthcareService",),
        "organization": ("organization",),
        "location": ("location",),
    },
}
_IGNORED = frozenset({"_sort", "_total", "_format", "_elements", "_summary", "_pretty"})
_DATE_PREFIX = re.compile(
    r"(eq|ne|gt|lt|ge|le|sa|eb)?(\d{4}-\d{2}-\d{2}(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?)$"
)


class SearchError(Exception):
    """A search the sandbox refuses (HTTP 400 with an OperationOutcome ``invalid``)."""


@dataclass(frozen=True)
class SearchQuery:
    resource_type: str
    count: int | None = None
    filters: tuple[tuple[str, str, str], ...] = ()
    """(parameter, modifier, value) tests, all of which must hold."""
    includes: tuple[tuple[str, str], ...] = ()
    revincludes: tuple[tuple[str, str], ...] = ()


def parse_search(resource_type: str, params: Sequence[tuple[str, str]]) -> SearchQuery:
    """Check the parameters of a search of ``resource_type``; raises :class:`SearchError`."""
    if resource_type not in REFERENCES and resource_type != "Practitioner":
        raise SearchError(f"the sandbox does not serve {resource_type} resources")
    count: int | None = None
    filters: list[tuple[str, str, str]] = []
    includes: list[tuple[str, str]] = []
    revincludes: list[tuple[str, str]] = []
    for name, value in params:
        base, _, modifier = name.partition(":")
        if base == "_count":
            try:
                count = int(value)
            except ValueError:
                raise SearchError(f"_count {value!r} is not a number") from None
            if count < 0:
                raise SearchError("_count cannot be negative")
        elif base in _IGNORED:
            continue
        elif base in ("_include", "_revinclude"):
            if modifier not in ("", "iterate"):
                raise SearchError(f"unknown modifier {name}")
            target = _include_target(value)
            (includes if base == "_include" else revincludes).append(target)
        elif base == "_lastUpdated":
            for part in value.split(","):
                if not _DATE_PREFIX.match(part):
                    raise SearchError(
                        f"_lastUpdated {value!r}: expected a prefix and a date (ge2026-06-01T00:00:00Z)"
                    )
            filters.append((base, modifier, value))
        elif base in ("_id", "identifier", "_tag"):
            if modifier:
                raise SearchError(f"modifier :{modifier} is not supported on {base}")
            filters.append((base, modifier, value))
        elif base in ("organization", "organization.identifier") and "organization" in REFERENCES.get(
            resource_type, {}
        ):
            if modifier not in ("", "above"):
                raise SearchError(f"modifier :{modifier} is not supported on {base}")
            filters.append((base, modifier, value))
        else:
            raise SearchError(f"unknown search parameter {name!r} for {resource_type}")
    return SearchQuery(resource_type, count, tuple(filters), tuple(includes), tuple(revincludes))


def _include_target(value: str) -> tuple[str, str]:
    parts = value.split(":")
    if len(parts) not in (2, 3) or parts[1] not in REFERENCES.get(parts[0], {}):
        raise SearchError(f"unsupported include {value!r}")
    return parts[0], parts[1]


def lower_bound(query: SearchQuery) -> dt.datetime | None:
    """The latest instant every match is updated at or after, from ``_lastUpdated`` (``None``: none)."""
    bounds = []
    for name, _, value in query.filters:
        if name != "_lastUpdated" or "," in value:
            continue
        match = _DATE_PREFIX.match(value)
        if match is not None and (match.group(1) or "eq") in ("ge", "gt", "sa", "eq"):
            bounds.append(instant(match.group(2)))
    return max(bounds) if bounds else None


def reference_key(reference: Any) -> str | None:
    """``Type/id`` of a Reference (relative or absolute, with or without ``_history``)."""
    if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
        return None
    parts = reference["reference"].split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


def instant(text: str) -> dt.datetime:
    """A FHIR date or date-time as an aware datetime (no zone: Paris)."""
    if len(text) == 10:
        moment = dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
    else:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ROR_ZONE)


@dataclass
class FhirResources:
    """The resources of one data version seen by one access profile, indexed for search."""

    by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_type: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    updated: dict[str, dt.datetime] = field(default_factory=dict)
    _reverse: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, resources: Iterable[dict[str, Any]]) -> FhirResources:
        index = cls()
        for resource in resources:
            index.add(resource)
        for keys in index.by_type.values():
            keys.sort(key=lambda key: (index.updated[key], key))
        return index

    def add(self, resource: dict[str, Any]) -> None:
        key = f"{resource['resourceType']}/{resource['id']}"
        if key in self.by_key:
            return  # a legal entity shared by several establishments comes once
        self.by_key[key] = resource
        self.by_type[resource["resourceType"]].append(key)
        self.updated[key] = last_updated(resource)

    # -- search -------------------------------------------------------------------------------------

    def matches(self, query: SearchQuery) -> list[str]:
        """Keys of the matching resources, oldest change first."""
        return [
            key
            for key in self.by_type.get(query.resource_type, ())
            if all(self._holds(key, name, modifier, value) for name, modifier, value in query.filters)
        ]

    def included(self, matches: Sequence[str], query: SearchQuery) -> list[str]:
        """What ``_include``/``_revinclude`` add to ``matches`` (each resource once, none of the matches)."""
        if not query.includes and not query.revincludes:
            return []
        found = dict.fromkeys(matches)
        added: list[str] = []
        frontier = list(matches)
        while frontier:
            new: list[str] = []
            for key in frontier:
                resource_type = key.split("/", 1)[0]
                resource = self.by_key[key]
                for source, param in query.includes:
                    if source == resource_type:
                        new.extend(self._references(resource, source, param))
                for source, param in query.revincludes:
                    new.extend(self._referrers(source, param).get(key, ()))
            frontier = []
            for key in new:
                if key not in found and key in self.by_key:
                    found[key] = None
                    added.append(key)
                    frontier.append(key)
        return added

    def _references(self, resource: dict[str, Any], resource_type: str, param: str) -> Iterator[str]:
        for element in REFERENCES[resource_type][param]:
            value = resource.get(element)
            for reference in value if isinstance(value, list) else [value]:
                key = reference_key(reference)
                if key is not None:
                    yield key

    def _referrers(self, resource_type: str, param: str) -> dict[str, list[str]]:
        reverse = self._reverse.get((resource_type, param))
        if reverse is None:
            reverse = defaultdict(list)
            for key in self.by_type.get(resource_type, ()):
                for target in self._references(self.by_key[key], resource_type, param):
                    reverse[target].append(key)
            self._reverse[(resource_type, param)] = reverse
        return reverse

    def _holds(self, key: str, name: str, modifier: str, value: str) -> bool:
        resource = self.by_key[key]
        if name == "_lastUpdated":
            return all(_date_holds(self.updated[key], part) for part in value.split(","))
        if name == "_id":
            return resource["id"] in value.split(",")
        if name == "identifier":
            return any(_token_holds(resource.get("identifier"), token) for token in value.split(","))
        if name == "_tag":
            tags = (resource.get("meta") or {}).get("tag")
            return any(_token_holds(tags, token, value_key="code") for token in value.split(","))
        organisations = list(self._references(resource, key.split("/", 1)[0], "organization"))
        if modifier == "above":
            organisations = self._with_ancestors(organisations)
        if name == "organization":
            wanted = {v if "/" in v else f"Organization/{v}" for v in value.split(",")}
            return any(org in wanted for org in organisations)
        return any(
            _token_holds(self.by_key[org].get("identifier"), token)
            for org in organisations
            if org in self.by_key
            for token in value.split(",")
        )

    def _with_ancestors(self, organisations: list[str]) -> list[str]:
        seen = dict.fromkeys(organisations)
        frontier = list(organisations)
        while frontier:
            key = frontier.pop()
            resource = self.by_key.get(key)
            parent = reference_key(resource.get("partOf")) if resource is not None else None
            if parent is not None and parent not in seen:
                seen[parent] = None
                frontier.append(parent)
        return list(seen)


def last_updated(resource: dict[str, Any]) -> dt.datetime:
    text = (resource.get("meta") or {}).get("lastUpdated")
    if not isinstance(text, str):
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return instant(text)


def regions_of(resource: dict[str, Any]) -> set[str]:
    """The region codes of a resource's ``meta.tag`` (TRE_R30)."""
    tags = (resource.get("meta") or {}).get("tag") or ()
    return {
        tag["code"]
        for tag in tags
        if isinstance(tag, dict)
        and tag.get("system") == REGION_TAG_SYSTEM
        and isinstance(tag.get("code"), str)
    }


def _date_holds(moment: dt.datetime, condition: str) -> bool:
    match = _DATE_PREFIX.match(condition)
    assert match is not None  # checked by parse_search
    prefix, text = match.group(1) or "eq", match.group(2)
    bound = instant(text)
    if prefix in ("ge",):
        return moment >= bound
    if prefix in ("gt", "sa"):
        return moment > bound
    if prefix in ("le",):
        return moment <= bound
    if prefix in ("lt", "eb"):
        return moment < bound
    if prefix == "ne":
        return moment != bound
    return moment == bound


def _token_holds(codings: Any, token: str, *, value_key: str = "value") -> bool:
    system, bar, value = token.rpartition("|")
    for item in codings or ():
        if not isinstance(item, dict) or item.get(value_key) != value:
            continue
        if not bar or (system == "" and not item.get("system")) or item.get("system") == system:
            return True
    return False
