"""ENS « Agenda »: a professional's appointment, a personal one added, changed and deleted,
the month view, prevention reminders, and the private iCalendar feed (fetched without a session,
parsed with ``icalendar``, then revoked).

Every page state is checked with axe-core; ``ens-agenda.png`` feeds the user guide.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import icalendar
import pytest

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import create_resource, new_citizen
from hygie.domain.access import Caller
from hygie.web.portal.door import Door

LiveHygie = Citizen = Any


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def _appointments(hygie: LiveHygie, patient_id: str) -> list[dict[str, Any]]:
    door = Door(hygie.runtime.service)
    return hygie.call(door.search(Caller.operator("tests"), "Appointment", [("patient", patient_id)]))


def _audited(hygie: LiveHygie, patient_id: str) -> list[dict[str, Any]]:
    page = hygie.call(hygie.runtime.audit.list_for_patient(patient_id, count=500))
    return [r.entry.event() for r in page.records]


def test_appointments_a_personal_entry_the_month_and_the_calendar_feed(
    page: Any, hygie: LiveHygie, shots: Path
) -> None:
    # 52 years old: colorectal, breast and cervical screenings concern her
    citizen = new_citizen(hygie, family="LEROY", given="Sophie", birth_date="1974-03-02")
    soon = date.today() + timedelta(days=6)
    seen = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "Appointment",
                "status": "booked",
                "description": "Consultation de suivi",
                "start": f"{soon.isoformat()}T10:00:00+01:00",
                "end": f"{soon.isoformat()}T10:20:00+01:00",
                "participant": [
                    {"actor": {"reference": f"Practitioner/{hygie.practitioner}"}, "status": "accepted"},
                    {"actor": {"reference": f"Patient/{citizen.patient_id}"}, "status": "accepted"},
                ],
            },
        )
    )
    page.goto(f"{hygie.base}/ens/agenda")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_url(f"{hygie.base}/ens/agenda")
    upcoming = page.locator("#a-venir").inner_text()
    assert "Consultation de suivi" in upcoming and "Avec Dr Paul BERNARD" in upcoming
    reminders = page.locator("main").inner_text()
    assert "Dépistage du cancer colorectal" in reminders
    assert "Dépistage du cancer du sein" in reminders
    assert "Dépistage du cancer du col de l’utérus" in reminders
    assert_accessible(page, "agenda")

    # the professional's appointment is read-only
    page.locator(f"#rdv-{seen} a").click()
    page.wait_for_url(f"{hygie.base}/ens/agenda/rdv/{seen}")
    assert "contactez le cabinet" in page.locator("main").inner_text()
    assert page.locator("form[action^='/ens/agenda/rdv']").count() == 0
    assert_accessible(page, "professional appointment")
    page.goto(f"{hygie.base}/ens/agenda/nouveau")
    csrf = page.locator("input[name=csrf]").first.input_value()
    response = page.request.post(
        f"{hygie.base}/ens/agenda/rdv/{seen}",
        form={
            "csrf": csrf,
            "jeton": "j-pro",
            "objet": "Piraté",
            "date": soon.isoformat(),
            "debut": "08:00",
            "fin": "09:00",
        },
    )
    assert response.status == 403
    assert _appointments(hygie, citizen.patient_id)[0]["description"] == "Consultation de suivi"

    # a personal appointment: the end before the start is refused, values kept
    day = date.today() + timedelta(days=12)
    page.fill("#objet", "Dentiste")
    page.fill("#date", day.isoformat())
    page.fill("#debut", "14:30")
    page.fill("#fin", "14:00")
    page.fill("#lieu", "Cabinet dentaire, 3 rue des Lilas")
    page.get_by_role("button", name="Ajouter à mon agenda").click()
    assert page.locator("#fin-erreur").inner_text() == "L’heure de fin doit être après l’heure de début."
    assert page.input_value("#objet") == "Dentiste" and page.input_value("#lieu").startswith("Cabinet")
    assert_accessible(page, "new appointment (errors)")
    page.fill("#fin", "15:00")
    page.get_by_role("button", name="Ajouter à mon agenda").click()
    page.wait_for_selector(".fr-alert--success")
    assert "Dentiste" in page.locator("#a-venir").inner_text()
    assert "Ajouté par vous" in page.locator("#a-venir").inner_text()
    mine = next(a for a in _appointments(hygie, citizen.patient_id) if a["id"] != seen)
    assert mine["start"].startswith(f"{day.isoformat()}T14:30")
    assert mine["participant"][0]["actor"]["reference"] == f"Patient/{citizen.patient_id}"

    # changed
    page.locator(f"#rdv-{mine['id']} a").click()
    page.fill("#objet", "Dentiste (contrôle)")
    assert_accessible(page, "personal appointment")
    page.get_by_role("button", name="Enregistrer les modifications").click()
    page.wait_for_selector(".fr-alert--success")
    assert page.input_value("#objet") == "Dentiste (contrôle)"

    # the month view: a table, one link per appointment, reachable with the keyboard
    page.goto(f"{hygie.base}/ens/agenda?vue=mois&mois={day.strftime('%Y-%m')}")
    month = page.locator("#calendrier")
    assert "Dentiste (contrôle)" in month.inner_text()
    assert month.locator("th[scope=col]").count() == 7
    link = month.locator("a", has_text="Dentiste (contrôle)")
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{hygie.base}/ens/agenda/rdv/{mine['id']}")
    page.go_back()
    assert_accessible(page, "agenda (month)")
    page.screenshot(path=str(shots / "ens-agenda-mois.png"), full_page=True)

    # subscribe: the address is shown once, works without a session, and is audited
    page.goto(f"{hygie.base}/ens/agenda")
    page.get_by_role("button", name="Créer mon adresse d’abonnement").click()
    page.wait_for_selector("#flux")
    url = page.input_value("#flux")
    assert url.startswith(f"{hygie.base}/ens/agenda/flux/") and url.endswith(".ics")
    assert_accessible(page, "agenda (feed address)")
    page.screenshot(path=str(shots / "ens-agenda.png"), full_page=True)
    before = len(_audited(hygie, citizen.patient_id))
    fetched = httpx.get(url)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(fetched.content)
    events = {str(e.get("summary")): e for e in calendar.walk("VEVENT")}
    assert "Consultation de suivi" in events and "Dentiste (contrôle)" in events
    assert events["Dentiste (contrôle)"].get("location") == "Cabinet dentaire, 3 rue des Lilas"
    start = events["Consultation de suivi"].decoded("dtstart")
    assert isinstance(start, datetime) and start.date() == soon
    assert any(s.startswith("Rappel : Dépistage du cancer colorectal") for s in events)
    after = _audited(hygie, citizen.patient_id)
    assert len(after) > before  # the feed's reads are in the person's access history
    page.reload()
    assert page.locator("#flux").count() == 0  # shown once
    assert "Une adresse d’abonnement est active depuis le" in page.locator("main").inner_text()

    # regenerate: the old address stops working; revoke: the new one too
    page.get_by_role("button", name="Créer une nouvelle adresse (l’ancienne ne marchera plus)").click()
    page.wait_for_selector("#flux")
    second = page.input_value("#flux")
    assert second != url
    assert httpx.get(url).status_code == 404
    assert httpx.get(second).status_code == 200
    page.get_by_role("button", name="Révoquer l’adresse").click()
    page.wait_for_selector(".fr-alert--success")
    assert httpx.get(second).status_code == 404
    assert_accessible(page, "agenda (feed revoked)")

    # deleted, after a confirmation
    page.goto(f"{hygie.base}/ens/agenda/rdv/{mine['id']}")
    page.get_by_role("link", name="Supprimer ce rendez-vous").click()
    assert_accessible(page, "delete confirmation")
    page.get_by_role("button", name="Oui, supprimer").click()
    page.wait_for_selector(".fr-alert--success")
    assert "Dentiste" not in page.locator("#a-venir").inner_text()
    assert [a["id"] for a in _appointments(hygie, citizen.patient_id)] == [seen]

    # another citizen: the appointment's address is a 404 page
    other = new_citizen(hygie, family="GIRARD", given="Lucas", birth_date="2001-06-01")
    page.context.clear_cookies()
    page.goto(f"{hygie.base}/ens/agenda/rdv/{seen}")
    fill_sign_in(page, other.login, other.password)
    page.wait_for_url(f"{hygie.base}/ens/agenda/rdv/{seen}")
    assert "Consultation de suivi" not in page.locator("main").inner_text()
    assert page.locator("h1").inner_text() == "Impossible d’afficher la page"
    assert_accessible(page, "appointment of someone else")
