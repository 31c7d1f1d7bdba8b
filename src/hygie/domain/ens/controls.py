"""The citizen's controls in plain French: who can see the record, and the rules they change.

Everything here is read from FHIR resources the portal fetched through the access policy:

* who can see the record — the médecin traitant (``Patient.generalPractitioner``), the care team
  (active ``CareTeam`` members), the grants (``permit`` provisions of the patient's
  ``patient-privacy`` Consents, with actors, document classes and period), the delegations
  (``RelatedPerson``: legal representatives, aidants);
* the person's own rules — blocked professionals (``deny`` provisions naming a Practitioner or an
  Organization), the refusal of emergency access (a ``deny`` on purpose ``BTG``), the
  adolescent's confidential mode (a ``deny`` naming a RelatedPerson);
* their access history (the lines of ``Patient/[id]/$access-history``), in words.

:func:`rules_of` lists every rule of every Consent with its place in the provision tree, so that
one rule can be withdrawn (:func:`without_rule`) without touching the others.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson

from hygie.domain.audit import PLATFORM_ROLE
from hygie.domain.french import FRENCH_MONTHS
from hygie.domain.relations import REPRESENTATIVE_CODES, SPACE_CATEGORY
from hygie.fhir.values import date_range

__all__ = [
    "CLASS_LABELS",
    "HistoryLine",
    "Rule",
    "RuleKind",
    "block_consent",
    "emergency_refusal_consent",
    "french_date",
    "french_datetime",
    "history_line",
    "rules_of",
    "what_label",
    "without_rule",
]

PARIS = ZoneInfo("Europe/Paris")
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
TRE_A03 = "urn:oid:1.2.250.1.213.1.1.4.1"

# TRE_A03 document classes, as a person reads them
CLASS_LABELS = {
    "10": "comptes rendus",
    "11": "synthèses",
    "31": "imagerie",
    "42": "prescriptions",
    "43": "délivrances de médicaments",
    "44": "plans de soins",
    "45": "traitements administrés",
    "52": "certificats",
    "60": "remboursements",
    "90": "documents ajoutés par vous",
    "95": "documents de gestion",
    "99": "documents techniques",
}
# TRE_G15 professions, and the roles of people who are not professionals
# what the platform's own processes (operators, by their name in the trail) do, in words
PLATFORM_PROCESSES = {
    "notifications": "envoi des notifications",
    "hygie demo": "chargement des données de démonstration",
    "hygie import": "import de données",
    "hygie alerte": "diffusion d’une alerte de santé publique",
    "federation": "connexion par un service d’identification",
    "store-probe": "contrôle des applications référencées",
    "cli": "opération d’exploitation",
}
ROLE_LABELS = {
    PLATFORM_ROLE: "Traitement technique de la plateforme",
    "10": "Médecin",
    "21": "Pharmacien",
    "26": "Audioprothésiste",
    "28": "Opticien-lunetier",
    "40": "Chirurgien-dentiste",
    "50": "Sage-femme",
    "60": "Infirmier",
    "70": "Masseur-kinésithérapeute",
    "80": "Pédicure-podologue",
    "91": "Orthophoniste",
    "92": "Orthoptiste",
    "94": "Ergothérapeute",
    "95": "Psychomotricien",
    "96": "Manipulateur en électroradiologie",
    "PAT": "Vous-même",
    "GUARD": "Représentant légal",
    "CAREGIVER": "Aidant",
}
PURPOSE_LABELS = {
    "TREAT": "Pour vos soins",
    "ETREAT": "Pour des soins urgents",
    "BTG": "Accès d’urgence (bris de glace)",
    "PATRQT": "À votre demande",
    "PATADMIN": "Gestion de votre dossier",
    "HPAYMT": "Remboursement",
    "HRESCH": "Recherche",
    "HOPERAT": "Fonctionnement du service",
    "bris_de_glace": "Accès d’urgence (bris de glace)",
    "centre_15": "Centre 15 (SAMU)",
}
ACTION_LABELS = {"C": "a ajouté", "R": "a consulté", "U": "a modifié", "D": "a supprimé", "E": "a recherché"}
# resource types, as a person reads them
TYPE_LABELS = {
    "Patient": "votre identité",
    "Observation": "une mesure ou un résultat",
    "DocumentReference": "un document",
    "Binary": "le contenu d’un document",
    "Condition": "un antécédent ou problème de santé",
    "AllergyIntolerance": "une allergie",
    "MedicationRequest": "une prescription",
    "MedicationStatement": "un traitement",
    "MedicationDispense": "une délivrance de médicaments",
    "Immunization": "une vaccination",
    "Encounter": "une consultation ou un séjour",
    "Procedure": "un acte",
    "Consent": "une règle d’accès",
    "CareTeam": "votre équipe de soins",
    "RelatedPerson": "un proche",
    "Communication": "un message",
    "Appointment": "un rendez-vous",
    "QuestionnaireResponse": "une réponse à un questionnaire",
    "AuditEvent": "l’historique des accès",
}
TYPE_PLURALS = {
    "Patient": "identité",
    "Observation": "mesures et résultats",
    "DocumentReference": "documents",
    "Condition": "antécédents",
    "AllergyIntolerance": "allergies",
    "MedicationRequest": "prescriptions",
    "MedicationStatement": "traitements",
    "Immunization": "vaccinations",
    "Encounter": "consultations et séjours",
    "Consent": "règles d’accès",
    "CareTeam": "équipe de soins",
    "RelatedPerson": "proches",
    "Communication": "messages",
    "Appointment": "rendez-vous",
}


def _local(us: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(us / 1_000_000, tz=dt.UTC).astimezone(PARIS)


def french_date(us: int | None) -> str:
    """ "3 mars 2026" (Paris time)."""
    if us is None:
        return ""
    when = _local(us)
    return f"{when.day}{'er' if when.day == 1 else ''} {FRENCH_MONTHS[when.month - 1]} {when.year}"


def french_datetime(us: int | None) -> str:
    """ "3 mars 2026 à 14 h 05" (Paris time)."""
    if us is None:
        return ""
    when = _local(us)
    return f"{french_date(us)} à {when.hour} h {when.minute:02d}"


def parse_us(text: Any, *, end: bool = False) -> int | None:
    """A FHIR date or dateTime as microseconds (its start, or its end), None when absent or bad."""
    if not isinstance(text, str) or not text:
        return None
    try:
        low, high = date_range(text)
    except ValueError:
        return None
    return high if end else low


# -- rules of the person's Consents ---------------------------------------------------------------

RuleKind = Literal["grant", "block", "emergency_refusal", "confidential", "other"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One provision of a patient-privacy Consent, as the controls page shows it."""

    consent_id: str
    version: str | None
    path: str  # "" for the root provision, "0", "0.1"… for nested ones
    kind: RuleKind
    actors: tuple[str, ...]  # references
    classes: tuple[str, ...]  # TRE_A03 codes (grants and confidential mode)
    start_us: int | None
    end_us: int | None
    recorded_us: int | None

    def live(self, now_us: int) -> bool:
        return (self.end_us is None or self.end_us > now_us) and (
            self.start_us is None or self.start_us <= now_us
        )

    @property
    def key(self) -> str:
        return f"{self.consent_id}~{self.path or 'racine'}"

    @property
    def classes_label(self) -> str:
        if not self.classes:
            return "tout le dossier"
        return ", ".join(CLASS_LABELS.get(c, c) for c in self.classes)


def _codes(concepts: Any) -> list[str]:
    out: list[str] = []
    for concept in concepts if isinstance(concepts, list) else [concepts]:
        if isinstance(concept, dict):
            if isinstance(concept.get("code"), str):
                out.append(concept["code"])
            out.extend(
                c["code"]
                for c in concept.get("coding", []) or []
                if isinstance(c, dict) and isinstance(c.get("code"), str)
            )
    return out


def _actors(provision: dict[str, Any]) -> tuple[str, ...]:
    out = []
    for actor in provision.get("actor", []) or []:
        ref = (actor.get("reference") or {}).get("reference") if isinstance(actor, dict) else None
        if isinstance(ref, str) and ref.count("/") == 1:
            out.append(ref)
    return tuple(out)


def _kind(provision: dict[str, Any], actors: Sequence[str]) -> RuleKind:
    kind = provision.get("type")
    purposes = {c.get("code") for c in provision.get("purpose", []) or [] if isinstance(c, dict)}
    if kind == "permit" and actors:
        return "grant"
    if kind == "deny" and actors:
        if all(a.startswith("RelatedPerson/") for a in actors):
            return "confidential"
        return "block"
    if kind == "deny" and "BTG" in purposes:
        return "emergency_refusal"
    return "other"


def rules_of(consents: Iterable[dict[str, Any]]) -> list[Rule]:
    """Every rule of the active patient-privacy Consents (the space's lifecycle consent aside)."""
    out: list[Rule] = []
    for consent in consents:
        if consent.get("status") != "active" or not isinstance(consent.get("id"), str):
            continue
        scopes = _codes(consent.get("scope"))
        if (scopes and "patient-privacy" not in scopes) or SPACE_CATEGORY in _codes(consent.get("category")):
            continue
        root = consent.get("provision")
        if isinstance(root, dict):
            version = (consent.get("meta") or {}).get("versionId")
            _walk(consent, version, root, "", None, out)
    return out


def _walk(
    consent: dict[str, Any],
    version: str | None,
    provision: dict[str, Any],
    path: str,
    inherited_end: int | None,
    out: list[Rule],
) -> None:
    period = provision.get("period") or {}
    end = parse_us(period.get("end"), end=True) or inherited_end
    actors = _actors(provision)
    kind = _kind(provision, actors)
    if kind != "other":
        classes = tuple(sorted(set(_codes(provision.get("class")) + _codes(provision.get("code")))))
        out.append(
            Rule(
                consent_id=str(consent["id"]),
                version=version,
                path=path,
                kind=kind,
                actors=actors,
                classes=classes,
                start_us=parse_us(period.get("start")),
                end_us=end,
                recorded_us=parse_us(consent.get("dateTime")),
            )
        )
    for i, child in enumerate(provision.get("provision", []) or []):
        if isinstance(child, dict):
            _walk(consent, version, child, f"{path}.{i}" if path else str(i), end, out)


def without_rule(consent: dict[str, Any], path: str) -> dict[str, Any]:
    """The Consent without the rule at ``path``: inactive when nothing else is left in it."""
    changed = copy.deepcopy(consent)
    if not path:
        children = [c for c in changed.get("provision", {}).get("provision", []) or [] if isinstance(c, dict)]
        if not children:
            changed["status"] = "inactive"
            return changed
        # the root rule goes; its nested rules stay, under a neutral root
        root = {"provision": children}
        changed["provision"] = root
        return changed
    indices = [int(i) for i in path.split(".")]
    parent = changed["provision"]
    for i in indices[:-1]:
        parent = parent["provision"][i]
    del parent["provision"][indices[-1]]
    if not parent["provision"]:
        del parent["provision"]
    if not rules_of([changed]):
        changed["status"] = "inactive"
    return changed


def _privacy_consent(patient_id: str, provision: dict[str, Any], *, by: str, now: str) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": now,
        "performer": [{"reference": by}],
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]
        },
        "provision": provision,
    }


def block_consent(patient_id: str, professional: str, *, by: str, now: str) -> dict[str, Any]:
    """The person blocks a professional (``Practitioner/…``) or a structure (``Organization/…``):
    nothing of the record is open to them, even with another authorisation."""
    if not professional.startswith(("Practitioner/", "Organization/", "PractitionerRole/")):
        raise ValueError("only a professional or a structure can be blocked")
    provision = {
        "type": "deny",
        "actor": [
            {
                "role": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "IRCP",
                        }
                    ]
                },
                "reference": {"reference": professional},
            }
        ],
    }
    return _privacy_consent(patient_id, provision, by=by, now=now)


def emergency_refusal_consent(patient_id: str, *, by: str, now: str) -> dict[str, Any]:
    """The person refuses emergency access (break-glass) to their record."""
    provision = {"type": "deny", "purpose": [{"system": ACT_REASON, "code": "BTG"}]}
    return _privacy_consent(patient_id, provision, by=by, now=now)


def delegation_kind(related: dict[str, Any]) -> Literal["representative", "aidant"]:
    codes = set(_codes(related.get("relationship")))
    return "representative" if codes & REPRESENTATIVE_CODES else "aidant"


# -- the access history ----------------------------------------------------------------------------

_LINE_URL = "https://hygie.example/fhir/StructureDefinition/access-line"


@dataclass(frozen=True, slots=True)
class HistoryLine:
    """One line of the access history, in words."""

    id: str  # the AuditEvent id (partition.seq), for "je ne reconnais pas cet accès"
    recorded_us: int
    who_ref: str  # the identifier or reference of who acted
    who: str
    role: str
    structure: str
    action: str  # "a consulté"…
    what: str  # "une mesure ou un résultat"…
    what_refs: tuple[str, ...]
    why: str
    granted: bool
    emergency: bool
    dispute_status: str | None  # open | under_review | closed
    dispute_outcome: str | None
    dispute_resolution: str | None

    @property
    def when(self) -> str:
        return french_datetime(self.recorded_us)

    @property
    def dispute_label(self) -> str | None:
        if self.dispute_status is None:
            return None
        if self.dispute_status == "open":
            return "Signalement envoyé"
        if self.dispute_status == "under_review":
            return "Signalement en cours d’examen"
        return {
            "legitimate": "Signalement examiné : accès justifié",
            "unauthorised": "Signalement examiné : accès non autorisé",
            "audit_error": "Signalement examiné : erreur d’enregistrement",
        }.get(self.dispute_outcome or "", "Signalement examiné")


def what_label(refs: Sequence[str]) -> str:
    """ "une mesure ou un résultat", "la liste : documents" (a search)… from the line's entities."""
    if not refs:
        return "une information du dossier"
    first = refs[0]
    if "?" in first or "/" not in first:
        rtype = first.split("?", 1)[0]
        if not rtype:
            return "votre dossier"
        return f"la liste : {TYPE_PLURALS.get(rtype, rtype)}"
    rtype = first.split("/", 1)[0]
    label = TYPE_LABELS.get(rtype, "une information")
    more = len(refs) - 1
    return label if more <= 0 else f"{label} (et {more} autre{'s' if more > 1 else ''})"


def history_line(event: dict[str, Any], names: dict[str, str] | None = None) -> HistoryLine:
    """A line from an AuditEvent of ``$access-history`` (its ``access-line`` extension);
    ``names`` gives the display of references (``Patient/x`` → "Vous", ``RelatedPerson/y`` → …)."""
    line: dict[str, Any] = {}
    for ext in event.get("extension", []) or []:
        if isinstance(ext, dict) and ext.get("url") == _LINE_URL:
            line = orjson.loads(ext.get("valueString") or "{}")
    names = names or {}
    who_ref = str(line.get("who") or "")
    requestor: dict[str, Any] = next((a for a in event.get("agent", []) or [] if a.get("requestor")), {})
    who_id = str(((requestor.get("who") or {}).get("identifier") or {}).get("value") or who_ref)
    who = names.get(who_id) or names.get(who_ref) or who_ref
    role_code = str(line.get("role") or "")
    platform = role_code == PLATFORM_ROLE
    if platform:
        # one of the platform's own processes, named by what it does
        who = f"Hygie : {PLATFORM_PROCESSES.get(who_id, who_id or 'traitement technique')}"
    elif not role_code and not who_id.startswith(("Patient/", "RelatedPerson/")):
        # an operator recorded before processes had a role, or a backend service: no person
        who = f"Service technique ({who})" if who else "Service technique"
    purposes = [p for p in str(line.get("purpose") or "").split(",") if p]
    modes = {
        str(c.get("code"))
        for concept in event.get("purposeOfEvent", []) or []
        for c in concept.get("coding", []) or []
    }
    emergency = "BTG" in purposes or "bris_de_glace" in modes
    why = ", ".join(dict.fromkeys(PURPOSE_LABELS.get(p, p) for p in purposes)) or (
        "Vous-même ou une personne de confiance"
        if role_code in ("PAT", "GUARD", "CAREGIVER")
        else "Fonctionnement du service"
        if platform
        else "Non précisé"
    )
    recorded = parse_us(event.get("recorded")) or 0
    action = ACTION_LABELS.get(str(event.get("action")), "a accédé à")
    if who == "Vous":
        action = "avez" + action[1:]
    dispute = line.get("dispute") or {}
    return HistoryLine(
        id=str(event.get("id", "")),
        recorded_us=recorded,
        who_ref=who_id,
        who=who,
        role=ROLE_LABELS.get(role_code, role_code or "Service technique"),
        structure=str(line.get("structure") or ""),
        action=action,
        what=what_label([str(w) for w in line.get("what", []) or []]),
        what_refs=tuple(str(w) for w in line.get("what", []) or []),
        why=why,
        granted=bool(line.get("granted", event.get("outcome") == "0")),
        emergency=emergency,
        dispute_status=dispute.get("status") if isinstance(dispute, dict) else None,
        dispute_outcome=dispute.get("outcome") if isinstance(dispute, dict) else None,
        dispute_resolution=dispute.get("resolution") if isinstance(dispute, dict) else None,
    )


def hidden_from_viewer(line: HistoryLine, visible: set[str]) -> bool:
    """A line about a document the viewer may not see (an adolescent's confidential document seen
    by a parent, a document not yet announced): the line itself would betray it."""
    return any(
        ref.startswith(("DocumentReference/", "Binary/")) and ref not in visible for ref in line.what_refs
    )
