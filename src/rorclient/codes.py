"""Coding-scheme OIDs and code values of the ROR v2.4 exchange model (CSD-v2.4-digest §7.3-§7.4)."""

from __future__ import annotations

from typing import Final

__all__ = [
    "CSD_NS",
    "ROR_NS",
    "SOAP12_NS",
    "Oid",
]

CSD_NS: Final = "urn:ihe:iti:csd:2013"
ROR_NS: Final = "urn:asip:ror:2015"
SOAP12_NS: Final = "http://www.w3.org/2003/05/soap-envelope"


class Oid:
    """OIDs used as ``codingScheme`` / ``assigningAuthorityName`` in ROR documents."""

    ID_NAT_STRUCT: Final = "1.2.250.1.71.4.2.2"
    STRUCTURE_ID_TYPE: Final = "1.2.250.1.71.1.2.14"  # TRE_G07, sent by PLATINES in Lecture requests
    LEGAL_STATUS: Final = "1.2.250.1.213.1.6.1.44"  # TRE_R72
    LEGAL_STATUS_GROUP: Final = "1.2.250.1.213.1.6.1.64"  # TRE_R69
    ESTABLISHMENT_CATEGORY: Final = "1.2.250.1.213.1.6.1.8"  # TRE_R66
    ESPIC: Final = "1.2.250.1.213.1.6.1.45"  # TRE_R73
    CLOSING_REASON: Final = "1.2.250.1.213.1.6.1.136"  # TRE_R286
    UNIT_TYPE: Final = "1.2.250.1.213.3.3.8"  # TRE_R207
    ACTIVITY_FIELD: Final = "1.2.250.1.213.3.3.17"  # TRE_R227
    CARE_MODE: Final = "1.2.250.1.213.3.3.13"  # TRE_R213
    SUPPORTED_PATIENT: Final = "1.2.250.1.213.3.3.29"  # TRE_R239
    OPERATIONAL_ACTIVITY: Final = "1.2.250.1.213.3.3.12"  # TRE_R211
    ACT_FAMILY: Final = "1.2.250.1.213.3.3.61"  # TRE_R266 (JDV_J51)
    EQUIPMENT: Final = "1.2.250.1.213.3.3.10"  # TRE_R212
    CONFIDENTIALITY: Final = "1.2.250.1.213.1.1.4.344"  # TRE_R283
    CONTACT_FUNCTION: Final = "1.2.250.1.213.3.3.48"  # TRE_R251
    CONTACT_NATURE: Final = "1.2.250.1.213.3.3.67"  # TRE_R287
    TELECOM_CHANNEL: Final = "1.2.250.1.213.3.3.1"  # TRE_R200
    LOCATION_STATUS: Final = "1.2.250.1.213.3.3.4"  # TRE_R203
    CITY: Final = "1.2.250.1.213.2.23"  # TRE_R13
    REGION: Final = "1.2.250.1.213.2.25"  # TRE_R30
    UCUM: Final = "2.16.840.1.113883.6.8"  # TRE_R247
    PROFESSION: Final = "1.2.250.1.71.1.2.7"  # TRE_G15
