"""The citizen portal's frame: sign-in and back, the home page, spaces of relatives, the door.

Each page visited is checked with axe-core (``tests/browser.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from browser import assert_accessible, fill_sign_in, screenshots_dir

LiveHygie = Citizen = Any


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def test_a_citizen_signs_in_and_lands_on_their_space(
    page: Any, hygie: LiveHygie, citizen: Citizen, shots: Path
) -> None:
    page.goto(f"{hygie.base}/ens?depuis=test")
    # not signed in: the sign-in page, then back to the page asked for
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_url(f"{hygie.base}/ens?depuis=test")
    assert page.locator("h1").inner_text().startswith("Bonjour Claire")
    assert page.locator(".fr-tile").count() >= 10
    # what needs attention: an adult with no vaccination recorded has boosters to do
    to_do = page.locator(".fr-callout a[href='/ens/carnet/vaccins']")
    assert "vaccination" in to_do.inner_text()
    assert_accessible(page, "ENS home")
    page.screenshot(path=str(shots / "ens-accueil.png"), full_page=True)


def test_a_page_of_the_portal_needs_a_citizen_session(page: Any, hygie: LiveHygie) -> None:
    page.goto(f"{hygie.base}/ens")
    assert "/connexion?retour=%2Fens" in page.url


def test_on_a_phone_the_menu_folds_and_every_service_stays_one_tap_away(
    page: Any, hygie: LiveHygie, citizen: Citizen, shots: Path
) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(f"{hygie.base}/ens")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_url(f"{hygie.base}/ens")
    menu_button = page.locator("#bouton-menu-ens")
    assert menu_button.is_visible()
    assert not page.locator("#navigation-ens").is_visible()  # folded behind "Menu"
    # without opening the menu, the tiles lead to every service
    assert page.locator(".fr-tile a").count() == 15
    assert_accessible(page, "ENS home on a phone")
    page.screenshot(path=str(shots / "ens-accueil-mobile.png"), full_page=False)
    menu_button.click()
    page.wait_for_selector("#navigation-ens", state="visible")
    assert_accessible(page, "ENS menu on a phone")
    page.locator("#navigation-ens a[href='/ens/documents']").click()
    page.wait_for_url(f"{hygie.base}/ens/documents")
