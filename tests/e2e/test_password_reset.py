"""« Mot de passe oublié ? » from the sign-in page to a new password, in the browser.

The link of the sign-in page asks for the address and answers the same whether an account exists
or not; the e-mail's link opens the page where a new password is chosen (a password the rules
refuse, or two that differ, are said beside their field and the link still works); the old
password no longer signs in, the new one does, the link works once.
"""

from __future__ import annotations

import json
import re
from typing import Any

from browser import assert_accessible, fill_sign_in

LiveHygie = Citizen = Any

NEW_PASSWORD = "une phrase de passe toute neuve 2026"


def _reset_links(hygie: LiveHygie, to: str) -> list[str]:
    """The reset links e-mailed to ``to``, still in the outbox or already in the mail file."""
    from hygie.domain.outbox import KIND

    bodies = [r.get("body") or "" for _, r in hygie.call(hygie.runtime.kv.list(KIND)) if r["to"] == to]
    settings = hygie.runtime.settings
    mail_file = settings.mail_file or settings.data_dir / "mail.jsonl"
    if mail_file.exists():
        for line in mail_file.read_text(encoding="utf-8").splitlines():
            sent = json.loads(line)
            if sent["to"] == to:
                bodies.append(sent["body"])
    return [
        m.group(0)
        for body in bodies
        for m in re.finditer(r"https?://\S+/compte/reinitialiser\?jeton=\S+", body)
    ]


def test_a_forgotten_password_is_replaced_through_the_emailed_link(
    page: Any, hygie: LiveHygie, citizen: Citizen
) -> None:
    page.goto(f"{hygie.base}/connexion")
    page.get_by_role("link", name="Mot de passe oublié ?").click()
    page.wait_for_url(f"{hygie.base}/compte/mot-de-passe-oublie")
    assert_accessible(page, "forgotten password")
    # nothing typed: said beside the field
    page.get_by_role("button", name="Recevoir le lien").click()
    page.wait_for_selector("#identifiant-erreur")
    assert_accessible(page, "forgotten password, empty")
    # an address without an account gets the same answer as an account's
    page.fill("#identifiant", "personne@exemple.fr")
    page.get_by_role("button", name="Recevoir le lien").click()
    page.wait_for_selector("h1")
    unknown_answer = page.locator("main").inner_text()
    assert "Si un compte existe pour cette adresse" in unknown_answer
    assert _reset_links(hygie, "personne@exemple.fr") == []
    page.goto(f"{hygie.base}/compte/mot-de-passe-oublie")
    page.fill("#identifiant", citizen.login)
    page.get_by_role("button", name="Recevoir le lien").click()
    page.wait_for_selector("h1")
    assert page.locator("main").inner_text() == unknown_answer
    assert_accessible(page, "link sent")
    links = _reset_links(hygie, citizen.login)
    assert len(links) == 1
    link = links[0].replace(hygie.runtime.settings.base_url.rstrip("/"), hygie.base)

    page.goto(link)
    assert_accessible(page, "new password")
    page.fill("#nouveau_mot_de_passe", NEW_PASSWORD)
    page.fill("#confirmation", NEW_PASSWORD + " !")
    page.get_by_role("button", name="Enregistrer le mot de passe").click()
    page.wait_for_selector("#confirmation-erreur")
    assert "pas identiques" in page.locator("#confirmation-erreur").inner_text()
    assert_accessible(page, "new password, errors")
    page.fill("#nouveau_mot_de_passe", "court")
    page.fill("#confirmation", "court")
    page.get_by_role("button", name="Enregistrer le mot de passe").click()
    page.wait_for_selector("#nouveau_mot_de_passe-erreur")
    page.fill("#nouveau_mot_de_passe", NEW_PASSWORD)
    page.fill("#confirmation", NEW_PASSWORD)
    page.get_by_role("button", name="Enregistrer le mot de passe").click()
    page.wait_for_selector("h1")
    assert "Votre mot de passe est changé" in page.locator("main").inner_text()
    assert_accessible(page, "password changed")

    # the link works once
    page.goto(link)
    page.fill("#nouveau_mot_de_passe", NEW_PASSWORD + " encore")
    page.fill("#confirmation", NEW_PASSWORD + " encore")
    page.get_by_role("button", name="Enregistrer le mot de passe").click()
    page.wait_for_selector("h1")
    assert "Ce lien ne fonctionne plus" in page.locator("main").inner_text()

    # the old password is refused, the new one opens the space
    page.goto(f"{hygie.base}/ens")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_selector(".fr-alert--error")
    assert "/connexion" in page.url
    page.goto(f"{hygie.base}/ens")
    fill_sign_in(page, citizen.login, NEW_PASSWORD)
    page.wait_for_url(f"{hygie.base}/ens")
    assert page.locator("h1").inner_text().startswith("Bonjour")
