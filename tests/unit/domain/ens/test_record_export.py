"""The export: one collection Bundle of the record, the Binary ids of its documents, and a
French PDF summary (Latin-1 core font)."""

from __future__ import annotations

import io

from pypdf import PdfReader

from hygie.domain.ens.export import binary_ids, export_bundle, render_summary, summary_of, to_latin1

NOW = 1_795_000_000_000_000
PATIENT = {
    "resourceType": "Patient",
    "id": "lea",
    "name": [{"use": "official", "family": "Bernard", "given": ["Léa"]}],
    "birthDate": "2016-09-21",
    "gender": "female",
    "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "216096938305712"}],
}
RECORD = [
    PATIENT,
    {"resourceType": "AllergyIntolerance", "id": "a", "code": {"text": "Œufs"}, "criticality": "high"},
    {"resourceType": "Condition", "id": "c", "code": {"coding": [{"code": "J45", "display": "Asthme"}]}},
    {
        "resourceType": "MedicationRequest",
        "id": "m",
        "status": "active",
        "medicationCodeableConcept": {"text": "Salbutamol 100 µg"},
        "dosageInstruction": [{"text": "2 bouffées si besoin"}],
    },
    {
        "resourceType": "Immunization",
        "id": "i",
        "status": "completed",
        "vaccineCode": {"text": "ROR"},
        "occurrenceDateTime": "2017-10-02",
    },
    *[
        {
            "resourceType": "Observation",
            "id": f"w{i}",
            "status": "final",
            "category": [{"coding": [{"code": "vital-signs"}]}],
            "code": {"text": "Poids"},
            "effectiveDateTime": day,
            "valueQuantity": {"value": kg, "unit": "kg"},
        }
        for i, (day, kg) in enumerate((("2026-01-05", 28.5), ("2026-06-05", 30.1)))
    ],
    {
        "resourceType": "DocumentReference",
        "id": "d",
        "status": "current",
        "description": "Compte rendu — pneumologie",
        "date": "2026-03-04",
        "content": [
            {"attachment": {"url": "https://h.example/fhir/Binary/b1"}},
            {"attachment": {"url": "Binary/b2"}},
        ],
    },
]


def test_the_bundle_holds_each_resource_once() -> None:
    bundle = export_bundle([*RECORD, PATIENT], base_url="https://h.example/fhir/", now_us=NOW)
    assert bundle["type"] == "collection" and len(bundle["entry"]) == len(RECORD)
    assert bundle["entry"][0]["fullUrl"] == "https://h.example/fhir/Patient/lea"
    assert binary_ids(RECORD) == ["b1", "b2"]


def test_the_summary_reads_in_french_and_renders_as_pdf() -> None:
    summary = summary_of(RECORD, PATIENT, now_us=NOW)
    sections = dict(summary.sections)
    assert summary.identity[:2] == ["Nom : Léa BERNARD", "Date de naissance : 21 septembre 2016"]
    assert "Matricule INS : 216096938305712" in summary.identity
    assert sections["Allergies"] == ["Œufs - sévère"]
    assert sections["Problèmes de santé et antécédents"] == ["Asthme"]
    assert sections["Traitements"] == ["Salbutamol 100 µg - 2 bouffées si besoin"]
    assert sections["Vaccinations"] == ["ROR - 2 octobre 2017"]
    assert sections["Dernières mesures"] == ["Poids : 30,1 kg (5 juin 2026)"]
    assert sections["Documents"] == ["Compte rendu — pneumologie - 4 mars 2026"]
    empty = dict(summary_of([PATIENT], PATIENT, now_us=NOW).sections)
    assert empty["Allergies"] == ["Aucune information enregistrée."]
    pdf = render_summary(summary, now_us=NOW)
    assert pdf.startswith(b"%PDF")
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "Léa BERNARD" in text and "OEufs" in text and "Compte rendu - pneumologie" in text
    assert to_latin1("l’œil — 5 µg") == "l'oeil - 5 µg"
