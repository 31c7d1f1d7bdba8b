"""The professionals' portal (BSP) in the browser: apps opened in a patient's context (SMART EHR
launch with the official ``fhirclient`` JS), and the practice view.

Dr BERNARD of the e2e seed (in Léa DURAND's care team, no relation with Claire MARTIN) signs in
to the BSP once, opens Léa DURAND's record and launches an app registered for professionals
(``hygie client add --audience professional --launch-url …``): the app reads her Patient and
Observations (its scopes), is refused her documents (not in its scopes) and anything of another
patient; no second sign-in page appears. Every Hygie page visited is checked with axe-core;
``bsp-applications*.png`` and ``bsp-activite.png`` feed the user guide.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from ens_seed import seed_professional_document
from playwright.sync_api import expect

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import LiveHygie, People, create_resource
from hygie.domain.bsp.practice import PARIS, last_months
from hygie.domain.ens.prescriptions import RENEWAL_CODE

APP_ID = "hygie-e2e-bsp-app"
APP_NAME = "Suivi des constantes"
APP_SCOPE = "launch openid fhirUser patient/Patient.rs patient/Observation.rs"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


@pytest.fixture(scope="module")
def bsp_app(hygie: LiveHygie, smart_app: str) -> str:
    """An app offered to professionals, registered for this module alone (the shared test app
    keeps its wider scopes for the standalone-launch tests)."""
    assert hygie.runtime.auth is not None
    client, _ = hygie.call(
        hygie.runtime.auth.clients.register(
            name=APP_NAME,
            scope=APP_SCOPE,
            redirect_uris=[f"{smart_app}/ehr.html"],
            client_id=APP_ID,
            launch="ehr",
            launch_url=f"{smart_app}/ehr-launch.html",
            audience=["professional"],
            description="Courbes de poids et de tension du patient, alertes de suivi.",
        )
    )
    return client.client_id


def sign_in_pro(page: Any, hygie: LiveHygie, people: People, path: str) -> None:
    page.goto(f"{hygie.base}{path}")
    pro = people.professional
    fill_sign_in(page, pro.login, pro.password, pro.totp_secret)
    page.wait_for_url(f"{hygie.base}{path}")


def test_a_professional_launches_an_app_in_the_patients_context(
    page: Any, hygie: LiveHygie, smart_app: str, bsp_app: str, people: People, shots: Path
) -> None:
    durand, martin = hygie.patients["durand"], hygie.patients["martin"]
    sign_in_pro(page, hygie, people, "/bsp/applications")
    expect(page.locator("#catalogue")).to_contain_text(APP_NAME)
    expect(page.locator("#catalogue")).to_contain_text("Lire : mesures et résultats du patient")
    expect(page.locator("#catalogue")).to_contain_text("Lire : identité du patient")
    # the store's catalogue and its filters above; the operator's own apps apart
    expect(page.locator("#prise-en-charge")).to_contain_text("Prescriptible")
    expect(page.locator("#titre-catalogue")).to_have_text("Applications de l’établissement / de l’opérateur")
    assert_accessible(page, "apps catalogue")
    page.screenshot(path=str(shots / "bsp-applications.png"), full_page=True)

    # from now on, every page the browser shows is recorded: no sign-in page may appear again
    seen: list[str] = []
    page.on("framenavigated", lambda frame: seen.append(frame.url) if frame == page.main_frame else None)

    page.goto(f"{hygie.base}/bsp/patients/{durand}")
    page.locator("#bandeau-patient").get_by_role("link", name="Applications").click()
    page.wait_for_url(f"{hygie.base}/bsp/patients/{durand}/applications")
    expect(page.locator("#bandeau-patient-nom")).to_have_text("Léa DURAND")
    expect(page.locator("#applications-patient")).to_contain_text(APP_NAME)
    assert_accessible(page, "apps for a patient")
    page.screenshot(path=str(shots / "bsp-applications-patient.png"), full_page=True)

    page.get_by_role("button", name="Ouvrir pour ce patient").click()
    # the app redirects to /oauth/authorize: the portal session signs the professional in, and
    # the consent screen names the app and the patient
    page.wait_for_selector(f"h1:has-text('Autoriser {APP_NAME}')")
    assert "DURAND Léa" in page.locator("main").inner_text()
    expect(page.locator("main")).to_contain_text("« Applications » de vos services professionnels")
    assert_accessible(page, "consent (EHR launch from the BSP)")
    page.screenshot(path=str(shots / "bsp-applications-autorisation.png"), full_page=True)
    page.locator("button[name=decision][value=accepter]").click()

    page.wait_for_url(f"{smart_app}/ehr.html*")
    page.wait_for_selector("body[data-status=ready], body[data-status=error]")
    assert page.locator("body").get_attribute("data-status") == "ready", page.locator("#error").inner_text()
    assert page.locator("#patient-id").inner_text() == durand
    assert page.locator("#patient-name").inner_text() == "Léa DURAND"
    assert page.locator("#observations").inner_text() == "2"
    assert page.locator("#documents").inner_text() == "refusé 403"  # not in the app's scopes
    assert page.locator("#fhir-user").inner_text() == f"Practitioner/{hygie.practitioner}"
    assert set(page.locator("#scope").inner_text().split()) == set(APP_SCOPE.split())
    assert any("/oauth/authorize" in url for url in seen), seen  # the app did ask Hygie
    assert not [url for url in seen if "/connexion" in url], seen

    # another patient, through the app's own client: not even her existence shows
    other = page.evaluate(
        """(id) => window.smartClient.request("Patient/" + id)
            .then(() => "lu", (e) => String(e.status || e.statusCode))""",
        martin,
    )
    assert other == "404"

    # the same token in a plain HTTP client: only the launch patient, only the app's scopes
    token = page.evaluate("window.smartTokenResponse")
    assert token["patient"] == durand
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    with httpx.Client(base_url=hygie.fhir, headers=bearer) as http:
        assert http.get(f"Patient/{durand}").status_code == 200
        assert http.get(f"Patient/{martin}").status_code == 404
        mine = http.get("Observation", params={"patient": durand}).json()
        assert len(mine["entry"]) == 2
        others = http.get("Observation", params={"patient": martin}).json()
        assert others.get("entry", []) == []
        everyone = http.get("Patient").json()
        assert [e["resource"]["id"] for e in everyone["entry"]] == [durand]
        assert http.get("DocumentReference", params={"patient": durand}).status_code == 403
        assert http.get("Condition", params={"patient": durand}).status_code == 403
        write = http.post(
            "Observation",
            json={"resourceType": "Observation", "status": "final", "code": {"text": "Poids"}},
            headers={"Content-Type": "application/fhir+json"},
        )
        assert write.status_code == 403  # .rs: read and search only

    # the authorisation is listed in the portal, and withdrawing it stops the token at once
    page.goto(f"{hygie.base}/bsp/applications")
    row = page.locator("#table-autorisations tbody tr", has_text=APP_NAME)
    expect(row).to_contain_text("Léa DURAND")
    assert_accessible(page, "apps catalogue with an authorisation")
    row.get_by_role("button", name="Retirer").click()
    expect(page.locator(".fr-alert--success")).to_contain_text("Autorisation retirée")
    expect(page.locator("#table-autorisations")).to_have_count(0)
    with httpx.Client(base_url=hygie.fhir, headers=bearer) as http:
        assert http.get(f"Patient/{durand}").status_code == 401


def test_no_app_opens_on_a_record_that_is_not_open(
    page: Any, hygie: LiveHygie, bsp_app: str, people: People
) -> None:
    martin = hygie.patients["martin"]
    sign_in_pro(page, hygie, people, "/bsp/applications")
    response = page.goto(f"{hygie.base}/bsp/patients/{martin}/applications")
    assert response is not None and response.status == 404
    assert "Claire" not in page.locator("main").inner_text()
    assert_accessible(page, "apps for a record that is not open")


def _seed_activity(hygie: LiveHygie, when: datetime) -> None:
    """What Dr Bernard did at ``when``: a document, a message each way, a prescription of two
    lines, a renewal request answered; and one renewal request still waiting."""
    durand = hygie.patients["durand"]
    me = f"Practitioner/{hygie.practitioner}"
    stamp = when.astimezone(PARIS).isoformat(timespec="seconds")
    seed_professional_document(hygie, durand, "Compte rendu", day=when.astimezone(PARIS).date().isoformat())
    patient = {"reference": f"Patient/{durand}"}
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Communication",
            "status": "completed",
            "subject": patient,
            "sender": {"reference": me},
            "recipient": [patient],
            "sent": stamp,
            "payload": [{"contentString": "Vos résultats sont normaux."}],
        },
        {
            "resourceType": "Communication",
            "status": "completed",
            "subject": patient,
            "sender": patient,
            "recipient": [{"reference": me}],
            "sent": stamp,
            "payload": [{"contentString": "Merci docteur."}],
        },
        *(
            {
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "subject": patient,
                "requester": {"reference": me},
                "authoredOn": stamp,
                "medicationCodeableConcept": {"text": medicine},
            }
            for medicine in ("Paracétamol 1 g", "Amoxicilline 1 g")
        ),
        *(
            {
                "resourceType": "Task",
                "status": status,
                "intent": "order",
                "code": {"coding": [RENEWAL_CODE]},
                "for": patient,
                "owner": {"reference": me},
                "requester": patient,
                "authoredOn": stamp,
                "lastModified": stamp,
            }
            for status in ("completed", "requested")
        ),
    ]
    for resource in resources:
        hygie.call(create_resource(hygie.runtime, resource))


def test_the_practice_view_counts_what_i_did(
    page: Any, hygie: LiveHygie, people: People, shots: Path
) -> None:
    now = datetime.now(UTC)
    earlier = (now.astimezone(PARIS).replace(day=15) - timedelta(days=90)).astimezone(UTC)
    _seed_activity(hygie, now - timedelta(minutes=1))
    _seed_activity(hygie, earlier)
    sign_in_pro(page, hygie, people, "/bsp/activite")
    expect(page.locator("h1")).to_have_text("Mon activité")
    expect(page.locator("#nombre-patients")).to_have_text("1 patient")  # Léa DURAND only
    expect(page.locator("#relation-equipe")).to_contain_text("1 patient")
    expect(page.locator("#relation-traitant")).to_contain_text("0 patient")
    expect(page.locator("#nombre-renouvellements")).to_have_text("2 demandes de renouvellement")

    months = last_months(now)
    for when in (now - timedelta(minutes=1), earlier):
        label = next(m.label for m in months if m.start <= when < m.end)
        row = page.locator("#table-activite tbody tr", has=page.locator("th", has_text=label))
        # documents, sent, received, prescription lines, renewals answered
        expect(row.locator("td")).to_have_text(["1", "1", "1", "2", "1"])
    expect(page.locator("#table-activite tbody tr")).to_have_count(12)
    expect(page.locator("#table-activite tfoot td")).to_have_text(["2", "2", "2", "4", "2"])
    alt = page.locator("#table-activite").locator("xpath=preceding::img[1]").get_attribute("alt") or ""
    assert "documents déposés : 2" in alt
    assert "lignes de prescription : 4" in alt
    assert_accessible(page, "practice view")
    page.screenshot(path=str(shots / "bsp-activite.png"), full_page=True)
