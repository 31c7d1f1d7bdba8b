"""A closed health space: the lifecycle Consent derives ``space_closed``, which shuts
professionals (even in an emergency) and helpers out, while the person and their legal
representatives keep their access (to reopen it)."""

from __future__ import annotations

from typing import Any

from hygie.domain.policy import Principal, Relation, Target, decide, restriction_for
from hygie.domain.relations import SPACE_CATEGORY, SPACE_CATEGORY_SYSTEM, RelationRow, relations_from

NOW = 1_800_000_000_000_000
OBS = Target("Observation", "lea")
DOCTOR = Principal("practitioner", "Practitioner/dr", profession="10")
HELPER = Principal("aidant", "RelatedPerson/aide")
MOTHER = Principal("representative", "RelatedPerson/mere")
LEA = Principal("patient", "Patient/lea")


def space_consent(kind: str, status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": status,
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [
            {"coding": [{"system": "http://loinc.org", "code": "59284-0"}]},
            {"coding": [{"system": SPACE_CATEGORY_SYSTEM, "code": SPACE_CATEGORY}]},
        ],
        "patient": {"reference": "Patient/lea"},
        "provision": {"type": kind, "period": {"start": "2026-01-01"}},
    }


def test_the_lifecycle_consent_derives_space_closed_only_when_denied() -> None:
    assert relations_from(space_consent("deny")) == [RelationRow("space_closed", "lea", "*")]
    assert relations_from(space_consent("permit")) == []
    assert relations_from(space_consent("deny", status="inactive")) == []


def test_a_closed_space_refuses_professionals_even_in_an_emergency_and_helpers() -> None:
    closed = Relation("space_closed")
    assert decide(DOCTOR, "read", OBS, [Relation("care_team")], now_us=NOW).allowed
    assert not decide(DOCTOR, "read", OBS, [Relation("care_team"), closed], now_us=NOW).allowed
    assert not decide(DOCTOR, "create", OBS, [Relation("medecin_traitant"), closed], now_us=NOW).allowed
    emergency = Principal("practitioner", "Practitioner/er", profession="10", break_glass=frozenset({"lea"}))
    assert decide(emergency, "read", OBS, [], now_us=NOW).allowed
    assert not decide(emergency, "read", OBS, [closed], now_us=NOW).allowed
    assert decide(HELPER, "read", OBS, [Relation("aidant")], now_us=NOW).allowed
    assert not decide(HELPER, "read", OBS, [Relation("aidant"), closed], now_us=NOW).allowed


def test_the_person_and_their_representatives_keep_a_closed_space() -> None:
    closed = Relation("space_closed")
    assert decide(LEA, "read", OBS, [closed], now_us=NOW).allowed
    assert decide(LEA, "update", Target("Consent", "lea"), [closed], now_us=NOW).allowed
    assert decide(MOTHER, "read", OBS, [Relation("representative"), closed], now_us=NOW).allowed


def test_searches_of_professionals_and_helpers_drop_closed_spaces() -> None:
    assert restriction_for(DOCTOR, "Observation").blocked_for_actor == "Practitioner/dr"
    assert restriction_for(HELPER, "Observation").blocked_for_actor == "RelatedPerson/aide"
    assert restriction_for(MOTHER, "Observation").blocked_for_actor is None
