"""Identifying a patient in the professionals' portal, entering the care relation, checking the
identity — in the browser, through INSi (the reference register of the e2e server's data folder).

Chloé MOREAU is in the register and has a record carrying her INS (provisional identity); Dr
BERNARD has no relation with her.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from playwright.sync_api import expect
from test_bsp_record import sign_in_pro

from browser import assert_accessible, screenshots_dir
from conftest import LiveHygie, People, create_resource
from hygie.domain.identity.fr_core import Ins, InsTraits, patient_from_traits
from hygie.domain.identity.insi import RegisterEntry, RegisterInsiService
from hygie.domain.identity.nir import build_nir
from hygie.domain.identity.status import IdentityState

CHLOE = InsTraits("MOREAU", ("Chloé",), "female", date(1979, 5, 23), "35238")
CHLOE_INS = Ins(build_nir("female", 1979, 5, "35238", 77))


@pytest.fixture(scope="module")
def chloe(hygie: LiveHygie) -> str:
    RegisterInsiService.from_entries([RegisterEntry(CHLOE_INS, CHLOE)]).save(
        hygie.runtime.settings.insi_register_path
    )
    record = patient_from_traits(CHLOE, CHLOE_INS, IdentityState(), patient_id="chloe-moreau")
    record.pop("id", None)
    return hygie.call(create_resource(hygie.runtime, record))


def test_identify_by_ins_declare_care_and_qualify(
    page: Any, hygie: LiveHygie, people: People, chloe: str, tmp_path: Any
) -> None:
    shots = screenshots_dir(tmp_path)
    sign_in_pro(page, hygie, people, "/bsp/patients")
    assert_accessible(page, "patients and identification")
    # the INS alone is not enough: the birth date is asked, what was typed stays
    page.fill("#ins", CHLOE_INS.matricule)
    page.get_by_role("button", name="Identifier").click()
    expect(page.locator("#naissance_ins-erreur")).to_contain_text("date de naissance")
    assert page.input_value("#ins") == CHLOE_INS.matricule
    assert_accessible(page, "identification with an error")

    page.fill("#naissance_ins", "1979-05-23")
    page.get_by_role("button", name="Identifier").click()
    page.wait_for_url(f"{hygie.base}/bsp/identification/*")
    expect(page.locator("#resultat-insi")).to_contain_text("INSi")
    card = page.locator(".fr-card", has_text="Chloé MOREAU")
    expect(card).to_contain_text("identité provisoire")
    expect(card).to_contain_text("Aucune relation de soins")
    assert_accessible(page, "identification result")
    page.screenshot(path=str(shots / "bsp-identification.png"), full_page=True)

    card.get_by_role("button", name="Accès au dossier de Chloé MOREAU").click()
    page.wait_for_url(f"{hygie.base}/bsp/patients/{chloe}/acces")
    expect(page.locator("#bandeau-patient-nom")).to_have_text("Chloé MOREAU")
    expect(page.locator("#statut-identite")).to_have_text("identité provisoire")
    page.check("#attestation-patient-present", force=True)
    page.fill("#raison", "Consultation pour une angine")
    page.get_by_role("button", name="J’atteste l’accord du patient").click()
    page.wait_for_url(f"{hygie.base}/bsp/patients/{chloe}")
    expect(page.locator(".fr-alert--success")).to_contain_text("Relation de soins enregistrée")
    assert_accessible(page, "record opened after the declaration")

    # the identity document was checked and INSi confirms: the identity becomes qualified
    page.get_by_role("link", name="Vérifier l’identité").click()
    page.wait_for_url(f"{hygie.base}/bsp/patients/{chloe}/identite")
    assert_accessible(page, "identity check")
    page.select_option("#mode", "CN")
    page.check("#insi", force=True)
    page.get_by_role("button", name="Enregistrer la vérification").click()
    page.wait_for_url(f"{hygie.base}/bsp/patients/{chloe}")
    expect(page.locator("#statut-identite")).to_have_text("identité qualifiée")
    page.screenshot(path=str(shots / "bsp-synthese.png"), full_page=True)
