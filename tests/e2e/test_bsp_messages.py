"""BSP « Messagerie » in the browser: two professionals exchange a message with a document of a
shared patient's record and a file attached, read receipts both ways; a professional answers a
patient's message and the patient reads the answer in her space; a professional who is not a
party to a conversation cannot open it (404); an authority's alert reaches the professional.

Every page is checked with axe-core. Dr Paul BERNARD is the e2e seed's doctor, in Léa DURAND's
care team.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from bsp_seed import TRE_G15, doctor, in_care_team, sign_in_as, stored, unique
from ens_seed import pdf_bytes, pro_headers, seed_professional_document
from playwright.sync_api import expect

from bearer_tokens import bearer
from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import LiveHygie, create_resource, new_citizen
from hygie.domain.access import Caller
from hygie.domain.ens.messaging import CATEGORY_SYSTEM
from hygie.web.portal.door import Door


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def test_two_professionals_exchange_a_message_with_a_document_attached(
    page: Any, hygie: LiveHygie, shots: Path, tmp_path: Path
) -> None:
    durand = hygie.patients["durand"]
    moreau = doctor(hygie, "MOREAU", "Claire", structure="Centre de cardiologie du Port")
    in_care_team(hygie, durand, moreau)
    echo = seed_professional_document(hygie, durand, "Échographie cardiaque du 3 mars")

    sign_in_as(page, hygie, hygie.practitioner, "/bsp/messages")
    expect(page.locator("h1")).to_have_text("Messagerie")
    assert_accessible(page, "empty inbox")
    page.get_by_role("link", name="Écrire à un professionnel ou une structure").click()
    page.wait_for_url(f"{hygie.base}/bsp/messages/nouveau")
    assert_accessible(page, "new message: find the recipient")
    page.fill("#qui", "Claire MOREAU")
    page.get_by_role("button", name="Chercher dans l’annuaire").click()
    found = page.locator("#resultats-annuaire li")
    expect(found).to_have_count(1)
    expect(found.first).to_contain_text("Centre de cardiologie du Port")
    expect(found.first).to_contain_text("@medecin.mssante.fr")
    assert_accessible(page, "directory results")
    found.first.get_by_role("link").click()
    expect(page.locator("#destinataire-choisi")).to_contain_text("MOREAU")
    page.select_option("#patient", durand)
    page.get_by_role("button", name="Choisir ce patient").click()
    expect(page.locator("#patient-choisi")).to_contain_text("Léa DURAND")

    # nothing typed: each missing field is named, the choices stay
    page.get_by_role("button", name="Envoyer le message").click()
    expect(page.locator("#objet-erreur")).to_be_visible()
    expect(page.locator("#message-erreur")).to_be_visible()
    expect(page.locator("#patient-choisi")).to_contain_text("Léa DURAND")
    assert_accessible(page, "new message with errors")

    page.goto(f"{hygie.base}/bsp/messages/nouveau?a=Practitioner/{moreau}&patient={durand}")
    page.fill("#objet", "Avis sur l’échographie de Mme DURAND")
    page.fill("#message", "Chère consœur,\nque pensez-vous de cette échographie ?\nBien confraternellement")
    page.check(f"#document-{echo}", force=True)
    letter = tmp_path / "courrier.pdf"
    letter.write_bytes(pdf_bytes("Courrier d'adressage"))
    page.set_input_files("#piece", str(letter))
    page.screenshot(path=str(shots / "bsp-messagerie-nouveau.png"), full_page=True)
    page.get_by_role("button", name="Envoyer le message").click()
    page.wait_for_url(lambda url: "/bsp/messages/" in url and "nouveau" not in url)
    root = page.url.rsplit("/", 1)[1]
    expect(page.locator(".fr-alert--success")).to_contain_text("Votre message a été envoyé")
    expect(page.locator(f"#message-{root}")).to_contain_text("Pas encore lu")
    assert_accessible(page, "conversation as the sender")

    # as stored: a correspondence in Léa's record (not in her messaging), the document by
    # reference, the file carried inside the message
    message = stored(hygie, "Communication", root)
    assert message["subject"]["reference"] == f"Patient/{durand}"
    assert message["category"][0]["coding"][0]["code"] == "correspondance"
    assert message["recipient"][0]["reference"] == f"Practitioner/{moreau}"
    assert {"reference": f"DocumentReference/{echo}", "display": "Échographie cardiaque du 3 mars"} in [
        p.get("contentReference") for p in message["payload"]
    ]
    assert any(
        p.get("contentAttachment", {}).get("contentType") == "application/pdf" for p in message["payload"]
    )

    # the recipient: told on her home page, the conversation first in her inbox
    sign_in_as(page, hygie, moreau)
    expect(page.locator(".fr-callout")).to_contain_text("1 message non lu")
    page.get_by_role("link", name="1 message non lu").click()
    page.wait_for_url(f"{hygie.base}/bsp/messages")
    row = page.locator("#conversations tbody tr").first
    expect(row).to_contain_text("1 nouveau")
    expect(row).to_contain_text("Léa DURAND")
    page.screenshot(path=str(shots / "bsp-messagerie.png"), full_page=True)
    assert_accessible(page, "inbox with a new message")
    row.get_by_role("link").click()
    page.wait_for_url(f"{hygie.base}/bsp/messages/{root}")
    expect(page.locator(f"#message-{root}")).to_contain_text("Nouveau")
    assert_accessible(page, "conversation as the recipient")
    with page.expect_download() as download:
        page.get_by_role("link", name="Document du dossier : Échographie cardiaque du 3 mars").click()
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF-")
    with page.expect_download() as download:
        page.get_by_role("link", name="Pièce jointe : courrier.pdf").click()
    assert Path(download.value.path()).read_bytes() == letter.read_bytes()
    assert stored(hygie, "Communication", root).get("received")

    page.fill("#message", "Cher confrère, l’échographie est rassurante. Bien à vous.")
    page.get_by_role("button", name="Envoyer la réponse").click()
    expect(page.locator(".fr-alert--success")).to_contain_text("Votre réponse a été envoyée")
    expect(page.locator("#messages > li")).to_have_count(2)
    page.screenshot(path=str(shots / "bsp-messagerie-conversation.png"), full_page=True)

    # the sender sees that she read it, and her answer
    sign_in_as(page, hygie, hygie.practitioner, f"/bsp/messages/{root}")
    expect(page.locator(f"#message-{root}")).to_contain_text("Lu le")
    expect(page.locator("#messages")).to_contain_text("l’échographie est rassurante")
    assert_accessible(page, "conversation with the answer")


def test_a_professional_who_is_not_a_party_gets_nothing(page: Any, hygie: LiveHygie) -> None:
    durand = hygie.patients["durand"]
    moreau = doctor(hygie, "LAMBERT", "Sophie")
    stranger = doctor(hygie, "PETIT", "Marc")
    colleague = doctor(hygie, "ROUX", "Anne")
    in_care_team(hygie, durand, colleague)  # may read Léa's record, not others' letters about her
    headers = pro_headers(hygie, hygie.practitioner)
    letters = {}
    for key, subject in (("private", None), ("about_lea", f"Patient/{durand}")):
        letter: dict[str, Any] = {
            "resourceType": "Communication",
            "status": "completed",
            "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "correspondance"}]}],
            "topic": {"text": "Confidentiel"},
            "sent": "2026-03-01T10:00:00Z",
            "sender": {"reference": f"Practitioner/{hygie.practitioner}"},
            "recipient": [{"reference": f"Practitioner/{moreau}"}],
            "payload": [
                {"contentString": "Entre nous."},
                {
                    "contentAttachment": {
                        "contentType": "application/pdf",
                        "title": "note.pdf",
                        "data": "JVBERi0=",
                    }
                },
            ],
        }
        if subject:
            letter["subject"] = {"reference": subject}
        created = httpx.post(f"{hygie.fhir}/Communication", json=letter, headers=headers, timeout=30)
        assert created.status_code == 201, created.text
        letters[key] = created.json()["id"]

    for who in (stranger, colleague):
        sign_in_as(page, hygie, who, "/bsp/messages")
        expect(page.locator("main")).to_contain_text("Aucune conversation")
        for root in letters.values():
            response = page.goto(f"{hygie.base}/bsp/messages/{root}")
            assert response is not None and response.status == 404
            assert "Entre nous" not in page.locator("main").inner_text()
            response = page.goto(f"{hygie.base}/bsp/messages/{root}/fichiers/1")
            assert response is not None and response.status == 404
        assert_accessible(page, "a conversation that is not mine")
    # the recipient reads the letter about no one; the one about Léa is in Léa's record, which is
    # not open to her (no care relation): the sender was told so when writing
    sign_in_as(page, hygie, moreau, "/bsp/messages")
    expect(page.locator("#conversations tbody tr")).to_have_count(1)
    page.get_by_role("link", name="Confidentiel").click()
    page.wait_for_url(f"{hygie.base}/bsp/messages/{letters['private']}")
    response = page.goto(f"{hygie.base}/bsp/messages/{letters['about_lea']}")
    assert response is not None and response.status == 404


def test_a_professional_answers_a_patient_who_reads_it_in_her_space(
    page: Any, hygie: LiveHygie, shots: Path, tmp_path: Path
) -> None:
    julie = new_citizen(hygie, family="MOREL", given="Julie")
    in_care_team(hygie, julie.patient_id, hygie.practitioner)
    token = hygie.call(
        bearer(
            hygie.runtime,
            kind="citizen",
            scope="openid",
            fhir_user=f"Patient/{julie.patient_id}",
            client_id="hygie-portal",
        )
    )
    asked = httpx.post(
        f"{hygie.fhir}/Communication",
        headers=token,
        json={
            "resourceType": "Communication",
            "status": "completed",
            "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "message"}]}],
            "subject": {"reference": f"Patient/{julie.patient_id}"},
            "topic": {"text": "Mon traitement"},
            "sent": "2026-03-02T08:00:00Z",
            "sender": {"reference": f"Patient/{julie.patient_id}", "display": "Julie MOREL"},
            "recipient": [{"reference": f"Practitioner/{hygie.practitioner}"}],
            "payload": [{"contentString": "Docteur, puis-je arrêter le traitement ?"}],
        },
        timeout=30,
    )
    assert asked.status_code == 201, asked.text
    root = asked.json()["id"]

    sign_in_as(page, hygie, hygie.practitioner)
    page.get_by_role("link", name="1 message non lu").click()
    page.wait_for_url(f"{hygie.base}/bsp/messages")
    page.get_by_role("link", name="Mon traitement").click()
    page.wait_for_url(f"{hygie.base}/bsp/messages/{root}")
    expect(page.locator("main")).to_contain_text("Conversation avec votre patient(e) Julie MOREL")
    assert_accessible(page, "a patient's message")
    plan = tmp_path / "plan.pdf"
    plan.write_bytes(pdf_bytes("Plan de traitement"))
    page.fill("#message", "Bonjour, continuez jusqu’à la fin du mois. Voici le plan.")
    page.set_input_files("#piece", str(plan))
    page.get_by_role("button", name="Envoyer la réponse").click()
    expect(page.locator(".fr-alert--success")).to_contain_text("Votre réponse a été envoyée")
    expect(page.locator("#messages > li")).to_have_count(2)

    # the patient reads the answer in her space, with the plan filed in her record
    page.context.clear_cookies()
    page.goto(f"{hygie.base}/ens/messages")
    fill_sign_in(page, julie.login, julie.password)
    page.wait_for_url(f"{hygie.base}/ens/messages")
    row = page.locator("#conversations tbody tr").first
    expect(row).to_contain_text("Mon traitement")
    expect(row).to_contain_text("1 nouveau")
    row.get_by_role("link").click()
    page.wait_for_url(f"{hygie.base}/ens/messages/{root}")
    expect(page.locator("#messages")).to_contain_text("continuez jusqu’à la fin du mois")
    expect(page.locator(f"#message-{root}")).to_contain_text("Lu le")  # the doctor opened hers
    assert_accessible(page, "the answer in the patient's space")
    with page.expect_download() as download:
        page.get_by_role("link", name="Pièce jointe : plan.pdf").click()
    assert Path(download.value.path()).read_bytes() == plan.read_bytes()


def test_an_authoritys_alert_reaches_the_professionals_it_names(page: Any, hygie: LiveHygie) -> None:
    from hygie.domain.bsp.alerts import ProfessionalCriteria, broadcast_to_professionals
    from hygie.domain.ens.alerts import Alert

    nurse = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "Practitioner",
                "name": [{"family": f"INFIRMIER{unique()}", "given": ["Luc"]}],
                "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": "60"}]}}],
            },
        )
    )
    report = hygie.call(
        broadcast_to_professionals(
            Door(hygie.runtime.service),
            Caller.operator("tests"),
            Alert("Rupture de stock d’amoxicilline", "Privilégiez les alternatives.", "medicament", "ANSM"),
            ProfessionalCriteria(professions=("10",)),
            broadcast_id=f"e2e-{unique()}",
            now_us=1_780_000_000_000_000,
        )
    )
    assert report.matched >= 1
    sign_in_as(page, hygie, hygie.practitioner)
    page.get_by_role("link", name="1 alerte sanitaire à lire").click()
    page.wait_for_url(f"{hygie.base}/bsp/messages#alertes")
    page.get_by_role("link", name="Rupture de stock d’amoxicilline").click()
    expect(page.locator("#alerte")).to_contain_text("vous êtes médecin")
    assert_accessible(page, "an alert")
    sign_in_as(page, hygie, str(nurse), "/bsp/messages")
    expect(page.locator("main")).to_contain_text("Aucune alerte reçue")
