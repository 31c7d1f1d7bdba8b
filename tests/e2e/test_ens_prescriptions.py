"""ENS « Ordonnances »: a prescription and its dispensing, a renewal request that reaches the
prescriber as a Task, a second request refused, another citizen kept out.

Every page state is checked with axe-core; ``ens-ordonnances.png`` feeds the user guide.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import create_resource, new_citizen
from hygie.domain.access import Caller
from hygie.web.portal.door import Door

LiveHygie = Citizen = Any
ATC = "https://smt.esante.gouv.fr/terminologie-atc"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def _prescribe(hygie: LiveHygie, patient_id: str, number: str) -> list[str]:
    """Two lines of one e-prescription by Dr BERNARD; the first dispensed once, partly again."""
    today = date.today()
    lines = []
    for text, atc, repeats in (
        ("Amlodipine 5 mg, comprimé", "C08CA01", 2),
        ("Paracétamol 1 g, comprimé", "N02BE01", 0),
    ):
        lines.append(
            hygie.call(
                create_resource(
                    hygie.runtime,
                    {
                        "resourceType": "MedicationRequest",
                        "status": "active",
                        "intent": "order",
                        "groupIdentifier": {"value": number},
                        "medicationCodeableConcept": {"coding": [{"system": ATC, "code": atc}], "text": text},
                        "subject": {"reference": f"Patient/{patient_id}"},
                        "authoredOn": (today - timedelta(days=20)).isoformat(),
                        "requester": {"reference": f"Practitioner/{hygie.practitioner}"},
                        "dosageInstruction": [{"text": "1 comprimé le matin"}],
                        "dispenseRequest": {
                            "validityPeriod": {
                                "start": (today - timedelta(days=20)).isoformat(),
                                "end": (today + timedelta(days=70)).isoformat(),
                            },
                            "numberOfRepeatsAllowed": repeats,
                        },
                    },
                )
            )
        )
    hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "MedicationDispense",
                "status": "completed",
                "medicationCodeableConcept": {"text": "Amlodipine 5 mg, comprimé"},
                "subject": {"reference": f"Patient/{patient_id}"},
                "authorizingPrescription": [{"reference": f"MedicationRequest/{lines[0]}"}],
                "performer": [{"actor": {"display": "Pharmacie du Marché"}}],
                "quantity": {"value": 1, "unit": "boîte"},
                "whenHandedOver": (today - timedelta(days=18)).isoformat(),
                "substitution": {"wasSubstituted": True},
            },
        )
    )
    return lines


def _tasks(hygie: LiveHygie, patient_id: str) -> list[dict[str, Any]]:
    door = Door(hygie.runtime.service)
    return hygie.call(door.search(Caller.operator("tests"), "Task", [("patient", patient_id)]))


def test_a_prescription_its_dispensing_and_one_renewal_request(
    page: Any, hygie: LiveHygie, citizen: Citizen, shots: Path
) -> None:
    page.goto(f"{hygie.base}/ens/ordonnances")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_url(f"{hygie.base}/ens/ordonnances")
    assert "Aucune ordonnance" in page.locator("main").inner_text()
    assert_accessible(page, "prescriptions (empty)")

    lines = _prescribe(hygie, citizen.patient_id, "ORD-2026-0001")
    page.reload()
    card = page.locator(".fr-card")
    assert card.count() == 1
    text = card.inner_text()
    assert "Dr Paul BERNARD" in text and "Amlodipine 5 mg, comprimé" in text
    assert "délivrée en partie" in text.lower()
    assert_accessible(page, "prescriptions (one)")

    card.locator("a").click()
    page.wait_for_url(f"{hygie.base}/ens/ordonnances/{min(lines)}")
    table = page.locator("#lignes").inner_text()
    assert "Délivrée en partie (1 délivrance sur 3)" in table
    assert "à renouveler 2 fois" in table
    assert "Prescrite, pas encore délivrée" in table
    delivered = page.locator("#delivrances").inner_text()
    assert "Pharmacie du Marché" in delivered and "1 boîte" in delivered and "générique" in delivered
    assert_accessible(page, "prescription")

    # a message too long is refused, kept, and nothing is sent
    page.fill("#message", "x" * 1001)
    page.get_by_role("button", name="Demander un renouvellement").click()
    assert "trop long" in page.locator("#message-erreur").inner_text()
    assert page.input_value("#message") == "x" * 1001
    assert _tasks(hygie, citizen.patient_id) == []
    assert_accessible(page, "prescription (errors)")

    page.fill("#message", "Il me reste une semaine de traitement.")
    csrf = page.locator("input[name=csrf]").first.input_value()
    page.get_by_role("button", name="Demander un renouvellement").click()
    page.wait_for_selector(".fr-alert--success")
    assert "envoyée à Dr Paul BERNARD" in page.locator(".fr-alert--success").inner_text()
    assert "envoyée, en attente de réponse" in page.locator(".fr-callout").inner_text()
    assert_accessible(page, "prescription (renewal asked)")
    page.screenshot(path=str(shots / "ens-ordonnances.png"), full_page=True)

    [task] = _tasks(hygie, citizen.patient_id)
    assert task["status"] == "requested" and task["intent"] == "order"
    assert task["owner"]["reference"] == f"Practitioner/{hygie.practitioner}"
    assert task["for"]["reference"] == f"Patient/{citizen.patient_id}"
    assert task["requester"]["reference"] == f"Patient/{citizen.patient_id}"
    assert task["focus"]["reference"] == f"MedicationRequest/{min(lines)}"
    assert {i["valueReference"]["reference"] for i in task["input"]} == {
        f"MedicationRequest/{i}" for i in lines
    }
    assert task["note"][0]["text"] == "Il me reste une semaine de traitement."
    # the prescriber's inbox: the Tasks it owns
    inbox = hygie.call(
        Door(hygie.runtime.service).search(
            Caller.operator("tests"),
            "Task",
            [("owner", f"Practitioner/{hygie.practitioner}"), ("status", "requested")],
        )
    )
    assert task["id"] in {t["id"] for t in inbox}

    # a second request for the same prescription (another tab, an old form) is refused
    response = page.request.post(
        f"{hygie.base}/ens/ordonnances/{max(lines)}/renouvellement",
        form={"csrf": csrf, "jeton": "un-autre-formulaire", "message": ""},
    )
    assert response.status == 409
    assert "déjà demandé le renouvellement" in response.text()
    assert len(_tasks(hygie, citizen.patient_id)) == 1

    # cancelling it, then asking again, is possible
    page.get_by_role("button", name="Annuler ma demande").click()
    page.wait_for_selector(".fr-alert--success")
    assert (
        "Demande du" in page.locator("main").inner_text() and "annulée" in page.locator("main").inner_text()
    )
    page.get_by_role("button", name="Demander un renouvellement").click()
    page.wait_for_selector(".fr-alert--success")
    statuses = sorted(t["status"] for t in _tasks(hygie, citizen.patient_id))
    assert statuses == ["cancelled", "requested"]
    assert_accessible(page, "prescription (asked again)")

    # another citizen: the same address is a 404, and no request can be made on it
    other = new_citizen(hygie, family="PETIT", given="Jules")
    page.context.clear_cookies()
    page.goto(f"{hygie.base}/ens/ordonnances/{lines[0]}")
    fill_sign_in(page, other.login, other.password)
    page.wait_for_url(f"{hygie.base}/ens/ordonnances/{lines[0]}")
    assert "Amlodipine" not in page.locator("main").inner_text()
    assert page.locator("h1").inner_text() == "Impossible d’afficher la page"
    assert_accessible(page, "prescription of someone else")
    page.goto(f"{hygie.base}/ens/mesures/poids")  # a page with a form, for this session's CSRF token
    csrf = page.locator("input[name=csrf]").first.input_value()
    response = page.request.post(
        f"{hygie.base}/ens/ordonnances/{lines[0]}/renouvellement", form={"csrf": csrf, "jeton": "j2"}
    )
    assert response.status in (403, 404)
    assert len(_tasks(hygie, citizen.patient_id)) == 2
