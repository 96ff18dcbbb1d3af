"""Code lists, names and establishment profiles of the synthetic dataset (a realistic subset, not a
nomenclature).

Codes and labels were picked once, offline, from the ANS NOS publication of 2023-06-14 (TRE_R211,
TRE_R212, TRE_R213, TRE_R227, TRE_R66, TRE_R69, TRE_R72, TRE_R73, TRE_R13, TRE_G15...). City codes are
TRE_R13 (INSEE) codes; post codes and coordinates are approximate town-centre values. Every person,
street and establishment name the generator builds from these lists is invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

__all__ = [
    "ACTIVITIES",
    "ACTIVITY_FIELDS",
    "ACT_FAMILIES",
    "AMBULATORY_UNITS",
    "CARE_MODES",
    "CHILD_PH_UNITS",
    "CITIES",
    "CLOSING_REASONS",
    "CMP_UNITS",
    "CONFIDENTIALITY_LEVELS",
    "CONTACT_FUNCTIONS",
    "CONTACT_NATURES",
    "DIALYSIS_UNITS",
    "EHPAD_UNITS",
    "EQUIPMENT",
    "ESPIC",
    "ESTABLISHMENT_CATEGORIES",
    "FORENAMES",
    "HAD_CARE_MODE",
    "HAD_UNITS",
    "HOME_CARE_UNITS",
    "LEGAL_STATUSES",
    "LEGAL_STATUS_GROUPS",
    "LOCATION_STATUSES",
    "OWNERS",
    "PATRONS",
    "PHONE_ZONES",
    "PH_UNITS",
    "PLACE_NAMES",
    "POLE_NAMES",
    "PROFESSIONS",
    "PROFESSION_ACTIVITY",
    "PROFILES",
    "RECONCILIATION_COMMENTS",
    "STREET_NAMES",
    "STREET_TYPES",
    "SUPPORTED_PATIENTS",
    "SURNAMES",
    "TELECOM_CHANNELS",
    "UNIT_TYPES",
    "City",
    "Code",
    "Profile",
    "UnitTemplate",
]


class Code(NamedTuple):
    code: str
    label: str


class City(NamedTuple):
    insee: str
    name: str
    post_code: str
    department: str
    latitude: float
    longitude: float


#: TRE_R227-ChampActivite.
ACTIVITY_FIELDS: Final = {
    "01": "Médecine, Chirurgie, Obstétrique (MCO)",
    "02": "Soins de Suite et Réadaptation (SSR)",
    "03": "Psychiatrie (PSY)",
    "04": "Médico-social (MS)",
    "05": "Ambulatoire",
}

#: TRE_R213-ModePriseEnCharge: the care modes used, by activity field.
CARE_MODES: Final[dict[str, tuple[Code, ...]]] = {
    "01": (
        Code("28", "Hospitalisation complète (HC)"),
        Code("29", "Hospitalisation de jour (HJ)"),
        Code("32", "Consultation (CS)"),
        Code("34", "Hospitalisation de semaine (HS)"),
        Code("09", "Chirurgie ambulatoire"),
        Code("13", "Hospitalisation courte durée (UHCD)"),
        Code("33", "Accueil des urgences"),
        Code("26", "Téléconsultation"),
    ),
    "02": (
        Code("28", "Hospitalisation complète (HC)"),
        Code("29", "Hospitalisation de jour (HJ)"),
        Code("32", "Consultation (CS)"),
        Code("34", "Hospitalisation de semaine (HS)"),
    ),
    "03": (
        Code("28", "Hospitalisation complète (HC)"),
        Code("29", "Hospitalisation de jour (HJ)"),
        Code("32", "Consultation (CS)"),
        Code("30", "Hospitalisation de nuit (HN)"),
        Code("11", "Equipe mobile extra-hospitalière"),
        Code("41", "Accueil familial thérapeutique"),
    ),
    "04": (
        Code("46", "Hébergement (accueil jour et nuit)"),
        Code("47", "Accueil de jour"),
        Code("48", "Accueil de nuit"),
        Code("49", "Sur les lieux de vie"),
        Code("54", "Accueil individuel ou collectif"),
    ),
    "05": (
        Code("32", "Consultation (CS)"),
        Code("20", "Soins externes et traitements ambulatoires"),
        Code("26", "Téléconsultation"),
        Code("56", "Accueil non programmé"),
    ),
}

#: TRE_R213 code 31, used by home-hospitalisation establishments.
HAD_CARE_MODE: Final = Code("31", "Hospitalisation à domicile (HAD)")

#: TRE_R211-ActiviteOperationnelle: the activities used, by activity field.
ACTIVITIES: Final[dict[str, tuple[Code, ...]]] = {
    "01": (
        Code("007", "Anesthésie"),
        Code("013", "Cardiologie"),
        Code("016", "Chirurgie cervico-faciale et Oto-rhino-laryngologie (ORL)"),
        Code("025", "Chirurgie orthopédique"),
        Code("031", "Urologie"),
        Code("033", "Chirurgie viscérale et digestive"),
        Code("037", "Dermatologie"),
        Code("039", "Diabétologie"),
        Code("046", "Gastro-entérologie"),
        Code("050", "Gériatrie, Gérontologie"),
        Code("053", "Gynécologie médicale"),
        Code("055", "Hématologie"),
        Code("059", "Hémodialyse chronique"),
        Code("068", "Imagerie par IRM"),
        Code("070", "Imagerie par scanner (TDM)"),
        Code("083", "Médecine générale (polyvalente)"),
        Code("085", "Médecine interne"),
        Code("088", "Médecine pédiatrique"),
        Code("094", "Néonatologie"),
        Code("095", "Néphrologie"),
        Code("097", "Neurologie"),
        Code("100", "Obstétrique"),
        Code("102", "Oncologie-cancérologie"),
        Code("103", "Ophtalmologie"),
        Code("114", "Pneumologie"),
        Code("127", "Réanimation médico-chirurgicale (polyvalente)"),
        Code("131", "Rhumatologie"),
        Code("157", "Urgences polyvalentes"),
        Code("170", "Soins palliatifs"),
        Code("249", "Urgences pédiatriques"),
    ),
    "02": (
        Code("090", "Médecine physique et de réadaptation"),
        Code("172", "Soins de suite et de réadaptation (SSR) polyvalent"),
        Code("233", "Soins de Suite et de Réadaptation (SSR) affections de l'appareil locomoteur"),
        Code("234", "Soins de Suite et de Réadaptation (SSR) affections du système nerveux"),
        Code("235", "Soins de Suite et de Réadaptation (SSR) affections cardio-vasculaires"),
        Code("236", "Soins de Suite et de Réadaptation (SSR) affections respiratoires"),
        Code(
            "241",
            "Soins de Suite et de Réadaptation (SSR) affections des personnes âgées polypathologiques, "
            "dépendantes ou à risque de dépendance",
        ),
    ),
    "03": (
        Code("002", "Addictologie sans précision"),
        Code("051", "Géronto-psychiatrie"),
        Code("158", "Urgences spécialisées psychiatriques"),
        Code("227", "Psychiatrie infanto-juvénile"),
        Code("228", "Psychiatrie des adolescents et jeunes adultes"),
        Code("229", "Psychiatrie adulte"),
        Code("230", "Psychiatrie périnatale"),
        Code("231", "Soins de réhabilitation psycho-sociale"),
        Code("289", "Suivi psychologique"),
    ),
    "04": (
        Code("285", "Soins médicaux somatiques"),
        Code("287", "Soins techniques infirmiers"),
        Code("288", "Soins d'hygiène médicalisés"),
        Code("293", "Accompagnements pour les actes de la vie quotidienne (AVQ)"),
        Code("300", "Accompagnements à la scolarisation"),
        Code("306", "Activités visant la stimulation cognitivo-comportementale"),
        Code("312", "Accompagnements pour créer ou maintenir le lien social et éviter l'isolement"),
        Code("313", "Accompagnements à des activités sociales, culturelles, sportives et de loisirs"),
        Code("322", "Prestation de restauration"),
        Code("325", "Soutien et aide aux aidants"),
        Code("392", "Hébergement temporaire d'urgence"),
    ),
    "05": (
        Code("040", "Diététique et Nutrition"),
        Code("083", "Médecine générale (polyvalente)"),
        Code("101", "Odontologie (dentaire)"),
        Code("161", "Vaccinations"),
        Code("200", "Orthophonie"),
        Code("201", "Podologie"),
        Code("336", "Education thérapeutique"),
        Code("339", "Kinésithérapie"),
    ),
}

#: TRE_R266 act families (JDV_J51) some medico-social activities carry.
ACT_FAMILIES: Final = (
    Code("01", "Accompagnement des aidants"),
    Code("02", "Prévention et éducation thérapeutique"),
)

#: TRE_R212-Equipement: the equipment used, by activity field.
EQUIPMENT: Final[dict[str, tuple[Code, ...]]] = {
    "01": (
        Code("009", "Chambre à pression négative"),
        Code("021", "Echographe transportable"),
        Code("047", "Holter tensionnel"),
        Code("054", "IRM corps entier"),
        Code("056", "Laboratoire du sommeil (polysomnographe)"),
        Code("069", "Robot opératoire"),
        Code("094", "Mammographe"),
        Code("153", "Equipement de télémédecine (chariot, cabine)"),
        Code("156", "Moniteur multiparamétrique"),
        Code("161", "Caisson hyperbare occupation simple"),
    ),
    "02": (
        Code("098", "Bassin thérapeutique pour balnéothérapie (<20m2)"),
        Code("102", "Appareil d'isocinétisme"),
        Code("103", "Assistance robotisée à la marche"),
        Code("115", "Prises d'oxygène dans les chambres"),
        Code("125", "Gymnase"),
        Code("150", "Salle de rééducation"),
    ),
    "03": (
        Code("097", "Chambre d'isolement et de contention"),
        Code("100", "Salle aménagée pour la thérapie systémique"),
        Code(
            "130",
            "Chambre et locaux sécurisés permettant la prise en charge des personnes à risque suicidaire",
        ),
        Code("147", "Espace de calme-retrait, d'apaisement"),
    ),
    "04": (
        Code("101", "Salle de stimulation multi-sensorielle"),
        Code("123", "Chambre domotisée"),
        Code("148", "Jardin pédagogique et-ou thérapeutique"),
        Code("152", "Equipement de géolocalisation des personnes vulnérables"),
        Code("155", "Rails de transfert"),
    ),
    "05": (
        Code("143", "Oxymètre de pouls (SpO2)"),
        Code("153", "Equipement de télémédecine (chariot, cabine)"),
        Code("182", "Défibrillateur automatisé externe (DAE)"),
    ),
}

#: TRE_R207-TypeOrganisationInterne.
UNIT_TYPES: Final = {
    "1": "Pôle",
    "2": "Structure interne ou Service",
    "3": "Unité fonctionnelle",
    "4": "Unité élémentaire",
}

#: TRE_R239-PublicPrisEnCharge.
SUPPORTED_PATIENTS: Final = {
    "01": "Personnes âgées en perte d'autonomie (PA) et aidants",
    "02": "Personnes en situation de handicap (PH) et aidants",
    "03": "Personnes âgées autonomes",
}

#: TRE_R66-CategorieEtablissement (the categories the generator uses).
ESTABLISHMENT_CATEGORIES: Final = {
    "101": "Centre hospitalier régional (CHR)",
    "109": "Etablissement de santé privé autorisé en soins de suite et de réadaptation (SSR)",
    "124": "Centre de santé",
    "127": "Hospitalisation à domicile (HAD)",
    "141": "Centre de dialyse",
    "156": "Centre médico-psychologique (CMP)",
    "183": "Institut médico-éducatif (IME)",
    "255": "Maison d'accueil spécialisée (MAS)",
    "292": "Centre hospitalier spécialisé de lutte contre les maladies mentales",
    "354": "Service de soins infirmiers à domicile (SSIAD)",
    "355": "Centre hospitalier (CH)",
    "365": "Etablissement de soins pluridisciplinaire",
    "500": "Etablissement d'hébergement pour personnes âgées dépendantes",
    "603": "Maison de santé (L6223-3)",
}

#: TRE_R72-FinessStatutJuridique (code → label, TRE_R69 aggregate code).
LEGAL_STATUSES: Final = {
    "03": ("Commune", "1100"),
    "13": ("Etablissement public communal d'hospitalisation", "1200"),
    "14": ("Etablissement public intercommunal d'hospitalisation", "1200"),
    "15": ("Etablissement public régional d'hospitalisation", "1200"),
    "17": ("Centre communal d'action sociale", "1200"),
    "21": ("Etablissement social et médico-social communal", "1200"),
    "47": ("Société mutualiste", "2100"),
    "60": ("Association Loi 1901 non reconnue d'utilité publique", "2100"),
    "61": ("Association Loi 1901 reconnue d'utilité publique", "2100"),
    "63": ("Fondation", "2100"),
    "72": ("Société à responsabilité limitée (SARL)", "2200"),
    "73": ("Société anonyme (SA)", "2200"),
    "74": ("Société civile", "2200"),
    "95": ("Société par actions simplifiée (SAS)", "2200"),
}

#: TRE_R69-FinessSousEnsembleAgregatStatutJuridique.
LEGAL_STATUS_GROUPS: Final = {
    "1100": "Etat et Collectivités territoriales",
    "1200": "Etablissement public",
    "2100": "Organisme privé à but non lucratif",
    "2200": "Organisme privé à caractère commercial",
}

#: TRE_R73-ESPIC.
ESPIC: Final = {
    "0": "Non concerné",
    "1": "Etablissement public de santé",
    "6": "Etablissement de santé privé d'intérêt collectif",
    "7": "Etablissement de santé privé non lucratif, non déclaré d'intérêt collectif",
}

#: Reconciliation comments (``record/extension/comments``) a regional directory leaves on a unit.
RECONCILIATION_COMMENTS: Final = (
    "Fusion de deux UF lors de la reprise FINESS",
    "Rattachement au pôle corrigé après contrôle ARS",
    "Doublon supprimé : identifiant conservé",
    "Libellé harmonisé avec le référentiel régional",
)

#: TRE_R286-TypeFermeture codes used for closed establishments.
CLOSING_REASONS: Final = (Code("DEF", "Définitive"), Code("PRO", "Provisoire"))

#: TRE_R203-StatutLieu.
LOCATION_STATUSES: Final = {"1": "Fermé définitivement", "2": "Fermé temporairement", "3": "Opérationnel"}

#: TRE_R283-NiveauConfidentialite.
CONFIDENTIALITY_LEVELS: Final = {"1": "Accès libre", "2": "Accès restreint", "3": "Accès très restreint"}

#: TRE_R200-CanalCommunication.
TELECOM_CHANNELS: Final = {
    "1": "Téléphone mobile",
    "2": "Téléphone fixe",
    "3": "Courrier électronique",
    "4": "Adresse web",
    "6": "Télécopie",
}

#: TRE_R287-NatureContact.
CONTACT_NATURES: Final = {
    "01": "Accueil",
    "02": "Prise de rendez-vous",
    "03": "Admission",
    "04": "Médical",
    "05": "Soignant",
    "06": "Standard",
}

#: TRE_R251-FonctionContact (functions that name a person).
CONTACT_FUNCTIONS: Final = {
    "01": "Directeur",
    "03": "Cadre de santé",
    "04": "Médecin coordonnateur",
    "05": "Secrétaire",
    "10": "Chef de service",
    "11": "Chef de pôle",
    "12": "Référent ROR",
    "22": "Responsable d'unité",
}

#: TRE_G15-ProfessionSante (professions of the ambulatory professionals).
PROFESSIONS: Final = {
    "10": "Médecin",
    "40": "Chirurgien-Dentiste",
    "50": "Sage-Femme",
    "60": "Infirmier",
    "70": "Masseur-Kinésithérapeute",
    "80": "Pédicure-Podologue",
    "91": "Orthophoniste",
}

#: Activity field of the ambulatory unit each profession works in, with its TRE_R211 activity.
PROFESSION_ACTIVITY: Final = {
    "10": "083",
    "40": "101",
    "50": "083",
    "60": "336",
    "70": "339",
    "80": "201",
    "91": "200",
}

#: One or more towns per département (TRE_R13 code, name, post code, département, WGS84 position).
CITIES: Final = (
    City("01053", "Bourg-en-Bresse", "01000", "01", 46.205, 5.225),
    City("02408", "Laon", "02000", "02", 49.564, 3.620),
    City("02691", "Saint-Quentin", "02100", "02", 49.848, 3.287),
    City("03185", "Montluçon", "03100", "03", 46.340, 2.603),
    City("03190", "Moulins", "03000", "03", 46.566, 3.333),
    City("04070", "Digne-les-Bains", "04000", "04", 44.092, 6.236),
    City("05061", "Gap", "05000", "05", 44.559, 6.079),
    City("06029", "Cannes", "06400", "06", 43.552, 7.017),
    City("06088", "Nice", "06000", "06", 43.710, 7.262),
    City("07186", "Privas", "07000", "07", 44.735, 4.599),
    City("08105", "Charleville-Mézières", "08000", "08", 49.773, 4.720),
    City("09122", "Foix", "09000", "09", 42.965, 1.607),
    City("10387", "Troyes", "10000", "10", 48.297, 4.074),
    City("11069", "Carcassonne", "11000", "11", 43.213, 2.350),
    City("11262", "Narbonne", "11100", "11", 43.184, 3.004),
    City("12202", "Rodez", "12000", "12", 44.350, 2.575),
    City("13001", "Aix-en-Provence", "13100", "13", 43.529, 5.447),
    City("13055", "Marseille", "13000", "13", 43.296, 5.370),
    City("14118", "Caen", "14000", "14", 49.182, -0.370),
    City("15014", "Aurillac", "15000", "15", 44.926, 2.440),
    City("16015", "Angoulême", "16000", "16", 45.648, 0.156),
    City("17300", "La Rochelle", "17000", "17", 46.160, -1.151),
    City("18033", "Bourges", "18000", "18", 47.081, 2.399),
    City("19031", "Brive-la-Gaillarde", "19100", "19", 45.159, 1.533),
    City("19272", "Tulle", "19000", "19", 45.267, 1.771),
    City("2A004", "Ajaccio", "20000", "2A", 41.919, 8.738),
    City("2B033", "Bastia", "20200", "2B", 42.697, 9.450),
    City("21231", "Dijon", "21000", "21", 47.322, 5.041),
    City("22278", "Saint-Brieuc", "22000", "22", 48.514, -2.765),
    City("23096", "Guéret", "23000", "23", 46.171, 1.871),
    City("24322", "Périgueux", "24000", "24", 45.184, 0.721),
    City("25056", "Besançon", "25000", "25", 47.238, 6.024),
    City("26362", "Valence", "26000", "26", 44.933, 4.892),
    City("27229", "Évreux", "27000", "27", 49.024, 1.151),
    City("28085", "Chartres", "28000", "28", 48.446, 1.489),
    City("29019", "Brest", "29200", "29", 48.390, -4.486),
    City("29232", "Quimper", "29000", "29", 47.996, -4.102),
    City("30189", "Nîmes", "30000", "30", 43.837, 4.360),
    City("31555", "Toulouse", "31000", "31", 43.605, 1.444),
    City("32013", "Auch", "32000", "32", 43.646, 0.586),
    City("33063", "Bordeaux", "33000", "33", 44.838, -0.579),
    City("34032", "Béziers", "34500", "34", 43.344, 3.216),
    City("34172", "Montpellier", "34000", "34", 43.611, 3.877),
    City("35238", "Rennes", "35000", "35", 48.117, -1.678),
    City("36044", "Châteauroux", "36000", "36", 46.810, 1.691),
    City("37261", "Tours", "37000", "37", 47.394, 0.685),
    City("38185", "Grenoble", "38000", "38", 45.188, 5.724),
    City("39300", "Lons-le-Saunier", "39000", "39", 46.675, 5.554),
    City("40192", "Mont-de-Marsan", "40000", "40", 43.890, -0.500),
    City("41018", "Blois", "41000", "41", 47.586, 1.335),
    City("42218", "Saint-Étienne", "42000", "42", 45.440, 4.387),
    City("43157", "Le Puy-en-Velay", "43000", "43", 45.043, 3.885),
    City("44109", "Nantes", "44000", "44", 47.218, -1.554),
    City("44184", "Saint-Nazaire", "44600", "44", 47.273, -2.214),
    City("45234", "Orléans", "45000", "45", 47.903, 1.909),
    City("46042", "Cahors", "46000", "46", 44.448, 1.441),
    City("47001", "Agen", "47000", "47", 44.203, 0.616),
    City("48095", "Mende", "48000", "48", 44.518, 3.500),
    City("49007", "Angers", "49000", "49", 47.478, -0.563),
    City("50129", "Cherbourg-en-Cotentin", "50100", "50", 49.640, -1.616),
    City("50502", "Saint-Lô", "50000", "50", 49.116, -1.091),
    City("51108", "Châlons-en-Champagne", "51000", "51", 48.957, 4.363),
    City("51454", "Reims", "51100", "51", 49.258, 4.032),
    City("52121", "Chaumont", "52000", "52", 48.111, 5.139),
    City("53130", "Laval", "53000", "53", 48.073, -0.770),
    City("54395", "Nancy", "54000", "54", 48.692, 6.184),
    City("55029", "Bar-le-Duc", "55000", "55", 48.773, 5.160),
    City("56121", "Lorient", "56100", "56", 47.748, -3.370),
    City("56260", "Vannes", "56000", "56", 47.658, -2.760),
    City("57463", "Metz", "57000", "57", 49.119, 6.176),
    City("58194", "Nevers", "58000", "58", 46.990, 3.159),
    City("59183", "Dunkerque", "59140", "59", 51.034, 2.377),
    City("59350", "Lille", "59000", "59", 50.629, 3.057),
    City("59606", "Valenciennes", "59300", "59", 50.357, 3.523),
    City("60057", "Beauvais", "60000", "60", 49.430, 2.081),
    City("61001", "Alençon", "61000", "61", 48.432, 0.091),
    City("62041", "Arras", "62000", "62", 50.291, 2.777),
    City("62193", "Calais", "62100", "62", 50.951, 1.858),
    City("63113", "Clermont-Ferrand", "63000", "63", 45.778, 3.087),
    City("64102", "Bayonne", "64100", "64", 43.493, -1.475),
    City("64445", "Pau", "64000", "64", 43.295, -0.370),
    City("65440", "Tarbes", "65000", "65", 43.233, 0.078),
    City("66136", "Perpignan", "66000", "66", 42.699, 2.895),
    City("67482", "Strasbourg", "67000", "67", 48.573, 7.752),
    City("68066", "Colmar", "68000", "68", 48.079, 7.358),
    City("68224", "Mulhouse", "68100", "68", 47.750, 7.336),
    City("69123", "Lyon", "69001", "69", 45.764, 4.836),
    City("69266", "Villeurbanne", "69100", "69", 45.767, 4.880),
    City("70550", "Vesoul", "70000", "70", 47.620, 6.155),
    City("71076", "Chalon-sur-Saône", "71100", "71", 46.781, 4.854),
    City("71270", "Mâcon", "71000", "71", 46.307, 4.828),
    City("72181", "Le Mans", "72000", "72", 48.007, 0.199),
    City("73065", "Chambéry", "73000", "73", 45.564, 5.918),
    City("74010", "Annecy", "74000", "74", 45.899, 6.129),
    City("75056", "Paris", "75001", "75", 48.857, 2.352),
    City("76351", "Le Havre", "76600", "76", 49.494, 0.108),
    City("76540", "Rouen", "76000", "76", 49.443, 1.100),
    City("77284", "Meaux", "77100", "77", 48.960, 2.879),
    City("77288", "Melun", "77000", "77", 48.540, 2.660),
    City("78646", "Versailles", "78000", "78", 48.805, 2.130),
    City("79191", "Niort", "79000", "79", 46.323, -0.459),
    City("80021", "Amiens", "80000", "80", 49.894, 2.296),
    City("81004", "Albi", "81000", "81", 43.929, 2.148),
    City("82121", "Montauban", "82000", "82", 44.018, 1.355),
    City("83050", "Draguignan", "83300", "83", 43.537, 6.464),
    City("83137", "Toulon", "83000", "83", 43.124, 5.928),
    City("84007", "Avignon", "84000", "84", 43.949, 4.806),
    City("85191", "La Roche-sur-Yon", "85000", "85", 46.670, -1.426),
    City("86194", "Poitiers", "86000", "86", 46.580, 0.340),
    City("87085", "Limoges", "87000", "87", 45.834, 1.262),
    City("88160", "Épinal", "88000", "88", 48.174, 6.450),
    City("89024", "Auxerre", "89000", "89", 47.798, 3.567),
    City("90010", "Belfort", "90000", "90", 47.640, 6.863),
    City("91228", "Évry", "91000", "91", 48.629, 2.441),
    City("92012", "Boulogne-Billancourt", "92100", "92", 48.835, 2.241),
    City("92050", "Nanterre", "92000", "92", 48.892, 2.207),
    City("93008", "Bobigny", "93000", "93", 48.908, 2.440),
    City("93066", "Saint-Denis", "93200", "93", 48.936, 2.357),
    City("94028", "Créteil", "94000", "94", 48.790, 2.455),
    City("95018", "Argenteuil", "95100", "95", 48.948, 2.248),
    City("95127", "Cergy", "95000", "95", 49.036, 2.076),
    City("97105", "Basse-Terre", "97100", "971", 15.998, -61.726),
    City("97101", "Les Abymes", "97139", "971", 16.271, -61.505),
    City("97209", "Fort-de-France", "97200", "972", 14.616, -61.059),
    City("97302", "Cayenne", "97300", "973", 4.937, -52.326),
    City("97411", "Saint-Denis", "97400", "974", -20.882, 55.450),
    City("97416", "Saint-Pierre", "97410", "974", -21.339, 55.478),
    City("97611", "Mamoudzou", "97600", "976", -12.780, 45.228),
)

FORENAMES: Final = (
    "Marie",
    "Jean",
    "Pierre",
    "Nathalie",
    "Isabelle",
    "Philippe",
    "Sophie",
    "Nicolas",
    "Catherine",
    "François",
    "Sylvie",
    "Christophe",
    "Valérie",
    "Laurent",
    "Sandrine",
    "Julien",
    "Céline",
    "Thomas",
    "Aurélie",
    "Stéphane",
    "Camille",
    "Antoine",
    "Émilie",
    "Olivier",
    "Claire",
    "Mathieu",
    "Hélène",
    "Sébastien",
    "Anne",
    "Frédéric",
    "Julie",
    "Vincent",
    "Caroline",
    "Alexandre",
    "Lucie",
    "David",
    "Élodie",
    "Romain",
    "Laure",
    "Guillaume",
    "Manon",
    "Hugo",
    "Léa",
    "Karim",
    "Fatima",
    "Mehdi",
    "Inès",
)

SURNAMES: Final = (
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Lefèvre",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Martinez",
    "Legrand",
    "Garnier",
    "Faure",
    "Rousseau",
    "Blanc",
    "Guerin",
    "Muller",
    "Henry",
    "Roussel",
    "Nicolas",
    "Perrin",
    "Morin",
    "Mathieu",
    "Clement",
    "Gauthier",
    "Dumont",
    "Lopez",
    "Fontaine",
    "Chevalier",
    "Robin",
    "Masson",
    "Sanchez",
    "Gerard",
    "Nguyen",
    "Boyer",
    "Denis",
    "Lemaire",
    "Duval",
    "Joly",
    "Gautier",
    "Roger",
    "Roche",
    "Roy",
    "Noel",
    "Meyer",
    "Lucas",
    "Meunier",
    "Jean",
    "Perez",
    "Marchand",
    "Benali",
    "Haddad",
    "Le Gall",
    "Kerjean",
    "Etcheverry",
    "Santoni",
)

#: Saints and figures clinics, EHPADs and associations are commonly named after.
PATRONS: Final = (
    "Saint-Joseph",
    "Sainte-Marie",
    "Saint-Louis",
    "Saint-Martin",
    "Sainte-Anne",
    "Saint-Vincent",
    "Saint-Jean",
    "Sainte-Thérèse",
    "Saint-Roch",
    "Saint-Michel",
    "Notre-Dame",
    "Pasteur",
    "Jeanne d'Arc",
    "Victor Hugo",
    "Jules Verne",
    "Marie Curie",
    "Louis Pasteur",
    "Ambroise Paré",
    "Claude Bernard",
    "Simone Veil",
    "Jean Moulin",
    "Charles de Gaulle",
    "Émile Zola",
    "George Sand",
    "La Fontaine",
)

#: Names of places (EHPADs, residences, IMEs...).
PLACE_NAMES: Final = (
    "Les Tilleuls",
    "Les Glycines",
    "Les Jardins",
    "Le Parc",
    "Les Lilas",
    "Les Acacias",
    "Les Cèdres",
    "Les Peupliers",
    "Le Clos Fleuri",
    "Les Hortensias",
    "La Roseraie",
    "Les Magnolias",
    "Le Verger",
    "Les Charmilles",
    "La Source",
    "Les Oliviers",
    "Les Mimosas",
    "Le Moulin",
    "Les Chênes",
    "Bel Air",
    "Beau Soleil",
    "Les Marronniers",
    "La Colline",
    "Les Vignes",
    "Le Val Fleuri",
    "Les Platanes",
)

STREET_TYPES: Final = ("RUE", "AVENUE", "BOULEVARD", "CHEMIN", "ALLEE", "PLACE", "ROUTE", "IMPASSE")

STREET_NAMES: Final = (
    "DE LA REPUBLIQUE",
    "DU GENERAL LECLERC",
    "VICTOR HUGO",
    "JEAN JAURES",
    "PASTEUR",
    "DES ECOLES",
    "DE LA GARE",
    "DU MOULIN",
    "DE L'EGLISE",
    "GAMBETTA",
    "DES LILAS",
    "FOCH",
    "DE LA PAIX",
    "DU 8 MAI 1945",
    "DES TILLEULS",
    "CARNOT",
    "DE LA LIBERATION",
    "DU STADE",
    "DE VERDUN",
    "ARISTIDE BRIAND",
    "DES CHAMPS",
    "DU PORT",
    "DE LA FONTAINE",
    "DU CHATEAU",
    "MARECHAL JOFFRE",
)


# --------------------------------------------------------------------------------------------------
# Establishment profiles: what kinds of establishment the generator makes, how often, with which units
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitTemplate:
    """An elementary unit of a small establishment (EHPAD, IME, centre de santé...)."""

    name: str
    field: str
    care_mode: str
    activities: tuple[str, ...]
    ages: tuple[int, int]
    supported: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    category: str
    weight: float
    owners: tuple[str, ...]  # legal-entity kinds that run this kind of establishment
    names: tuple[str, ...]  # templates: {city} {patron} {place}
    shape: Literal["full", "service", "flat"]
    elementary_units: tuple[int, int]
    fields: tuple[str, ...] = ()  # activity fields of "full"/"service" shapes; the first always
    optional_fields: tuple[str, ...] = ()
    templates: tuple[UnitTemplate, ...] = ()  # UE templates of the "flat" shape
    siblings: tuple[str, ...] = ()  # categories of the other sites of the same legal entity
    max_sites: int = 1
    espic: str | None = None


EHPAD_UNITS = (
    UnitTemplate("HEBERGEMENT PERMANENT", "04", "46", ("285", "288", "293", "322"), (60, 120), ("01",)),
    UnitTemplate("UNITE DE VIE ALZHEIMER", "04", "46", ("306", "293"), (60, 120), ("01",)),
    UnitTemplate("ACCUEIL DE JOUR", "04", "47", ("306", "312", "325"), (60, 120), ("01",)),
    UnitTemplate("HEBERGEMENT TEMPORAIRE", "04", "46", ("392", "288"), (60, 120), ("01", "03")),
)
PH_UNITS = (
    UnitTemplate("INTERNAT", "04", "46", ("293", "313"), (18, 60), ("02",)),
    UnitTemplate("ACCUEIL DE JOUR", "04", "47", ("293", "312"), (18, 60), ("02",)),
    UnitTemplate("ACCUEIL TEMPORAIRE", "04", "54", ("293", "325"), (18, 60), ("02",)),
)
CHILD_PH_UNITS = (
    UnitTemplate("SEMI-INTERNAT", "04", "47", ("300", "293"), (3, 20), ("02",)),
    UnitTemplate("INTERNAT", "04", "46", ("300", "313"), (6, 20), ("02",)),
    UnitTemplate("ACCOMPAGNEMENT EN MILIEU ORDINAIRE", "04", "49", ("300", "312"), (3, 20), ("02",)),
)
HOME_CARE_UNITS = (
    UnitTemplate("SOINS INFIRMIERS A DOMICILE", "04", "49", ("287", "288"), (60, 120), ("01", "02")),
    UnitTemplate("EQUIPE SPECIALISEE ALZHEIMER", "04", "49", ("306", "325"), (60, 120), ("01",)),
)
AMBULATORY_UNITS = (
    UnitTemplate("CONSULTATIONS DE MEDECINE GENERALE", "05", "32", ("083", "161"), (0, 120)),
    UnitTemplate("SOINS DENTAIRES", "05", "32", ("101",), (0, 120)),
    UnitTemplate("SOINS INFIRMIERS", "05", "20", ("336", "161"), (0, 120)),
    UnitTemplate("KINESITHERAPIE", "05", "20", ("339",), (0, 120)),
    UnitTemplate("ORTHOPHONIE", "05", "32", ("200",), (0, 120)),
    UnitTemplate("PODOLOGIE", "05", "32", ("201",), (0, 120)),
    UnitTemplate("CONSULTATIONS NON PROGRAMMEES", "05", "56", ("083",), (0, 120)),
)
CMP_UNITS = (
    UnitTemplate("CMP ADULTES - CONSULTATIONS", "03", "32", ("229", "289"), (18, 120)),
    UnitTemplate("CMP ENFANTS ET ADOLESCENTS", "03", "32", ("227", "289"), (0, 17)),
    UnitTemplate("EQUIPE MOBILE PSYCHIATRIE PRECARITE", "03", "11", ("229",), (18, 120)),
)
HAD_UNITS = (
    UnitTemplate("HAD POLYVALENTE", "01", "31", ("083", "170"), (18, 120)),
    UnitTemplate("HAD PEDIATRIQUE", "01", "31", ("088",), (0, 17)),
)
DIALYSIS_UNITS = (
    UnitTemplate("HEMODIALYSE EN CENTRE", "01", "20", ("059", "095"), (18, 120)),
    UnitTemplate("UNITE DE DIALYSE MEDICALISEE", "01", "29", ("059",), (18, 120)),
)

PROFILES: Final = (
    Profile(
        category="101",
        weight=0.4,
        owners=("chu",),
        names=("CHU DE {city} - HOPITAL {patron}", "CHRU DE {city} - SITE {place}"),
        shape="full",
        elementary_units=(40, 110),
        fields=("01",),
        optional_fields=("02", "03"),
        siblings=("101", "101", "500"),
        max_sites=4,
        espic="1",
    ),
    Profile(
        category="355",
        weight=5.0,
        owners=("public_hospital",),
        names=("CENTRE HOSPITALIER DE {city}", "CH DE {city} - SITE {place}"),
        shape="full",
        elementary_units=(8, 35),
        fields=("01",),
        optional_fields=("02", "03", "04"),
        siblings=("355", "500", "156"),
        max_sites=3,
        espic="1",
    ),
    Profile(
        category="292",
        weight=0.6,
        owners=("public_hospital",),
        names=("CENTRE HOSPITALIER SPECIALISE {patron}",),
        shape="full",
        elementary_units=(6, 20),
        fields=("03",),
        siblings=("156", "156"),
        max_sites=4,
        espic="1",
    ),
    Profile(
        category="365",
        weight=4.0,
        owners=("commercial", "association"),
        names=("CLINIQUE {patron}", "POLYCLINIQUE DE {city}"),
        shape="service",
        elementary_units=(4, 14),
        fields=("01",),
        optional_fields=("02",),
        siblings=("365", "109"),
        max_sites=3,
        espic="7",
    ),
    Profile(
        category="109",
        weight=3.0,
        owners=("commercial", "association"),
        names=("CENTRE DE READAPTATION {place}", "CLINIQUE SSR {patron}"),
        shape="service",
        elementary_units=(2, 7),
        fields=("02",),
        siblings=("109",),
        max_sites=2,
        espic="6",
    ),
    Profile(
        category="127",
        weight=0.8,
        owners=("association",),
        names=("HAD DE {city}",),
        shape="flat",
        elementary_units=(1, 2),
        templates=HAD_UNITS,
        espic="6",
    ),
    Profile(
        category="141",
        weight=1.5,
        owners=("association",),
        names=("CENTRE DE DIALYSE DE {city}",),
        shape="flat",
        elementary_units=(1, 2),
        templates=DIALYSIS_UNITS,
        siblings=("141",),
        max_sites=3,
        espic="6",
    ),
    Profile(
        category="156",
        weight=3.0,
        owners=("public_hospital",),
        names=("CMP DE {city}", "CMP {place}"),
        shape="flat",
        elementary_units=(1, 2),
        templates=CMP_UNITS,
        siblings=("156",),
        max_sites=3,
    ),
    Profile(
        category="500",
        weight=32.0,
        owners=("public_social", "association", "commercial"),
        names=("EHPAD {place}", "RESIDENCE {place}"),
        shape="flat",
        elementary_units=(1, 4),
        templates=EHPAD_UNITS,
        siblings=("500", "354"),
        max_sites=5,
    ),
    Profile(
        category="255",
        weight=2.0,
        owners=("association",),
        names=("MAS {place}",),
        shape="flat",
        elementary_units=(1, 3),
        templates=PH_UNITS,
        siblings=("183", "255"),
        max_sites=3,
    ),
    Profile(
        category="183",
        weight=3.0,
        owners=("association",),
        names=("IME {place}", "IME {patron}"),
        shape="flat",
        elementary_units=(1, 3),
        templates=CHILD_PH_UNITS,
        siblings=("183", "255"),
        max_sites=3,
    ),
    Profile(
        category="354",
        weight=6.0,
        owners=("association", "public_social"),
        names=("SSIAD DE {city}",),
        shape="flat",
        elementary_units=(1, 2),
        templates=HOME_CARE_UNITS,
        siblings=("354",),
        max_sites=2,
    ),
    Profile(
        category="124",
        weight=9.0,
        owners=("municipal", "mutualist", "association"),
        names=("CENTRE DE SANTE {patron}", "CENTRE MUNICIPAL DE SANTE DE {city}"),
        shape="flat",
        elementary_units=(1, 4),
        templates=AMBULATORY_UNITS,
        siblings=("124",),
        max_sites=3,
    ),
    Profile(
        category="603",
        weight=6.0,
        owners=("civil",),
        names=("MAISON DE SANTE PLURIPROFESSIONNELLE DE {city}", "MSP {place}"),
        shape="flat",
        elementary_units=(1, 3),
        templates=AMBULATORY_UNITS,
    ),
)
#: Legal-entity kinds: TRE_R72 legal statuses to pick from and name templates.
OWNERS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "chu": (("15",), ("CENTRE HOSPITALIER UNIVERSITAIRE DE {city}",)),
    "public_hospital": (("13", "14"), ("CENTRE HOSPITALIER DE {city}", "GROUPE HOSPITALIER {place}")),
    "public_social": (("21", "17"), ("EHPAD PUBLIC DE {city}", "CCAS DE {city}")),
    "association": (
        ("60", "61", "63"),
        ("ASSOCIATION {place}", "FONDATION {patron}", "ASSOCIATION {patron}"),
    ),
    "commercial": (("95", "73", "72"), ("SAS CLINIQUE {patron}", "GROUPE {surname} SANTE", "SA {place}")),
    "municipal": (("03",), ("COMMUNE DE {city}",)),
    "mutualist": (("47",), ("MUTUALITE FRANCAISE {city}",)),
    "civil": (("74",), ("SCM MAISON DE SANTE DE {city}", "SISA {place}")),
}

POLE_NAMES: Final = {
    "01": ("MEDECINE", "CHIRURGIE", "FEMME-MERE-ENFANT", "URGENCES-REANIMATION", "SPECIALITES MEDICALES"),
    "02": ("SOINS DE SUITE ET READAPTATION",),
    "03": ("PSYCHIATRIE ADULTE", "PSYCHIATRIE INFANTO-JUVENILE"),
    "04": ("GERIATRIE ET MEDICO-SOCIAL",),
    "05": ("CONSULTATIONS EXTERNES",),
}
PHONE_ZONES: Final = {
    "11": "1",
    "24": "2",
    "28": "2",
    "52": "2",
    "53": "2",
    "27": "3",
    "32": "3",
    "44": "3",
    "84": "4",
    "93": "4",
    "94": "4",
    "75": "5",
    "76": "5",
}
