"""The metadata a professional's document must carry to enter the shared record (DMP).

A document deposited by a professional — from the BSP or from their software through the API
(a practitioner's token, or a backend client acting for a structure) — is filed, found and
shown to others by its metadata (digest §3.2): what it is (``type``), the class the DMP files it
under (``category`` from TRE_A03: the profession × class matrix of the access policy decides who
may read it from this code, so a document without one would escape the matrix), when
(``date``), who wrote it (``author``), whose record (``subject``) and its content with its media
type. A write lacking any of them is refused with one issue per missing element (422, each with
its FHIRPath); nothing is stored.

Operators (imports, migrations) and platform jobs are not held to it: they carry documents that
already exist elsewhere, as they are. Patients' own uploads are built by the portal with their
class (90).
"""

from __future__ import annotations

from typing import Any

from hygie.domain.identity.nos import TRE_A03_CLASS
from hygie.domain.policy import Principal
from hygie.fhir.outcome import Issue, Unprocessable

__all__ = ["check_professional_document"]


def _coded(concept: Any, system: str | None = None) -> bool:
    if not isinstance(concept, dict):
        return False
    return any(
        isinstance(c, dict) and c.get("code") and (system is None or c.get("system") == system)
        for c in concept.get("coding") or []
    )


def _held_to_it(principal: Principal) -> bool:
    return principal.kind == "practitioner" or (
        principal.kind == "system" and principal.organization is not None
    )


def check_professional_document(principal: Principal, resource_type: str, resource: dict[str, Any]) -> None:
    """Refuse (422) a professional's DocumentReference without the DMP's mandatory metadata."""
    if resource_type != "DocumentReference" or not _held_to_it(principal):
        return
    issues: list[Issue] = []

    def missing(path: str, what: str) -> None:
        issues.append(Issue("required", f"a document deposited by a professional needs {what}", path))

    if not _coded(resource.get("type")):
        missing("DocumentReference.type", "its type (a LOINC or TRE_A05 code)")
    categories = resource.get("category") or []
    if not any(_coded(c, TRE_A03_CLASS) for c in categories if isinstance(c, dict)):
        missing("DocumentReference.category", f"its class (a code of {TRE_A03_CLASS})")
    if not resource.get("date"):
        missing("DocumentReference.date", "the date it was filed")
    authors = [
        a
        for a in resource.get("author") or []
        if isinstance(a, dict) and (a.get("reference") or a.get("identifier"))
    ]
    if not authors:
        missing("DocumentReference.author", "its author")
    subject = resource.get("subject") or {}
    if not (isinstance(subject, dict) and (subject.get("reference") or subject.get("identifier"))):
        missing("DocumentReference.subject", "the patient whose record it goes to")
    contents = [c for c in resource.get("content") or [] if isinstance(c, dict)]
    for index, content in enumerate(contents):
        attachment = content.get("attachment") or {}
        if not attachment.get("contentType"):
            missing(
                f"DocumentReference.content[{index}].attachment.contentType", "the media type of its content"
            )
        if not (attachment.get("url") or attachment.get("data")):
            missing(f"DocumentReference.content[{index}].attachment", "its content (url or data)")
    if issues:
        raise Unprocessable(issues)
