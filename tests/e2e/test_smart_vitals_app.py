"""A small real SMART app writes into the person's record, with its provenance (CNNum
recommendation 12), and stops at once when she disconnects it.

The app « Mes pesées » (``smart_app/mesures-launch.html``, ``mesures.html``, ``mesures.js``) uses
the official ``fhirclient`` JS build. A citizen opens it (standalone launch), signs in on Hygie's
page, accepts the consent screen; the app reads her name and her vital signs (granted), is
refused her allergies and her documents (not in its scopes), and sends a series of three body
weights in one transaction. Her ENS « Mesures » pages show the three values with the app named
as their source (``meta.source`` set by the server). She disconnects the app from « Qui voit mon
dossier » and the app's next read is refused (401).

Every Hygie page visited is checked with axe-core.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from browser import assert_accessible, fill_sign_in
from conftest import People, create_resource
from hygie.auth.server import LaunchContext
from hygie.domain.access import Caller
from hygie.domain.ens.vitals import PARIS, VITAL_SIGNS_PROFILE
from hygie.web.portal.door import Door

LiveHygie = Citizen = Any

APP_ID = "hygie-e2e-mesures"
APP_NAME = "Mes pesées"
APP_SCOPE = "launch/patient openid fhirUser patient/Patient.rs patient/Observation.crs"
APP_SOURCE = f"urn:hygie:app:{APP_ID}"
EHR_SCOPE = "launch openid fhirUser patient/Patient.rs patient/Observation.crs"


@pytest.fixture(scope="module")
def vitals_app(hygie: LiveHygie, smart_app: str) -> str:
    """The app, registered for this module: a public client for citizens' standalone launches."""
    assert hygie.runtime.auth is not None
    client, _ = hygie.call(
        hygie.runtime.auth.clients.register(
            name=APP_NAME,
            scope=APP_SCOPE,
            redirect_uris=[f"{smart_app}/mesures.html"],
            client_id=APP_ID,
            launch="standalone",
        )
    )
    return client.client_id


@pytest.fixture(scope="module")
def vitals_app_ehr(hygie: LiveHygie, smart_app: str) -> str:
    """The same app registered for EHR launches (a portal opens it with ``iss`` and ``launch``)."""
    assert hygie.runtime.auth is not None
    client, _ = hygie.call(
        hygie.runtime.auth.clients.register(
            name=APP_NAME,
            scope=EHR_SCOPE,
            redirect_uris=[f"{smart_app}/mesures.html"],
            client_id=f"{APP_ID}-ehr",
            launch="ehr",
        )
    )
    return client.client_id


def _weight(patient_id: str, kg: float, when: datetime) -> dict[str, Any]:
    """A weight the person entered earlier in the portal (her own, not the app's)."""
    return {
        "resourceType": "Observation",
        "meta": {"profile": [VITAL_SIGNS_PROFILE]},
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
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}], "text": "Poids"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "performer": [{"reference": f"Patient/{patient_id}"}],
        "effectiveDateTime": when.isoformat(),
        "valueQuantity": {"value": 73.0, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
    }


def _weights(hygie: LiveHygie, patient_id: str) -> list[dict[str, Any]]:
    return hygie.call(
        Door(hygie.runtime.service).search(
            Caller.operator("tests"),
            "Observation",
            [("patient", patient_id), ("code", "http://loinc.org|29463-7"), ("_sort", "date")],
        )
    )


def test_an_app_reads_what_it_was_granted_writes_a_series_shown_with_its_name_then_is_disconnected(
    page: Any, hygie: LiveHygie, smart_app: str, vitals_app: str, citizen: Citizen
) -> None:
    hygie.call(
        create_resource(
            hygie.runtime, _weight(citizen.patient_id, 73.0, datetime.now(UTC) - timedelta(days=10))
        )
    )
    query = urlencode({"iss": hygie.fhir, "client_id": vitals_app, "scope": APP_SCOPE})
    page.goto(f"{smart_app}/mesures-launch.html?{query}")

    # Hygie's sign-in page, then its consent screen naming the app and the person
    page.wait_for_url(f"{hygie.base}/connexion?suite=*")
    assert APP_NAME in page.locator("main").inner_text()
    assert_accessible(page, "sign-in (app)")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_selector(f"h1:has-text('Autoriser {APP_NAME}')")
    assert "DUPONT Claire" in page.locator("main").inner_text()
    assert_accessible(page, "consent (app)")
    page.locator("button[name=decision][value=accepter]").click()

    # the app: what it was granted, and nothing else
    page.wait_for_url(f"{smart_app}/mesures.html*")
    page.wait_for_selector("body[data-status=ready], body[data-status=error]")
    assert page.locator("body").get_attribute("data-status") == "ready", page.locator("#erreur").inner_text()
    expect(page.locator("#patient-nom")).to_have_text("Claire DUPONT")
    expect(page.locator("#lecture-observations")).to_have_text("autorisé (1)")
    expect(page.locator("#lecture-allergies")).to_have_text("refusé (403)")
    expect(page.locator("#lecture-documents")).to_have_text("refusé (403)")
    assert set(page.locator("#portees").inner_text().split()) == set(APP_SCOPE.split())

    # the series, in one transaction; stored with the app's provenance, whatever the app claimed
    page.get_by_role("button", name="Envoyer la série").click()
    expect(page.locator("#ecriture")).to_have_text("série envoyée (3)")
    stored = _weights(hygie, citizen.patient_id)
    assert [o["valueQuantity"]["value"] for o in stored] == [73.0, 72.4, 72.1, 71.8]
    assert [o["meta"].get("source") for o in stored] == [None, APP_SOURCE, APP_SOURCE, APP_SOURCE]
    assert {o["performer"][0]["reference"] for o in stored} == {f"Patient/{citizen.patient_id}"}
    page.get_by_role("button", name="Relire").click()
    expect(page.locator("#relecture")).to_have_text("autorisé (4)")

    # her ENS, in another tab of the same browser: signing in for the app opened her Hygie
    # session, so no second sign-in
    ens = page.context.new_page()
    ens.goto(f"{hygie.base}/ens/mesures")
    ens.wait_for_url(f"{hygie.base}/ens/mesures")
    tile = ens.locator(".fr-card", has_text="Poids")
    sent = datetime.fromisoformat(stored[-1]["effectiveDateTime"].replace("Z", "+00:00"))
    day = sent.astimezone(PARIS).strftime("%d/%m/%Y")
    expect(tile).to_contain_text(f"Dernière valeur : 71,8 kg, le {day} (application « {APP_NAME} »)")
    assert_accessible(ens, "measures (a value sent by an app)")
    tile.get_by_role("link", name="Poids").click()
    ens.wait_for_url(f"{hygie.base}/ens/mesures/poids")
    rows = ens.locator("#tableau-valeurs tbody tr")
    expect(rows).to_have_count(4)
    for i, value in enumerate(("71,8 kg", "72,1 kg", "72,4 kg")):  # newest first
        expect(rows.nth(i)).to_contain_text(value)
        expect(rows.nth(i)).to_contain_text(f"application « {APP_NAME} »")
        expect(rows.nth(i)).to_contain_text("automatique")
    expect(rows.nth(3)).to_contain_text("73 kg")
    expect(rows.nth(3)).to_contain_text("vous")
    assert_accessible(ens, "weight (a series sent by an app)")

    # she disconnects the app: its token stops at once
    ens.goto(f"{hygie.base}/ens/controles")
    apps = ens.locator("#table-applications")
    expect(apps).to_contain_text(APP_NAME)
    assert_accessible(ens, "controls (a connected app)")
    apps.get_by_role("button", name=f"Déconnecter {APP_NAME}").click()
    expect(ens.locator(".fr-alert--success")).to_contain_text("L’application est déconnectée")
    expect(ens.locator("#table-applications")).to_have_count(0)
    assert_accessible(ens, "controls (app disconnected)")

    page.bring_to_front()
    page.get_by_role("button", name="Relire").click()
    expect(page.locator("#relecture")).to_have_text("refusé (401)")
    assert len(_weights(hygie, citizen.patient_id)) == 4  # what it sent stays in her record


def test_the_same_app_in_an_ehr_launch_by_a_professional(
    page: Any, hygie: LiveHygie, smart_app: str, vitals_app_ehr: str, people: People
) -> None:
    """The launch page also serves an EHR launch (``iss`` and ``launch``): Dr BERNARD opens the app
    on Léa DURAND's record (his care team's); what it sends carries the app's provenance."""
    assert hygie.runtime.auth is not None
    durand = hygie.patients["durand"]
    launch = hygie.call(
        hygie.runtime.auth.create_launch(
            LaunchContext(patient=durand), account_id=people.professional.account_id
        )
    )
    query = urlencode({"iss": hygie.fhir, "launch": launch, "client_id": vitals_app_ehr, "scope": EHR_SCOPE})
    page.goto(f"{smart_app}/mesures-launch.html?{query}")
    pro = people.professional
    fill_sign_in(page, pro.login, pro.password, pro.totp_secret)
    page.wait_for_selector(f"h1:has-text('Autoriser {APP_NAME}')")
    assert "DURAND Léa" in page.locator("main").inner_text()
    page.locator("button[name=decision][value=accepter]").click()
    page.wait_for_url(f"{smart_app}/mesures.html*")
    page.wait_for_selector("body[data-status=ready], body[data-status=error]")
    assert page.locator("body").get_attribute("data-status") == "ready", page.locator("#erreur").inner_text()
    expect(page.locator("#patient-nom")).to_have_text("Léa DURAND")
    before = {o["id"] for o in _weights(hygie, durand)}
    expect(page.locator("#lecture-observations")).to_have_text(f"autorisé ({len(before)})")
    expect(page.locator("#lecture-allergies")).to_have_text("refusé (403)")
    expect(page.locator("#lecture-documents")).to_have_text("refusé (403)")
    page.get_by_role("button", name="Envoyer la série").click()
    expect(page.locator("#ecriture")).to_have_text("série envoyée (3)")
    sent = [o for o in _weights(hygie, durand) if o["id"] not in before]
    assert [o["meta"].get("source") for o in sent] == [f"urn:hygie:app:{vitals_app_ehr}"] * 3
