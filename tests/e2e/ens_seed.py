"""What the ENS browser tests seed as an operator (or do as a professional through the FHIR API):
PDFs, professionals' documents, a médecin traitant who accepts messages, a minor's documents and
a doctor who reads them. Shared by ``test_ens_documents``, ``test_ens_messages``,
``test_ens_minor`` and the whole journey (``test_ens_journey``).
"""

from __future__ import annotations

import base64
import io
import random
from typing import Any

import httpx

from bearer_tokens import bearer
from conftest import create_resource

LiveHygie = Any

TRE_A03 = "https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument"
TRE_A07 = (
    "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument"
)
TRE_G15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"

_n = iter(range(1, 1_000_000))


def pdf_bytes(title: str, *, noise: int = 0) -> bytes:
    """A real PDF (fpdf2); ``noise`` adds an incompressible image of that many pixels a side."""
    from fpdf import FPDF
    from PIL import Image

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    pdf.cell(0, 10, title)
    if noise:
        rng = random.Random(4)
        image = Image.frombytes(
            "RGB", (noise, noise), bytes(rng.getrandbits(8) for _ in range(noise * noise * 3))
        )
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        pdf.image(io.BytesIO(buffer.getvalue()), x=10, y=30, w=150)
    return bytes(pdf.output())


def pro_headers(hygie: LiveHygie, practitioner_id: str) -> dict[str, str]:
    """A professional's ``Authorization`` header (a real token, as the professional portal's)."""
    return dict(
        hygie.call(
            bearer(
                hygie.runtime,
                kind="professional",
                scope="openid",
                fhir_user=f"Practitioner/{practitioner_id}",
                client_id="hygie-portal",
            )
        )
    )


def physician(hygie: LiveHygie, family: str, given: str) -> str:
    """A Practitioner who is a physician (TRE_G15 code 10: the document matrix lets them read)."""
    return str(
        hygie.call(
            create_resource(
                hygie.runtime,
                {
                    "resourceType": "Practitioner",
                    "active": True,
                    "name": [{"use": "usual", "family": family, "given": [given], "prefix": ["Dr"]}],
                    "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": "10"}]}}],
                },
            )
        )
    )


def gp_accepting_messages(hygie: LiveHygie, family: str = "LEROY", given: str = "Anne") -> str:
    """A GP (a physician) who accepts messages through her role in a practice; her Practitioner id.
    Her name gets a number, so that each test's GP is told apart in lists."""
    from hygie.domain.ens.messaging import ACCEPTS_MESSAGES_URL

    family = f"{family}{next(_n)}"
    org = hygie.call(
        create_resource(
            hygie.runtime, {"resourceType": "Organization", "active": True, "name": "Cabinet du Port"}
        )
    )
    gp = physician(hygie, family, given)
    hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "PractitionerRole",
                "active": True,
                "practitioner": {"reference": f"Practitioner/{gp}", "display": f"Dr {given} {family}"},
                "organization": {"reference": f"Organization/{org}", "display": "Cabinet du Port"},
                "extension": [{"url": ACCEPTS_MESSAGES_URL, "valueBoolean": True}],
            },
        )
    )
    return gp


def seed_professional_document(
    hygie: LiveHygie, patient_id: str, title: str, *, day: str = "2026-01-10", author: str | None = None
) -> str:
    """A consultation report with its PDF, as a professional's software would add it (by Dr
    Bernard, ``hygie.practitioner``, unless another ``author`` Practitioner id is given)."""
    data = pdf_bytes(title)
    binary = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "Binary",
                "contentType": "application/pdf",
                "securityContext": {"reference": f"Patient/{patient_id}"},
                "data": base64.b64encode(data).decode(),
            },
        )
    )
    return str(
        hygie.call(
            create_resource(
                hygie.runtime,
                {
                    "resourceType": "DocumentReference",
                    "status": "current",
                    "type": {
                        "coding": [{"system": "http://loinc.org", "code": "11488-4"}],
                        "text": "Compte rendu de consultation",
                    },
                    "category": [{"coding": [{"system": TRE_A03, "code": "10"}]}],
                    "subject": {"reference": f"Patient/{patient_id}"},
                    "date": f"{day}T10:00:00+01:00",
                    "author": [{"reference": f"Practitioner/{author or hygie.practitioner}"}],
                    "description": title,
                    "securityLabel": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                                    "code": "N",
                                }
                            ]
                        }
                    ],
                    "content": [
                        {
                            "attachment": {
                                "contentType": "application/pdf",
                                "url": f"Binary/{binary}",
                                "size": len(data),
                                "title": title,
                                "creation": day,
                            }
                        }
                    ],
                },
            )
        )
    )


def text_document(hygie: LiveHygie, patient_id: str, title: str, *, labels: tuple[str, ...] = ()) -> str:
    """A small consultation report (text content), with TRE_A07 visibility ``labels`` if any
    (``INVISIBLE_REPRESENTANTS_LEGAUX``: an adolescent's confidential document)."""
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
        "category": [{"coding": [{"system": "urn:oid:1.2.250.1.213.1.1.4.1", "code": "10"}]}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": "2026-10-01T09:00:00Z",
        "description": title,
        "content": [{"attachment": {"contentType": "text/plain", "data": "Q29uZmlkZW50aWVs"}}],
    }
    if labels:
        resource["securityLabel"] = [{"coding": [{"system": TRE_A07, "code": label}]} for label in labels]
    return str(hygie.call(create_resource(hygie.runtime, resource)))


def doctor_reads(hygie: LiveHygie, patient_id: str, *documents: str) -> str:
    """A doctor of the patient's care team (new) reads the documents through the FHIR API (they
    land in the access history); her Practitioner id."""
    doctor = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "Practitioner",
                "name": [{"family": "PEDIATRE", "given": ["Inès"], "prefix": ["Dr"]}],
                "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": "10"}]}}],
            },
        )
    )
    hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "CareTeam",
                "status": "active",
                "subject": {"reference": f"Patient/{patient_id}"},
                "participant": [{"member": {"reference": f"Practitioner/{doctor}"}}],
            },
        )
    )
    headers = pro_headers(hygie, doctor)
    for doc in documents:
        assert httpx.get(f"{hygie.fhir}/DocumentReference/{doc}", headers=headers).status_code == 200
    return str(doctor)


def deny_consent(hygie: LiveHygie, patient_id: str, actor_ref: str, role: str) -> str:
    """The patient's privacy Consent denying ``actor_ref`` (a blocked professional, or a parent
    kept from an adolescent's documents)."""
    return str(
        hygie.call(
            create_resource(
                hygie.runtime,
                {
                    "resourceType": "Consent",
                    "status": "active",
                    "scope": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                "code": "patient-privacy",
                            }
                        ]
                    },
                    "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                    "patient": {"reference": f"Patient/{patient_id}"},
                    "provision": {
                        "type": "deny",
                        "actor": [{"role": {"text": role}, "reference": {"reference": actor_ref}}],
                    },
                },
            )
        )
    )
