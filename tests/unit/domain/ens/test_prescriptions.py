"""Prescriptions grouped by e-prescription number, their delivery state from the dispenses, and
the renewal request as a Task for the prescriber."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from hygie.domain.ens import prescriptions as rx

TODAY = date(2026, 5, 12)


def line(id: str, group: str | None, *, repeats: int = 0, status: str = "active", end: str = "2026-08-01",
         authored: str = "2026-04-01", requester: str = "Practitioner/d", text: str | None = None) -> dict[str, Any]:  # fmt: skip
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": id,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": "atc", "code": "C08CA01", "display": "amlodipine"}]
        },
        "authoredOn": authored,
        "requester": {"reference": requester, "display": "Dr Paul BERNARD"},
        "dosageInstruction": [{"text": "1 comprimé le matin"}],
        "dispenseRequest": {"validityPeriod": {"end": end}, "numberOfRepeatsAllowed": repeats},
    }
    if text:
        resource["medicationCodeableConcept"]["text"] = text
    if group:
        resource["groupIdentifier"] = {"value": group}
    return resource


def dispense(of: str, day: str, status: str = "completed") -> dict[str, Any]:
    return {
        "resourceType": "MedicationDispense",
        "id": f"d-{of}-{day}",
        "status": status,
        "authorizingPrescription": [{"reference": f"MedicationRequest/{of}"}],
        "whenHandedOver": day,
        "quantity": {"value": 2, "unit": "boîtes"},
        "performer": [{"actor": {"display": "Pharmacie du Marché"}}],
    }


def test_lines_are_grouped_by_prescription_with_their_delivery_state() -> None:
    requests = [
        line("a1", "ORD-1", repeats=2, text="Amlodipine 5 mg"),
        line("a2", "ORD-1"),
        line("b1", None, authored="2025-01-10", end="2025-04-10"),
        line("c1", "ORD-2", status="draft"),
        line("e1", "ORD-3", authored="2026-03-01"),
    ]
    dispenses = [dispense("a1", "2026-04-02"), dispense("a1", "2026-05-02"), dispense("e1", "2026-03-02"),
                 dispense("a2", "2026-04-02", status="entered-in-error")]  # fmt: skip
    found = rx.group(requests, dispenses, {}, TODAY)
    assert [p.key for p in found] == ["a1", "e1", "b1"]  # newest first; the draft is not a prescription
    first = found[0]
    assert first.number == "ORD-1" and first.prescriber_name == "Dr Paul BERNARD"
    a1, a2 = first.lines
    assert a1.medicine == "Amlodipine 5 mg" and a2.medicine == "amlodipine"
    assert (a1.state, a1.state_label, a1.remaining) == (
        "partial",
        "Délivrée en partie (2 délivrances sur 3)",
        1,
    )
    assert (a2.state, a2.remaining) == ("prescribed", 1)
    assert first.state == "partial" and first.current
    assert [d.pharmacy for d in a1.dispenses] == ["Pharmacie du Marché"] * 2
    assert found[1].state == "dispensed" and found[1].state_label == "Entièrement délivrée"
    assert found[2].state == "expired" and found[2].number == ""


def test_states_of_stopped_and_completed_lines() -> None:
    found = rx.group(
        [
            line("s", "G", status="stopped"),
            line("x", "G", status="cancelled"),
            line("c", "H", status="completed"),
        ],
        [],
        {},
        TODAY,
    )
    by_key = {p.key: p for p in found}
    assert by_key["c"].state == "completed"
    assert by_key["s"].state == "stopped"
    assert (
        rx.why_not_renewable(by_key["s"]) == "Cette ordonnance a été annulée ou arrêtée par le prescripteur."
    )


def test_a_renewal_request_is_a_task_owned_by_the_prescriber() -> None:
    [p] = rx.group([line("a1", "ORD-1"), line("a2", "ORD-1", status="stopped")], [], {}, TODAY)
    assert rx.why_not_renewable(p) is None
    task = rx.renewal_task(
        p, "Patient/p", "RelatedPerson/r", datetime(2026, 5, 12, 8, 0, tzinfo=UTC), " Merci "
    )
    assert task["status"] == "requested" and task["intent"] == "order"
    assert task["code"]["coding"][0]["code"] == "renew-prescription"
    assert task["focus"]["reference"] == "MedicationRequest/a1"
    assert task["for"] == {"reference": "Patient/p"}
    assert task["owner"]["reference"] == "Practitioner/d"
    assert task["requester"] == {"reference": "RelatedPerson/r"}
    assert [i["valueReference"]["reference"] for i in task["input"]] == [
        "MedicationRequest/a1"
    ]  # not the stopped one
    assert task["note"][0]["text"] == "Merci"
    assert task["groupIdentifier"] == {"value": "ORD-1"}
    assert task["authoredOn"] == "2026-05-12T10:00:00+02:00"

    task["id"] = "t1"
    assert rx.open_request(p, [task]) is not None
    p.renewals = rx.renewals_of(p, [task])
    assert p.open_renewal is not None and p.open_renewal.words == "envoyée, en attente de réponse"
    closed = {**task, "id": "t0", "status": "rejected", "statusReason": {"text": "Consultation nécessaire"}}
    renewals = rx.renewals_of(p, [closed])
    assert renewals[0].open is False and renewals[0].reason == "Consultation nécessaire"
    assert rx.open_request(p, [closed]) is None
    other = {**task, "focus": {"reference": "MedicationRequest/zz"}, "input": []}
    assert rx.open_request(p, [other]) is None


def test_a_prescription_without_a_known_prescriber_cannot_be_sent_for_renewal() -> None:
    [p] = rx.group([line("a1", None, requester="")], [], {}, TODAY)
    assert "Nous ne savons pas" in (rx.why_not_renewable(p) or "")
    assert rx.check_note("x" * 1001) is not None and rx.check_note("x" * 1000) is None
