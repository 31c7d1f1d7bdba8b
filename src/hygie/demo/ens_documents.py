"""Demo content for the ENS "Documents" section, added to one demo citizen.

The generated population already holds the professionals' documents (reports, prescriptions,
with their PDFs, some masked). This adds what only the portal makes:

* a document the citizen added herself — laboratory results, as a PDF — in two versions (the
  second ``replaces`` the first, now ``superseded``), built by the same rules as the upload page;
* when a practitioner is given, a structured medical summary (VSM, LOINC 60591-5, class
  ``11``) whose content is a FHIR document Bundle (``application/fhir+json``), written from the
  citizen's own record (conditions, allergies, treatments), which the portal renders section
  by section.

Idempotent: a second run finds the demo documents by their identifiers and adds nothing.
"""

from __future__ import annotations

import base64
import hashlib
import html
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from hygie.demo.accounts import operator_call
from hygie.demo.pdf import PdfDocument, render_pdf
from hygie.domain.access import Caller
from hygie.domain.ens import documents as rules
from hygie.domain.identity.nos import TRE_A03_CLASS

if TYPE_CHECKING:
    from hygie.bootstrap import Runtime
    from hygie.fhir.interactions import FhirService

__all__ = ["seed_demo"]

CALLER = Caller.operator("hygie demo")
IDENTIFIER = "urn:hygie:demo:ens-documents"
XHTML = "http://www.w3.org/1999/xhtml"


async def _search(
    service: FhirService, resource_type: str, query: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    bundle = await operator_call(service, "GET", resource_type, query)
    return [
        e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"
    ]


async def _exists(service: FhirService, patient_id: str, key: str) -> bool:
    found = await _search(
        service,
        "DocumentReference",
        [("patient", patient_id), ("identifier", f"{IDENTIFIER}|{patient_id}:{key}")],
    )
    return bool(found)


def _lab_pdf(title: str, created: datetime, lines: list[str]) -> bytes:
    return render_pdf(
        PdfDocument(
            title=title,
            issuer=["Laboratoire de biologie médicale des Tilleuls", "12 rue des Tilleuls"],
            author=f"Résultats remis au patient le {created:%d/%m/%Y}",
            patient=["Document ajouté par le patient dans son espace santé"],
            created=created.replace(tzinfo=None),
            sections=[("Résultats", lines)],
        )
    )


async def _patient_upload(service: FhirService, patient_id: str, today: date) -> None:
    if await _exists(service, patient_id, "bilan"):
        return
    patient_ref = f"Patient/{patient_id}"
    kind = next(t for t in rules.PATIENT_TYPES if t.key == "biologie")
    first_day = today - timedelta(days=40)
    versions = [
        ("Bilan sanguin", ["Glycémie à jeun : 0,98 g/L", "Cholestérol total : 2,10 g/L"]),
        (
            "Bilan sanguin (avec la page 2)",
            [
                "Glycémie à jeun : 0,98 g/L",
                "Cholestérol total : 2,10 g/L",
                "HDL : 0,55 g/L",
                "LDL : 1,30 g/L",
            ],
        ),
    ]
    previous: dict[str, Any] | None = None
    for index, (title, lines) in enumerate(versions):
        created = datetime.combine(first_day, datetime.min.time(), UTC) + timedelta(hours=9)
        data = _lab_pdf(title, created, lines)
        draft = rules.UploadDraft(title, kind, first_day, rules.check_file(data))
        added = (created + timedelta(days=2 + 5 * index)).isoformat(timespec="seconds")
        bundle = rules.upload_bundle(
            draft, patient_ref=patient_ref, author_ref=patient_ref, now_instant=added, replaces=previous
        )
        document = bundle["entry"][-1]["resource"]
        document["identifier"] = [{"system": IDENTIFIER, "value": f"{patient_id}:bilan-v{index + 1}"}]
        if index == len(versions) - 1:
            document["identifier"].append({"system": IDENTIFIER, "value": f"{patient_id}:bilan"})
        answer = await operator_call(service, "POST", "", resource=bundle)
        location = next(
            e["response"]["location"]
            for e in answer["entry"]
            if "/DocumentReference/" in e["response"]["location"]
            and e["response"]["location"].endswith("/_history/1")
        )
        new_id = location.split("/DocumentReference/")[1].split("/")[0]
        previous = await operator_call(service, "GET", f"DocumentReference/{new_id}")


def _texts(resources: list[dict[str, Any]], *paths: str) -> list[str]:
    out: list[str] = []
    for resource in resources:
        for path in paths:
            concept = resource.get(path)
            if isinstance(concept, dict):
                text = concept.get("text") or next(
                    (c.get("display") for c in concept.get("coding") or [] if c.get("display")), None
                )
                if text:
                    out.append(str(text))
                    break
    return list(dict.fromkeys(out))


def _div(items: list[str], empty: str) -> str:
    if not items:
        return f'<div xmlns="{XHTML}"><p>{html.escape(empty)}</p></div>'
    rows = "".join(f"<li>{html.escape(i)}</li>" for i in items)
    return f'<div xmlns="{XHTML}"><ul>{rows}</ul></div>'


async def _summary(service: FhirService, patient_id: str, practitioner_id: str, today: date) -> None:
    if await _exists(service, patient_id, "vsm"):
        return
    patient_ref = f"Patient/{patient_id}"
    author_ref = f"Practitioner/{practitioner_id}"
    conditions = await _search(service, "Condition", [("patient", patient_id), ("_count", "50")])
    allergies = await _search(service, "AllergyIntolerance", [("patient", patient_id), ("_count", "50")])
    treatments = await _search(
        service, "MedicationRequest", [("patient", patient_id), ("status", "active"), ("_count", "50")]
    )
    written = datetime.combine(today - timedelta(days=10), datetime.min.time(), UTC) + timedelta(hours=11)
    composition = {
        "resourceType": "Composition",
        "status": "final",
        "type": {
            "coding": [
                {"system": "http://loinc.org", "code": "60591-5", "display": "Patient summary Document"}
            ]
        },
        "subject": {"reference": patient_ref},
        "date": written.isoformat(timespec="seconds"),
        "author": [{"reference": author_ref}],
        "title": "Volet de synthèse médicale",
        "section": [
            {
                "title": "Antécédents et problèmes de santé",
                "text": {
                    "status": "generated",
                    "div": _div(_texts(conditions, "code"), "Aucun antécédent notable."),
                },
            },
            {
                "title": "Allergies et intolérances",
                "text": {
                    "status": "generated",
                    "div": _div(_texts(allergies, "code"), "Aucune allergie connue."),
                },
            },
            {
                "title": "Traitements au long cours",
                "text": {
                    "status": "generated",
                    "div": _div(
                        _texts(treatments, "medicationCodeableConcept"), "Aucun traitement au long cours."
                    ),
                },
            },
            {
                "title": "Points de vigilance",
                "text": {
                    "status": "generated",
                    "div": f'<div xmlns="{XHTML}"><p>Synthèse établie par le médecin traitant pour les '
                    "professionnels qui prendront le relais ; à mettre à jour à chaque changement "
                    "important.</p></div>",
                },
            },
        ],
    }
    document_bundle = {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
        "type": "document",
        "timestamp": written.isoformat(timespec="seconds"),
        "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": composition}],
    }
    data = orjson.dumps(document_bundle)
    binary_urn, document_urn = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    document = {
        "resourceType": "DocumentReference",
        "identifier": [{"system": IDENTIFIER, "value": f"{patient_id}:vsm"}],
        "status": "current",
        "docStatus": "final",
        "type": {
            "coding": [
                {"system": "http://loinc.org", "code": "60591-5", "display": "Patient summary Document"}
            ],
            "text": "Volet de synthèse médicale",
        },
        "category": [{"coding": [{"system": TRE_A03_CLASS, "code": "11", "display": "Synthèse"}]}],
        "subject": {"reference": patient_ref},
        "date": written.isoformat(timespec="seconds"),
        "author": [{"reference": author_ref}],
        "description": "Volet de synthèse médicale",
        "securityLabel": [{"coding": [{"system": rules.CONFIDENTIALITY, "code": "N"}]}],
        "content": [
            {
                "attachment": {
                    "contentType": "application/fhir+json",
                    "language": "fr-FR",
                    "url": binary_urn,
                    "size": len(data),
                    "hash": base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"),
                    "title": "Volet de synthèse médicale",
                    "creation": written.isoformat(timespec="seconds"),
                }
            }
        ],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": binary_urn,
                "resource": {
                    "resourceType": "Binary",
                    "contentType": "application/fhir+json",
                    "securityContext": {"reference": patient_ref},
                    "data": base64.b64encode(data).decode("ascii"),
                },
                "request": {"method": "POST", "url": "Binary"},
            },
            {
                "fullUrl": document_urn,
                "resource": document,
                "request": {"method": "POST", "url": "DocumentReference"},
            },
        ],
    }
    await operator_call(service, "POST", "", resource=bundle)


async def seed_demo(runtime: Runtime, patient_id: str, practitioner_id: str | None) -> None:
    """Add the portal's demo documents to ``patient_id`` (once)."""
    service = runtime.service
    today = datetime.now(UTC).date()
    await _patient_upload(service, patient_id, today)
    if practitioner_id:
        await _summary(service, patient_id, practitioner_id, today)
