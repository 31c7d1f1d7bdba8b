"""Access relations derived from resources (the facts the access rules decide on)."""

from __future__ import annotations

from hygie.domain.relations import RelationRow, relations_from
from hygie.fhir.values import date_range

PAT = {"reference": "Patient/claire"}


def test_general_practitioner_is_the_medecin_traitant() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "claire",
        "generalPractitioner": [{"reference": "Practitioner/gp"}],
    }
    assert relations_from(patient) == [RelationRow("medecin_traitant", "claire", "Practitioner/gp")]
    assert relations_from({**patient, "active": False}) == []


def test_care_team_members_until_the_period_ends() -> None:
    team = {
        "resourceType": "CareTeam",
        "status": "active",
        "subject": PAT,
        "period": {"end": "2030-01-01"},
        "participant": [
            {"member": {"reference": "Practitioner/a"}},
            {"member": {"reference": "Organization/o"}},
        ],
    }
    rows = relations_from(team)
    assert [(r.kind, r.actor) for r in rows] == [
        ("care_team", "Practitioner/a"),
        ("care_team", "Organization/o"),
    ]
    assert rows[0].expires_us == date_range("2030-01-01")[1]
    assert relations_from({**team, "status": "inactive"}) == []


def test_encounter_opens_access_for_a_while_after_it_ends() -> None:
    enc = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": PAT,
        "period": {"start": "2025-01-01", "end": "2025-01-02"},
        "participant": [{"individual": {"reference": "Practitioner/cardio"}}],
        "serviceProvider": {"reference": "Organization/chu"},
    }
    rows = relations_from(enc, encounter_days=10)
    assert {r.actor for r in rows} == {"Practitioner/cardio", "Organization/chu"}
    assert rows[0].expires_us == date_range("2025-01-02")[1] + 10 * 86_400 * 1_000_000
    assert relations_from({**enc, "status": "entered-in-error"}) == []


def test_consent_grants_blocks_and_emergency_refusal() -> None:
    consent = {
        "resourceType": "Consent",
        "status": "active",
        "patient": PAT,
        "scope": {"coding": [{"code": "patient-privacy"}]},
        "provision": {
            "type": "permit",
            "provision": [
                {
                    "type": "permit",
                    "actor": [{"reference": {"reference": "Practitioner/kine"}}],
                    "class": [{"code": "31"}],
                    "period": {"end": "2031-06-01"},
                },
                {"type": "deny", "actor": [{"reference": {"reference": "Practitioner/ex"}}]},
                {"type": "deny", "purpose": [{"code": "BTG"}]},
            ],
        },
    }
    rows = relations_from(consent)
    assert RelationRow("grant", "claire", "Practitioner/kine", ("31",), date_range("2031-06-01")[1]) in rows
    assert RelationRow("block", "claire", "Practitioner/ex") in rows
    assert RelationRow("emergency_refusal", "claire", "*") in rows
    assert relations_from({**consent, "status": "inactive"}) == []
    assert relations_from({**consent, "scope": {"coding": [{"code": "research"}]}}) == []


def test_related_persons() -> None:
    parent = {
        "resourceType": "RelatedPerson",
        "id": "mother",
        "patient": {"reference": "Patient/lea"},
        "relationship": [{"coding": [{"code": "MTH"}]}],
    }
    assert relations_from(parent) == [RelationRow("representative", "lea", "RelatedPerson/mother")]
    helper = {**parent, "id": "h", "relationship": [{"coding": [{"code": "CAREGIVER"}]}]}
    assert relations_from(helper) == [RelationRow("aidant", "lea", "RelatedPerson/h")]
    assert relations_from({**parent, "relationship": [{"coding": [{"code": "E"}]}]}) == []


def test_a_trusted_person_gets_access_only_when_the_patient_says_so() -> None:
    role = "https://mos.esante.gouv.fr/NOS/TRE_R260-HL7RoleClass/FHIR/TRE-R260-HL7RoleClass"
    link = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
    trusted = {
        "resourceType": "RelatedPerson",
        "id": "paul",
        "patient": {"reference": "Patient/claire"},
        # a friend (FRND would make an aidant on its own) named as trusted person
        "relationship": [
            {"coding": [{"system": role, "code": "NOK"}]},
            {"coding": [{"system": link, "code": "FRND"}]},
        ],
    }
    assert relations_from(trusted) == []
    # the patient ticked "give access": the CAREGIVER role is explicit
    chosen = {
        **trusted,
        "relationship": [*trusted["relationship"], {"coding": [{"system": role, "code": "CAREGIVER"}]}],
    }
    assert relations_from(chosen) == [RelationRow("aidant", "claire", "RelatedPerson/paul")]
    # a parent named trusted person of an adult is no legal representative
    parent = {
        **trusted,
        "relationship": [{"coding": [{"system": role, "code": "NOK"}]}, {"coding": [{"code": "MTH"}]}],
    }
    assert relations_from(parent, majority_us=None) == []
    # a friend who is not named trusted person stays what he was
    friend = {**trusted, "relationship": [{"coding": [{"system": link, "code": "FRND"}]}]}
    assert relations_from(friend) == [RelationRow("aidant", "claire", "RelatedPerson/paul")]


def test_other_resources_establish_nothing() -> None:
    assert relations_from({"resourceType": "Observation", "subject": PAT}) == []
