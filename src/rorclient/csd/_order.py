"""Child element order of the CSD + ROR extension complex types (XSD ``xs:sequence`` order).

The writer emits modeled children in these orders and slots :class:`~rorclient.models.ExtraElement`
items (kept verbatim by the reader) at the position their name has in the sequence. The tuples are
checked against the official XSD by ``tests/test_writer.py``.
"""

from __future__ import annotations

from typing import Final

from rorclient.codes import CSD_NS

__all__ = ["ORDER", "sort_key"]

ORGANIZATION: Final = (
    "otherID",
    "codedType",
    "primaryName",
    "otherName",
    "address",
    "contact",
    "credential",
    "language",
    "specialization",
    "contactPoint",
    "parent",
    "extension",
    "record",
)

ORGANISATION_EXTENSION: Final = (
    "contact",
    "useName",
    "healthCareTerritorial",
    "location",
    "price",
    "dropZone",
    "financialHelpType",
    "accomodationFamily",
    "nbTemporarySocialeHelpPlace",
    "nbPermanentSocialHelpPlace",
    "careWithoutPatientApproval",
    "creationDate",
    "closingDate",
    "closingReason",
    "accessibilityLocation",
    "levelRecourseORSAN",
)

FACILITY: Final = (
    "otherID",
    "codedType",
    "primaryName",
    "otherName",
    "address",
    "contact",
    "geocode",
    "language",
    "contactPoint",
    "organizations",
    "operatingHours",
    "extension",
    "record",
)

FACILITY_EXTENSION: Final = (
    "contact",
    "mailBoxMSS",
    "finalClosingDate",
    "creationDate",
    "typeActivity",
    "careMode",
    "patientsType",
    "accommodationCapacity",
    "crisisAccomodationCapacity",
    "residentialCapactity",
    "resourcesSkills",
    "equipment",
    "receptionType",
    "receptionMode",
    "takingCareSpeciality",
    "facilityType",
    "location",
    "interventionZone",
    "annualOpenning",
    "psychiatricSector",
    "specificAct",
    "parentFacility",
    "managementType",
    "maternityHospitalType",
    "sensitiveUnit",
)

SERVICE: Final = ("codedType", "extension", "record")
SERVICE_EXTENSION: Final = ("actFamily",)
DEVICE: Final = ("otherID", "codedType", "extension", "record")
DEVICE_EXTENSION: Final = ("nbInService",)
PROVIDER: Final = (
    "otherID",
    "codedType",
    "demographic",
    "language",
    "organizations",
    "facilities",
    "credential",
    "specialty",
    "extension",
    "record",
)
PROVIDER_EXTENSION: Final = ("operationalStatus", "mailBoxMSS")
RECORD: Final = ("extension",)
ADDRESS: Final = ("addressLine", "extension")
ADDRESS_EXTENSION: Final = ("record",)
CONTACT_POINT: Final = ("codedType", "equipment", "purpose", "certificate", "extension")
CONTACT_POINT_EXTENSION: Final = ("confidentialityLevel", "record")
GEOCODE: Final = ("latitude", "longitude", "coordinateSystem", "extension", "record")
LOCATION: Final = (
    "name",
    "description",
    "status",
    "address",
    "geoCoordinates",
    "cityNumber",
    "calculatedDistance",
    "record",
)

#: Sequence of each complex type the writer fills, by a short name.
ORDER: Final[dict[str, tuple[str, ...]]] = {
    "organization": ORGANIZATION,
    "organisationExtension": ORGANISATION_EXTENSION,
    "facility": FACILITY,
    "facilityExtension": FACILITY_EXTENSION,
    "service": SERVICE,
    "serviceExtension": SERVICE_EXTENSION,
    "device": DEVICE,
    "deviceExtension": DEVICE_EXTENSION,
    "provider": PROVIDER,
    "providerExtension": PROVIDER_EXTENSION,
    "record": RECORD,
    "address": ADDRESS,
    "addressExtension": ADDRESS_EXTENSION,
    "contactPoint": CONTACT_POINT,
    "contactPointExtension": CONTACT_POINT_EXTENSION,
    "geocode": GEOCODE,
    "location": LOCATION,
}

_EXTENSIONS: Final = frozenset(name for name in ORDER if name.endswith("Extension"))
_INDEX: Final[dict[str, dict[str, int]]] = {
    name: {child: i for i, child in enumerate(sequence)} for name, sequence in ORDER.items()
}
_CSD_PREFIX: Final = "{" + CSD_NS + "}"


def sort_key(type_name: str, tag: str) -> float:
    """Position of a child named ``tag`` (Clark notation) in the sequence of ``type_name``.

    Unknown names go where the XSD would accept them if anywhere: extension types open with an
    ``xs:any namespace="##local"`` wildcard (so un-namespaced names sort first); any other unknown name
    sorts just before ``record`` (entities) or last (extensions).
    """
    index = _INDEX[type_name]
    if tag.startswith(_CSD_PREFIX):
        position = index.get(tag[len(_CSD_PREFIX) :])
        if position is not None:
            return position
    if type_name in _EXTENSIONS:
        return -1 if not tag.startswith("{") else len(index)
    return index.get("record", len(index)) - 0.5
