"""The controls page's words and rules: Consent rules found and withdrawn one by one, the
Consents the person writes, and the access history in plain French."""

from __future__ import annotations

import orjson

from hygie.domain.ens.controls import (
    block_consent,
    emergency_refusal_consent,
    hidden_from_viewer,
    history_line,
    rules_of,
    what_label,
    without_rule,
)
from hygie.domain.ens.lifecycle import SpaceRules, closing_consent, state_of
from hygie.domain.relations import relations_from

NOW = "2026-11-01T10:00:00Z"
ACTOR = {"role": {"text": "x"}, "reference": {"reference": "Practitioner/dr"}}


def policy_consent() -> dict:
    return {
        "resourceType": "Consent",
        "id": "c1",
        "meta": {"versionId": "3"},
        "status": "active",
        "scope": {"coding": [{"code": "patient-privacy"}]},
        "patient": {"reference": "Patient/lea"},
        "provision": {
            "type": "permit",
            "provision": [
                {"type": "deny", "actor": [ACTOR]},
                {"type": "deny", "purpose": [{"code": "BTG"}]},
                {
                    "type": "permit",
                    "period": {"end": "2030-01-01"},
                    "class": [{"code": "10"}],
                    "actor": [{"role": {"text": "x"}, "reference": {"reference": "Practitioner/spe"}}],
                },
            ],
        },
    }


def test_every_rule_of_a_consent_is_found_with_its_place() -> None:
    rules = rules_of([policy_consent()])
    assert [(r.kind, r.path) for r in rules] == [("block", "0"), ("emergency_refusal", "1"), ("grant", "2")]
    grant = rules[2]
    assert grant.actors == ("Practitioner/spe",) and grant.classes == ("10",)
    assert grant.classes_label == "comptes rendus" and grant.end_us is not None
    assert grant.key == "c1~2" and grant.version == "3"
    # the space's own lifecycle consent is not one of these rules
    space = closing_consent(
        "lea", state_of(None, 0, SpaceRules()), None, by="Patient/lea", now_us=10, rules=SpaceRules()
    )
    assert rules_of([{**space, "id": "s"}]) == []


def test_withdrawing_one_rule_keeps_the_others_and_empties_to_inactive() -> None:
    consent = policy_consent()
    without_block = without_rule(consent, "0")
    assert [r.kind for r in rules_of([without_block])] == ["emergency_refusal", "grant"]
    assert consent["provision"]["provision"][0]["type"] == "deny"  # the original is untouched
    assert {r.kind for r in relations_from(without_block)} == {"grant", "emergency_refusal"}
    rest = without_rule(without_rule(without_block, "1"), "0")
    assert rest["status"] == "inactive" and relations_from(rest) == []


def test_the_consents_the_person_writes_open_the_right_relations() -> None:
    block = block_consent("lea", "Practitioner/dr", by="Patient/lea", now=NOW)
    assert [(r.kind, r.actor) for r in relations_from(block)] == [("block", "Practitioner/dr")]
    assert rules_of([{**block, "id": "b"}])[0].kind == "block"
    refusal = emergency_refusal_consent("lea", by="RelatedPerson/mere", now=NOW)
    assert [r.kind for r in relations_from(refusal)] == ["emergency_refusal"]
    assert without_rule({**refusal, "id": "r"}, "")["status"] == "inactive"


def line_event(
    who: str, role: str | None, what: list[str], *, action: str = "R", purpose: str = "TREAT"
) -> dict:
    return {
        "resourceType": "AuditEvent",
        "id": "lea.12",
        "action": action,
        "recorded": "2026-11-03T13:05:00Z",
        "outcome": "0",
        "agent": [{"requestor": True, "who": {"identifier": {"value": who}}}],
        "extension": [
            {
                "url": "https://hygie.example/fhir/StructureDefinition/access-line",
                "valueString": orjson.dumps(
                    {
                        "who": "Dr Anne COEUR" if role == "10" else who,
                        "role": role,
                        "structure": "CH Nord" if role == "10" else None,
                        "what": what,
                        "granted": True,
                        "purpose": purpose,
                        "dispute": {"id": "d", "status": "under_review", "outcome": None, "resolution": None},
                    }
                ).decode(),
            }
        ],
    }


def test_a_history_line_in_plain_french() -> None:
    line = history_line(line_event("810001", "10", ["Observation/o1"]))
    assert line.who == "Dr Anne COEUR" and line.role == "Médecin" and line.structure == "CH Nord"
    assert (line.action, line.what, line.why) == ("a consulté", "une mesure ou un résultat", "Pour vos soins")
    assert line.when == "3 novembre 2026 à 14 h 05"  # Paris time
    assert line.dispute_label == "Signalement en cours d’examen"
    mine = history_line(
        line_event("Patient/lea", "PAT", ["DocumentReference?patient=lea"], action="E", purpose="PATRQT"),
        {"Patient/lea": "Vous"},
    )
    assert (mine.who, mine.action, mine.what) == ("Vous", "avez recherché", "la liste : documents")
    assert what_label([]) == "une information du dossier"
    assert what_label(["Observation/a", "Observation/b"]) == "une mesure ou un résultat (et 1 autre)"


def test_the_platforms_own_processes_are_named_by_what_they_do() -> None:
    """A notification round reading the record is the platform at work, said so in words; an
    operator recorded before processes had a role, or a backend service, stays a technical service."""
    line = history_line(line_event("notifications", "platform", ["Communication/m"], purpose=""))
    assert (line.who, line.role, line.why) == (
        "Hygie : envoi des notifications",
        "Traitement technique de la plateforme",
        "Fonctionnement du service",
    )
    unknown = history_line(line_event("nightly-job", "platform", ["Observation/o"], purpose=""))
    assert unknown.who == "Hygie : nightly-job"
    older = history_line(line_event("hygie demo", None, ["Observation/o"], purpose=""))
    assert (older.who, older.role, older.why) == (
        "Service technique (hygie demo)",
        "Service technique",
        "Non précisé",
    )


def test_lines_about_documents_the_viewer_may_not_see_are_hidden() -> None:
    line = history_line(line_event("810001", "10", ["DocumentReference/secret"]))
    assert hidden_from_viewer(line, {"DocumentReference/shared"})
    assert not hidden_from_viewer(line, {"DocumentReference/secret"})
    assert not hidden_from_viewer(history_line(line_event("810001", "10", ["Observation/o"])), set())
