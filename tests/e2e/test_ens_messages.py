"""Messagerie: the citizen writes to their médecin traitant with a file, the GP answers through
the FHIR API, read receipts go both ways; nobody reaches another person's conversation.

Each page state is checked with axe-core (``tests/browser.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from ens_seed import gp_accepting_messages, pdf_bytes, pro_headers

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import PASSWORD, Citizen, LiveHygie, create_resource, new_citizen
from hygie.domain.access import Caller
from hygie.domain.ens.messaging import CATEGORY_SYSTEM
from hygie.web.portal.door import Door

_n = iter(range(1, 1000))


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def _gp_and_patient(hygie: LiveHygie) -> tuple[str, Citizen]:
    """A GP who accepts messages (through her role in a practice) and her new patient."""
    n = next(_n)
    gp = gp_accepting_messages(hygie)
    patient = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "Patient",
                "name": [{"use": "official", "family": "MOREAU", "given": ["Julie"]}],
                "gender": "female",
                "birthDate": "1979-05-02",
                "telecom": [
                    {"system": "email", "value": f"julie.moreau.{n}@example.fr"},
                    {"system": "phone", "value": "0612345678", "use": "mobile"},
                ],
                "generalPractitioner": [{"reference": f"Practitioner/{gp}"}],
            },
        )
    )
    accounts = hygie.runtime.accounts
    assert accounts is not None
    account, _ = hygie.call(
        accounts.create("citizen", f"julie.moreau.msg{n}@example.fr", PASSWORD, patient_id=patient)
    )
    return gp, Citizen(patient, account.login, PASSWORD, account.id)


def _api(hygie: LiveHygie, gp: str) -> httpx.Client:
    return httpx.Client(base_url=hygie.fhir, headers=pro_headers(hygie, gp), timeout=30)


def test_a_citizen_writes_to_their_gp_who_answers_and_both_see_the_receipts(
    page: Any, hygie: LiveHygie, shots: Path
) -> None:
    gp, julie = _gp_and_patient(hygie)
    page.goto(f"{hygie.base}/ens/messages")
    fill_sign_in(page, julie.login, julie.password)
    page.wait_for_url(f"{hygie.base}/ens/messages")
    assert "aucun message" in page.locator("main").inner_text()
    assert_accessible(page, "empty inbox")

    # an empty form: per-field errors, nothing sent
    page.get_by_role("link", name="Écrire un message").click()
    assert_accessible(page, "new message form")
    page.locator("#objet").fill("Résultats de prise de sang")
    page.get_by_role("button", name="Envoyer le message").click()
    assert page.locator("#destinataire-erreur").inner_text() == "Choisissez à qui écrire dans la liste."
    assert page.locator("#message-erreur").is_visible()
    assert page.locator("#objet").input_value() == "Résultats de prise de sang"  # kept
    assert_accessible(page, "new message form with errors")

    # a text file that pretends to be a PDF is refused, the text stays
    options = page.locator("#destinataire option").all_inner_texts()
    assert any("LEROY" in o and "médecin traitant" in o and "Cabinet du Port" in o for o in options)
    page.locator("#destinataire").select_option(f"Practitioner/{gp}")
    page.locator("#message").fill("Bonjour Docteur,\nvoici mes résultats.\nCordialement")
    page.locator("#piece").set_input_files(
        files=[{"name": "resultats.pdf", "mimeType": "application/pdf", "buffer": b"not a pdf at all"}]
    )
    page.get_by_role("button", name="Envoyer le message").click()
    assert "type de fichier" in page.locator("#piece-erreur").inner_text()
    assert page.locator("#message").input_value().startswith("Bonjour Docteur")
    assert_accessible(page, "new message form with a refused file")

    page.locator("#piece").set_input_files(
        files=[
            {
                "name": "resultats.pdf",
                "mimeType": "application/pdf",
                "buffer": pdf_bytes("Analyses de sang du 2 mars 2026"),
            }
        ]
    )
    page.get_by_role("button", name="Envoyer le message").click()
    page.wait_for_url(lambda url: "/ens/messages/" in url and "nouveau" not in url)
    root = page.url.rsplit("/", 1)[1]
    assert "Votre message a été envoyé" in page.locator("main").inner_text()
    assert page.locator(f"#message-{root}").get_by_text("Pas encore lu").is_visible()
    link = page.get_by_role("link", name="Pièce jointe : resultats.pdf")
    with page.expect_download() as download:
        link.click()
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF-")
    assert_accessible(page, "conversation")

    # the GP, through the API: reads the message and its attachment, acknowledges, answers
    with _api(hygie, gp) as api:
        found = api.get("Communication", params={"patient": f"Patient/{julie.patient_id}"}).json()
        messages = [e["resource"] for e in found.get("entry", [])]
        assert [m["id"] for m in messages] == [root]
        sent = messages[0]
        assert sent["sender"]["reference"] == f"Patient/{julie.patient_id}"
        assert "received" not in sent
        doc_ref = next(p["contentReference"]["reference"] for p in sent["payload"] if "contentReference" in p)
        document = api.get(doc_ref).json()
        binary = api.get(document["content"][0]["attachment"]["url"]).json()
        assert binary["contentType"] == "application/pdf"
        acknowledged = api.post(f"Communication/{root}/$mark-received")
        assert acknowledged.status_code == 200, acknowledged.text
        assert acknowledged.json()["received"]
        reply = api.post(
            "Communication",
            json={
                "resourceType": "Communication",
                "status": "completed",
                "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "message"}]}],
                "subject": {"reference": f"Patient/{julie.patient_id}"},
                "partOf": [{"reference": f"Communication/{root}"}],
                "inResponseTo": [{"reference": f"Communication/{root}"}],
                "topic": {"text": "Résultats de prise de sang"},
                "sent": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "sender": {"reference": f"Practitioner/{gp}"},
                "recipient": [{"reference": f"Patient/{julie.patient_id}"}],
                "payload": [{"contentString": "Vos résultats sont normaux. Bonne journée."}],
            },
            headers={"Content-Type": "application/fhir+json"},
        )
        assert reply.status_code == 201, reply.text
        reply_id = reply.json()["id"]
        own = api.post(f"Communication/{reply_id}/$mark-received")
        assert own.status_code == 403  # the sender is not a recipient

    # the citizen sees the answer, unread, in the list…
    page.goto(f"{hygie.base}/ens/messages")
    row = page.locator("#conversations tbody tr").first
    assert "1 nouveau" in row.inner_text().lower()
    assert "1 non lu" in page.locator("h1").inner_text().lower()
    assert_accessible(page, "inbox with an unread answer")
    page.screenshot(path=str(shots / "ens-messages.png"), full_page=True)
    # …opens it: both receipts show, the answer is read
    row.get_by_role("link").click()
    assert page.locator(f"#message-{reply_id}").get_by_text("Nouveau").is_visible()
    assert page.locator(f"#message-{root}").get_by_text("Lu le").is_visible()
    assert "Vos résultats sont normaux" in page.locator(f"#message-{reply_id}").inner_text()
    assert_accessible(page, "conversation with an answer")
    page.screenshot(path=str(shots / "ens-message.png"), full_page=True)
    page.reload()
    assert page.locator(f"#message-{reply_id}").get_by_text("Nouveau").count() == 0
    assert "non lu" not in page.locator("h1").inner_text().lower()

    # the reply form refuses an empty answer and keeps the page accessible
    page.get_by_role("button", name="Envoyer la réponse").click()
    assert page.locator("#message-erreur").is_visible()
    assert_accessible(page, "reply with an error")
    page.locator("#message").fill("Merci beaucoup !")
    page.get_by_role("button", name="Envoyer la réponse").click()
    assert "Votre réponse a été envoyée" in page.locator("main").inner_text()

    # the GP sees that her answer was read
    with _api(hygie, gp) as api:
        seen = api.get(f"Communication/{reply_id}").json()
        assert seen["received"]
        thread = api.get("Communication", params={"part-of": f"Communication/{root}"}).json()
        assert len(thread["entry"]) == 2
        assert {e["resource"]["sender"]["reference"] for e in thread["entry"]} == {
            f"Practitioner/{gp}",
            f"Patient/{julie.patient_id}",
        }
    # the attachment is a document of the record
    assert doc_ref.startswith("DocumentReference/")
    docs = page.request.get(f"{hygie.base}/ens/messages/pieces/{doc_ref.split('/')[1]}")
    assert docs.status == 200


def test_a_conversation_of_someone_else_is_out_of_reach(page: Any, hygie: LiveHygie) -> None:
    gp, julie = _gp_and_patient(hygie)
    with _api(hygie, gp) as api:
        started = api.post(
            "Communication",
            json={
                "resourceType": "Communication",
                "status": "completed",
                "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "message"}]}],
                "subject": {"reference": f"Patient/{julie.patient_id}"},
                "topic": {"text": "Votre rendez-vous"},
                "sent": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "sender": {"reference": f"Practitioner/{gp}"},
                "recipient": [{"reference": f"Patient/{julie.patient_id}"}],
                "payload": [{"contentString": "Pouvez-vous venir jeudi ?"}],
            },
            headers={"Content-Type": "application/fhir+json"},
        )
        assert started.status_code == 201, started.text
        root = started.json()["id"]
    other = new_citizen(hygie, family="PETIT", given="Marc", birth_date="1990-01-01")
    page.goto(f"{hygie.base}/ens/messages/{root}")
    fill_sign_in(page, other.login, other.password)
    page.wait_for_url(f"{hygie.base}/ens/messages/{root}")
    assert page.locator("h1").inner_text() == "Impossible d’afficher la page"
    assert "Pouvez-vous venir" not in page.content()
    response = page.request.get(f"{hygie.base}/ens/messages/{root}")
    assert response.status == 404
    assert_accessible(page, "someone else's conversation")
    # their own inbox does not list it
    page.goto(f"{hygie.base}/ens/messages")
    assert "Votre rendez-vous" not in page.content()


def test_the_person_chooses_how_to_be_told_of_new_messages(page: Any, hygie: LiveHygie) -> None:
    _, julie = _gp_and_patient(hygie)
    page.goto(f"{hygie.base}/ens/messages/notifications")
    fill_sign_in(page, julie.login, julie.password)
    page.wait_for_url(f"{hygie.base}/ens/messages/notifications")
    assert page.locator("#choix-both").is_checked()  # by default, wherever the profile allows
    assert (
        "06 12 34 56 78" in page.locator("main").inner_text()
        or "0612345678" in page.locator("main").inner_text()
    )
    assert_accessible(page, "notification choices")
    # nothing chosen (a tampered form): said in French, nothing saved
    page.evaluate("document.querySelectorAll('input[name=choix]').forEach((r) => { r.checked = false; })")
    page.get_by_role("button", name="Enregistrer").click()
    assert page.locator("#choix-erreur").inner_text() == "Choisissez comment être prévenu(e)."
    assert_accessible(page, "notification choices with an error")
    page.locator("label[for=choix-email]").click()
    page.get_by_role("button", name="Enregistrer").click()
    page.wait_for_url(f"{hygie.base}/ens/messages")
    assert "Vos préférences de notification sont enregistrées." in page.locator("main").inner_text()
    patient = hygie.call(
        Door(hygie.runtime.service).read(Caller.operator("tests/e2e"), "Patient", julie.patient_id)
    )
    assert patient is not None
    flags = {t["system"]: t["extension"][0]["valueBoolean"] for t in patient["telecom"]}
    assert flags == {"email": True, "phone": False}
    page.goto(f"{hygie.base}/ens/messages/notifications")
    assert page.locator("#choix-email").is_checked()
