"""The publishers' back office of the Store santé (``/editeur``) in the browser.

A publisher (an organisation with its SIRET) and its account with TOTP are created for each test;
the publisher signs in and lands on its apps. It declares

* a wellness app (category 3, no resource scope): the grid of the self-assessment, the signed
  commitment, « Soumettre » → listed at once, with its changelog;
* a medical device (category 1, class IIa) reading and writing the record, on the test SMART
  app's loopback origin: submitted without evidence, the form says beside each field what is
  missing and the app stays a draft; completed with evidence and independent tests → « Soumise »;
* bad input: an unreadable JWKS or a duration that is not a number saves nothing (what was typed
  stays); a redirect URI in plain http on a public host, or on a private address, is refused.

A publisher never sees another's apps (404, in the list neither). Every page is checked with
axe-core; ``editeur-*.png`` feed the guide (``docs/guide/store-editeurs.md``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import PASSWORD, LiveHygie
from hygie.domain.store.catalogue import App, siret_valid
from hygie.store.service import Member

_numbers = itertools.count(1)
TOP = {"x": 0, "y": 0, "width": 1100, "height": 1500}  # the guide's screenshots: the top of a page


def new_siret() -> str:
    """A valid SIRET (Luhn key), new for each publisher: the store refuses a duplicate."""
    body = f"7328293200{next(_numbers):03d}"
    return next(body + str(d) for d in range(10) if siret_valid(body + str(d)))


@dataclass(frozen=True)
class PublisherAccount:
    login: str
    totp_secret: str
    publisher_id: str
    member: Member


def new_publisher(hygie: LiveHygie, name: str) -> PublisherAccount:
    accounts = hygie.runtime.accounts
    assert accounts is not None
    store = hygie.runtime.app_store
    n = next(_numbers)
    account, uri = hygie.call(accounts.create("publisher", f"editeur.{n}@exemple.fr", PASSWORD, totp=True))
    assert uri is not None
    publisher = hygie.call(store.create_publisher(name, new_siret(), f"contact.{n}@exemple.fr"))
    member = hygie.call(store.add_member(account.id, "publisher", publisher_id=publisher.id))
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    return PublisherAccount(account.login, secret, publisher.id, member)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


@pytest.fixture
def publisher(hygie: LiveHygie) -> PublisherAccount:
    return new_publisher(hygie, "Santé Connectée SAS")


def sign_in(page: Any, hygie: LiveHygie, who: PublisherAccount) -> None:
    page.goto(f"{hygie.base}/editeur")
    fill_sign_in(page, who.login, PASSWORD, who.totp_secret)
    page.wait_for_url(f"{hygie.base}/editeur/applications")


def apps_of(hygie: LiveHygie, who: PublisherAccount) -> list[App]:
    return hygie.call(hygie.runtime.app_store.apps_of(who.publisher_id))


def click_and_status(page: Any, button: str) -> int:
    """Click a form's button and return the status of the page it leads to (after redirects)."""
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name=button).click()
    response = navigation.value
    assert response is not None
    return int(response.status)


def test_a_wellness_app_is_listed_after_its_self_assessment(
    page: Any, hygie: LiveHygie, publisher: PublisherAccount, shots: Path
) -> None:
    sign_in(page, hygie, publisher)
    expect(page.locator("#aucune-application")).to_contain_text("aucune application")
    assert_accessible(page, "publisher's apps (empty)")

    page.get_by_role("link", name="Déposer une application").first.click()
    page.wait_for_url(f"{hygie.base}/editeur/nouvelle")
    expect(page.locator("#parcours-explication")).to_contain_text("Auto-évaluation")
    assert_accessible(page, "new app form")
    page.fill("#nom", "Pas à pas")
    page.fill("#resume", "Un podomètre et des conseils pour marcher chaque jour.")
    page.fill("#description", "Compte vos pas, fixe un objectif quotidien et propose des parcours de marche.")
    page.fill("#site", "https://bien-etre.exemple.fr")
    page.check("#categorie-3", force=True)
    page.check("#public-citoyens", force=True)
    page.check("#lancement-autonome", force=True)
    page.fill("#hotes", "bien-etre.exemple.fr")
    # the grid of a wellness app without access to the record: tick every criterion
    boxes = page.locator("input[name^='critere-']")
    expect(boxes.first).to_be_attached()
    assert page.locator("#critere-UTI-01").count() == 0  # medical utility: not for wellness
    for box in boxes.all():
        box.check(force=True)
    page.fill("#signataire", "Inès Moreau")
    page.fill("#fonction", "Présidente")
    page.check("#engagement", force=True)
    page.locator("#bloc-engagement").screenshot(path=str(shots / "editeur-engagement.png"))
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "editeur-fiche.png"), full_page=True, clip=TOP)

    assert click_and_status(page, "Enregistrer le brouillon") == 200
    expect(page.locator("main")).to_contain_text("Brouillon « Pas à pas » enregistré.")
    (app,) = apps_of(hygie, publisher)
    assert app.state == "draft" and app.category == "3" and app.hosts == ("bien-etre.exemple.fr",)
    assert app.commitment is not None and app.commitment["by"] == "Inès Moreau"
    assert app.commitment["role"] == "Présidente" and "Je m’engage" in app.commitment["text"]
    assert page.url == f"{hygie.base}/editeur/applications/{app.id}"
    expect(page.locator("#engagement-signe")).to_contain_text("Inès Moreau (Présidente)")
    expect(page.locator("#critere-ETH-01")).to_be_checked()
    assert_accessible(page, "saved draft")

    assert click_and_status(page, "Soumettre") == 200
    expect(page.locator("main")).to_contain_text("référencée après auto-évaluation")
    expect(page.locator("#etat")).to_contain_text("Référencée")
    expect(page.locator("#etat")).to_contain_text("Auto-évaluation")
    changelog = page.locator(f"#historique-{app.id}")
    expect(changelog.locator("tbody tr")).to_have_count(2)
    expect(changelog.locator("tbody tr").nth(0)).to_contain_text("Soumise au référencement")
    expect(changelog.locator("tbody tr").nth(1)).to_contain_text("Référencée après auto-évaluation")
    expect(changelog).to_contain_text("L’éditeur")
    assert_accessible(page, "listed app")
    page.screenshot(path=str(shots / "editeur-application.png"), full_page=True, clip=TOP)
    assert hygie.call(hygie.runtime.app_store.app(app.id)).state == "listed"  # type: ignore[union-attr]

    # a listed app no longer changes through the form
    response = page.request.post(
        f"{hygie.base}/editeur/applications/{app.id}",
        form={"csrf": csrf_of(page, hygie), "nom": "Autre nom", "action": "enregistrer"},
    )
    assert response.status == 409
    assert hygie.call(hygie.runtime.app_store.app(app.id)).name == "Pas à pas"  # type: ignore[union-attr]

    page.goto(f"{hygie.base}/editeur/applications")
    card = page.locator(f"#application-{app.id}")
    expect(card).to_contain_text("Référencée")
    expect(card).to_contain_text("Bien-être")
    expect(card).to_contain_text("Référencée après auto-évaluation")
    assert_accessible(page, "publisher's apps")


def csrf_of(page: Any, hygie: LiveHygie) -> str:
    """The session's CSRF token, read from a form of the back office."""
    page.goto(f"{hygie.base}/editeur/nouvelle")
    return str(page.locator("input[name=csrf]").first.get_attribute("value"))


def test_a_medical_device_needs_its_evidence_before_it_is_submitted(
    page: Any, hygie: LiveHygie, smart_app: str, publisher: PublisherAccount, shots: Path
) -> None:
    sign_in(page, hygie, publisher)
    page.goto(f"{hygie.base}/editeur/nouvelle")
    page.fill("#nom", "Tensio Suivi")
    page.fill("#resume", "Le suivi de la tension artérielle, avec alertes au médecin traitant.")
    page.fill("#description", "Relève la tension depuis un brassard connecté et l’écrit dans les mesures.")
    page.fill("#site", "https://tensio.exemple.fr")
    page.check("#categorie-1", force=True)
    page.select_option("#classe_ce", "IIa")
    page.check("#public-citoyens", force=True)
    page.check("#lancement-widget", force=True)
    page.fill("#adresse_lancement", f"{smart_app}/mesures-launch.html")
    page.fill("#redirections", f"{smart_app}/mesures.html")
    page.fill("#hotes", "127.0.0.1")
    page.fill("#portees", "launch openid fhirUser patient/Patient.rs patient/Observation.crs")
    page.fill("#finalite", "Tracer vos courbes de tension et prévenir votre médecin en cas d’écart.")
    page.fill("#duree", "180")
    page.select_option("#modele", "rembourse")
    page.select_option("#remboursement", "telesurveillance")
    page.check("#prescriptible", force=True)
    assert click_and_status(page, "Enregistrer le brouillon") == 200
    (app,) = apps_of(hygie, publisher)
    assert app.category == "1" and app.ce_class == "IIa" and app.data_access and app.max_days == 180
    assert app.redirect_uris == (f"{smart_app}/mesures.html",) and app.prescribable

    # the grid now is the saved one's: a medical device with access to the record
    expect(page.locator("#criteres-enregistres")).to_contain_text("enregistrez pour mettre à jour")
    expect(page.locator("#parcours-explication")).to_contain_text("Évaluation a priori")
    expect(page.locator("#critere-UTI-02")).to_be_attached()
    expect(page.locator("#test-SEC-03")).to_be_attached()
    expect(page.locator("#engagement")).to_have_count(0)  # no self-assessment commitment here
    scopes = page.locator("#portees-expliquees")
    expect(scopes).to_contain_text("Lire : identité du patient")
    expect(scopes).to_contain_text("Lire et ajouter ou modifier : mesures et résultats du patient")
    expect(scopes).to_contain_text("S’ouvrir dans le contexte du dossier")
    assert_accessible(page, "medical device draft")

    # every criterion ticked, but no evidence: refused, each message beside its field
    for box in page.locator("input[name^='critere-']").all():
        box.check(force=True)
    assert click_and_status(page, "Soumettre") == 422
    summary = page.locator("#erreurs")
    expect(summary).to_contain_text("La fiche n’a pas été soumise")
    expect(summary.locator("a[href='#critere-SEC-03']")).to_have_count(1)
    expect(summary.locator("a[href='#test-SEC-03']")).to_have_count(1)
    expect(page.locator("#critere-SEC-03-erreur")).to_contain_text("joignez la preuve")
    expect(page.locator("#test-SEC-03-erreur")).to_contain_text("laboratoire")
    expect(page.locator("#critere-UTI-02-erreur")).to_contain_text("joignez la preuve")
    expect(page.locator("#critere-SEC-03")).to_be_checked()  # what was typed is kept
    expect(page.locator("#nom")).to_have_value("Tensio Suivi")
    assert_accessible(page, "refused submission")
    page.screenshot(path=str(shots / "editeur-fiche-erreurs.png"), full_page=True, clip=TOP)
    page.locator("#bloc-SEC-03").screenshot(path=str(shots / "editeur-critere-erreur.png"))
    assert hygie.call(hygie.runtime.app_store.app(app.id)).state == "draft"  # type: ignore[union-attr]

    # the evidence and the independent tests: submitted to the authority
    grid = hygie.call(hygie.runtime.app_store.grid())
    for criterion in grid.required("1", True):
        page.fill(f"#preuve-{criterion.id}", f"https://tensio.exemple.fr/preuves/{criterion.id}.pdf")
        if criterion.evidence == "test":
            page.fill(
                f"#test-{criterion.id}", "Laboratoire Sécurité Santé, 02/10/2026, rapport 2026-118 : conforme"
            )
    assert click_and_status(page, "Soumettre") == 200
    assert page.url == f"{hygie.base}/editeur/applications/{app.id}"
    expect(page.locator("main")).to_contain_text("transmise à l’autorité pour évaluation")
    expect(page.locator("#etat")).to_contain_text("Soumise")
    expect(page.locator("#etat-explication")).to_contain_text("entre les mains de l’autorité")
    expect(page.locator(f"#historique-{app.id}")).to_contain_text("Soumise au référencement")
    assert_accessible(page, "submitted app")
    submitted = hygie.call(hygie.runtime.app_store.app(app.id))
    assert submitted is not None and submitted.state == "submitted" and submitted.grid_version == grid.version
    assert submitted.assessment["SEC-03"].test.startswith("Laboratoire Sécurité Santé")

    page.goto(f"{hygie.base}/editeur/grille")
    expect(page.locator("h1")).to_contain_text("Grille des critères")
    expect(page.locator("main")).to_contain_text(f"Version {grid.version}")
    expect(page.locator("#critere-SEC-03")).to_contain_text("Test d’intrusion indépendant")
    expect(page.locator("#famille-accessibilite")).to_contain_text("Recommandation 9 du CNNum")
    assert_accessible(page, "criteria grid")
    page.screenshot(path=str(shots / "editeur-grille.png"), full_page=True, clip=TOP)

    page.goto(f"{hygie.base}/editeur/applications")
    expect(page.locator(f"#application-{app.id}")).to_contain_text("Évaluation a priori")
    expect(page.locator(f"#application-{app.id}")).to_contain_text("Soumise")
    assert_accessible(page, "publisher's apps")

    # the authority lists it with data exchange, the platform probes it: the publisher sees its
    # SMART client and the checks' results
    store = hygie.runtime.app_store
    authority = hygie.call(store.add_member(f"agent-ans-{next(_numbers)}", "authority", agency="ans"))
    hygie.call(store.take(authority, app.id))
    hygie.call(store.approve(authority, app.id, "Dossier complet.", data_exchange=True))
    hygie.call(store.probe(app.id))
    page.goto(f"{hygie.base}/editeur/applications/{app.id}")
    expect(page.locator("#client-smart")).to_contain_text(f"app-{app.id}")
    expect(page.locator(f"#controles-{app.id} li")).to_have_count(5)
    expect(page.locator(f"#controles-{app.id}")).to_contain_text("Enregistrement SMART valide")
    expect(page.locator(f"#historique-{app.id}")).to_contain_text(
        "Référencée avec échange de données après évaluation"
    )
    assert_accessible(page, "app listed with data exchange")
    page.goto(f"{hygie.base}/editeur/applications")
    card = page.locator(f"#application-{app.id}")
    expect(card).to_contain_text(f"app-{app.id}")
    expect(card.locator(f"#controles-{app.id}")).to_contain_text("Adresse de lancement joignable")
    assert_accessible(page, "publisher's apps with checks")
    page.screenshot(path=str(shots / "editeur-applications.png"), full_page=True)


def test_bad_input_is_refused_beside_its_field(
    page: Any, hygie: LiveHygie, publisher: PublisherAccount
) -> None:
    sign_in(page, hygie, publisher)
    page.goto(f"{hygie.base}/editeur/nouvelle")
    page.fill("#nom", "Rendez-vous Facile")
    page.fill("#jwks", '{"keys": [')
    page.fill("#duree", "un an")
    assert click_and_status(page, "Enregistrer le brouillon") == 422
    expect(page.locator("#erreurs")).to_contain_text("Rien n’a été enregistré")
    expect(page.locator("#jwks-erreur")).to_contain_text("JSON")
    expect(page.locator("#duree-erreur")).to_contain_text("nombre entier")
    expect(page.locator("#nom")).to_have_value("Rendez-vous Facile")
    expect(page.locator("#jwks")).to_have_value('{"keys": [')
    assert_accessible(page, "form refused before saving")
    assert apps_of(hygie, publisher) == []

    page.fill("#jwks", '["pas un objet"]')
    page.fill("#duree", "90")
    assert click_and_status(page, "Enregistrer le brouillon") == 422
    expect(page.locator("#jwks-erreur")).to_contain_text("objet JSON")
    assert apps_of(hygie, publisher) == []

    # plain http on a public host, a private address: refused at submission, nothing submitted
    page.fill("#jwks", "")
    page.check("#categorie-2", force=True)
    page.fill("#hotes", "rdv.exemple.fr\n10.0.0.5")
    page.fill("#redirections", "http://rdv.exemple.fr/retour\nhttps://10.0.0.5/cb")
    page.fill("#portees", "openid fhirUser patient/Appointment.rs")
    assert click_and_status(page, "Soumettre") == 422
    errors = page.locator("#redirections-erreur")
    expect(errors).to_contain_text("« http://rdv.exemple.fr/retour » n’est pas en HTTPS")
    expect(errors).to_contain_text("10.0.0.5")
    expect(errors).to_contain_text("adresse IP privée")
    expect(page.locator("#erreurs a[href='#redirections']")).to_have_count(2)
    assert_accessible(page, "refused redirect URIs")
    (app,) = apps_of(hygie, publisher)
    assert app.state == "draft" and app.redirect_uris == (
        "http://rdv.exemple.fr/retour",
        "https://10.0.0.5/cb",
    )
    # the form now posts to the saved draft: a second try creates no second app
    assert page.locator("#fiche-application").get_attribute("action") == f"/editeur/applications/{app.id}"


def test_a_publisher_sees_only_its_own_apps(page: Any, hygie: LiveHygie, publisher: PublisherAccount) -> None:
    other = new_publisher(hygie, "Autre Éditeur SARL")
    store = hygie.runtime.app_store
    theirs = hygie.call(store.save_draft(other.member, App(id="", publisher_id="", name="Appli d’un autre")))
    mine = hygie.call(store.save_draft(publisher.member, App(id="", publisher_id="", name="Mon appli")))

    sign_in(page, hygie, publisher)
    expect(page.locator(f"#application-{mine.id}")).to_contain_text("Mon appli")
    expect(page.locator("#applications")).not_to_contain_text("Appli d’un autre")

    response = page.goto(f"{hygie.base}/editeur/applications/{theirs.id}")
    assert response is not None and response.status == 404
    expect(page.locator("main")).to_contain_text("n’existe pas ou n’est pas la vôtre")
    assert_accessible(page, "someone else's app")
    response = page.request.post(
        f"{hygie.base}/editeur/applications/{theirs.id}",
        form={"csrf": csrf_of(page, hygie), "nom": "Détournée", "action": "enregistrer"},
    )
    assert response.status == 404
    assert hygie.call(store.app(theirs.id)).name == "Appli d’un autre"  # type: ignore[union-attr]
    response = page.goto(f"{hygie.base}/editeur/applications/inconnue")
    assert response is not None and response.status == 404
