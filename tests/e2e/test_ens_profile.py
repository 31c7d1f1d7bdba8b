"""ENS "Mon profil" and "Carnet de santé" in a browser.

A citizen completes the profile (used name, phone, trusted person, advance directives and their
PDF, organ donation), adds an allergy and a vaccination and sees the schedule's due dates; a
professional's allergy has no edit button and a forged POST to change or remove it is refused by
the access rules; another person's entries stay out of reach. Every page state shown is checked
with axe-core (``tests/browser.py``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import create_resource, new_citizen
from hygie.domain.relations import relations_from

LiveHygie = Citizen = Any


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def pdf_bytes(title: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    pdf.cell(0, 10, title)
    return bytes(pdf.output())


def sign_in_at(page: Any, hygie: LiveHygie, citizen: Citizen, path: str) -> None:
    page.goto(f"{hygie.base}{path}")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_url(f"{hygie.base}{path}")


def choose(page: Any, input_id: str) -> None:
    """Tick a DSFR radio or checkbox through its label (the label covers the input)."""
    page.locator(f"label[for='{input_id}']").click()
    assert page.locator(f"#{input_id}").is_checked()


def submit(page: Any, form: str) -> None:
    page.locator(f"{form} button[type=submit]").first.click()
    page.wait_for_load_state()


def stored(hygie: LiveHygie, resource_type: str, rid: str) -> tuple[int, dict[str, Any]]:
    row = hygie.call(hygie.runtime.store.read(resource_type, rid))
    assert row is not None
    return row.version, orjson.loads(row.content)


def professional_allergy(hygie: LiveHygie, patient_id: str) -> str:
    return hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "AllergyIntolerance",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                            "code": "active",
                        }
                    ]
                },
                "type": "allergy",
                "category": ["medication"],
                "criticality": "high",
                "code": {
                    "coding": [{"system": "http://snomed.info/sct", "code": "764146007"}],
                    "text": "Pénicilline",
                },
                "patient": {"reference": f"Patient/{patient_id}"},
                "recordedDate": "2024-05-02",
                "recorder": {"reference": f"Practitioner/{hygie.practitioner}"},
            },
        )
    )


def forged_post(page: Any, hygie: LiveHygie, path: str, fields: dict[str, str]) -> Any:
    """A POST the page never offers, with a valid CSRF token taken from a form of the portal."""
    page.goto(f"{hygie.base}/ens/carnet/allergie/ajouter")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    return page.request.post(f"{hygie.base}{path}", form={"csrf": csrf, "jeton": f"forge-{path}", **fields})


# --------------------------------------------------------------------------- the profile
def test_a_citizen_completes_the_profile(page: Any, hygie: LiveHygie, citizen: Citizen, shots: Path) -> None:
    # Dr Bernard is her médecin traitant (set by the professional, with her)
    _, patient = stored(hygie, "Patient", citizen.patient_id)
    patient["generalPractitioner"] = [{"reference": f"Practitioner/{hygie.practitioner}"}]
    hygie.call(_update(hygie, patient))

    sign_in_at(page, hygie, citizen, "/ens/profil")
    assert page.locator("h1").inner_text() == "Mon profil"
    assert "Dr Paul BERNARD" in page.locator("#soignants ~ p").first.inner_text()
    assert_accessible(page, "profile (empty)")

    # used name: a wrong one is refused and kept, a right one is saved
    page.click("text=Modifier le nom d’usage ou le prénom utilisé")
    page.fill("#nom_usage", "Dupont 2")
    submit(page, "main form")
    assert "ne peut contenir que des lettres" in page.locator("#nom_usage-erreur").inner_text()
    assert page.input_value("#nom_usage") == "Dupont 2"
    assert_accessible(page, "used names (errors)")
    page.fill("#nom_usage", "Durand-Martin")
    page.fill("#prenom_utilise", "Clara")
    submit(page, "main form")
    page.wait_for_url(f"{hygie.base}/ens/profil")
    assert "DURAND-MARTIN" in page.content() and "Clara" in page.content()
    _, patient = stored(hygie, "Patient", citizen.patient_id)
    assert {"use": "usual", "family": "DURAND-MARTIN", "given": ["Clara"]} in patient["name"]
    assert any(n.get("use") == "official" and n["family"] == "DUPONT" for n in patient["name"])

    # phone: a wrong number, then a right one
    page.click("text=Modifier les coordonnées")
    page.fill("#telephone", "12 34")
    page.fill("#courriel", "claire@")
    submit(page, "main form")
    assert page.locator("#telephone-erreur").is_visible() and page.locator("#courriel-erreur").is_visible()
    assert page.input_value("#courriel") == "claire@"
    assert_accessible(page, "contact details (errors)")
    page.fill("#telephone", "06 12 34 56 78")
    page.fill("#courriel", "claire.dupont@example.fr")
    submit(page, "main form")
    page.wait_for_url(f"{hygie.base}/ens/profil")
    assert "+33 6 12 34 56 78" in page.content()

    # trusted person: nothing typed, then a friend, without access to the record
    page.click("text=Désigner ma personne de confiance")
    assert_accessible(page, "trusted person (empty)")
    submit(page, "main form")
    assert page.locator("#nom-erreur").is_visible() and page.locator("#lien-erreur").is_visible()
    assert_accessible(page, "trusted person (errors)")
    page.fill("#nom", "Rossi")
    page.fill("#prenom", "Paul")
    page.select_option("#lien", "FRND")
    page.fill("#telephone", "07 11 22 33 44")
    choose(page, "acces-1")  # "Non"
    submit(page, "main form")
    page.wait_for_url(re.compile(r".*/ens/profil#proches$"))
    row = page.locator("table", has_text="Mes proches").locator("tbody tr", has_text="Paul ROSSI")
    assert "Personne de confiance" in row.inner_text()
    assert row.locator("td").nth(2).inner_text() == "Non"
    # no access relation: a friend named trusted person is no aidant
    rossi = _related(hygie, citizen.patient_id, "ROSSI")
    assert relations_from(rossi) == []

    # advance directives: the flag, a bad file, a damaged PDF, a real one
    page.goto(f"{hygie.base}/ens/profil/directives")
    assert_accessible(page, "advance directives (empty)")
    choose(page, "redigees-1")
    submit(page, "form[action='/ens/profil/directives']")
    assert "Choisissez où elles sont conservées" in page.locator("#lieu-erreur").inner_text()
    assert_accessible(page, "advance directives (errors)")
    choose(page, "redigees-1")
    page.select_option("#lieu", "medecin")
    page.fill("#precision", "Une copie chez ma fille")
    submit(page, "form[action='/ens/profil/directives']")
    page.wait_for_url(re.compile(r".*/ens/profil#directives$"))
    assert "chez mon médecin traitant" in page.content()

    page.goto(f"{hygie.base}/ens/profil/directives")
    upload = "form[action='/ens/profil/directives/document']"
    page.set_input_files(
        "#fichier", files=[{"name": "directives.pdf", "mimeType": "application/pdf", "buffer": b"hello"}]
    )
    submit(page, upload)
    assert "n’est pas un PDF" in page.locator("#fichier-erreur").inner_text()
    assert_accessible(page, "advance directives (bad file)")
    page.set_input_files(
        "#fichier",
        files=[
            {
                "name": "directives.pdf",
                "mimeType": "application/pdf",
                "buffer": b"%PDF-1.4\n1 0 obj<<>>\n%%EOF garbage",
            }
        ],
    )
    submit(page, upload)
    assert "endommagé" in page.locator("#fichier-erreur").inner_text()
    page.set_input_files(
        "#fichier", files=[{"name": "directives.txt", "mimeType": "text/plain", "buffer": pdf_bytes("x")}]
    )
    submit(page, upload)
    assert "Seuls les fichiers PDF" in page.locator("#fichier-erreur").inner_text()
    page.fill("#titre", "Mes directives de 2026")
    page.set_input_files(
        "#fichier",
        files=[
            {"name": "directives.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes("Mes directives")}
        ],
    )
    submit(page, upload)
    page.wait_for_url(f"{hygie.base}/ens/profil/directives")
    link = page.locator("a", has_text="Télécharger").first
    download = page.request.get(f"{hygie.base}{link.get_attribute('href')}")
    assert download.status == 200
    assert download.headers["content-type"] == "application/pdf"
    assert download.body().startswith(b"%PDF-")
    assert_accessible(page, "advance directives (filled)")

    # organ donation: a partial refusal without organs, then with the corneas
    page.goto(f"{hygie.base}/ens/profil/don-organes")
    assert_accessible(page, "organ donation (empty)")
    choose(page, "position-2")
    submit(page, "main form")
    assert "Cochez les organes" in page.locator("#organes-erreur").inner_text()
    assert_accessible(page, "organ donation (errors)")
    choose(page, "position-2")
    choose(page, "organe-cornees")
    submit(page, "main form")
    page.wait_for_url(re.compile(r".*/ens/profil#don$"))
    assert "Je refuse le prélèvement de certains organes ou tissus" in page.content()
    assert "(cornées)" in page.content()

    page.goto(f"{hygie.base}/ens/profil")
    assert_accessible(page, "profile (filled)")
    page.screenshot(path=str(shots / "ens-profil.png"), full_page=True)


async def _update(hygie: LiveHygie, resource: dict[str, Any]) -> None:
    from hygie.domain.access import Caller
    from hygie.fhir.request import FhirRequest
    from hygie.fhir.router import route

    request = FhirRequest(
        "PUT", f"Patient/{resource['id']}", resource=resource, caller=Caller.operator("tests/e2e")
    )
    response = await route(hygie.runtime.service, request)
    assert response.status == 200, response.body


def _related(hygie: LiveHygie, patient_id: str, family: str) -> dict[str, Any]:
    from hygie.fhir.search import parse_search

    async def find() -> dict[str, Any]:
        query = parse_search("RelatedPerson", [("patient", patient_id)])
        async with hygie.runtime.store.transaction() as tx:
            keys = await tx.search_keys(query, 10)
        for _, rid in keys:
            row = await hygie.runtime.store.read("RelatedPerson", rid)
            if row is not None and family in row.content.decode():
                return dict(orjson.loads(row.content))
        raise AssertionError(f"no RelatedPerson {family}")

    return hygie.call(find())


def test_a_trusted_person_gets_access_only_when_chosen(page: Any, hygie: LiveHygie, citizen: Citizen) -> None:
    sign_in_at(page, hygie, citizen, "/ens/profil/personne-de-confiance")
    page.fill("#nom", "Benali")
    page.fill("#prenom", "Nadia")
    page.select_option("#lien", "SIB")
    page.fill("#courriel", "nadia@example.fr")
    choose(page, "acces-2")  # "Oui"
    submit(page, "main form")
    page.wait_for_url(re.compile(r".*/ens/profil#proches$"))
    row = page.locator("table", has_text="Mes proches").locator("tbody tr", has_text="Nadia BENALI")
    assert row.locator("td").nth(2).inner_text() == "Oui, comme aidant"
    benali = _related(hygie, citizen.patient_id, "BENALI")
    assert [r.kind for r in relations_from(benali)] == ["aidant"]
    # only one trusted person at a time
    page.goto(f"{hygie.base}/ens/profil/personne-de-confiance")
    assert "Vous avez déjà désigné Nadia BENALI" in page.content()
    # removed, after a confirmation
    page.goto(f"{hygie.base}/ens/profil")
    page.click("text=Retirer Nadia BENALI")
    assert_accessible(page, "remove the trusted person")
    submit(page, "main form")
    page.wait_for_url(re.compile(r".*/ens/profil#proches$"))
    assert (
        "Nadia BENALI"
        not in page.locator("main").inner_text().split("n’est plus votre personne de confiance")[-1]
    )


# --------------------------------------------------------------------------- the carnet
def test_a_citizen_keeps_their_carnet(page: Any, hygie: LiveHygie, citizen: Citizen, shots: Path) -> None:
    allergy_id = professional_allergy(hygie, citizen.patient_id)
    sign_in_at(page, hygie, citizen, "/ens/carnet")
    assert page.locator("h1").inner_text() == "Carnet de santé"
    assert_accessible(page, "carnet")
    row = page.locator("#allergie + .fr-table tbody tr", has_text="Pénicilline")
    assert "Enregistré par Dr Paul BERNARD" in row.inner_text()
    assert row.locator("a", has_text="Modifier").count() == 0
    assert "Non modifiable" in row.inner_text()

    # an allergy of her own: a future date is refused, the rest is kept
    page.click("text=Ajouter une allergie ou une intolérance")
    assert_accessible(page, "add an allergy (empty)")
    page.select_option("#substance", "arachide")
    choose(page, "type-1")
    choose(page, "gravite-2")
    page.fill("#debut", "2999-01-01")
    submit(page, "main form")
    assert "ne peut pas être dans le futur" in page.locator("#debut-erreur").inner_text()
    assert page.input_value("#substance") == "arachide"
    assert_accessible(page, "add an allergy (errors)")
    page.fill("#debut", "2010-06-01")
    page.fill("#reaction", "Gonflement des lèvres")
    submit(page, "main form")
    page.wait_for_url(re.compile(r".*/ens/carnet#allergie$"))
    own = page.locator("#allergie + .fr-table tbody tr", has_text="Arachide")
    assert "Ajouté par vous" in own.text_content()
    assert own.locator("a", has_text="Modifier").count() == 1
    # she changes it
    own.locator("a", has_text="Modifier").click()
    assert page.input_value("#reaction") == "Gonflement des lèvres"
    page.fill("#reaction", "Œdème de Quincke")
    submit(page, "main form")
    page.wait_for_url(re.compile(r".*/ens/carnet#allergie$"))
    assert "Œdème de Quincke" in page.content()

    # an unknown code is refused
    response = forged_post(
        page,
        hygie,
        "/ens/carnet/allergie/ajouter",
        {"substance": "kryptonite", "type": "allergy", "gravite": "low"},
    )
    assert response.status == 400
    assert "dans la liste" in response.text()

    # a vaccination: the MMR dose of her childhood; the schedule says what is late
    page.goto(f"{hygie.base}/ens/carnet/vaccin/ajouter")
    page.select_option("#vaccin", "J07BD52")
    page.fill("#date", "1986-05-02")
    submit(page, "main form")
    page.wait_for_url(f"{hygie.base}/ens/carnet/vaccins")
    assert_accessible(page, "vaccinations")
    pending = page.locator("table", has_text="Vaccinations à faire")
    mmr = pending.locator("tbody tr", has_text="Rougeole")
    assert "2e dose" in mmr.text_content() and "En retard" in mmr.text_content()
    booster = pending.locator("tbody tr", has_text="Rappel de 25 ans")
    assert "En retard" in booster.text_content()
    history = page.locator("table", has_text="Vaccinations reçues")
    assert "Ajouté par vous" in history.text_content()

    page.goto(f"{hygie.base}/ens/carnet")
    page.screenshot(path=str(shots / "ens-carnet.png"), full_page=True)

    # the professional's allergy: no form, and a forged change or removal is refused
    page.goto(f"{hygie.base}/ens/carnet/allergie/{allergy_id}/modifier")
    assert "enregistrée par un professionnel" in page.content()
    assert_accessible(page, "a professional's entry")
    changed = forged_post(
        page,
        hygie,
        f"/ens/carnet/allergie/{allergy_id}/modifier",
        {"substance": "pollens", "type": "allergy", "gravite": "low"},
    )
    # refused by the access rules (the handler does not pre-check): "entries from professionals
    # are read-only for the patient"
    assert changed.status == 403
    removed = forged_post(page, hygie, f"/ens/carnet/allergie/{allergy_id}/supprimer", {})
    assert removed.status == 403
    version, allergy = stored(hygie, "AllergyIntolerance", allergy_id)
    assert version == 1 and allergy["code"]["text"] == "Pénicilline"


def test_another_persons_entries_stay_out_of_reach(page: Any, hygie: LiveHygie, citizen: Citizen) -> None:
    other = new_citizen(hygie, family="ROSSI", given="Paul", birth_date="1948-03-02")
    theirs = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "Condition",
                "code": {"text": "Diabète"},
                "subject": {"reference": f"Patient/{other.patient_id}"},
                "recorder": {"reference": f"Patient/{other.patient_id}"},
            },
        )
    )
    sign_in_at(page, hygie, citizen, "/ens/carnet")
    for path in (f"/ens/carnet/antecedent/{theirs}/modifier", f"/ens/carnet/antecedent/{theirs}/supprimer"):
        response = page.goto(f"{hygie.base}{path}")
        assert response is not None and response.status in (403, 404)
        assert "Diabète" not in page.content()
    forged = forged_post(page, hygie, f"/ens/carnet/antecedent/{theirs}/supprimer", {})
    assert forged.status in (403, 404)
    assert stored(hygie, "Condition", theirs)[0] == 1
    response = page.goto(f"{hygie.base}/ens/carnet/inconnu/ajouter")
    assert response is not None and response.status == 404
