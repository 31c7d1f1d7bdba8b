"""The citizen's health directory (``/ens/annuaire``) on the demo directory, in a browser.

The live server holds the demo directory (``demo/directory.py``, the seed of ``hygie demo``):
its structures have Locations with positions, and the search runs ``Location.near`` through the
FHIR API's router. The gazetteer reads the full INSEE commune list (``tests/conftest.py`` points
``HYGIE_COMMUNES_CSV`` at the shared data). Every state of the page is checked with axe-core.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import create_resource
from hygie.demo.directory import Directory

LiveHygie = Citizen = Any

DEMO_SEED = 2026  # the seed of `hygie demo` (demo/loader.py)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def _km(badge: str) -> float:
    """``à 1,2 km`` → 1.2, ``à 800 m`` → 0.8."""
    number, unit = re.fullmatch(r"à ([\d,]+) (km|m)", badge.strip()).groups()  # type: ignore[union-attr]
    value = float(number.replace(",", "."))
    return value if unit == "km" else value / 1000


def _search(page: Any, hygie: LiveHygie, *, who: str = "", where: str = "", radius: str = "20") -> None:
    page.fill("#qui", who)
    page.fill("#ou", where)
    page.select_option("#rayon", radius)
    page.locator("#recherche-annuaire button[type=submit]").click()


def test_lyon_nearest_first_without_mailboxes(
    page: Any, hygie: LiveHygie, citizen: Citizen, directory: Directory, shots: Path
) -> None:
    page.goto(f"{hygie.base}/ens/annuaire")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_url(f"{hygie.base}/ens/annuaire")
    assert page.locator("h1").inner_text() == "Annuaire santé"
    assert page.locator("#liste-annuaire").count() == 0  # nothing asked yet
    assert_accessible(page, "directory (empty form)")
    _search(page, hygie, where="Lyon", radius="20")
    page.wait_for_url(re.compile(r".*/ens/annuaire\?.*ou=Lyon.*"))
    expect_results = page.locator("#liste-annuaire > li")
    lyon = [c for c in directory.local if c.commune.city == "Lyon"]
    in_lyon = sum(len(c.structures) + len(c.professionals) for c in lyon)
    assert expect_results.count() == in_lyon  # the hub of the region (Saint-Étienne) is 50 km away
    heading = page.locator("#resultats").inner_text()
    assert heading == f"{in_lyon} résultats à moins de 20 km de Lyon"
    distances = [_km(b) for b in page.locator("#liste-annuaire .fr-badge--no-icon").all_text_contents()]
    assert len(distances) == in_lyon and distances == sorted(distances) and distances[-1] < 20
    addresses = page.locator("#liste-annuaire address").all_inner_texts()
    assert all(re.search(r"6900\d Lyon$", a) for a in addresses), addresses
    # a citizen sees phones, never the professionals' MSSanté mailboxes
    assert page.locator("#liste-annuaire a[href^='tel:']").count() > 0
    assert "mssante" not in page.content().lower()
    # the label of the digital professional, where the directory has it
    labelled = [p for c in lyon for p in c.professionals if _labelled(p)]
    assert page.locator("#liste-annuaire .fr-badge--info").count() == len(labelled)
    assert_accessible(page, "directory results around Lyon")
    page.screenshot(path=str(shots / "ens-annuaire.png"), full_page=True)

    # a wider radius reaches the region's hub, further away, after Lyon
    _search(page, hygie, who="cardiologue", where="Lyon", radius="100")
    page.wait_for_url(re.compile(r".*qui=cardiologue.*"))
    first = page.locator("#liste-annuaire > li").first
    assert "Cardiologie" in first.inner_text()
    assert _km(first.locator(".fr-badge--no-icon").text_content()) > 20


def _labelled(professional: Any) -> bool:
    from hygie.demo.directory import has_digital_label

    return has_digital_label(professional)


def test_a_care_team_doctor_who_accepts_messages_can_be_written_to(
    page: Any, hygie: LiveHygie, citizen: Citizen, directory: Directory, shots: Path
) -> None:
    lyon_3 = next(c for c in directory.local if c.commune.insee == "69383")
    doctor, nurse = lyon_3.professionals[0], lyon_3.professionals[1]
    # the doctor is in this citizen's care team; the nurse accepts messages too, but is not
    hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "CareTeam",
                "status": "active",
                "subject": {"reference": f"Patient/{citizen.patient_id}"},
                "participant": [{"member": {"reference": f"Practitioner/{doctor.id}"}}],
            },
        )
    )
    page.goto(f"{hygie.base}/ens/annuaire?ou=69003&rayon=5&messages=1")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_url(re.compile(r".*/ens/annuaire\?ou=69003.*"))
    assert page.locator("#messages").is_checked()
    results = page.locator("#liste-annuaire > li")
    assert results.count() > 0
    assert all("Accepte les messages" in t for t in results.all_text_contents())
    doctor_item = results.filter(has_text=doctor.family)
    nurse_item = results.filter(has_text=nurse.family)
    assert "Accepte les messages" in (nurse_item.text_content() or "")
    assert nurse_item.locator("a", has_text="Écrire un message").count() == 0
    assert "équipe de soins" in page.locator("#aide-ecrire").inner_text()
    assert_accessible(page, "directory, those who accept messages")
    page.screenshot(path=str(shots / "ens-annuaire-messages.png"), full_page=True)
    doctor_item.locator("a", has_text="Écrire un message").click()
    page.wait_for_url(re.compile(r".*/ens/messages/nouveau\?a=Practitioner%2F" + doctor.id))
    assert page.locator("#destinataire").input_value() == f"Practitioner/{doctor.id}"


def test_an_unknown_commune_is_said_and_what_was_typed_stays(
    page: Any, hygie: LiveHygie, citizen: Citizen, directory: Directory, shots: Path
) -> None:
    page.goto(f"{hygie.base}/ens/annuaire")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_url(f"{hygie.base}/ens/annuaire")
    _search(page, hygie, who="infirmière", where="Lyonn", radius="5")
    page.wait_for_url(re.compile(r".*ou=Lyonn.*"))
    error = page.locator("#ou-erreur")
    assert error.inner_text().startswith("Commune inconnue : « Lyonn »")
    assert page.locator("#ou").input_value() == "Lyonn"
    assert page.locator("#qui").input_value() == "infirmière"
    assert page.locator("#rayon").input_value() == "5"
    assert page.locator("#liste-annuaire").count() == 0
    assert_accessible(page, "directory with an unknown commune")
    page.screenshot(path=str(shots / "ens-annuaire-erreur.png"), full_page=True)
    # the same page answers 400 to the bare request
    response = page.goto(f"{hygie.base}/ens/annuaire?qui=&ou=Lyonn")
    assert response is not None and response.status == 400
    # an empty search says what to type
    response = page.goto(f"{hygie.base}/ens/annuaire?qui=&ou=")
    assert response is not None and response.status == 400
    assert "Indiquez un nom, une profession ou une commune." in page.locator("#qui-erreur").inner_text()
    assert_accessible(page, "directory with an empty search")
