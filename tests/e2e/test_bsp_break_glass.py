"""A cardiologist with no relation to a patient is refused her record, then opens an emergency
access (break-glass) from the professionals' portal: the record opens for a few hours, the banner
says so, and the patient is told — by e-mail and in "Qui voit mon dossier" of her space.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from ens_seed import TRE_G15
from playwright.sync_api import expect

from browser import assert_accessible, fill_sign_in
from conftest import PASSWORD, LiveHygie, create_resource
from hygie.domain.access import Caller
from hygie.domain.identity.fr_core import Ins, InsTraits, patient_from_traits
from hygie.domain.identity.insi import RegisterEntry, RegisterInsiService
from hygie.domain.identity.nir import build_nir
from hygie.domain.identity.status import IdentityState

MARIE = InsTraits("LEGRAND", ("Marie",), "female", date(1950, 2, 11), "69123")
MARIE_INS = Ins(build_nir("female", 1950, 2, "69123", 31))
MARIE_MAIL = "marie.legrand@example.fr"


def _mail_to(hygie: LiveHygie, address: str) -> bool:
    """The patient's notice, still in the outbox or already handed to the demo's mail file."""
    outbox = hygie.runtime.outbox
    assert outbox is not None
    if any(m.to == address for m in hygie.call(outbox.pending(due_only=False))):
        return True
    mail = hygie.runtime.settings.data_dir / "mail.jsonl"
    if not mail.is_file():
        return False
    return any(orjson.loads(line).get("to") == address for line in mail.read_text().splitlines() if line)


def test_cardiologist_refused_then_break_glass_and_the_patient_is_told(page: Any, hygie: LiveHygie) -> None:
    entries = [RegisterEntry(MARIE_INS, MARIE)]
    path = hygie.runtime.settings.insi_register_path
    if path.is_file():  # other tests of this server keep their people in the register
        entries += list(RegisterInsiService.load(path))
    RegisterInsiService.from_entries(entries).save(path)
    record = patient_from_traits(MARIE, MARIE_INS, IdentityState(), patient_id="x")
    record.pop("id", None)
    record["telecom"] = [{"system": "email", "value": MARIE_MAIL}]
    marie = hygie.call(create_resource(hygie.runtime, record))
    cardiologist = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "Practitioner",
                "active": True,
                "name": [{"use": "usual", "family": "COEUR", "given": ["Inès"], "prefix": ["Dr"]}],
                "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": "10"}]}}],
            },
        )
    )
    accounts = hygie.runtime.accounts
    assert accounts is not None
    login = f"ines.coeur.{time.monotonic_ns()}@example.fr"
    _, uri = hygie.call(
        accounts.create("professional", login, PASSWORD, totp=True, practitioner_id=cardiologist)
    )
    assert uri is not None
    secret = parse_qs(urlsplit(uri).query)["secret"][0]

    page.goto(f"{hygie.base}/bsp")
    fill_sign_in(page, login, PASSWORD, secret)
    page.wait_for_url(f"{hygie.base}/bsp")
    # her record is not open to a professional without a relation
    response = page.goto(f"{hygie.base}/bsp/patients/{marie}")
    assert response is not None and response.status == 404
    page.goto(f"{hygie.base}/bsp/patients")
    page.fill("#nom", "LEGRAND")
    page.fill("#prenom", "Marie")
    page.fill("#naissance", "1950-02-11")
    page.select_option("#sexe", "female")
    page.get_by_role("button", name="Identifier").click()
    page.wait_for_url(f"{hygie.base}/bsp/identification/*")
    card = page.locator(".fr-card", has_text="Marie LEGRAND")
    expect(card).to_contain_text("Aucune relation de soins")
    card.get_by_role("button", name="Accès au dossier de Marie LEGRAND").click()
    page.wait_for_url(f"{hygie.base}/bsp/patients/{marie}/acces")
    expect(page.locator("#etat-acces")).to_contain_text("pas de relation de soins")

    page.select_option("#motif", "PATIENT_INCONSCIENT")
    page.fill("#justification", "Patiente inconsciente aux urgences, antécédents cardiaques à vérifier")
    page.fill("#duree", "2")
    page.check("#compris", force=True)
    page.get_by_role("button", name="Ouvrir l’accès en urgence").click()
    page.wait_for_url(f"{hygie.base}/bsp/patients/{marie}")
    expect(page.locator(".fr-alert--success")).to_contain_text("Accès en urgence ouvert")
    expect(page.locator("#bandeau-patient")).to_contain_text("accès en urgence")
    assert_accessible(page, "record under break-glass")

    # the patient is told: an e-mail, and the access in her history, marked as an emergency
    assert _mail_to(hygie, MARIE_MAIL)
    from hygie.web.portal.door import Door

    history = hygie.call(
        Door(hygie.runtime.service).operation(
            Caller.operator("tests"), "GET", f"Patient/{marie}/$access-history"
        )
    )
    events = [e["resource"] for e in history.get("entry", [])]
    assert any(
        "BTG" in orjson.dumps(e).decode() and any(cardiologist in str(a) for a in e.get("agent", []))
        for e in events
    ), "the emergency access is in the patient's access history"
