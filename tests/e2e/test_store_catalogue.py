"""The Store santé's catalogue in the browser: citizens, professionals, anyone.

Seeded through ``runtime.app_store`` (as a publisher and the authorities would through their
back offices): a publisher, a wellness app listed after its self-assessment, and a medical
device listed **with data exchange** after an a-priori evaluation approved by the digital-health
authority ("ans"). The medical device is the test app « Mes pesées » (``smart_app/mesures*.html``,
the official ``fhirclient`` build), opened by an EHR launch from the portal.

* a citizen of the e2e seed (Claire MARTIN) finds the medical device by search words and by
  filters, reads its page (publisher and SIRET, what it reads and writes, its changelog), opens
  it from her space: the one consent screen shows the publisher, the catalogue status, the
  purpose and a duration; she unticks one access, and the app's token lacks it; the grant is a
  FHIR ``Consent`` (category ``app``) in her record, ``inactive`` once she disconnects the app
  from « Qui voit mon dossier » — and the app's next call is refused;
* a citizen reports the app from her space: the form says what is missing beside each field;
  the report is triaged to the medicines agency's control queue and followed in « Mes
  signalements », with the outcome once the agency closes it; the public page shows the
  report's category and status, never its text;
* an anonymous visitor reads the public page, reports (a replayed form files nothing twice) and
  follows the link; a draft has no public page;
* a professional filters the prescribable apps and sees only the prescribable one; the store
  app opens in a patient's context beside the operator's own apps.

Every page is checked with axe-core; ``ens-applications*.png``, ``store-*.png`` and
``bsp-applications-*.png`` feed the user guides.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import PASSWORD, LiveHygie, People
from hygie.domain.access import Caller
from hygie.domain.relations import APP_CATEGORY, SPACE_CATEGORY_SYSTEM
from hygie.domain.store.catalogue import App, Assessment
from hygie.store.service import Member, StoreService
from hygie.web.portal.door import Door

SIRET = "81234567800013"
PUBLISHER = "Santé Connectée"
DEVICE = "Mes pesées"
WELLNESS = "Pas à pas"
DEVICE_SCOPES = (
    "launch openid fhirUser patient/Patient.rs patient/Observation.crs patient/AllergyIntolerance.rs"
)
PURPOSE = "Suivre votre poids entre deux consultations et alerter votre médecin d’une prise rapide."
_accounts = iter(range(1, 1000))


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


@dataclass(frozen=True)
class Catalogue:
    device: App
    wellness: App
    draft: App
    publisher: Member
    ans: Member
    ansm: Member


def _member(hygie: LiveHygie, kind: str, **where: str) -> Member:
    accounts = hygie.runtime.accounts
    assert accounts is not None
    account, _ = hygie.call(
        accounts.create(kind, f"{kind}.{next(_accounts)}@example.fr", PASSWORD, totp=True)
    )
    return hygie.call(hygie.runtime.app_store.add_member(account.id, kind, **where))


def assessed(store: StoreService, hygie: LiveHygie, app: App) -> App:
    """``app`` with every criterion the grid requires of it met, with evidence and, where the grid
    asks for one, an independent test."""
    grid = hygie.call(store.grid())
    answers = {
        c.id: Assessment(
            True,
            f"https://sante-connectee.example.fr/preuves/{c.id}.pdf",
            "Laboratoire Tiers-Essai, 2026-09-14, rapport TE-2026-118 : conforme"
            if c.evidence == "test"
            else "",
        )
        for c in grid.required(app.category, app.data_access)
    }
    return replace(app, assessment=answers)


@pytest.fixture(scope="module")
def catalogue(hygie: LiveHygie, smart_app: str) -> Catalogue:
    store = hygie.runtime.app_store
    publisher_id = hygie.call(
        store.create_publisher(PUBLISHER, SIRET, "contact@sante-connectee.example.fr")
    ).id
    publisher = _member(hygie, "publisher", publisher_id=publisher_id)
    ans = _member(hygie, "authority", agency="ans")
    ansm = _member(hygie, "authority", agency="ansm")

    wellness = App(
        id="",
        publisher_id=publisher_id,
        name=WELLNESS,
        summary="Un podomètre et des défis de marche, sans accès à votre dossier.",
        description="Compte vos pas avec le téléphone et propose des objectifs de marche progressifs.",
        category="3",
        audience="tous",
        launch_mode="autonome",
        website="https://pasapas.example.fr",
        hosts=("pasapas.example.fr",),
        business_model="gratuit",
        commitment={"by": "Jeanne Morel, présidente", "at": 1_790_000_000_000_000, "text": "Je m’engage."},
    )
    wellness = hygie.call(store.save_draft(publisher, assessed(store, hygie, wellness)))
    wellness = hygie.call(store.submit(publisher, wellness.id))
    assert wellness.state == "listed"

    device = App(
        id="",
        publisher_id=publisher_id,
        name=DEVICE,
        summary="Le suivi du poids à domicile, transmis à votre dossier et à votre médecin.",
        description="Relève vos pesées et les écrit dans vos mesures ; alerte en cas de prise rapide.",
        category="1",
        ce_class="IIa",
        audience="tous",
        launch_mode="widget",
        website="https://pesees.example.fr",
        hosts=("127.0.0.1", "pesees.example.fr"),
        redirect_uris=(f"{smart_app}/mesures.html",),
        scopes=DEVICE_SCOPES,
        purpose=PURPOSE,
        max_days=365,
        business_model="rembourse",
        reimbursement="telesurveillance",
        prescribable=True,
    )
    device = hygie.call(store.save_draft(publisher, assessed(store, hygie, device)))
    # the launch page takes the client id and scopes from its URL (smart_app/mesures-launch.js)
    launch = urlencode({"client_id": f"app-{device.id}", "scope": DEVICE_SCOPES})
    device = hygie.call(
        store.save_draft(publisher, replace(device, launch_url=f"{smart_app}/mesures-launch.html?{launch}"))
    )
    hygie.call(store.submit(publisher, device.id))
    hygie.call(store.take(ans, device.id))
    device = hygie.call(
        store.approve(ans, device.id, "Preuves et tests conformes à la grille.", data_exchange=True)
    )
    assert device.state == "listed_data" and device.client_id == f"app-{device.id}"
    device = hygie.call(store.probe(device.id))
    assert device.state == "listed_data", device.checks

    draft = hygie.call(
        store.save_draft(publisher, App(id="", publisher_id=publisher_id, name="Brouillon secret"))
    )
    return Catalogue(device, wellness, draft, publisher, ans, ansm)


def sign_in_at(page: Any, hygie: LiveHygie, login: str, path: str, totp: str | None = None) -> None:
    page.goto(f"{hygie.base}{path}")
    fill_sign_in(page, login, PASSWORD, totp)
    page.wait_for_url(f"{hygie.base}{path}")


def tick(page: Any, input_id: str) -> None:
    """Tick a DSFR radio button or checkbox as a person does: on its label, which covers it."""
    page.locator(f"label[for='{input_id}']").click()
    expect(page.locator(f"#{input_id}")).to_be_checked()


def _names(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#catalogue-sante .fr-card__title").all_inner_texts()]


def _app_consents(hygie: LiveHygie, patient_id: str) -> list[dict[str, Any]]:
    return hygie.call(
        Door(hygie.runtime.service).search(
            Caller.operator("tests"),
            "Consent",
            [("patient", patient_id), ("category", f"{SPACE_CATEGORY_SYSTEM}|{APP_CATEGORY}")],
        )
    )


def test_a_citizen_finds_reads_connects_part_of_an_app_then_disconnects_it(
    page: Any, hygie: LiveHygie, smart_app: str, catalogue: Catalogue, people: People, shots: Path
) -> None:
    device = catalogue.device
    martin = hygie.patients["martin"]
    sign_in_at(page, hygie, people.citizen.login, "/ens/applications")
    assert _names(page) == [DEVICE, WELLNESS]
    assert page.locator("#prise-en-charge").count() == 0  # the professionals' filters only
    expect(page.locator("#catalogue-sante")).not_to_contain_text("Brouillon secret")
    assert_accessible(page, "ENS catalogue")
    page.screenshot(path=str(shots / "ens-applications.png"), full_page=True)

    # by search words (accents and case ignored)
    page.fill("#q", "POIDS domicile")
    page.locator("#filtres-catalogue").get_by_role("button", name="Rechercher").click()
    page.wait_for_url("**/ens/applications?q=*")
    expect(page.locator("#titre-resultats")).to_have_text("1 application pour cette recherche")
    assert _names(page) == [DEVICE]
    assert_accessible(page, "ENS catalogue (search)")
    page.fill("#q", "tensiomètre")
    page.locator("#filtres-catalogue").get_by_role("button", name="Rechercher").click()
    expect(page.locator("#titre-resultats")).to_have_text("Aucune application pour cette recherche")
    assert_accessible(page, "ENS catalogue (nothing found)")

    # by filters: category, level, a criterion met
    page.get_by_role("link", name="Effacer les filtres").first.click()
    page.wait_for_url(f"{hygie.base}/ens/applications")
    page.select_option("#categorie", "1")
    page.select_option("#niveau", "listed_data")
    page.select_option("#critere", "UTI-02")
    page.locator("#filtres-catalogue").get_by_role("button", name="Rechercher").click()
    page.wait_for_url("**/ens/applications?*critere=UTI-02*")
    assert _names(page) == [DEVICE]
    expect(page.locator("#catalogue-sante")).to_contain_text("Référencée avec échange de données")
    expect(page.locator("#catalogue-sante")).to_contain_text(f"Éditeur : {PUBLISHER}")
    assert_accessible(page, "ENS catalogue (filters)")
    page.screenshot(path=str(shots / "ens-applications-filtres.png"), full_page=True)
    page.goto(f"{hygie.base}/ens/applications?categorie=3")
    assert _names(page) == [WELLNESS]

    # its page, in plain language
    page.goto(f"{hygie.base}/ens/applications?q=pesees")
    page.get_by_role("link", name=DEVICE).click()
    page.wait_for_url(f"{hygie.base}/ens/applications/{device.id}")
    expect(page.locator("h1")).to_have_text(DEVICE)
    expect(page.locator("#fiche-editeur")).to_contain_text(f"Éditeur : {PUBLISHER} (SIRET 812 345 678 00013)")
    expect(page.locator("#fiche-categorie")).to_contain_text("dispositif médical, classe CE IIa")
    expect(page.locator("#donnees-lues")).to_contain_text("Lire : mesures et résultats du patient")
    expect(page.locator("#donnees-lues")).to_contain_text("Lire : allergies du patient")
    expect(page.locator("#donnees-ecrites")).to_have_text(
        "Ajouter ou modifier : mesures et résultats du patient"
    )
    expect(page.locator("#finalite")).to_contain_text(PURPOSE)
    expect(page.locator("#fiche-modele")).to_contain_text("Remboursée (activité de télésurveillance)")
    expect(page.locator("#fiche-evaluation")).to_contain_text("Évaluation a priori")
    expect(page.locator("#criteres-remplis")).to_contain_text("UTI-02 Marquage CE du dispositif médical")
    expect(page.locator("#controles")).to_contain_text("Réussi")
    changelog = page.locator("#historique-referencement tbody tr")
    expect(changelog).to_have_count(3)
    expect(changelog.nth(0)).to_contain_text("Référencée avec échange de données après évaluation")
    expect(changelog.nth(0)).to_contain_text("Autorité du numérique en santé")
    expect(changelog.nth(0)).to_contain_text("Preuves et tests conformes à la grille.")
    expect(changelog.nth(2)).to_contain_text("Soumise au référencement")
    expect(changelog.nth(2)).to_contain_text("L’éditeur")
    assert_accessible(page, "ENS app page")
    page.screenshot(path=str(shots / "ens-applications-fiche.png"), full_page=True)

    # connecting it: an EHR launch for her space, then the one consent screen
    page.get_by_role("button", name=f"Connecter {DEVICE}").click()
    page.wait_for_selector(f"h1:has-text('Autoriser {DEVICE}')")
    main = page.locator("main")
    expect(main).to_contain_text(f"Éditeur : {PUBLISHER}")
    expect(main).to_contain_text("Statut dans le catalogue : Référencée avec échange de données")
    expect(main).to_contain_text(PURPOSE)
    expect(page.locator("#duree")).to_have_value("90")
    assert "MARTIN Claire" in main.inner_text()
    assert_accessible(page, "consent screen (store app)")
    page.screenshot(path=str(shots / "ens-applications-autorisation.png"), full_page=True)
    allergies = page.locator("input[name=portee][value='patient/AllergyIntolerance.rs']")
    page.locator("label", has_text="Lire : allergies du patient").click()  # DSFR's label covers the box
    expect(allergies).not_to_be_checked()
    page.select_option("#duree", "30")
    page.locator("button[name=decision][value=accepter]").click()

    page.wait_for_url(f"{smart_app}/mesures.html*")
    page.wait_for_selector("body[data-status=ready], body[data-status=error]")
    assert page.locator("body").get_attribute("data-status") == "ready", page.locator("#erreur").inner_text()
    expect(page.locator("#patient-nom")).to_have_text("Claire MARTIN")
    granted = set(page.locator("#portees").inner_text().split())
    assert "patient/AllergyIntolerance.rs" not in granted
    assert {"patient/Patient.rs", "patient/Observation.crs", "launch"} <= granted
    expect(page.locator("#lecture-allergies")).to_have_text("refusé (403)")
    expect(page.locator("#lecture-observations")).to_have_text("autorisé (0)")
    # the token fhirclient keeps in the tab's session storage
    token = page.evaluate(
        """() => JSON.parse(sessionStorage.getItem(JSON.parse(sessionStorage.getItem("SMART_KEY"))))
            .tokenResponse"""
    )
    assert "patient/AllergyIntolerance.rs" not in token["scope"].split()

    # the app writes what it collects into her record (CNNum 12): a weight series, shown in her
    # measures with the app's name as its provenance
    page.get_by_role("button", name="Envoyer la série").click()
    expect(page.locator("#ecriture")).to_have_text("série envoyée (3)")
    measures = page.context.new_page()
    measures.goto(f"{hygie.base}/ens/mesures/poids")
    rows = measures.locator("#tableau-valeurs tbody tr", has_text=f"application « {DEVICE} »")
    expect(rows).to_have_count(3)
    assert_accessible(measures, "weight written by a store app")
    measures.close()

    # the grant is a Consent in her record
    (consent,) = _app_consents(hygie, martin)
    assert consent["status"] == "active"
    actor = consent["provision"]["actor"][0]["reference"]["identifier"]["value"]
    assert actor == device.client_id
    classes = {c["code"] for c in consent["provision"]["class"]}
    assert classes == {"Patient", "Observation"}

    # she disconnects it from « Qui voit mon dossier »: the Consent ends, the token stops
    ens = page.context.new_page()
    ens.goto(f"{hygie.base}/ens/controles")
    apps = ens.locator("#table-applications")
    expect(apps).to_contain_text(DEVICE)
    apps.get_by_role("button", name=f"Déconnecter {DEVICE}").click()
    expect(ens.locator(".fr-alert--success")).to_contain_text("L’application est déconnectée")
    (consent,) = _app_consents(hygie, martin)
    assert consent["status"] == "inactive"
    assert consent["provision"]["period"].get("end")
    page.bring_to_front()
    page.get_by_role("button", name="Relire").click()
    expect(page.locator("#relecture")).to_have_text("refusé (401)")
    with httpx.Client(base_url=hygie.fhir) as http:
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert http.get(f"Patient/{martin}", headers=headers).status_code == 401


def test_a_citizen_reports_an_app_and_follows_it_to_its_outcome(
    page: Any, hygie: LiveHygie, catalogue: Catalogue, people: People, shots: Path
) -> None:
    device, store = catalogue.device, hygie.runtime.app_store
    sign_in_at(page, hygie, people.citizen.login, f"/ens/applications/{device.id}")
    page.get_by_role("link", name="Signaler un problème").click()
    page.wait_for_url(f"{hygie.base}/ens/applications/{device.id}/signaler")
    assert page.locator("#contact").count() == 0  # she follows it from her space
    assert_accessible(page, "ENS report form")

    # nothing chosen, too short: each message beside its field, what was typed kept
    page.fill("#texte", "Bug")
    page.get_by_role("button", name="Envoyer le signalement").click()
    expect(page.locator("#nature-erreur")).to_contain_text("Choisissez la nature du problème")
    expect(page.locator("#texte-erreur")).to_contain_text("10 caractères au moins")
    expect(page.locator("#texte")).to_have_value("Bug")
    assert_accessible(page, "ENS report form with errors")
    page.screenshot(path=str(shots / "ens-applications-signaler-erreurs.png"), full_page=True)

    text = (
        "Depuis la mise à jour, la courbe affichait un poids faux ; "
        "j’ai fait un malaise après avoir modifié mon traitement."
    )
    tick(page, "nature-effet_indesirable")
    page.fill("#texte", text)
    page.get_by_role("button", name="Envoyer le signalement").click()
    page.wait_for_url(f"{hygie.base}/ens/applications/signalements/*")
    report_id = page.url.rsplit("/", 1)[1]
    expect(page.locator(".fr-alert--success")).to_contain_text("Votre signalement est envoyé")
    expect(page.locator("#tri")).to_contain_text("Effet néfaste pour la santé")
    expect(page.locator("#tri")).to_contain_text("l’Agence du médicament, l’ANSM")
    expect(page.locator("#tri")).to_contain_text("doit le traiter avant le")
    expect(page.locator("#etat-signalement")).to_contain_text("Reçu")
    assert_accessible(page, "ENS report follow-up")
    page.screenshot(path=str(shots / "ens-applications-signalement.png"), full_page=True)

    filed = hygie.call(store.report_of(report_id))
    assert filed is not None
    assert (filed["queue"], filed["reporter"], filed["reporter_kind"]) == (
        "controle",
        people.citizen.account_id,
        "citoyen",
    )
    assert filed["text"] == text

    # the medicines agency closes it; her « Mes signalements » shows the outcome
    outcome = "Défaut de calcul confirmé par l’éditeur, corrigé dans la version 2.4.1."
    hygie.call(store.handle_report(catalogue.ansm, report_id, "clos", outcome))
    page.goto(f"{hygie.base}/ens/applications/signalements")
    row = page.locator("#mes-signalements tbody tr", has_text=DEVICE)
    expect(row).to_contain_text("Clos")
    expect(row).to_contain_text(outcome)
    assert_accessible(page, "ENS my reports")
    page.screenshot(path=str(shots / "ens-applications-mes-signalements.png"), full_page=True)
    row.get_by_role("link").click()
    page.wait_for_url(f"{hygie.base}/ens/applications/signalements/{report_id}")
    expect(page.locator("#historique-suivi tbody tr")).to_have_count(2)
    expect(page.locator("#etat-signalement")).to_contain_text(outcome)

    # the public page: its category, severity, status and outcome — never its text
    page.goto(f"{hygie.base}/store/applications/{device.id}")
    history = page.locator("#historique-signalements")
    expect(history).to_contain_text("Effet néfaste pour la santé")
    expect(history).to_contain_text(outcome)
    assert "malaise" not in page.locator("main").inner_text()

    # an app without data exchange: nothing to connect
    page.goto(f"{hygie.base}/ens/applications/{catalogue.wellness.id}")
    expect(page.locator("#connecter")).to_contain_text("n’accède pas à votre dossier de santé")
    expect(page.locator("#connecter").get_by_role("button")).to_have_count(0)
    assert_accessible(page, "ENS app page (no data exchange)")

    # a draft is not in her catalogue either
    response = page.goto(f"{hygie.base}/ens/applications/{catalogue.draft.id}")
    assert response is not None and response.status == 404
    assert_accessible(page, "ENS app page of a draft (404)")

    # another citizen's report is not hers to follow
    other = hygie.call(
        store.report(
            device.id,
            "Impossible de me connecter depuis hier soir.",
            declared="dysfonctionnement",
            reporter="someone-else",
            reporter_kind="citoyen",
        )
    )
    response = page.goto(f"{hygie.base}/ens/applications/signalements/{other['id']}")
    assert response is not None and response.status == 404
    assert "connecter depuis hier" not in page.locator("main").inner_text()


def test_anyone_reads_the_public_page_reports_once_and_follows_the_link(
    page: Any, hygie: LiveHygie, catalogue: Catalogue, shots: Path
) -> None:
    device, store = catalogue.device, hygie.runtime.app_store
    page.goto(f"{hygie.base}/store/applications/{device.id}")
    expect(page.locator("h1")).to_have_text(DEVICE)
    expect(page.locator("#fiche-editeur")).to_contain_text(PUBLISHER)
    expect(page.locator("#historique-referencement")).to_contain_text("Référencée avec échange de données")
    assert page.locator("#navigation-ens").count() == 0  # no portal menu
    assert_accessible(page, "public app page")
    page.screenshot(path=str(shots / "store-application.png"), full_page=True)

    # the wellness app's page: no access to the record; reported by an anonymous visitor
    wellness = catalogue.wellness
    page.goto(f"{hygie.base}/store/applications/{wellness.id}")
    expect(page.locator("#donnees-aucune")).to_contain_text("n’accède pas au dossier")
    expect(page.locator("#fiche-evaluation")).to_contain_text("Auto-évaluation")
    expect(page.locator("#fiche-evaluation")).to_contain_text("Engagement signé par Jeanne Morel, présidente")
    expect(page.locator("#historique-referencement")).to_contain_text("Référencée après auto-évaluation")
    assert_accessible(page, "public app page (wellness)")
    page.get_by_role("link", name="Signaler un problème").click()
    page.wait_for_url(f"{hygie.base}/store/applications/{wellness.id}/signaler")
    assert_accessible(page, "public report form")
    tick(page, "nature-dysfonctionnement")
    page.fill("#texte", "Court")
    page.fill("#contact", "pas-une-adresse")
    page.get_by_role("button", name="Envoyer le signalement").click()
    expect(page.locator("#texte-erreur")).to_contain_text("10 caractères au moins")
    expect(page.locator("#contact-erreur")).to_contain_text("n’est pas valide")
    expect(page.locator("#contact")).to_have_value("pas-une-adresse")
    expect(page.locator("#nature-dysfonctionnement")).to_be_checked()
    assert_accessible(page, "public report form with errors")
    page.screenshot(path=str(shots / "store-signaler-erreurs.png"), full_page=True)

    before = len(hygie.call(store.reports(app_id=wellness.id)))
    page.fill(
        "#texte", "Le compteur de pas se remet à zéro chaque nuit et les défis de la semaine disparaissent."
    )
    page.fill("#contact", "lecteur@example.fr")
    page.get_by_role("button", name="Envoyer le signalement").click()
    page.wait_for_url(f"{hygie.base}/store/signalements/*?envoye=1")
    link = page.locator("#lien-suivi").inner_text().strip()
    expect(page.locator("#tri")).to_contain_text("l’Autorité du numérique en santé")
    expect(page.locator("#etat-signalement")).to_contain_text("Reçu")
    assert_accessible(page, "public report follow-up")
    page.screenshot(path=str(shots / "store-suivi.png"), full_page=True)
    report_id = urlsplit(link).path.rsplit("/", 1)[1]
    filed = hygie.call(store.report_of(report_id))
    assert filed is not None
    assert (filed["reporter"], filed["reporter_kind"], filed["contact"]) == (
        None,
        "anonyme",
        "lecteur@example.fr",
    )
    assert len(hygie.call(store.reports(app_id=wellness.id))) == before + 1

    page.goto(link)
    expect(page.locator("h1")).to_have_text("Suivi de votre signalement")
    assert page.locator("#signalement-envoye").count() == 0

    # a form sent twice (or replayed) files nothing the second time
    with httpx.Client(base_url=hygie.base) as http:
        form = http.get(f"/store/applications/{wellness.id}/signaler").text
        token = form.split('name="formulaire" value="', 1)[1].split('"', 1)[0]
        data = {"formulaire": token, "nature": "autre", "texte": "Une publicité apparaît au lancement."}
        first = http.post(f"/store/applications/{wellness.id}/signaler", data=data)
        assert first.status_code == 303
        again = http.post(f"/store/applications/{wellness.id}/signaler", data=data)
        assert again.status_code == 400
        assert "déjà été envoyé ou a expiré" in again.text
        assert "Une publicité apparaît au lancement." in again.text  # kept for a second try
        forged = http.post(
            f"/store/applications/{wellness.id}/signaler", data={**data, "formulaire": "x" * 32}
        )
        assert forged.status_code == 400
        assert len(hygie.call(store.reports(app_id=wellness.id))) == before + 2
        # a draft has no public page, nor an unknown app, nor an unknown report
        assert http.get(f"/store/applications/{catalogue.draft.id}").status_code == 404
        assert http.get(f"/store/applications/{catalogue.draft.id}/signaler").status_code == 404
        assert http.get("/store/applications/inconnue").status_code == 404
        assert http.get("/store/signalements/inconnu").status_code == 404
    page.goto(f"{hygie.base}/store/applications/{catalogue.draft.id}")
    assert_accessible(page, "public page of a draft (404)")


def test_a_professional_filters_the_prescribable_apps(
    page: Any, hygie: LiveHygie, smart_app: str, catalogue: Catalogue, people: People, shots: Path
) -> None:
    pro = people.professional
    sign_in_at(page, hygie, pro.login, "/bsp/applications", pro.totp_secret)
    assert _names(page) == [DEVICE, WELLNESS]
    assert_accessible(page, "BSP catalogue")
    tick(page, "prescriptible")
    page.locator("#filtres-catalogue").get_by_role("button", name="Rechercher").click()
    page.wait_for_url("**/bsp/applications?*prescriptible=oui*")
    assert _names(page) == [DEVICE]
    expect(page.locator("#prescriptible")).to_be_checked()
    assert_accessible(page, "BSP catalogue (prescribable)")
    page.screenshot(path=str(shots / "bsp-applications-prescriptibles.png"), full_page=True)
    page.goto(f"{hygie.base}/bsp/applications?rembourse=oui&categorie=3")
    expect(page.locator("#titre-resultats")).to_have_text("Aucune application pour cette recherche")
    query = parse_qs(urlsplit(page.url).query)
    assert query == {"rembourse": ["oui"], "categorie": ["3"]}

    # the app's page and the report form, as a professional
    page.goto(f"{hygie.base}/bsp/applications?prescriptible=oui")
    page.get_by_role("link", name=DEVICE).click()
    page.wait_for_url(f"{hygie.base}/bsp/applications/{catalogue.device.id}")
    expect(page.locator("#connecter")).to_contain_text("onglet « Applications »")
    expect(page.locator("#fiche-modele")).to_contain_text("Un professionnel de santé peut la prescrire.")
    assert_accessible(page, "BSP app page")
    page.screenshot(path=str(shots / "bsp-applications-fiche.png"), full_page=True)
    page.get_by_role("link", name="Signaler un problème").click()
    tick(page, "nature-dysfonctionnement")
    page.fill("#texte", "Les pesées du patient arrivent avec deux jours de retard dans le dossier.")
    page.get_by_role("button", name="Envoyer le signalement").click()
    page.wait_for_url(f"{hygie.base}/bsp/applications/signalements/*")
    report_id = page.url.rsplit("/", 1)[1]
    filed = hygie.call(hygie.runtime.app_store.report_of(report_id))
    assert filed is not None and filed["reporter_kind"] == "professionnel"
    assert filed["reporter"] == pro.account_id
    page.goto(f"{hygie.base}/bsp/applications/signalements")
    expect(page.locator("#mes-signalements")).to_contain_text(DEVICE)
    assert_accessible(page, "BSP my reports")

    # listed with data exchange for professionals: it opens in a patient's record
    durand = hygie.patients["durand"]
    page.goto(f"{hygie.base}/bsp/patients/{durand}/applications")
    card = page.locator("#applications-patient li", has_text=DEVICE)
    card.get_by_role("button", name="Ouvrir pour ce patient").click()
    page.wait_for_selector(f"h1:has-text('Autoriser {DEVICE}')")
    assert "DURAND Léa" in page.locator("main").inner_text()
    page.locator("button[name=decision][value=accepter]").click()
    page.wait_for_url(f"{smart_app}/mesures.html*")
    page.wait_for_selector("body[data-status=ready], body[data-status=error]")
    assert page.locator("body").get_attribute("data-status") == "ready", page.locator("#erreur").inner_text()
    expect(page.locator("#patient-nom")).to_have_text("Léa DURAND")


def test_an_auditor_suspends_the_app_it_leaves_the_catalogue_and_its_changelog_says_so(
    page: Any, hygie: LiveHygie, catalogue: Catalogue, people: People, shots: Path
) -> None:
    """The end of the journey: a report reached the medicines agency's control queue; an auditor
    of the agency suspends the app from the report's page, with a public reason; the app leaves
    the citizens' and the professionals' catalogues, its public changelog says why, and its SMART
    client is suspended (its tokens are refused)."""
    device, store = catalogue.device, hygie.runtime.app_store
    report = hygie.call(
        store.report(
            device.id,
            "Mon poids affiché est faux de dix kilos, mon médecin a changé mon traitement à tort.",
            declared="effet_indesirable",
            reporter=people.citizen.account_id,
            reporter_kind="citoyen",
        )
    )
    assert report["queue"] == "controle"
    accounts = hygie.runtime.accounts
    assert accounts is not None
    auditor = hygie.call(accounts.create("authority", "auditrice.ansm@example.fr", PASSWORD, totp=True))
    account, uri = auditor
    assert uri is not None
    hygie.call(store.add_member(account.id, "authority", agency="ansm"))
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    sign_in_at(page, hygie, "auditrice.ansm@example.fr", f"/autorite/signalements/{report['id']}", secret)
    expect(page.locator("main")).to_contain_text("dix kilos")
    reason = "Mesures faussées signalées, en cours d’analyse : suspension conservatoire."
    tick(page, "statut-en_cours")
    page.fill("#issue", "Analyse demandée à l’éditeur.")
    tick(page, "decision-suspend")
    page.fill("#motif", reason)
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.locator("main")).to_contain_text("En cours d’instruction")
    assert_accessible(page, "authority report after suspension")

    suspended = hygie.call(store.app(device.id))
    assert suspended is not None and suspended.state == "suspended"
    assert hygie.runtime.auth is not None
    client = hygie.call(hygie.runtime.auth.clients.get(device.client_id))
    assert client is not None and client.status == "suspended"

    # out of the catalogues
    citizen = page.context.browser.new_context()
    other = citizen.new_page()
    sign_in_at(other, hygie, people.citizen.login, "/ens/applications")
    assert DEVICE not in _names(other)
    other.goto(f"{hygie.base}/ens/applications?q=pesees")
    expect(other.locator("#titre-resultats")).to_have_text("Aucune application pour cette recherche")
    citizen.close()

    # its public changelog says so, dated, by whom and why
    page.goto(f"{hygie.base}/store/applications/{device.id}")
    latest = page.locator("#historique-referencement tbody tr").nth(0)
    expect(latest).to_contain_text("Suspendue")
    expect(latest).to_contain_text("Agence du médicament (ANSM)")
    expect(latest).to_contain_text(reason)
    assert_accessible(page, "public page of a suspended app")
    page.screenshot(path=str(shots / "store-application-suspendue.png"), full_page=True)
