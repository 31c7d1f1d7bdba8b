"""The demo's app store: publishers, apps at every stage of referencing, reports and a campaign.

Built through the store service exactly as the back offices do (drafts, submissions, the
authority's review and decisions), so that every changelog is a real one: a wellness app listed
after self-assessment, a glucose-monitoring medical device and a remote cardiac monitoring
service listed with data exchange (prescribable, reimbursed), a booking app for both audiences,
an app under review, a suspended one, a publisher's draft, a report in each queue and an audit
campaign. Accounts: a publisher (``editeur@``), the digital-health authority (``ans@``) and the
medicines agency (``ansm@``), each with a TOTP second factor. Idempotent: a second run finds the
publishers (by SIRET) and changes nothing.

The apps' sites (``*.exemple.fr``) do not exist: the catalogue, the app pages, the consent screen
and the back offices are real; launching an app leads to its (absent) site.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import TYPE_CHECKING

from hygie.auth.accounts import AccountService, DuplicateLogin
from hygie.demo.accounts import DEMO_PASSWORD, DOMAIN, DemoLogin
from hygie.domain.store.catalogue import App, Assessment
from hygie.store.service import Member, StoreService

if TYPE_CHECKING:
    from hygie.domain.store.grid import Grid

__all__ = ["seed_store"]

_PUBLISHERS = (
    ("Glycémie Connect SAS", "73282932000074", "contact@glyco.exemple.fr"),
    ("Bien-Être Numérique SARL", "55210055400013", "bonjour@pas-a-pas.exemple.fr"),
    ("Cardio Suivi SAS", "44306184100047", "contact@cardio-suivi.exemple.fr"),
)


def _answered(app: App, grid: Grid) -> App:
    """Every applicable criterion answered: mandatory ones with their evidence and tests."""
    answers: dict[str, Assessment] = {}
    for criterion, level in grid.applicable(app.category, app.data_access):
        if level != "exige" and criterion.id in ("ENV-01", "INC-01"):
            continue  # recommended, not claimed: the catalogue's filters show the difference
        test = (
            f"Laboratoire Sécurité Santé, 2026-09-{10 + len(answers):02d}, rapport {criterion.id}-2026 : conforme"
            if criterion.evidence == "test"
            else ""
        )
        answers[criterion.id] = Assessment(True, f"Voir le dossier déposé ({criterion.title.lower()}).", test)
    return replace(app, assessment=answers)


async def _account(accounts: AccountService, kind: str, local: str) -> tuple[str, str | None]:
    login = f"{local}@{DOMAIN}"
    with contextlib.suppress(DuplicateLogin):
        account, uri = await accounts.create(kind, login, DEMO_PASSWORD, totp=True)
        return account.id, uri
    existing = await accounts.by_login(login)
    assert existing is not None
    uri = None
    if existing.totp_secret:
        import pyotp  # noqa: PLC0415

        uri = pyotp.TOTP(existing.totp_secret).provisioning_uri(name=login, issuer_name="Hygie")
    return existing.id, uri


async def seed_store(store: StoreService, accounts: AccountService) -> list[DemoLogin]:
    """Create (or find again) the demo store and its accounts; returns the logins to print."""
    editor_id, editor_uri = await _account(accounts, "publisher", "editeur")
    ans_id, ans_uri = await _account(accounts, "authority", "ans")
    ansm_id, ansm_uri = await _account(accounts, "authority", "ansm")
    logins = [
        DemoLogin(f"editeur@{DOMAIN}", "publisher", "Glycémie Connect SAS", editor_uri),
        DemoLogin(f"ans@{DOMAIN}", "authority", "autorité du numérique en santé", ans_uri),
        DemoLogin(f"ansm@{DOMAIN}", "authority", "agence du médicament", ansm_uri),
    ]
    if await store.member(editor_id) is not None:
        return logins
    publishers = [await store.create_publisher(*p) for p in _PUBLISHERS]
    glyco, wellness, cardio = publishers
    editor = await store.add_member(editor_id, "publisher", publisher_id=glyco.id)
    ans = await store.add_member(ans_id, "authority", agency="ans")
    ansm = await store.add_member(ansm_id, "authority", agency="ansm")
    # the other publishers act through members of their own (no sign-in: demo data)
    wellness_member = Member("demo-bien-etre", "publisher", wellness.id)
    cardio_member = Member("demo-cardio", "publisher", cardio.id)
    await store.add_member(wellness_member.account_id, "publisher", publisher_id=wellness.id)
    await store.add_member(cardio_member.account_id, "publisher", publisher_id=cardio.id)
    grid = await store.grid()

    async def submitted(member: Member, app: App) -> App:
        draft = await store.save_draft(member, _answered(app, grid))
        return await store.submit(member, draft.id)

    async def evaluated(member: Member, app: App, note: str) -> App:
        sent = await submitted(member, app)
        await store.take(ans, sent.id)
        return await store.approve(ans, sent.id, note, data_exchange=app.data_access)

    signed = {"by": "Anne LEROY", "role": "Présidente", "at": 0, "text": "Je m’engage sur l’honneur."}
    await submitted(
        wellness_member,
        App(
            id="",
            publisher_id="",
            name="Pas à pas",
            summary="Compter ses pas et se fixer des objectifs de marche.",
            description="Un podomètre sans compte ni publicité : vos pas restent sur votre téléphone.",
            category="3",
            audience="citoyens",
            website="https://pas-a-pas.exemple.fr",
            hosts=("pas-a-pas.exemple.fr",),
            scopes="",
            commitment=signed,
        ),
    )
    glyco_app = await evaluated(
        editor,
        App(
            id="",
            publisher_id="",
            name="Glyco Suivi",
            summary="Votre lecteur de glycémie relié à votre espace santé.",
            description=(
                "Relevés de glycémie du lecteur connecté, alertes d’hypoglycémie, carnet partagé avec "
                "votre diabétologue. Dispositif médical de classe IIa."
            ),
            category="1",
            ce_class="IIa",
            audience="tous",
            launch_mode="widget",
            website="https://glyco.exemple.fr",
            launch_url="https://glyco.exemple.fr/smart/lancement",
            redirect_uris=("https://glyco.exemple.fr/smart/retour",),
            hosts=("glyco.exemple.fr",),
            scopes="launch openid fhirUser patient/Patient.rs patient/Observation.crs",
            purpose="Enregistrer vos glycémies dans votre espace santé et suivre leur évolution avec votre diabétologue.",
            max_days=365,
            business_model="rembourse",
            reimbursement="pecan",
            prescribable=True,
        ),
        "Évaluation favorable : preuves complètes, test d’intrusion et conformité FHIR vérifiés.",
    )
    await evaluated(
        cardio_member,
        App(
            id="",
            publisher_id="",
            name="Cardio Télésurveillance",
            summary="Télésurveillance de l’insuffisance cardiaque par le poids et la tension.",
            description="Le patient transmet poids et tension ; l’équipe soignante reçoit les alertes.",
            category="1",
            ce_class="IIb",
            audience="professionnels",
            launch_mode="widget",
            website="https://cardio-suivi.exemple.fr",
            launch_url="https://cardio-suivi.exemple.fr/smart/lancement",
            redirect_uris=("https://cardio-suivi.exemple.fr/smart/retour",),
            hosts=("cardio-suivi.exemple.fr",),
            scopes="launch openid fhirUser patient/Patient.rs patient/Observation.rs",
            purpose="Suivre les constantes transmises par le patient télésurveillé.",
            business_model="rembourse",
            reimbursement="telesurveillance",
            prescribable=True,
        ),
        "Évaluation favorable.",
    )
    await evaluated(
        cardio_member,
        App(
            id="",
            publisher_id="",
            name="RDV Santé",
            summary="Prendre et déplacer ses rendez-vous médicaux.",
            description="Agenda des rendez-vous, rappels, et inscription dans l’agenda de votre espace santé.",
            category="2",
            audience="tous",
            website="https://rdv.exemple.fr",
            redirect_uris=("https://rdv.exemple.fr/retour",),
            hosts=("rdv.exemple.fr",),
            scopes="openid fhirUser patient/Appointment.crs",
            purpose="Inscrire vos rendez-vous dans l’agenda de votre espace santé.",
            max_days=730,
            business_model="licence",
        ),
        "Évaluation favorable.",
    )
    await submitted(
        wellness_member,
        App(
            id="",
            publisher_id="",
            name="Nutri Conseil",
            summary="Des conseils alimentaires selon vos mesures.",
            description="Lit votre poids pour adapter ses conseils.",
            category="3",
            audience="citoyens",
            website="https://nutri.exemple.fr",
            redirect_uris=("https://nutri.exemple.fr/retour",),
            hosts=("nutri.exemple.fr",),
            scopes="openid patient/Observation.rs",
            purpose="Adapter les conseils à votre poids.",
            business_model="abonnement",
        ),
    )
    sleep = await submitted(
        wellness_member,
        App(
            id="",
            publisher_id="",
            name="Sommeil+",
            summary="Analyser son sommeil avec le micro du téléphone.",
            description="Enregistre les bruits de la nuit pour estimer la qualité du sommeil.",
            category="3",
            audience="citoyens",
            website="https://sommeil.exemple.fr",
            hosts=("sommeil.exemple.fr",),
            commitment=signed,
        ),
    )
    await store.report(
        sleep.id,
        "L'application envoie mes enregistrements de nuit à un site publicitaire sans mon accord.",
        declared="autre",
        reporter=None,
        reporter_kind="anonyme",
    )
    await store.decide(
        ans,
        sleep.id,
        "suspend",
        "Enregistrements transmis à un tiers sans consentement : suspension conservatoire.",
    )
    await store.report(
        glyco_app.id,
        "La glycémie affichée était de 1,20 alors que mon lecteur indiquait 0,55 ; j'ai fait un malaise.",
        declared="effet_indesirable",
        reporter=None,
        reporter_kind="anonyme",
    )
    await store.save_draft(
        editor,
        App(
            id="",
            publisher_id="",
            name="Glyco Junior",
            summary="Le carnet de glycémie des enfants, pour les parents.",
            category="1",
            ce_class="IIa",
            audience="citoyens",
        ),
    )
    await store.start_campaign(ansm, "Contrôle des dispositifs médicaux — novembre 2026", 2, seed=2026)
    return logins
