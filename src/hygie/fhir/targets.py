"""What the access rules need to know about a resource (``domain/policy.py``'s :class:`Target`).

Read from the stored JSON only when it may carry such facts, so that plain reads stay cheap.
"""

from __future__ import annotations

from typing import Any

import orjson

from hygie.domain.policy import Target
from hygie.ports import StoredResource

__all__ = ["target_of", "target_of_resource", "with_patient"]


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


def target_of_resource(resource_type: str, patient: str | None, resource: dict[str, Any]) -> Target:
    """The facts the access rules need about a resource: labels, document categories, authors.

    Labels are ``meta.security`` codes (and ``DocumentReference.securityLabel``); categories are a
    DocumentReference's ``category`` codes (TRE_A03 classes); authors are the ``author``
    references (an Encounter's participants, so that a professional can declare one).
    """
    meta = resource.get("meta")
    labels = (
        [str(c["code"]) for c in (meta.get("security") or []) if isinstance(c, dict) and c.get("code")]
        if isinstance(meta, dict)
        else []
    )
    categories: list[str] = []
    authors = _refs(resource.get("author"))
    if resource_type == "DocumentReference":
        labels.extend(_codes(resource.get("securityLabel")))
        categories = _codes(resource.get("category"))
    elif resource_type == "Encounter":
        authors.extend(_refs(resource.get("participant"), "individual"))
    return Target(resource_type, patient, frozenset(categories), frozenset(labels), frozenset(authors))


def with_patient(target: Target, patient: str | None) -> Target:
    """A past version is judged in the record the resource belongs to now."""
    if patient is None or target.patient == patient:
        return target
    return Target(target.resource_type, patient, target.categories, target.labels, target.authors)


def target_of(stored: StoredResource) -> Target:
    """The rules' facts about a stored row; its JSON is parsed only when it may carry some."""
    patient = stored.patient
    if patient is None and stored.resource_type == "Patient":
        patient = stored.id
    content = stored.content
    if (
        stored.resource_type in ("DocumentReference", "Encounter")
        or b'"security' in content
        or b'"author"' in content
    ):
        return target_of_resource(stored.resource_type, patient, orjson.loads(content))
    return Target(stored.resource_type, patient)
