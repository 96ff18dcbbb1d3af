"""The establishment the PLATINES Lecture test projects assume exists (CSD-v2.4-digest §5.3).

One legal entity, one establishment with FINESS ``1830000002`` and four open elementary units, one per
activity field 01 MCO, 02 SSR, 03 PSY, 04 MS (the MS unit takes publics 01 PA and 02 PH), under one
pôle carrying the four fields (RG_ALIM_006). Every record is updated after 2017-09-12, the ``dateRef`` of
the PLATINES projects; the establishment is operational and has a single-room surcharge price.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from rorclient.codes import CSD_NS, Oid
from rorclient.csd.writer import UNIT_ID_AUTHORITY
from rorclient.models import (
    Activity,
    Address,
    AddressLine,
    Age,
    CodedValue,
    Contact,
    Establishment,
    ExtraElement,
    Identifier,
    LegalEntity,
    Location,
    Offer,
    PatientsType,
    RecordMeta,
    Telecom,
    Unit,
)
from rorclient.sandbox import _vocab as vocab

__all__ = ["PLATINES_ESTABLISHMENT_ID", "PLATINES_LEGAL_ENTITY_ID", "platines_offer"]

#: idNat_Struct of the PLATINES prerequisite establishment (the projects' ``idNat_Struct`` default).
#: It replaces a generated establishment that would have the same id.
PLATINES_ESTABLISHMENT_ID: Final = "1830000002"
#: idNat_Struct of its legal entity: a SIREN (type 2), which no generated organisation uses.
PLATINES_LEGAL_ENTITY_ID: Final = "2183000001"

_RECORD: Final = RecordMeta(
    created=dt.datetime(2018, 1, 15, 10, 0, 0), updated=dt.datetime(2023, 3, 1, 9, 30, 0)
)
_NULL_CARE_MODE: Final = CodedValue(code="null", coding_scheme="")
# A single-room surcharge (RG_EXP_029: the only residential type such a price may have is 02).
_SURCHARGE_PRICE: Final = ExtraElement(
    name="{" + CSD_NS + "}price",
    xml=(
        f'<csd:price xmlns:csd="{CSD_NS}">'
        '<csd:priceType code="01" codingScheme="1.2.250.1.213.3.3.43">'
        "Supplément tarif Hébergement SSR</csd:priceType>"
        '<csd:priceUnit code="2" codingScheme="1.2.250.1.213.3.3.18">Tarif journalier</csd:priceUnit>'
        "<csd:price><csd:amount>45.0</csd:amount>"
        '<csd:currency code="EUR" codingScheme="1.2.250.1.213.3.3.20">Euro</csd:currency></csd:price>'
        "<csd:surchargePriceResidential>"
        '<csd:residentialType code="02" codingScheme="1.2.250.1.213.3.3.35">'
        "Chambre simple</csd:residentialType>"
        "</csd:surchargePriceResidential>"
        '<csd:record created="2018-01-15T10:00:00" updated="2023-03-01T09:30:00" status="Active"/>'
        "</csd:price>"
    ),
)

# (identifiantOI, name, activity field, care mode, operational activity, publics, ages)
_UNITS: Final = (
    ("93/900002", "CONSULTATIONS DE CARDIOLOGIE", "01", "32", "013", (), (18, 120)),
    ("93/900003", "SSR POLYVALENT - HOSPITALISATION COMPLETE", "02", "28", None, (), (18, 120)),
    ("93/900004", "PSYCHIATRIE ADULTE - HOSPITALISATION DE JOUR", "03", "29", None, (), (18, 120)),
    ("93/900005", "ACCUEIL DE JOUR PA PH", "04", "47", None, ("01", "02"), (20, 120)),
)
_POLE_ID: Final = "93/900001"


def _coded(code: str, scheme: str, display: str | None = None) -> CodedValue:
    return CodedValue(code=code, coding_scheme=scheme, display=display)


def _field(code: str) -> CodedValue:
    return _coded(code, Oid.ACTIVITY_FIELD, vocab.ACTIVITY_FIELDS[code])


def _labels(codes: tuple[vocab.Code, ...]) -> dict[str, str]:
    return {code.code: code.label for code in codes}


def platines_offer() -> Offer:
    """The PLATINES prerequisite establishment as an offer (always the same content)."""
    toulon = _coded("83137", Oid.CITY, "Toulon")
    legal_entity = LegalEntity(
        id=PLATINES_LEGAL_ENTITY_ID,
        other_ids=(Identifier(value=PLATINES_LEGAL_ENTITY_ID, authority=Oid.ID_NAT_STRUCT),),
        types=(
            _coded("13", Oid.LEGAL_STATUS, vocab.LEGAL_STATUSES["13"][0]),
            _coded("1200", Oid.LEGAL_STATUS_GROUP, vocab.LEGAL_STATUS_GROUPS["1200"]),
        ),
        name="CENTRE HOSPITALIER PLATINES",
        creation_date=dt.date(1990, 1, 1),
        record=_RECORD,
    )
    address = Address(
        type="geographique",
        lines=(
            AddressLine(
                parts={
                    "buildingNumber": "1",
                    "streetType": "RUE",
                    "streetName": "DE L'EXEMPLE",
                    "postCode": "83000",
                    "cityName": "TOULON",
                }
            ),
        ),
        record=_RECORD,
    )
    establishment = Establishment(
        id=PLATINES_ESTABLISHMENT_ID,
        other_ids=(Identifier(value=PLATINES_ESTABLISHMENT_ID, authority=Oid.ID_NAT_STRUCT),),
        legal_entity_id=PLATINES_LEGAL_ENTITY_ID,
        types=(_coded("355", Oid.ESTABLISHMENT_CATEGORY, vocab.ESTABLISHMENT_CATEGORIES["355"]),),
        name="CH PLATINES - SITE PRINCIPAL",
        addresses=(address,),
        contacts=(
            Contact(
                nature=_coded("06", Oid.CONTACT_NATURE, vocab.CONTACT_NATURES["06"]),
                confidentiality=_coded("1", Oid.CONFIDENTIALITY, vocab.CONFIDENTIALITY_LEVELS["1"]),
                telecoms=(
                    Telecom(
                        channel=_coded("2", Oid.TELECOM_CHANNEL, vocab.TELECOM_CHANNELS["2"]),
                        value="0494000000",
                        confidentiality=_coded("1", Oid.CONFIDENTIALITY, vocab.CONFIDENTIALITY_LEVELS["1"]),
                        record=_RECORD,
                    ),
                ),
                record=_RECORD,
            ),
        ),
        location=Location(
            status=_coded("3", Oid.LOCATION_STATUS, "Opérationnel"), city=toulon, record=_RECORD
        ),
        drop_zone=True,
        creation_date=dt.date(1990, 1, 1),
        record=_RECORD,
        extension_extras=(_SURCHARGE_PRICE,),
    )
    pole = Unit(
        id=_POLE_ID,
        other_ids=(Identifier(value=_POLE_ID, authority=UNIT_ID_AUTHORITY),),
        types=(_coded("1", Oid.UNIT_TYPE, vocab.UNIT_TYPES["1"]),),
        name="POLE SANITAIRE ET MEDICO-SOCIAL",
        establishment_id=PLATINES_ESTABLISHMENT_ID,
        activity_fields=tuple(_field(code) for code in ("01", "02", "03", "04")),  # RG_ALIM_006
        care_mode=_NULL_CARE_MODE,
        patients=PatientsType(age_min=Age(value=0), age_max=Age(value=120), record=_RECORD),
        record=_RECORD,
    )
    units = [pole]
    # PLATINES filtre_profilN.sch wants an operational activity on every internal organisation.
    activities = [
        Activity(
            unit_id=_POLE_ID,
            code=_coded("013", Oid.OPERATIONAL_ACTIVITY, _labels(vocab.ACTIVITIES["01"]).get("013")),
            record=_RECORD,
        )
    ]
    for unit_id, name, field, care_mode, activity, publics, ages in _UNITS:
        units.append(
            Unit(
                id=unit_id,
                other_ids=(Identifier(value=unit_id, authority=UNIT_ID_AUTHORITY),),
                types=(_coded("4", Oid.UNIT_TYPE, vocab.UNIT_TYPES["4"]),),
                name=name,
                establishment_id=PLATINES_ESTABLISHMENT_ID,
                parent_unit_id=_POLE_ID,
                activity_fields=(_field(field),),
                care_mode=_coded(care_mode, Oid.CARE_MODE, _labels(vocab.CARE_MODES[field])[care_mode]),
                patients=PatientsType(
                    supported=tuple(
                        _coded(code, Oid.SUPPORTED_PATIENT, vocab.SUPPORTED_PATIENTS[code])
                        for code in publics
                    ),
                    age_min=Age(value=ages[0]),
                    age_max=Age(value=ages[1]),
                    record=_RECORD,
                ),
                creation_date=dt.date(2018, 1, 15),
                record=_RECORD,
            )
        )
        catalogue = vocab.ACTIVITIES[field]
        code = activity or catalogue[0].code
        activities.append(
            Activity(
                unit_id=unit_id,
                code=_coded(code, Oid.OPERATIONAL_ACTIVITY, _labels(catalogue).get(code)),
                record=_RECORD,
            )
        )
    return Offer(
        legal_entities=(legal_entity,),
        establishments=(establishment,),
        units=tuple(units),
        activities=tuple(activities),
    )
