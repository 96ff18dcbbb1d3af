"""Qualified names (Clark notation, ``{namespace}local``) of the CSD v2.4 vocabulary.

Shared by the CSD reader and writer so that both spell every element the same way. Only names live
here: no behaviour.
"""

from __future__ import annotations

from typing import Final

from rorclient.codes import CSD_NS, ROR_NS, SOAP12_NS

__all__ = ["CSD_NS", "ROR_NS", "SOAP12_NS", "csd", "local_name"]


def csd(local: str) -> str:
    """The Clark name of a CSD element (``csd("facility")`` → ``{urn:ihe:iti:csd:2013}facility``)."""
    return f"{{{CSD_NS}}}{local}"


def local_name(clark: str) -> str:
    """The local part of a Clark name (``{ns}facility`` → ``facility``; plain names are returned as is)."""
    return clark.rpartition("}")[2]


# Document roots and wrappers
CSD: Final = csd("CSD")
CARE_SERVICES_RESPONSE: Final = csd("careServicesResponse")
CARE_SERVICES_REQUEST: Final = csd("careServicesRequest")
RESULT: Final = csd("result")
QUERY_RESULT: Final = csd("queryResult")
FACILITY_NUMBER: Final = csd("facilityNumber")
ERROR: Final = csd("error")
SOAP_ENVELOPE: Final = f"{{{SOAP12_NS}}}Envelope"
SOAP_BODY: Final = f"{{{SOAP12_NS}}}Body"
SOAP_FAULT: Final = f"{{{SOAP12_NS}}}Fault"

# Directories, in the order the XSD fixes
ORGANIZATION_DIRECTORY: Final = csd("organizationDirectory")
SERVICE_DIRECTORY: Final = csd("serviceDirectory")
FACILITY_DIRECTORY: Final = csd("facilityDirectory")
PROVIDER_DIRECTORY: Final = csd("providerDirectory")
DEVICE_DIRECTORY: Final = csd("deviceDirectory")
DIRECTORIES: Final = (
    ORGANIZATION_DIRECTORY,
    SERVICE_DIRECTORY,
    FACILITY_DIRECTORY,
    PROVIDER_DIRECTORY,
    DEVICE_DIRECTORY,
)

# Entities (children of the directories)
ORGANIZATION: Final = csd("organization")
SERVICE: Final = csd("service")
FACILITY: Final = csd("facility")
PROVIDER: Final = csd("provider")
DEVICE: Final = csd("device")

# Elements shared by several entities
OTHER_ID: Final = csd("otherID")
CODED_TYPE: Final = csd("codedType")
PRIMARY_NAME: Final = csd("primaryName")
OTHER_NAME: Final = csd("otherName")
ADDRESS: Final = csd("address")
ADDRESS_LINE: Final = csd("addressLine")
EXTENSION: Final = csd("extension")
RECORD: Final = csd("record")
CONTACT: Final = csd("contact")
CONTACT_POINT: Final = csd("contactPoint")
LOCATION: Final = csd("location")
CREATION_DATE: Final = csd("creationDate")
ORGANIZATIONS: Final = csd("organizations")

# organization
PARENT: Final = csd("parent")
USE_NAME: Final = csd("useName")
DROP_ZONE: Final = csd("dropZone")
CLOSING_DATE: Final = csd("closingDate")
CLOSING_REASON: Final = csd("closingReason")

# facility
GEOCODE: Final = csd("geocode")
FINAL_CLOSING_DATE: Final = csd("finalClosingDate")
TYPE_ACTIVITY: Final = csd("typeActivity")
CARE_MODE: Final = csd("careMode")
PATIENTS_TYPE: Final = csd("patientsType")
SUPPORTED_PATIENT: Final = csd("supportedPatient")
PATIENT_TYPE_AGE_MIN: Final = csd("patientTypeAgeMin")
PATIENT_TYPE_AGE_MAX: Final = csd("patientTypeAgeMax")
VALUE: Final = csd("value")
UNIT: Final = csd("unit")
EQUIPMENT: Final = csd("equipment")
PARENT_FACILITY: Final = csd("parentFacility")
SENSITIVE_UNIT: Final = csd("sensitiveUnit")

# service, device
ACT_FAMILY: Final = csd("actFamily")
NB_IN_SERVICE: Final = csd("nbInService")

# provider
DEMOGRAPHIC: Final = csd("demographic")
NAME: Final = csd("name")
COMMON_NAME: Final = csd("commonName")
HONORIFIC: Final = csd("honorific")
FORENAME: Final = csd("forename")
SURNAME: Final = csd("surname")
FACILITIES: Final = csd("facilities")

# contact, contactPoint
FUNCTION: Final = csd("function")
NATURE: Final = csd("nature")
DESCRIPTION: Final = csd("description")
CONFIDENTIALITY_LEVEL: Final = csd("confidentialityLevel")
PURPOSE: Final = csd("purpose")

# location, geocode
STATUS: Final = csd("status")
GEO_COORDINATES: Final = csd("geoCoordinates")
CITY_NUMBER: Final = csd("cityNumber")
LATITUDE: Final = csd("latitude")
LONGITUDE: Final = csd("longitude")
COORDINATE_SYSTEM: Final = csd("coordinateSystem")
