"""Which resources open (or close) access to a patient's record: the derived access relations.

Like the search index, access relations are derived from resources at write time and stored
with them (table ``idx_relation``, one row per relation, replaced when the resource changes):

* ``Patient.generalPractitioner`` → ``medecin_traitant`` for each referenced practitioner or role;
* an active ``CareTeam`` about the patient → ``care_team`` for each participant member, until the
  team's period ends;
* an ``Encounter`` of the patient → ``encounter`` for each participant, from its start until a
  configurable time after its end (90 days by default) — a declared encounter;
* an active patient-privacy ``Consent`` → for each ``permit`` provision naming actors, a
  ``grant`` (limited to the provision's document classes and period); for each ``deny`` provision
  naming actors, a ``block`` — or, for a RelatedPerson, ``adolescent_confidential`` (the
  adolescent's confidential mode: documents stay out of their representative's sight); a ``deny``
  on purpose ``BTG`` → ``emergency_refusal``; the space's lifecycle Consent (category
  ``ens``, see ``domain/ens/lifecycle.py``) with a ``deny`` provision → ``space_closed`` for
  everyone (a closed health space: no professional or helper reads the record);
* a ``RelatedPerson`` of the patient → ``representative`` (parents, guardians) until the patient
  comes of age (the configurable majority: the automatic hand-over), or ``aidant`` (caregivers,
  family members, friends), for the RelatedPerson itself — except a trusted person
  (*personne de confiance*, role ``NOK``), who gets access only with an explicit ``CAREGIVER``
  role as well.

Pure functions; ``docs/decisions/0007-access-policy.md`` explains how search uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hygie.fhir.values import date_range

__all__ = [
    "APP_CATEGORY",
    "ENCOUNTER_RELATION_DAYS",
    "SPACE_CATEGORY",
    "SPACE_CATEGORY_SYSTEM",
    "RelationRow",
    "relations_from",
]

ENCOUNTER_RELATION_DAYS = 90
_DAY_US = 86_400 * 1_000_000
EVERYONE = "*"
# the Consent category of a health space's lifecycle (open, closed): Hygie's own code
SPACE_CATEGORY_SYSTEM = "https://hygie.example/fhir/CodeSystem/consent-category"
SPACE_CATEGORY = "ens"
# the Consent category of a person's authorisation of an app (``store/consents.py``): a record of
# what the person let an app do — its token's scopes decide that, never an access relation
APP_CATEGORY = "app"

# v3-RoleCode relationships that make a legal representative of a minor
REPRESENTATIVE_CODES = frozenset({"PRN", "MTH", "FTH", "GUARD", "PRNFOST", "STPPRN", "ADOPTP", "NPRN"})
# those that make a helper (aidant) who may act in the record
AIDANT_CODES = frozenset({"CAREGIVER", "C", "N", "FAMMEMB", "FRND", "NBOR"})
# the role "personne de confiance" (TRE_R260-HL7RoleClass NOK): the person the patient names to
# be consulted about their care. Being named so opens NO access to the record by itself — even if
# the family link is a code above (a friend FRND, a parent PRN): only an explicit CAREGIVER role,
# added when the patient chooses it, makes the trusted person an aidant as well.
TRUSTED_PERSON_CODE = "NOK"
EXPLICIT_AIDANT_CODE = "CAREGIVER"


@dataclass(frozen=True, slots=True)
class RelationRow:
    """(kind, patient id, actor reference, document classes or None, expiry µs or None)."""

    kind: str
    patient: str
    actor: str
    categories: tuple[str, ...] | None = None
    expires_us: int | None = None


def _ref_id(reference: Any, rtype: str) -> str | None:
    if isinstance(reference, dict):
        ref = reference.get("reference")
        if isinstance(ref, str) and ref.startswith(f"{rtype}/"):
            return ref.split("/", 2)[1]
    return None


def _actor(reference: Any) -> str | None:
    if isinstance(reference, dict):
        ref = reference.get("reference")
        if isinstance(ref, str) and ref.count("/") == 1 and not ref.startswith(("#", "urn:")):
            return ref
    return None


def _end(period: Any) -> int | None:
    if isinstance(period, dict) and isinstance(period.get("end"), str):
        try:
            return date_range(period["end"])[1]
        except ValueError:
            return None
    return None


def _codes(concepts: Any) -> list[str]:
    out: list[str] = []
    for concept in concepts if isinstance(concepts, list) else [concepts]:
        if isinstance(concept, dict):
            if "code" in concept and isinstance(concept["code"], str):
                out.append(concept["code"])
            codings = concept.get("coding", []) or []
            out.extend(c["code"] for c in codings if isinstance(c, dict) and isinstance(c.get("code"), str))
    return out


def relations_from(
    resource: dict[str, Any],
    *,
    encounter_days: int = ENCOUNTER_RELATION_DAYS,
    majority_us: int | None = None,
) -> list[RelationRow]:
    """The access relations a resource establishes (empty for most resource types).

    ``majority_us`` is when the patient of a RelatedPerson comes of age: a legal representative's
    relation ends then by itself (the automatic hand-over of the record to the young adult)."""
    rtype = resource.get("resourceType")
    if rtype == "Patient":
        return _patient(resource)
    if rtype == "CareTeam":
        return _care_team(resource)
    if rtype == "Encounter":
        return _encounter(resource, encounter_days)
    if rtype == "Consent":
        return _consent(resource)
    if rtype == "RelatedPerson":
        return _related_person(resource, majority_us)
    return []


def _patient(resource: dict[str, Any]) -> list[RelationRow]:
    pid = resource.get("id")
    if not isinstance(pid, str) or resource.get("active") is False:
        return []
    out = []
    for gp in resource.get("generalPractitioner", []) or []:
        actor = _actor(gp)
        if actor and actor.startswith(("Practitioner/", "PractitionerRole/")):
            out.append(RelationRow("medecin_traitant", pid, actor))
    return out


def _care_team(resource: dict[str, Any]) -> list[RelationRow]:
    patient = _ref_id(resource.get("subject"), "Patient")
    if patient is None or resource.get("status") not in ("active", "proposed", None):
        return []
    expires = _end(resource.get("period"))
    out = []
    for participant in resource.get("participant", []) or []:
        actor = _actor(participant.get("member")) if isinstance(participant, dict) else None
        if actor:
            out.append(RelationRow("care_team", patient, actor, None, expires))
    return out


def _encounter(resource: dict[str, Any], days: int) -> list[RelationRow]:
    patient = _ref_id(resource.get("subject"), "Patient")
    if patient is None or resource.get("status") in ("cancelled", "entered-in-error"):
        return []
    end = _end(resource.get("period"))
    expires = end + days * _DAY_US if end is not None else None
    out = []
    for participant in resource.get("participant", []) or []:
        actor = _actor(participant.get("individual")) if isinstance(participant, dict) else None
        if actor:
            out.append(RelationRow("encounter", patient, actor, None, expires))
    provider = _actor(resource.get("serviceProvider"))
    if provider:
        out.append(RelationRow("encounter", patient, provider, None, expires))
    return out


def _consent(resource: dict[str, Any]) -> list[RelationRow]:
    patient = _ref_id(resource.get("patient"), "Patient")
    if patient is None or resource.get("status") != "active":
        return []
    scope_codes = _codes(resource.get("scope"))
    if scope_codes and "patient-privacy" not in scope_codes:
        return []
    out: list[RelationRow] = []
    root = resource.get("provision")
    categories = _codes(resource.get("category"))
    if APP_CATEGORY in categories:
        return out
    if SPACE_CATEGORY in categories:
        # the space's lifecycle: denied, the space is closed to everyone but the person
        if isinstance(root, dict) and root.get("type") == "deny":
            out.append(RelationRow("space_closed", patient, EVERYONE))
        return out
    if isinstance(root, dict):
        _provisions(root, patient, out, None)
    return out


def _provisions(
    provision: dict[str, Any], patient: str, out: list[RelationRow], inherited_end: int | None
) -> None:
    kind = provision.get("type")
    expires = _end(provision.get("period")) or inherited_end
    actors = [
        a
        for a in (_actor(x.get("reference")) for x in provision.get("actor", []) or [] if isinstance(x, dict))
        if a
    ]
    classes = tuple(sorted(set(_codes(provision.get("class")) + _codes(provision.get("code"))))) or None
    purposes = {c.get("code") for c in provision.get("purpose", []) or [] if isinstance(c, dict)}
    if kind == "permit":
        out.extend(RelationRow("grant", patient, actor, classes, expires) for actor in actors)
    elif kind == "deny":
        # denying a legal representative is the adolescent's confidential mode: their categorised
        # documents stay out of the representative's sight; anyone else is blocked outright
        out.extend(
            RelationRow(
                "adolescent_confidential" if actor.startswith("RelatedPerson/") else "block",
                patient,
                actor,
                classes if actor.startswith("RelatedPerson/") else None,
                expires,
            )
            for actor in actors
        )
        if "BTG" in purposes and not actors:
            out.append(RelationRow("emergency_refusal", patient, EVERYONE, None, expires))
    for child in provision.get("provision", []) or []:
        if isinstance(child, dict):
            _provisions(child, patient, out, expires)


def _related_person(resource: dict[str, Any], majority_us: int | None) -> list[RelationRow]:
    patient = _ref_id(resource.get("patient"), "Patient")
    rid = resource.get("id")
    if patient is None or not isinstance(rid, str) or resource.get("active") is False:
        return []
    codes = set(_codes(resource.get("relationship")))
    expires = _end(resource.get("period"))
    actor = f"RelatedPerson/{rid}"
    if TRUSTED_PERSON_CODE in codes:
        # a trusted person, whatever the family link (a parent, a friend): an aidant only when the
        # patient chose so explicitly, never a legal representative
        if EXPLICIT_AIDANT_CODE in codes:
            return [RelationRow("aidant", patient, actor, None, expires)]
        return []
    if codes & REPRESENTATIVE_CODES:
        if majority_us is not None:
            expires = majority_us if expires is None else min(expires, majority_us)
        return [RelationRow("representative", patient, actor, None, expires)]
    if codes & AIDANT_CODES:
        return [RelationRow("aidant", patient, actor, None, expires)]
    return []
