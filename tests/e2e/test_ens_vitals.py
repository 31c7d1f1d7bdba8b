"""ENS « Mesures »: a weight series entered by the person, its chart and table, bad input, a
personal threshold, and a value sent by an app (through the FHIR service) that crosses it.

Every page state is checked with axe-core; ``ens-mesures*.png`` feed the user guide.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import create_resource, new_citizen
from hygie.domain.access import Caller
from hygie.web.portal.door import Door

LiveHygie = Citizen = Any


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def _observations(hygie: LiveHygie, patient_id: str, code: str = "29463-7") -> list[dict[str, Any]]:
    door = Door(hygie.runtime.service)
    return hygie.call(
        door.search(
            Caller.operator("tests"),
            "Observation",
            [("patient", patient_id), ("code", f"http://loinc.org|{code}")],
        )
    )


def _mails(hygie: LiveHygie, to: str) -> list[tuple[str, str]]:
    """(subject, body) of the e-mails to ``to``: still in the outbox, or already handed to the
    demo's mail file by the server's background delivery (which drops the outbox's copy)."""
    from hygie.domain.outbox import KIND

    records = [r for _, r in hygie.call(hygie.runtime.kv.list(KIND)) if r["to"] == to]
    out = [(r["subject"], r["body"]) for r in records if r["status"] == "pending"]
    settings = hygie.runtime.settings
    mail_file = settings.mail_file or settings.data_dir / "mail.jsonl"
    if mail_file.exists():
        for line in mail_file.read_text(encoding="utf-8").splitlines():
            sent = json.loads(line)
            if sent["to"] == to:
                out.append((sent["subject"], sent["body"]))
    assert len(out) == len(records)  # every message is either waiting or in the file
    return out


def _enter(page: Any, value: str, day: date, hour: str = "08:30") -> None:
    page.fill("#valeur", value)
    page.fill("#date", day.isoformat())
    page.fill("#heure", hour)
    page.get_by_role("button", name="Enregistrer la valeur").click()


def _with_email(hygie: LiveHygie, patient_id: str, address: str) -> None:
    """The person's e-mail in their record (as « Mes coordonnées » writes it): where they are told."""
    door = Door(hygie.runtime.service)
    patient = hygie.call(door.read(Caller.operator("tests"), "Patient", patient_id))
    assert patient is not None
    patient["telecom"] = [{"system": "email", "value": address, "use": "home"}]
    hygie.call(door.update(Caller.operator("tests"), patient))


def test_a_weight_series_its_chart_a_threshold_and_an_app_value_that_crosses_it(
    page: Any, hygie: LiveHygie, citizen: Citizen, shots: Path
) -> None:
    _with_email(hygie, citizen.patient_id, citizen.login)
    page.goto(f"{hygie.base}/ens/mesures")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_url(f"{hygie.base}/ens/mesures")
    assert page.locator("h1").inner_text() == "Mes mesures"
    assert page.locator(".fr-card").count() == 8
    assert "Aucune valeur" in page.locator(".fr-card", has_text="Poids").inner_text()
    assert_accessible(page, "measures (empty)")

    page.locator(".fr-card a", has_text="Poids").click()
    page.wait_for_url(f"{hygie.base}/ens/mesures/poids")
    assert_accessible(page, "weight (empty)")

    # bad input: out of range, not a number, a date in the future — French messages, values kept
    today = date.today()
    _enter(page, "500", today - timedelta(days=1))
    assert page.locator("#valeur-erreur").inner_text() == "Le poids doit être compris entre 0,5 et 400 kg."
    assert page.input_value("#valeur") == "500"
    assert_accessible(page, "weight (errors)")
    _enter(page, "soixante", today + timedelta(days=3))
    assert "doit être un nombre" in page.locator("#valeur-erreur").inner_text()
    assert page.locator("#date-erreur").inner_text() == "La date ne peut pas être dans le futur."
    assert page.input_value("#valeur") == "soixante"
    assert _observations(hygie, citizen.patient_id) == []

    # a series, with the French decimal comma
    for value, days in (("72,5", 40), ("73,1", 20), ("74", 2)):
        _enter(page, value, today - timedelta(days=days))
        page.wait_for_selector(".fr-alert--success")
    assert len(_observations(hygie, citizen.patient_id)) == 3
    stored = _observations(hygie, citizen.patient_id)[0]
    assert stored["performer"][0]["reference"] == f"Patient/{citizen.patient_id}"
    assert stored["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    assert stored["category"][0]["coding"][0]["code"] == "vital-signs"

    # the default period (a year) shows the three; 30 days shows two
    rows = page.locator("#tableau-valeurs tbody tr")
    assert rows.count() == 3
    assert "72,5 kg" in page.locator("#tableau-valeurs").inner_text()
    assert "vous" in rows.first.inner_text()
    alt = page.locator("img.ens-chart").get_attribute("alt")
    assert alt is not None and "3 mesures" in alt and "de 72,5 à 74 kg" in alt
    page.wait_for_function("document.querySelector('img.ens-chart').naturalWidth > 0")
    svg = page.request.get(f"{hygie.base}/ens/mesures/poids/graphique.svg?periode=1an")
    assert svg.status == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert "default-src 'none'" in svg.headers["content-security-policy"]
    assert "<svg" in svg.text() and "Poids" in svg.text()
    page.get_by_role("link", name="30 jours").click()
    page.wait_for_url(re.compile(r".*periode=30j.*"))
    assert page.locator("#tableau-valeurs tbody tr").count() == 2
    assert_accessible(page, "weight (30 days)")

    # a double submission of the same form creates one observation
    page.goto(f"{hygie.base}/ens/mesures/poids")
    fields = {
        "csrf": page.locator("form[action^='/ens/mesures/poids#'] input[name=csrf]").input_value(),
        "jeton": page.locator("form[action^='/ens/mesures/poids#'] input[name=jeton]").input_value(),
        "valeur": "73,8",
        "date": (today - timedelta(days=1)).isoformat(),
        "heure": "07:00",
    }
    for _ in range(2):
        response = page.request.post(f"{hygie.base}/ens/mesures/poids", form=fields)
        assert response.ok
    assert len(_observations(hygie, citizen.patient_id)) == 4

    # a personal threshold: a bad one first, then a good one
    page.goto(f"{hygie.base}/ens/mesures/poids")
    page.fill("#bas-valeur", "80")
    page.fill("#haut-valeur", "75,5")
    page.get_by_role("button", name="Enregistrer les seuils").click()
    assert (
        page.locator("#haut-valeur-erreur").inner_text()
        == "Le seuil haut doit être plus grand que le seuil bas."
    )
    assert page.input_value("#haut-valeur") == "75,5"
    assert_accessible(page, "weight thresholds (errors)")
    page.fill("#bas-valeur", "60")
    page.fill("#haut-valeur", "75,5")
    page.get_by_role("button", name="Enregistrer les seuils").click()
    page.wait_for_selector(".fr-alert--success")
    assert "bas 60, haut 75,5 kg" in page.locator("main").inner_text()
    goals = hygie.call(
        Door(hygie.runtime.service).search(
            Caller.operator("tests"), "Goal", [("patient", citizen.patient_id)]
        )
    )
    assert len(goals) == 1
    assert goals[0]["target"][0]["detailRange"]["high"]["value"] == 75.5
    assert goals[0]["target"][0]["measure"]["coding"][0]["code"] == "29463-7"

    # an app sends a value through the FHIR API (seeded here as the service would store it)
    hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "Observation",
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": "vital-signs",
                            }
                        ]
                    }
                ],
                "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                "subject": {"reference": f"Patient/{citizen.patient_id}"},
                "effectiveDateTime": f"{today.isoformat()}T06:45:00+01:00",
                "valueQuantity": {
                    "value": 77.2,
                    "unit": "kg",
                    "system": "http://unitsofmeasure.org",
                    "code": "kg",
                },
            },
        )
    )
    page.goto(f"{hygie.base}/ens/mesures")
    notice = page.locator(".fr-alert--warning")
    assert notice.count() == 1
    assert "Poids : 77,2 kg, au-dessus de votre seuil haut (75,5 kg)." in notice.inner_text()
    assert_accessible(page, "measures (with an alert)")
    [(subject, body)] = _mails(hygie, citizen.login)
    assert "seuil" in subject and "77" not in body  # no health value in an e-mail
    # shown again: nothing new is flagged or sent twice
    page.reload()
    assert page.locator(".fr-alert--warning").count() == 1
    assert len(_mails(hygie, citizen.login)) == 1

    page.locator(".fr-card a", has_text="Poids").click()
    assert "application" in page.locator("#tableau-valeurs tbody tr").first.inner_text()
    page.screenshot(path=str(shots / "ens-mesures.png"), full_page=True)
    page.goto(f"{hygie.base}/ens/mesures")
    page.screenshot(path=str(shots / "ens-mesures-alerte.png"), full_page=True)
    flag_form = page.locator(".fr-alert--warning form")
    flag_action = flag_form.get_attribute("action")
    page.get_by_role("button", name=re.compile("J’ai vu cette alerte")).click()
    page.wait_for_selector(".fr-alert--success")
    assert page.locator(".fr-alert--warning").count() == 0
    assert_accessible(page, "measures (alert seen)")

    # another citizen cannot see these measures nor touch the alert
    other = new_citizen(hygie, family="MOREAU", given="Inès")
    page.goto(f"{hygie.base}/oauth/logout")
    page.context.clear_cookies()
    page.goto(f"{hygie.base}/ens/mesures/poids")
    fill_sign_in(page, other.login, other.password)
    page.wait_for_url(f"{hygie.base}/ens/mesures/poids")
    assert page.locator("#tableau-valeurs").count() == 0
    csrf = page.locator("input[name=csrf]").first.input_value()
    response = page.request.post(f"{hygie.base}{flag_action}", form={"csrf": csrf, "jeton": "x1"})
    assert response.status == 404
    assert page.goto(f"{hygie.base}/ens/mesures/inconnue").status == 404
    assert_accessible(page, "unknown measure")


def test_blood_pressure_has_two_values_and_checks_their_order(
    page: Any, hygie: LiveHygie, citizen: Citizen
) -> None:
    page.goto(f"{hygie.base}/ens/mesures/tension")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_url(f"{hygie.base}/ens/mesures/tension")
    page.fill("#systolique", "80")
    page.fill("#diastolique", "120")
    page.get_by_role("button", name="Enregistrer la valeur").click()
    assert "plus petite que la systolique" in page.locator("#diastolique-erreur").inner_text()
    assert_accessible(page, "blood pressure (errors)")
    page.fill("#systolique", "128")
    page.fill("#diastolique", "82")
    page.get_by_role("button", name="Enregistrer la valeur").click()
    page.wait_for_selector(".fr-alert--success")
    assert "128/82 mm Hg" in page.locator("#tableau-valeurs").inner_text()
    [stored] = _observations(hygie, citizen.patient_id, "85354-9")
    assert [c["code"]["coding"][0]["code"] for c in stored["component"]] == ["8480-6", "8462-4"]
    assert stored["component"][0]["valueQuantity"]["code"] == "mm[Hg]"
    assert_accessible(page, "blood pressure")


def test_a_parent_enters_a_measure_in_their_childs_space(page: Any, hygie: LiveHygie, family: Any) -> None:
    parent = family.parents[0]
    page.goto(f"{hygie.base}/ens/mesures/poids")
    fill_sign_in(page, parent.login, parent.password)
    page.wait_for_url(f"{hygie.base}/ens/mesures/poids")
    page.select_option("#espace", family.child.patient_id)
    page.get_by_role("button", name="Changer d’espace").click()
    page.wait_for_url(f"{hygie.base}/ens/mesures/poids")
    assert "Vous agissez pour Léa BERNARD" in page.locator("main").inner_text()
    _enter(page, "45,2", date.today() - timedelta(days=1))
    page.wait_for_selector(".fr-alert--success")
    assert "vous" in page.locator("#tableau-valeurs tbody tr").first.inner_text()
    assert_accessible(page, "weight in a child's space")
    [stored] = _observations(hygie, family.child.patient_id)
    assert stored["performer"] == [
        {"reference": f"RelatedPerson/{family.related_ids[0]}", "display": "Sophie BERNARD"}
    ]
    assert _observations(hygie, parent.patient_id) == []  # not in the parent's own record

    # the adolescent sees who entered it
    page.context.clear_cookies()
    page.goto(f"{hygie.base}/ens/mesures/poids")
    fill_sign_in(page, family.child.login, family.child.password)
    page.wait_for_url(f"{hygie.base}/ens/mesures/poids")
    assert "Sophie BERNARD" in page.locator("#tableau-valeurs tbody tr").first.inner_text()
