"""Public-health alerts: an authority's message to the people a few criteria designate.

An operator (a health authority: the ministry, an ARS) broadcasts a message (title, text, topic)
to a population defined by criteria evaluated **inside** the platform — nobody outside learns who
matched:

* an age range (on the day of the broadcast, from ``Patient.birthDate``);
* where the person lives: an INSEE region or department, from ``Patient.address`` (the FR Core
  INSEE commune code extension, else the postal code; ``regions.json`` maps departments to regions);
* a condition: an active ``Condition`` with one of the given codes (SNOMED CT, ICD-10…);
* a vaccination status: has, or has not, a completed ``Immunization`` with one of the vaccine codes.

Each recipient gets a ``Communication`` in their record (category ``alert``, ``topic`` = the
theme and the title, ``reasonCode.text`` = why they received it, in plain French: "Vous
recevez ce message car : vous avez 65 ans ou plus et habitez en Bretagne"), created as the
operator; the notification poller (``hygie/delivery.py``) then tells them by e-mail/SMS.

**Opting out, per topic**: the person's choice is a FHIR ``Consent`` of their record (category
:data:`OPT_OUT_CATEGORY`, ``scope`` ``patient-privacy``, one ``deny`` provision with purpose
``PUBHLTH`` and the refused topics as ``provision.code``): a recorded, dated, revocable decision of
the person about the use of their contact for a purpose, which is what a Consent is for, and
what the access rules ignore (its provision names no actor, so it opens or closes nothing).
The broadcast reads the active opt-outs first and skips those people.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from importlib.resources import files
from typing import Any, Protocol

from hygie.domain.access import Caller
from hygie.domain.ens.messaging import HYGIE_FHIR, french_datetime, instant_of
from hygie.domain.ens.records_port import Records

__all__ = [
    "ALERT_CATEGORY",
    "OPT_OUT_CATEGORY",
    "TOPICS",
    "Alert",
    "BroadcastReport",
    "Criteria",
    "alert_resource",
    "broadcast",
    "department_name",
    "department_of",
    "explain",
    "opt_out_consent",
    "opted_out_topics",
    "reasons_for",
    "region_code",
    "region_of",
    "region_of_department",
    "regions",
]

COMMUNICATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"
ALERT_CATEGORY: dict[str, str] = {"system": COMMUNICATION_CATEGORY, "code": "alert", "display": "Alert"}
TOPIC_SYSTEM = f"{HYGIE_FHIR}/CodeSystem/ens-alert-topic"
OPT_OUT_CATEGORY: dict[str, str] = {
    "system": f"{HYGIE_FHIR}/CodeSystem/ens-consent",
    "code": "alertes-sante",
    "display": "Choix des alertes de santé publique",
}
INSEE_EXTENSION = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code"
TOPICS: dict[str, str] = {
    "vaccination": "Vaccination",
    "canicule": "Canicule et fortes chaleurs",
    "grand-froid": "Grand froid",
    "depistage": "Dépistage",
    "epidemie": "Épidémies",
    "pollution": "Pollution de l’air",
    "medicament": "Alerte sur un médicament",
}


@functools.cache
def _regions() -> dict[str, dict[str, Any]]:
    data = json.loads(files("hygie.domain.ens").joinpath("regions.json").read_text(encoding="utf-8"))
    regions: dict[str, dict[str, Any]] = data["regions"]
    return regions


def _fold(text: str) -> str:
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return "".join(c for c in plain.lower() if c.isalnum())


def region_code(value: str) -> str | None:
    """An INSEE region code from its code or its name ("53", "Bretagne", "ile-de-france")."""
    wanted = value.strip()
    if wanted in _regions():
        return wanted
    folded = _fold(wanted)
    return next((code for code, r in _regions().items() if _fold(r["name"]) == folded), None)


def department_name(code: str) -> str | None:
    return next((r["departments"][code] for r in _regions().values() if code in r["departments"]), None)


def _department_of_commune(insee: str) -> str | None:
    insee = insee.strip().upper()
    if len(insee) != 5:
        return None
    department = insee[:3] if insee.startswith("97") else insee[:2]
    return department if department_name(department) else None


def _department_of_postcode(postcode: str) -> str | None:
    digits = postcode.strip()
    if len(digits) != 5 or not digits.isdigit():
        return None
    if digits.startswith("97"):
        department = digits[:3]
    elif digits.startswith("20"):
        department = "2A" if int(digits) < 20200 else "2B"  # Corsica: 200xx-201xx south, 202xx-206xx north
    else:
        department = digits[:2]
    return department if department_name(department) else None


def _home(patient: dict[str, Any]) -> dict[str, Any] | None:
    addresses = [a for a in patient.get("address", []) or [] if isinstance(a, dict)]
    live = [a for a in addresses if not (isinstance(a.get("period"), dict) and a["period"].get("end"))]
    return next((a for a in live if a.get("use") == "home"), live[0] if live else None)


def department_of(patient: dict[str, Any]) -> str | None:
    """The department of the person's home address (INSEE commune code first, else postcode) —
    or of any directory entry's current address (a structure's, a professional's)."""
    home = _home(patient)
    if home is None:
        return None
    for ext in home.get("extension", []) or []:
        if isinstance(ext, dict) and ext.get("url") == INSEE_EXTENSION:
            code = (ext.get("valueCoding") or {}).get("code")
            if isinstance(code, str) and (found := _department_of_commune(code)):
                return found
    return _department_of_postcode(str(home.get("postalCode") or ""))


def region_of(patient: dict[str, Any]) -> str | None:
    department = department_of(patient)
    return None if department is None else region_of_department(department)


def region_of_department(department: str) -> str | None:
    """The INSEE region of a department code."""
    return next((code for code, r in _regions().items() if department in r["departments"]), None)


def regions() -> dict[str, dict[str, Any]]:
    """The INSEE regions: code -> name, "in <region>" and departments (``regions.json``)."""
    return _regions()


def age_on(birth_date: str, day: date) -> int | None:
    try:
        born = date.fromisoformat(birth_date[:10]) if len(birth_date) >= 10 else None
    except ValueError:
        return None
    if born is None:
        return None
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


@dataclass(frozen=True, slots=True)
class Criteria:
    """Who an alert is for. Codes are FHIR tokens (``system|code`` or ``code``)."""

    age_min: int | None = None
    age_max: int | None = None
    regions: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    condition_label: str = ""
    vaccines: tuple[str, ...] = ()
    vaccinated: bool | None = None  # True: has; False: has not; None: not a criterion
    vaccine_label: str = ""

    def problems(self) -> list[str]:
        """What is wrong with these criteria (in French), empty when they can be used."""
        out: list[str] = []
        if self.age_min is not None and not 0 <= self.age_min <= 130:
            out.append("l’âge minimum doit être compris entre 0 et 130 ans")
        if self.age_max is not None and not 0 <= self.age_max <= 130:
            out.append("l’âge maximum doit être compris entre 0 et 130 ans")
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            out.append("l’âge minimum dépasse l’âge maximum")
        out.extend(f"région inconnue : {r}" for r in self.regions if r not in _regions())
        out.extend(f"département inconnu : {d}" for d in self.departments if department_name(d) is None)
        if self.vaccinated is not None and not self.vaccines:
            out.append("le statut vaccinal demande au moins un code de vaccin")
        if self.vaccines and self.vaccinated is None:
            out.append("précisez si les personnes visées ont été vaccinées ou non")
        return out


@dataclass(frozen=True, slots=True)
class Alert:
    title: str
    text: str
    topic: str
    issuer: str = "Ministère chargé de la santé"


@dataclass(slots=True)
class Facts:
    """What the evaluation knows about one person, beyond their Patient resource."""

    conditions: set[str] = field(default_factory=set)  # Patient ids with a matching active condition
    vaccinated: set[str] = field(default_factory=set)  # Patient ids with a matching immunization
    condition_names: dict[str, str] = field(default_factory=dict)  # patient id -> the condition's label
    vaccine_names: dict[str, str] = field(default_factory=dict)


def _join(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " et " + parts[-1]


def reasons_for(patient: dict[str, Any], criteria: Criteria, facts: Facts, today: date) -> list[str] | None:
    """Why this person is concerned (the matched criteria, in French), or None if they are not."""
    pid = str(patient.get("id", ""))
    if (
        patient.get("active") is False
        or patient.get("deceasedBoolean") is True
        or patient.get("deceasedDateTime")
    ):
        return None
    reasons: list[str] = []
    if criteria.age_min is not None or criteria.age_max is not None:
        age = age_on(str(patient.get("birthDate") or ""), today)
        if age is None:
            return None
        if criteria.age_min is not None and age < criteria.age_min:
            return None
        if criteria.age_max is not None and age > criteria.age_max:
            return None
        if criteria.age_min is not None and criteria.age_max is not None:
            reasons.append(f"vous avez entre {criteria.age_min} et {criteria.age_max} ans")
        elif criteria.age_min is not None:
            reasons.append(f"vous avez {criteria.age_min} ans ou plus")
        else:
            reasons.append(f"vous avez {criteria.age_max} ans ou moins")
    if criteria.regions or criteria.departments:
        department = department_of(patient)
        region = region_of(patient)
        if department in criteria.departments:
            reasons.append(f"habitez dans le département {department_name(department)} ({department})")
        elif region in criteria.regions:
            reasons.append(f"habitez {_regions()[region]['in']}")
        else:
            return None
    if criteria.conditions:
        if pid not in facts.conditions:
            return None
        label = criteria.condition_label or facts.condition_names.get(pid) or "une maladie concernée"
        reasons.append(f"êtes suivi(e) pour : {label}")
    if criteria.vaccinated is not None:
        has = pid in facts.vaccinated
        label = criteria.vaccine_label or facts.vaccine_names.get(pid) or "la maladie concernée"
        if criteria.vaccinated and not has:
            return None
        if not criteria.vaccinated and has:
            return None
        reasons.append(
            f"avez été vacciné(e) contre : {label}"
            if criteria.vaccinated
            else f"n’avez pas de vaccination enregistrée contre : {label}"
        )
    return reasons


def explain(reasons: Sequence[str]) -> str:
    """ "Vous recevez ce message car : vous avez 65 ans ou plus et habitez en Bretagne"."""
    if not reasons:
        return "Vous recevez ce message car il s’adresse à toute la population."
    first, *rest = reasons
    if not first.startswith("vous "):
        first = "vous " + first
    return "Vous recevez ce message car : " + _join([first, *rest])


def alert_resource(
    alert: Alert, patient_id: str, reasons: Sequence[str], broadcast_id: str, now_us: int
) -> dict[str, Any]:
    return {
        "resourceType": "Communication",
        "identifier": [{"system": f"{HYGIE_FHIR}/alert-broadcast", "value": f"{broadcast_id}/{patient_id}"}],
        "status": "completed",
        "category": [{"coding": [dict(ALERT_CATEGORY)], "text": "Alerte de santé publique"}],
        "priority": "urgent" if alert.topic in ("canicule", "grand-froid", "medicament") else "routine",
        "subject": {"reference": f"Patient/{patient_id}"},
        "topic": {
            "coding": [{"system": TOPIC_SYSTEM, "code": alert.topic, "display": TOPICS[alert.topic]}],
            "text": alert.title,
        },
        "sent": instant_of(now_us),
        "sender": {"display": alert.issuer},
        "recipient": [{"reference": f"Patient/{patient_id}"}],
        "reasonCode": [{"text": explain(reasons)}],
        "payload": [{"contentString": alert.text}],
    }


def is_alert(resource: dict[str, Any]) -> bool:
    return any(
        c.get("system") == COMMUNICATION_CATEGORY and c.get("code") == "alert"
        for concept in resource.get("category", []) or []
        if isinstance(concept, dict)
        for c in concept.get("coding", []) or []
        if isinstance(c, dict)
    )


def topic_of(resource: dict[str, Any]) -> str | None:
    for c in (resource.get("topic") or {}).get("coding", []) or []:
        if isinstance(c, dict) and c.get("system") == TOPIC_SYSTEM:
            return str(c.get("code"))
    return None


@dataclass(frozen=True, slots=True)
class AlertView:
    id: str
    title: str
    topic: str
    topic_label: str
    issuer: str
    sent: str
    text: str
    reason: str
    unread: bool


def view_alert(resource: dict[str, Any]) -> AlertView:
    topic = topic_of(resource) or ""
    return AlertView(
        id=str(resource.get("id", "")),
        title=str((resource.get("topic") or {}).get("text") or "Alerte de santé publique"),
        topic=topic,
        topic_label=TOPICS.get(topic, "Santé publique"),
        issuer=str((resource.get("sender") or {}).get("display") or "Autorité de santé"),
        sent=french_datetime(resource.get("sent")),
        text="\n\n".join(
            str(p["contentString"])
            for p in resource.get("payload", []) or []
            if isinstance(p, dict) and "contentString" in p
        ),
        reason=str(((resource.get("reasonCode") or [{}])[0] or {}).get("text") or ""),
        unread=not resource.get("received"),
    )


# -- opting out ---------------------------------------------------------------------------------


def opted_out_topics(consent: dict[str, Any] | None) -> set[str]:
    """The topics an active opt-out Consent refuses."""
    if not consent or consent.get("status") != "active":
        return set()
    provision = consent.get("provision") or {}
    if provision.get("type") != "deny":
        return set()
    return {
        str(c.get("code"))
        for concept in provision.get("code", []) or []
        if isinstance(concept, dict)
        for c in concept.get("coding", []) or []
        if isinstance(c, dict) and c.get("system") == TOPIC_SYSTEM and c.get("code") in TOPICS
    }


def opt_out_consent(
    patient_ref: str, topics: Iterable[str], now_us: int, existing: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The person's opt-out Consent refusing ``topics`` (inactive when they refuse none)."""
    chosen = sorted(t for t in set(topics) if t in TOPICS)
    consent: dict[str, Any] = {
        "resourceType": "Consent",
        "status": "active" if chosen else "inactive",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [dict(OPT_OUT_CATEGORY)]}],
        "patient": {"reference": patient_ref},
        "dateTime": instant_of(now_us),
        "provision": {
            "type": "deny",
            "purpose": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                    "code": "PUBHLTH",
                    "display": "public health",
                }
            ],
        },
    }
    if chosen:  # (FHIR has no empty arrays: a consent refusing nothing names no topic)
        consent["provision"]["code"] = [
            {"coding": [{"system": TOPIC_SYSTEM, "code": t, "display": TOPICS[t]}]} for t in chosen
        ]
    if existing is not None and existing.get("id"):
        consent["id"] = existing["id"]
    return consent


# -- the broadcast ------------------------------------------------------------------------------


@dataclass(slots=True)
class BroadcastReport:
    broadcast_id: str
    matched: int = 0
    opted_out: int = 0
    sent: list[str] = field(default_factory=list)  # Communication ids


def _patient_id(resource: dict[str, Any], element: str) -> str | None:
    ref = (resource.get(element) or {}).get("reference") if isinstance(resource.get(element), dict) else None
    if isinstance(ref, str) and ref.startswith("Patient/"):
        return ref.split("/", 1)[1]
    return None


def _birthdate_bounds(criteria: Criteria, today: date) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []

    def shift(years: int) -> date:
        try:
            return today.replace(year=today.year - years)
        except ValueError:  # 29 February
            return today.replace(year=today.year - years, day=28)

    if criteria.age_min is not None:
        params.append(("birthdate", f"le{shift(criteria.age_min).isoformat()}"))
    if criteria.age_max is not None:
        params.append(("birthdate", f"gt{shift(criteria.age_max + 1).isoformat()}"))
    return params


async def facts_for(records: Records, caller: Caller, criteria: Criteria) -> Facts:
    facts = Facts()
    if criteria.conditions:
        found = await records.search(
            caller,
            "Condition",
            [("code", ",".join(criteria.conditions)), ("clinical-status", "active"), ("_count", "500")],
            limit=10_000_000,
        )
        for condition in found:
            pid = _patient_id(condition, "subject")
            if pid:
                facts.conditions.add(pid)
                facts.condition_names.setdefault(pid, str((condition.get("code") or {}).get("text") or ""))
    if criteria.vaccinated is not None:
        found = await records.search(
            caller,
            "Immunization",
            [("vaccine-code", ",".join(criteria.vaccines)), ("status", "completed"), ("_count", "500")],
            limit=10_000_000,
        )
        for immunization in found:
            pid = _patient_id(immunization, "patient")
            if pid:
                facts.vaccinated.add(pid)
                facts.vaccine_names.setdefault(
                    pid, str((immunization.get("vaccineCode") or {}).get("text") or "")
                )
    return facts


async def opt_outs(records: Records, caller: Caller, topic: str) -> set[str]:
    """The people who refuse alerts on ``topic``."""
    consents = await records.search(
        caller,
        "Consent",
        [
            ("category", f"{OPT_OUT_CATEGORY['system']}|{OPT_OUT_CATEGORY['code']}"),
            ("status", "active"),
            ("_count", "500"),
        ],
        limit=10_000_000,
    )
    return {pid for c in consents if topic in opted_out_topics(c) and (pid := _patient_id(c, "patient"))}


async def targets(
    records: Records, caller: Caller, criteria: Criteria, today: date
) -> list[tuple[str, list[str]]]:
    """(patient id, reasons) of everyone the criteria designate."""
    facts = await facts_for(records, caller, criteria)
    patients = await records.search(
        caller, "Patient", [*_birthdate_bounds(criteria, today), ("_count", "500")], limit=10_000_000
    )
    out: list[tuple[str, list[str]]] = []
    for patient in patients:
        reasons = reasons_for(patient, criteria, facts, today)
        if reasons is not None:
            out.append((str(patient["id"]), reasons))
    return out


class _Checkable(Protocol):
    def problems(self) -> list[str]: ...


def check_broadcast(alert: Alert, criteria: _Checkable) -> None:
    """Refuse (ValueError, in French) an unknown topic or criteria with problems, before anything
    is evaluated or written — for citizens' and professionals' broadcasts alike."""
    if alert.topic not in TOPICS:
        raise ValueError(f"thème inconnu : {alert.topic} (thèmes : {', '.join(TOPICS)})")
    problems = criteria.problems()
    if problems:
        raise ValueError("; ".join(problems))


async def broadcast(
    records: Records,
    caller: Caller,
    alert: Alert,
    criteria: Criteria,
    *,
    broadcast_id: str,
    now_us: int,
    today: date,
    dry_run: bool = False,
) -> BroadcastReport:
    """Evaluate the criteria, skip those who opted out of the topic, write each alert."""
    check_broadcast(alert, criteria)
    report = BroadcastReport(broadcast_id)
    refused = await opt_outs(records, caller, alert.topic)
    for patient_id, reasons in await targets(records, caller, criteria, today):
        report.matched += 1
        if patient_id in refused:
            report.opted_out += 1
            continue
        if dry_run:
            continue
        created = await records.create(
            caller, alert_resource(alert, patient_id, reasons, broadcast_id, now_us)
        )
        report.sent.append(str(created["id"]))
    return report
