"""The professionals' portal (BSP) in the browser: one sign-on, my patients, a record's summary,
depositing and announcing a document, the access page of a record that is not open to me.

Every page is checked with axe-core. The practitioner is Dr BERNARD of the e2e seed: in Léa
DURAND's care team, without any relation to Claire MARTIN.
"""

from __future__ import annotations

from typing import Any

from ens_seed import pdf_bytes
from playwright.sync_api import expect

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import LiveHygie, People


def sign_in_pro(page: Any, hygie: LiveHygie, people: People, path: str = "/bsp") -> None:
    page.goto(f"{hygie.base}{path}")
    pro = people.professional
    fill_sign_in(page, pro.login, pro.password, pro.totp_secret)
    page.wait_for_url(f"{hygie.base}{path}")


def test_one_sign_on_lands_on_the_services(
    page: Any, hygie: LiveHygie, people: People, tmp_path: Any
) -> None:
    sign_in_pro(page, hygie, people)
    expect(page.locator("h1")).to_contain_text("Bonjour")
    assert page.locator("#personne-connectee").inner_text().strip() == "Dr Paul BERNARD"
    assert_accessible(page, "BSP home")
    page.screenshot(path=str(screenshots_dir(tmp_path) / "bsp-accueil.png"), full_page=True)
    page.locator("#navigation-bsp").get_by_role("link", name="Patients").click()
    page.wait_for_url(f"{hygie.base}/bsp/patients")
    rows = page.locator("#table-patients tbody tr")
    expect(rows).to_have_count(1)  # Léa DURAND only: no relation with Claire MARTIN
    expect(rows.first).to_contain_text("Léa DURAND")
    assert_accessible(page, "my patients")


def test_summary_deposit_and_announce(page: Any, hygie: LiveHygie, people: People, tmp_path: Any) -> None:
    durand = hygie.patients["durand"]
    sign_in_pro(page, hygie, people, "/bsp/patients")
    page.get_by_role("link", name="Léa DURAND").click()
    page.wait_for_url(f"{hygie.base}/bsp/patients/{durand}")
    expect(page.locator("#bandeau-patient-nom")).to_have_text("Léa DURAND")
    expect(page.locator("#statut-identite")).to_have_text("identité provisoire")
    assert "62" in page.locator("main").inner_text()  # the latest weight
    assert_accessible(page, "record summary")

    page.get_by_role("link", name="Déposer un document").click()
    page.wait_for_url(f"{hygie.base}/bsp/patients/{durand}/documents/deposer")
    assert_accessible(page, "deposit form")
    # nothing chosen: every mandatory field is named, what was typed stays
    page.fill("#titre", "")
    page.fill("#texte", "")
    page.get_by_role("button", name="Déposer le document").click()
    expect(page.locator("#type-erreur")).to_contain_text("Choisissez le type")
    expect(page.locator("#titre-erreur")).to_be_visible()
    expect(page.locator("#fichier-erreur")).to_be_visible()
    assert_accessible(page, "deposit form with errors")

    letter = tmp_path / "lettre.pdf"
    letter.write_bytes(pdf_bytes("Lettre de liaison"))
    page.select_option("#type", "11490-0")
    page.fill("#titre", "Lettre de liaison — séjour de janvier")
    page.set_input_files("#fichier", str(letter))
    page.check("#invisible_patient", force=True)
    page.screenshot(path=str(screenshots_dir(tmp_path) / "bsp-depot.png"), full_page=True)
    page.get_by_role("button", name="Déposer le document").click()
    page.wait_for_url(f"{hygie.base}/bsp/patients/{durand}/documents/*")
    expect(page.locator("h1")).to_have_text("Lettre de liaison — séjour de janvier")
    expect(page.locator("main")).to_contain_text("pas encore visible par le patient")
    assert_accessible(page, "deposited document")
    document_id = page.url.rsplit("/", 1)[1]

    # the document as stored: DMP metadata, the author, hidden from the patient until announced
    from hygie.domain.access import Caller
    from hygie.web.portal.door import Door

    stored = hygie.call(
        Door(hygie.runtime.service).read(Caller.operator("tests"), "DocumentReference", document_id)
    )
    assert stored is not None
    assert stored["type"]["coding"][0]["code"] == "11490-0"
    assert stored["category"][0]["coding"][0]["code"] == "10"
    assert stored["author"][0]["reference"] == f"Practitioner/{hygie.practitioner}"
    codes = {c["code"] for label in stored["securityLabel"] for c in label["coding"]}
    assert "INVISIBLE_PATIENT" in codes

    page.get_by_role("button", name="rendre visible au patient").click()
    expect(page.locator(".fr-alert--success")).to_contain_text("annoncé")
    stored = hygie.call(
        Door(hygie.runtime.service).read(Caller.operator("tests"), "DocumentReference", document_id)
    )
    assert stored is not None
    assert "INVISIBLE_PATIENT" not in {
        c["code"] for label in stored["securityLabel"] for c in label["coding"]
    }

    page.goto(f"{hygie.base}/bsp/patients/{durand}/documents")
    expect(page.locator("#table-documents tbody tr")).to_have_count(1)
    assert_accessible(page, "documents list")


def test_a_record_without_relation_is_not_open(
    page: Any, hygie: LiveHygie, people: People, tmp_path: Any
) -> None:
    martin = hygie.patients["martin"]
    sign_in_pro(page, hygie, people)
    response = page.goto(f"{hygie.base}/bsp/patients/{martin}")
    assert response is not None and response.status == 404
    assert "Claire" not in page.locator("main").inner_text()
    assert_accessible(page, "record refused")
    page.goto(f"{hygie.base}/bsp/patients/{martin}/acces")
    expect(page.locator("#etat-acces")).to_contain_text("pas de relation de soins")
    assert_accessible(page, "access page")
    # the emergency access asks its reasons; what was typed stays when it is refused
    page.fill("#justification", "court")
    page.get_by_role("button", name="Ouvrir l’accès en urgence").click()
    expect(page.locator("#compris-erreur")).to_be_visible()
    assert page.input_value("#justification") == "court"
    page.check("#compris", force=True)
    page.get_by_role("button", name="Ouvrir l’accès en urgence").click()
    expect(page.locator("#motif-erreur")).to_contain_text("motif")
    assert page.input_value("#justification") == "court"
    assert_accessible(page, "access page with errors")
    page.screenshot(path=str(screenshots_dir(tmp_path) / "bsp-acces.png"), full_page=True)
