"""Synthetic citizens: an INS identity and a plausible care history, as one FHIR transaction Bundle.

A citizen is drawn in two steps:

1. :func:`draw_identity` — sex, birth date, birth names, birth place (a commune of the extract,
   sometimes abroad), NIR (or NIA for some people born abroad) consistent with all of these, an
   identity-trust status (PROV/RECUP/VALI/QUAL), a home address and contact points.
2. :class:`HistoryBuilder` — from ``start_year`` to ``end_year``: chronic conditions drawn from age
   and sex, GP visits with vital signs (time series with growth curves for children, weight drift,
   blood pressure rising with age and falling under treatment, glycaemia under metformin…), acute
   episodes, prescriptions (real CIP13 presentations or INN prescriptions with ATC codes and French
   dosage text), the French vaccination schedule, allergies, hospital stays and emergency visits, a
   connected pedometer for some adults, and documents (consultation reports, prescriptions,
   discharge letters, summaries) each rendered as a small French PDF held in a Binary.

The Bundle uses ``urn:uuid:`` fullUrls and POST entries; resources inside the Bundle refer to each
other by those URNs, and to the shared directory as ``Practitioner/<id>`` / ``Organization/<id>``
(see :mod:`hygie.demo.directory`). All randomness comes from the ``random.Random`` passed in.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal, cast

from hygie.demo import codes
from hygie.demo.codes import ConditionDef, DocumentTypeDef, MedicationDef
from hygie.demo.common import (
    Street,
    ascii_slug,
    fhir_datetime,
    fr_date,
    mobile_phone,
    pick_street,
    random_uuid,
)
from hygie.demo.directory import Directory, Hub, Professional, Structure
from hygie.demo.pdf import PdfDocument, render_pdf
from hygie.demo.reference import Commune, load_communes, load_first_names, load_surnames
from hygie.domain.identity.nir import (
    INS_NIA_SYSTEM,
    INS_NIR_DEMO_SYSTEM,
    INS_NIR_SYSTEM,
    INS_NIR_TEST_SYSTEM,
    build_nir,
)

__all__ = [
    "CitizenSpec",
    "HistoryBuilder",
    "Identity",
    "IdentityStatus",
    "InsFlavour",
    "draw_identity",
    "identity_from_spec",
    "patient_bundle",
]

IdentityStatus = Literal["PROV", "RECUP", "VALI", "QUAL"]
InsFlavour = Literal["nir", "demo", "test"]
Gender = Literal["male", "female"]

_INS_SYSTEMS: Final = {
    "nir": (INS_NIR_SYSTEM, "INS-NIR"),
    "demo": (INS_NIR_DEMO_SYSTEM, "INS-NIR-DEMO"),
    "test": (INS_NIR_TEST_SYSTEM, "INS-NIR-TEST"),
}
# INSEE country codes (99 + 3 digits) of frequent birth countries abroad.
_COUNTRIES: Final = (
    ("99350", "Maroc"),
    ("99352", "Algérie"),
    ("99351", "Tunisie"),
    ("99139", "Portugal"),
    ("99134", "Espagne"),
    ("99127", "Italie"),
    ("99131", "Belgique"),
    ("99109", "Allemagne"),
    ("99341", "Sénégal"),
)
_STATUS_WEIGHTS: Final = (("QUAL", 60), ("RECUP", 15), ("VALI", 10), ("PROV", 15))
_VALIDATION_MODES: Final = ("CN", "CN", "PA", "eCN", "AV", "CS")
_CHILD_VALIDATION_MODES: Final = ("LEP", "LECV", "AN")
# Reference growth of a child: (age in years, height in cm, BMI); scaled to the adult target height.
_GROWTH: Final = (
    (0.0, 50.0, 13.5),
    (0.5, 67.0, 17.0),
    (1.0, 75.0, 17.2),
    (2.0, 87.0, 16.3),
    (3.0, 96.0, 15.8),
    (4.0, 103.0, 15.5),
    (6.0, 116.0, 15.4),
    (8.0, 128.0, 16.0),
    (10.0, 139.0, 17.0),
    (12.0, 150.0, 18.0),
    (14.0, 162.0, 19.3),
    (16.0, 169.0, 20.4),
    (18.0, 172.0, 21.5),
)
# Chronic conditions: (key, minimum onset age, probability by age at the end of the period, sex or None)
_CHRONIC_RULES: Final = (
    ("hypertension", 35, lambda age: min(0.6, max(0.0, (age - 30) / 80)), None),
    ("diabetes2", 40, lambda age: 0.14 if age >= 50 else 0.05, None),
    ("dyslipidemia", 40, lambda age: 0.25 if age >= 50 else 0.08, None),
    ("asthma", 3, lambda age: 0.08, None),
    ("copd", 45, lambda age: 0.07 if age >= 55 else 0.02, None),
    ("depression", 18, lambda age: 0.08, None),
    ("hypothyroidism", 25, lambda age: 0.09, "female"),
    ("atrial_fibrillation", 60, lambda age: 0.12 if age >= 70 else 0.04, None),
    ("knee_osteoarthritis", 50, lambda age: 0.3 if age >= 65 else 0.1, None),
    ("migraine", 12, lambda age: 0.1 if age < 60 else 0.03, "female"),
)
_ACUTE_ADULT: Final = (
    "pharyngitis",
    "sinusitis",
    "bronchitis",
    "gastroenteritis",
    "low_back_pain",
    "allergic_rhinitis",
    "anxiety",
    "uti",
)
_ACUTE_CHILD: Final = ("pharyngitis", "gastroenteritis", "bronchitis", "allergic_rhinitis")
_RESPIRATORY: Final = frozenset({"asthma", "copd", "bronchitis", "pneumonia", "bronchiolitis", "sinusitis"})
_EVOLUTION: Final = {
    "heart_failure": "Régression des signes congestifs sous diurétique intraveineux puis oral. "
    "Retour à domicile avec surveillance du poids.",
    "bronchiolitis": "Désobstruction rhinopharyngée et fractionnement de l'alimentation, "
    "sevrage de l'oxygène en 48 heures. Retour à domicile.",
    "": "Évolution favorable sous traitement, apyrexie obtenue. Retour à domicile autorisé.",
}
_PSYCHIATRIC: Final = frozenset({"depression", "anxiety"})
_PSYCHOTROPIC: Final = frozenset({"sertraline", "xanax"})
_FEVERISH: Final = frozenset({"pharyngitis", "sinusitis", "bronchitis", "pneumonia", "bronchiolitis", "uti"})


# --------------------------------------------------------------------------- identity
@dataclass(frozen=True, slots=True)
class CitizenSpec:
    """A hand-written identity (demo citizens): everything :func:`draw_identity` would otherwise draw."""

    key: str
    gender: Gender
    birth_date: date
    family: str
    given: tuple[str, ...]
    residence_insee: str
    status: IdentityStatus
    birth_insee: str | None = None
    birth_country: tuple[str, str] | None = None
    used_family: str | None = None
    order: int = 1
    nia: bool = False
    conditions: tuple[str, ...] = ()
    allergies: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class Identity:
    """The INS identity and contact details of one synthetic citizen."""

    key: str
    patient_uuid: str
    gender: Gender
    birth_date: date
    family: str
    given: tuple[str, ...]
    used_family: str | None
    birth_commune: Commune | None
    birth_country: tuple[str, str] | None
    matricule: str
    nia: bool
    status: IdentityStatus
    residence: Street
    phone: str
    email: str

    @property
    def display_family(self) -> str:
        """The name in daily use: the used name when there is one, else the birth name."""
        return self.used_family or self.family

    @property
    def display(self) -> str:
        """``Mme Claire DUPONT`` / ``M. Paul ROSSI``."""
        title = "Mme" if self.gender == "female" else "M."
        return f"{title} {self.given[0]} {self.display_family}"

    def age_at(self, day: date) -> float:
        """Age in years (fractional) on ``day``."""
        return (day - self.birth_date).days / 365.25


def _commune_by_insee() -> dict[str, Commune]:
    return {c.insee: c for c in load_communes()}


def _random_date(rng: random.Random, start: date, end: date) -> date:
    """A uniformly random date in [start, end] (``start`` if the range is empty)."""
    span = (end - start).days
    return start + timedelta(days=rng.randint(0, span)) if span > 0 else start


def _pick_given_names(rng: random.Random, gender: Gender, birth_year: int) -> tuple[str, ...]:
    """One to three distinct given names typical of the birth generation."""
    generation = "old" if birth_year < 1970 else "mid" if birth_year < 2000 else "young"
    sex = "F" if gender == "female" else "M"
    pool = [n.name for n in load_first_names() if n.sex == sex and n.generation == generation]
    others = [n.name for n in load_first_names() if n.sex == sex and n.generation != generation]
    count = rng.choices((1, 2, 3), weights=(35, 45, 20))[0]
    first = rng.choice(pool)
    rest = rng.sample([n for n in others + pool if n != first], count - 1)
    return (first, *dict.fromkeys(rest))


def _contact(rng: random.Random, given: str, family: str, residence: Commune) -> tuple[str, str]:
    """(mobile phone, e-mail) — e-mails use the reserved ``.example`` domain, never a real provider."""
    email = f"{ascii_slug(given)}.{ascii_slug(family)}{rng.randint(1, 99)}@courriel.example"
    return mobile_phone(rng, residence), email


def draw_identity(rng: random.Random, key: str, *, min_age: int = 0, max_age: int = 95, on: date) -> Identity:
    """A random French identity, ``min_age``–``max_age`` years old on ``on``.

    The NIR encodes exactly the drawn sex, birth year/month and birth place; 5 % of people are born
    abroad (department 99 + INSEE country code), a third of whom only have a NIA.
    """
    communes = load_communes()
    weights = [c.population**0.6 for c in communes]
    gender: Gender = rng.choice(("male", "female"))
    # Fewer people at high ages: age drawn from a slightly decreasing density.
    age = min_age + (max_age - min_age) * (1 - math.sqrt(1 - rng.random() * 0.75)) / 0.5
    age = min(max_age, max(min_age, age))
    birth_date = on - timedelta(days=int(age * 365.25) + rng.randint(0, 364))
    if birth_date > on:
        birth_date = on - timedelta(days=rng.randint(0, 364))
    residence = rng.choices(communes, weights=weights)[0]
    roll = rng.random()
    birth_commune: Commune | None
    birth_country: tuple[str, str] | None = None
    if roll < 0.05:
        birth_commune, birth_country = None, rng.choice(_COUNTRIES)
    elif roll < 0.6:
        birth_commune = residence
    else:
        birth_commune = rng.choices(communes, weights=weights)[0]
    given = _pick_given_names(rng, gender, birth_date.year)
    family = rng.choice(load_surnames())
    used_family = None
    if gender == "female" and age >= 22 and rng.random() < 0.45:
        used_family = rng.choice([s for s in load_surnames() if s != family])
    status = cast(
        "IdentityStatus",
        rng.choices([s for s, _ in _STATUS_WEIGHTS], weights=[w for _, w in _STATUS_WEIGHTS])[0],
    )
    place = birth_commune.insee if birth_commune else birth_country[0] if birth_country else "99100"
    nia = birth_country is not None and rng.random() < 0.35
    matricule = build_nir(gender, birth_date.year, birth_date.month, place, rng.randint(1, 999))
    phone, email = _contact(rng, given[0], used_family or family, residence)
    return Identity(
        key=key,
        patient_uuid=random_uuid(rng),
        gender=gender,
        birth_date=birth_date,
        family=family,
        given=given,
        used_family=used_family,
        birth_commune=birth_commune,
        birth_country=birth_country,
        matricule=matricule,
        nia=nia,
        status="PROV" if nia else status,
        residence=pick_street(rng, residence),
        phone=phone,
        email=email,
    )


def identity_from_spec(spec: CitizenSpec, patient_uuid: str, rng: random.Random) -> Identity:
    """The identity of a hand-written citizen (demo accounts); only the street and phone are drawn."""
    by_insee = _commune_by_insee()
    residence = by_insee[spec.residence_insee]
    birth_commune = by_insee[spec.birth_insee] if spec.birth_insee else None
    place = spec.birth_insee or (spec.birth_country[0] if spec.birth_country else "99100")
    matricule = build_nir(spec.gender, spec.birth_date.year, spec.birth_date.month, place, spec.order)
    phone, email = _contact(rng, spec.given[0], spec.used_family or spec.family, residence)
    return Identity(
        key=spec.key,
        patient_uuid=patient_uuid,
        gender=spec.gender,
        birth_date=spec.birth_date,
        family=spec.family,
        given=spec.given,
        used_family=spec.used_family,
        birth_commune=birth_commune,
        birth_country=spec.birth_country,
        matricule=matricule,
        nia=spec.nia,
        status=spec.status,
        residence=pick_street(rng, residence),
        phone=phone,
        email=email,
    )


def patient_resource(
    ident: Identity, rng: random.Random, gp: Professional, ins: InsFlavour, on: date
) -> dict[str, Any]:
    """The ``fr-core-patient-ins`` Patient of an identity (digest §1.7), as it stands on ``on``."""
    reliability: list[dict[str, Any]] = [
        {"url": "identityStatus", "valueCoding": {"system": codes.IDENTITY_STATUS, "code": ident.status}}
    ]
    if ident.status in ("RECUP", "QUAL"):
        reliability.append(
            {
                "url": "dateInterrogationINSi",
                "valueDate": _random_date(
                    rng, max(ident.birth_date, date(2021, 1, 1)), date(2024, 12, 31)
                ).isoformat(),
            }
        )
    if ident.status in ("VALI", "QUAL"):
        validated = _random_date(rng, max(ident.birth_date, date(2020, 1, 1)), date(2024, 12, 31))
        # Minors' identities are checked on their parents' documents (livret de famille, Vitale app…).
        modes = _CHILD_VALIDATION_MODES if ident.age_at(validated) < 18 else _VALIDATION_MODES
        reliability.append(
            {
                "url": "validationMode",
                "valueCoding": {"system": codes.IDENTITY_VALIDATION_MODE, "code": rng.choice(modes)},
            }
        )
        reliability.append({"url": "validationDate", "valueDate": validated.isoformat()})
    birth_place: dict[str, Any]
    if ident.birth_commune is not None:
        birth_place = {
            "extension": [
                {
                    "url": codes.EXT_INSEE_CODE,
                    "valueCoding": {"system": codes.TRE_R13_COMMUNE, "code": ident.birth_commune.insee},
                }
            ],
            "city": ident.birth_commune.city,
            "postalCode": ident.birth_commune.postal_code,
            "country": "FR",
        }
    else:
        code, name = ident.birth_country or ("99100", "France")
        birth_place = {"country": name, "text": f"{name} (code INSEE {code})"}
    if ident.nia:
        identifier = {
            "use": "temp",
            "type": {"coding": [{"system": codes.IDENTIFIER_TYPE_FR, "code": "INS-NIA"}]},
            "system": INS_NIA_SYSTEM,
            "value": ident.matricule,
        }
    else:
        system, type_code = _INS_SYSTEMS[ins]
        identifier = {
            "use": "official",
            "type": {"coding": [{"system": codes.IDENTIFIER_TYPE_FR, "code": type_code}]},
            "system": system,
            "value": ident.matricule,
        }
    names: list[dict[str, Any]] = [
        {
            "extension": [{"url": codes.EXT_BIRTH_LIST_GIVEN_NAME, "valueString": " ".join(ident.given)}],
            "use": "official",
            "family": ident.family,
            "given": [ident.given[0]],
        }
    ]
    if ident.used_family:
        names.append({"use": "usual", "family": ident.used_family, "given": [ident.given[0]]})
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "meta": {"profile": [codes.PROFILE_PATIENT_INS]},
        "extension": [
            {"url": codes.EXT_IDENTITY_RELIABILITY, "extension": reliability},
            {"url": codes.EXT_BIRTH_PLACE, "valueAddress": birth_place},
        ],
        "identifier": [identifier],
        "active": True,
        "name": names,
        "telecom": [
            {"system": "phone", "value": ident.phone, "use": "mobile"},
            {"system": "email", "value": ident.email, "use": "home"},
        ],
        "gender": ident.gender,
        "birthDate": ident.birth_date.isoformat(),
        "address": [ident.residence.fhir(use="home")],
        "generalPractitioner": [{"reference": f"Practitioner/{gp.id}", "display": gp.display}],
        "communication": [
            {
                "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr-FR"}], "text": "français"},
                "preferred": True,
            }
        ],
    }
    if ident.age_at(on) < 15:
        del resource["telecom"]  # children are reached through their parents
    return resource


# --------------------------------------------------------------------------- history
def _interpolate(age: float, column: int) -> float:
    """Linear interpolation in the growth table (column 1 height, 2 BMI)."""
    if age <= _GROWTH[0][0]:
        return _GROWTH[0][column]
    for (a0, *v0), (a1, *v1) in itertools.pairwise(_GROWTH):
        if age <= a1:
            return v0[column - 1] + (v1[column - 1] - v0[column - 1]) * (age - a0) / (a1 - a0)
    return _GROWTH[-1][column]


@dataclass(slots=True)
class _Chronic:
    condition: ConditionDef
    onset: date
    recorded: str | None = None  # urn of the Condition once recorded
    treated_since: date | None = None
    last_prescription: date | None = None


@dataclass(slots=True)
class _Visit:
    """What happened during an encounter, for the documents written about it."""

    urn: str
    kind: str
    start: datetime
    end: datetime
    author: Professional
    structure: Structure
    reason: str
    measures: list[str] = field(default_factory=list)
    prescriptions: list[tuple[MedicationDef, bool]] = field(default_factory=list)  # (medication, chronic)
    diagnoses: list[ConditionDef] = field(default_factory=list)


class HistoryBuilder:
    """Builds the resources of one citizen's care history (see the module docstring)."""

    def __init__(
        self,
        rng: random.Random,
        ident: Identity,
        hub: Hub,
        *,
        start_year: int,
        end_year: int,
        document_years: int = 4,
        forced_conditions: Sequence[str] | None = None,
        forced_allergies: Sequence[str] | None = None,
    ) -> None:
        self.rng = rng
        self.ident = ident
        self.hub = hub
        self.start = max(date(start_year, 1, 1), ident.birth_date)
        self.end = date(end_year, 12, 31)
        self.documents_from = max(self.start, date(end_year - document_years + 1, 1, 1))
        self.department = ident.residence.commune.department
        self.gp = rng.choice(hub.gps)
        self.entries: list[tuple[str, dict[str, Any]]] = []
        self.patient_urn = f"urn:uuid:{ident.patient_uuid}"
        self.device_urn: str | None = None
        self.prescription_count = 0
        self.immunized: list[tuple[date, str]] = []
        self.allergies: list[str] = []
        self.visits: list[_Visit] = []
        sex_height = (176.0, 7.0) if ident.gender == "male" else (163.0, 6.5)
        self.adult_height = min(200.0, max(145.0, rng.gauss(*sex_height)))
        self.bmi_base = min(38.0, max(18.0, rng.gauss(25.0, 3.8)))
        self.bmi_drift = rng.gauss(0.08, 0.12)
        self.bp_offset = rng.gauss(0, 6)
        self.hr_base = rng.gauss(70, 7)
        self.steps_base = rng.gauss(8000, 2200)
        self.chronic = self._draw_chronic(forced_conditions)
        self.allergy_keys = self._draw_allergies(forced_allergies)

    # ----------------------------------------------------------------- helpers
    def _add(self, resource: dict[str, Any]) -> str:
        urn = f"urn:uuid:{random_uuid(self.rng)}"
        self.entries.append((urn, resource))
        return urn

    def _when(self, day: date, hour_from: int = 8, hour_to: int = 18) -> datetime:
        return datetime(
            day.year,
            day.month,
            day.day,
            self.rng.randint(hour_from, hour_to),
            self.rng.choice((0, 15, 30, 45)),
        )

    def _dt(self, moment: datetime) -> str:
        return fhir_datetime(moment, self.department)

    def _age(self, day: date) -> float:
        return self.ident.age_at(day)

    def _has(self, key: str, day: date) -> bool:
        return any(c.condition.key == key and c.onset <= day for c in self.chronic)

    def _treated(self, key: str, day: date) -> bool:
        return any(
            c.condition.key == key and c.treated_since is not None and c.treated_since <= day
            for c in self.chronic
        )

    def _draw_chronic(self, forced: Sequence[str] | None) -> list[_Chronic]:
        age_end = self._age(self.end)
        chosen: list[tuple[str, int]] = []
        if forced is not None:
            chosen = [(k, next((r[1] for r in _CHRONIC_RULES if r[0] == k), 1)) for k in forced]
        else:
            for key, min_age, probability, sex in _CHRONIC_RULES:
                eligible = age_end >= min_age and (sex is None or sex == self.ident.gender)
                if eligible and self.rng.random() < probability(age_end):
                    chosen.append((key, min_age))
            if age_end >= 18 and self.bmi_base + self.bmi_drift * max(0.0, age_end - 40) >= 30:
                chosen.append(("obesity", 18))
        result: list[_Chronic] = []
        for key, min_age in chosen:
            earliest = self.ident.birth_date + timedelta(days=int(min_age * 365.25))
            if earliest > self.end:
                continue
            # Half the conditions predate the record, the others appear during it; forced ones
            # (demo citizens) predate it so that the whole record shows them.
            if (forced is not None or self.rng.random() < 0.5) and earliest < self.start:
                onset = _random_date(self.rng, earliest, self.start)
            else:
                onset = _random_date(self.rng, max(earliest, self.start), self.end - timedelta(days=60))
            result.append(_Chronic(codes.CONDITIONS[key], onset))
        return result

    def _draw_allergies(self, forced: Sequence[str] | None) -> list[str]:
        if forced is not None:
            return list(forced)
        if self.rng.random() >= 0.2:
            return []
        return [a.key for a in self.rng.sample(codes.ALLERGIES, self.rng.choice((1, 1, 2)))]

    # ----------------------------------------------------------------- physiology
    def height(self, day: date) -> float:
        age = self._age(day)
        if age >= 18:
            shrink = max(0.0, age - 60) * 0.1
            return self.adult_height - shrink
        reference = _interpolate(age, 1)
        scale = 1 + (self.adult_height / 172.0 - 1) * min(1.0, age / 4)
        return reference * scale

    def weight(self, day: date) -> float:
        age = self._age(day)
        height_m = self.height(day) / 100
        if age < 18:
            bmi = _interpolate(age, 2) * (1 + (self.bmi_base - 24) / 60 * min(1.0, age / 10))
        else:
            bmi = self.bmi_base + self.bmi_drift * (age - 40)
            if self._has("diabetes2", day) and self._treated("diabetes2", day):
                bmi -= 0.8
        bmi = min(45.0, max(12.5, bmi + self.rng.gauss(0, 0.25)))
        return bmi * height_m * height_m

    def blood_pressure(self, day: date) -> tuple[int, int]:
        age = self._age(day)
        if age < 18:
            systolic, diastolic = 92 + age * 1.3, 55 + age * 0.9
        else:
            systolic = 112 + 0.45 * (age - 20) + self.bp_offset
            diastolic = 71 + 0.15 * (age - 20) + self.bp_offset / 2
            if self._has("hypertension", day):
                treated = self._treated("hypertension", day)
                systolic += 8 if treated else 24
                diastolic += 3 if treated else 10
        systolic = min(200.0, max(85.0, systolic + self.rng.gauss(0, 6)))
        diastolic = min(115.0, max(45.0, diastolic + self.rng.gauss(0, 4)))
        return round(systolic), round(min(diastolic, systolic - 20))

    def heart_rate(self, day: date) -> int:
        age = self._age(day)
        base = 130 - 5.5 * age if age < 10 else self.hr_base
        if self._has("atrial_fibrillation", day):
            base += 12
        return round(min(150.0, max(48.0, base + self.rng.gauss(0, 5))))

    def spo2(self, day: date, acute: str | None) -> float:
        value = self.rng.gauss(97.6, 0.9)
        if self._has("copd", day):
            value -= 3.5
        if acute in ("pneumonia", "bronchiolitis"):
            value -= 3
        return round(min(100.0, max(86.0, value)), 0)

    def temperature(self, acute: str | None) -> float:
        value = self.rng.gauss(38.4, 0.5) if acute in _FEVERISH else self.rng.gauss(36.8, 0.25)
        return round(min(40.5, max(35.8, value)), 1)

    def glucose(self, day: date) -> float:
        if self._has("diabetes2", day):
            value = self.rng.gauss(132, 14) if self._treated("diabetes2", day) else self.rng.gauss(168, 18)
        else:
            value = self.rng.gauss(92, 7)
        return round(min(290.0, max(65.0, value)))

    def steps(self, day: date) -> int:
        age = self._age(day)
        base = self.steps_base - max(0.0, age - 40) * 70
        weekend = 1500 if day.weekday() >= 5 else 0
        return round(min(26000.0, max(600.0, self.rng.gauss(base + weekend, 1800))))

    # ----------------------------------------------------------------- resources
    def _ref(self, who: Professional) -> dict[str, str]:
        return {"reference": f"Practitioner/{who.id}", "display": who.display}

    def _org_ref(self, structure: Structure) -> dict[str, str]:
        return {"reference": f"Organization/{structure.id}", "display": structure.name}

    def encounter(
        self,
        kind: Literal["consultation", "checkup", "hospital", "emergency"],
        start: datetime,
        end: datetime,
        author: Professional,
        reason: str,
    ) -> _Visit:
        """An Encounter at the author's structure; returns the visit record the documents are written from."""
        structure = author.structure
        class_code = {"hospital": "IMP", "emergency": "EMER"}.get(kind, "AMB")
        class_display = {"IMP": "inpatient encounter", "EMER": "emergency", "AMB": "ambulatory"}[class_code]
        encounter_type = codes.ENCOUNTER_TYPES[kind]
        urn = self._add(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": codes.ACT_CODE, "code": class_code, "display": class_display},
                "type": [{"coding": [encounter_type.coding()], "text": encounter_type.display}],
                "subject": {"reference": self.patient_urn},
                "participant": [{"individual": self._ref(author)}],
                "period": {"start": self._dt(start), "end": self._dt(end)},
                "reasonCode": [{"text": reason}],
                "serviceProvider": self._org_ref(structure),
            }
        )
        visit = _Visit(urn, kind, start, end, author, structure, reason)
        self.visits.append(visit)
        return visit

    def observation(
        self,
        key: str,
        value: float,
        moment: datetime,
        visit: _Visit | None,
        performer: Professional | None,
    ) -> str:
        vital = codes.VITALS[key]
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": codes.OBSERVATION_CATEGORY, "code": vital.category}]}],
            "code": vital.codeable(),
            "subject": {"reference": self.patient_urn},
            "effectiveDateTime": self._dt(moment),
            "valueQuantity": {"value": value, "unit": vital.unit, "system": codes.UCUM, "code": vital.ucum},
        }
        if vital.category == "vital-signs":
            resource["meta"] = {"profile": [codes.PROFILE_VITAL_SIGNS]}
        if visit is not None:
            resource["encounter"] = {"reference": visit.urn}
        if performer is not None:
            resource["performer"] = [self._ref(performer)]
        if key == "steps" and self.device_urn:
            resource["device"] = {"reference": self.device_urn}
        return self._add(resource)

    def blood_pressure_observation(
        self, systolic: int, diastolic: int, moment: datetime, visit: _Visit
    ) -> None:
        def component(concept: codes.Concept, value: int) -> dict[str, Any]:
            return {
                "code": {"coding": [concept.coding()]},
                "valueQuantity": {"value": value, "unit": "mm[Hg]", "system": codes.UCUM, "code": "mm[Hg]"},
            }

        self._add(
            {
                "resourceType": "Observation",
                "meta": {"profile": [codes.PROFILE_VITAL_SIGNS]},
                "status": "final",
                "category": [{"coding": [{"system": codes.OBSERVATION_CATEGORY, "code": "vital-signs"}]}],
                "code": {"coding": [codes.BP_PANEL.coding()], "text": codes.BP_PANEL.display},
                "subject": {"reference": self.patient_urn},
                "encounter": {"reference": visit.urn},
                "effectiveDateTime": self._dt(moment),
                "performer": [self._ref(visit.author)],
                "component": [component(codes.SYSTOLIC, systolic), component(codes.DIASTOLIC, diastolic)],
            }
        )
        visit.measures.append(f"Pression artérielle : {systolic}/{diastolic} mm Hg")

    def measure_vitals(self, visit: _Visit, acute: str | None) -> None:
        """The measures a clinician takes at this kind of visit, for this patient."""
        day = visit.start.date()
        moment = visit.start + timedelta(minutes=5)
        age = self._age(day)
        weight = round(self.weight(day), 1 if age >= 2 else 2)
        self.observation("weight", weight, moment, visit, visit.author)
        visit.measures.append(f"Poids : {weight:.1f} kg".replace(".", ","))
        if age < 18 or visit.kind == "hospital" or self.rng.random() < 0.25:
            height = round(self.height(day), 1)
            self.observation("height", height, moment, visit, visit.author)
            visit.measures.append(f"Taille : {height:.1f} cm".replace(".", ","))
        if age >= 3:
            self.blood_pressure_observation(*self.blood_pressure(day), moment, visit)
        heart_rate = self.heart_rate(day)
        self.observation("heart_rate", heart_rate, moment, visit, visit.author)
        visit.measures.append(f"Fréquence cardiaque : {heart_rate}/min")
        if acute is not None or visit.kind in ("hospital", "emergency"):
            temperature = self.temperature(acute)
            self.observation("temperature", temperature, moment, visit, visit.author)
            visit.measures.append(f"Température : {temperature:.1f} °C".replace(".", ","))
        respiratory = acute in _RESPIRATORY or any(self._has(k, day) for k in ("asthma", "copd"))
        if respiratory or age >= 65 or visit.kind in ("hospital", "emergency"):
            saturation = self.spo2(day, acute)
            self.observation("spo2", saturation, moment, visit, visit.author)
            visit.measures.append(f"SpO2 : {saturation:.0f} %")
        if self._has("diabetes2", day) or (age >= 45 and self.rng.random() < 0.1):
            glucose = self.glucose(day)
            self.observation("glucose", glucose, moment, visit, visit.author)
            visit.measures.append(f"Glycémie capillaire : {glucose:.0f} mg/dL")

    def condition(
        self, definition: ConditionDef, onset: date, visit: _Visit, *, abatement: date | None = None
    ) -> str:
        chronic = definition.kind == "chronic"
        resource: dict[str, Any] = {
            "resourceType": "Condition",
            "clinicalStatus": {
                "coding": [
                    {"system": codes.CONDITION_CLINICAL, "code": "resolved" if abatement else "active"}
                ]
            },
            "verificationStatus": {"coding": [{"system": codes.CONDITION_VERIFICATION, "code": "confirmed"}]},
            "category": [
                {
                    "coding": [
                        {
                            "system": codes.CONDITION_CATEGORY,
                            "code": "problem-list-item" if chronic else "encounter-diagnosis",
                        }
                    ]
                }
            ],
            "code": definition.codeable(),
            "subject": {"reference": self.patient_urn},
            "encounter": {"reference": visit.urn},
            "onsetDateTime": onset.isoformat(),
            "recordedDate": self._dt(visit.start),
            "recorder": self._ref(visit.author),
        }
        if abatement is not None:
            resource["abatementDateTime"] = abatement.isoformat()
        visit.diagnoses.append(definition)
        return self._add(resource)

    def prescribe(self, lines: Sequence[tuple[MedicationDef, str]], visit: _Visit, *, chronic: bool) -> None:
        """One prescription: a MedicationRequest per (medication, reason Condition urn), one ``groupIdentifier``.

        Penicillins are never prescribed to a patient allergic to them.
        """
        allowed = [
            (m, reason)
            for m, reason in lines
            if not ("penicillin" in self.allergy_keys and m.key == "amoxicilline")
        ]
        if not allowed:
            return
        self.prescription_count += 1
        group = f"{self.ident.patient_uuid[:8].upper()}-{self.prescription_count:03d}"
        day = visit.start.date()
        for medication, reason in allowed:
            repeats = 3 if chronic and medication.days < 90 else 0
            validity_end = day + timedelta(days=medication.days * (repeats + 1) if chronic else 90)
            request: dict[str, Any] = {
                "resourceType": "MedicationRequest",
                "status": "completed",
                "intent": "order",
                "groupIdentifier": {"value": group},
                "medicationCodeableConcept": medication.codeable(),
                "subject": {"reference": self.patient_urn},
                "encounter": {"reference": visit.urn},
                "authoredOn": self._dt(visit.start),
                "requester": self._ref(visit.author),
                "reasonReference": [{"reference": reason}],
                "courseOfTherapyType": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
                            "code": "continuous" if chronic else "acute",
                        }
                    ]
                },
                "dosageInstruction": [{"text": medication.dosage}],
                "dispenseRequest": {
                    "validityPeriod": {"start": day.isoformat(), "end": validity_end.isoformat()},
                    "numberOfRepeatsAllowed": repeats,
                    "expectedSupplyDuration": {
                        "value": medication.days,
                        "unit": "jours",
                        "system": codes.UCUM,
                        "code": "d",
                    },
                },
            }
            if chronic and validity_end >= self.end:
                request["status"] = "active"
            self._add(request)
            visit.prescriptions.append((medication, chronic))

    # ----------------------------------------------------------------- history
    def build(self) -> None:
        """Generate the whole history (idempotence is not needed: call once)."""
        self._allergies()
        self._immunizations()
        self._device()
        year = self.start.year
        while year <= self.end.year:
            self._year(year)
            year += 1
        self._summary()
        self._documents()

    def _allergies(self) -> None:
        for key in self.allergy_keys:
            allergy = next(a for a in codes.ALLERGIES if a.key == key)
            onset = _random_date(
                self.rng, self.ident.birth_date + timedelta(days=365), self.start + timedelta(days=30)
            )
            onset = min(onset, self.end)
            self._add(
                {
                    "resourceType": "AllergyIntolerance",
                    "clinicalStatus": {"coding": [{"system": codes.ALLERGY_CLINICAL, "code": "active"}]},
                    "verificationStatus": {
                        "coding": [{"system": codes.ALLERGY_VERIFICATION, "code": "confirmed"}]
                    },
                    "type": "allergy",
                    "category": [allergy.category],
                    "criticality": allergy.criticality,
                    "code": {
                        "coding": [
                            {"system": codes.SNOMED, "code": allergy.snomed, "display": allergy.label}
                        ],
                        "text": allergy.label,
                    },
                    "patient": {"reference": self.patient_urn},
                    "onsetDateTime": onset.isoformat(),
                    "recordedDate": self._dt(self._when(max(onset, self.start))),
                    "recorder": self._ref(self.gp),
                    "reaction": [
                        {
                            "manifestation": [
                                {
                                    "coding": [
                                        {
                                            "system": codes.SNOMED,
                                            "code": allergy.reaction_snomed,
                                            "display": allergy.reaction_label,
                                        }
                                    ],
                                    "text": allergy.reaction_label,
                                }
                            ],
                            "severity": "severe" if allergy.criticality == "high" else "mild",
                        }
                    ],
                }
            )
            self.allergies.append(allergy.label)

    def _schedule(self) -> list[tuple[date, str, int | None]]:
        """(date, vaccine key, dose number) of the French schedule that applies to this person."""
        birth = self.ident.birth_date
        events: list[tuple[date, str, int | None]] = []

        def at_months(months: float) -> date:
            return birth + timedelta(days=round(months * 30.44) + self.rng.randint(0, 20))

        for key, months in (
            ("hexa", (2, 4, 11)),
            ("pcv13", (2, 4, 11)),
            ("menc", (5, 12)),
            ("ror", (12, 16)),
        ):
            for dose, m in enumerate(months, start=1):
                events.append((at_months(m), key, dose))
        events += [(at_months(72), "dtcap", None), (at_months(132), "dtcap", None)]
        if birth.year < 2005:  # before the hexavalent vaccine: hepatitis B catch-up at 11-15 years
            events += [(at_months(144), "hepb", 1), (at_months(150), "hepb", 2)]
        if birth.year >= 2010 or (self.ident.gender == "female" and birth.year >= 2000):
            events += [(at_months(132), "hpv", 1), (at_months(138), "hpv", 2)]
        events += [
            (at_months(12 * age), "dtcap" if age == 25 else "dtp", None) for age in (25, 45, 65, 75, 85)
        ]
        flu_risk = any(c.condition.key in ("asthma", "copd", "diabetes2") for c in self.chronic)
        for year in range(self.start.year, self.end.year + 1):
            autumn = date(year, 10, 15) + timedelta(days=self.rng.randint(0, 45))
            if (self._age(autumn) >= 65 or flu_risk) and self.rng.random() < 0.65:
                events.append((autumn, "flu", None))
        if self._age(date(2021, 3, 1)) >= 18 and self.rng.random() < 0.8:
            first = date(2021, 3, 1) + timedelta(days=self.rng.randint(0, 100))
            events += [(first, "covid", 1), (first + timedelta(days=35), "covid", 2)]
            events.append((date(2021, 12, 1) + timedelta(days=self.rng.randint(0, 60)), "covid", 3))
        return [e for e in events if max(birth, date(2000, 1, 1)) <= e[0] <= self.end]

    def _immunizations(self) -> None:
        for day, key, dose in sorted(self._schedule(), key=lambda e: e[0]):
            vaccine = codes.VACCINES[key]
            historical = day < self.start
            if key == "flu":
                performer = self.rng.choice([*self.hub.nurses, *self.hub.others[1:], self.gp])
            elif self._age(day) < 16:
                performer = self.rng.choice((self.gp, self.hub.hospital_staff["pediatrician"]))
            else:
                performer = self.gp
            resource: dict[str, Any] = {
                "resourceType": "Immunization",
                "status": "completed",
                "vaccineCode": vaccine.codeable(),
                "patient": {"reference": self.patient_urn},
                "occurrenceDateTime": self._dt(self._when(day)),
                "recorded": self._dt(self._when(max(day, self.start))),
                "primarySource": not historical,
                "lotNumber": f"{self.rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}{self.rng.randint(1000, 99999)}",
            }
            if historical:
                resource["reportOrigin"] = {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/immunization-origin",
                            "code": "record",
                        }
                    ],
                    "text": "Carnet de santé",
                }
            else:
                resource["performer"] = [{"actor": self._ref(performer)}]
            if dose is not None:
                resource["protocolApplied"] = [{"doseNumberPositiveInt": dose}]
            self._add(resource)
            self.immunized.append((day, vaccine.label))

    def _device(self) -> None:
        age = self._age(self.end)
        if not (16 <= age <= 80) or self.rng.random() >= 0.3:
            return
        self.device_urn = self._add(
            {
                "resourceType": "Device",
                "status": "active",
                "manufacturer": "Appareil de démonstration",
                "deviceName": [{"name": "Bracelet podomètre connecté", "type": "user-friendly-name"}],
                "type": {"coding": [{"system": codes.SNOMED, "code": "462242008", "display": "Podomètre"}]},
                "patient": {"reference": self.patient_urn},
            }
        )

    def _year(self, year: int) -> None:
        first = max(self.start, date(year, 1, 1))
        last = min(self.end, date(year, 12, 31))
        if first > last:
            return
        age = self._age(first)
        active_chronic = [c for c in self.chronic if c.onset <= last]
        visits = 1 + min(3, len(active_chronic)) + (1 if age >= 70 else 0) + (4 if age < 2 else 0)
        visits = max(1, visits + self.rng.choice((-1, 0, 0, 1)))
        days = sorted(_random_date(self.rng, first, last) for _ in range(visits))
        for day in days:
            self._ambulatory_visit(day)
        if self.rng.random() < 0.03 + max(0.0, age - 50) * 0.002 or (age < 2 and self.rng.random() < 0.08):
            self._hospital_stay(_random_date(self.rng, first, last))
        if self.rng.random() < 0.05:
            self._emergency_visit(_random_date(self.rng, first, last))
        if self.device_urn is not None:
            for month in range(1, 13):
                day = date(year, month, self.rng.randint(1, 28))
                if first <= day <= last and day.year >= 2018:
                    self.observation(
                        "steps", self.steps(day), datetime(day.year, day.month, day.day, 23, 59), None, None
                    )

    def _ambulatory_visit(self, day: date) -> None:
        age = self._age(day)
        acute_key: str | None = None
        if self.rng.random() < 0.35:
            pool = _ACUTE_CHILD if age < 15 else _ACUTE_ADULT
            acute_key = self.rng.choice([k for k in pool if k != "uti" or self.ident.gender == "female"])
        new_chronic = [c for c in self.chronic if c.recorded is None and c.onset <= day]
        specialist: Professional | None = None
        if (
            any(self._has(k, day) for k in ("hypertension", "atrial_fibrillation"))
            and self.rng.random() < 0.2
        ):
            specialist = self.hub.hospital_staff["cardiologist"]
        elif age < 6 and self.rng.random() < 0.3:
            specialist = self.hub.hospital_staff["pediatrician"]
        author = specialist or self.gp
        if acute_key:
            reason = codes.CONDITIONS[acute_key].label
        elif new_chronic or any(c.recorded for c in self.chronic):
            reason = "Suivi " + ", ".join(c.condition.label.lower() for c in self.chronic if c.onset <= day)
        else:
            reason = "Consultation de suivi" if age >= 2 else "Examen de suivi du nourrisson"
        start = self._when(day)
        visit = self.encounter(
            "checkup" if acute_key is None else "consultation",
            start,
            start + timedelta(minutes=20),
            author,
            reason,
        )
        self.measure_vitals(visit, acute_key)
        for chronic in new_chronic:
            chronic.recorded = self.condition(chronic.condition, chronic.onset, visit)
        if acute_key:
            definition = codes.CONDITIONS[acute_key]
            urn = self.condition(
                definition,
                day - timedelta(days=self.rng.randint(1, 4)),
                visit,
                abatement=day + timedelta(days=self.rng.randint(5, 15)),
            )
            if age >= 15 or (age >= 8 and acute_key in ("pharyngitis", "bronchitis")):
                keys = definition.medications if age >= 15 else ("doliprane500",)
                self.prescribe([(codes.MEDICATIONS[m], urn) for m in keys], visit, chronic=False)
        # Renew chronic treatments every three months or so.
        due: list[tuple[MedicationDef, str]] = []
        for chronic in self.chronic:
            if chronic.recorded is None or not chronic.condition.medications:
                continue
            if chronic.last_prescription is None or (day - chronic.last_prescription).days >= 80:
                chronic.last_prescription = day
                chronic.treated_since = chronic.treated_since or day
                due += [(codes.MEDICATIONS[m], chronic.recorded) for m in chronic.condition.medications]
        if due:
            self.prescribe(due, visit, chronic=True)

    def _hospital_stay(self, day: date) -> None:
        age = self._age(day)
        if age < 2:
            key, author = "bronchiolitis", self.hub.hospital_staff["pediatrician"]
        elif (
            any(self._has(k, day) for k in ("atrial_fibrillation", "hypertension"))
            and self.rng.random() < 0.5
        ):
            key, author = "heart_failure", self.hub.hospital_staff["cardiologist"]
        else:
            key = "pneumonia"
            author = self.hub.hospital_staff["pediatrician" if age < 15 else "emergency"]
        definition = codes.CONDITIONS[key]
        start = self._when(day, 9, 20)
        end = datetime.combine(day + timedelta(days=self.rng.randint(2, 8)), datetime.min.time()).replace(
            hour=self.rng.randint(10, 16)
        )
        if end.date() > self.end:
            end = datetime.combine(self.end, datetime.min.time()).replace(hour=12)
            if end <= start:
                return
        visit = self.encounter("hospital", start, end, author, definition.label)
        self.measure_vitals(visit, key)
        urn = self.condition(
            definition, day - timedelta(days=2), visit, abatement=end.date() + timedelta(days=7)
        )
        if age >= 15 and definition.medications:
            self.prescribe(
                [(codes.MEDICATIONS[m], urn) for m in definition.medications], visit, chronic=False
            )

    def _emergency_visit(self, day: date) -> None:
        age = self._age(day)
        key = "gastroenteritis" if age < 15 or self.rng.random() < 0.5 else "low_back_pain"
        definition = codes.CONDITIONS[key]
        start = self._when(day, 0, 23)
        visit = self.encounter(
            "emergency",
            start,
            start + timedelta(hours=self.rng.randint(2, 6)),
            self.hub.hospital_staff["emergency"],
            definition.label,
        )
        self.measure_vitals(visit, key)
        self.condition(definition, day, visit, abatement=day + timedelta(days=self.rng.randint(3, 10)))

    def _summary(self) -> None:
        """A yearly-summary visit at the end of the period for patients followed for a chronic disease."""
        if not any(c.recorded for c in self.chronic) and self._age(self.end) < 65:
            return
        day = _random_date(
            self.rng, max(self.start, self.end - timedelta(days=120)), self.end - timedelta(days=5)
        )
        start = self._when(day)
        visit = self.encounter(
            "checkup",
            start,
            start + timedelta(minutes=30),
            self.gp,
            "Bilan annuel et synthèse médicale",
        )
        self.measure_vitals(visit, None)
        visit.kind = "summary"

    # ----------------------------------------------------------------- documents
    def _patient_banner(self) -> list[str]:
        ident = self.ident
        born = "Née" if ident.gender == "female" else "Né"
        birth_name = f" {ident.family}" if ident.used_family else ""
        lines = [ident.display, f"{born}{birth_name} le {fr_date(ident.birth_date)}"]
        if ident.status == "QUAL":
            lines.append(f"INS : {ident.matricule} (identité qualifiée)")
        lines.append(
            f"{ident.residence.line}, {ident.residence.commune.postal_code} {ident.residence.commune.city}"
        )
        return lines

    def _issuer(self, structure: Structure, author: Professional) -> list[str]:
        address = structure.address
        lines = [structure.name, f"{address.line}, {address.commune.postal_code} {address.commune.city}"]
        lines.append(f"Tél. {structure.phone} - MSSanté {author.email}")
        speciality = author.profession.specialty_label or author.profession.label
        lines.append(f"{author.display} - {speciality} - RPPS {author.rpps}")
        return lines

    def _document(
        self,
        doc_type: DocumentTypeDef,
        visit: _Visit,
        sections: list[tuple[str, list[str]]],
        *,
        restricted: bool = False,
    ) -> None:
        created = visit.end
        title = doc_type.label
        pdf = render_pdf(
            PdfDocument(
                title=title,
                issuer=self._issuer(visit.structure, visit.author),
                author=f"{visit.author.display}, le {fr_date(created, long=True)}",
                patient=self._patient_banner(),
                created=created.replace(tzinfo=None),
                sections=sections,
            )
        )
        binary_urn = self._add(
            {
                "resourceType": "Binary",
                "contentType": "application/pdf",
                "securityContext": {"reference": self.patient_urn},
                "data": base64.b64encode(pdf).decode("ascii"),
            }
        )
        labels: list[dict[str, Any]] = [
            {"coding": [{"system": codes.CONFIDENTIALITY, "code": "R" if restricted else "N"}]}
        ]
        if restricted:  # mental-health documents: restricted, and masked from other professionals
            labels.append({"coding": [{"system": codes.TRE_A07_VISIBILITY, "code": "MASQUE_PS"}]})
        facility = visit.structure.sector
        self._add(
            {
                "resourceType": "DocumentReference",
                "meta": {"profile": [codes.PROFILE_PDSM_DOCUMENT_REFERENCE]},
                "masterIdentifier": {
                    "system": "urn:ietf:rfc:3986",
                    "value": f"urn:uuid:{random_uuid(self.rng)}",
                },
                "status": "current",
                "docStatus": "final",
                "type": {
                    "coding": [{"system": codes.LOINC, "code": doc_type.loinc, "display": doc_type.label}],
                    "text": doc_type.label,
                },
                "category": [
                    {
                        "coding": [
                            {
                                "system": codes.TRE_A03_CLASS,
                                "code": doc_type.class_code,
                                "display": doc_type.class_label,
                            }
                        ]
                    }
                ],
                "subject": {"reference": self.patient_urn},
                "date": self._dt(created),
                "author": [self._ref(visit.author)],
                "authenticator": self._ref(visit.author),
                "custodian": self._org_ref(visit.structure),
                "description": f"{title} - {visit.reason}",
                "securityLabel": labels,
                "content": [
                    {
                        "attachment": {
                            "contentType": "application/pdf",
                            "language": "fr-FR",
                            "url": binary_urn,
                            "size": len(pdf),
                            "hash": base64.b64encode(hashlib.sha1(pdf).digest()).decode("ascii"),
                            "title": f"{title} du {fr_date(created)}",
                            "creation": self._dt(created),
                        },
                        "format": {
                            "system": codes.IHE_FORMAT_CODE,
                            "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
                            "display": "mimeType Sufficient",
                        },
                    }
                ],
                "context": {
                    "encounter": [{"reference": visit.urn}],
                    "period": {"start": self._dt(visit.start), "end": self._dt(visit.end)},
                    "facilityType": {
                        "coding": [
                            {"system": codes.TRE_R02_SECTOR, "code": facility[0], "display": facility[1]}
                        ]
                    },
                },
            }
        )

    def _treatments(self, day: date) -> list[str]:
        return [
            f"{codes.MEDICATIONS[m].label} : {codes.MEDICATIONS[m].dosage}"
            for c in self.chronic
            if c.recorded and c.onset <= day
            for m in c.condition.medications
        ]

    def _history_lines(self, day: date) -> list[str]:
        conditions = [
            f"{c.condition.label} (depuis {c.onset.year})"
            for c in self.chronic
            if c.recorded and c.onset <= day
        ]
        return conditions or ["Pas d'antécédent notable."]

    def _documents(self) -> None:
        for visit in self.visits:
            day = visit.start.date()
            if day < self.documents_from and visit.kind != "hospital":
                continue
            restricted = any(d.key in _PSYCHIATRIC for d in visit.diagnoses) or any(
                m.key in _PSYCHOTROPIC for m, _ in visit.prescriptions
            )
            if visit.prescriptions and day >= self.documents_from:
                lines = []
                for index, (medication, chronic) in enumerate(visit.prescriptions, start=1):
                    renewal = " - à renouveler 3 fois" if chronic and medication.days < 90 else ""
                    lines.append(f"{index}. {medication.label}")
                    lines.append(f"   {medication.dosage}. Durée : {medication.days} jours{renewal}.")
                self._document(
                    codes.DOC_PRESCRIPTION,
                    visit,
                    [
                        ("Prescription", lines),
                        (
                            "",
                            [f"Fait à {visit.structure.address.commune.city}, le {fr_date(day, long=True)}."],
                        ),
                    ],
                    restricted=restricted,
                )
            if visit.kind == "hospital":
                stay = f"Séjour du {fr_date(visit.start)} au {fr_date(visit.end)} au {visit.structure.name}."
                self._document(
                    codes.DOC_DISCHARGE,
                    visit,
                    [
                        ("Motif d'hospitalisation", [visit.reason, stay]),
                        ("Antécédents", self._history_lines(day)),
                        ("Examen à l'entrée", visit.measures),
                        (
                            "Évolution",
                            [
                                _EVOLUTION.get(
                                    visit.diagnoses[0].key if visit.diagnoses else "", _EVOLUTION[""]
                                )
                            ],
                        ),
                        (
                            "Traitement de sortie",
                            [f"{m.label} : {m.dosage}" for m, _ in visit.prescriptions]
                            or self._treatments(day)
                            or ["Aucun traitement."],
                        ),
                        ("Suivi", [f"Consultation de contrôle chez le Dr {self.gp.family} sous 15 jours."]),
                    ],
                )
            elif visit.kind == "summary":
                self._document(
                    codes.DOC_SUMMARY,
                    visit,
                    [
                        ("Antécédents et problèmes actifs", self._history_lines(day)),
                        ("Allergies", self.allergies or ["Aucune allergie connue."]),
                        (
                            "Traitements en cours",
                            self._treatments(day) or ["Aucun traitement au long cours."],
                        ),
                        (
                            "Vaccinations récentes",
                            [f"{fr_date(d)} : {label}" for d, label in self.immunized if d <= day][-6:]
                            or ["Aucune vaccination enregistrée."],
                        ),
                        ("Dernières mesures", visit.measures),
                    ],
                )
            elif visit.author is not self.gp or self.rng.random() < 0.2:
                conclusion = [f"Diagnostic : {d.label}." for d in visit.diagnoses] or [
                    "Examen sans particularité."
                ]
                if visit.prescriptions:
                    conclusion.append(
                        "Traitement : " + ", ".join(m.label for m, _ in visit.prescriptions) + "."
                    )
                self._document(
                    codes.DOC_CONSULTATION,
                    visit,
                    [
                        ("Motif de consultation", [visit.reason]),
                        ("Antécédents", self._history_lines(day)),
                        ("Examen clinique", visit.measures),
                        ("Conclusion", conclusion),
                    ],
                    restricted=restricted,
                )

    def pad_with_steps(self, target: int) -> None:
        """Add daily step counts, going back from the end, until the bundle has ``target`` resources."""
        if self.device_urn is None:
            self.device_urn = self._add(
                {
                    "resourceType": "Device",
                    "status": "active",
                    "deviceName": [{"name": "Bracelet podomètre connecté", "type": "user-friendly-name"}],
                    "patient": {"reference": self.patient_urn},
                }
            )
        day = self.end
        existing = {
            r["effectiveDateTime"][:10]
            for _, r in self.entries
            if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "41950-7"
        }
        while len(self.entries) + 1 < target and day >= self.start:
            if day.isoformat() not in existing:
                self.observation(
                    "steps", self.steps(day), datetime(day.year, day.month, day.day, 23, 59), None, None
                )
            day -= timedelta(days=1)


def patient_bundle(
    ident: Identity,
    directory: Directory,
    rng: random.Random,
    *,
    start_year: int,
    end_year: int,
    ins: InsFlavour = "nir",
    forced_conditions: Sequence[str] | None = None,
    forced_allergies: Sequence[str] | None = None,
    target_resources: int | None = None,
) -> dict[str, Any]:
    """The transaction Bundle of one citizen: the Patient then their whole history (POST entries)."""
    hub = directory.hub_for(ident.residence.commune)
    builder = HistoryBuilder(
        rng,
        ident,
        hub,
        start_year=start_year,
        end_year=end_year,
        forced_conditions=forced_conditions,
        forced_allergies=forced_allergies,
    )
    builder.build()
    if target_resources is not None:
        builder.pad_with_steps(target_resources)
    patient = patient_resource(ident, rng, builder.gp, ins, builder.end)
    entries = [(builder.patient_urn, patient), *builder.entries]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": urn,
                "resource": resource,
                "request": {"method": "POST", "url": resource["resourceType"]},
            }
            for urn, resource in entries
        ],
    }
