"""Questionnaires: after a hospital stay, the e-Satis-style questionnaire is proposed; the form
checks the answers against the Questionnaire (French errors, answers kept) and saves the
person's QuestionnaireResponse. Every page state passes axe-core."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import Citizen, LiveHygie, create_resource, new_citizen
from hygie.domain.access import Caller
from hygie.domain.ens import questionnaires as qs
from hygie.web.portal.door import Door

OPERATOR = Caller.operator("tests/e2e")


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def _stay(hygie: LiveHygie, citizen: Citizen, klass: str, ended_days_ago: int, hours: int) -> str:
    end = datetime.now(UTC) - timedelta(days=ended_days_ago)
    start = end - timedelta(hours=hours)
    return hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": klass},
                "subject": {"reference": f"Patient/{citizen.patient_id}"},
                "period": {
                    "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
                "serviceProvider": {"display": "CHU de Rennes"},
            },
        )
    )


def test_a_questionnaire_after_a_stay_is_checked_and_saved(
    page: Any, hygie: LiveHygie, citizen: Citizen, shots: Path
) -> None:
    hygie.call(qs.install(Door(hygie.runtime.service), OPERATOR))
    stay = _stay(hygie, citizen, "IMP", ended_days_ago=10, hours=72)
    _stay(hygie, citizen, "IMP", ended_days_ago=200, hours=72)  # too long ago
    _stay(hygie, citizen, "IMP", ended_days_ago=5, hours=20)  # less than 48 hours
    _stay(hygie, citizen, "AMB", ended_days_ago=3, hours=1)  # a consultation
    page.goto(f"{hygie.base}/ens/questionnaires")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_url(f"{hygie.base}/ens/questionnaires")
    cards = page.locator("#a-remplir .fr-card")
    assert cards.count() == 1
    assert "CHU de Rennes" in cards.first.inner_text()
    assert_accessible(page, "questionnaires to fill")

    cards.first.get_by_role("link").click()
    page.wait_for_url(f"{hygie.base}/ens/questionnaires/esatis-48h-mco/{stay}")
    assert page.locator("h1").inner_text() == "Votre avis sur votre hospitalisation"
    assert_accessible(page, "empty questionnaire")

    # incomplete, and a score out of range: errors per question, the answers given are kept
    page.locator("label[for=accueil-1-tout-a-fait]").click()
    page.locator("label[for=pec-4-sans-douleur]").click()
    page.locator("#avis-1").fill("12")
    page.locator("#avis-2").fill("L’équipe de nuit, très attentive.")
    page.get_by_role("button", name="Envoyer mes réponses").click()
    assert page.locator("#erreurs").is_visible()
    assert page.locator("#q-pec-1-erreur").inner_text() == "Répondez à cette question."
    assert page.locator("#avis-1-erreur").inner_text() == "Indiquez un nombre entre 0 et 10."
    assert page.locator("#accueil-1-tout-a-fait").is_checked()
    assert page.locator("#pec-4-sans-douleur").is_checked()
    assert page.locator("#avis-1").input_value() == "12"
    assert page.locator("#avis-2").input_value() == "L’équipe de nuit, très attentive."
    assert page.locator("#q-accueil-2-erreur").count() == 0  # optional
    assert_accessible(page, "questionnaire with errors")
    page.screenshot(path=str(shots / "ens-questionnaire.png"), full_page=True)

    for link_id, code in (
        ("pec-1", "plutot-oui"),
        ("pec-2", "tout-a-fait"),
        ("pec-3", "tout-a-fait"),
        ("chambre-1", "plutot-non"),
        ("sortie-1", "tout-a-fait"),
        ("sortie-2", "sans-traitement"),
        ("sortie-3", "oui"),
    ):
        page.locator(f"label[for={link_id}-{code}]").click()
    page.locator("#avis-1").fill("9")
    page.get_by_role("button", name="Envoyer mes réponses").click()
    page.wait_for_url(f"{hygie.base}/ens/questionnaires")
    main = page.locator("main").inner_text()
    assert "Merci ! Vos réponses ont été enregistrées." in main
    assert page.locator("#a-remplir").count() == 0
    assert "Votre avis sur votre hospitalisation — rempli le" in page.locator("#remplis").inner_text()
    assert_accessible(page, "questionnaires after answering")

    saved = hygie.call(
        Door(hygie.runtime.service).search(
            OPERATOR, "QuestionnaireResponse", [("subject", f"Patient/{citizen.patient_id}")]
        )
    )
    assert len(saved) == 1
    response = saved[0]
    assert response["status"] == "completed"
    assert response["author"]["reference"] == f"Patient/{citizen.patient_id}"
    assert response["encounter"]["reference"] == f"Encounter/{stay}"
    assert response["questionnaire"].startswith("https://hygie.example/fhir/Questionnaire/esatis-48h-mco")
    flat = {i["linkId"]: i["answer"][0] for g in response["item"] for i in g["item"]}
    assert flat["avis-1"] == {"valueInteger": 9}
    assert flat["sortie-3"] == {"valueBoolean": True}
    assert flat["pec-1"]["valueCoding"]["code"] == "plutot-oui"
    assert "accueil-2" not in flat

    # answered: the form is no longer offered; someone else never sees it
    response_page = page.request.get(f"{hygie.base}/ens/questionnaires/esatis-48h-mco/{stay}")
    assert response_page.status == 404
    other = new_citizen(hygie, family="PETIT", given="Marc", birth_date="1990-01-01")
    page.request.post(f"{hygie.base}/oauth/logout")
    page.context.clear_cookies()
    page.goto(f"{hygie.base}/ens/questionnaires/esatis-48h-mco/{stay}")
    fill_sign_in(page, other.login, other.password)
    page.wait_for_url(f"{hygie.base}/ens/questionnaires/esatis-48h-mco/{stay}")
    assert page.locator("h1").inner_text() == "Impossible d’afficher la page"
    assert_accessible(page, "someone else's questionnaire")
    page.goto(f"{hygie.base}/ens/questionnaires")
    assert "Aucun questionnaire ne vous attend" in page.locator("main").inner_text()
    assert_accessible(page, "no questionnaire")
