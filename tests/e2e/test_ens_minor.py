"""A minor's space run by both legal representatives, in a browser.

Each parent's account acts as their RelatedPerson of the child (``link_related``): the space
switcher offers the child's space, where the parent acts as a legal representative. The
adolescent's confidential documents stay out of the parents' sight on every page: the home
page's recent documents, the export (Bundle and PDF), the access history.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from ens_seed import deny_consent, doctor_reads, text_document
from pypdf import PdfReader

from browser import assert_accessible, fill_sign_in, screenshots_dir

LiveHygie = Family = Citizen = Any


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def open_child_space(page: Any, hygie: LiveHygie, parent: Citizen, child_id: str) -> None:
    page.goto(f"{hygie.base}/ens")
    fill_sign_in(page, parent.login, parent.password)
    page.wait_for_url(f"{hygie.base}/ens")
    assert page.locator("#espace option").count() == 2
    page.select_option("#espace", child_id)
    page.get_by_role("button", name="Changer d’espace").click()
    page.wait_for_url(f"{hygie.base}/ens")
    assert (
        "Vous agissez pour Léa BERNARD, en tant que représentant légal" in page.locator("main").inner_text()
    )


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_load_state()


def test_both_parents_run_the_childs_space_without_the_confidential_document(
    page: Any, hygie: LiveHygie, family: Family
) -> None:
    child = family.child.patient_id
    shared = text_document(hygie, child, "Carnet de vaccination")
    secret = text_document(
        hygie, child, "Consultation confidentielle", labels=("INVISIBLE_REPRESENTANTS_LEGAUX",)
    )
    doctor_reads(hygie, child, shared, secret)

    for parent in family.parents:
        open_child_space(page, hygie, parent, child)
        home = page.locator("main").inner_text()
        assert "Carnet de vaccination" in home
        assert "Consultation confidentielle" not in home
        assert_accessible(page, "child's space home")

        page.goto(f"{hygie.base}/ens/controles")
        delegations = page.locator("#delegations").inner_text()
        assert "Sophie BERNARD" in delegations and "Marc BERNARD" in delegations
        assert_accessible(page, "child's controls")

        page.goto(f"{hygie.base}/ens/controles/historique")
        reads = page.locator("#table-historique tbody tr", has_text="Inès PEDIATRE").filter(
            has_text="a consulté un document"
        )
        assert reads.count() == 1  # the shared document's read, not the confidential one's
        assert_accessible(page, "child's access history")
        # the line of the confidential read does not open either
        response = page.goto(f"{hygie.base}/ens/controles/historique?qui=tous")
        assert response is not None and response.ok

        page.goto(f"{hygie.base}/ens/export")
        with page.expect_download() as download_info:
            page.locator("#telecharger-fhir").click()
        raw = Path(download_info.value.path()).read_bytes()
        bundle = orjson.loads(raw)
        ids = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}
        assert ("DocumentReference", shared) in ids and ("Patient", child) in ids
        assert ("DocumentReference", secret) not in ids
        assert b"Consultation confidentielle" not in raw
        with page.expect_download() as download_info:
            page.locator("#telecharger-pdf").click()
        pdf = Path(download_info.value.path()).read_bytes()
        text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
        assert "Léa BERNARD" in text and "Carnet de vaccination" in text
        assert "Consultation confidentielle" not in text

        page.goto(f"{hygie.base}/ens/documents/{secret}")
        assert "Consultation confidentielle" not in page.locator("main").inner_text()
        sign_out(page)

    # the adolescent sees her confidential document
    page.goto(f"{hygie.base}/ens")
    fill_sign_in(page, family.child.login, family.child.password)
    page.wait_for_url(f"{hygie.base}/ens")
    assert "Consultation confidentielle" in page.locator("main").inner_text()


def test_the_adolescent_keeps_her_documents_from_one_parent(
    page: Any, hygie: LiveHygie, family: Family
) -> None:
    """A Consent denying a parent's RelatedPerson (the adolescent's confidential mode): that
    parent no longer sees any of her documents; the other parent still does."""
    child = family.child.patient_id
    report = text_document(hygie, child, "Compte rendu de consultation")
    deny_consent(hygie, child, f"RelatedPerson/{family.related_ids[1]}", "représentant légal")
    doctor_reads(hygie, child, report)
    mother, father = family.parents
    open_child_space(page, hygie, father, child)
    assert "Compte rendu de consultation" not in page.locator("main").inner_text()
    page.goto(f"{hygie.base}/ens/controles/historique")
    assert "a consulté un document" not in page.locator("main").inner_text()
    page.goto(f"{hygie.base}/ens/export")
    with page.expect_download() as download_info:
        page.locator("#telecharger-fhir").click()
    assert b"Compte rendu de consultation" not in Path(download_info.value.path()).read_bytes()
    sign_out(page)
    open_child_space(page, hygie, mother, child)
    assert "Compte rendu de consultation" in page.locator("main").inner_text()
