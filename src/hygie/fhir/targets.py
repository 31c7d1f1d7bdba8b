"""What the access rules need to know about a resource (``domain/policy.py``'s :class:`Target`).

Read from the stored JSON only when it may carry such facts, so that plain reads stay cheap.
"""

from __future__ import annotations

from typing import Any

import orjson

from hygie.domain.policy import CORRESPONDENCE, Target
from hygie.ports import StoredResource

__all__ = ["AUTHOR_ELEMENTS", "target_of", "target_of_resource", "with_patient"]


def _codes(concepts: Any) -> list[str]:
    out: list[str] = []
    for concept in concepts if isinstance(concepts, list) else [concepts]:
        if isinstance(concept, dict):
            out.extend(
                str(c["code"])
                for c in concept.get("coding", []) or []
                if isinstance(c, dict) and c.get("code")
            )
    return out


def _refs(items: Any, key: str | None = None) -> list[str]:
    out: list[str] = []
    for item in items if isinstance(items, list) else [items]:
        ref = item.get(key) if key and isinstance(item, dict) else item
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            out.append(ref["reference"])
    return out


# Who wrote an entry, beyond ``author``: the elements that name the person who recorded or
# asserted it (a patient's own entries name them here, so they can change them later; entries
# from professionals stay read-only for the patient).
AUTHOR_ELEMENTS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "AllergyIntolerance": (("recorder", None), ("asserter", None)),
    "Condition": (("recorder", None), ("asserter", None)),
    "Procedure": (("recorder", None), ("asserter", None), ("performer", "actor")),
    "Observation": (("performer", None),),
    "Immunization": (("performer", "actor"),),
    "MedicationRequest": (("requester", None), ("recorder", None)),
    "MedicationStatement": (("informationSource", None),),
    "Encounter": (("participant", "individual"),),
    # a message is its sender's: the recipient acknowledges it with $mark-received, not a rewrite
    "Communication": (("sender", None),),
    "MedicationDispense": (("performer", "actor"),),
    # a request (a renewal asked by the patient) is its requester's; its owner acts as a professional
    "Task": (("requester", None),),
    # an appointment is its professionals' (the patient among the participants is not an author:
    # only the patient's own entries, with no professional, stay theirs to change)
    "Appointment": (("participant", "actor"),),
}
# participants who make an appointment theirs
_APPOINTMENT_AUTHORS = (
    "Practitioner/",
    "PractitionerRole/",
    "Organization/",
    "HealthcareService/",
    "CareTeam/",
)


def target_of_resource(resource_type: str, patient: str | None, resource: dict[str, Any]) -> Target:
    """The facts the access rules need about a resource: labels, document categories, authors.

    Labels are ``meta.security`` codes (and ``DocumentReference.securityLabel``); categories are a
    DocumentReference's ``category`` codes (TRE_A03 classes); authors are the ``author``
    references plus the elements of :data:`AUTHOR_ELEMENTS` (an allergy's recorder and asserter,
    an observation's performer, a prescription's requester…, an Encounter's participants so that
    a professional can declare one); parties are a Communication's sender and recipients (outside
    any record, a message is theirs alone).
    """
    meta = resource.get("meta")
    labels = (
        [str(c["code"]) for c in (meta.get("security") or []) if isinstance(c, dict) and c.get("code")]
        if isinstance(meta, dict)
        else []
    )
    categories: list[str] = []
    authors = _refs(resource.get("author"))
    for element, key in AUTHOR_ELEMENTS.get(resource_type, ()):
        authors.extend(_refs(resource.get(element), key))
    if resource_type == "Appointment":
        authors = [a for a in authors if a.startswith(_APPOINTMENT_AUTHORS)]
    if resource_type == "DocumentReference":
        labels.extend(_codes(resource.get("securityLabel")))
        categories = _codes(resource.get("category"))
    parties: list[str] = []
    if resource_type in CORRESPONDENCE:
        # outside any record, a message is its sender's and its recipients' (policy: _correspondence)
        parties = _refs(resource.get("sender")) + _refs(resource.get("recipient"))
    return Target(
        resource_type,
        patient,
        frozenset(categories),
        frozenset(labels),
        frozenset(authors),
        frozenset(parties),
    )


def with_patient(target: Target, patient: str | None) -> Target:
    """A past version is judged in the record the resource belongs to now."""
    if patient is None or target.patient == patient:
        return target
    return Target(
        target.resource_type, patient, target.categories, target.labels, target.authors, target.parties
    )


def target_of(stored: StoredResource, *, authors: bool = False) -> Target:
    """The rules' facts about a stored row; its JSON is parsed only when it may carry some.

    Authors matter only to change or delete an entry: with ``authors`` (update, patch, delete),
    the entry types that name their recorder elsewhere than ``author`` are parsed too; a read
    of an Observation or an Immunization stays a byte scan.
    """
    patient = stored.patient
    if patient is None and stored.resource_type == "Patient":
        patient = stored.id
    content = stored.content
    if (
        stored.resource_type in ("DocumentReference", "Encounter")
        or b'"security' in content
        or b'"author"' in content
        or (authors and stored.resource_type in AUTHOR_ELEMENTS)
        or (patient is None and stored.resource_type in CORRESPONDENCE)
    ):
        return target_of_resource(stored.resource_type, patient, orjson.loads(content))
    return Target(stored.resource_type, patient)
