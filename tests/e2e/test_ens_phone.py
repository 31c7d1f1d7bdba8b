"""Mon espace santé on a phone: every page of the space, at 375 pixels wide, with data in it.

Mobile first means more than a folded menu: on each page the layout stays inside the screen (no
sideways scrolling of the whole page — a wide table scrolls inside its own frame) and axe-core finds
no violation in that layout (a table that scrolls must be reachable with the keyboard, which only
shows once the screen is narrow enough for it to scroll).
"""

from __future__ import annotations

from typing import Any

from ens_seed import gp_accepting_messages, seed_professional_document

from browser import assert_accessible, fill_sign_in
from conftest import create_resource, weight

LiveHygie = Citizen = Any

PHONE = {"width": 375, "height": 740}

PAGES = (
    "/ens",
    "/ens/profil",
    "/ens/profil/directives",
    "/ens/carnet",
    "/ens/carnet/vaccins",
    "/ens/documents",
    "/ens/documents/ajouter",
    "/ens/mesures",
    "/ens/mesures/poids",
    "/ens/ordonnances",
    "/ens/agenda",
    "/ens/agenda/nouveau",
    "/ens/messages",
    "/ens/messages/nouveau",
    "/ens/alertes",
    "/ens/questionnaires",
    "/ens/controles",
    "/ens/controles/historique?qui=tous",
    "/ens/controles/partage",
    "/ens/export",
    "/ens/mon-espace",
    "/ens/mon-espace/fermer",
    "/ens/annuaire",
    "/ens/applications",
)


def _weights(hygie: LiveHygie, patient_id: str) -> None:
    for day, kg in (("2026-09-01", 71.5), ("2026-10-01", 72.4), ("2026-11-01", 73.0)):
        hygie.call(create_resource(hygie.runtime, weight(patient_id, f"{day}T08:30:00+01:00", kg)))


def test_every_page_of_the_space_fits_a_phone_and_passes_axe(
    page: Any, hygie: LiveHygie, citizen: Citizen
) -> None:
    seed_professional_document(hygie, citizen.patient_id, "Compte rendu de consultation de cardiologie")
    gp_accepting_messages(hygie)
    _weights(hygie, citizen.patient_id)
    page.set_viewport_size(PHONE)
    page.goto(f"{hygie.base}/ens")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_url(f"{hygie.base}/ens")
    # a document and the access history have lines: open the document once
    page.goto(f"{hygie.base}/ens/documents")
    page.locator("#table-documents a").first.click()
    page.wait_for_url(f"{hygie.base}/ens/documents/*")
    document_page = page.url.removeprefix(hygie.base)
    wide: list[str] = []
    for path in (*PAGES, document_page):
        response = page.goto(f"{hygie.base}{path}")
        assert response is not None and response.status == 200, f"{path}: HTTP {response and response.status}"
        assert_accessible(page, f"{path} on a phone")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            wide.append(f"{path} ({width} px)")
    assert not wide, "pages wider than the phone's screen: " + ", ".join(wide)
