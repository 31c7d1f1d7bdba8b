"""The patient picker of a standalone launch: searches through the FHIR service, as the user.

Every search and read goes through the interactions, hence through the access policy: the
professional only finds the patients the policy lets them see.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from hygie.auth.server import Subject
from hygie.domain.access import Caller
from hygie.domain.policy import Principal
from hygie.fhir.interactions import FhirService
from hygie.fhir.outcome import FhirError
from hygie.fhir.request import FhirRequest
from hygie.fhir.router import route

__all__ = ["ServicePatientFinder", "patient_label"]

_INS = re.compile(r"^[0-9]{13}[0-9]{2}$|^[0-9]{5}[0-9AB][0-9]{9}$", re.IGNORECASE)


def patient_label(patient: dict[str, Any]) -> str:
    names = patient.get("name") or [{}]
    official = next((n for n in names if n.get("use") == "official"), names[0])
    family = str(official.get("family", "")).upper()
    given = " ".join(official.get("given", [])[:1])
    born = patient.get("birthDate", "")
    if len(born) == 10:
        born = f"{born[8:10]}/{born[5:7]}/{born[0:4]}"
    ins = next(
        (i.get("value") for i in patient.get("identifier", []) if "1.2.250.1.213.1.4" in i.get("system", "")),
        None,
    )
    label = f"{family} {given}".strip() or "Patient sans nom"
    if born:
        label += f", né(e) le {born}"
    if ins:
        label += f" — INS {ins}"
    return label


def caller_of(subject: Subject) -> Caller:
    """The signed-in person as the access policy sees them while they pick a patient: a
    first-party session (no app scopes), so a professional finds only the patients they have a
    care relationship with, and a citizen themselves (or those they represent)."""
    fhir_user = subject.fhir_user
    if subject.kind == "citizen" and fhir_user:
        kind = "representative" if fhir_user.startswith("RelatedPerson/") else "patient"
        return Caller.of(Principal(kind, fhir_user))  # type: ignore[arg-type]
    if subject.kind == "professional" and fhir_user and fhir_user.startswith("Practitioner/"):
        return Caller.of(Principal("practitioner", fhir_user))
    if subject.kind == "operator":
        return Caller.operator(subject.account_id)
    return Caller.anonymous()


class ServicePatientFinder:
    def __init__(self, service: FhirService) -> None:
        self.service = service

    async def find(self, subject: Subject, query: str) -> list[tuple[str, str]]:
        q = query.strip()
        if not q:
            return []
        param = ("identifier", q.upper()) if _INS.match(q.replace(" ", "")) else ("name", q)
        request = FhirRequest("GET", "Patient", [param, ("_count", "20")], caller=caller_of(subject))
        try:
            response = await route(self.service, request)
        except FhirError:
            return []
        # search entries carry raw JSON fragments: decode the whole bundle once
        body = orjson.loads(orjson.dumps(response.body)) if isinstance(response.body, dict) else {}
        out = []
        for entry in body.get("entry", []):
            resource = entry.get("resource", {})
            if resource.get("resourceType") == "Patient":
                out.append((str(resource["id"]), patient_label(resource)))
        return out

    async def label(self, subject: Subject, patient_id: str) -> str | None:
        request = FhirRequest("GET", f"Patient/{patient_id}", caller=caller_of(subject))
        try:
            response = await route(self.service, request)
        except FhirError:
            return None
        if response.status != 200 or not isinstance(response.body, bytes):
            return None
        return patient_label(orjson.loads(response.body))
