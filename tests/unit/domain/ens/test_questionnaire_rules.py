"""Questionnaires: the shipped ones are valid FHIR, answers are checked against them, a stay
proposes the right one once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from hygie.domain.ens import questionnaires as qs

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)


@pytest.fixture
def esatis() -> dict[str, Any]:
    return next(q for q in qs.reference_questionnaires() if q["id"] == "esatis-48h-mco")


def test_the_shipped_questionnaires_are_valid_fhir() -> None:
    found = qs.reference_questionnaires()
    assert {q["id"] for q in found} == {"esatis-48h-mco", "esatis-mco-ca"}
    for questionnaire in found:
        Questionnaire.model_validate(questionnaire)
        links = [q.link_id for s in qs.questions(questionnaire) for q in s.questions]
        assert len(links) == len(set(links)) and len(links) >= 8


def test_answers_are_checked_against_the_questionnaire(esatis: dict[str, Any]) -> None:
    answers, errors = qs.validate(
        esatis, {"accueil-1": "oui", "avis-1": "11", "sortie-3": "peut-être", "avis-2": "x" * 2001}
    )
    assert errors["accueil-1"] == "Choisissez une des réponses proposées."
    assert errors["avis-1"] == "Indiquez un nombre entre 0 et 10."
    assert errors["sortie-3"] == "Répondez par oui ou par non."
    assert errors["avis-2"].startswith("Votre réponse est trop longue")
    assert errors["pec-1"] == "Répondez à cette question."
    assert "accueil-2" not in errors  # optional
    assert qs.validate(esatis, {"avis-1": "huit"})[1]["avis-1"] == "Indiquez un nombre entier, par exemple 8."
    complete = {
        "accueil-1": "tout-a-fait",
        "pec-1": "plutot-oui",
        "pec-2": "plutot-oui",
        "pec-3": "tout-a-fait",
        "pec-4": "sans-douleur",
        "chambre-1": "plutot-non",
        "sortie-1": "tout-a-fait",
        "sortie-2": "tout-a-fait",
        "sortie-3": "non",
        "avis-1": " 7 ",
    }
    answers, errors = qs.validate(esatis, complete)
    assert errors == {}
    response = qs.response_resource(
        esatis,
        answers,
        patient_ref="Patient/p",
        author_ref="RelatedPerson/r",
        encounter_ref="Encounter/e",
        now_us=1_780_000_000_000_000,
    )
    QuestionnaireResponse.model_validate(response)
    assert response["questionnaire"] == "https://hygie.example/fhir/Questionnaire/esatis-48h-mco|2026.1"
    assert response["author"] == {"reference": "RelatedPerson/r"} and response["status"] == "completed"
    groups = {g["linkId"]: g for g in response["item"]}
    assert "chambre-repas" in groups and groups["avis"]["item"][0]["answer"] == [{"valueInteger": 7}]
    pain = next(i for i in groups["prise-en-charge"]["item"] if i["linkId"] == "pec-4")
    assert (
        pain["answer"][0]["valueCoding"]["system"] == "https://hygie.example/fhir/CodeSystem/esatis-reponse"
    )


def _stay(id: str, klass: str, start: str, end: str, status: str = "finished") -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": id,
        "status": status,
        "class": {"code": klass},
        "period": {"start": start, "end": end},
    }


def test_a_recent_stay_of_the_right_kind_proposes_its_questionnaire_once() -> None:
    questionnaires = {q["id"]: q for q in qs.reference_questionnaires()}
    stays = [
        _stay("long", "IMP", "2026-06-01T08:00:00Z", "2026-06-05T10:00:00Z"),
        _stay("short", "IMP", "2026-06-10T08:00:00Z", "2026-06-11T10:00:00Z"),  # under 48 h
        _stay("day", "SS", "2026-06-20T07:00:00Z", "2026-06-20T17:00:00Z"),
        _stay("old", "IMP", "2026-01-01T08:00:00Z", "2026-01-05T10:00:00Z"),  # 6 months ago
        _stay("visit", "AMB", "2026-06-25T09:00:00Z", "2026-06-25T09:20:00Z"),
        _stay("ongoing", "IMP", "2026-06-25T09:00:00Z", "2026-07-05T09:20:00Z", "in-progress"),
    ]
    found = qs.proposals(stays, [], questionnaires, now=NOW, weeks=8)
    assert [(p.questionnaire_id, p.encounter_id) for p in found] == [
        ("esatis-mco-ca", "day"),
        ("esatis-48h-mco", "long"),
    ]
    answered = [{"status": "completed", "encounter": {"reference": "Encounter/long"}}]
    assert [p.encounter_id for p in qs.proposals(stays, answered, questionnaires, now=NOW, weeks=8)] == [
        "day"
    ]
    assert qs.proposals(stays, [], {}, now=NOW, weeks=8) == []  # not installed: nothing proposed
