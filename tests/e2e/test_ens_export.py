"""ENS "Exporter" in a browser: the whole record as a FHIR Bundle, and a readable PDF summary.

The Bundle must parse, hold the person's resources (and their documents' contents) and nothing
of another person; the PDF must be a PDF that names the person. Every page is checked with axe.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from pypdf import PdfReader

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import create_resource, new_citizen

LiveHygie = Citizen = Any


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def seed_record(hygie: LiveHygie, patient_id: str, *, allergy: str) -> dict[str, str]:
    subject = {"reference": f"Patient/{patient_id}"}
    ids: dict[str, str] = {}
    ids["allergy"] = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "AllergyIntolerance",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                            "code": "active",
                        }
                    ]
                },
                "code": {"text": allergy},
                "criticality": "high",
                "patient": subject,
            },
        )
    )
    ids["weight"] = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "Observation",
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": "vital-signs",
                            }
                        ]
                    }
                ],
                "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}], "text": "Poids"},
                "subject": subject,
                "effectiveDateTime": "2026-10-02",
                "valueQuantity": {
                    "value": 72.5,
                    "unit": "kg",
                    "system": "http://unitsofmeasure.org",
                    "code": "kg",
                },
            },
        )
    )
    ids["binary"] = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "Binary",
                "contentType": "text/plain",
                "data": base64.b64encode(b"Compte rendu de consultation").decode(),
            },
        )
    )
    ids["document"] = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
                "category": [{"coding": [{"system": "urn:oid:1.2.250.1.213.1.1.4.1", "code": "10"}]}],
                "subject": subject,
                "date": "2026-10-03T10:00:00Z",
                "description": "Compte rendu de consultation de cardiologie",
                "content": [{"attachment": {"contentType": "text/plain", "url": f"Binary/{ids['binary']}"}}],
            },
        )
    )
    return ids


def test_the_person_downloads_their_record_and_a_pdf_summary(
    page: Any, hygie: LiveHygie, citizen: Citizen, shots: Path
) -> None:
    mine = seed_record(hygie, citizen.patient_id, allergy="Pénicilline")
    other = new_citizen(hygie, family="VOISIN", given="Hugo")
    theirs = seed_record(hygie, other.patient_id, allergy="Arachide")

    page.goto(f"{hygie.base}/ens/export")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_url(f"{hygie.base}/ens/export")
    assert page.locator("h1").inner_text() == "Exporter mon dossier"
    assert_accessible(page, "export")
    page.screenshot(path=str(shots / "ens-export.png"), full_page=True)

    with page.expect_download() as download_info:
        page.locator("#telecharger-fhir").click()
    download = download_info.value
    assert download.suggested_filename.startswith("dossier-sante-claire-dupont-")
    bundle = orjson.loads(Path(download.path()).read_bytes())
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    found = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}
    assert ("Patient", citizen.patient_id) in found
    assert ("AllergyIntolerance", mine["allergy"]) in found
    assert ("Observation", mine["weight"]) in found
    assert ("DocumentReference", mine["document"]) in found
    assert ("Binary", mine["binary"]) in found  # the document's content travels with it
    assert ("Patient", other.patient_id) not in found
    assert not {("AllergyIntolerance", theirs["allergy"]), ("Binary", theirs["binary"])} & found
    assert b"Arachide" not in Path(download.path()).read_bytes()

    with page.expect_download() as download_info:
        page.locator("#telecharger-pdf").click()
    download = download_info.value
    data = Path(download.path()).read_bytes()
    assert data.startswith(b"%PDF")
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    assert "Claire DUPONT" in text
    assert "Pénicilline" in text and "72,5 kg" in text
    assert "Compte rendu de consultation de cardiologie" in text
    assert "Arachide" not in text


def test_the_export_needs_a_session(page: Any, hygie: LiveHygie) -> None:
    response = page.goto(f"{hygie.base}/ens/export/dossier.json")
    assert response is not None and "/connexion" in page.url
