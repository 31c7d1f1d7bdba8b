"""ENS "Qui voit mon dossier" in a browser: who can see the record, the access history and its
disputes, shares by code and QR code, blocking a professional, the emergency-access choice and
connected apps — each change checked through the FHIR API as the professional or the app.

Every page state is checked with axe-core (``tests/browser.py``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from ens_seed import deny_consent

from bearer_tokens import bearer
from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import create_resource, new_citizen

LiveHygie = Citizen = Any
PORTAL = "hygie-portal"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def practitioner(hygie: LiveHygie, family: str, given: str, rpps: str) -> str:
    return str(
        hygie.call(
            create_resource(
                hygie.runtime,
                {
                    "resourceType": "Practitioner",
                    "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.1", "value": rpps}],
                    "name": [{"family": family, "given": [given], "prefix": ["Dr"]}],
                    "qualification": [
                        {
                            "code": {
                                "coding": [
                                    {
                                        "system": "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante",
                                        "code": "10",
                                    }
                                ]
                            }
                        }
                    ],
                },
            )
        )
    )


def care_team(hygie: LiveHygie, patient_id: str, *members: str) -> None:
    hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "CareTeam",
                "status": "active",
                "name": "Suivi cardiologique",
                "subject": {"reference": f"Patient/{patient_id}"},
                "participant": [{"member": {"reference": f"Practitioner/{m}"}} for m in members],
            },
        )
    )


def as_pro(hygie: LiveHygie, practitioner_id: str) -> dict[str, str]:
    return dict(
        hygie.call(
            bearer(
                hygie.runtime,
                kind="professional",
                scope="openid",
                fhir_user=f"Practitioner/{practitioner_id}",
                client_id=PORTAL,
            )
        )
    )


def pro_reads(hygie: LiveHygie, practitioner_id: str, patient_id: str) -> int:
    response = httpx.get(f"{hygie.fhir}/Patient/{patient_id}", headers=as_pro(hygie, practitioner_id))
    return response.status_code


def connect_app(hygie: LiveHygie, citizen: Citizen) -> str:
    """A real SMART app grant for the citizen (authorisation code + PKCE): its access token."""
    from hygie.auth.server import Subject

    auth = hygie.runtime.auth
    redirect = "http://127.0.0.1:9/retour"
    client, _ = hygie.call(
        auth.clients.register(
            name="Carnet Santé Plus",
            scope="openid fhirUser patient/*.rs offline_access",
            redirect_uris=[redirect],
        )
    )
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    request = hygie.call(
        auth.validate_authorize(
            {
                "response_type": "code",
                "client_id": client.client_id,
                "redirect_uri": redirect,
                "scope": "openid fhirUser patient/Observation.rs patient/Patient.r offline_access",
                "state": "s",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "aud": hygie.fhir,
            }
        )
    )
    subject = Subject(citizen.account_id, "citizen", f"Patient/{citizen.patient_id}", citizen.patient_id)
    location = hygie.call(auth.issue_code(request, subject))
    code = parse_qs(urlsplit(location).query)["code"][0]
    tokens = hygie.call(
        auth.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect,
                "code_verifier": verifier,
                "client_id": client.client_id,
            },
            None,
        )
    )
    return str(tokens["access_token"])


def sign_in_at(page: Any, hygie: LiveHygie, citizen: Citizen, path: str) -> None:
    page.goto(f"{hygie.base}{path}")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_url(f"{hygie.base}{path}")


def test_the_person_sees_and_controls_who_sees_their_record(
    page: Any, hygie: LiveHygie, citizen: Citizen, shots: Path
) -> None:
    cardio = practitioner(hygie, "COEUR", "Anne", "810000000011")
    care_team(hygie, citizen.patient_id, hygie.practitioner, cardio)
    # a fresh space: nobody but the care team, no history yet
    sign_in_at(page, hygie, citizen, "/ens/controles")
    assert page.locator("h1").inner_text() == "Qui voit mon dossier"
    table = page.locator("#table-acces").inner_text()
    assert "Paul BERNARD" in table and "Anne COEUR" in table and "Équipe de soins" in table
    assert "Aucune application" in page.locator("main").inner_text()
    assert_accessible(page, "controls (empty history)")

    # the cardiologist reads the record through the FHIR API: the person sees it, with its purpose
    assert pro_reads(hygie, cardio, citizen.patient_id) == 200
    page.goto(f"{hygie.base}/ens/controles")
    assert "Anne COEUR a consulté votre identité" in page.locator("#derniers-acces").inner_text()
    assert_accessible(page, "controls")
    page.screenshot(path=str(shots / "ens-controles.png"), full_page=True)

    page.goto(f"{hygie.base}/ens/controles/historique")
    rows = page.locator("#table-historique tbody tr")
    assert rows.count() >= 1
    first = rows.first.inner_text()
    assert "Anne COEUR" in first and "Médecin" in first and "Pour vos soins" in first
    assert_accessible(page, "access history")
    page.screenshot(path=str(shots / "ens-historique.png"), full_page=True)
    # filters: everyone (the person's own visits too), a period
    page.select_option("#qui", "tous")
    page.select_option("#periode", "7")
    page.locator("#filtres button[type=submit]").click()
    page.wait_for_url("**/historique?periode=7&qui=tous")
    assert "Vous" in page.locator("#table-historique").inner_text()
    assert_accessible(page, "access history, filtered")
    # the platform's own processes (here the care team written by an operator) are left out of
    # the default view, and shown, named as such, on demand
    assert "Hygie : tests/e2e" in page.locator("#table-historique").inner_text()
    page.goto(f"{hygie.base}/ens/controles/historique")
    assert "Hygie :" not in page.locator("#table-historique").inner_text()
    page.select_option("#qui", "plateforme")
    page.locator("#filtres button[type=submit]").click()
    page.wait_for_url("**/historique?periode=tout&qui=plateforme")
    platform = page.locator("#table-historique").inner_text()
    assert "Hygie : tests/e2e" in platform and "Traitement technique de la plateforme" in platform
    assert "Anne COEUR" in platform and "Vous" not in platform
    assert_accessible(page, "access history with the platform's processes")

    # "je ne reconnais pas cet accès": a reason is needed, then the case is opened and shown
    page.goto(f"{hygie.base}/ens/controles/historique")
    page.locator("#table-historique tbody tr").first.get_by_role("link").click()
    page.wait_for_selector("#detail-acces")
    assert_accessible(page, "one access")
    page.get_by_role("button", name="Signaler cet accès").click()
    page.wait_for_selector(".fr-fieldset--error")
    assert "Choisissez la raison" in page.locator("main").inner_text()
    assert_accessible(page, "dispute with errors")
    page.locator("label[for=motif-inconnu]").click()
    page.fill("#precisions", "Je n'ai jamais vu ce médecin.")
    page.get_by_role("button", name="Signaler cet accès").click()
    page.wait_for_selector("#etat-signalement")
    assert "Signalement envoyé" in page.locator("#etat-signalement").inner_text()
    assert "délégué à la protection des données" in page.locator(".fr-alert").first.inner_text()
    assert_accessible(page, "disputed access")
    disputes = hygie.call(hygie.runtime.audit.list_disputes(patient=citizen.patient_id))
    assert len(disputes) == 1 and disputes[0].status == "open"
    assert "jamais vu ce médecin" in disputes[0].comment
    page.goto(f"{hygie.base}/ens/controles/historique")
    assert "signalement envoyé" in page.locator("#table-historique").inner_text().lower()


def test_a_share_by_code_and_qr_code_is_redeemed_then_revoked(
    page: Any, hygie: LiveHygie, citizen: Citizen, shots: Path
) -> None:
    stranger = practitioner(hygie, "PASSANT", "Luc", "810000000022")
    assert pro_reads(hygie, stranger, citizen.patient_id) == 404
    sign_in_at(page, hygie, citizen, "/ens/controles/partage")
    assert_accessible(page, "share form")
    page.get_by_role("button", name="Créer le code de partage").click()
    page.wait_for_selector("#duree-erreur")
    assert_accessible(page, "share form with errors")
    page.select_option("#duree", "7")
    page.locator("label[for=classe-10]").click()
    page.get_by_role("button", name="Créer le code de partage").click()
    page.wait_for_url(f"{hygie.base}/ens/controles/partage/code")
    code = page.locator("#code-partage").inner_text().replace(" ", "")
    assert len(code) == 8 and code.isalnum()
    qr = page.locator("#qr-partage")
    assert qr.get_attribute("src").startswith("data:image/svg+xml")
    assert code[:4] in (qr.get_attribute("alt") or "")
    assert "comptes rendus" in page.locator("main").inner_text()
    assert_accessible(page, "share code")
    page.screenshot(path=str(shots / "ens-partage.png"), full_page=True)

    # the professional redeems the code: the record opens to them, the person sees the grant
    redeemed = httpx.post(
        f"{hygie.fhir}/$redeem-share",
        json={"resourceType": "Parameters", "parameter": [{"name": "code", "valueString": code}]},
        headers=as_pro(hygie, stranger),
    )
    assert redeemed.status_code == 201, redeemed.text
    assert pro_reads(hygie, stranger, citizen.patient_id) == 200
    page.goto(f"{hygie.base}/ens/controles")
    row = page.locator("#table-acces tr", has_text="Luc PASSANT")
    assert "Partage temporaire" in row.inner_text() and "comptes rendus" in row.inner_text()
    row.get_by_role("link").click()
    page.wait_for_selector("#detail-regle")
    assert_accessible(page, "one grant")
    page.get_by_role("button", name="Retirer cet accès").click()
    page.wait_for_url(f"{hygie.base}/ens/controles")
    assert page.locator("#table-acces tr", has_text="Luc PASSANT").count() == 0
    assert "L’autorisation est retirée" in page.locator(".fr-alert").first.inner_text()
    assert pro_reads(hygie, stranger, citizen.patient_id) == 404


def test_block_and_unblock_a_professional_and_choose_emergency_access(
    page: Any, hygie: LiveHygie, citizen: Citizen
) -> None:
    blocked = practitioner(hygie, "ECARTE", "Jean", "810000000033")
    care_team(hygie, citizen.patient_id, blocked)
    assert pro_reads(hygie, blocked, citizen.patient_id) == 200
    sign_in_at(page, hygie, citizen, "/ens/controles/bloquer")
    assert_accessible(page, "block search")
    page.fill("#nom", "E")
    page.get_by_role("button", name="Chercher dans l’annuaire").click()
    page.wait_for_selector("#nom-erreur")
    assert page.locator("#nom").input_value() == "E"
    assert_accessible(page, "block search with errors")
    page.fill("#nom", "Ecarte")
    page.get_by_role("button", name="Chercher dans l’annuaire").click()
    page.wait_for_selector("#resultats")
    assert_accessible(page, "block search results")
    page.locator("#resultats li", has_text="Jean ECARTE").get_by_role("button").click()
    page.wait_for_url(f"{hygie.base}/ens/controles")
    assert "Jean ECARTE" in page.locator("#liste-bloques").inner_text()
    assert pro_reads(hygie, blocked, citizen.patient_id) == 404  # a block wins over the care team
    page.locator("#liste-bloques").get_by_role("button", name="Débloquer").click()
    page.wait_for_url(f"{hygie.base}/ens/controles")
    assert page.locator("#liste-bloques").count() == 0
    assert pro_reads(hygie, blocked, citizen.patient_id) == 200

    # the emergency choice: refuse, then allow again
    assert "autorisé" in page.locator("#etat-urgence").inner_text().lower()
    page.get_by_role("button", name="Refuser l’accès en cas d’urgence").click()
    page.wait_for_url(f"{hygie.base}/ens/controles")
    assert "refusé" in page.locator("#etat-urgence").inner_text().lower()
    assert_accessible(page, "controls, emergency refused")
    er = practitioner(hygie, "URGENCES", "Paule", "810000000044")
    opened = httpx.post(
        f"{hygie.fhir}/Patient/{citizen.patient_id}/$break-glass",
        json={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "reason", "valueString": "PATIENT_INCONSCIENT"},
                {"name": "justification", "valueString": "Patiente inconsciente aux urgences"},
            ],
        },
        headers=as_pro(hygie, er),
    )
    assert opened.status_code == 422 and "refused-by-patient" in opened.text
    page.get_by_role("button", name="Autoriser l’accès en cas d’urgence").click()
    page.wait_for_url(f"{hygie.base}/ens/controles")
    assert "autorisé" in page.locator("#etat-urgence").inner_text().lower()


def test_a_connected_app_is_listed_in_plain_words_and_revoked_at_once(
    page: Any, hygie: LiveHygie, citizen: Citizen
) -> None:
    token = connect_app(hygie, citizen)
    api = f"{hygie.fhir}/Patient/{citizen.patient_id}"
    assert httpx.get(api, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    sign_in_at(page, hygie, citizen, "/ens/controles")
    apps = page.locator("#table-applications").inner_text()
    assert "Carnet Santé Plus" in apps
    assert "Lire : mesures et résultats du patient" in apps
    assert "Garder l’accès quand vous n’utilisez pas l’application" in apps
    assert_accessible(page, "controls with an app")
    page.locator("#table-applications").get_by_role("button", name="Déconnecter").click()
    page.wait_for_url(f"{hygie.base}/ens/controles")
    assert "Aucune application" in page.locator("main").inner_text()
    assert httpx.get(api, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_another_persons_ids_give_nothing(page: Any, hygie: LiveHygie, citizen: Citizen) -> None:
    other = new_citizen(hygie, family="AUTRE", given="Zoé")
    consent = deny_consent(
        hygie, other.patient_id, f"Practitioner/{hygie.practitioner}", "professionnel bloqué"
    )
    assert pro_reads(hygie, hygie.practitioner, other.patient_id) == 404
    sign_in_at(page, hygie, citizen, "/ens/controles")
    for path in (
        f"/ens/controles/historique/{other.patient_id}.1",
        f"/ens/controles/regles/{consent}~racine",
    ):
        response = page.goto(f"{hygie.base}{path}")
        assert response is not None and response.status == 404, path
        assert "Zoé" not in page.locator("main").inner_text()
    assert_accessible(page, "not found")
    # a POST on another person's rule changes nothing
    page.goto(f"{hygie.base}/ens/controles")
    csrf = page.locator("input[name=csrf]").first.input_value()
    response = page.request.post(
        f"{hygie.base}/ens/controles/regles/{consent}~racine/retirer",
        form={"csrf": csrf, "jeton": secrets.token_urlsafe(8)},
    )
    assert response.status == 404
    assert pro_reads(hygie, hygie.practitioner, other.patient_id) == 404
