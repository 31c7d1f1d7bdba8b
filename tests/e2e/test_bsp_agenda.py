"""BSP « Agenda » in the browser: a tele-expertise asked about a patient and answered by a colleague
who had never opened her record (both follow its state); a teleconsultation scheduled with a
patient, in the professional's agenda and the patient's, each with the link of its video room.

Every page is checked with axe-core. The video service is the referenced one the platform is
configured with (``HYGIE_VIDEO_SERVICE_URL``): nothing is asked of it, each appointment gets its
own room under its address.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from bsp_seed import doctor, in_care_team, sign_in_as, stored
from ens_seed import seed_professional_document
from playwright.sync_api import expect

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import LiveHygie, new_citizen
from hygie.domain.access import Caller
from hygie.web.portal.door import Door

VIDEO = "https://visio.sante.example/salle"


@pytest.fixture(scope="module", autouse=True)
def video_service() -> Iterator[None]:
    """The platform's referenced video service, set before the module's server starts."""
    before = os.environ.get("HYGIE_VIDEO_SERVICE_URL")
    os.environ["HYGIE_VIDEO_SERVICE_URL"] = VIDEO
    yield
    if before is None:
        os.environ.pop("HYGIE_VIDEO_SERVICE_URL", None)
    else:
        os.environ["HYGIE_VIDEO_SERVICE_URL"] = before


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def test_a_tele_expertise_is_asked_and_answered(page: Any, hygie: LiveHygie, shots: Path) -> None:
    durand = hygie.patients["durand"]
    expert = doctor(hygie, "GARNIER", "Hélène", structure="CHU de Rennes — dermatologie")
    photo = seed_professional_document(hygie, durand, "Photographie de la lésion")

    sign_in_as(page, hygie, hygie.practitioner, "/bsp/agenda")
    expect(page.locator("h1")).to_have_text("Agenda")
    assert_accessible(page, "empty agenda")
    page.get_by_role("link", name="Demander une télé-expertise").click()
    page.wait_for_url(f"{hygie.base}/bsp/agenda/tele-expertise/nouvelle")
    page.fill("#qui", "GARNIER")
    page.get_by_role("button", name="Chercher dans l’annuaire").click()
    expect(page.locator("#resultats-annuaire li")).to_have_count(1)
    page.locator("#resultats-annuaire li").first.get_by_role("link").click()
    expect(page.locator("#expert-choisi")).to_contain_text("GARNIER")
    page.select_option("#patient", durand)
    page.get_by_role("button", name="Choisir ce patient").click()
    expect(page.locator("#patient-choisi")).to_contain_text("Léa DURAND")
    assert_accessible(page, "tele-expertise form")

    # without the question and the patient's consent, nothing is sent
    page.get_by_role("button", name="Envoyer la demande").click()
    expect(page.locator("#question-erreur")).to_be_visible()
    expect(page.locator("#consentement-erreur")).to_contain_text("accord du patient")
    assert_accessible(page, "tele-expertise form with errors")
    page.fill("#question", "Lésion pigmentée du dos apparue il y a 3 mois : faut-il l’exciser ?")
    page.check("#priorite-urgent", force=True)
    page.check(f"#document-{photo}", force=True)
    page.check("#consentement", force=True)
    page.screenshot(path=str(shots / "bsp-agenda-demande.png"), full_page=True)
    page.get_by_role("button", name="Envoyer la demande").click()
    page.wait_for_url(lambda url: "/bsp/agenda/tele-expertise/" in url and "nouvelle" not in url)
    task_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#etat-demande")).to_have_text("En attente de réponse")
    assert_accessible(page, "the request as its requester sees it")

    # as stored: the Task in Léa's record and the act that opens it to the colleague
    task = stored(hygie, "Task", task_id)
    assert task["owner"]["reference"] == f"Practitioner/{expert}"
    assert task["for"]["reference"] == f"Patient/{durand}"
    encounter_id = task["encounter"]["reference"].split("/", 1)[1]
    assert stored(hygie, "Encounter", encounter_id)["status"] == "planned"

    # the colleague: told on her home page; the request waits first in her agenda
    sign_in_as(page, hygie, expert)
    page.get_by_role("link", name="1 demande de télé-expertise en attente de votre avis").click()
    page.wait_for_url(f"{hygie.base}/bsp/agenda")
    row = page.locator("#demandes-recues tbody tr").first
    expect(row).to_contain_text("Léa DURAND")
    expect(row).to_contain_text("En attente de réponse")
    assert_accessible(page, "agenda with a request received")
    row.get_by_role("link").click()
    page.wait_for_url(f"{hygie.base}/bsp/agenda/tele-expertise/{task_id}")
    expect(page.locator("#question")).to_contain_text("faut-il l’exciser")
    # the act opens Léa's record to her: the document asked about opens
    document = page.request.get(f"{hygie.base}/bsp/patients/{durand}/documents/{photo}/fichier")
    assert document.status == 200 and document.body().startswith(b"%PDF-")
    page.get_by_role("button", name="Envoyer mon avis").click()
    expect(page.locator("#avis-erreur")).to_contain_text("Rédigez votre avis")
    assert_accessible(page, "answer form with an error")
    page.fill("#avis", "Aspect de nævus atypique : exérèse avec examen anatomopathologique.")
    page.screenshot(path=str(shots / "bsp-agenda-avis.png"), full_page=True)
    page.get_by_role("button", name="Envoyer mon avis").click()
    expect(page.locator(".fr-alert--success")).to_contain_text("Votre avis a été transmis")
    expect(page.locator("#etat-demande")).to_have_text("Avis rendu")
    assert stored(hygie, "Task", task_id)["status"] == "completed"
    act = stored(hygie, "Encounter", encounter_id)
    assert act["status"] == "finished" and act["period"]["end"]

    # the requester sees the state and the opinion
    sign_in_as(page, hygie, hygie.practitioner, "/bsp/agenda")
    row = page.locator("#demandes-envoyees tbody tr").first
    expect(row).to_contain_text("Avis rendu")
    row.get_by_role("link").click()
    expect(page.locator("#avis-rendu")).to_contain_text("exérèse")
    assert_accessible(page, "the answered request")


def test_a_teleconsultation_is_in_both_agendas_with_its_link(
    page: Any, hygie: LiveHygie, shots: Path
) -> None:
    julie = new_citizen(hygie, family="FABRE", given="Julie")
    in_care_team(hygie, julie.patient_id, hygie.practitioner)
    tomorrow = (datetime.now(ZoneInfo("Europe/Paris")) + timedelta(days=1)).date()

    sign_in_as(page, hygie, hygie.practitioner, "/bsp/agenda")
    page.get_by_role("link", name="Programmer une téléconsultation").click()
    page.wait_for_url(f"{hygie.base}/bsp/agenda/teleconsultation")
    assert_accessible(page, "teleconsultation form")
    page.select_option("#patient", julie.patient_id)
    page.fill("#date", "2020-01-01")
    page.fill("#heure", "10:30")
    page.get_by_role("button", name="Programmer la téléconsultation").click()
    expect(page.locator("#date-erreur")).to_contain_text("dans le futur")
    assert_accessible(page, "teleconsultation form with an error")
    page.fill("#date", tomorrow.isoformat())
    page.select_option("#duree", "20")
    page.fill("#motif", "Suivi de la tension")
    page.get_by_role("button", name="Programmer la téléconsultation").click()
    page.wait_for_url(f"{hygie.base}/bsp/agenda")
    expect(page.locator(".fr-alert--success")).to_contain_text("Téléconsultation programmée avec Julie FABRE")
    item = page.locator("#teleconsultations li").filter(has_text="Julie FABRE")
    expect(item).to_contain_text("10h30 – 10h50")
    expect(page.locator("#teleconsultations")).to_contain_text("Demain")
    link = item.get_by_role("link", name="Rejoindre")
    room = link.get_attribute("href")
    assert room is not None and room.startswith(f"{VIDEO}/") and len(room) > len(VIDEO) + 16
    page.screenshot(path=str(shots / "bsp-agenda.png"), full_page=True)
    assert_accessible(page, "agenda with a teleconsultation")

    appointments = hygie.call(
        Door(hygie.runtime.service).search(
            Caller.operator("tests"), "Appointment", [("patient", julie.patient_id)]
        )
    )
    assert len(appointments) == 1 and appointments[0]["status"] == "booked"
    assert room in appointments[0]["patientInstruction"]

    # the patient's agenda shows it with the same room
    page.context.clear_cookies()
    page.goto(f"{hygie.base}/ens/agenda")
    fill_sign_in(page, julie.login, julie.password)
    page.wait_for_url(f"{hygie.base}/ens/agenda")
    event = page.locator(f"#rdv-{appointments[0]['id']}")
    expect(event).to_contain_text("Téléconsultation avec Dr Paul BERNARD")
    assert event.get_by_role("link", name="Rejoindre la téléconsultation").get_attribute("href") == room
    assert_accessible(page, "the patient's agenda with a teleconsultation")
    event.get_by_role("link", name="Téléconsultation avec Dr Paul BERNARD", exact=True).click()
    expect(page.locator("#lien-video")).to_have_attribute("href", room)
    assert_accessible(page, "the teleconsultation in the patient's agenda")
