"""ENS "Documents" in a browser: read and download a professional's document, mask and release
it, add a PDF with a progress bar, replace it with a new version, filters and pages, clear
errors for bad files, one document for a double submission, and nothing of another person's.

Every page state shown is checked with axe-core (``tests/browser.py``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from ens_seed import TRE_A03, pdf_bytes, seed_professional_document
from playwright.sync_api import expect

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import create_resource, new_citizen

LiveHygie = Citizen = Any


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def stored(hygie: LiveHygie, resource_type: str, rid: str) -> dict[str, Any]:
    found = hygie.call(hygie.runtime.store.read(resource_type, rid))
    assert found is not None
    parsed: dict[str, Any] = orjson.loads(found.content)
    return parsed


def documents_titled(hygie: LiveHygie, patient_id: str, title: str) -> list[dict[str, Any]]:
    from hygie.domain.access import Caller
    from hygie.web.portal.door import Door

    door = Door(hygie.runtime.service)
    found = hygie.call(
        door.search(Caller.operator("tests/e2e"), "DocumentReference", [("patient", patient_id)])
    )
    return [d for d in found if d.get("description") == title]


def sign_in_at(page: Any, hygie: LiveHygie, citizen: Citizen, path: str) -> None:
    page.goto(f"{hygie.base}{path}")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_url(f"{hygie.base}{path}")


def test_a_citizen_reads_downloads_masks_and_releases_a_professionals_document(
    page: Any, hygie: LiveHygie, citizen: Citizen, shots: Path
) -> None:
    doc = seed_professional_document(hygie, citizen.patient_id, "Consultation de cardiologie")
    sign_in_at(page, hygie, citizen, "/ens/documents")
    assert page.locator("h1").inner_text() == "Mes documents"
    row = page.locator("#table-documents tbody tr", has_text="Consultation de cardiologie")
    assert row.count() == 1
    assert "Dr Paul BERNARD" in row.inner_text() and "Compte rendu" in row.inner_text()
    assert_accessible(page, "documents list")
    page.screenshot(path=str(shots / "ens-documents.png"), full_page=True)

    row.get_by_role("link", name="Consultation de cardiologie").click()
    page.wait_for_url(f"{hygie.base}/ens/documents/{doc}")
    assert "Dr Paul BERNARD" in page.locator("main").inner_text()
    # a professional's document: no control to change it, and why
    assert page.get_by_role("link", name="Déposer une nouvelle version").count() == 0
    assert "vous ne pouvez ni le modifier ni le supprimer" in page.locator("main").inner_text()
    assert_accessible(page, "professional's document")
    page.screenshot(path=str(shots / "ens-document.png"), full_page=True)

    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile("^Télécharger")).click()
    download = download_info.value
    assert download.suggested_filename == "Consultation de cardiologie.pdf"
    assert Path(download.path()).read_bytes().startswith(b"%PDF-")

    # mask it from professionals, then release it
    page.get_by_role("button", name="Masquer ce document aux professionnels").click()
    page.wait_for_url(f"{hygie.base}/ens/documents/{doc}")
    assert "Le document est masqué" in page.locator("[role=status]").inner_text()
    assert page.locator("main .fr-badge", has_text="Masqué aux professionnels").count() == 1
    labels = [
        c["code"]
        for label in stored(hygie, "DocumentReference", doc)["securityLabel"]
        for c in label["coding"]
    ]
    assert "MASQUE_PS" in labels
    assert_accessible(page, "masked document")
    page.goto(f"{hygie.base}/ens/documents")
    assert "MASQUÉ AUX PROFESSIONNELS" in page.locator("#table-documents").inner_text().upper()
    page.goto(f"{hygie.base}/ens/documents/{doc}")
    page.get_by_role("button", name="Ne plus masquer ce document").click()
    page.wait_for_url(f"{hygie.base}/ens/documents/{doc}")
    assert "n’est plus masqué" in page.locator("[role=status]").inner_text()
    labels = [
        c["code"]
        for label in stored(hygie, "DocumentReference", doc)["securityLabel"]
        for c in label["coding"]
    ]
    assert labels == ["N"]

    # the pages for one's own documents refuse a professional's
    response = page.goto(f"{hygie.base}/ens/documents/{doc}/nouvelle-version")
    assert response is not None and response.status == 403
    assert_accessible(page, "refusal page")


def test_a_citizen_adds_a_pdf_with_progress_replaces_it_and_sees_the_versions(
    page: Any, hygie: LiveHygie, citizen: Citizen, shots: Path
) -> None:
    sign_in_at(page, hygie, citizen, "/ens/documents/ajouter")
    assert_accessible(page, "empty upload form")
    page.fill("#titre", "Prise de sang de mars")
    page.select_option("#type", "biologie")
    page.fill("#date", "2026-03-02")
    page.set_input_files(
        "#fichier",
        {"name": "bilan.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes("Bilan", noise=420)},
    )
    page.screenshot(path=str(shots / "ens-documents-ajout.png"), full_page=True)
    # a slow line, so that the progress bar has something to show
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 150 * 1024},
    )
    with page.expect_request(
        lambda r: r.method == "POST" and r.url.endswith("/ens/documents/ajouter")
    ) as sent:
        page.get_by_role("button", name="Ajouter le document").click()
        page.wait_for_function(
            "() => { const p = document.getElementById('progression');"
            " return p && !p.closest('[hidden]') && p.value > 0 && p.value < 100; }"
        )
        assert re.search(r"Envoi : \d+ %", page.locator("#progression-texte").inner_text())
    assert sent.value.headers.get("x-requested-with") == "XMLHttpRequest"
    page.wait_for_url(re.compile(r"/ens/documents/[0-9a-f\-]{36}$"), timeout=60_000)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    first_id = page.url.rsplit("/", 1)[1]
    assert "Le document a été ajouté à votre dossier." in page.locator("[role=status]").inner_text()
    assert page.locator("h1").inner_text() == "Prise de sang de mars"
    main = page.locator("main").inner_text()
    assert "Vous" in main and "2 mars 2026" in main and "Résultats d’analyses" in main
    assert_accessible(page, "own document")
    first = stored(hygie, "DocumentReference", first_id)
    assert first["author"] == [{"reference": f"Patient/{citizen.patient_id}"}]
    assert first["category"][0]["coding"][0]["code"] == "90"
    assert first["type"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "11502-2",
        "display": "Laboratory report",
    }
    binary = stored(hygie, "Binary", first["content"][0]["attachment"]["url"].split("/")[1])
    assert binary["contentType"] == "application/pdf"

    # a new version replaces it
    page.get_by_role("link", name="Déposer une nouvelle version").click()
    assert page.input_value("#titre") == "Prise de sang de mars"
    assert page.input_value("#type") == "biologie"
    assert_accessible(page, "new version form")
    page.fill("#titre", "Prise de sang de mars (corrigée)")
    page.set_input_files(
        "#fichier",
        {"name": "bilan2.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes("Bilan corrigé")},
    )
    page.get_by_role("button", name="Enregistrer la nouvelle version").click()
    page.wait_for_url(re.compile(r"/ens/documents/[0-9a-f\-]{36}$"))
    second_id = page.url.rsplit("/", 1)[1]
    assert second_id != first_id
    versions = page.locator("#table-versions tbody tr")
    assert versions.count() == 2
    assert "Version actuelle" in versions.nth(0).inner_text()
    assert "Remplacée" in versions.nth(1).inner_text()
    assert_accessible(page, "document with versions")
    second = stored(hygie, "DocumentReference", second_id)
    assert second["relatesTo"] == [
        {"code": "replaces", "target": {"reference": f"DocumentReference/{first_id}"}}
    ]
    assert stored(hygie, "DocumentReference", first_id)["status"] == "superseded"

    # the list shows the current version only; the former one says it was replaced
    page.goto(f"{hygie.base}/ens/documents")
    table = page.locator("#table-documents").inner_text()
    assert "(corrigée)" in table and table.count("Prise de sang de mars") == 1
    page.goto(f"{hygie.base}/ens/documents/{first_id}")
    assert "Cette version a été remplacée" in page.locator("main").inner_text()
    assert_accessible(page, "replaced version")

    # and the person may delete what they added (with its former version)
    page.goto(f"{hygie.base}/ens/documents/{second_id}")
    page.get_by_role("link", name="Supprimer ce document").click()
    assert "1 version précédente" in page.locator("main").inner_text()
    assert_accessible(page, "deletion confirmation")
    page.get_by_role("button", name="Oui, supprimer le document").click()
    page.wait_for_url(f"{hygie.base}/ens/documents")
    assert "Le document a été supprimé" in page.locator("[role=status]").inner_text()
    assert "Aucun document" in page.locator("h2#resultats").inner_text()
    assert_accessible(page, "empty list")
    assert documents_titled(hygie, citizen.patient_id, "Prise de sang de mars (corrigée)") == []


@pytest.mark.parametrize("with_script", [True, False], ids=["script", "plain-form"])
def test_bad_files_and_fields_get_clear_errors_and_keep_what_was_typed(
    page: Any, hygie: LiveHygie, citizen: Citizen, with_script: bool
) -> None:
    if not with_script:
        page.route("**/ens-documents.js", lambda route: route.abort())
    sign_in_at(page, hygie, citizen, "/ens/documents/ajouter")
    max_bytes = hygie.runtime.settings.max_upload_bytes
    good = pdf_bytes("Bon")
    cases = [
        ("trop-gros.pdf", "application/pdf", good + b"%" * (max_bytes - len(good) + 10), "trop volumineux"),
        ("faux.pdf", "application/pdf", b"Ceci est un simple texte, pas un PDF.\n" * 20, "type de fichier"),
        ("abime.pdf", "application/pdf", good[: len(good) // 2], "endommagé"),
        ("photo.png", "image/png", b"\x89PNG\r\n\x1a\n" + os.urandom(300), "endommagé"),
    ]
    for name, mime, data, expected in cases:
        page.fill("#titre", f"Essai {name}")
        page.select_option("#type", "autre")
        page.fill("#date", "2026-01-15")
        page.set_input_files("#fichier", {"name": name, "mimeType": mime, "buffer": data})
        page.get_by_role("button", name="Ajouter le document").click()
        # the previous case's error stays on the page until the answer replaces it: wait for this one
        expect(page.locator("#fichier-erreur")).to_contain_text(expected)
        assert page.input_value("#titre") == f"Essai {name}"  # what was typed stays
        assert page.input_value("#date") == "2026-01-15"
        assert "choisissez-le à nouveau" in page.locator("label[for=fichier]").inner_text()
        assert "Le document n’a pas été enregistré" in page.locator("#erreurs").inner_text()
    assert_accessible(page, "upload form with a file error")

    # missing title, a date in the future, no file: one sentence per field
    page.fill("#titre", "")
    page.fill("#date", "2099-01-01")
    page.get_by_role("button", name="Ajouter le document").click()
    page.wait_for_selector("#titre-erreur")
    assert "Donnez un titre" in page.locator("#titre-erreur").inner_text()
    assert "dans le futur" in page.locator("#date-erreur").inner_text()
    assert "Choisissez le fichier" in page.locator("#fichier-erreur").inner_text()
    assert page.input_value("#date") == "2099-01-01"
    assert_accessible(page, "upload form with field errors")
    assert documents_titled(hygie, citizen.patient_id, "Essai faux.pdf") == []


def test_a_double_submission_creates_one_document(page: Any, hygie: LiveHygie, citizen: Citizen) -> None:
    sign_in_at(page, hygie, citizen, "/ens/documents/ajouter")
    fields = {
        "csrf": page.input_value("input[name=csrf]"),
        "jeton": page.input_value("input[name=jeton]"),
        "titre": "Ordonnance envoyée deux fois",
        "type": "ordonnance",
        "date": "2026-02-01",
    }
    upload = {"name": "ordonnance.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes("Ordonnance")}
    first = page.request.post(f"{hygie.base}/ens/documents/ajouter", multipart={**fields, "fichier": upload})
    second = page.request.post(f"{hygie.base}/ens/documents/ajouter", multipart={**fields, "fichier": upload})
    assert first.ok and second.ok
    assert first.url == second.url and re.search(r"/ens/documents/[0-9a-f\-]{36}$", first.url)
    assert len(documents_titled(hygie, citizen.patient_id, "Ordonnance envoyée deux fois")) == 1
    # each followed its redirection to the document's page: the second one says why nothing was added
    assert "Le document a été ajouté" in first.text()
    assert "déjà été envoyé" in second.text() and "Le document a été ajouté" not in second.text()


def test_filters_and_pages(page: Any, hygie: LiveHygie, citizen: Citizen) -> None:
    for n in range(23):
        hygie.call(
            create_resource(
                hygie.runtime,
                {
                    "resourceType": "DocumentReference",
                    "status": "current",
                    "type": {"text": "Ordonnance"},
                    "category": [{"coding": [{"system": TRE_A03, "code": "42"}]}],
                    "subject": {"reference": f"Patient/{citizen.patient_id}"},
                    "date": f"2025-{1 + n % 12:02d}-{1 + n:02d}T09:00:00+01:00",
                    "author": [{"reference": f"Practitioner/{hygie.practitioner}"}],
                    "description": f"Ordonnance numéro {n + 1}",
                    "content": [{"attachment": {"contentType": "application/pdf", "title": "Ordonnance"}}],
                },
            )
        )
    seed_professional_document(hygie, citizen.patient_id, "Échographie abdominale", day="2024-06-01")
    hidden = seed_professional_document(hygie, citizen.patient_id, "Résultat à annoncer")
    doc = stored(hygie, "DocumentReference", hidden)
    doc["securityLabel"].append(
        {
            "coding": [
                {
                    "system": "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument",
                    "code": "INVISIBLE_PATIENT",
                }
            ]
        }
    )
    from hygie.domain.access import Caller
    from hygie.web.portal.door import Door

    hygie.call(Door(hygie.runtime.service).update(Caller.operator("tests/e2e"), doc))

    sign_in_at(page, hygie, citizen, "/ens/documents")
    assert "24 documents" in page.locator("h2#resultats").inner_text()  # not the hidden one
    assert page.locator("#table-documents tbody tr").count() == 20
    assert "Résultat à annoncer" not in page.locator("main").inner_text()
    page.get_by_role("link", name="Page suivante").click()
    expect(page.locator("#table-documents tbody tr")).to_have_count(4)
    assert_accessible(page, "second page")
    response = page.goto(f"{hygie.base}/ens/documents/{hidden}")
    assert response is not None and response.status == 404

    page.goto(f"{hygie.base}/ens/documents")
    page.fill("#q", "echographie")  # without its accent
    page.get_by_role("button", name="Afficher").click()
    expect(page.locator("h2#resultats")).to_contain_text("1 document correspondant")
    page.select_option("#categorie", "42")
    page.fill("#q", "")
    page.fill("#du", "2025-03-01")
    page.fill("#au", "2025-03-31")
    page.get_by_role("button", name="Afficher").click()
    rows = page.locator("#table-documents tbody tr")
    expect(rows).to_have_count(2)  # the prescriptions dated 3 and 15 March
    assert all("mars 2025" in rows.nth(i).inner_text() for i in range(rows.count()))
    page.select_option("#source", "moi")
    page.get_by_role("button", name="Afficher").click()
    expect(page.locator("h2#resultats")).to_contain_text("Aucun document")
    assert_accessible(page, "no match")
    page.goto(f"{hygie.base}/ens/documents?du=2025-05-01&au=2025-01-01")
    assert "après la date de début" in page.locator("#au-erreur").inner_text()
    assert_accessible(page, "filters with an error")


def test_another_citizen_cannot_open_the_document(page: Any, hygie: LiveHygie, citizen: Citizen) -> None:
    doc = seed_professional_document(hygie, citizen.patient_id, "Bilan confidentiel de Claire")
    other = new_citizen(hygie, family="ROSSI", given="Paul", birth_date="1948-03-02")
    sign_in_at(page, hygie, other, "/ens/documents/ajouter")
    csrf = page.input_value("input[name=csrf]")
    for path in (
        f"/ens/documents/{doc}",
        f"/ens/documents/{doc}/fichier",
        f"/ens/documents/{doc}/nouvelle-version",
    ):
        response = page.goto(f"{hygie.base}{path}")
        assert response is not None and response.status == 404, path
        assert "Bilan confidentiel" not in page.content()
        assert "%PDF" not in page.content()
    assert_accessible(page, "error page")
    for action in ("masquer", "supprimer"):
        answer = page.request.post(
            f"{hygie.base}/ens/documents/{doc}/{action}", form={"csrf": csrf, "jeton": f"essai-{action}"}
        )
        assert answer.status == 404 and "Bilan confidentiel" not in answer.text()
    assert "MASQUE_PS" not in orjson.dumps(stored(hygie, "DocumentReference", doc)).decode()
    page.goto(f"{hygie.base}/ens/documents")
    assert "Bilan confidentiel" not in page.locator("main").inner_text()


def test_a_structured_document_is_shown_section_by_section(
    page: Any, hygie: LiveHygie, citizen: Citizen
) -> None:
    from hygie.demo.ens_documents import seed_demo

    hygie.call(seed_demo(hygie.runtime, citizen.patient_id, hygie.practitioner))
    sign_in_at(page, hygie, citizen, "/ens/documents")
    assert "2 documents" in page.locator("h2#resultats").inner_text()  # the former version is not listed
    page.get_by_role("link", name="Volet de synthèse médicale").click()
    expect(page.locator("h2", has_text="Contenu du document")).to_have_count(1)
    sections = page.locator("main h3").all_inner_texts()
    assert "Allergies et intolérances" in sections and "Traitements au long cours" in sections
    assert "Document structuré (FHIR)" in page.locator("main").inner_text()
    assert_accessible(page, "structured document")
    page.goto(f"{hygie.base}/ens/documents")
    page.get_by_role("link", name="Bilan sanguin (avec la page 2)").click()
    expect(page.locator("#table-versions tbody tr")).to_have_count(2)
    assert_accessible(page, "demo document with versions")
