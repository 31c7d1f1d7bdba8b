"""The official SMART JavaScript client (npm ``fhirclient``) in headless Chromium against Hygie.

A tiny static app (``smart_app/``) calls ``FHIR.oauth2.authorize`` and ``FHIR.oauth2.ready``;
the person signs in on Hygie's own pages (password, TOTP code), picks a patient when the app
asks for one (standalone launch), accepts the consent screen, and the app reads the patient
and searches their observations with the token it obtained.

Every Hygie page visited is checked with axe-core (WCAG 2.0/2.1 A and AA): zero violations.
The sign-in, consent and patient-choice pages are screenshotted for the user guide: into
``docs/guide/img/`` when ``HYGIE_GUIDE_SCREENSHOTS=1``, into the test's temporary folder
otherwise (a test run does not rewrite tracked files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pyotp
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from browser import assert_accessible, screenshots_dir
from hygie.auth.server import LaunchContext

# conftest.py holds the fixtures; its types are only named here (conftest modules are not imported)
LiveHygie = People = Person = Any
ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "hygie-e2e-smart-app"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where the guide's screenshots go (see ``tests/browser.py``)."""
    return screenshots_dir(tmp_path)


def sign_in(page: Any, hygie: LiveHygie, person: Person, shots: Path | None = None) -> None:
    """Hygie's sign-in page, then (professionals) the second-factor page."""
    page.wait_for_url(f"{hygie.base}/connexion?suite=*")
    assert page.locator("h1").inner_text() == "Se connecter"
    assert "Appli SMART de test" in page.locator("main").inner_text()
    assert_accessible(page, "sign-in")
    page.fill("#identifiant", person.login)
    page.fill("#mot-de-passe", person.password)
    if shots is not None:
        page.screenshot(path=str(shots / "connexion.png"), full_page=True)
    page.locator("main form button[type=submit]").click()
    if person.totp_secret is not None:
        page.wait_for_selector("#code")
        assert page.locator("h1").inner_text() == "Code de vérification"
        assert_accessible(page, "second-factor")
        page.fill("#code", pyotp.TOTP(person.totp_secret).now())
        page.locator("main form button[type=submit]").click()


def consent(page: Any, hygie: LiveHygie, *, patient_label: str, shots: Path | None = None) -> None:
    """The consent screen names the app and the patient; every scope is accepted."""
    page.wait_for_selector("h1:has-text('Autoriser Appli SMART de test')")
    assert patient_label in page.locator("main").inner_text()
    assert_accessible(page, "consent")
    if shots is not None:
        page.screenshot(path=str(shots / "consentement.png"), full_page=True)
    page.locator("button[name=decision][value=accepter]").click()


def app_results(page: Any, smart_app: str) -> dict[str, str]:
    """What the SMART app wrote into its page once ``FHIR.oauth2.ready()`` resolved."""
    # the app lands on index.html?code=…&state=…, and fhirclient then strips the query with
    # history.replaceState: wait for the page itself, not for the query to be seen
    page.wait_for_url(f"{smart_app}/index.html*")
    page.wait_for_selector("body[data-status=ready], body[data-status=error]")
    assert page.locator("body").get_attribute("data-status") == "ready", page.locator("#error").inner_text()
    return {
        key: page.locator(f"#{key}").inner_text()
        for key in ("patient-id", "patient-name", "patient-birthdate", "observations", "scope", "fhir-user")
    }


def check_token(hygie: LiveHygie, token: dict[str, Any], *, patient: str, fhir_user: str) -> dict[str, Any]:
    """The token response the app received, its ID token (signature checked with Hygie's JWKS),
    and the access token used by a plain HTTP client: FHIR read and introspection."""
    assert token["token_type"] == "Bearer"
    assert token["patient"] == patient
    assert {"openid", "fhirUser", "patient/*.rs"} <= set(token["scope"].split())
    with httpx.Client(base_url=hygie.base) as http:
        keys = KeySet.import_key_set(http.get("/oauth/jwks").json())
        id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256", "RS384", "ES256", "ES384"])
        claims = id_token.claims
        assert claims["iss"] == hygie.base
        assert claims["aud"] == CLIENT_ID
        assert claims["fhirUser"] == f"{hygie.fhir}/{fhir_user}"
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        read = http.get(f"/fhir/Patient/{patient}", headers=bearer)
        assert read.status_code == 200
        assert read.json()["id"] == patient
        info = http.post(
            "/oauth/introspect", data={"token": token["access_token"], "client_id": CLIENT_ID}
        ).json()
        assert info["active"] is True
        assert info["patient"] == patient
        assert info["fhirUser"] == fhir_user
    return claims


def test_ehr_launch_by_a_professional(
    page: Any, hygie: LiveHygie, smart_app: str, people: People, shots: Path
) -> None:
    assert hygie.runtime.auth is not None
    durand = hygie.patients["durand"]
    launch = hygie.call(
        hygie.runtime.auth.create_launch(
            LaunchContext(patient=durand), account_id=people.professional.account_id
        )
    )
    page.goto(f"{smart_app}/launch.html?{urlencode({'iss': hygie.fhir, 'launch': launch})}")
    sign_in(page, hygie, people.professional, shots)
    consent(page, hygie, patient_label="DURAND Léa", shots=shots)
    shown = app_results(page, smart_app)
    assert shown["patient-id"] == durand
    assert shown["patient-name"] == "Léa DURAND"
    assert shown["patient-birthdate"] == "1992-07-14"
    assert shown["observations"] == "2"
    assert page.locator("#first-observation").inner_text() == "Poids = 61.5 kg"
    assert "launch" in shown["scope"].split()
    assert shown["fhir-user"] == f"Practitioner/{hygie.practitioner}"
    token = page.evaluate("window.smartTokenResponse")
    claims = check_token(hygie, token, patient=durand, fhir_user=f"Practitioner/{hygie.practitioner}")
    assert claims["amr"] == ["pwd", "otp"]


def test_standalone_launch_by_a_professional_with_patient_choice(
    page: Any, hygie: LiveHygie, smart_app: str, people: People, shots: Path
) -> None:
    durand = hygie.patients["durand"]
    page.goto(f"{smart_app}/launch.html?{urlencode({'iss': hygie.fhir})}")
    sign_in(page, hygie, people.professional)
    page.wait_for_selector("h1:has-text('Choisir le patient')")
    assert_accessible(page, "patient-choice (search)")
    page.fill("#q", "Durand")
    page.locator("#recherche-patient button").click()
    page.wait_for_selector("input[name=patient]")
    assert page.locator("input[name=patient]").count() == 1
    assert page.locator("input[name=patient]").get_attribute("value") == durand
    assert "DURAND Léa, né(e) le 14/07/1992" in page.locator("main").inner_text()
    assert_accessible(page, "patient-choice (results)")
    page.screenshot(path=str(shots / "choix-patient.png"), full_page=True)
    page.locator("main form[method=post] button[type=submit]").click()
    consent(page, hygie, patient_label="DURAND Léa")
    shown = app_results(page, smart_app)
    assert shown["patient-id"] == durand
    assert shown["patient-name"] == "Léa DURAND"
    assert shown["observations"] == "2"
    assert "launch/patient" in shown["scope"].split()
    token = page.evaluate("window.smartTokenResponse")
    check_token(hygie, token, patient=durand, fhir_user=f"Practitioner/{hygie.practitioner}")


def test_standalone_launch_by_a_citizen_opens_her_own_record(
    page: Any, hygie: LiveHygie, smart_app: str, people: People
) -> None:
    martin = hygie.patients["martin"]
    page.goto(f"{smart_app}/launch.html?{urlencode({'iss': hygie.fhir})}")
    sign_in(page, hygie, people.citizen)
    consent(page, hygie, patient_label="MARTIN Claire")  # no patient choice for a citizen
    shown = app_results(page, smart_app)
    assert shown["patient-id"] == martin
    assert shown["patient-name"] == "Claire MARTIN"
    assert shown["patient-birthdate"] == "1985-03-14"
    assert shown["observations"] == "0"
    assert shown["fhir-user"] == f"Patient/{martin}"
    token = page.evaluate("window.smartTokenResponse")
    claims = check_token(hygie, token, patient=martin, fhir_user=f"Patient/{martin}")
    assert claims["amr"] == ["pwd"]


def test_error_page_is_accessible(page: Any, hygie: LiveHygie) -> None:
    response = page.goto(f"{hygie.base}/oauth/authorize?{urlencode({'client_id': 'inconnu'})}")
    assert response is not None
    assert response.status == 400
    assert page.locator("h1").inner_text() == "Demande refusée"
    assert_accessible(page, "error")
