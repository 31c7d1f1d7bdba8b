"""A professional's document enters the shared record only with the DMP's mandatory metadata."""

from __future__ import annotations

from typing import Any

import pytest

from hygie.domain.identity.nos import TRE_A03_CLASS
from hygie.domain.policy import Principal
from hygie.fhir.outcome import Unprocessable
from hygie.fhir.record_metadata import check_professional_document

DOCTOR = Principal("practitioner", "Practitioner/p1", profession="10")


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11490-0"}]},
        "category": [{"coding": [{"system": TRE_A03_CLASS, "code": "10"}]}],
        "subject": {"reference": "Patient/a"},
        "date": "2026-03-01T10:00:00+01:00",
        "author": [{"reference": "Practitioner/p1"}],
        "content": [{"attachment": {"contentType": "application/pdf", "url": "Binary/b"}}],
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


def test_a_complete_document_passes() -> None:
    check_professional_document(DOCTOR, "DocumentReference", document())


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"type": None}, "DocumentReference.type"),
        ({"category": None}, "DocumentReference.category"),
        (
            {"category": [{"coding": [{"system": "http://loinc.org", "code": "11490-0"}]}]},
            "DocumentReference.category",
        ),
        ({"date": None}, "DocumentReference.date"),
        ({"author": []}, "DocumentReference.author"),
        ({"subject": None}, "DocumentReference.subject"),
        (
            {"content": [{"attachment": {"url": "Binary/b"}}]},
            "DocumentReference.content[0].attachment.contentType",
        ),
        (
            {"content": [{"attachment": {"contentType": "application/pdf"}}]},
            "DocumentReference.content[0].attachment",
        ),
    ],
)
def test_each_missing_element_is_named(changes: dict[str, Any], path: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        check_professional_document(DOCTOR, "DocumentReference", document(**changes))
    assert [i.expression for i in refused.value.issues] == [path]
    assert refused.value.status == 422


def test_every_fault_at_once() -> None:
    with pytest.raises(Unprocessable) as refused:
        check_professional_document(DOCTOR, "DocumentReference", {"resourceType": "DocumentReference"})
    assert len(refused.value.issues) == 5


@pytest.mark.parametrize(
    "principal",
    [
        Principal("operator", "Operator/import"),  # imports carry documents as they are
        Principal("system", "etl-job"),  # a platform job
        Principal("patient", "Patient/a"),  # the portal builds the person's own uploads
    ],
)
def test_imports_jobs_and_patients_are_not_held_to_it(principal: Principal) -> None:
    check_professional_document(principal, "DocumentReference", {"resourceType": "DocumentReference"})


def test_a_structures_software_is_held_to_it() -> None:
    software = Principal("system", "practice-app", organization="Organization/cabinet")
    with pytest.raises(Unprocessable):
        check_professional_document(software, "DocumentReference", document(category=None))


def test_other_resources_are_not_concerned() -> None:
    check_professional_document(DOCTOR, "Observation", {"resourceType": "Observation"})
