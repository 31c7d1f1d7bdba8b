"""The person's prescriptions (*ordonnances*): what was prescribed, what the pharmacy handed over,
and the renewal requests they send to the prescriber.

* One prescription is the set of ``MedicationRequest`` sharing a ``groupIdentifier`` (the
  e-prescription number); a request without one is a prescription of its own.
* What was dispensed comes from the ``MedicationDispense`` resources whose
  ``authorizingPrescription`` names a line: ``completed`` ones count as a delivery, an
  ``in-progress`` one as a partial delivery. A line may be delivered ``1 + numberOfRepeatsAllowed``
  times (*à renouveler N fois*) while its ``validityPeriod`` lasts.
* A renewal request is a FHIR ``Task`` (intent ``order``, ``focus`` the first line, every line as
  an ``input``, ``for`` the patient, ``owner`` the prescriber, ``requester`` the person or the
  relative acting for them, status ``requested``) coded with Hygie's local code
  ``renew-prescription``: no standard code says "renew this prescription" (``fulfill`` of
  ``task-code`` asks to carry the request out, i.e. to dispense it). The prescriber's inbox (the
  professional portal) lists the Tasks it owns; there is at most one open request per prescription.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from hygie.domain.ens.vitals import ENS_SYSTEM, PARIS

__all__ = [
    "OPEN_TASK_STATUSES",
    "RENEWAL_CODE",
    "Dispense",
    "Line",
    "Prescription",
    "Renewal",
    "check_note",
    "group",
    "open_request",
    "renewal_task",
    "renewals_of",
]

RENEWAL_CODE: Final = {
    "system": ENS_SYSTEM,
    "code": "renew-prescription",
    "display": "Demande de renouvellement d'ordonnance",
}
OPEN_TASK_STATUSES: Final = frozenset(
    {"draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold"}
)
TASK_WORDS: Final = {
    "draft": "en préparation",
    "requested": "envoyée, en attente de réponse",
    "received": "reçue par le prescripteur",
    "accepted": "acceptée par le prescripteur",
    "ready": "prête",
    "in-progress": "en cours de traitement",
    "on-hold": "en attente",
    "completed": "traitée par le prescripteur",
    "rejected": "refusée par le prescripteur",
    "cancelled": "annulée",
    "failed": "n’a pas pu aboutir",
    "entered-in-error": "annulée (erreur)",
}
NOTE_MAX: Final = 1000


@dataclass(frozen=True, slots=True)
class Dispense:
    id: str
    when: date | None
    status: str
    quantity: str  # "2 boîtes", "" when unknown
    pharmacy: str
    substituted: bool


@dataclass(frozen=True, slots=True)
class Line:
    id: str
    medicine: str
    dosage: str
    status: str  # FHIR MedicationRequest.status
    repeats: int  # numberOfRepeatsAllowed
    valid_until: date | None
    dispenses: tuple[Dispense, ...]
    state: str  # prescribed | partial | dispensed | expired | cancelled | stopped | completed | on-hold
    state_label: str
    remaining: int | None  # deliveries still possible (None: not applicable)

    @property
    def delivered(self) -> int:
        return sum(1 for d in self.dispenses if d.status == "completed")


@dataclass(frozen=True, slots=True)
class Renewal:
    id: str
    version: str
    status: str
    words: str
    asked: str  # "12/05/2026"
    reason: str  # why it was refused / closed, when the prescriber said
    open: bool
    note: str


@dataclass(slots=True)
class Prescription:
    key: str  # the id of its first line: the page's address
    number: str
    authored: date | None
    prescriber_ref: str
    prescriber_name: str
    lines: list[Line]
    state: str = ""
    state_label: str = ""
    renewals: list[Renewal] = field(default_factory=list)

    @property
    def current(self) -> bool:
        return self.state in ("prescribed", "partial")

    @property
    def open_renewal(self) -> Renewal | None:
        return next((r for r in self.renewals if r.open), None)


def _date(text: Any) -> date | None:
    if not isinstance(text, str) or len(text) < 10:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _french(day: date | None) -> str:
    return day.strftime("%d/%m/%Y") if day else ""


def _concept_text(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for c in concept.get("coding") or []:
        if isinstance(c, dict) and c.get("display"):
            return str(c["display"])
    return ""


def medicine_of(request: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]) -> str:
    """The medicine in words: the prescription's text, or its coded display, or the Medication's."""
    text = _concept_text(request.get("medicationCodeableConcept"))
    if text:
        return text
    ref = (request.get("medicationReference") or {}).get("reference")
    medication = medications.get(str(ref)) if ref else None
    if medication:
        return _concept_text(medication.get("code")) or "Médicament"
    return str((request.get("medicationReference") or {}).get("display") or "Médicament")


def dosage_of(request: Mapping[str, Any]) -> str:
    texts = [
        str(d["text"])
        for d in request.get("dosageInstruction") or []
        if isinstance(d, dict) and d.get("text")
    ]
    return " ; ".join(texts) or "Voir l’ordonnance"


def _quantity(dispense: Mapping[str, Any]) -> str:
    q = dispense.get("quantity") or {}
    value = q.get("value")
    if not isinstance(value, (int, float)):
        return ""
    unit = str(q.get("unit") or "")
    number = int(value) if float(value).is_integer() else value
    return f"{number} {unit}".strip()


def _dispense(resource: Mapping[str, Any]) -> Dispense:
    performer = next(
        (p.get("actor") for p in resource.get("performer") or [] if isinstance(p, dict) and p.get("actor")),
        None,
    )
    pharmacy = str((performer or {}).get("display") or "") or "une pharmacie"
    return Dispense(
        str(resource.get("id", "")),
        _date(resource.get("whenHandedOver") or resource.get("whenPrepared")),
        str(resource.get("status", "")),
        _quantity(resource),
        pharmacy,
        bool((resource.get("substitution") or {}).get("wasSubstituted")),
    )


_LINE_WORDS: Final = {
    "prescribed": "Prescrite, pas encore délivrée",
    "partial": "Délivrée en partie",
    "dispensed": "Entièrement délivrée",
    "expired": "Expirée",
    "cancelled": "Annulée",
    "stopped": "Arrêtée",
    "completed": "Terminée",
    "on-hold": "Suspendue",
}


def _line(
    request: Mapping[str, Any], dispenses: list[Dispense], medications: Mapping[str, Any], today: date
) -> Line:
    status = str(request.get("status", ""))
    dispense_request = request.get("dispenseRequest") or {}
    repeats_value = dispense_request.get("numberOfRepeatsAllowed")
    repeats = int(repeats_value) if isinstance(repeats_value, int) else 0
    valid_until = _date((dispense_request.get("validityPeriod") or {}).get("end"))
    delivered = sum(1 for d in dispenses if d.status == "completed")
    partial_now = any(d.status == "in-progress" for d in dispenses)
    allowed = 1 + repeats
    remaining: int | None = max(0, allowed - delivered)
    if status in ("cancelled", "entered-in-error"):
        state, remaining = "cancelled", None
    elif status == "stopped":
        state, remaining = "stopped", None
    elif status == "on-hold":
        state = "on-hold"
    elif delivered >= allowed:
        state = "dispensed"
    elif valid_until is not None and valid_until < today:
        state, remaining = "expired", 0
    elif delivered > 0 or partial_now:
        state = "partial"
    elif status == "completed":
        state, remaining = "completed", None
    else:
        state = "prescribed"
    label = _LINE_WORDS[state]
    if state == "partial":
        label = f"Délivrée en partie ({delivered} délivrance{'s' if delivered > 1 else ''} sur {allowed})"
    return Line(
        str(request.get("id", "")),
        medicine_of(request, medications),
        dosage_of(request),
        status,
        repeats,
        valid_until,
        tuple(sorted(dispenses, key=lambda d: d.when or date.min)),
        state,
        label,
        remaining,
    )


_GROUP_WORDS: Final = {
    "prescribed": "Prescrite",
    "partial": "Délivrée en partie",
    "dispensed": "Entièrement délivrée",
    "expired": "Expirée",
    "cancelled": "Annulée",
    "stopped": "Arrêtée",
    "completed": "Terminée",
    "on-hold": "Suspendue",
}


def _group_state(lines: list[Line]) -> str:
    """One word for the whole prescription, from its lines' states."""
    states = {line.state for line in lines}
    live = states - {"cancelled", "stopped"}
    if not live:
        return "cancelled" if states == {"cancelled"} else "stopped"
    if len(live) == 1:
        return next(iter(live))
    if "partial" in live or ("dispensed" in live and live & {"prescribed", "on-hold"}):
        return "partial"
    if "prescribed" in live:
        return "prescribed"
    if "expired" in live:
        return "expired"
    return "completed"


def group(
    requests: Iterable[Mapping[str, Any]],
    dispenses: Iterable[Mapping[str, Any]],
    names: Mapping[str, str],
    today: date,
    medications: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Prescription]:
    """The person's prescriptions, newest first (draft requests are not prescriptions yet)."""
    by_line: dict[str, list[Dispense]] = {}
    for d in dispenses:
        if d.get("status") in ("entered-in-error", "declined", "cancelled", "stopped"):
            continue
        for ref in d.get("authorizingPrescription") or []:
            reference = str((ref or {}).get("reference", ""))
            if reference.startswith("MedicationRequest/"):
                by_line.setdefault(reference.split("/", 1)[1], []).append(_dispense(d))
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in requests:
        if r.get("status") == "draft" or r.get("intent") not in (
            "order",
            "original-order",
            "instance-order",
            None,
        ):
            continue
        number = str((r.get("groupIdentifier") or {}).get("value") or "")
        groups.setdefault(number or f"id:{r.get('id')}", []).append(r)
    out: list[Prescription] = []
    for number, unsorted in groups.items():
        members = sorted(unsorted, key=lambda r: str(r.get("id")))
        first = members[0]
        requester = first.get("requester") or {}
        ref = str(requester.get("reference") or "")
        prescription = Prescription(
            key=str(first.get("id")),
            number="" if number.startswith("id:") else number,
            authored=_date(first.get("authoredOn")),
            prescriber_ref=ref,
            prescriber_name=names.get(ref) or str(requester.get("display") or "") or "Prescripteur inconnu",
            lines=[_line(r, by_line.get(str(r.get("id")), []), medications or {}, today) for r in members],
        )
        prescription.state = _group_state(prescription.lines)
        prescription.state_label = _GROUP_WORDS[prescription.state]
        out.append(prescription)
    out.sort(key=lambda p: (p.authored or date.min, p.key), reverse=True)
    return out


def is_renewal(task: Mapping[str, Any]) -> bool:
    return any(
        c.get("system") == RENEWAL_CODE["system"] and c.get("code") == RENEWAL_CODE["code"]
        for c in (task.get("code") or {}).get("coding", []) or []
        if isinstance(c, dict)
    )


def _task_lines(task: Mapping[str, Any]) -> set[str]:
    refs = {str((task.get("focus") or {}).get("reference", ""))}
    refs.update(
        str((i.get("valueReference") or {}).get("reference", ""))
        for i in task.get("input") or []
        if isinstance(i, dict)
    )
    return {r.split("/", 1)[1] for r in refs if r.startswith("MedicationRequest/")}


def renewals_of(prescription: Prescription, tasks: Iterable[Mapping[str, Any]]) -> list[Renewal]:
    """The renewal requests about this prescription, newest first."""
    ids = {line.id for line in prescription.lines}
    out: list[tuple[str, Renewal]] = []
    for t in tasks:
        if not is_renewal(t) or not (_task_lines(t) & ids):
            continue
        status = str(t.get("status", ""))
        authored = str(t.get("authoredOn", ""))
        reason = _concept_text(t.get("statusReason")) or str(
            t.get("businessStatus", {}).get("text", "") if isinstance(t.get("businessStatus"), dict) else ""
        )
        note = next(
            (str(n.get("text")) for n in t.get("note") or [] if isinstance(n, dict) and n.get("text")), ""
        )
        out.append(
            (
                authored,
                Renewal(
                    str(t.get("id", "")),
                    str((t.get("meta") or {}).get("versionId", "")),
                    status,
                    TASK_WORDS.get(status, status),
                    _french(_date(authored)),
                    reason,
                    status in OPEN_TASK_STATUSES,
                    note,
                ),
            )
        )
    return [r for _, r in sorted(out, key=lambda x: x[0], reverse=True)]


def open_request(prescription: Prescription, tasks: Iterable[Mapping[str, Any]]) -> Renewal | None:
    return next((r for r in renewals_of(prescription, tasks) if r.open), None)


def check_note(text: str) -> str | None:
    """The error of the message to the prescriber, if any."""
    if len(text) > NOTE_MAX:
        return f"Votre message est trop long : {NOTE_MAX} caractères au plus (il en fait {len(text)})."
    return None


def why_not_renewable(prescription: Prescription) -> str | None:
    """Why a renewal cannot be asked for (None: it can)."""
    if not prescription.prescriber_ref.startswith(("Practitioner/", "PractitionerRole/")):
        return "Nous ne savons pas quel professionnel a fait cette ordonnance : demandez le renouvellement à votre médecin directement."
    if all(line.state in ("cancelled", "stopped") for line in prescription.lines):
        return "Cette ordonnance a été annulée ou arrêtée par le prescripteur."
    return None


def renewal_task(
    prescription: Prescription, patient_ref: str, requester_ref: str, now: datetime, note: str = ""
) -> dict[str, Any]:
    """The Task that asks the prescriber to renew ``prescription``."""
    lines = [line for line in prescription.lines if line.state not in ("cancelled", "stopped")]
    medicines = ", ".join(line.medicine for line in lines)
    task: dict[str, Any] = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": "routine",
        "code": {"coding": [dict(RENEWAL_CODE)], "text": "Demande de renouvellement d'ordonnance"},
        "description": f"Renouvellement demandé : {medicines}"[:1000],
        "focus": {"reference": f"MedicationRequest/{lines[0].id}", "display": lines[0].medicine},
        "for": {"reference": patient_ref},
        "authoredOn": now.astimezone(PARIS).isoformat(),
        "lastModified": now.astimezone(PARIS).isoformat(),
        "requester": {"reference": requester_ref},
        "owner": {"reference": prescription.prescriber_ref, "display": prescription.prescriber_name},
        "input": [
            {
                "type": {"text": "Ligne d'ordonnance à renouveler"},
                "valueReference": {"reference": f"MedicationRequest/{line.id}", "display": line.medicine},
            }
            for line in lines
        ],
    }
    if prescription.number:
        task["groupIdentifier"] = {"value": prescription.number}
    if note.strip():
        task["note"] = [{"text": note.strip(), "time": now.astimezone(PARIS).isoformat()}]
    return task
