"""The Store santé's authorities in the browser (``/autorite``): review, reports, audits, the grid.

Two agents sign in with a password and a second factor: one of the digital-health authority
(``ans``), one of the medicines agency (``ansm``). The publisher and its apps are made through
``runtime.app_store`` directly (the publishers' pages are tested elsewhere): a draft with a
complete assessment against the grid in force, then submitted.

* the ``ans`` agent takes a medical-device app that asks for record data, refuses to send it back
  without a note, and lists it with data exchange: its SMART client ``app-<id>`` is active; the
  catalogue runs its technical checks;
* a report about a medical-device app goes to the ``ansm`` control queue, never to ``ans``'s (the
  ``ans`` agent gets a 403 page on it); the ``ansm`` agent closes it with an outcome and suspends
  the app with a public reason in the same form — a suspension without reason is refused and
  leaves the report open; the app's client is then suspended, its changelog says so;
* a campaign draws listed apps by risk from a recorded seed (the draw replays), a finding is
  recorded with its decision;
* the grid's revision refuses what is not JSON and a grid with faults (each listed, the text
  kept), then publishes version 2.

Every page is checked with axe-core; ``autorite-*.png`` feed the guide
(``docs/guide/store-autorites.md``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from playwright.sync_api import expect

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import PASSWORD, LiveHygie
from hygie.domain.store.catalogue import App, Assessment, pathway, siret_valid
from hygie.domain.store.sampling import draw
from hygie.store.service import Member

_numbers = itertools.count(1)
MD_SCOPES = "openid fhirUser launch/patient patient/Patient.rs patient/Observation.crs"


@dataclass(frozen=True)
class Agent:
    login: str
    totp_secret: str
    member: Member


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def new_agent(hygie: LiveHygie, agency: str) -> Agent:
    """An authority's account (password + TOTP) and its membership of the store, new each time (a
    TOTP step is accepted once per account)."""
    accounts = hygie.runtime.accounts
    assert accounts is not None
    n = next(_numbers)
    account, uri = hygie.call(
        accounts.create("authority", f"agent.{agency}.{n}@autorite.example.fr", PASSWORD, totp=True)
    )
    assert uri is not None
    member = hygie.call(hygie.runtime.app_store.add_member(account.id, "authority", agency=agency))
    return Agent(account.login, parse_qs(urlsplit(uri).query)["secret"][0], member)


def sign_in(page: Any, hygie: LiveHygie, agent: Agent, path: str = "/autorite") -> None:
    page.goto(f"{hygie.base}{path}")
    fill_sign_in(page, agent.login, PASSWORD, agent.totp_secret)
    page.wait_for_url(f"{hygie.base}{path}")


def a_siret(prefix: str) -> str:
    """A SIRET with a valid Luhn key after a 13-digit prefix."""
    return next(s for s in (f"{prefix}{d}" for d in range(10)) if siret_valid(s))


@pytest.fixture(scope="module")
def publisher(hygie: LiveHygie) -> Member:
    store, accounts = hygie.runtime.app_store, hygie.runtime.accounts
    assert accounts is not None
    company = hygie.call(
        store.create_publisher("Santé Connectée SAS", a_siret("8123456780001"), "contact@sc.fr")
    )
    account, _ = hygie.call(accounts.create("publisher", "editeur@sante-connectee.fr", PASSWORD))
    return hygie.call(store.add_member(account.id, "publisher", publisher_id=company.id))


def submitted_app(
    hygie: LiveHygie,
    publisher: Member,
    name: str,
    *,
    category: str,
    scopes: str = "",
    redirect_uris: tuple[str, ...] = (),
) -> App:
    """A draft with every answer the grid in force requires of it, then submitted (listed at once
    on the self-assessment path, waiting for review otherwise)."""
    store = hygie.runtime.app_store
    grid = hygie.call(store.grid())
    draft = App(
        id="",
        publisher_id="",
        name=name,
        summary=f"{name} : suivi au quotidien, partagé avec vos soignants.",
        description=f"{name} aide les personnes à suivre leurs mesures et alerte en cas d’écart.",
        category=category,
        ce_class="IIa" if category == "1" else "",
        website="https://www.sante-connectee.example.fr",
        redirect_uris=redirect_uris,
        hosts=("127.0.0.1",),
        scopes=scopes,
        purpose="Suivre vos glycémies et les partager avec votre diabétologue." if scopes else "",
    )
    answers = {
        c.id: Assessment(
            True,
            f"Dossier {c.id} : https://www.sante-connectee.example.fr/preuves/{c.id.lower()}.pdf",
            "Laboratoire national d’essais, 2 octobre 2026, rapport LNE-4521 : conforme"
            if c.evidence == "test"
            else "",
        )
        for c in grid.required(category, draft.data_access)
    }
    commitment = (
        None
        if pathway(draft) == "evaluation"
        else {"by": "Jeanne MOREAU, présidente", "at": 1, "text": "Je certifie l’exactitude de ces réponses."}
    )
    saved = hygie.call(store.save_draft(publisher, replace(draft, assessment=answers, commitment=commitment)))
    return hygie.call(store.submit(publisher, saved.id))


@pytest.fixture(scope="module")
def wellness_apps(hygie: LiveHygie, publisher: Member) -> list[App]:
    """Two apps on the self-assessment path: listed as soon as submitted."""
    apps = [
        submitted_app(hygie, publisher, "Marche Active", category="3"),
        submitted_app(hygie, publisher, "Rendez-vous Santé", category="2"),
    ]
    assert [a.state for a in apps] == ["listed", "listed"]
    return apps


@pytest.fixture(scope="module")
def reported(hygie: LiveHygie, publisher: Member, smart_app: str) -> tuple[App, dict[str, Any]]:
    """A medical-device app listed with data exchange, and a citizen's report about it."""
    store = hygie.runtime.app_store
    app = submitted_app(
        hygie,
        publisher,
        "Insuline Pilote",
        category="1",
        scopes=MD_SCOPES,
        redirect_uris=(f"{smart_app}/mesures.html",),
    )
    reviewer = new_agent(hygie, "ans").member
    hygie.call(store.take(reviewer, app.id))
    app = hygie.call(store.approve(reviewer, app.id, "Dossier complet.", data_exchange=True))
    report = hygie.call(
        store.report(
            app.id,
            "Depuis la mise à jour, l’application m’a conseillé une mauvaise dose d’insuline et j’ai fait "
            "un malaise.",
            declared="effet_indesirable",
            reporter=None,
            reporter_kind="citoyen",
        )
    )
    return app, report


def client_status(hygie: LiveHygie, client_id: str) -> str:
    assert hygie.runtime.auth is not None
    client = hygie.call(hygie.runtime.auth.clients.get(client_id))
    assert client is not None, client_id
    return client.status


def test_ans_reviews_and_lists_a_medical_device_with_data_exchange(
    page: Any, hygie: LiveHygie, publisher: Member, wellness_apps: list[App], smart_app: str, shots: Path
) -> None:
    app = submitted_app(
        hygie,
        publisher,
        "Glycémie Connect",
        category="1",
        scopes=MD_SCOPES,
        redirect_uris=(f"{smart_app}/mesures.html",),
    )
    assert app.state == "submitted"
    agent = new_agent(hygie, "ans")
    sign_in(page, hygie, agent)
    expect(page.locator("h1")).to_have_text("Tableau de bord du catalogue")
    expect(page.locator("#a-traiter")).to_contain_text("en attente d’évaluation")
    expect(page.locator("#table-etats")).to_contain_text("Soumise")
    expect(page.locator("#file-surveillance")).to_contain_text("(votre file)")
    assert_accessible(page, "authority dashboard")
    page.screenshot(path=str(shots / "autorite-tableau.png"), full_page=True)

    page.get_by_role("link", name="Évaluations", exact=True).first.click()
    page.wait_for_url(f"{hygie.base}/autorite/evaluations")
    queue = page.locator("#file-evaluations")
    expect(queue).to_contain_text("Glycémie Connect")
    expect(queue).to_contain_text("Évaluation a priori — accès au dossier")
    assert "Marche Active" not in queue.inner_text()  # self-assessed: listed, not in the queue
    assert_accessible(page, "review queue")
    page.screenshot(path=str(shots / "autorite-evaluations.png"), full_page=True)

    queue.get_by_role("link", name="Glycémie Connect").click()
    page.wait_for_url(f"{hygie.base}/autorite/evaluations/{app.id}")
    expect(page.locator("#portees")).to_contain_text("Lire et ajouter ou modifier")
    expect(page.locator("#declaration")).to_contain_text("classe CE IIa")
    expect(page.locator("#critere-SEC-03")).to_contain_text("rapport LNE-4521")
    expect(page.locator("#critere-UTI-02")).to_contain_text("Exigé")
    assert_accessible(page, "submission")
    page.get_by_role("button", name="Commencer l’évaluation").click()
    expect(page.locator("#etat-application")).to_contain_text("En cours d’évaluation")
    expect(page.get_by_role("button", name="Référencer avec échange de données")).to_have_count(1)
    assert_accessible(page, "submission under review")
    page.screenshot(path=str(shots / "autorite-evaluation.png"))  # the top of a long page

    # sending back takes a note: refused, nothing changes, the form says why beside the note
    page.get_by_role("button", name="Renvoyer à l’éditeur").click()
    expect(page.locator("#note-erreur")).to_contain_text("ce qu’il doit compléter")
    assert_accessible(page, "review refused")
    assert hygie.call(hygie.runtime.app_store.app(app.id)).state == "under_review"  # type: ignore[union-attr]

    page.fill("#note", "Preuves complètes ; test d’intrusion récent.")
    page.get_by_role("button", name="Référencer avec échange de données").click()
    expect(page.locator("#etat-application")).to_contain_text("Référencée avec échange de données")
    expect(page.locator("main")).to_contain_text(f"son client SMART app-{app.id} est actif")
    expect(page.locator("#historique")).to_contain_text("Preuves complètes")
    assert client_status(hygie, f"app-{app.id}") == "active"

    # the catalogue: its technical checks, run now
    page.goto(f"{hygie.base}/autorite/catalogue")
    row = page.locator(f"#app-{app.id}")
    expect(row).to_contain_text("Jamais contrôlée")
    row.get_by_role("button", name="Lancer les contrôles techniques de Glycémie Connect").click()
    page.wait_for_url(f"{hygie.base}/autorite/catalogue*")
    expect(page.locator("main")).to_contain_text(
        "Glycémie Connect : les 5 contrôles techniques sont réussis."
    )
    expect(page.locator(f"#app-{app.id}")).to_contain_text("Enregistrement SMART valide")
    expect(page.locator(f"#app-{app.id}")).to_contain_text("Référencée avec échange de données")
    assert_accessible(page, "catalogue")
    page.screenshot(path=str(shots / "autorite-catalogue.png"), full_page=True)


def test_a_report_on_a_medical_device_is_not_in_the_digital_health_authoritys_queue(
    page: Any, hygie: LiveHygie, reported: tuple[App, dict[str, Any]]
) -> None:
    app, report = reported
    assert report["queue"] == "controle"
    sign_in(page, hygie, new_agent(hygie, "ans"), "/autorite/signalements")
    expect(page.locator("main")).to_contain_text("Surveillance")
    assert app.name not in page.locator("main").inner_text()
    assert_accessible(page, "ans queue")
    response = page.goto(f"{hygie.base}/autorite/signalements/{report['id']}")
    assert response is not None and response.status == 403
    expect(page.locator("main")).to_contain_text("seule l’autorité qui la tient l’instruit")
    assert_accessible(page, "another agency's report")


def test_the_medicines_agency_closes_a_report_and_suspends_the_app(
    page: Any, hygie: LiveHygie, reported: tuple[App, dict[str, Any]], shots: Path
) -> None:
    app, report = reported
    store = hygie.runtime.app_store
    assert client_status(hygie, app.client_id) == "active"
    sign_in(page, hygie, new_agent(hygie, "ansm"), "/autorite/signalements")
    row = page.locator(f"#signalement-{report['id']}")
    expect(row).to_contain_text("Insuline Pilote")
    expect(row).to_contain_text("Effet néfaste pour la santé")
    expect(row).to_contain_text("Critique")  # harm with a sign of gravity, through a medical device
    expect(row).to_contain_text("malaise")  # a keyword the triage kept
    row.locator("summary").click()
    expect(row).to_contain_text("File « Contrôle")
    assert_accessible(page, "ansm queue")
    page.screenshot(path=str(shots / "autorite-signalements.png"), full_page=True)

    row.get_by_role("link", name="Insuline Pilote").click()
    page.wait_for_url(f"{hygie.base}/autorite/signalements/{report['id']}")
    expect(page.locator("#texte")).to_contain_text("mauvaise dose d’insuline")
    expect(page.locator("#raisons")).to_contain_text("matériovigilance")
    assert_accessible(page, "report")

    # closing and suspending without a public reason: refused, the report stays open
    page.check("#statut-clos", force=True)
    page.fill("#issue", "Défaut de calcul confirmé par l’éditeur ; application suspendue.")
    page.check("#decision-suspend", force=True)
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.locator("#motif-erreur")).to_contain_text("Motivez la décision")
    expect(page.locator("#issue")).to_have_value(
        "Défaut de calcul confirmé par l’éditeur ; application suspendue."
    )
    assert hygie.call(store.report_of(report["id"]))["status"] == "recu"  # type: ignore[index]
    assert_accessible(page, "report refused")
    page.screenshot(path=str(shots / "autorite-signalement.png"), full_page=True)

    page.fill("#motif", "Erreur de calcul de dose signalée : suspension le temps de la correction.")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.locator("#issue-finale")).to_contain_text("Défaut de calcul confirmé")
    expect(page.locator("main")).to_contain_text("Décision appliquée : « Suspendue »")
    expect(page.locator("#decisions-depuis")).to_contain_text("Erreur de calcul de dose")
    assert_accessible(page, "report closed")

    closed = hygie.call(store.report_of(report["id"]))
    assert closed is not None and closed["status"] == "clos" and closed["outcome"].startswith("Défaut")
    suspended = hygie.call(store.app(app.id))
    assert suspended is not None and suspended.state == "suspended"
    last = suspended.changelog[-1]
    assert (last.event, last.by) == ("suspend", "Agence du médicament (ANSM)")
    assert client_status(hygie, app.client_id) == "suspended"

    page.goto(f"{hygie.base}/autorite/evaluations/{app.id}")
    expect(page.locator("#historique")).to_contain_text("Suspendue")
    expect(page.locator("#historique")).to_contain_text("suspension le temps de la correction")
    assert_accessible(page, "suspended app")

    page.goto(f"{hygie.base}/autorite")
    cells = page.locator("#file-controle td")
    expect(cells.nth(2)).to_have_text("1")  # closed
    assert_accessible(page, "dashboard after a report")


def test_an_audit_campaign_draws_by_risk_and_records_a_finding(
    page: Any, hygie: LiveHygie, wellness_apps: list[App], shots: Path
) -> None:
    store = hygie.runtime.app_store
    sign_in(page, hygie, new_agent(hygie, "ans"), "/autorite/campagnes")
    expect(page.locator("#risques")).to_contain_text("Marche Active")
    expect(page.locator("#risques")).to_contain_text("catégorie 3")
    assert_accessible(page, "campaigns")

    page.fill("#nom", "")
    page.fill("#taille", "2")
    page.get_by_role("button", name="Tirer les applications").click()
    expect(page.locator("#nom-erreur")).to_contain_text("Nommez la campagne")
    assert_accessible(page, "campaign refused")

    page.fill("#nom", "Contrôle de novembre")
    page.fill("#taille", "2")
    page.fill("#graine", "20261123")
    page.get_by_role("button", name="Tirer les applications").click()
    page.wait_for_url(f"{hygie.base}/autorite/campagnes/*")
    expect(page.locator("#graine")).to_contain_text("20261123")
    campaign_id = page.url.rsplit("/", 1)[1]
    campaign = hygie.call(store.campaign(campaign_id))
    assert campaign is not None and len(campaign["drawn"]) == 2
    # the same seed on the same catalogue draws the same apps
    assert [d["app_id"] for d in campaign["drawn"]] == [
        r.app_id for r in draw(hygie.call(store.risks()), 2, 20261123)
    ]
    assert_accessible(page, "campaign")
    page.screenshot(path=str(shots / "autorite-campagne.png"), full_page=True)

    first = campaign["drawn"][0]["app_id"]
    card = page.locator(f"#app-{first}")
    card.locator("textarea").fill("Notice d’information sans durée de conservation.")
    card.get_by_label("Avertir l’éditeur").check(force=True)
    card.get_by_role("button", name="Enregistrer le constat").click()
    expect(page.locator(f"#app-{first} .constat")).to_contain_text("sans durée de conservation")
    expect(page.locator("main")).to_contain_text("Constat enregistré")
    assert_accessible(page, "campaign with a finding")
    warned = hygie.call(store.app(first))
    assert warned is not None and warned.changelog[-1].event == "warn" and warned.last_audit > 0


def test_the_grid_revision_lists_its_problems_then_publishes_version_2(
    page: Any, hygie: LiveHygie, shots: Path
) -> None:
    store = hygie.runtime.app_store
    current = hygie.call(store.grid())
    assert current.version == 1
    sign_in(page, hygie, new_agent(hygie, "ans"), "/autorite/grille")
    expect(page.locator("main")).to_contain_text("Version 1 en vigueur")
    expect(page.locator("#famille-modele")).to_contain_text("CNNum, recommandation 9")
    assert_accessible(page, "grid")
    page.screenshot(path=str(shots / "autorite-grille.png"))  # the top of a long page

    page.fill("#grille", '{"families": [')
    page.get_by_role("button", name="Publier la version 2").click()
    expect(page.locator("#problemes")).to_contain_text("n’est pas du JSON valide")
    expect(page.locator("#grille")).to_have_value('{"families": [')
    assert_accessible(page, "grid not JSON")

    faulty = current.to_json()
    faulty["criteria"][0]["evidence"] = "photo"
    faulty["criteria"][1]["family"] = "inconnue"
    typed = orjson.dumps(faulty, option=orjson.OPT_INDENT_2).decode()
    page.fill("#grille", typed)
    page.get_by_role("button", name="Publier la version 2").click()
    problems = page.locator("#problemes li")
    expect(problems).to_have_count(2)
    expect(page.locator("#problemes")).to_contain_text("criteria[0].evidence : 'photo'")
    expect(page.locator("#problemes")).to_contain_text("criteria[1].family : famille inconnue")
    expect(page.locator("#grille")).to_have_value(typed)
    assert_accessible(page, "grid with problems")
    page.screenshot(path=str(shots / "autorite-grille-erreurs.png"))  # the top of a long page
    assert hygie.call(store.grid()).version == 1

    revised = current.to_json()
    env = next(c for c in revised["criteria"] if c["id"] == "ENV-01")
    env["levels"]["1"] = "exige"
    revised["note"] = "Écoconception exigée des dispositifs médicaux."
    page.fill("#grille", orjson.dumps(revised, option=orjson.OPT_INDENT_2).decode())
    page.get_by_role("button", name="Publier la version 2").click()
    expect(page.locator("main")).to_contain_text("Version 2 de la grille publiée")
    expect(page.locator("main p.fr-text--lead")).to_contain_text("Version 2 en vigueur")
    expect(page.locator("#versions tbody tr")).to_have_count(2)
    assert_accessible(page, "grid version 2")
    grid = hygie.call(store.grid())
    assert grid.version == 2 and grid.note.startswith("Écoconception")
    criterion = grid.criterion("ENV-01")
    assert criterion is not None and criterion.level("1", False) == "exige"
    assert hygie.call(store.grid(1)).criterion("ENV-01").level("1", False) == "recommande"  # type: ignore[union-attr]
