"""Code systems and small clinical catalogues used by the synthetic population.

Every code below is a real code of its terminology (LOINC, SNOMED CT, ICD-10, CVX, ATC, CIP13 from
the BDPM, ANS NOS tables); the catalogues only choose a plausible subset for primary care in France.
Displays are French where the national terminology server gives French labels (LOINC via TRE_A04,
NOS tables), otherwise short French clinical wording.

Where a code is not verified against an official source it is said so next to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

# shared with the directory loader; re-exported for the generator modules
from hygie.domain.identity.nos import (
    FR_CORE_SD,
    IDENTIFIER_TYPE_SYSTEM,
    TRE_A03_CLASS,
    TRE_A07_VISIBILITY,
    TRE_G15_PROFESSION,
    TRE_R02_SECTOR,
    TRE_R09_CATEGORY,
    TRE_R13_COMMUNE,
    TRE_R22_ACTIVITY_KIND,
    TRE_R23_PRACTICE_MODE,
    TRE_R38_SPECIALTY,
    TRE_R66_CATEGORY,
    TRE_R256_MAIL_TYPE,
    nos,
)

# the shared systems are part of this module's surface for the generator modules
__all__ = [
    "FR_CORE_SD",
    "IDENTIFIER_TYPE_SYSTEM",
    "TRE_A03_CLASS",
    "TRE_A07_VISIBILITY",
    "TRE_G15_PROFESSION",
    "TRE_R02_SECTOR",
    "TRE_R09_CATEGORY",
    "TRE_R13_COMMUNE",
    "TRE_R22_ACTIVITY_KIND",
    "TRE_R23_PRACTICE_MODE",
    "TRE_R38_SPECIALTY",
    "TRE_R66_CATEGORY",
    "TRE_R256_MAIL_TYPE",
    "nos",
]

# --------------------------------------------------------------------------- code systems
LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
ICD10: Final = "http://hl7.org/fhir/sid/icd-10"
CVX: Final = "http://hl7.org/fhir/sid/cvx"
ATC: Final = "https://smt.esante.gouv.fr/terminologie-atc"
CIP13: Final = "https://smt.esante.gouv.fr/terminologie-bdpm"
UCUM: Final = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
ALLERGY_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY: Final = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
IHE_FORMAT_CODE: Final = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
IDENTIFIER_TYPE_FR: Final = IDENTIFIER_TYPE_SYSTEM
IDENTITY_STATUS: Final = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status"
IDENTITY_VALIDATION_MODE: Final = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-mode-validation-identity"


PROFILE_PATIENT_INS: Final = FR_CORE_SD + "fr-core-patient-ins"
PROFILE_PRACTITIONER: Final = FR_CORE_SD + "fr-core-practitioner"
PROFILE_PRACTITIONER_ROLE: Final = FR_CORE_SD + "fr-core-practitioner-role"
PROFILE_ORGANIZATION: Final = FR_CORE_SD + "fr-core-organization"
EXT_IDENTITY_RELIABILITY: Final = FR_CORE_SD + "fr-core-identity-reliability"
EXT_INSEE_CODE: Final = FR_CORE_SD + "fr-core-address-insee-code"
EXT_BIRTH_LIST_GIVEN_NAME: Final = FR_CORE_SD + "fr-core-patient-birth-list-given-name"
EXT_EMAIL_TYPE: Final = FR_CORE_SD + "fr-core-contact-point-email-type"
EXT_BIRTH_PLACE: Final = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
PROFILE_VITAL_SIGNS: Final = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
PROFILE_PDSM_DOCUMENT_REFERENCE: Final = (
    "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-comprehensive-document-reference"
)

RPPS_SYSTEM: Final = "https://rpps.esante.gouv.fr"
IDNAT_PS_SYSTEM: Final = "urn:oid:1.2.250.1.71.4.2.1"
IDNAT_STRUCT_SYSTEM: Final = "urn:oid:1.2.250.1.71.4.2.2"
FINESS_SYSTEM: Final = "https://finess.esante.gouv.fr"
SIRENE_SYSTEM: Final = "https://sirene.fr"


@dataclass(frozen=True, slots=True)
class Concept:
    """A code with its system and display."""

    system: str
    code: str
    display: str

    def coding(self) -> dict[str, str]:
        """The FHIR Coding."""
        return {"system": self.system, "code": self.code, "display": self.display}


# --------------------------------------------------------------------------- professions
@dataclass(frozen=True, slots=True)
class Profession:
    """A TRE_G15 profession, with its TRE_R38 specialty when the profession has one.

    ``mail_domain`` is the MSSanté operator domain used for the synthetic personal mailboxes;
    ``registrar`` is the registration authority (TRE_R60) shown in the RPPS extraction.
    """

    key: str
    code: str
    label: str
    specialty_code: str | None
    specialty_label: str | None
    mail_domain: str
    registrar: str
    title_code: str | None  # "DR" for doctors, pharmacists and dentists in the RPPS extraction


GP: Final = Profession("gp", "10", "Médecin", "SM54", "Médecine générale", "medecin.mssante.fr", "CNOM", "DR")
# SM04 / SM40: TRE_R38 codes as they appear in the RPPS extraction; labels not verified against the NOS.
CARDIOLOGIST: Final = Profession(
    "cardiologist",
    "10",
    "Médecin",
    "SM04",
    "Cardiologie et maladies vasculaires",
    "medecin.mssante.fr",
    "CNOM",
    "DR",
)
PEDIATRICIAN: Final = Profession(
    "pediatrician", "10", "Médecin", "SM40", "Pédiatrie", "medecin.mssante.fr", "CNOM", "DR"
)
PHARMACIST: Final = Profession(
    "pharmacist", "21", "Pharmacien", None, None, "pharmacien.mssante.fr", "CNOP", "DR"
)
NURSE: Final = Profession("nurse", "60", "Infirmier", None, None, "pro.mssante.fr", "ONI", None)
PHYSIOTHERAPIST: Final = Profession(
    "physiotherapist", "70", "Masseur-Kinésithérapeute", None, None, "pro.mssante.fr", "CNOMK", None
)
MIDWIFE: Final = Profession("midwife", "50", "Sage-Femme", None, None, "pro.mssante.fr", "CNOSF", None)

# --------------------------------------------------------------------------- conditions
ConditionKind = Literal["chronic", "acute"]


@dataclass(frozen=True, slots=True)
class ConditionDef:
    """A condition with its SNOMED CT and ICD-10 codes and the treatments it calls for."""

    key: str
    snomed: str
    icd10: str
    label: str
    kind: ConditionKind
    medications: tuple[str, ...] = ()

    def codeable(self) -> dict[str, object]:
        """CodeableConcept with both codings (SNOMED CT first) and the French label as text."""
        return {
            "coding": [
                {"system": SNOMED, "code": self.snomed, "display": self.label},
                {"system": ICD10, "code": self.icd10},
            ],
            "text": self.label,
        }


CONDITIONS: Final = {
    c.key: c
    for c in (
        ConditionDef(
            "hypertension", "38341003", "I10", "Hypertension artérielle", "chronic", ("amlodipine",)
        ),
        ConditionDef("diabetes2", "44054006", "E11.9", "Diabète de type 2", "chronic", ("metformine",)),
        ConditionDef("dyslipidemia", "55822004", "E78.5", "Hyperlipidémie", "chronic", ("atorvastatine",)),
        ConditionDef("asthma", "195967001", "J45.9", "Asthme", "chronic", ("salbutamol",)),
        ConditionDef(
            "copd",
            "13645005",
            "J44.9",
            "Bronchopneumopathie chronique obstructive",
            "chronic",
            ("tiotropium",),
        ),
        ConditionDef("depression", "35489007", "F32.9", "Épisode dépressif", "chronic", ("sertraline",)),
        ConditionDef("hypothyroidism", "40930008", "E03.9", "Hypothyroïdie", "chronic", ("levothyroxine",)),
        ConditionDef(
            "atrial_fibrillation", "49436004", "I48.9", "Fibrillation atriale", "chronic", ("apixaban",)
        ),
        ConditionDef(
            "knee_osteoarthritis", "239873007", "M17.9", "Gonarthrose", "chronic", ("doliprane1000",)
        ),
        ConditionDef("migraine", "37796009", "G43.9", "Migraine", "chronic", ("advil",)),
        ConditionDef("obesity", "414916001", "E66.9", "Obésité", "chronic"),
        ConditionDef(
            "pharyngitis", "195662009", "J02.9", "Pharyngite aiguë virale", "acute", ("doliprane500",)
        ),
        ConditionDef(
            "sinusitis", "15805002", "J01.9", "Sinusite aiguë", "acute", ("amoxicilline", "dafalgan")
        ),
        ConditionDef("bronchitis", "10509002", "J20.9", "Bronchite aiguë", "acute", ("doliprane1000",)),
        ConditionDef(
            "gastroenteritis", "25374005", "A09.9", "Gastro-entérite", "acute", ("imodium", "spasfon")
        ),
        ConditionDef("low_back_pain", "279039007", "M54.5", "Lombalgie", "acute", ("voltarene", "nurofen")),
        ConditionDef("allergic_rhinitis", "61582004", "J30.4", "Rhinite allergique", "acute", ("aerius",)),
        ConditionDef("uti", "68566005", "N39.0", "Infection urinaire", "acute", ("fosfomycine",)),
        ConditionDef(
            "pneumonia",
            "233604007",
            "J18.9",
            "Pneumopathie aiguë",
            "acute",
            ("amoxicilline", "doliprane1000"),
        ),
        ConditionDef(
            "heart_failure",
            "56675007",
            "I50.9",
            "Insuffisance cardiaque aiguë",
            "acute",
            ("furosemide",),
        ),
        ConditionDef("bronchiolitis", "4120002", "J21.9", "Bronchiolite aiguë", "acute"),
        ConditionDef("anxiety", "197480006", "F41.9", "Trouble anxieux", "acute", ("xanax",)),
    )
}


# --------------------------------------------------------------------------- medications
@dataclass(frozen=True, slots=True)
class MedicationDef:
    """A prescribable medicine: a BDPM presentation (CIP13) or an INN (*DCI*) prescription.

    Chronic treatments are prescribed in DCI (ATC + text only, as French law encourages); the
    branded presentations carry a real CIP13 code (checked against the BDPM, EAN-13 key valid).
    """

    key: str
    label: str
    atc: str
    atc_label: str
    dosage: str
    cip13: str | None = None
    days: int = 30
    quantity: int = 1

    def codeable(self) -> dict[str, object]:
        """``medicationCodeableConcept``: CIP13 (when branded) then ATC, with the label as text."""
        coding: list[dict[str, str]] = []
        if self.cip13:
            coding.append({"system": CIP13, "code": self.cip13, "display": self.label})
        coding.append({"system": ATC, "code": self.atc, "display": self.atc_label})
        return {"coding": coding, "text": self.label}


MEDICATIONS: Final = {
    m.key: m
    for m in (
        MedicationDef(
            "amlodipine",
            "Amlodipine 5 mg, comprimé",
            "C08CA01",
            "amlodipine",
            "1 comprimé le matin",
            days=90,
            quantity=3,
        ),
        MedicationDef(
            "metformine",
            "Metformine 1000 mg, comprimé pelliculé",
            "A10BA02",
            "metformine",
            "1 comprimé matin et soir au milieu des repas",
            days=90,
            quantity=3,
        ),
        MedicationDef(
            "atorvastatine",
            "Atorvastatine 20 mg, comprimé pelliculé",
            "C10AA05",
            "atorvastatine",
            "1 comprimé le soir",
            days=90,
            quantity=3,
        ),
        MedicationDef(
            "salbutamol",
            "Salbutamol 100 µg/dose, suspension pour inhalation",
            "R03AC02",
            "salbutamol",
            "2 bouffées en cas de gêne respiratoire, jusqu'à 4 fois par jour",
            days=90,
            quantity=1,
        ),
        MedicationDef(
            "tiotropium",
            "Tiotropium 2,5 µg/dose, solution pour inhalation",
            "R03BB04",
            "tiotropium",
            "2 bouffées une fois par jour, à heure fixe",
            days=90,
            quantity=3,
        ),
        MedicationDef(
            "sertraline",
            "Sertraline 50 mg, gélule",
            "N06AB06",
            "sertraline",
            "1 gélule le matin",
            days=28,
            quantity=1,
        ),
        MedicationDef(
            "levothyroxine",
            "Lévothyroxine sodique 75 µg, comprimé",
            "H03AA01",
            "lévothyroxine sodique",
            "1 comprimé le matin à jeun, 30 minutes avant le petit-déjeuner",
            days=90,
            quantity=3,
        ),
        MedicationDef(
            "apixaban",
            "Apixaban 5 mg, comprimé pelliculé",
            "B01AF02",
            "apixaban",
            "1 comprimé matin et soir",
            days=90,
            quantity=3,
        ),
        MedicationDef(
            "furosemide",
            "Furosémide 40 mg, comprimé sécable",
            "C03CA01",
            "furosémide",
            "1 comprimé le matin, surveillance du poids et de la kaliémie",
            days=30,
        ),
        MedicationDef(
            "amoxicilline",
            "Amoxicilline 1 g, comprimé dispersible",
            "J01CA04",
            "amoxicilline",
            "1 comprimé matin et soir pendant 7 jours",
            days=7,
        ),
        MedicationDef(
            "fosfomycine",
            "Fosfomycine trométamol 3 g, granulés pour solution buvable en sachet",
            "J01XX01",
            "fosfomycine",
            "1 sachet en prise unique, à distance des repas",
            days=1,
        ),
        MedicationDef(
            "doliprane1000",
            "DOLIPRANE 1000 mg, comprimé",
            "N02BE01",
            "paracétamol",
            "1 comprimé jusqu'à 3 fois par jour si douleur ou fièvre, espacer les prises de 6 heures",
            cip13="3400935955838",
            days=10,
            quantity=2,
        ),
        MedicationDef(
            "doliprane500",
            "DOLIPRANE 500 mg, comprimé",
            "N02BE01",
            "paracétamol",
            "1 à 2 comprimés jusqu'à 3 fois par jour si fièvre, pendant 5 jours",
            cip13="3400932320189",
            days=5,
        ),
        MedicationDef(
            "dafalgan",
            "DAFALGAN 1000 mg, comprimé pelliculé",
            "N02BE01",
            "paracétamol",
            "1 comprimé jusqu'à 3 fois par jour si douleur, pendant 5 jours",
            cip13="3400930170441",
            days=5,
        ),
        MedicationDef(
            "advil",
            "ADVIL 200 mg, comprimé enrobé",
            "M01AE01",
            "ibuprofène",
            "1 à 2 comprimés dès le début de la crise, sans dépasser 6 comprimés par jour",
            cip13="3400932959358",
            days=30,
        ),
        MedicationDef(
            "nurofen",
            "NUROFEN 200 mg, comprimé enrobé",
            "M01AE01",
            "ibuprofène",
            "1 comprimé 3 fois par jour au cours des repas pendant 5 jours",
            cip13="3400933964351",
            days=5,
        ),
        MedicationDef(
            "voltarene",
            "VOLTARENE 50 mg, comprimé enrobé gastro-résistant",
            "M01AB05",
            "diclofénac",
            "1 comprimé matin et soir au cours des repas pendant 5 jours",
            cip13="3400932351176",
            days=5,
        ),
        MedicationDef(
            "imodium",
            "IMODIUMCAPS 2 mg, gélule",
            "A07DA03",
            "lopéramide",
            "2 gélules puis 1 gélule après chaque selle liquide, sans dépasser 6 par jour",
            cip13="3400938571905",
            days=3,
        ),
        MedicationDef(
            "spasfon",
            "SPASFON, comprimé enrobé",
            "A03AX12",
            "phloroglucinol",
            "2 comprimés en cas de douleur, jusqu'à 3 fois par jour",
            cip13="3400930986080",
            days=5,
        ),
        MedicationDef(
            "aerius",
            "AERIUS 5 mg, comprimé pelliculé",
            "R06AX27",
            "desloratadine",
            "1 comprimé par jour pendant la période d'exposition aux pollens",
            cip13="3400935655769",
            days=30,
        ),
        MedicationDef(
            "xanax",
            "XANAX 0,50 mg, comprimé sécable",
            "N05BA12",
            "alprazolam",
            "1/2 comprimé le soir si anxiété, durée maximale 12 semaines",
            cip13="3400932644551",
            days=14,
        ),
    )
}


# --------------------------------------------------------------------------- allergies
@dataclass(frozen=True, slots=True)
class AllergyDef:
    """An allergen (SNOMED CT substance/organism) with its category and a typical reaction."""

    key: str
    snomed: str
    label: str
    category: Literal["food", "medication", "environment", "biologic"]
    reaction_snomed: str
    reaction_label: str
    criticality: Literal["low", "high", "unable-to-assess"]


ALLERGIES: Final = (
    AllergyDef("penicillin", "764146007", "Pénicilline", "medication", "126485001", "Urticaire", "high"),
    AllergyDef(
        "aspirin", "387458008", "Acide acétylsalicylique", "medication", "267036007", "Dyspnée", "high"
    ),
    AllergyDef("pollen", "256259004", "Pollens", "environment", "49727002", "Toux", "low"),
    AllergyDef(
        "dust_mite",
        "260147004",
        "Acariens de la poussière de maison",
        "environment",
        "49727002",
        "Toux",
        "low",
    ),
    AllergyDef("peanut", "762952008", "Arachide", "food", "39579001", "Anaphylaxie", "high"),
    AllergyDef("egg", "102263004", "Œuf", "food", "271807003", "Éruption cutanée", "low"),
    AllergyDef("cow_milk", "3718001", "Lait de vache", "food", "271807003", "Éruption cutanée", "low"),
    AllergyDef("latex", "111088007", "Latex", "environment", "126485001", "Urticaire", "low"),
    AllergyDef("bee_venom", "288328004", "Venin d'abeille", "biologic", "39579001", "Anaphylaxie", "high"),
)


# --------------------------------------------------------------------------- vaccines
@dataclass(frozen=True, slots=True)
class VaccineDef:
    """A vaccine of the French schedule: ATC always, CVX when a CVX code matches the French product."""

    key: str
    label: str
    atc: str
    cvx: str | None

    def codeable(self) -> dict[str, object]:
        """``vaccineCode``: CVX (when any) then ATC, with the French label as text."""
        coding: list[dict[str, str]] = []
        if self.cvx:
            coding.append({"system": CVX, "code": self.cvx})
        coding.append({"system": ATC, "code": self.atc})
        return {"coding": coding, "text": self.label}


VACCINES: Final = {
    v.key: v
    for v in (
        VaccineDef("hexa", "Vaccin hexavalent DTCaP-Hib-Hépatite B", "J07CA09", "146"),
        VaccineDef("pcv13", "Vaccin pneumococcique conjugué 13-valent", "J07AL02", "133"),
        VaccineDef("menc", "Vaccin méningococcique C conjugué", "J07AH07", "103"),
        VaccineDef("ror", "Vaccin rougeole-oreillons-rubéole (ROR)", "J07BD52", "03"),
        VaccineDef(
            "dtcap", "Rappel diphtérie-tétanos-coqueluche-poliomyélite (DTCaP/dTcaP)", "J07CA02", None
        ),
        VaccineDef("dtp", "Rappel diphtérie-tétanos-poliomyélite (dTP)", "J07CA01", None),
        VaccineDef("hpv", "Vaccin papillomavirus 9-valent", "J07BM03", "165"),
        VaccineDef("hepb", "Vaccin hépatite B", "J07BC01", "45"),
        VaccineDef("flu", "Vaccin grippe saisonnière inactivé", "J07BB02", "150"),
        VaccineDef("covid", "Vaccin COVID-19 à ARNm", "J07BN01", "208"),
    )
}


# --------------------------------------------------------------------------- vital signs
@dataclass(frozen=True, slots=True)
class VitalDef:
    """A measure: LOINC code(s), FHIR observation category, UCUM unit, and French display."""

    key: str
    loinc: tuple[str, ...]
    label: str
    category: Literal["vital-signs", "laboratory", "activity"]
    unit: str
    ucum: str

    def codeable(self) -> dict[str, object]:
        """The Observation.code, all LOINC codings (e.g. SpO2 59408-5 and 2708-6)."""
        return {"coding": [{"system": LOINC, "code": c} for c in self.loinc], "text": self.label}


VITALS: Final = {
    v.key: v
    for v in (
        VitalDef("weight", ("29463-7",), "Poids", "vital-signs", "kg", "kg"),
        VitalDef("height", ("8302-2",), "Taille", "vital-signs", "cm", "cm"),
        VitalDef("heart_rate", ("8867-4",), "Fréquence cardiaque", "vital-signs", "/min", "/min"),
        VitalDef("temperature", ("8310-5",), "Température corporelle", "vital-signs", "°C", "Cel"),
        VitalDef("spo2", ("59408-5", "2708-6"), "Saturation en oxygène", "vital-signs", "%", "%"),
        VitalDef("glucose", ("2339-0",), "Glycémie", "laboratory", "mg/dL", "mg/dL"),
        VitalDef("steps", ("41950-7",), "Nombre de pas sur 24 heures", "activity", "pas/jour", "1/(24.h)"),
    )
}
BP_PANEL: Final = Concept(LOINC, "85354-9", "Pression artérielle")
SYSTOLIC: Final = Concept(LOINC, "8480-6", "Pression artérielle systolique")
DIASTOLIC: Final = Concept(LOINC, "8462-4", "Pression artérielle diastolique")


# --------------------------------------------------------------------------- documents
@dataclass(frozen=True, slots=True)
class DocumentTypeDef:
    """A document type (LOINC, JDV_J07 label) with its TRE_A03 class."""

    loinc: str
    label: str
    class_code: str
    class_label: str


DOC_CONSULTATION: Final = DocumentTypeDef("11488-4", "Compte rendu de consultation", "10", "Compte rendu")
DOC_SUMMARY: Final = DocumentTypeDef("34133-9", "Synthèse d'épisode de soins", "11", "Synthèse")
DOC_DISCHARGE: Final = DocumentTypeDef("18842-5", "Lettre de sortie", "10", "Compte rendu")
DOC_PRESCRIPTION: Final = DocumentTypeDef("57833-6", "Ordonnance de produits de santé", "42", "Prescription")

ENCOUNTER_TYPES: Final = {
    "consultation": Concept(SNOMED, "11429006", "Consultation"),
    "checkup": Concept(SNOMED, "185349003", "Consultation de suivi"),
    "hospital": Concept(SNOMED, "32485007", "Hospitalisation"),
    "emergency": Concept(SNOMED, "50849002", "Passage aux urgences"),
    "vaccination": Concept(SNOMED, "33879002", "Vaccination"),
}
