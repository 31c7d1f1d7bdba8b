"""A health space's life: open when the INS is registered, refused, closed, archived, reopened.

The space of a person exists as soon as their Patient (with an INS) is registered: it is open.
Its state is one FHIR ``Consent`` per patient, the space's lifecycle consent:

* ``scope`` ``patient-privacy``; ``category`` LOINC ``59284-0`` and Hygie's
  ``https://hygie.example/fhir/CodeSystem/consent-category|ens``; ``policyRule`` ``OPTOUT``
  (the space opens unless the person objects);
* ``provision.type`` ``permit`` while the space is open, ``deny`` once closed, with
  ``provision.period.start`` the date of the change;
* extensions: ``ens-created`` (when the space opened first: the opt-out window counts from it),
  and, when closed, ``ens-closure`` (``opposition`` within the opt-out window, ``fermeture``
  later) and ``ens-archive-until`` (the end of the archive period).

No lifecycle consent means an open space created with the Patient. A ``deny`` makes the access
index derive ``space_closed`` (``domain/relations.py``): professionals and helpers can no longer
read anything of the record (``domain/policy.py``); the person and their legal representatives
still can, to reopen it within the archive period.

What closing does (see ``docs/guide/ens-espace.md``):

* **archived** for the archive period (10 years by default) and restored if the space reopens:
  everything professionals put in the record (documents, results, prescriptions, care data), the
  documents the person added, their access rules (grants, blocks) and the access history;
* **deleted** at once, for good: what the person entered themselves outside documents — their own
  measurements, the entries of their health notebook, their answers to questionnaires, the
  messages they sent (:func:`own_entries`) — the "profil médical" and messaging part of a space;
* **destroyed** at the end of the archive period: the whole record, physically
  (``domain/ens/purge.py``, ``hygie ens purger``), the audit trail excepted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hygie.domain.ens.vitals_watch import ALERT_IDENTIFIER
from hygie.domain.relations import SPACE_CATEGORY, SPACE_CATEGORY_SYSTEM
from hygie.fhir.values import date_range

__all__ = [
    "EXT_ARCHIVE_UNTIL",
    "EXT_CLOSURE",
    "EXT_CREATED",
    "ClosingPreview",
    "SpaceRules",
    "SpaceState",
    "closing_consent",
    "instant",
    "own_entries",
    "preview",
    "reopening_consent",
    "space_category_query",
    "state_of",
]

_EXT = "https://hygie.example/fhir/StructureDefinition/"
EXT_CREATED = _EXT + "ens-created"
EXT_CLOSURE = _EXT + "ens-closure"
EXT_ARCHIVE_UNTIL = _EXT + "ens-archive-until"
_DAY_US = 86_400 * 1_000_000

Closure = Literal["opposition", "fermeture"]

# the resources never deleted at closing: the record itself, its documents, its access rules
_KEPT_TYPES = frozenset(
    {"Patient", "RelatedPerson", "DocumentReference", "Binary", "Consent", "Provenance", "AuditEvent", "List"}
)
# where a resource says who entered it
_AUTHOR_FIELDS = (
    "author",
    "recorder",
    "asserter",
    "performer",
    "informationSource",
    "sender",
    "requester",
    "source",
    "expressedBy",  # a Goal (personal thresholds)
    "participant",  # an Appointment: the person's own, when no professional takes part
)
# plain French for what is deleted, by type
_OWN_LABELS = {
    "Observation": "mesures que vous avez saisies",
    "AllergyIntolerance": "allergies que vous avez notées",
    "Condition": "antécédents ou problèmes de santé que vous avez notés",
    "MedicationStatement": "traitements que vous avez notés",
    "Immunization": "vaccinations que vous avez notées",
    "QuestionnaireResponse": "réponses à des questionnaires",
    "Communication": "messages que vous avez envoyés",
    "Appointment": "rendez-vous que vous avez notés",
    "Goal": "objectifs que vous avez notés",
    "Flag": "alertes que vous avez notées",
}


@dataclass(frozen=True, slots=True)
class SpaceRules:
    """The configurable periods (``HYGIE_ENS_OPT_OUT_DAYS``, ``HYGIE_ENS_ARCHIVE_YEARS``)."""

    opt_out_days: int = 42
    archive_years: int = 10


def instant(us: int) -> str:
    """A FHIR dateTime (UTC, to the second)."""
    return dt.datetime.fromtimestamp(us // 1_000_000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _us(text: Any) -> int | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return date_range(text)[0]
    except ValueError:
        return None


def _add_years(us: int, years: int) -> int:
    when = dt.datetime.fromtimestamp(us / 1_000_000, tz=dt.UTC)
    try:
        later = when.replace(year=when.year + years)
    except ValueError:  # 29 February
        later = when.replace(year=when.year + years, day=28)
    return int(later.timestamp() * 1_000_000)


def _extension(resource: dict[str, Any], url: str) -> Any:
    for ext in resource.get("extension", []) or []:
        if isinstance(ext, dict) and ext.get("url") == url:
            return next((v for k, v in ext.items() if k.startswith("value")), None)
    return None


def is_space_consent(resource: dict[str, Any]) -> bool:
    return any(
        isinstance(c, dict) and c.get("code") == SPACE_CATEGORY and c.get("system") == SPACE_CATEGORY_SYSTEM
        for concept in resource.get("category", []) or []
        if isinstance(concept, dict)
        for c in concept.get("coding", []) or []
    )


def space_category_query() -> str:
    """The ``category`` search value that finds a patient's lifecycle consent."""
    return f"{SPACE_CATEGORY_SYSTEM}|{SPACE_CATEGORY}"


@dataclass(frozen=True, slots=True)
class SpaceState:
    """Where a space stands (``now_us`` given to the questions that depend on time)."""

    closed: bool
    created_us: int
    opt_out_until_us: int
    changed_us: int | None = None  # when it was last closed or reopened
    closure: Closure | None = None
    archive_until_us: int | None = None
    consent_id: str | None = None
    version: str | None = None

    def may_oppose(self, now_us: int) -> bool:
        """Within the opt-out window: the person may still refuse the space."""
        return not self.closed and now_us < self.opt_out_until_us

    def may_reopen(self, now_us: int) -> bool:
        return self.closed and (self.archive_until_us is None or now_us < self.archive_until_us)


def state_of(consent: dict[str, Any] | None, patient_created_us: int, rules: SpaceRules) -> SpaceState:
    """The state from the lifecycle consent (None: open since the Patient was registered)."""
    if consent is None or consent.get("status") != "active":
        created = patient_created_us
        if consent is not None:
            created = _us(_extension(consent, EXT_CREATED)) or created
        return SpaceState(False, created, created + rules.opt_out_days * _DAY_US)
    created = _us(_extension(consent, EXT_CREATED)) or patient_created_us
    provision = consent.get("provision") if isinstance(consent.get("provision"), dict) else {}
    assert isinstance(provision, dict)
    changed = _us((provision.get("period") or {}).get("start")) or _us(consent.get("dateTime"))
    closed = provision.get("type") == "deny"
    closure = _extension(consent, EXT_CLOSURE) if closed else None
    archive = _us(_extension(consent, EXT_ARCHIVE_UNTIL)) if closed else None
    if closed and archive is None and changed is not None:
        archive = _add_years(changed, rules.archive_years)
    return SpaceState(
        closed=closed,
        created_us=created,
        opt_out_until_us=created + rules.opt_out_days * _DAY_US,
        changed_us=changed,
        closure=closure if closure in ("opposition", "fermeture") else ("fermeture" if closed else None),
        archive_until_us=archive,
        consent_id=consent.get("id"),
        version=(consent.get("meta") or {}).get("versionId"),
    )


def _base(patient_id: str, existing: dict[str, Any] | None) -> dict[str, Any]:
    consent: dict[str, Any] = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [
            {"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]},
            {
                "coding": [
                    {
                        "system": SPACE_CATEGORY_SYSTEM,
                        "code": SPACE_CATEGORY,
                        "display": "Espace numérique de santé",
                    }
                ]
            },
        ],
        "patient": {"reference": f"Patient/{patient_id}"},
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]
        },
    }
    if existing is not None and existing.get("id"):
        consent["id"] = existing["id"]
    return consent


def closing_consent(
    patient_id: str,
    state: SpaceState,
    existing: dict[str, Any] | None,
    *,
    by: str,
    now_us: int,
    rules: SpaceRules,
) -> dict[str, Any]:
    """The lifecycle consent that closes the space now (``by``: Patient/… or RelatedPerson/…)."""
    if state.closed:
        raise ValueError("the space is already closed")
    closure: Closure = "opposition" if state.may_oppose(now_us) else "fermeture"
    consent = _base(patient_id, existing)
    consent["extension"] = [
        {"url": EXT_CREATED, "valueDateTime": instant(state.created_us)},
        {"url": EXT_CLOSURE, "valueCode": closure},
        {"url": EXT_ARCHIVE_UNTIL, "valueDateTime": instant(_add_years(now_us, rules.archive_years))},
    ]
    consent["dateTime"] = instant(now_us)
    consent["performer"] = [{"reference": by}]
    consent["provision"] = {"type": "deny", "period": {"start": instant(now_us)}}
    return consent


def reopening_consent(
    patient_id: str, state: SpaceState, existing: dict[str, Any] | None, *, by: str, now_us: int
) -> dict[str, Any]:
    """The lifecycle consent that reopens a closed space (within the archive period)."""
    if not state.closed:
        raise ValueError("the space is open")
    if not state.may_reopen(now_us):
        raise ValueError("the archive period is over")
    consent = _base(patient_id, existing)
    consent["extension"] = [{"url": EXT_CREATED, "valueDateTime": instant(state.created_us)}]
    consent["dateTime"] = instant(now_us)
    consent["performer"] = [{"reference": by}]
    consent["provision"] = {"type": "permit", "period": {"start": instant(now_us)}}
    return consent


def _references(value: Any) -> Iterable[str]:
    """Every ``reference`` string under a field (a Reference, a list, or backbone elements)."""
    if isinstance(value, list):
        for item in value:
            yield from _references(item)
    elif isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str):
            yield ref
        for key in ("actor", "who", "individual", "member"):
            if key in value:
                yield from _references(value[key])


def own_entries(resources: Sequence[dict[str, Any]], people: set[str]) -> list[dict[str, Any]]:
    """The entries the person (or someone acting for them: ``people`` holds Patient/… and their
    RelatedPerson/… references) made themselves, outside documents and access rules: what closing
    deletes. An entry that names a professional as its ``author`` is never one of them."""
    out = []
    for resource in resources:
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str) or rtype in _KEPT_TYPES:
            continue
        authors = set(_references(resource.get("author")))
        if authors - people:
            continue
        entered_by = {ref for name in _AUTHOR_FIELDS for ref in _references(resource.get(name))}
        if (entered_by and entered_by <= people) or _threshold_alert(resource):
            out.append(resource)
    return out


def _threshold_alert(resource: dict[str, Any]) -> bool:
    """An alert raised on the person's own thresholds (``domain/ens/vitals_watch.py``)."""
    return resource.get("resourceType") == "Flag" and any(
        isinstance(i, dict) and i.get("system") == ALERT_IDENTIFIER for i in resource.get("identifier") or []
    )


@dataclass(frozen=True, slots=True)
class ClosingPreview:
    """What closing now would do, in the words the confirmation page shows."""

    closure: Closure
    archive_until_us: int
    archived: tuple[tuple[str, int], ...]  # (French label, count)
    deleted: tuple[tuple[str, int], ...]
    deleted_refs: tuple[str, ...]  # Type/id of what is deleted


_ARCHIVED_LABELS = {
    "DocumentReference": "documents",
    "Observation": "mesures et résultats",
    "Condition": "antécédents et problèmes de santé",
    "AllergyIntolerance": "allergies",
    "MedicationRequest": "prescriptions",
    "MedicationStatement": "traitements",
    "MedicationDispense": "délivrances de médicaments",
    "Immunization": "vaccinations",
    "Encounter": "consultations et séjours",
    "Procedure": "actes",
    "Communication": "messages reçus",
    "Appointment": "rendez-vous",
    "CareTeam": "équipes de soins",
    "Consent": "règles d’accès (autorisations, blocages)",
}


def _count(
    resources: Iterable[dict[str, Any]], labels: dict[str, str], default: str
) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for resource in resources:
        label = labels.get(str(resource.get("resourceType")), default)
        counts[label] = counts.get(label, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def preview(
    record: Sequence[dict[str, Any]],
    people: set[str],
    state: SpaceState,
    *,
    now_us: int,
    rules: SpaceRules,
    patient_id: str,
) -> ClosingPreview:
    """What is archived and what is deleted if the space closes now (``record``: the resources of
    the person's compartment, from their ``$everything`` as they see it)."""
    own = own_entries(record, people)
    own_ids = {(r.get("resourceType"), r.get("id")) for r in own}
    kept = [
        r
        for r in record
        if (r.get("resourceType"), r.get("id")) not in own_ids
        and not (r.get("resourceType") == "Patient" and r.get("id") == patient_id)
    ]
    return ClosingPreview(
        closure="opposition" if state.may_oppose(now_us) else "fermeture",
        archive_until_us=_add_years(now_us, rules.archive_years),
        archived=tuple(_count(kept, _ARCHIVED_LABELS, "autres informations de santé")),
        deleted=tuple(_count(own, _OWN_LABELS, "autres saisies personnelles")),
        deleted_refs=tuple(f"{r['resourceType']}/{r['id']}" for r in own if r.get("id")),
    )
