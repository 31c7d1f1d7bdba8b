"""Alertes santé: an authority's broadcast reaches the people its criteria designate, each sees
why, and a person who refuses a topic no longer receives it. Every page state passes axe-core."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import PASSWORD, Citizen, LiveHygie, create_resource
from hygie.bootstrap import clock_us
from hygie.domain.access import Caller
from hygie.domain.ens import alerts as al
from hygie.web.portal.door import Door

INSEE = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code"
_n = iter(range(1, 1000))


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def _resident(hygie: LiveHygie, born: str, insee: str, city: str, postcode: str) -> Citizen:
    n = next(_n)
    patient = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "Patient",
                "name": [{"use": "official", "family": "LE GALL", "given": ["Yvonne"]}],
                "gender": "female",
                "birthDate": born,
                "address": [
                    {
                        "extension": [{"url": INSEE, "valueCoding": {"code": insee}}],
                        "use": "home",
                        "line": ["3 rue de Siam"],
                        "city": city,
                        "postalCode": postcode,
                        "country": "FR",
                    }
                ],
            },
        )
    )
    accounts = hygie.runtime.accounts
    assert accounts is not None
    account, _ = hygie.call(
        accounts.create("citizen", f"yvonne.legall.{n}@example.fr", PASSWORD, patient_id=patient)
    )
    return Citizen(patient, account.login, PASSWORD, account.id)


def _broadcast(hygie: LiveHygie, alert: al.Alert, criteria: al.Criteria) -> al.BroadcastReport:
    return hygie.call(
        al.broadcast(
            Door(hygie.runtime.service),
            Caller.operator("tests/e2e"),
            alert,
            criteria,
            broadcast_id=uuid.uuid4().hex,
            now_us=clock_us(),
            today=date.today(),
        )
    )


def test_a_person_sees_why_they_received_an_alert_and_can_refuse_a_topic(
    page: Any, hygie: LiveHygie, shots: Path
) -> None:
    yvonne = _resident(hygie, "1950-05-04", "29019", "Brest", "29200")
    young = _resident(hygie, "1998-05-04", "29019", "Brest", "29200")
    page.goto(f"{hygie.base}/ens/alertes")
    fill_sign_in(page, yvonne.login, yvonne.password)
    page.wait_for_url(f"{hygie.base}/ens/alertes")
    assert "aucune alerte" in page.locator("main").inner_text()
    assert_accessible(page, "no alert yet")

    heat = al.Alert(
        "Canicule : protégez-vous",
        "De fortes chaleurs sont attendues jusqu’à dimanche.\nBuvez de l’eau régulièrement, fermez vos volets le jour.",
        "canicule",
        "Agence régionale de santé Bretagne",
    )
    report = _broadcast(hygie, heat, al.Criteria(age_min=65, regions=("53",)))
    assert report.matched >= 1 and report.opted_out == 0
    page.reload()
    alert = page.locator("#alertes li").first
    text = alert.inner_text()
    assert "Canicule : protégez-vous" in text
    assert "Agence régionale de santé Bretagne" in text
    assert "Vous recevez ce message car : vous avez 65 ans ou plus et habitez en Bretagne" in text
    assert "nouveau" in text.lower()
    assert_accessible(page, "an alert")
    page.screenshot(path=str(shots / "ens-alertes.png"), full_page=True)
    page.reload()  # seen: no longer new
    assert "nouveau" not in page.locator("#alertes li").first.inner_text().lower()

    # she refuses heat-wave alerts
    page.get_by_role("link", name="Choisir mes alertes").click()
    assert page.locator("#theme-canicule").is_checked()
    assert_accessible(page, "alert preferences")
    # a tampered form (a topic that does not exist): said in French, nothing saved
    page.evaluate("document.getElementById('theme-pollution').value = 'meteo'")
    page.get_by_role("button", name="Enregistrer mes choix").click()
    assert "Un des thèmes choisis n’existe pas" in page.locator("#themes-erreur").inner_text()
    assert_accessible(page, "alert preferences with an error")
    assert not page.locator("#theme-pollution").is_checked()  # the form shows what was sent
    page.locator("label[for=theme-pollution]").click()
    page.locator("label[for=theme-canicule]").click()
    page.get_by_role("button", name="Enregistrer mes choix").click()
    page.wait_for_url(f"{hygie.base}/ens/alertes")
    assert "Vos choix d’alertes sont enregistrés." in page.locator("main").inner_text()
    assert (
        "ne pas recevoir les alertes sur : Canicule et fortes chaleurs" in page.locator("main").inner_text()
    )
    assert_accessible(page, "alerts after choosing topics")

    again = _broadcast(hygie, heat, al.Criteria(age_min=65, regions=("53",)))
    assert again.opted_out >= 1
    vaccination = al.Alert("Vaccination contre la grippe", "La campagne commence.", "vaccination")
    _broadcast(hygie, vaccination, al.Criteria(age_min=65, departments=("29",)))
    page.reload()
    titles = page.locator("#alertes h2").all_inner_texts()
    assert [t.replace("NOUVEAU", "").replace("Nouveau", "").strip() for t in titles] == [
        "Vaccination contre la grippe",
        "Canicule : protégez-vous",
    ]
    assert "habitez dans le département Finistère (29)" in page.locator("#alertes li").first.inner_text()

    # her choice can be undone; the young neighbour received nothing
    page.goto(f"{hygie.base}/ens/alertes/preferences")
    assert not page.locator("#theme-canicule").is_checked()
    page.locator("label[for=theme-canicule]").click()
    page.get_by_role("button", name="Enregistrer mes choix").click()
    page.wait_for_url(f"{hygie.base}/ens/alertes")
    assert "ne pas recevoir" not in page.locator("main").inner_text()
    young_alerts = hygie.call(
        Door(hygie.runtime.service).search(
            Caller.operator("tests/e2e"), "Communication", [("subject", f"Patient/{young.patient_id}")]
        )
    )
    assert young_alerts == []
