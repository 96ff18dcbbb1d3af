"""The searches the ``fhir`` source makes (digest §4 and §5), as ``(parameter, value)`` lists.

Listed in docs/fhir.md ("Searches"): the sandbox's FHIR face answers exactly these.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from rorclient.fhir._systems import SYSTEM_REGION

Params = list[tuple[str, str]]

#: The graph of an offer (digest §5): its organisation and that organisation's parents, its places, the
#: roles of professionals in it and those professionals.
OFFER_GRAPH: Final[tuple[tuple[str, str], ...]] = (
    ("_include", "HealthcareService:organization"),
    ("_include:iterate", "Organization:partof"),
    ("_include", "HealthcareService:location"),
    ("_revinclude", "PractitionerRole:service"),
    ("_include", "PractitionerRole:practitioner"),
)

#: The resource types a delta searches, and what each includes so that the establishment owning a
#: changed resource can be told from the answer alone.
DELTA_INCLUDES: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "Organization": (("_include:iterate", "Organization:partof"),),
    "HealthcareService": (
        ("_include", "HealthcareService:organization"),
        ("_include:iterate", "Organization:partof"),
    ),
    "Location": (
        ("_include", "Location:organization"),
        ("_revinclude", "HealthcareService:location"),
        ("_include:iterate", "HealthcareService:organization"),
        ("_include:iterate", "Organization:partof"),
    ),
    "PractitionerRole": (
        ("_include", "PractitionerRole:organization"),
        ("_include", "PractitionerRole:service"),
        ("_include:iterate", "HealthcareService:organization"),
        ("_include:iterate", "Organization:partof"),
    ),
    "Practitioner": (
        ("_revinclude", "PractitionerRole:practitioner"),
        ("_include:iterate", "PractitionerRole:organization"),
        ("_include:iterate", "Organization:partof"),
    ),
}


def instant(moment: dt.datetime) -> str:
    """A search instant: UTC, seconds, ``Z`` (naive values are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def delta(resource_type: str, since: dt.datetime, until: dt.datetime | None) -> Params:
    """``resource_type`` changed in ``[since, until)`` with what places it."""
    params: Params = [("_lastUpdated", f"ge{instant(since)}")]
    if until is not None:
        params.append(("_lastUpdated", f"lt{instant(until)}"))
    params.extend(DELTA_INCLUDES[resource_type])
    return params


def region_filter(regions: tuple[str, ...] | None) -> Params:
    if not regions:
        return []
    return [("_tag", ",".join(f"{SYSTEM_REGION}|{code}" for code in regions))]


#: What completes the graph of offers: every role of their professionals, and the offers (and owners)
#: of those roles, so that a professional practising elsewhere too is rebuilt whole.
PROFESSIONALS_WHOLE: Final[tuple[tuple[str, str], ...]] = (
    ("_revinclude:iterate", "PractitionerRole:practitioner"),
    ("_include:iterate", "PractitionerRole:service"),
    ("_include:iterate", "HealthcareService:organization"),
)


def establishment_offers(identifier: str) -> Params:
    """Every offer of an establishment (FINESS or idNat_Struct), with its graph (digest §5)."""
    return [("organization.identifier:above", identifier), *OFFER_GRAPH, *PROFESSIONALS_WHOLE]


def organization_and_owners(identifier: str) -> Params:
    """An Organization (FINESS, idNat_Struct or identifiantOI) and its owners up to the legal entity."""
    return [("identifier", identifier), ("_include:iterate", "Organization:partof")]


def organization_and_parts(identifier: str) -> Params:
    """An Organization, every Organization under it (internal units, offers or not), and the
    professionals whose roles name one of them (a role may name no offer)."""
    return [
        ("identifier", identifier),
        ("_revinclude:iterate", "Organization:partof"),
        ("_revinclude", "PractitionerRole:organization"),
        ("_include", "PractitionerRole:practitioner"),
    ]


def offer(identifier: str) -> Params:
    """One offer (an elementary unit) by its offer identifier, with its graph."""
    return [("identifier", identifier), *OFFER_GRAPH, *PROFESSIONALS_WHOLE]
