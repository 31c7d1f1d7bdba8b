"""Telemedicine between professionals and with patients: tele-expertise and teleconsultation.

**Tele-expertise** (*télé-expertise*: a professional asks a colleague's opinion about a patient,
remotely) is a FHIR ``Task`` of the patient's record — ``code`` :data:`TELE_EXPERTISE`, ``for``
the patient, ``requester`` the asking professional, ``owner`` the colleague, the question as an
``input`` (type "Question") and the documents of the record it concerns as ``input``
references; the answer is its ``output`` (type "Avis") and its ``status`` the state both see:
``requested`` (waiting), ``completed`` (answered), ``rejected`` (declined, with its
``statusReason``).

The colleague must read the request and the documents, in a record they may never have opened:
a telemedicine act needs the patient's informed consent (Code de la santé publique, R. 6316-2),
which the requester attests; the request then comes with the act's ``Encounter`` (class ``VR``,
virtual; the requester as referrer, the colleague as consultant; ``Task.encounter``), written in
the same transaction. An Encounter's participants hold the ``encounter`` care relation
(``domain/relations.py``): the colleague reads the record as for a consultation while the act is
open, and for the usual time after it ends (its ``period.end`` is set when they answer); declining
cancels the Encounter, and the relation with it. Everything is written by the professionals
through the access rules: the requester needs a care relation to ask, the colleague gets theirs
from the act.

**Teleconsultation** is an ``Appointment`` with the patient and the professional as
participants, ``serviceType`` :data:`TELECONSULTATION`, and the link of its video room in the
extension ``VIDEO_LINK_URL`` (``domain/ens/calendar.py``; R4 has no ``virtualService``), repeated
in ``patientInstruction`` for any software that ignores the extension. The room is on the
referenced video service whose base address is a setting (``HYGIE_VIDEO_SERVICE_URL``): each
appointment gets its own unguessable room name (:func:`room_link`), made here — nothing is asked
of the video service. Both agendas show it: the professional's (``/bsp/agenda``) and the patient's
(``/ens/agenda``), with « Rejoindre ».
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from hygie.domain.ens.calendar import DAYS, MONTHS, STATUS_WORDS, VIDEO_LINK_URL, video_link
from hygie.domain.ens.messaging import HYGIE_FHIR, PARIS, french_datetime, instant_of

__all__ = [
    "DURATIONS",
    "PRIORITIES",
    "TELECONSULTATION",
    "TELE_EXPERTISE",
    "Consultation",
    "Expertise",
    "ExpertiseRequest",
    "TeleconsultationDraft",
    "answer_expertise",
    "check_answer",
    "check_request",
    "consultation_days",
    "expertise_resources",
    "is_expertise",
    "parse_teleconsultation",
    "room_link",
    "teleconsultation",
    "view_consultation",
    "view_expertise",
]

TELE_EXPERTISE: Final[dict[str, str]] = {
    "system": f"{HYGIE_FHIR}/CodeSystem/bsp-task",
    "code": "tele-expertise",
    "display": "Demande de télé-expertise",
}
TELECONSULTATION: Final[dict[str, str]] = {
    "system": f"{HYGIE_FHIR}/CodeSystem/bsp-appointment",
    "code": "teleconsultation",
    "display": "Téléconsultation",
}
_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_PARTICIPATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_ENCOUNTER_TYPE: Final[dict[str, str]] = {
    "system": f"{HYGIE_FHIR}/CodeSystem/bsp-encounter",
    "code": "tele-expertise",
    "display": "Acte de télé-expertise",
}
QUESTION_MAX: Final = 5000
ANSWER_MAX: Final = 5000
REASON_MAX: Final = 200
PRIORITIES: Final[dict[str, str]] = {"routine": "Habituelle", "urgent": "Urgente"}
DURATIONS: Final = (15, 20, 30, 45, 60)  # minutes
_STATES: Final[dict[str, tuple[str, str]]] = {
    # Task.status -> (French, DSFR badge)
    "requested": ("En attente de réponse", "info"),
    "received": ("En attente de réponse", "info"),
    "accepted": ("En cours", "info"),
    "in-progress": ("En cours", "info"),
    "completed": ("Avis rendu", "success"),
    "rejected": ("Déclinée", "warning"),
    "cancelled": ("Annulée", "warning"),
}
WAITING: Final = frozenset({"requested", "received", "accepted", "in-progress"})


def _ref(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        return str(value["reference"])
    return ""


def _display(value: Any) -> str:
    return str(value.get("display") or "") if isinstance(value, dict) else ""


def _party(party: tuple[str, str]) -> dict[str, str]:
    ref, display = party
    return {"reference": ref, "display": display} if display else {"reference": ref}


# -- tele-expertise ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExpertiseRequest:
    question: str
    priority: str  # routine | urgent
    documents: tuple[tuple[str, str], ...]  # (DocumentReference id, title)


def check_request(
    question: str, priority: str, consent: bool, chosen: Iterable[str], available: Mapping[str, str]
) -> tuple[ExpertiseRequest | None, dict[str, str]]:
    """The request as typed (``available``: the patient's documents open to the requester, id →
    title), or a French message per faulty field."""
    errors: dict[str, str] = {}
    text = question.strip()
    if not text:
        errors["question"] = "Posez votre question au confrère ou à la consœur."
    elif len(text) > QUESTION_MAX:
        errors["question"] = f"La question est trop longue ({len(text)} caractères, {QUESTION_MAX} au plus)."
    if priority not in PRIORITIES:
        errors["priorite"] = "Choisissez l’urgence de la demande."
    picked = list(dict.fromkeys(c for c in chosen if c))
    if any(c not in available for c in picked):
        errors["documents"] = "Choisissez les documents dans la liste."
    if not consent:
        errors["consentement"] = (
            "Une télé-expertise demande l’accord du patient : confirmez qu’il l’a donné après avoir été informé."
        )
    if errors:
        return None, errors
    return ExpertiseRequest(text, priority, tuple((c, available[c]) for c in picked)), {}


def expertise_resources(
    *,
    patient: tuple[str, str],
    requester: tuple[str, str],
    expert: tuple[str, str],
    request: ExpertiseRequest,
    now_us: int,
    encounter_ref: str,
    structure: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request (``Task``) and the act it opens (``Encounter``, to be created at
    ``encounter_ref`` — a transaction's ``urn:uuid``); ``patient``, ``requester`` and ``expert``
    are (reference, display)."""
    now = instant_of(now_us)
    patient_ref = patient[0]
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "status": "planned",
        "class": {"system": _ACT_CODE, "code": "VR", "display": "virtual"},
        "type": [{"coding": [dict(_ENCOUNTER_TYPE)], "text": "Télé-expertise"}],
        "subject": {"reference": patient_ref},
        "participant": [
            {
                "type": [{"coding": [{"system": _PARTICIPATION, "code": "REF", "display": "referrer"}]}],
                "individual": _party(requester),
            },
            {
                "type": [{"coding": [{"system": _PARTICIPATION, "code": "CON", "display": "consultant"}]}],
                "individual": _party(expert),
            },
        ],
        "period": {"start": now},
        "reasonCode": [{"text": "Télé-expertise : avis demandé par " + (requester[1] or "un confrère")}],
    }
    if structure:
        encounter["serviceProvider"] = {"reference": structure}
    task: dict[str, Any] = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": request.priority,
        "code": {"coding": [dict(TELE_EXPERTISE)], "text": "Télé-expertise"},
        "description": request.question[:200],
        "for": _party(patient),
        "encounter": {"reference": encounter_ref},
        "authoredOn": now,
        "lastModified": now,
        "requester": _party(requester),
        "owner": _party(expert),
        "input": [
            {"type": {"text": "Question"}, "valueString": request.question},
            *(
                {
                    "type": {"text": "Document"},
                    "valueReference": {"reference": f"DocumentReference/{doc_id}", "display": title},
                }
                for doc_id, title in request.documents
            ),
        ],
        "note": [
            {
                "authorReference": {"reference": requester[0]},
                "time": now,
                "text": "Le patient a été informé de cette télé-expertise et y a consenti.",
            }
        ],
    }
    return task, encounter


def check_answer(text: str, decline: bool) -> str | None:
    """Why the answer cannot be sent (French), or None."""
    answer = text.strip()
    if not answer:
        return "Expliquez pourquoi vous déclinez la demande." if decline else "Rédigez votre avis."
    if len(answer) > ANSWER_MAX:
        return f"Le texte est trop long ({len(answer)} caractères, {ANSWER_MAX} au plus)."
    return None


def answer_expertise(
    task: dict[str, Any], encounter: dict[str, Any] | None, text: str, now_us: int, *, decline: bool = False
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The request answered (``completed``, the opinion as ``output``) or declined (``rejected``,
    the reason as ``statusReason``), and its act ended (finished, or cancelled when declined)."""
    now = instant_of(now_us)
    answered = dict(task)
    answered["lastModified"] = now
    if decline:
        answered["status"] = "rejected"
        answered["statusReason"] = {"text": text.strip()}
    else:
        answered["status"] = "completed"
        answered["output"] = [{"type": {"text": "Avis"}, "valueString": text.strip()}]
    if answered.get("executionPeriod") is None:
        answered["executionPeriod"] = {"start": str(task.get("authoredOn") or now), "end": now}
    act = None
    if encounter is not None:
        act = dict(encounter)
        act["status"] = "cancelled" if decline else "finished"
        act["period"] = {**(encounter.get("period") or {}), "end": now}
    return answered, act


def is_expertise(task: Mapping[str, Any]) -> bool:
    return any(
        isinstance(c, dict)
        and c.get("system") == TELE_EXPERTISE["system"]
        and c.get("code") == TELE_EXPERTISE["code"]
        for c in (task.get("code") or {}).get("coding", []) or []
    )


@dataclass(frozen=True, slots=True)
class Expertise:
    """A tele-expertise request as a page shows it."""

    id: str
    patient_id: str
    patient: str
    requester: str
    requester_ref: str
    expert: str
    expert_ref: str
    question: str
    priority: str
    state: str  # Task.status
    state_label: str
    badge: str
    asked: str  # French date
    answered: str  # French date, "" while waiting
    answer: str  # the opinion, or the reason it was declined
    documents: tuple[tuple[str, str], ...]  # (DocumentReference id, title)
    encounter_id: str
    version: str

    @property
    def waiting(self) -> bool:
        return self.state in WAITING


def view_expertise(task: Mapping[str, Any], names: Mapping[str, str] | None = None) -> Expertise:
    names = names or {}
    question = ""
    documents: list[tuple[str, str]] = []
    for item in task.get("input") or []:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("valueString"), str) and not question:
            question = item["valueString"]
        ref = _ref(item.get("valueReference"))
        if ref.startswith("DocumentReference/"):
            documents.append((ref.split("/", 1)[1], _display(item["valueReference"]) or "Document"))
    answer = ""
    for item in task.get("output") or []:
        if isinstance(item, dict) and isinstance(item.get("valueString"), str):
            answer = item["valueString"]
    state = str(task.get("status") or "requested")
    if state == "rejected":
        answer = str((task.get("statusReason") or {}).get("text") or "")
    label, badge = _STATES.get(state, (state, "info"))
    requester_ref, expert_ref = _ref(task.get("requester")), _ref(task.get("owner"))
    encounter = _ref(task.get("encounter"))
    return Expertise(
        id=str(task.get("id", "")),
        patient_id=_ref(task.get("for")).removeprefix("Patient/"),
        patient=names.get(_ref(task.get("for"))) or _display(task.get("for")) or "Patient",
        requester=names.get(requester_ref) or _display(task.get("requester")) or "Un professionnel",
        requester_ref=requester_ref,
        expert=names.get(expert_ref) or _display(task.get("owner")) or "Un professionnel",
        expert_ref=expert_ref,
        question=question or str(task.get("description") or ""),
        priority=PRIORITIES.get(str(task.get("priority") or "routine"), "Habituelle"),
        state=state,
        state_label=label,
        badge=badge,
        asked=french_datetime(task.get("authoredOn")),
        answered="" if state in WAITING else french_datetime(task.get("lastModified")),
        answer=answer,
        documents=tuple(documents),
        encounter_id=encounter.split("/", 1)[1] if encounter.startswith("Encounter/") else "",
        version=str((task.get("meta") or {}).get("versionId") or ""),
    )


# -- teleconsultation -------------------------------------------------------------------------


def room_link(service_url: str, room: str | None = None) -> str:
    """The address of a new video room on the referenced service (``room``: its name, by default
    an unguessable one made here)."""
    name = room or secrets.token_urlsafe(18)
    return f"{service_url.rstrip('/')}/{name}"


@dataclass(frozen=True, slots=True)
class TeleconsultationDraft:
    start: datetime  # aware (Paris)
    end: datetime
    reason: str


def parse_teleconsultation(
    form: Mapping[str, str], now: datetime
) -> tuple[TeleconsultationDraft | None, dict[str, str]]:
    """The appointment typed (``date``, ``heure``, ``duree`` in minutes, ``motif``), or a French
    message per faulty field; it starts in the future, within a year."""
    errors: dict[str, str] = {}
    day: date | None = None
    text = form.get("date", "").strip()
    if not text:
        errors["date"] = "Indiquez la date de la téléconsultation."
    else:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            errors["date"] = "La date n’est pas valide : utilisez le format jj/mm/aaaa."
    at: time | None = None
    text = form.get("heure", "").strip()
    if not text:
        errors["heure"] = "Indiquez l’heure de la téléconsultation."
    else:
        try:
            at = time.fromisoformat(text).replace(second=0, microsecond=0)
        except ValueError:
            errors["heure"] = "L’heure n’est pas valide : utilisez le format hh:mm."
    minutes = form.get("duree", "").strip()
    if not minutes.isdigit() or int(minutes) not in DURATIONS:
        errors["duree"] = "Choisissez la durée dans la liste."
    reason = " ".join(form.get("motif", "").split())
    if len(reason) > REASON_MAX:
        errors["motif"] = f"Le motif est trop long : {REASON_MAX} caractères au plus."
    if day is not None and at is not None:
        start = datetime.combine(day, at, PARIS)
        if start <= now:
            errors["date"] = "La téléconsultation doit avoir lieu dans le futur."
        elif start > now + timedelta(days=366):
            errors["date"] = "La téléconsultation doit avoir lieu dans l’année qui vient."
    if errors or day is None or at is None:
        return None, errors
    start = datetime.combine(day, at, PARIS)
    return TeleconsultationDraft(start, start + timedelta(minutes=int(minutes)), reason), {}


def teleconsultation(
    *,
    patient: tuple[str, str],
    practitioner: tuple[str, str],
    draft: TeleconsultationDraft,
    link: str,
    now_us: int,
) -> dict[str, Any]:
    """The teleconsultation's Appointment, booked with the patient."""
    with_whom = practitioner[1] or "votre professionnel de santé"
    appointment: dict[str, Any] = {
        "resourceType": "Appointment",
        "extension": [{"url": VIDEO_LINK_URL, "valueUrl": link}],
        "status": "booked",
        "serviceType": [{"coding": [dict(TELECONSULTATION)], "text": "Téléconsultation"}],
        "description": f"Téléconsultation avec {with_whom}",
        "start": draft.start.isoformat(timespec="seconds"),
        "end": draft.end.isoformat(timespec="seconds"),
        "minutesDuration": int((draft.end - draft.start).total_seconds() // 60),
        "created": instant_of(now_us)[:10],
        "patientInstruction": (
            "Téléconsultation : à l’heure du rendez-vous, ouvrez ce lien depuis un appareil équipé "
            f"d’une caméra et d’un micro : {link}"
        ),
        "participant": [
            {"actor": _party(patient), "required": "required", "status": "accepted"},
            {"actor": _party(practitioner), "required": "required", "status": "accepted"},
        ],
    }
    if draft.reason:
        appointment["comment"] = draft.reason
    return appointment


@dataclass(frozen=True, slots=True)
class Consultation:
    """A teleconsultation in the professional's agenda."""

    id: str
    patient_id: str
    patient: str
    start: datetime
    end: datetime | None
    reason: str
    status: str
    status_words: str
    link: str

    @property
    def cancelled(self) -> bool:
        return self.status in ("cancelled", "entered-in-error", "noshow")

    @property
    def hours(self) -> str:
        start = self.start.astimezone(PARIS).strftime("%Hh%M")
        return f"{start} – {self.end.astimezone(PARIS).strftime('%Hh%M')}" if self.end else start


def _instant(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=PARIS)


def view_consultation(appointment: Mapping[str, Any], names: Mapping[str, str]) -> Consultation | None:
    """A teleconsultation (an Appointment with a video room) as the agenda shows it; None for
    anything else or an appointment without a start."""
    link = video_link(appointment)
    start = _instant(appointment.get("start"))
    if not link or start is None:
        return None
    patient: Mapping[str, Any] = next(
        (
            p["actor"]
            for p in appointment.get("participant") or []
            if isinstance(p, dict) and _ref(p.get("actor")).startswith("Patient/")
        ),
        {},
    )
    ref = _ref(patient)
    status = str(appointment.get("status") or "")
    return Consultation(
        id=str(appointment.get("id", "")),
        patient_id=ref.removeprefix("Patient/"),
        patient=names.get(ref) or _display(patient) or "Patient",
        start=start,
        end=_instant(appointment.get("end")),
        reason=str(appointment.get("comment") or ""),
        status=status,
        status_words=STATUS_WORDS.get(status, status),
        link=link,
    )


def _day_label(day: date, today: date) -> str:
    words = f"{DAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]} {day.year}"
    if day == today:
        return f"Aujourd’hui, {words}"
    if day == today + timedelta(days=1):
        return f"Demain, {words}"
    return words[0].upper() + words[1:]


def consultation_days(
    consultations: Sequence[Consultation], now: datetime
) -> list[tuple[str, list[Consultation]]]:
    """The teleconsultations not yet over, by day (the soonest first), each day in time order."""
    today = now.astimezone(PARIS).date()
    coming = sorted((c for c in consultations if (c.end or c.start) >= now), key=lambda c: (c.start, c.id))
    days: dict[date, list[Consultation]] = {}
    for consultation in coming:
        days.setdefault(consultation.start.astimezone(PARIS).date(), []).append(consultation)
    return [(_day_label(day, today), items) for day, items in days.items()]
