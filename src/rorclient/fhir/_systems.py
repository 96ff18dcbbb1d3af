"""Canonical URLs, code systems and identifier systems of the ROR FHIR profiles (IG ``ans.fhir.fr.ror``).

Nomenclature codes are stored with the OIDs CSD uses (:class:`rorclient.codes.Oid`), so that an entity
read over FHIR and the same entity read over CSD compare equal; this module translates between the
OIDs and the FHIR ``system`` URLs ``https://mos.esante.gouv.fr/NOS/<TRE>/FHIR/<TRE>``.
"""

from __future__ import annotations

from typing import Final

from rorclient.codes import Oid

IG: Final = "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/"


def ror_extension(name: str) -> str:
    return IG + name


EXT_CREATION_DATE: Final = ror_extension("ror-meta-creation-date")
EXT_SENSITIVE_UNIT: Final = ror_extension("ror-healthcareservice-sensitive-unit")
EXT_PATIENT_TYPE: Final = ror_extension("ror-healthcareservice-patient-type")
EXT_HS_CONTACT: Final = ror_extension("ror-healthcareservice-contact")
EXT_HS_CONTACT_TELECOM: Final = ror_extension("ror-healthcareservice-contact-telecom")
EXT_CONFIDENTIALITY: Final = ror_extension("ror-confidentiality-level")
EXT_CONTACT_CONFIDENTIALITY: Final = ror_extension("ror-contact-confidentiality-level")
EXT_CONTACT_FUNCTION: Final = ror_extension("ror-contact-function-contact")
EXT_CONTACT_DESCRIPTION: Final = ror_extension("ror-contact-description")
EXT_CONTACT_NAME: Final = ror_extension("ror-contact-name")
EXT_TELECOM_CHANNEL: Final = ror_extension("ror-telecom-communication-channel")
EXT_TELECOM_CONFIDENTIALITY: Final = ror_extension("ror-telecom-confidentiality-level")
EXT_CLOSING_TYPE: Final = ror_extension("ror-organization-closing-type")
EXT_DROP_ZONE: Final = ror_extension("ror-organization-drop-zone")
EXT_ADDITIONAL_NAME: Final = ror_extension("ror-organization-additional-name")
EXT_COMMUNE: Final = ror_extension("ror-commune-cog")
EXT_EQUIPMENT: Final = ror_extension("ror-location-equipment")
EXT_PERIOD: Final = "http://hl7.org/fhir/StructureDefinition/organization-period"
ADXP: Final = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-"
#: Carries, on resources written by rorclient (the sandbox), the model fields FHIR has no element for,
#: so that the sandbox's FHIR face serves exactly the entities its CSD face serves. The national ROR
#: never sends it.
EXT_MODEL_RESIDUE: Final = "urn:rorclient:fhir:model-residue"

PROFILE_ORGANIZATION: Final = ror_extension("ror-organization")
PROFILE_HEALTHCARE_SERVICE: Final = ror_extension("ror-healthcareservice")
PROFILE_LOCATION: Final = ror_extension("ror-location")
PROFILE_PRACTITIONER: Final = ror_extension("ror-practitioner")
PROFILE_PRACTITIONER_ROLE: Final = ror_extension("ror-practitionerrole")

CLOSING_REOPENING_SLICE: Final = "closingReopeningDate"

SYSTEM_ID_NAT_STRUCT: Final = "urn:oid:" + Oid.ID_NAT_STRUCT
SYSTEM_ID_NAT_PS: Final = "urn:oid:1.2.250.1.71.4.2.1"
SYSTEM_OI: Final = "https://oi.esante.gouv.fr"
SYSTEM_FINESS: Final = "https://finess.esante.gouv.fr"
#: ``assigningAuthorityName`` CSD gives the identifiantOI of a unit (see ``csd.writer.UNIT_ID_AUTHORITY``).
OI_AUTHORITY: Final = "identifiantOI"


def nos(table: str) -> str:
    """The FHIR system URL of a MOS/NOS table, e.g. ``TRE_R211-ActiviteOperationnelle``."""
    return f"https://mos.esante.gouv.fr/NOS/{table}/FHIR/{table.replace('_', '-')}"


SYSTEM_REGION: Final = nos("TRE_R30-RegionOM")
SYSTEM_STRUCTURE_ID_TYPE: Final = nos("TRE_G07-TypeIdentifiantStructure")
SYSTEM_OFFER_ID_TYPE: Final = nos("TRE_R355-TypeIdentifiantOffre")
SYSTEM_OTHER_ID_TYPE: Final = nos("TRE_R345-TypeIdentifiantAutre")
SYSTEM_LOCATION_ID_TYPE: Final = nos("TRE_R354-TypeIdentifiantRessourceOperationnelle")
SYSTEM_PROFESSION: Final = nos("TRE_G15-ProfessionSante")

#: CSD OID ↔ FHIR system URL of the nomenclatures rorclient models.
_TABLES: Final = {
    Oid.LEGAL_STATUS: "TRE_R72-FinessStatutJuridique",
    Oid.LEGAL_STATUS_GROUP: "TRE_R69-FinessSousEnsembleAgregatStatutJuridique",
    Oid.ESTABLISHMENT_CATEGORY: "TRE_R66-CategorieEtablissement",
    Oid.ESPIC: "TRE_R73-ESPIC",
    Oid.CLOSING_REASON: "TRE_R286-TypeFermeture",
    Oid.UNIT_TYPE: "TRE_R207-TypeOrganisationInterne",
    Oid.ACTIVITY_FIELD: "TRE_R227-ChampActivite",
    Oid.CARE_MODE: "TRE_R213-ModePriseEnCharge",
    Oid.SUPPORTED_PATIENT: "TRE_R239-PublicPrisEnCharge",
    Oid.OPERATIONAL_ACTIVITY: "TRE_R211-ActiviteOperationnelle",
    Oid.ACT_FAMILY: "TRE_R266-FamilleActiviteOperationnelleHorsSerafin",
    Oid.EQUIPMENT: "TRE_R212-Equipement",
    Oid.CONFIDENTIALITY: "TRE_R283-NiveauConfidentialite",
    Oid.CONTACT_FUNCTION: "TRE_R251-FonctionContact",
    Oid.CONTACT_NATURE: "TRE_R287-NatureContact",
    Oid.TELECOM_CHANNEL: "TRE_R200-CanalCommunication",
    Oid.LOCATION_STATUS: "TRE_R203-StatutLieu",
    Oid.CITY: "TRE_R13-CommuneOM",
    Oid.REGION: "TRE_R30-RegionOM",
    Oid.UCUM: "TRE_R247-UcumUniteMesure",
    Oid.PROFESSION: "TRE_G15-ProfessionSante",
}
_SYSTEM_OF_OID: Final = {oid: nos(table) for oid, table in _TABLES.items()}
#: OID by table code (``TRE_R69``): table labels change between NOS releases
#: (``TRE_R69-FinessSousEnsembleAgregatStatutJuridique`` / ``TRE_R69-FinessAgregatStatutJuridiqueNiv2``).
_OID_OF_TABLE: Final = {table.split("-", 1)[0]: oid for oid, table in _TABLES.items()}
_NOS_PREFIX: Final = "https://mos.esante.gouv.fr/NOS/"


def system_of(scheme: str) -> str:
    """The FHIR system of a CSD coding scheme: the NOS URL of a known OID, ``urn:oid:`` for another
    OID, the scheme itself otherwise."""
    if scheme in _SYSTEM_OF_OID:
        return _SYSTEM_OF_OID[scheme]
    if _looks_like_oid(scheme):
        return "urn:oid:" + scheme
    return scheme


def scheme_of(system: str) -> str:
    """The inverse of :func:`system_of`: the CSD coding scheme of a FHIR system."""
    if system.startswith(_NOS_PREFIX):
        table = system.removeprefix(_NOS_PREFIX).split("-", 1)[0]
        if table in _OID_OF_TABLE:
            return _OID_OF_TABLE[table]
    if system.startswith("urn:oid:"):
        return system.removeprefix("urn:oid:")
    return system


def identifier_system(authority: str) -> str:
    """The FHIR ``identifier.system`` of a CSD assigning authority."""
    if authority == OI_AUTHORITY:
        return SYSTEM_OI
    if _looks_like_oid(authority):
        return "urn:oid:" + authority
    return authority


def identifier_authority(system: str) -> str:
    """The inverse of :func:`identifier_system`."""
    if system == SYSTEM_OI:
        return OI_AUTHORITY
    if system.startswith("urn:oid:"):
        return system.removeprefix("urn:oid:")
    return system


def _looks_like_oid(value: str) -> bool:
    parts = value.split(".")
    return len(parts) > 1 and all(part.isdigit() for part in parts)
