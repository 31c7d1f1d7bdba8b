"""The health profile (*carnet de santé*): what a person adds to it themselves, as FHIR resources.

A person adds, changes and removes their own entries — an allergy or intolerance
(``AllergyIntolerance``), a medical history item (``Condition``), a surgery (``Procedure``), a
current treatment (``MedicationStatement``), a vaccination (``Immunization``), their blood group
(``Observation`` LOINC 882-1). Each kind is described here by its form fields; :func:`build`
checks what was typed (French message per field, nothing written on error) and makes the
resource, naming the person who writes (the patient, or the relative acting for them) in the
element the access rules read as the entry's author (``recorder``/``asserter``, ``performer``,
``informationSource``): that is what lets them change it later, and what keeps the entries of
professionals read-only for them (``fhir/targets.py``).

Codes: SNOMED CT for allergens, conditions, surgeries and blood groups (with CIM-10 for
conditions), ATC and CVX for vaccines (from the schedule, :mod:`hygie.domain.ens.vaccination`).
A person may always write something not in the lists ("Autre", as text only); a code that is not
in a list is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from hygie.domain.ens.vaccination import schedule

__all__ = [
    "ALLERGENS",
    "BLOOD_GROUPS",
    "BLOOD_GROUP_LOINC",
    "CONDITIONS",
    "KINDS",
    "LOINC",
    "OTHER",
    "SNOMED",
    "SURGERIES",
    "Choice",
    "EntryKind",
    "build",
    "form_values",
    "parse_day",
    "summary",
]

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
IMMUNIZATION_ORIGIN = "http://terminology.hl7.org/CodeSystem/immunization-origin"
BLOOD_GROUP_LOINC = "882-1"
OTHER = "autre"
_NAME_MAX = 200


@dataclass(frozen=True, slots=True)
class Choice:
    """An item of a list: its code (None for "Autre") and French label."""

    key: str
    label: str
    code: str | None = None
    extra: str | None = None  # allergens: the category; conditions: the CIM-10 code


ALLERGENS: tuple[Choice, ...] = (
    Choice("penicilline", "Pénicilline", "764146007", "medication"),
    Choice("amoxicilline", "Amoxicilline", "372687004", "medication"),
    Choice("aspirine", "Aspirine (acide acétylsalicylique)", "387458008", "medication"),
    Choice("ibuprofene", "Ibuprofène", "387207008", "medication"),
    Choice("arachide", "Arachide", "762952008", "food"),
    Choice("oeuf", "Œuf", "102263004", "food"),
    Choice("lait", "Lait de vache", "3718001", "food"),
    Choice("fruits-de-mer", "Fruits de mer", "44027008", "food"),
    Choice("pollens", "Pollens", "256259004", "environment"),
    Choice("acariens", "Acariens", "260147004", "environment"),
    Choice("latex", "Latex", "111088007", "environment"),
    Choice("venin-abeille", "Venin d’abeille", "288328004", "biologic"),
)
ALLERGY_CATEGORIES = {
    "food": "Aliment",
    "medication": "Médicament",
    "environment": "Environnement",
    "biologic": "Produit biologique",
}
ALLERGY_TYPES = {"allergy": "Allergie", "intolerance": "Intolérance"}
CRITICALITIES = {"low": "Faible", "high": "Élevée", "unable-to-assess": "Je ne sais pas"}

CONDITIONS: tuple[Choice, ...] = (
    Choice("hypertension", "Hypertension artérielle", "38341003", "I10"),
    Choice("diabete-1", "Diabète de type 1", "46635009", "E10.9"),
    Choice("diabete-2", "Diabète de type 2", "44054006", "E11.9"),
    Choice("cholesterol", "Excès de cholestérol (hyperlipidémie)", "55822004", "E78.5"),
    Choice("asthme", "Asthme", "195967001", "J45.9"),
    Choice("bpco", "Bronchopneumopathie chronique obstructive (BPCO)", "13645005", "J44.9"),
    Choice("hypothyroidie", "Hypothyroïdie", "40930008", "E03.9"),
    Choice("migraine", "Migraine", "37796009", "G43.9"),
    Choice("depression", "Dépression", "35489007", "F32.9"),
    Choice("fibrillation", "Fibrillation atriale", "49436004", "I48.9"),
    Choice("insuffisance-cardiaque", "Insuffisance cardiaque", "84114007", "I50.9"),
    Choice("infarctus", "Infarctus du myocarde", "22298006", "I21.9"),
    Choice("avc", "Accident vasculaire cérébral", "230690007", "I64"),
    Choice("epilepsie", "Épilepsie", "84757009", "G40.9"),
    Choice("cancer-sein", "Cancer du sein", "254837009", "C50.9"),
)
SURGERIES: tuple[Choice, ...] = (
    Choice("appendicectomie", "Appendicectomie", "80146002"),
    Choice("cholecystectomie", "Ablation de la vésicule biliaire (cholécystectomie)", "38102005"),
    Choice("amygdalectomie", "Ablation des amygdales (amygdalectomie)", "173422009"),
    Choice("cesarienne", "Césarienne", "11466000"),
    Choice("prothese-hanche", "Prothèse totale de hanche", "52734007"),
    Choice("prothese-genou", "Prothèse totale de genou", "609588000"),
    Choice("cataracte", "Opération de la cataracte", "110473004"),
)
BLOOD_GROUPS: tuple[Choice, ...] = (
    Choice("A+", "A positif (A+)", "278149003"),
    Choice("A-", "A négatif (A−)", "278152006"),
    Choice("B+", "B positif (B+)", "278150003"),
    Choice("B-", "B négatif (B−)", "278153001"),
    Choice("AB+", "AB positif (AB+)", "278151004"),
    Choice("AB-", "AB négatif (AB−)", "278154007"),
    Choice("O+", "O positif (O+)", "278147001"),
    Choice("O-", "O négatif (O−)", "278148006"),
)


@dataclass(frozen=True, slots=True)
class EntryKind:
    key: str  # in URLs: /ens/carnet/<key>/…
    resource_type: str
    title: str  # "Allergie ou intolérance"
    section: str  # the heading of its part of the page
    added: str  # the message after adding one


KINDS: dict[str, EntryKind] = {
    k.key: k
    for k in (
        EntryKind(
            "allergie",
            "AllergyIntolerance",
            "Allergie ou intolérance",
            "Allergies et intolérances",
            "Allergie ajoutée.",
        ),
        EntryKind(
            "antecedent", "Condition", "Antécédent médical", "Antécédents médicaux", "Antécédent ajouté."
        ),
        EntryKind(
            "chirurgie",
            "Procedure",
            "Opération chirurgicale",
            "Antécédents chirurgicaux",
            "Opération ajoutée.",
        ),
        EntryKind(
            "traitement", "MedicationStatement", "Traitement", "Traitements en cours", "Traitement ajouté."
        ),
        EntryKind("vaccin", "Immunization", "Vaccination", "Vaccinations", "Vaccination ajoutée."),
        EntryKind(
            "groupe-sanguin", "Observation", "Groupe sanguin", "Groupe sanguin", "Groupe sanguin enregistré."
        ),
    )
}

_DAY_FR = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def parse_day(
    text: str, *, today: date, birth: date | None = None, required: bool = False, what: str = "La date"
) -> tuple[date | None, str | None]:
    """A past day typed in a form (``AAAA-MM-JJ`` from a date field, or ``JJ/MM/AAAA``).

    Returns (day, None) or (None, a French sentence saying what is wrong)."""
    text = text.strip()
    if not text:
        return None, (f"{what} est obligatoire." if required else None)
    try:
        match = _DAY_FR.match(text)
        day = (
            date(int(match.group(3)), int(match.group(2)), int(match.group(1)))
            if match
            else date.fromisoformat(text)
        )
    except ValueError:
        return None, f"{what} n’est pas une date valide : écrivez-la sous la forme JJ/MM/AAAA."
    if day > today:
        return None, f"{what} ne peut pas être dans le futur."
    if birth is not None and day < birth:
        return None, f"{what} ne peut pas être avant votre naissance."
    if day.year < 1900:
        return None, f"{what} n’est pas une date valide : écrivez-la sous la forme JJ/MM/AAAA."
    return day, None


def _text(values: Mapping[str, str], name: str) -> str:
    return " ".join(str(values.get(name, "")).split())


def _choice(
    values: Mapping[str, str],
    name: str,
    choices: tuple[Choice, ...],
    errors: dict[str, str],
    *,
    other_field: str | None,
    what: str,
) -> tuple[Choice | None, str]:
    """The chosen item (None with a free text for "Autre"), or an error in ``errors``."""
    key = _text(values, name)
    if not key:
        errors[name] = f"Choisissez {what}."
        return None, ""
    if key == OTHER and other_field is not None:
        other = _text(values, other_field)
        if not other:
            errors[other_field] = "Précisez ce que c’est."
        elif len(other) > _NAME_MAX:
            errors[other_field] = f"Ce texte est trop long ({_NAME_MAX} caractères au plus)."
        return None, other
    found = next((c for c in choices if c.key == key), None)
    if found is None:
        errors[name] = f"Choisissez {what} dans la liste."
        return None, ""
    return found, found.label


def _pick(
    values: Mapping[str, str], name: str, allowed: Mapping[str, str], errors: dict[str, str], what: str
) -> str:
    value = _text(values, name)
    if value not in allowed:
        errors[name] = f"Choisissez {what} dans la liste."
    return value


def _concept(choice: Choice | None, text: str, *, icd10: bool = False) -> dict[str, Any]:
    if choice is None or choice.code is None:
        return {"text": text}
    coding = [{"system": SNOMED, "code": choice.code, "display": choice.label}]
    if icd10 and choice.extra:
        coding.append({"system": ICD10, "code": choice.extra})
    return {"coding": coding, "text": choice.label}


def _actor(actor_ref: str) -> dict[str, str]:
    return {"reference": actor_ref}


def build(
    kind: str,
    values: Mapping[str, str],
    *,
    patient_ref: str,
    actor_ref: str,
    today: date,
    now: str,
    birth: date | None = None,
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The resource for a form of ``kind`` (or None) and the French errors per field.

    ``now`` is the recording instant (FHIR dateTime); ``actor_ref`` who records it."""
    errors: dict[str, str] = {}
    builder = _BUILDERS[kind]
    resource = builder(values, errors, patient_ref, actor_ref, today, now, birth)
    return (None, errors) if errors else (resource, errors)


def _allergy(
    values: Mapping[str, str],
    errors: dict[str, str],
    patient_ref: str,
    actor_ref: str,
    today: date,
    now: str,
    birth: date | None,
) -> dict[str, Any]:
    choice, text = _choice(values, "substance", ALLERGENS, errors, other_field="autre", what="une substance")
    kind = _pick(values, "type", ALLERGY_TYPES, errors, "s’il s’agit d’une allergie ou d’une intolérance")
    criticality = _pick(values, "gravite", CRITICALITIES, errors, "la gravité")
    category = choice.extra if choice else _text(values, "categorie")
    if choice is None and category and category not in ALLERGY_CATEGORIES:
        errors["categorie"] = "Choisissez le type de substance dans la liste."
    reaction = _text(values, "reaction")
    if len(reaction) > _NAME_MAX:
        errors["reaction"] = f"Ce texte est trop long ({_NAME_MAX} caractères au plus)."
    onset, problem = parse_day(values.get("debut", ""), today=today, birth=birth, what="La date de début")
    if problem:
        errors["debut"] = problem
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": ALLERGY_VERIFICATION, "code": "unconfirmed"}]},
        "type": kind,
        "criticality": criticality,
        "code": _concept(choice, text),
        "patient": {"reference": patient_ref},
        "recordedDate": now,
        "recorder": _actor(actor_ref),
        "asserter": _actor(actor_ref),
    }
    if category:
        resource["category"] = [category]
    if onset:
        resource["onsetDateTime"] = onset.isoformat()
    if reaction:
        resource["reaction"] = [{"manifestation": [{"text": reaction}]}]
    return resource


def _condition(
    values: Mapping[str, str],
    errors: dict[str, str],
    patient_ref: str,
    actor_ref: str,
    today: date,
    now: str,
    birth: date | None,
) -> dict[str, Any]:
    choice, text = _choice(values, "maladie", CONDITIONS, errors, other_field="autre", what="une maladie")
    status = _pick(values, "statut", {"active": "", "resolved": ""}, errors, "si c’est toujours le cas")
    onset, problem = parse_day(values.get("debut", ""), today=today, birth=birth, what="La date de début")
    if problem:
        errors["debut"] = problem
    end, problem = parse_day(values.get("fin", ""), today=today, birth=birth, what="La date de guérison")
    if problem:
        errors["fin"] = problem
    elif end and status != "resolved":
        errors["fin"] = "Une date de guérison ne va qu’avec une maladie guérie."
    elif end and onset and end < onset:
        errors["fin"] = "La date de guérison ne peut pas être avant la date de début."
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": status or "active"}]},
        "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": "unconfirmed"}]},
        "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "problem-list-item"}]}],
        "code": _concept(choice, text, icd10=True),
        "subject": {"reference": patient_ref},
        "recordedDate": now,
        "recorder": _actor(actor_ref),
        "asserter": _actor(actor_ref),
    }
    if onset:
        resource["onsetDateTime"] = onset.isoformat()
    if end:
        resource["abatementDateTime"] = end.isoformat()
    return resource


def _procedure(
    values: Mapping[str, str],
    errors: dict[str, str],
    patient_ref: str,
    actor_ref: str,
    today: date,
    now: str,
    birth: date | None,
) -> dict[str, Any]:
    choice, text = _choice(values, "operation", SURGERIES, errors, other_field="autre", what="une opération")
    day, problem = parse_day(
        values.get("date", ""), today=today, birth=birth, required=True, what="La date de l’opération"
    )
    if problem:
        errors["date"] = problem
    place = _text(values, "lieu")
    if len(place) > _NAME_MAX:
        errors["lieu"] = f"Ce texte est trop long ({_NAME_MAX} caractères au plus)."
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "status": "completed",
        "category": {"coding": [{"system": SNOMED, "code": "387713003", "display": "Surgical procedure"}]},
        "code": _concept(choice, text),
        "subject": {"reference": patient_ref},
        "recorder": _actor(actor_ref),
        "asserter": _actor(actor_ref),
    }
    if day:
        resource["performedDateTime"] = day.isoformat()
    if place:
        resource["location"] = {"display": place}
    return resource


def _treatment(
    values: Mapping[str, str],
    errors: dict[str, str],
    patient_ref: str,
    actor_ref: str,
    today: date,
    now: str,
    birth: date | None,
) -> dict[str, Any]:
    name = _text(values, "medicament")
    if not name:
        errors["medicament"] = "Écrivez le nom du médicament."
    elif len(name) > _NAME_MAX:
        errors["medicament"] = f"Ce texte est trop long ({_NAME_MAX} caractères au plus)."
    dosage = _text(values, "posologie")
    if len(dosage) > 500:
        errors["posologie"] = "Ce texte est trop long (500 caractères au plus)."
    status = _pick(values, "statut", {"active": "", "stopped": ""}, errors, "si vous le prenez toujours")
    since, problem = parse_day(values.get("debut", ""), today=today, birth=birth, what="La date de début")
    if problem:
        errors["debut"] = problem
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": status or "active",
        "medicationCodeableConcept": {"text": name},
        "subject": {"reference": patient_ref},
        "dateAsserted": now,
        "informationSource": _actor(actor_ref),
    }
    if since:
        resource["effectivePeriod"] = {"start": since.isoformat()}
    if dosage:
        resource["dosage"] = [{"text": dosage}]
    return resource


def _immunization(
    values: Mapping[str, str],
    errors: dict[str, str],
    patient_ref: str,
    actor_ref: str,
    today: date,
    now: str,
    birth: date | None,
) -> dict[str, Any]:
    key = _text(values, "vaccin")
    vaccine = schedule().vaccine(key) if key else None
    if not key:
        errors["vaccin"] = "Choisissez un vaccin."
    elif vaccine is None:
        errors["vaccin"] = "Choisissez un vaccin dans la liste."
    day, problem = parse_day(
        values.get("date", ""), today=today, birth=birth, required=True, what="La date de la vaccination"
    )
    if problem:
        errors["date"] = problem
    lot = _text(values, "lot")
    if len(lot) > 40:
        errors["lot"] = "Le numéro de lot est trop long (40 caractères au plus)."
    resource: dict[str, Any] = {
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": vaccine.codeable() if vaccine else {"text": key},
        "patient": {"reference": patient_ref},
        "occurrenceDateTime": day.isoformat() if day else "",
        "recorded": now,
        "primarySource": False,
        "reportOrigin": {
            "coding": [{"system": IMMUNIZATION_ORIGIN, "code": "record"}],
            "text": "Déclarée par la personne",
        },
        # who wrote this entry (the access rules read it as its author): not the vaccinator
        "performer": [{"function": {"text": "Saisie par la personne"}, "actor": _actor(actor_ref)}],
    }
    if lot:
        resource["lotNumber"] = lot
    return resource


def _blood_group(
    values: Mapping[str, str],
    errors: dict[str, str],
    patient_ref: str,
    actor_ref: str,
    today: date,
    now: str,
    birth: date | None,
) -> dict[str, Any]:
    choice, _ = _choice(values, "groupe", BLOOD_GROUPS, errors, other_field=None, what="un groupe sanguin")
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory"}]}],
        "code": {
            "coding": [
                {"system": LOINC, "code": BLOOD_GROUP_LOINC, "display": "ABO and Rh group [Type] in Blood"}
            ],
            "text": "Groupe sanguin",
        },
        "subject": {"reference": patient_ref},
        "effectiveDateTime": now,
        "performer": [_actor(actor_ref)],
        "valueCodeableConcept": _concept(choice, ""),
    }


_BUILDERS = {
    "allergie": _allergy,
    "antecedent": _condition,
    "chirurgie": _procedure,
    "traitement": _treatment,
    "vaccin": _immunization,
    "groupe-sanguin": _blood_group,
}


# --------------------------------------------------------------------------- reading back
def _coded_key(concept: Any, choices: tuple[Choice, ...]) -> tuple[str, str]:
    """(choice key, "Autre" text) of a CodeableConcept written by :func:`build`."""
    concept = concept if isinstance(concept, dict) else {}
    codes = {c.get("code") for c in concept.get("coding", []) or [] if isinstance(c, dict)}
    found = next((c for c in choices if c.code in codes), None)
    if found is not None:
        return found.key, ""
    return OTHER, str(concept.get("text", ""))


def _day(value: Any) -> str:
    return str(value)[:10] if isinstance(value, str) else ""


def form_values(kind: str, resource: Mapping[str, Any]) -> dict[str, str]:
    """The form's values for an existing entry (to change it)."""
    if kind == "allergie":
        key, other = _coded_key(resource.get("code"), ALLERGENS)
        reaction = ""
        for r in resource.get("reaction", []) or []:
            for m in r.get("manifestation", []) or []:
                reaction = reaction or str(m.get("text", ""))
        return {
            "substance": key,
            "autre": other,
            "categorie": (resource.get("category") or [""])[0] if key == OTHER else "",
            "type": str(resource.get("type", "")),
            "gravite": str(resource.get("criticality", "")),
            "reaction": reaction,
            "debut": _day(resource.get("onsetDateTime")),
        }
    if kind == "antecedent":
        key, other = _coded_key(resource.get("code"), CONDITIONS)
        status = ((resource.get("clinicalStatus") or {}).get("coding") or [{}])[0].get("code", "active")
        return {
            "maladie": key,
            "autre": other,
            "statut": "resolved" if status in ("resolved", "inactive", "remission") else "active",
            "debut": _day(resource.get("onsetDateTime")),
            "fin": _day(resource.get("abatementDateTime")),
        }
    if kind == "chirurgie":
        key, other = _coded_key(resource.get("code"), SURGERIES)
        return {
            "operation": key,
            "autre": other,
            "date": _day(resource.get("performedDateTime")),
            "lieu": str((resource.get("location") or {}).get("display", "")),
        }
    if kind == "traitement":
        return {
            "medicament": str((resource.get("medicationCodeableConcept") or {}).get("text", "")),
            "posologie": str(((resource.get("dosage") or [{}])[0]).get("text", "")),
            "statut": "stopped" if resource.get("status") in ("stopped", "completed") else "active",
            "debut": _day((resource.get("effectivePeriod") or {}).get("start")),
        }
    if kind == "vaccin":
        plan = schedule()
        codes = {
            (c.get("system"), c.get("code"))
            for c in (resource.get("vaccineCode") or {}).get("coding", []) or []
            if isinstance(c, dict)
        }
        vaccine = next((v for v in plan.vaccines if codes & set(v.codes)), None)
        return {
            "vaccin": vaccine.key if vaccine else "",
            "date": _day(resource.get("occurrenceDateTime")),
            "lot": str(resource.get("lotNumber", "")),
        }
    key, _ = _coded_key(resource.get("valueCodeableConcept"), BLOOD_GROUPS)
    return {"groupe": key if key != OTHER else ""}


def _concept_text(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding", []) or []:
        if isinstance(coding, dict) and coding.get("display"):
            return str(coding["display"])
    return ""


@dataclass(frozen=True, slots=True)
class Summary:
    """What a list shows of an entry: a title, details, a date and a state."""

    title: str
    details: str
    day: str  # ISO day or ""
    state: Literal["active", "inactive"]


def summary(kind: str, resource: Mapping[str, Any]) -> Summary:
    """How an entry (the person's or a professional's) reads in the carnet."""
    if kind == "allergie":
        parts = [ALLERGY_TYPES.get(str(resource.get("type")), "")]
        criticality = resource.get("criticality")
        if criticality in ("low", "high"):
            parts.append(f"gravité {CRITICALITIES[str(criticality)].lower()}")
        for r in resource.get("reaction", []) or []:
            for m in r.get("manifestation", []) or []:
                text = _concept_text(m)
                if text:
                    parts.append(f"réaction : {text}")
        status = ((resource.get("clinicalStatus") or {}).get("coding") or [{}])[0].get("code", "active")
        return Summary(
            _concept_text(resource.get("code")) or "Allergie",
            ", ".join(p for p in parts if p),
            _day(resource.get("onsetDateTime")),
            "active" if status == "active" else "inactive",
        )
    if kind == "antecedent":
        status = ((resource.get("clinicalStatus") or {}).get("coding") or [{}])[0].get("code", "active")
        active = status in ("active", "recurrence", "relapse")
        end = _day(resource.get("abatementDateTime"))
        details = "En cours" if active else ("Guéri" + (f" (le {end})" if end else ""))
        return Summary(
            _concept_text(resource.get("code")) or "Antécédent",
            details,
            _day(resource.get("onsetDateTime")),
            "active" if active else "inactive",
        )
    if kind == "chirurgie":
        place = str((resource.get("location") or {}).get("display", ""))
        return Summary(
            _concept_text(resource.get("code")) or "Opération",
            place,
            _day(resource.get("performedDateTime") or (resource.get("performedPeriod") or {}).get("start")),
            "inactive",
        )
    if kind == "traitement":
        if resource.get("resourceType") == "MedicationRequest":
            dosage = ((resource.get("dosageInstruction") or [{}])[0]).get("text", "")
            return Summary(
                _concept_text(resource.get("medicationCodeableConcept")) or "Médicament",
                str(dosage),
                _day(resource.get("authoredOn")),
                "active",
            )
        dosage = ((resource.get("dosage") or [{}])[0]).get("text", "")
        return Summary(
            _concept_text(resource.get("medicationCodeableConcept")) or "Médicament",
            str(dosage),
            _day((resource.get("effectivePeriod") or {}).get("start") or resource.get("effectiveDateTime")),
            "active" if resource.get("status") in ("active", "intended", None) else "inactive",
        )
    if kind == "vaccin":
        lot = resource.get("lotNumber")
        return Summary(
            _concept_text(resource.get("vaccineCode")) or "Vaccin",
            f"lot {lot}" if lot else "",
            _day(resource.get("occurrenceDateTime")),
            "inactive",
        )
    return Summary(
        "Groupe sanguin",
        _concept_text(resource.get("valueCodeableConcept")) or "—",
        _day(resource.get("effectiveDateTime") or resource.get("issued")),
        "active",
    )
