"""Region of an entity, derived from its identifiers.

The ROR v2.4 model carries no region field on organisations. rorclient derives one (TRE_R30 region
code, as used by the ROR for identifiantOI prefixes) so that a store holding several regional sources
can be filtered by region:

- a unit: the prefix of its identifiantOI (``93/12345`` → ``93``);
- an establishment or legal entity identified by FINESS (idNat_Struct starting with ``1``): the region of
  the département in characters 2-3 (``1830000002`` → département 83 → region 93); overseas FINESS
  numbers (``1970100...``, ``19704...``) give the département from the following digits (971 → 01 ...
  976 → 06); this is a heuristic, documented in docs/data-model.md;
- an activity or equipment: the region of its unit;
- anything else: ``None``.
"""

from __future__ import annotations

from typing import Final

from rorclient.models import Entity, EntityKind

__all__ = ["region_of", "region_of_department", "region_of_id"]

_REGION_DEPARTMENTS: Final[dict[str, tuple[str, ...]]] = {
    "11": ("75", "77", "78", "91", "92", "93", "94", "95"),
    "24": ("18", "28", "36", "37", "41", "45"),
    "27": ("21", "25", "39", "58", "70", "71", "89", "90"),
    "28": ("14", "27", "50", "61", "76"),
    "32": ("02", "59", "60", "62", "80"),
    "44": ("08", "10", "51", "52", "54", "55", "57", "67", "68", "88"),
    "52": ("44", "49", "53", "72", "85"),
    "53": ("22", "29", "35", "56"),
    "75": ("16", "17", "19", "23", "24", "33", "40", "47", "64", "79", "86", "87"),
    "76": ("09", "11", "12", "30", "31", "32", "34", "46", "48", "65", "66", "81", "82"),
    "84": ("01", "03", "07", "15", "26", "38", "42", "43", "63", "69", "73", "74"),
    "93": ("04", "05", "06", "13", "83", "84"),
    "94": ("2A", "2B", "20"),
    "01": ("971",),
    "02": ("972",),
    "03": ("973",),
    "04": ("974",),
    "06": ("976",),
}

#: Département code (INSEE COG, ``971``... for overseas) → TRE_R30 region code.
DEPARTMENT_REGION: Final[dict[str, str]] = {
    dept: region for region, depts in _REGION_DEPARTMENTS.items() for dept in depts
}


def region_of_department(department: str) -> str | None:
    return DEPARTMENT_REGION.get(department.upper())


def region_of_id(kind: EntityKind, identifier: str) -> str | None:
    """Region from a business identifier alone (see the module docstring for the rules)."""
    if kind in (EntityKind.UNIT, EntityKind.ACTIVITY, EntityKind.EQUIPMENT):
        prefix, sep, _ = identifier.partition("/")
        return prefix if sep and prefix else None
    is_organisation = kind in (EntityKind.LEGAL_ENTITY, EntityKind.ESTABLISHMENT)
    if is_organisation and len(identifier) == 10 and identifier.startswith("1"):
        department = identifier[1:3]
        if department == "97":
            digit = identifier[4] if identifier[3] == "0" else identifier[3]
            department = "97" + digit
        return region_of_department(department)
    return None


def region_of(entity: Entity) -> str | None:
    if entity.kind is EntityKind.PROFESSIONAL:
        return region_of_id(EntityKind.UNIT, entity.unit_ids[0]) if entity.unit_ids else None
    return region_of_id(entity.kind, entity.id)
