"""The Store santé's service on the real key-value stores (memory, SQLite, PostgreSQL), with the
real authorisation server beside it.

Publishers and their SIRET, the graduated process (a self-assessed app listed at submission, an
evaluated one taken, approved with data exchange: its SMART client ``app-<id>`` active), what a
suspension does to that client's tokens (refused at once) and a reinstatement undoes, the public
changelog in order with its actors, transitions the process refuses, reports routed to the right
agency and handled only by it, reproducible audit draws, and the authority's grid revisions.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from hygie.auth.server import AuthorizationServer
from hygie.auth.tokens import InvalidToken
from hygie.domain.store.catalogue import App, Assessment
from hygie.domain.store.grid import shipped_grid
from hygie.domain.store.sampling import draw
from hygie.ports import KeyValueStore
from hygie.store.probes import Prober
from hygie.store.service import AGENCIES, Member, StoreError, StoreService

pytestmark = pytest.mark.anyio

ISSUER = "http://testserver"
SIRET = "73282932000074"
SIRET_2 = "55208131766522"  # Luhn-valid as well
BACKENDS = ["memory", "sqlite", "postgres"]
DEVICE_SCOPES = "launch openid fhirUser patient/Patient.rs patient/Observation.crs"


def increasing_clock() -> Callable[[], int]:
    """Real time in µs (the stores expire records by it), never the same value twice."""
    last = 0

    def clock() -> int:
        nonlocal last
        last = max(time.time_ns() // 1000, last + 1)
        return last

    return clock


@pytest.fixture(params=BACKENDS)
async def kv(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyValueStore]:
    if request.param == "memory":
        from hygie.stores.kv import MemoryKeyValueStore

        yield MemoryKeyValueStore()
    elif request.param == "sqlite":
        from hygie.stores.kv import SqliteKeyValueStore

        store = SqliteKeyValueStore(str(tmp_path / "kv.sqlite3"))
        yield store
        store.conn.close()
    else:
        import asyncpg

        from hygie.stores.kv import PostgresKeyValueStore

        pool = await asyncpg.create_pool(request.getfixturevalue("pg_database"), min_size=1, max_size=2)
        pg = PostgresKeyValueStore(pool)
        await pg.ensure_schema()
        await pool.execute("TRUNCATE kv")
        yield pg
        await pool.close()


@dataclass
class World:
    kv: KeyValueStore
    auth: AuthorizationServer
    store: StoreService
    clock: Callable[[], int]
    publisher: Member
    other_publisher: Member
    ans: Member
    ansm: Member

    def fresh_auth(self) -> AuthorizationServer:
        """Another process's authorisation server on the same records (its caches empty)."""
        return AuthorizationServer(self.kv, issuer=ISSUER, fhir_base=f"{ISSUER}/fhir", clock=self.clock)


@pytest.fixture
async def world(kv: KeyValueStore) -> World:
    clock = increasing_clock()
    auth = AuthorizationServer(kv, issuer=ISSUER, fhir_base=f"{ISSUER}/fhir", clock=clock)
    store = StoreService(kv, auth.clients, clock)
    mine = await store.create_publisher("Santé Connectée SAS", SIRET, "contact@sante-connectee.fr")
    theirs = await store.create_publisher("Autre Éditeur", SIRET_2, "contact@autre.fr")
    return World(
        kv,
        auth,
        store,
        clock,
        await store.add_member("acct-editeur", "publisher", publisher_id=mine.id),
        await store.add_member("acct-autre", "publisher", publisher_id=theirs.id),
        await store.add_member("acct-ans", "authority", agency="ans"),
        await store.add_member("acct-ansm", "authority", agency="ansm"),
    )


def wellness(name: str = "Pas à pas") -> App:
    """A complete wellness app: category 3, no resource scope, every criterion met, signed."""
    grid = shipped_grid()
    return App(
        id="",
        publisher_id="",
        name=name,
        summary="Un podomètre et des conseils pour marcher chaque jour.",
        description="Compte vos pas et propose des parcours de marche.",
        category="3",
        website="https://bien-etre.exemple.fr",
        hosts=("bien-etre.exemple.fr",),
        assessment={c.id: Assessment(True) for c, _ in grid.applicable("3", False)},
        commitment={"by": "Inès Moreau", "role": "Présidente", "at": 1, "text": "Je m’engage…"},
    )


def device(name: str = "Tensio Suivi") -> App:
    """A complete medical device reading and writing the record, with its evidence and tests."""
    grid = shipped_grid()
    return App(
        id="",
        publisher_id="",
        name=name,
        summary="Le suivi de la tension artérielle, avec alertes au médecin.",
        description="Relève la tension depuis un brassard connecté et l’écrit dans les mesures.",
        category="1",
        ce_class="IIa",
        launch_mode="widget",
        website="https://tensio.exemple.fr",
        launch_url="https://tensio.exemple.fr/lancement",
        redirect_uris=("https://tensio.exemple.fr/retour",),
        hosts=("tensio.exemple.fr",),
        scopes=DEVICE_SCOPES,
        purpose="Tracer vos courbes de tension et prévenir votre médecin en cas d’écart.",
        max_days=180,
        assessment={
            c.id: Assessment(
                True, f"https://tensio.exemple.fr/preuves/{c.id}.pdf", "Labo X, 2026-10-02 : conforme"
            )
            for c, _ in grid.applicable("1", True)
        },
    )


async def refused(call: Any, status: int) -> StoreError:
    with pytest.raises(StoreError) as caught:
        await call
    assert caught.value.status == status, caught.value.problems
    return caught.value


async def listed_device(world: World, name: str = "Tensio Suivi") -> App:
    draft = await world.store.save_draft(world.publisher, device(name))
    await world.store.submit(world.publisher, draft.id)
    await world.store.take(world.ans, draft.id)
    return await world.store.approve(world.ans, draft.id, "Dossier complet.", data_exchange=True)


async def test_a_publisher_is_an_organisation_with_a_valid_siret_registered_once(world: World) -> None:
    error = await refused(world.store.create_publisher("", "12345678901234", "pas-une-adresse"), 422)
    assert set(error.by_field) == {"nom", "siret", "courriel"}
    error = await refused(world.store.create_publisher("Copie", "732 829 320 00074", "a@b.fr"), 409)
    assert "siret" in error.by_field
    found = await world.store.publisher(str(world.publisher.publisher_id))
    assert found is not None and found.siret == SIRET and found.name == "Santé Connectée SAS"
    await refused(world.store.add_member("acct-x", "publisher", publisher_id="inconnu"), 422)
    await refused(world.store.add_member("acct-x", "authority", agency="cnil"), 422)
    member = await world.store.member("acct-editeur")
    assert member == world.publisher and member.actor == "L’éditeur"
    assert (await world.store.member("acct-ansm")) == world.ansm and world.ansm.actor == AGENCIES["ansm"]
    assert await world.store.member("personne") is None


async def test_a_self_assessed_app_is_listed_when_submitted(world: World) -> None:
    store = world.store
    unsigned = replace(wellness(), commitment=None, summary="Court")
    draft = await store.save_draft(world.publisher, unsigned)
    assert draft.id and draft.state == "draft" and draft.publisher_id == world.publisher.publisher_id
    assert [a.id for a in await store.apps_of(str(world.publisher.publisher_id))] == [draft.id]
    error = await refused(store.submit(world.publisher, draft.id), 422)
    assert set(error.by_field) == {"resume", "engagement"}
    assert (await store.app(draft.id)).state == "draft"  # type: ignore[union-attr]

    # another publisher, or an authority, cannot touch it
    await refused(store.save_draft(world.other_publisher, replace(draft, name="Volée")), 404)
    await refused(store.submit(world.other_publisher, draft.id), 404)
    await refused(store.save_draft(world.ans, replace(draft, id="")), 403)

    complete = replace(wellness(), id=draft.id)
    await store.save_draft(world.publisher, complete)
    listed = await store.submit(world.publisher, draft.id)
    assert listed.state == "listed" and listed.listed_at and listed.grid_version == 1
    assert [(e.event, e.before, e.after, e.by) for e in listed.changelog] == [
        ("submit", "draft", "submitted", "L’éditeur"),
        ("list_self", "submitted", "listed", "L’éditeur"),
    ]
    assert listed.client_id == ""  # no data exchange: no SMART registration
    # a listed app is no longer a draft: neither saved nor submitted again
    await refused(store.save_draft(world.publisher, listed), 409)
    await refused(store.submit(world.publisher, draft.id), 409)
    assert await store.review_queue() == []


async def test_submission_refuses_insecure_addresses_and_unreadable_declarations(world: World) -> None:
    store = world.store
    bad = replace(
        device(),
        redirect_uris=(
            "http://tensio.exemple.fr/retour",
            "https://10.0.0.5/cb",
            "https://autre.exemple.fr/cb",
        ),
        hosts=("tensio.exemple.fr", "10.0.0.5"),
        scopes="launch patient/Observation.crs patient/Nimporte.rs",
        jwks={"keys": [{"kty": "inconnu"}]},
    )
    draft = await store.save_draft(world.publisher, bad)
    error = await refused(store.submit(world.publisher, draft.id), 422)
    messages = [m for f, m in error.problems if f == "redirections"]
    assert len(messages) == 3
    assert "n’est pas en HTTPS" in messages[0]
    assert "adresse IP privée" in messages[1]
    assert "hôtes déclarés" in messages[2]
    assert "Nimporte" in error.by_field["portees"] and "jwks" in error.by_field
    assert (await store.app(draft.id)).state == "draft"  # type: ignore[union-attr]

    # the tests' knob opens the loopback only: plain http elsewhere, a private address, still refused
    loose = StoreService(world.kv, world.auth.clients, world.clock, prober=Prober(allow_private=True))
    local = replace(
        device("Locale"),
        redirect_uris=("http://127.0.0.1:8123/retour", "http://tensio.exemple.fr/cb", "https://10.0.0.5/cb"),
        launch_url="http://127.0.0.1:8123/lancement",
        hosts=("127.0.0.1", "tensio.exemple.fr", "10.0.0.5"),
    )
    draft = await loose.save_draft(world.publisher, local)
    error = await refused(loose.submit(world.publisher, draft.id), 422)
    assert [f for f, _ in error.problems] == ["redirections", "redirections"]
    assert "http://tensio.exemple.fr/cb" in error.problems[0][1] and "10.0.0.5" in error.problems[1][1]


async def test_evaluation_lists_with_data_exchange_and_a_suspension_stops_the_apps_tokens(
    world: World,
) -> None:
    store, ans = world.store, world.ans
    draft = await store.save_draft(world.publisher, device())
    # transitions the process refuses
    await refused(store.approve(ans, draft.id, "", data_exchange=True), 409)  # a draft
    submitted = await store.submit(world.publisher, draft.id)
    assert submitted.state == "submitted" and [a.id for a in await store.review_queue()] == [draft.id]
    await refused(store.approve(ans, draft.id, "", data_exchange=True), 409)  # not taken yet
    await refused(store.take(world.publisher, draft.id), 403)  # a publisher does not review
    await refused(store.take(ans, "inconnue"), 404)
    taken = await store.take(ans, draft.id)
    assert taken.state == "under_review"

    listed = await store.approve(ans, draft.id, "Dossier complet, tests probants.", data_exchange=True)
    assert listed.state == "listed_data" and listed.client_id == f"app-{draft.id}"
    client = await world.auth.clients.get(listed.client_id)
    assert client is not None and client.status == "active"
    assert client.scope == DEVICE_SCOPES and client.redirect_uris == ("https://tensio.exemple.fr/retour",)
    assert client.launch_url == "https://tensio.exemple.fr/lancement" and client.audience == ("citizen",)
    assert (await store.app_of_client(listed.client_id)) == listed
    await refused(store.decide(ans, draft.id, "reinstate", "Rien à rétablir."), 409)  # not suspended
    await refused(store.decide(ans, draft.id, "oublier", "…"), 422)

    token, _ = await world.auth.tokens.issue(
        subject="citizen-1", client_id=listed.client_id, kind="citizen", scope="patient/Observation.rs"
    )
    assert (await world.fresh_auth().tokens.verify(token)).client_id == listed.client_id

    await refused(store.decide(ans, draft.id, "suspend", " "), 409)  # a decision is motivated
    suspended = await store.decide(ans, draft.id, "suspend", "Valeurs de tension erronées signalées.")
    assert suspended.state == "suspended" and suspended.suspended_from == "listed_data"
    assert (await world.auth.clients.get(listed.client_id)).status == "suspended"  # type: ignore[union-attr]
    with pytest.raises(InvalidToken):
        await world.auth.bearer(f"Bearer {token}")
    with pytest.raises(InvalidToken):
        await world.fresh_auth().tokens.verify(token)

    reinstated = await store.decide(ans, draft.id, "reinstate", "Correctif vérifié.")
    assert reinstated.state == "listed_data"
    assert (await world.auth.clients.get(listed.client_id)).status == "active"  # type: ignore[union-attr]
    assert (await world.fresh_auth().tokens.verify(token)).subject == "citizen-1"

    delisted = await store.decide(world.ansm, draft.id, "delist", "Marquage CE retiré.")
    assert delisted.state == "delisted"
    assert (await world.auth.clients.get(listed.client_id)).status == "suspended"  # type: ignore[union-attr]
    with pytest.raises(InvalidToken):
        await world.fresh_auth().tokens.verify(token)
    await refused(store.decide(ans, draft.id, "reinstate", "…"), 409)

    stored = await store.app(draft.id)
    assert stored is not None
    assert [(e.event, e.after, e.by, e.note) for e in stored.changelog] == [
        ("submit", "submitted", "L’éditeur", ""),
        ("take", "under_review", AGENCIES["ans"], ""),
        ("approve_data", "listed_data", AGENCIES["ans"], "Dossier complet, tests probants."),
        ("suspend", "suspended", AGENCIES["ans"], "Valeurs de tension erronées signalées."),
        ("reinstate", "listed_data", AGENCIES["ans"], "Correctif vérifié."),
        ("delist", "delisted", AGENCIES["ansm"], "Marquage CE retiré."),
    ]
    times = [e.at for e in stored.changelog]
    assert times == sorted(times)


async def test_an_app_sent_back_is_a_draft_again_with_the_reviewers_note(world: World) -> None:
    store = world.store
    draft = await store.save_draft(world.publisher, device())
    await store.submit(world.publisher, draft.id)
    await refused(store.send_back(world.ans, draft.id, ""), 409)  # say why
    returned = await store.send_back(world.ans, draft.id, "Joignez le rapport complet du test d’intrusion.")
    assert returned.state == "draft" and returned.review_note.startswith("Joignez")
    resaved = await store.save_draft(
        world.publisher, replace(returned, summary="Suivi de la tension, révisé.")
    )
    assert resaved.review_note == returned.review_note and resaved.changelog == returned.changelog
    again = await store.submit(world.publisher, draft.id)
    assert [e.event for e in again.changelog] == ["submit", "return", "submit"]


async def test_reports_are_routed_to_their_agency_which_alone_handles_them(world: World) -> None:
    store = world.store
    medical = await listed_device(world)
    wellness_app = await store.submit(
        world.publisher, (await store.save_draft(world.publisher, wellness())).id
    )
    draft = await store.save_draft(world.publisher, wellness("Brouillon"))

    await refused(
        store.report(
            draft.id, "Elle ne marche pas du tout.", declared=None, reporter=None, reporter_kind="anonyme"
        ),
        404,
    )
    error = await refused(
        store.report(medical.id, "Bof", declared=None, reporter=None, reporter_kind="anonyme"), 422
    )
    assert "texte" in error.by_field

    harm = await store.report(
        medical.id,
        "La tension affichée était fausse, ma mère a fait un malaise et a été hospitalisée.",
        declared="effet_indesirable",
        reporter="acct-citoyen",
        reporter_kind="citoyen",
    )
    assert harm["queue"] == "controle" and harm["status"] == "recu"
    bug = await store.report(
        wellness_app.id,
        "L’application se ferme toute seule à chaque ouverture depuis la mise à jour.",
        declared="dysfonctionnement",
        reporter=None,
        reporter_kind="anonyme",
    )
    assert bug["queue"] == "surveillance"
    assert [r["id"] for r in await store.reports(queue="controle")] == [harm["id"]]
    assert [r["id"] for r in await store.reports(app_id=wellness_app.id)] == [bug["id"]]
    assert [r["id"] for r in await store.reports_of("acct-citoyen")] == [harm["id"]]

    # the control queue is the medicines agency's: the digital-health authority cannot handle it
    await refused(store.handle_report(world.ans, harm["id"], "en_cours", ""), 403)
    await refused(store.handle_report(world.publisher, harm["id"], "en_cours", ""), 403)
    await refused(store.handle_report(world.ansm, bug["id"], "en_cours", ""), 403)
    await refused(store.handle_report(world.ansm, "inconnu", "en_cours", ""), 404)
    progress = await store.handle_report(world.ansm, harm["id"], "en_cours", "Analyse du dispositif.")
    assert progress["status"] == "en_cours"
    assert "issue" in (await refused(store.handle_report(world.ansm, harm["id"], "clos", " "), 422)).by_field
    closed = await store.handle_report(
        world.ansm, harm["id"], "clos", "Application suspendue, correctif exigé."
    )
    assert closed["status"] == "clos" and closed["outcome"].startswith("Application suspendue")
    assert [h["status"] for h in closed["history"]] == ["recu", "en_cours", "clos"]
    assert closed["history"][-1]["by"] == AGENCIES["ansm"]
    await refused(store.handle_report(world.ansm, harm["id"], "en_cours", ""), 409)
    assert (await store.report_of(harm["id"]))["status"] == "clos"  # type: ignore[index]
    handled = await store.handle_report(world.ans, bug["id"], "clos", "Corrigé dans la version 2.1.")
    assert handled["outcome"] == "Corrigé dans la version 2.1."


async def test_an_audit_campaign_draws_by_risk_reproducibly_from_its_seed(world: World) -> None:
    store = world.store
    for n in range(5):
        draft = await store.save_draft(world.publisher, wellness(f"Appli {n}"))
        await store.submit(world.publisher, draft.id)
    medical = await listed_device(world)
    await refused(store.start_campaign(world.publisher, "Printemps", 3, seed=7), 403)
    assert "taille" in (await refused(store.start_campaign(world.ans, "Printemps", 0, seed=7), 422)).by_field
    assert "nom" in (await refused(store.start_campaign(world.ans, " ", 3, seed=7), 422)).by_field

    first = await store.start_campaign(world.ans, "Printemps", 3, seed=7)
    second = await store.start_campaign(world.ans, "Printemps bis", 3, seed=7)
    drawn = [d["app_id"] for d in first["drawn"]]
    assert len(drawn) == 3 and len(set(drawn)) == 3
    assert [d["app_id"] for d in second["drawn"]] == drawn
    assert [r.app_id for r in draw(await store.risks(), 3, 7)] == drawn  # anyone can replay it
    risks = {r.app_id: r for r in await store.risks()}
    assert len(risks) == 6 and risks[medical.id].weight > max(
        r.weight for i, r in risks.items() if i != medical.id
    )
    assert first["drawn"][0]["reasons"]

    undrawn = next(i for i in risks if i not in drawn)
    await refused(store.record_finding(world.ans, first["id"], undrawn, "Rien à signaler.", "keep"), 409)
    await refused(store.record_finding(world.ans, "inconnue", drawn[0], "Rien à signaler.", "keep"), 404)
    campaign = await store.record_finding(
        world.ans, first["id"], drawn[0], "Conforme à sa déclaration.", "keep"
    )
    assert campaign["findings"][drawn[0]]["decision"] == "keep"
    audited = await store.app(drawn[0])
    assert audited is not None and audited.last_audit and audited.changelog[-1].event == "keep"
    assert [c["id"] for c in await store.campaigns()] == [second["id"], first["id"]]


async def test_the_authority_publishes_a_revised_grid_as_the_next_version(world: World) -> None:
    store = world.store
    assert (await store.grid()).version == 1
    revised = shipped_grid().to_json()
    revised["note"] = "Ajout d’un critère de réversibilité."
    revised["criteria"] = [
        *revised["criteria"],
        {
            "id": "MOD-02",
            "family": "modele",
            "title": "Réversibilité",
            "requirement": "L’usager récupère ses données dans un format ouvert s’il quitte l’application.",
            "evidence": "engagement",
            "levels": {"1": "exige", "2": "exige", "3": "exige"},
            "with_data": None,
        },
    ]
    await refused(store.publish_grid(revised, world.publisher), 403)
    broken: dict[str, Any] = {
        **revised,
        "criteria": [
            *revised["criteria"],
            {
                "id": "MOD-02",
                "family": "inconnue",
                "title": "",
                "requirement": "",
                "evidence": "ouï-dire",
                "levels": {},
            },
        ],
    }
    error = await refused(store.publish_grid(broken, world.ans), 422)
    assert {f for f, _ in error.problems} == {"grille"}
    text = " ".join(m for _, m in error.problems)
    assert (
        "en double" in text
        and "famille inconnue" in text
        and "ouï-dire" in text
        and "catégories 1, 2 et 3" in text
    )
    assert (await store.grid()).version == 1

    grid = await store.publish_grid(revised, world.ans)
    assert grid.version == 2 and grid.criterion("MOD-02") is not None
    assert (await store.grid()).version == 2 and (await store.grid(1)).criterion("MOD-02") is None

    # submissions from now on are assessed against version 2: the new criterion is required
    draft = await store.save_draft(world.publisher, wellness())
    error = await refused(store.submit(world.publisher, draft.id), 422)
    assert list(error.by_field) == ["critere-MOD-02"]
    answers = {**draft.assessment, "MOD-02": Assessment(True)}
    await store.save_draft(world.publisher, replace(draft, assessment=answers))
    assert (await store.submit(world.publisher, draft.id)).grid_version == 2
