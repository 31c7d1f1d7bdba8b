"""Appointments, dispenses and requests in the patient's record: who may change them.

A professional's appointment (a practitioner among the participants) is read-only for the
patient, who is a participant but not its author; the patient's own entry (no professional)
stays theirs. A pharmacist's dispense is the pharmacist's; a renewal request the patient sent
is the patient's to cancel.
"""

from __future__ import annotations

from typing import Any

import orjson

from hygie.domain.policy import Principal, decide
from hygie.fhir.targets import target_of
from hygie.ports import StoredResource

CLAIRE = Principal("patient", "Patient/claire")
ME = {"reference": "Patient/claire"}


def stored(resource: dict[str, Any]) -> StoredResource:
    return StoredResource(
        resource["resourceType"], "x1", 1, 0, False, orjson.dumps(resource), patient="claire"
    )


def may_change(resource: dict[str, Any]) -> bool:
    target = target_of(stored(resource), authors=True)
    return decide(CLAIRE, "update", target).allowed and decide(CLAIRE, "delete", target).allowed


def test_a_professionals_appointment_is_read_only_for_the_patient() -> None:
    professional = {
        "resourceType": "Appointment",
        "status": "booked",
        "participant": [{"actor": {"reference": "Practitioner/gp"}}, {"actor": ME}],
    }
    assert target_of(stored(professional), authors=True).authors == frozenset({"Practitioner/gp"})
    assert not may_change(professional)
    own = {
        "resourceType": "Appointment",
        "status": "booked",
        "participant": [{"actor": ME}, {"actor": {"display": "Cabinet"}}],
    }
    assert target_of(stored(own), authors=True).authors == frozenset()
    assert may_change(own)
    # reading either stays a byte scan with no authors
    assert target_of(stored(professional)).authors == frozenset()
    assert decide(CLAIRE, "read", target_of(stored(professional))).allowed


def test_a_dispense_is_the_pharmacists_and_a_request_its_requesters() -> None:
    dispense = {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "subject": ME,
        "performer": [{"actor": {"reference": "Practitioner/pharmacist"}}],
    }
    assert not may_change(dispense)
    renewal = {"resourceType": "Task", "status": "requested", "intent": "order", "for": ME, "requester": ME,
               "owner": {"reference": "Practitioner/gp"}}  # fmt: skip
    assert may_change(renewal)
    from_the_gp = {**renewal, "requester": {"reference": "Practitioner/gp"}, "owner": ME}
    assert not may_change(from_the_gp)
