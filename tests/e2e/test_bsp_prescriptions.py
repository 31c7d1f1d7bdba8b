"""E-prescription in the browser, the whole chain: Dr BERNARD prescribes for Léa DURAND (a refused
prescription first: every reason beside its field, everything typed kept, nothing stored), the
PDF carries the number and the QR code; a pharmacist opens it from the QR code's content,
dispenses a line in two parts, and a second dispensing beyond the renewals (from a tab left open)
is refused with the reason; Léa sees it delivered in her space and asks for a renewal; Dr BERNARD
finds the request in his inbox, renews from the prefilled form, and Léa sees the new
prescription; a second request is refused with a reason Léa reads.

Every page is checked with axe-core; ``bsp-prescrire.png``, ``bsp-ordonnance.png``,
``bsp-officine.png`` and ``bsp-renouvellements.png`` feed the user guide.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ens_seed import TRE_G15
from playwright.sync_api import expect
from test_bsp_record import sign_in_pro

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import PASSWORD, LiveHygie, People, create_resource
from hygie.domain.access import Caller
from hygie.web.portal.door import Door

DOLIPRANE = "DOLIPRANE 1000 mg, comprimé"  # boxes of 8, 4 a day at most
TAHOR = "TAHOR 20 mg, comprimé pelliculé"  # boxes of 30


def _search(hygie: LiveHygie, resource_type: str, *params: tuple[str, str]) -> list[dict[str, Any]]:
    """What is stored, as an operator (outside the access policy of the pages under test)."""
    door = Door(hygie.runtime.service)
    return hygie.call(door.search(Caller.operator("tests"), resource_type, list(params)))


def _pharmacist(hygie: LiveHygie) -> tuple[str, str]:
    """A pharmacist (TRE_G15 21) of a pharmacy, and her professional account: (login, TOTP secret)."""
    pharmacy = hygie.call(
        create_resource(
            hygie.runtime, {"resourceType": "Organization", "active": True, "name": "Pharmacie des Tilleuls"}
        )
    )
    practitioner = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "Practitioner",
                "active": True,
                "name": [{"use": "usual", "family": "MOREAU", "given": ["Sophie"]}],
                "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": "21"}]}}],
            },
        )
    )
    hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "PractitionerRole",
                "active": True,
                "practitioner": {"reference": f"Practitioner/{practitioner}"},
                "organization": {"reference": f"Organization/{pharmacy}"},
            },
        )
    )
    accounts = hygie.runtime.accounts
    assert accounts is not None
    account, uri = hygie.call(
        accounts.create(
            "professional", "s.moreau@pharmacie.example.fr", PASSWORD, totp=True, practitioner_id=practitioner
        )
    )
    assert uri is not None
    return account.login, parse_qs(urlsplit(uri).query)["secret"][0]


def _qr_of(pdf: bytes) -> str:
    """The QR code printed on the prescription, read back from the PDF."""
    import zxingcpp
    from PIL import Image
    from pypdf import PdfReader

    page = PdfReader(io.BytesIO(pdf)).pages[0]
    found = [
        d.text for image in page.images for d in zxingcpp.read_barcodes(Image.open(io.BytesIO(image.data)))
    ]
    assert len(found) == 1, found
    return str(found[0])


def _switch(page: Any, cookies: list[Any]) -> None:
    """Back to a browser session kept earlier (a TOTP code is accepted once: no second sign-in)."""
    page.context.clear_cookies()
    page.context.add_cookies(cookies)


def test_prescribe_dispense_and_renew(page: Any, hygie: LiveHygie, people: People, tmp_path: Any) -> None:
    from pypdf import PdfReader

    shots = screenshots_dir(tmp_path)
    durand = hygie.patients["durand"]
    base = hygie.base

    # -- Dr BERNARD prescribes: refused first, with the reasons beside the fields ----------------
    sign_in_pro(page, hygie, people, f"/bsp/patients/{durand}/prescrire")
    expect(page.locator("#bandeau-patient-nom")).to_have_text("Léa DURAND")
    assert_accessible(page, "prescription form")
    page.fill("#l0-medicament", DOLIPRANE)
    page.fill("#l0-dose", "3")
    page.fill("#l0-prises", "3")
    page.fill("#l0-duree", "5")
    page.fill("#l0-consignes", "si douleur")
    page.fill("#l1-medicament", "ASPIRINE IMAGINAIRE 500 mg")
    page.fill("#l1-dose", "1")
    page.fill("#l1-prises", "1")
    page.fill("#l1-duree", "30")
    page.fill("#l1-renouvellements", "1")
    page.check("#l1-non-substituable", force=True)
    page.fill("#fin", "2020-01-01")
    page.get_by_role("button", name="Établir l’ordonnance").click()
    expect(page.locator("#l0-dose-erreur")).to_contain_text("Dose impossible")
    expect(page.locator("#l1-medicament-erreur")).to_contain_text("Médicament inconnu")
    expect(page.locator("#fin-erreur")).to_contain_text("est passée")
    expect(page.locator("#erreurs")).to_contain_text("Ligne 2, médicament")
    assert page.input_value("#l1-medicament") == "ASPIRINE IMAGINAIRE 500 mg"
    assert page.input_value("#l0-consignes") == "si douleur"
    assert page.input_value("#l1-renouvellements") == "1"
    assert page.is_checked("#l1-non-substituable")
    assert _search(hygie, "MedicationRequest", ("patient", durand)) == []
    assert _search(hygie, "DocumentReference", ("patient", durand), ("type", "57833-6")) == []
    assert_accessible(page, "prescription form with errors")

    page.fill("#l0-dose", "1")
    page.fill("#l1-medicament", TAHOR)
    page.fill("#fin", "")
    page.screenshot(path=str(shots / "bsp-prescrire.png"), full_page=True)
    page.get_by_role("button", name="Établir l’ordonnance").click()
    page.wait_for_url(f"{base}/bsp/patients/{durand}/prescrire/*")
    number = page.locator("#numero-ordonnance").inner_text().strip()
    assert len(number) == 16 and number.count("-") == 3
    expect(page.locator(".fr-alert--success")).to_contain_text(f"Ordonnance n° {number} enregistrée")
    assert (page.get_attribute("#qr-ordonnance", "src") or "").startswith("data:image/svg+xml")
    table = page.locator("#lignes").inner_text()
    assert "1 comprimé 3 fois par jour pendant 5 jours. Si douleur" in table
    assert "2 boîtes" in table and "À renouveler 1 fois" in table and "non substituable" in table
    assert_accessible(page, "prescription written")
    page.screenshot(path=str(shots / "bsp-ordonnance.png"), full_page=True)
    href = page.get_attribute("#telecharger-pdf", "href")
    assert href is not None
    pdf = page.request.get(f"{base}{href}")
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    assert number in PdfReader(io.BytesIO(pdf.body())).pages[0].extract_text()
    code = _qr_of(pdf.body())
    assert code.startswith("HYGIE-ORD1:") and number.replace("-", "") in code
    doctor = page.context.cookies()

    # a doctor is not a pharmacist: the pharmacy page says so, without its form
    page.goto(f"{base}/bsp/officine")
    expect(page.locator("#non-pharmacien")).to_contain_text("Réservé aux pharmaciens")
    expect(page.locator("#code")).to_have_count(0)
    assert_accessible(page, "pharmacy page for a doctor")

    # -- the pharmacist opens it from the QR code and dispenses --------------------------------
    login, secret = _pharmacist(hygie)
    page.context.clear_cookies()
    page.goto(f"{base}/bsp/officine")
    fill_sign_in(page, login, PASSWORD, secret)
    page.wait_for_url(f"{base}/bsp/officine")
    assert_accessible(page, "pharmacy")
    page.fill("#numero", number.lower())
    page.fill("#naissance", "1992-07-15")  # not Léa's birth date
    page.get_by_role("button", name="Ouvrir avec le numéro").click()
    expect(page.locator("#numero-erreur")).to_contain_text("Aucune ordonnance ne correspond")
    assert page.input_value("#numero") == number.lower()
    assert_accessible(page, "pharmacy with an error")
    page.fill("#code", code)
    page.press("#code", "Enter")  # as a scanner ends what it types
    page.wait_for_url(f"{base}/bsp/officine/*")
    assert code not in page.url and code.split(":")[2] not in page.content()
    expect(page.locator("#patient-ordonnance")).to_contain_text("Léa DURAND, né(e) le 14/07/1992")
    expect(page.locator("#l0-etat")).to_have_text("à délivrer")
    expect(page.locator("#l1-etat")).to_have_text("à délivrer")
    assert page.input_value("#l0-quantite") == "2"
    assert page.locator("#l1-generique").count() == 0  # non substituable: no generic offered
    assert_accessible(page, "prescription at the pharmacy")
    page.screenshot(path=str(shots / "bsp-officine.png"), full_page=True)
    reading = page.url

    page.fill("#l0-quantite", "1")  # one box now, the other tomorrow
    page.locator("#l0-delivrer").get_by_role("button").click()
    expect(page.locator(".fr-alert--success")).to_contain_text("Délivrance enregistrée : DOLIPRANE")
    expect(page.locator("#l0-etat")).to_have_text("délivrée en partie")
    assert page.input_value("#l0-quantite") == "1"
    stale = page.context.new_page()  # a tab left open on the prescription
    stale.goto(reading)
    expect(stale.locator("#l0-etat")).to_have_text("délivrée en partie")
    page.locator("#l0-delivrer").get_by_role("button").click()
    expect(page.locator("#l0-etat")).to_have_text("entièrement délivrée")
    expect(page.locator("#l0-delivrer")).to_have_count(0)
    page.locator("#l1-delivrer").get_by_role("button").click()
    expect(page.locator("#l1-etat")).to_have_text("délivrée en partie")  # 1 delivery of 2
    assert_accessible(page, "prescription dispensed")
    # the same line again, beyond its renewals: refused with the reason, nothing written
    before = len(_search(hygie, "MedicationDispense", ("patient", durand)))
    stale.locator("#l0-delivrer").get_by_role("button").click()
    expect(stale.locator("#refus")).to_contain_text("Rien n’a été enregistré")
    expect(stale.locator("#l0-refus")).to_contain_text("déjà été entièrement délivrée")
    expect(stale.locator("#l0-etat")).to_have_text("entièrement délivrée")
    assert len(_search(hygie, "MedicationDispense", ("patient", durand))) == before == 3
    assert_accessible(stale, "dispensing refused")
    stale.close()

    # -- Léa sees it delivered in her space and asks for a renewal ------------------------------
    accounts = hygie.runtime.accounts
    assert accounts is not None
    lea, _ = hygie.call(accounts.create("citizen", "lea.durand@example.fr", PASSWORD, patient_id=durand))
    page.context.clear_cookies()
    page.goto(f"{base}/ens/ordonnances")
    fill_sign_in(page, lea.login, PASSWORD)
    page.wait_for_url(f"{base}/ens/ordonnances")
    card = page.locator(".fr-card")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("Dr Paul BERNARD")
    card.locator("a").click()
    page.wait_for_url(f"{base}/ens/ordonnances/*")
    expect(page.locator("#lignes")).to_contain_text("Entièrement délivrée")
    expect(page.locator("#delivrances")).to_contain_text("Pharmacie des Tilleuls")
    page.fill("#message", "Il me reste trois jours de traitement.")
    page.get_by_role("button", name="Demander un renouvellement").click()
    expect(page.locator(".fr-alert--success")).to_contain_text("envoyée à Dr Paul BERNARD")
    citizen = page.context.cookies()

    # -- Dr BERNARD finds the request and renews -----------------------------------------------
    _switch(page, doctor)
    page.goto(f"{base}/bsp")
    page.get_by_role("link", name="1 demande de renouvellement").click()
    page.wait_for_url(f"{base}/bsp/ordonnances")
    [task] = _search(hygie, "Task", ("patient", durand))
    request = page.locator(f"#demande-{task['id']}")
    expect(request).to_contain_text("Léa DURAND")
    expect(request).to_contain_text(DOLIPRANE)
    expect(request).to_contain_text("Il me reste trois jours de traitement.")
    expect(page.locator(".ordonnance-redigee")).to_contain_text(number)
    expect(page.locator(".ordonnance-redigee")).to_contain_text("Entièrement délivrée")
    assert_accessible(page, "renewal requests")
    page.screenshot(path=str(shots / "bsp-renouvellements.png"), full_page=True)
    request.get_by_role("link", name="Renouveler").click()
    page.wait_for_url(f"{base}/bsp/patients/{durand}/prescrire?renouvellement={task['id']}")
    expect(page.locator("#demande")).to_contain_text("Il me reste trois jours de traitement.")
    assert page.input_value("#l0-medicament") == DOLIPRANE
    assert page.input_value("#l0-dose") == "1" and page.input_value("#l0-prises") == "3"
    assert page.input_value("#l1-medicament") == TAHOR and page.input_value("#l1-renouvellements") == "1"
    assert page.is_checked("#l1-non-substituable")
    assert_accessible(page, "renewal form")
    page.get_by_role("button", name="Renouveler l’ordonnance").click()
    page.wait_for_url(f"{base}/bsp/patients/{durand}/prescrire/*")
    renewed = page.locator("#numero-ordonnance").inner_text().strip()
    assert renewed != number
    expect(page.locator(".fr-alert--success")).to_contain_text("la demande de renouvellement est traitée")
    [task] = _search(hygie, "Task", ("patient", durand))
    assert task["status"] == "completed"
    lines = _search(hygie, "MedicationRequest", ("patient", durand), ("identifier", renewed))
    assert len(lines) == 2 and all(line.get("priorPrescription") for line in lines)
    page.goto(f"{base}/bsp/ordonnances")
    expect(page.locator("#aucune-demande")).to_be_visible()

    # -- Léa sees the new prescription, asks again; this time the doctor refuses ---------------
    _switch(page, citizen)
    page.goto(f"{base}/ens/ordonnances")
    expect(page.locator(".fr-card")).to_have_count(2)
    newest = page.locator(".fr-card").first
    expect(newest).to_contain_text("Prescrite")
    newest.locator("a").click()
    page.wait_for_url(f"{base}/ens/ordonnances/*")
    assert renewed in page.locator("main").inner_text()
    assert_accessible(page, "the renewed prescription in the citizen's space")
    page.get_by_role("button", name="Demander un renouvellement").click()
    expect(page.locator(".fr-alert--success")).to_be_visible()
    renewal_page = page.url

    _switch(page, doctor)
    page.goto(f"{base}/bsp/ordonnances")
    [second] = [t for t in _search(hygie, "Task", ("patient", durand)) if t["status"] == "requested"]
    request = page.locator(f"#demande-{second['id']}")
    request.get_by_role("button", name="Refuser").click()
    expect(page.locator(f"#refus-{second['id']}-motif-erreur")).to_contain_text("Indiquez le motif")
    assert_accessible(page, "refusal without a reason")
    page.fill(f"#refus-{second['id']}-motif", "Une consultation est nécessaire avant de renouveler.")
    page.locator(f"#demande-{second['id']}").get_by_role("button", name="Refuser").click()
    expect(page.locator(".fr-alert--success")).to_contain_text("Demande refusée")
    expect(page.locator("#aucune-demande")).to_be_visible()

    _switch(page, citizen)
    page.goto(renewal_page)
    expect(page.locator("main")).to_contain_text(
        "refusée par le prescripteur (Une consultation est nécessaire avant de renouveler.)"
    )
