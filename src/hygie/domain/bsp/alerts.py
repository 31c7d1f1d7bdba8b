"""An authority's alert to health professionals (a "DGS-Urgent"-style message), by profession and place.

The citizens' alerts (``domain/ens/alerts.py``) reach people through their records; professionals
are reached through the directory, outside any record:

* **who**: the active ``Practitioner`` entries whose profession (TRE_G15, from their
  qualification) is one of those named — none named: every profession;
* **where**: an INSEE region or department where they practise — the address of a structure one of
  their active ``PractitionerRole`` works for, or their own ``Practitioner.address``.

Each professional gets one ``Communication`` of the same ``alert`` category as the citizens',
without ``subject`` (it is about no patient) and with the professional as its only
``recipient``: outside every record, the access rules keep such a message to its parties
(``domain/policy.py``, *correspondence*), so only they read it and acknowledge it
(``$mark-received``). ``reasonCode.text`` says why they received it ("Vous recevez ce message
car : vous êtes médecin et exercez en Bretagne"). The criteria are evaluated inside the platform,
as the operator, through the FHIR service (every read audited).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from hygie.domain.access import Caller
from hygie.domain.bsp.messaging import PROFESSIONS, profession_of
from hygie.domain.ens.alerts import (
    ALERT_CATEGORY,
    TOPIC_SYSTEM,
    TOPICS,
    Alert,
    BroadcastReport,
    check_broadcast,
    department_name,
    department_of,
    explain,
    region_of_department,
    regions,
)
from hygie.domain.ens.messaging import HYGIE_FHIR, instant_of
from hygie.domain.ens.records_port import Records

__all__ = [
    "ProfessionalCriteria",
    "broadcast_to_professionals",
    "profession_code",
    "professional_alert",
    "reasons_for_professional",
]

# the profession's name in "vous êtes …" (TRE_G15)
_BEING: Final[dict[str, str]] = {
    "10": "médecin",
    "21": "pharmacien(ne)",
    "40": "chirurgien(ne)-dentiste",
    "50": "sage-femme",
    "60": "infirmier(ère)",
    "70": "masseur(se)-kinésithérapeute",
    "80": "pédicure-podologue",
}
_WORDS: Final[dict[str, str]] = {
    "medecin": "10",
    "medecins": "10",
    "pharmacien": "21",
    "pharmaciens": "21",
    "dentiste": "40",
    "chirurgien-dentiste": "40",
    "sage-femme": "50",
    "sages-femmes": "50",
    "infirmier": "60",
    "infirmiers": "60",
    "infirmiere": "60",
    "kinesitherapeute": "70",
    "masseur-kinesitherapeute": "70",
    "kine": "70",
    "podologue": "80",
    "pedicure-podologue": "80",
}


def _fold(text: str) -> str:
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return plain.strip().lower().replace(" ", "-")


def profession_code(value: str) -> str | None:
    """A TRE_G15 code from its code or a French word ("10", "médecin", "Infirmière")."""
    wanted = value.strip()
    if wanted in PROFESSIONS:
        return wanted
    folded = _fold(wanted)
    by_label = {_fold(label): code for code, label in PROFESSIONS.items()}
    return _WORDS.get(folded) or by_label.get(folded)


@dataclass(frozen=True, slots=True)
class ProfessionalCriteria:
    """Which professionals an alert is for (empty: every profession, everywhere)."""

    professions: tuple[str, ...] = ()  # TRE_G15 codes
    regions: tuple[str, ...] = ()  # INSEE region codes
    departments: tuple[str, ...] = ()  # INSEE department codes

    def problems(self) -> list[str]:
        out = [f"profession inconnue : {p}" for p in self.professions if p not in PROFESSIONS]
        out.extend(f"région inconnue : {r}" for r in self.regions if r not in regions())
        out.extend(f"département inconnu : {d}" for d in self.departments if department_name(d) is None)
        return out


def reasons_for_professional(
    profession: str | None, departments: Iterable[str], criteria: ProfessionalCriteria
) -> list[str] | None:
    """Why this professional is concerned (French, after "vous"), or None when they are not."""
    reasons: list[str] = []
    if criteria.professions:
        if profession not in criteria.professions:
            return None
        reasons.append(f"êtes {_BEING.get(profession or '', 'professionnel(le) de santé')}")
    if criteria.regions or criteria.departments:
        places = [d for d in dict.fromkeys(departments) if d]
        department = next((d for d in places if d in criteria.departments), None)
        if department is not None:
            reasons.append(f"exercez dans le département {department_name(department)} ({department})")
        else:
            region = next(
                (r for r in (region_of_department(d) for d in places) if r in criteria.regions), None
            )
            if region is None:
                return None
            reasons.append(f"exercez {regions()[region]['in']}")
    return reasons


def professional_alert(
    alert: Alert, practitioner_id: str, reasons: Sequence[str], broadcast_id: str, now_us: int
) -> dict[str, Any]:
    """The alert as the professional receives it: about no patient, to them alone."""
    if reasons:
        why = explain(reasons)
    else:
        why = "Vous recevez ce message car il s’adresse à tous les professionnels de santé."
    return {
        "resourceType": "Communication",
        "identifier": [
            {
                "system": f"{HYGIE_FHIR}/alert-broadcast",
                "value": f"{broadcast_id}/Practitioner/{practitioner_id}",
            }
        ],
        "status": "completed",
        "category": [{"coding": [dict(ALERT_CATEGORY)], "text": "Alerte sanitaire"}],
        "priority": "urgent" if alert.topic in ("canicule", "grand-froid", "medicament") else "routine",
        "topic": {
            "coding": [{"system": TOPIC_SYSTEM, "code": alert.topic, "display": TOPICS[alert.topic]}],
            "text": alert.title,
        },
        "sent": instant_of(now_us),
        "sender": {"display": alert.issuer},
        "recipient": [{"reference": f"Practitioner/{practitioner_id}"}],
        "reasonCode": [{"text": why}],
        "payload": [{"contentString": alert.text}],
    }


def _ref_id(value: Any, rtype: str) -> str | None:
    ref = value.get("reference") if isinstance(value, dict) else None
    if isinstance(ref, str) and ref.startswith(f"{rtype}/") and ref.count("/") == 1:
        return ref.split("/", 1)[1]
    return None


async def targets(
    records: Records, caller: Caller, criteria: ProfessionalCriteria
) -> list[tuple[str, list[str]]]:
    """(Practitioner id, reasons) of every professional the criteria designate."""
    practitioners = await records.search(caller, "Practitioner", [("_count", "500")], limit=10_000_000)
    places: dict[str, list[str]] = {}
    if criteria.regions or criteria.departments:
        organizations = {
            str(o.get("id")): department_of(o)
            for o in await records.search(caller, "Organization", [("_count", "500")], limit=10_000_000)
        }
        roles = await records.search(caller, "PractitionerRole", [("_count", "500")], limit=10_000_000)
        for role in roles:
            pid = _ref_id(role.get("practitioner"), "Practitioner")
            oid = _ref_id(role.get("organization"), "Organization")
            if pid and oid and role.get("active") is not False and organizations.get(oid):
                places.setdefault(pid, []).append(str(organizations[oid]))
    out: list[tuple[str, list[str]]] = []
    for practitioner in practitioners:
        if practitioner.get("active") is False:
            continue
        pid = str(practitioner.get("id"))
        own = department_of(practitioner) if practitioner.get("address") else None
        where = [*places.get(pid, []), *([own] if own else [])]
        reasons = reasons_for_professional(profession_of(practitioner), where, criteria)
        if reasons is not None:
            out.append((pid, reasons))
    return out


async def broadcast_to_professionals(
    records: Records,
    caller: Caller,
    alert: Alert,
    criteria: ProfessionalCriteria,
    *,
    broadcast_id: str,
    now_us: int,
    dry_run: bool = False,
) -> BroadcastReport:
    """Evaluate the criteria over the directory and write each professional's alert."""
    check_broadcast(alert, criteria)
    report = BroadcastReport(broadcast_id)
    for practitioner_id, reasons in await targets(records, caller, criteria):
        report.matched += 1
        if dry_run:
            continue
        created = await records.create(
            caller, professional_alert(alert, practitioner_id, reasons, broadcast_id, now_us)
        )
        report.sent.append(str(created["id"]))
    return report
