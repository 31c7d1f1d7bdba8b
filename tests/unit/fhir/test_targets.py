"""What the access rules learn about a resource: who wrote it, read cheaply.

An entry's authors are not only ``author``: an allergy's recorder and asserter, an observation's
performer, an immunization's performer actor, a prescription's requester, a statement's
information source. They decide whether a patient may change an entry (``decide`` in
``domain/policy.py``); a plain read must not pay for parsing them.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import orjson
import pytest

from hygie.domain.policy import Principal, decide
from hygie.fhir import targets
from hygie.fhir.targets import target_of, target_of_resource
from hygie.ports import StoredResource

GP = {"reference": "Practitioner/gp"}
ME = {"reference": "Patient/claire"}
SUBJECT = {"reference": "Patient/claire"}
CLAIRE = Principal("patient", "Patient/claire")


def stored(resource: dict[str, Any]) -> StoredResource:
    return StoredResource(
        resource["resourceType"], "x1", 1, 0, False, orjson.dumps(resource), patient="claire"
    )


AUTHORED: list[tuple[dict[str, Any], set[str]]] = [
    (
        {"resourceType": "AllergyIntolerance", "patient": SUBJECT, "recorder": GP, "asserter": ME},
        {"Practitioner/gp", "Patient/claire"},
    ),
    ({"resourceType": "Condition", "subject": SUBJECT, "asserter": GP}, {"Practitioner/gp"}),
    (
        {
            "resourceType": "Procedure",
            "status": "completed",
            "subject": SUBJECT,
            "performer": [{"actor": {"reference": "Practitioner/surgeon"}}],
            "recorder": GP,
        },
        {"Practitioner/surgeon", "Practitioner/gp"},
    ),
    (
        {"resourceType": "Observation", "status": "final", "subject": SUBJECT, "performer": [GP, ME]},
        {"Practitioner/gp", "Patient/claire"},
    ),
    (
        {
            "resourceType": "Immunization",
            "status": "completed",
            "patient": SUBJECT,
            "performer": [{"actor": GP}],
        },
        {"Practitioner/gp"},
    ),
    (
        {"resourceType": "MedicationRequest", "subject": SUBJECT, "requester": GP},
        {"Practitioner/gp"},
    ),
    (
        {"resourceType": "MedicationStatement", "subject": SUBJECT, "informationSource": ME},
        {"Patient/claire"},
    ),
    (
        {"resourceType": "Encounter", "subject": SUBJECT, "participant": [{"individual": GP}]},
        {"Practitioner/gp"},
    ),
    ({"resourceType": "DocumentReference", "subject": SUBJECT, "author": [GP]}, {"Practitioner/gp"}),
]


@pytest.mark.parametrize(("resource", "expected"), AUTHORED, ids=[r["resourceType"] for r, _ in AUTHORED])
def test_the_recorder_elements_count_as_authors(resource: dict[str, Any], expected: set[str]) -> None:
    target = target_of_resource(resource["resourceType"], "claire", resource)
    assert target.authors == frozenset(expected)
    # and the stored row, read for a write, says the same
    assert target_of(stored(resource), authors=True).authors == frozenset(expected)


def test_other_elements_are_not_authors() -> None:
    # the subject, the encounter, a reason: references, but nobody who wrote the entry
    resource = {
        "resourceType": "Condition",
        "subject": SUBJECT,
        "encounter": {"reference": "Encounter/e1"},
        "evidence": [{"detail": [{"reference": "Observation/o1"}]}],
    }
    assert target_of_resource("Condition", "claire", resource).authors == frozenset()
    # a patient is no author of an Observation because it is about them
    assert target_of_resource("Observation", "claire", {"subject": SUBJECT}).authors == frozenset()


def test_a_read_does_not_parse_an_entry_for_its_authors() -> None:
    resource = {"resourceType": "Observation", "status": "final", "subject": SUBJECT, "performer": [GP]}
    with mock.patch.object(targets, "target_of_resource", wraps=targets.target_of_resource) as parse:
        read = target_of(stored(resource))
        assert parse.call_count == 0
        written = target_of(stored(resource), authors=True)
        assert parse.call_count == 1
    assert read.authors == frozenset()
    assert read.patient == "claire"
    assert written.authors == {"Practitioner/gp"}


def test_a_labelled_entry_is_parsed_even_on_read() -> None:
    # a masked entry needs its authors on read: they still see it
    resource = {
        "resourceType": "Observation",
        "meta": {"security": [{"code": "MASQUE_PS"}]},
        "subject": SUBJECT,
        "performer": [GP],
    }
    read = target_of(stored(resource))
    assert read.labels == {"MASQUE_PS"}
    assert read.authors == {"Practitioner/gp"}


def test_types_without_recorder_elements_stay_unparsed_on_write() -> None:
    patient = {"resourceType": "Patient", "name": [{"family": "DUPONT"}]}
    row = StoredResource("Patient", "claire", 1, 0, False, orjson.dumps(patient))
    with mock.patch.object(targets, "target_of_resource") as parse:
        target = target_of(row, authors=True)
    assert parse.call_count == 0
    assert target.patient == "claire"


@pytest.mark.parametrize("interaction", ["update", "delete"])
def test_a_patient_cannot_change_a_professional_entry(interaction: str) -> None:
    allergy = {"resourceType": "AllergyIntolerance", "patient": SUBJECT, "recorder": GP}
    professional = target_of(stored(allergy), authors=True)
    assert not decide(CLAIRE, interaction, professional).allowed  # type: ignore[arg-type]
    own = target_of(stored({**allergy, "recorder": ME, "asserter": ME}), authors=True)
    assert decide(CLAIRE, interaction, own).allowed  # type: ignore[arg-type]
    # reading stays open either way
    assert decide(CLAIRE, "read", target_of(stored(allergy))).allowed
