"""The authorities' back office of the Store santé (``/autorite``): review, watch, audit, decide.

Two agencies sign in here (``StoreService.member``: ``agency``): the digital-health authority
(``ans``) and the medicines agency (``ansm``). Both see the dashboard and the whole catalogue and
may take audit decisions (keep, warn, suspend, reinstate, delist); the reports each one instructs
are those of its own queue (``QUEUE_OF_AGENCY``: ``ans`` the surveillance queue, ``ansm`` the
control queue — harm to health, medical devices): a report of the other queue is a 403 page.

* ``GET /autorite`` — the dashboard: apps by state and category, each queue's open, overdue and
  closed reports, mean handling delay and reports closed late.
* ``/autorite/evaluations`` — the review queue (oldest first), and for any app its whole record
  (``/autorite/evaluations/{id}``): the declaration, its scopes in plain French, its answers on
  the criteria of the grid version it was assessed against, its last technical checks and its
  changelog; the review (take, list, list with data exchange, send back) and the audit decisions
  are POSTs from that page.
* ``/autorite/signalements`` — the agency's queue by deadline, with the triage's explanation;
  a report's page instructs it (in progress, closed with the outcome the reporter reads) and may
  decide on the app in the same submission — the decision is checked before the report is
  touched, so that a refused decision leaves the report as it was.
* ``/autorite/campagnes`` — audit campaigns drawn by risk (the seed is shown: the draw replays),
  a finding and a decision per drawn app.
* ``/autorite/catalogue`` — every app with its last checks, and a button to run them now.
* ``/autorite/grille`` — the grid in force, its revision as JSON (each problem listed, what was
  typed kept), the versions published.

The store decides (``store/service.py``): a :class:`~hygie.store.service.StoreError` is shown in
French beside the field it names, with what was typed, and the page's status is the error's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.auth.scopes import InvalidScope, parse_scopes
from hygie.domain.store.catalogue import (
    AUDIENCES,
    BUSINESS_MODELS,
    CATEGORIES,
    EVENTS,
    LAUNCH_MODES,
    LISTED,
    PATHWAYS,
    REIMBURSEMENT,
    STATES,
    App,
    TransitionRefused,
    pathway,
    transition,
)
from hygie.domain.store.grid import EVIDENCE, LEVELS, Grid
from hygie.domain.store.triage import CATEGORIES as REPORT_CATEGORIES
from hygie.domain.store.triage import QUEUES, SEVERITIES
from hygie.store.service import AGENCIES, QUEUE_OF_AGENCY, REPORT_STATUSES, StoreError
from hygie.web.oauth import scope_label
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import Submitted
from hygie.web.store.core import MemberPortal, StoreMember

__all__ = ["AUDIT_DECISIONS", "REPORT_DECISIONS", "routes"]

PARIS = ZoneInfo("Europe/Paris")
_DAY_US = 86_400 * 1_000_000

# what an authority may decide on a listed (or suspended) app, in the words of its buttons
AUDIT_DECISIONS = {
    "keep": "Maintenir",
    "warn": "Avertir l’éditeur",
    "suspend": "Suspendre",
    "reinstate": "Rétablir",
    "delist": "Déréférencer",
}
# the decisions a report may lead to (reinstating is an audit's, not a report's)
REPORT_DECISIONS = ("keep", "warn", "suspend", "delist")
# the review's three outcomes: the button's value -> the store's call
REVIEW_ACTIONS = {
    "referencer": "Référencer",
    "referencer_donnees": "Référencer avec échange de données",
    "renvoyer": "Renvoyer à l’éditeur",
}
_NOTE_REQUIRED = frozenset({"warn", "suspend", "delist"})
SEVERITY_BADGES = {"critique": "error", "majeure": "warning", "mineure": "info"}
STATE_BADGES = {
    "draft": "",
    "submitted": "new",
    "under_review": "new",
    "listed": "success",
    "listed_data": "success",
    "suspended": "warning",
    "delisted": "error",
}
_ID_MAX = 64


def when(us: int | None) -> str:
    """``23/11/2026 à 14:05`` (Paris time) from µs; "" for none."""
    if not us:
        return ""
    return datetime.fromtimestamp(us / 1_000_000, UTC).astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")


def day(us: int | None) -> str:
    if not us:
        return ""
    return datetime.fromtimestamp(us / 1_000_000, UTC).astimezone(PARIS).strftime("%d/%m/%Y")


def scope_lines(scopes: str) -> list[dict[str, Any]]:
    """Each declared scope in plain French (as the consent screen says it), reads and writes told
    apart; a scope that does not parse is shown as written."""
    try:
        parsed = parse_scopes(scopes)
    except InvalidScope:
        return [{"scope": s, "label": s, "writes": False} for s in scopes.split()]
    lines = [
        {"scope": s.text, "label": scope_label(s), "writes": bool({"c", "u", "d"} & s.permissions)}
        for s in parsed.resources
    ]
    lines += [{"scope": o, "label": scope_label(o), "writes": False} for o in sorted(parsed.others)]
    return lines


def allowed_decisions(app: App, choices: Sequence[str]) -> list[str]:
    """The decisions the process allows from the app's state (``EVENTS``), in ``choices``' order."""
    return [d for d in choices if app.state in EVENTS[d][0]]


def _id(request: Request, name: str) -> str:
    value = str(request.path_params[name])
    if not value or len(value) > _ID_MAX:
        raise PortalError(404, "Cette page n’existe pas.")
    return value


def routes(portal: MemberPortal) -> list[BaseRoute]:
    store = portal.store

    async def page(request: Request, visitor: StoreMember, template: str, **context: Any) -> Response:
        """A page of the back office, with the labels and date helpers every template uses."""
        return await portal.page(
            request,
            visitor,
            template,
            when=when,
            day=day,
            states=STATES,
            state_badges=STATE_BADGES,
            categories=CATEGORIES,
            agency=AGENCIES.get(visitor.member.agency or "", ""),
            my_queue=QUEUE_OF_AGENCY.get(visitor.member.agency or "", ""),
            queue_labels=QUEUES,
            **context,
        )

    async def require_app(app_id: str) -> App:
        app = await store.app(app_id)
        if app is None or (app.state == "draft" and not app.changelog):
            raise PortalError(404, "Cette application n’existe pas, ou n’a jamais été soumise.")
        return app

    async def publisher_names() -> dict[str, str]:
        names: dict[str, str] = {}
        for app in await store.apps():
            if app.publisher_id not in names:
                publisher = await store.publisher(app.publisher_id)
                names[app.publisher_id] = publisher.name if publisher else "Éditeur inconnu"
        return names

    # -- the dashboard ------------------------------------------------------------------------

    async def dashboard(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        board = await store.dashboard()
        by_state: dict[str, dict[str, int]] = board["by_state"]
        rows = [
            {
                "state": state,
                "label": label,
                "counts": [by_state.get(state, {}).get(c, 0) for c in CATEGORIES],
                "total": sum(by_state.get(state, {}).values()),
            }
            for state, label in STATES.items()
        ]
        totals = [sum(by_state.get(s, {}).get(c, 0) for s in STATES) for c in CATEGORIES]
        waiting = await store.review_queue()
        mine = QUEUE_OF_AGENCY.get(visitor.member.agency or "", "")
        return await page(
            request,
            visitor,
            "autorite/accueil.html",
            title="Tableau de bord du catalogue",
            rows=rows,
            totals=totals,
            total=board["total"],
            queues=[
                {"code": code, "label": QUEUES[code], "mine": code == mine, **board["queues"][code]}
                for code in QUEUES
            ],
            waiting=len(waiting),
        )

    # -- review ---------------------------------------------------------------------------------

    async def review_queue(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        names = await publisher_names()
        waiting = [
            {
                "app": app,
                "publisher": names.get(app.publisher_id, ""),
                "pathway": PATHWAYS[pathway(app)],
                "submitted": next(
                    (e.at for e in reversed(app.changelog) if e.event == "submit"), app.updated
                ),
            }
            for app in await store.review_queue()
        ]
        return await page(
            request, visitor, "autorite/evaluations.html", title="Évaluations à instruire", waiting=waiting
        )

    async def app_page(
        request: Request,
        visitor: StoreMember,
        *,
        app: App | None = None,
        values: Mapping[str, str] | None = None,
        errors: Mapping[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        if app is None:
            app = await require_app(_id(request, "app_id"))
        publisher = await store.publisher(app.publisher_id)
        grid = await store.grid(app.grid_version or None)
        criteria = [
            {
                "criterion": criterion,
                "family": grid.family_label(criterion.family),
                "level": level,
                "level_label": LEVELS[level],
                "evidence_kind": EVIDENCE.get(criterion.evidence, criterion.evidence),
                "answer": app.assessment.get(criterion.id),
            }
            for criterion, level in grid.applicable(app.category, app.data_access)
        ]
        reports = await store.reports(app_id=app.id)
        return await page(
            request,
            visitor,
            "autorite/application.html",
            status=status,
            title=f"{app.name} — dossier de référencement",
            app=app,
            publisher=publisher,
            pathway=PATHWAYS[pathway(app)],
            audiences=AUDIENCES,
            launch_modes=LAUNCH_MODES,
            business_models=BUSINESS_MODELS,
            reimbursement=REIMBURSEMENT,
            scopes=scope_lines(app.scopes),
            grid=grid,
            criteria=criteria,
            missing=[c.id for c in grid.required(app.category, app.data_access) if not app.met(c.id)],
            reports=reports,
            report_categories=REPORT_CATEGORIES,
            severities=SEVERITIES,
            report_statuses=REPORT_STATUSES,
            review_actions={
                k: v for k, v in REVIEW_ACTIONS.items() if k != "referencer_donnees" or app.data_access
            },
            decisions={d: AUDIT_DECISIONS[d] for d in allowed_decisions(app, list(AUDIT_DECISIONS))},
            values=values or {},
            errors=errors or {},
        )

    async def show_app(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        return await app_page(request, visitor)

    async def take(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        app_id = _id(request, "app_id")
        try:
            app = await store.take(visitor.member, app_id)
        except StoreError as error:
            await portal.failed(visitor, form)
            if error.status == 404:
                raise PortalError(404, str(error)) from error
            return await app_page(request, visitor, errors={"evaluation": str(error)}, status=error.status)
        return await portal.done(
            visitor,
            form,
            f"/autorite/evaluations/{app.id}",
            "Évaluation commencée : l’éditeur voit que sa demande est en cours d’instruction.",
        )

    async def review(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        assert form is not None
        app_id = _id(request, "app_id")
        action, note = form.get("action"), form.get("note")
        values = {"note": note}
        if action not in REVIEW_ACTIONS:
            await portal.failed(visitor, form)
            errors = {"note": "Choisissez : référencer, référencer avec échange de données, ou renvoyer."}
            return await app_page(request, visitor, values=values, errors=errors, status=400)
        if action == "renvoyer" and not note:
            await portal.failed(visitor, form)
            errors = {"note": "Dites à l’éditeur ce qu’il doit compléter : il lira votre note."}
            return await app_page(request, visitor, values=values, errors=errors, status=422)
        if action == "referencer_donnees" and not (await require_app(app_id)).data_access:
            # nothing of the record to exchange: a SMART registration would open nothing
            await portal.failed(visitor, form)
            errors = {
                "note": "Cette application ne demande aucune donnée du dossier : référencez-la sans échange."
            }
            return await app_page(request, visitor, values=values, errors=errors, status=422)
        try:
            if action == "renvoyer":
                app = await store.send_back(visitor.member, app_id, note)
            else:
                app = await store.approve(
                    visitor.member, app_id, note, data_exchange=action == "referencer_donnees"
                )
        except StoreError as error:
            await portal.failed(visitor, form)
            if error.status == 404:
                raise PortalError(404, str(error)) from error
            errors = error.beside(("note",), "note")
            return await app_page(request, visitor, values=values, errors=errors, status=error.status)
        message = {
            "referencer": "Application référencée : elle entre dans le catalogue.",
            "referencer_donnees": f"Application référencée avec échange de données : son client SMART "
            f"{app.client_id} est actif.",
            "renvoyer": "Dossier renvoyé à l’éditeur avec votre note.",
        }[action]
        return await portal.done(visitor, form, f"/autorite/evaluations/{app.id}", message)

    async def audit_decision(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        assert form is not None
        app_id = _id(request, "app_id")
        decision, reason = form.get("decision"), form.get("motif")
        values = {"decision": decision, "motif": reason}
        errors: dict[str, str] = {}
        if decision not in AUDIT_DECISIONS:
            errors["decision"] = "Choisissez une décision."
        elif decision in _NOTE_REQUIRED and not reason:
            errors["motif"] = "Motivez la décision : le motif est publié dans l’historique de l’application."
        if errors:
            await portal.failed(visitor, form)
            return await app_page(request, visitor, values=values, errors=errors, status=422)
        try:
            app = await store.decide(visitor.member, app_id, decision, reason)
        except StoreError as error:
            await portal.failed(visitor, form)
            if error.status == 404:
                raise PortalError(404, str(error)) from error
            errors = error.beside(("decision", "motif"), "decision")
            return await app_page(request, visitor, values=values, errors=errors, status=error.status)
        return await portal.done(
            visitor,
            form,
            f"/autorite/evaluations/{app.id}",
            f"Décision enregistrée : « {EVENTS[decision][1]} ». L’application est maintenant "
            f"« {app.state_label} ».",
        )

    # -- reports --------------------------------------------------------------------------------

    def queue_of(visitor: StoreMember) -> str:
        return QUEUE_OF_AGENCY.get(visitor.member.agency or "", "")

    async def report_list(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        queue = queue_of(visitor)
        now = portal.clock()
        apps = {a.id: a for a in await store.apps()}
        found = await store.reports(queue=queue) if queue else []
        rows = [
            {
                "report": r,
                "app": apps.get(r["app_id"]),
                "overdue": r["status"] != "clos" and r["due"] < now,
                "days_left": (r["due"] - now) // _DAY_US,
            }
            for r in found
        ]
        return await page(
            request,
            visitor,
            "autorite/signalements.html",
            title="Signalements",
            queue_label=QUEUES.get(queue, ""),
            open_rows=[row for row in rows if row["report"]["status"] != "clos"],
            closed_rows=[row for row in rows if row["report"]["status"] == "clos"],
            report_categories=REPORT_CATEGORIES,
            severities=SEVERITIES,
            severity_badges=SEVERITY_BADGES,
            report_statuses=REPORT_STATUSES,
        )

    async def own_report(visitor: StoreMember, report_id: str) -> dict[str, Any]:
        report = await store.report_of(report_id)
        if report is None:
            raise PortalError(404, "Ce signalement n’existe pas.")
        if report["queue"] != queue_of(visitor):
            raise PortalError(
                403,
                f"Ce signalement relève de la file « {QUEUES.get(report['queue'], report['queue'])} » : "
                "seule l’autorité qui la tient l’instruit.",
            )
        return report

    async def report_page(
        request: Request,
        visitor: StoreMember,
        report: dict[str, Any],
        *,
        values: Mapping[str, str] | None = None,
        errors: Mapping[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        app = await store.app(report["app_id"])
        since = [e for e in app.changelog if e.at >= report["at"]] if app else []
        decisions = allowed_decisions(app, REPORT_DECISIONS) if app else []
        return await page(
            request,
            visitor,
            "autorite/signalement.html",
            status=status,
            title="Signalement",
            report=report,
            app=app,
            since=since,
            overdue=report["status"] != "clos" and report["due"] < portal.clock(),
            queue_label=QUEUES.get(report["queue"], report["queue"]),
            report_categories=REPORT_CATEGORIES,
            severities=SEVERITIES,
            severity_badges=SEVERITY_BADGES,
            report_statuses=REPORT_STATUSES,
            decisions={d: AUDIT_DECISIONS[d] for d in decisions},
            declared={
                None: "non précisée",
                "dysfonctionnement": "Dysfonctionnement",
                "effet_indesirable": "Effet néfaste pour la santé",
                "autre": "Autre",
            },
            reporter_kinds={
                "citoyen": "Un particulier",
                "professionnel": "Un professionnel de santé",
                "anonyme": "Anonyme",
            },
            values=values or {"statut": "clos" if report["status"] == "en_cours" else "en_cours"},
            errors=errors or {},
        )

    async def report_view(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        report = await own_report(visitor, _id(request, "report_id"))
        if form is None:
            return await report_page(request, visitor, report)
        if report["status"] == "clos":
            raise PortalError(409, "Ce signalement est déjà clos : son issue a été communiquée au déclarant.")
        status, outcome = form.get("statut"), form.get("issue")
        decision, reason = form.get("decision"), form.get("motif")
        values = {"statut": status, "issue": outcome, "decision": decision, "motif": reason}
        errors: dict[str, str] = {}
        # the decision on the app is checked first (the process's own rule, without writing): a
        # refused decision leaves the report untouched
        app = await store.app(report["app_id"])
        if decision:
            if decision not in REPORT_DECISIONS or app is None:
                errors["decision"] = "Choisissez une décision dans la liste."
            elif decision in _NOTE_REQUIRED and not reason:
                errors["motif"] = (
                    "Motivez la décision : le motif est publié dans l’historique de l’application."
                )
            else:
                try:
                    transition(app, decision, at=portal.clock(), by=visitor.member.actor, note=reason)
                except TransitionRefused as refused:
                    errors["decision"] = str(refused)
        if errors:
            await portal.failed(visitor, form)
            return await report_page(request, visitor, report, values=values, errors=errors, status=422)
        try:
            report = await store.handle_report(visitor.member, report["id"], status, outcome)
        except StoreError as error:
            await portal.failed(visitor, form)
            errors = error.beside(("statut", "issue"), "issue")
            return await report_page(
                request, visitor, report, values=values, errors=errors, status=error.status
            )
        message = (
            "Signalement clos : le déclarant lit l’issue."
            if status == "clos"
            else "Signalement en cours d’instruction : le déclarant le voit."
        )
        if decision and app is not None:
            try:
                changed = await store.decide(visitor.member, app.id, decision, reason)
            except StoreError as error:  # the app changed in between (another decision)
                await portal.forms.flash(
                    visitor.session.session_id,
                    f"Le signalement est enregistré, mais la décision sur l’application n’a pas été "
                    f"appliquée : {error}",
                    "error",
                )
            else:
                message += f" Décision appliquée : « {EVENTS[decision][1]} » ({changed.state_label.lower()})."
        return await portal.done(visitor, form, f"/autorite/signalements/{report['id']}", message)

    # -- audit campaigns ------------------------------------------------------------------------

    async def campaigns_page(
        request: Request,
        visitor: StoreMember,
        *,
        values: Mapping[str, str] | None = None,
        errors: Mapping[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        risks = sorted(await store.risks(), key=lambda r: -r.weight)
        apps = {a.id: a for a in await store.apps()}
        return await page(
            request,
            visitor,
            "autorite/campagnes.html",
            status=status,
            title="Campagnes de contrôle",
            campaigns=await store.campaigns(),
            risks=[{"risk": r, "app": apps.get(r.app_id)} for r in risks],
            values=values or {"taille": "5"},
            errors=errors or {},
        )

    async def campaigns(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        if form is None:
            return await campaigns_page(request, visitor)
        name, size_text, seed_text = form.get("nom"), form.get("taille"), form.get("graine")
        values = {"nom": name, "taille": size_text, "graine": seed_text}
        errors: dict[str, str] = {}
        size = int(size_text) if size_text.isdigit() else 0
        if not size_text.isdigit():
            errors["taille"] = "Indiquez un nombre d’applications à tirer (entre 1 et 500)."
        seed: int | None = None
        if seed_text:
            if seed_text.isdigit() and len(seed_text) <= 18:
                seed = int(seed_text)
            else:
                errors["graine"] = (
                    "La graine est un nombre entier positif (laissez vide pour un tirage neuf)."
                )
        campaign: dict[str, Any] | None = None
        status = 422
        if not errors:
            try:
                campaign = await store.start_campaign(visitor.member, name, size, seed)
            except StoreError as error:
                errors = error.beside(("nom", "taille"), "nom")
                status = error.status
        if campaign is None:
            await portal.failed(visitor, form)
            return await campaigns_page(request, visitor, values=values, errors=errors, status=status)
        drawn = len(campaign["drawn"])
        return await portal.done(
            visitor,
            form,
            f"/autorite/campagnes/{campaign['id']}",
            f"Campagne lancée : {drawn} application{'s' if drawn > 1 else ''} tirée{'s' if drawn > 1 else ''} "
            f"(graine {campaign['seed']}).",
        )

    async def campaign_page(
        request: Request,
        visitor: StoreMember,
        *,
        values: Mapping[str, Mapping[str, str]] | None = None,
        errors: Mapping[str, Mapping[str, str]] | None = None,
        status: int = 200,
    ) -> Response:
        campaign = await store.campaign(_id(request, "campaign_id"))
        if campaign is None:
            raise PortalError(404, "Cette campagne n’existe pas.")
        apps = {a.id: a for a in await store.apps()}
        drawn = []
        for d in campaign["drawn"]:
            app = apps.get(d["app_id"])
            drawn.append(
                {
                    **d,
                    "app": app,
                    "finding": campaign["findings"].get(d["app_id"]),
                    "decisions": {
                        k: AUDIT_DECISIONS[k]
                        for k in (allowed_decisions(app, REPORT_DECISIONS) if app else [])
                    },
                }
            )
        return await page(
            request,
            visitor,
            "autorite/campagne.html",
            status=status,
            title=f"Campagne « {campaign['name']} »",
            campaign=campaign,
            drawn=drawn,
            all_decisions=AUDIT_DECISIONS,
            values=values or {},
            errors=errors or {},
        )

    async def show_campaign(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        return await campaign_page(request, visitor)

    async def finding(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        assert form is not None
        campaign_id = _id(request, "campaign_id")
        app_id, text, decision = form.get("application"), form.get("constat"), form.get("decision")
        values = {app_id: {"constat": text, "decision": decision}}
        problem: dict[str, str] = {}
        status = 422
        if decision not in REPORT_DECISIONS:
            problem["decision"] = "Choisissez la décision qui suit le constat."
        elif decision in _NOTE_REQUIRED and not text:
            problem["constat"] = "Décrivez le constat : il motive la décision, publiée dans l’historique."
        if not problem:
            try:
                await store.record_finding(visitor.member, campaign_id, app_id, text, decision)
            except StoreError as error:
                if error.status == 404:
                    raise PortalError(404, str(error)) from error
                problem = error.beside(("constat", "decision"), "decision")
                status = error.status
            else:
                return await portal.done(
                    visitor,
                    form,
                    f"/autorite/campagnes/{campaign_id}#app-{app_id}",
                    f"Constat enregistré, décision appliquée : {EVENTS[decision][1].lower()}.",
                )
        await portal.failed(visitor, form)
        return await campaign_page(request, visitor, values=values, errors={app_id: problem}, status=status)

    # -- the catalogue and its probes -------------------------------------------------------------

    async def catalogue_page(
        request: Request,
        visitor: StoreMember,
        *,
        errors: Mapping[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        names = await publisher_names()
        apps = [a for a in await store.apps() if a.state != "draft" or a.changelog]
        return await page(
            request,
            visitor,
            "autorite/catalogue.html",
            status=status,
            title="Catalogue",
            apps=apps,
            publishers=names,
            listed=LISTED,
            errors=errors or {},
        )

    async def catalogue(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        return await catalogue_page(request, visitor)

    async def probe(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        app_id = _id(request, "app_id")
        before = await store.app(app_id)
        if before is None:
            raise PortalError(404, "Cette application n’existe pas.")
        try:
            app = await store.probe(app_id)
        except StoreError as error:
            await portal.failed(visitor, form)
            return await catalogue_page(request, visitor, errors={app_id: str(error)}, status=error.status)
        failed = [c for c in app.checks if not c.get("ok")]
        if not failed:
            message = f"{app.name} : les {len(app.checks)} contrôles techniques sont réussis."
        else:
            message = f"{app.name} : {len(failed)} contrôle{'s' if len(failed) > 1 else ''} en échec."
        if app.state != before.state:
            message += f" L’application passe de « {before.state_label} » à « {app.state_label} »."
        return await portal.done(visitor, form, f"/autorite/catalogue#app-{app.id}", message)

    # -- the grid -------------------------------------------------------------------------------

    async def grid_page(
        request: Request,
        visitor: StoreMember,
        *,
        text: str | None = None,
        problems: Sequence[str] = (),
        status: int = 200,
    ) -> Response:
        grid = await store.grid()
        versions: list[Grid] = [await store.grid(v) for v in range(grid.version, 0, -1)]
        if text is None:
            text = orjson.dumps(grid.to_json(), option=orjson.OPT_INDENT_2).decode()
        families = [
            {
                "family": family,
                "criteria": [c for c in grid.criteria if c.family == family.code],
            }
            for family in grid.families
        ]
        return await page(
            request,
            visitor,
            "autorite/grille.html",
            status=status,
            title="Grille des critères",
            grid=grid,
            families=families,
            levels=LEVELS,
            evidence=EVIDENCE,
            versions=versions,
            text=text,
            problems=problems,
        )

    async def grid_view(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        if form is None:
            return await grid_page(request, visitor)
        text = form.values.get("grille", "")
        problems: list[str] = []
        data: Any = None
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            problems.append(f"Le texte n’est pas du JSON valide : {_json_problem(error)}.")
        if not problems and not isinstance(data, dict):
            problems.append("La grille est un objet JSON ({ … }) avec ses familles et ses critères.")
        status = 422
        if not problems:
            assert isinstance(data, dict)
            data["published"] = datetime.now(PARIS).date().isoformat()
            try:
                grid = await store.publish_grid(data, visitor.member)
            except StoreError as error:
                problems = [message for _, message in error.problems]
                status = error.status
            else:
                return await portal.done(
                    visitor,
                    form,
                    "/autorite/grille",
                    f"Version {grid.version} de la grille publiée : elle s’applique aux dépôts à venir.",
                )
        await portal.failed(visitor, form)
        return await grid_page(request, visitor, text=text, problems=problems, status=status)

    return [
        portal.route("/autorite", dashboard),
        portal.route("/autorite/evaluations", review_queue),
        portal.route("/autorite/evaluations/{app_id}", show_app),
        portal.route("/autorite/evaluations/{app_id}/commencer", take, methods=("POST",)),
        portal.route("/autorite/evaluations/{app_id}/decision", review, methods=("POST",)),
        portal.route("/autorite/evaluations/{app_id}/controle", audit_decision, methods=("POST",)),
        portal.route("/autorite/signalements", report_list),
        portal.route("/autorite/signalements/{report_id}", report_view, methods=("GET", "POST")),
        portal.route("/autorite/campagnes", campaigns, methods=("GET", "POST")),
        portal.route("/autorite/campagnes/{campaign_id}", show_campaign),
        portal.route("/autorite/campagnes/{campaign_id}/constat", finding, methods=("POST",)),
        portal.route("/autorite/catalogue", catalogue),
        portal.route("/autorite/catalogue/{app_id}/controles", probe, methods=("POST",)),
        portal.route("/autorite/grille", grid_view, methods=("GET", "POST")),
    ]


def _json_problem(error: orjson.JSONDecodeError) -> str:
    """Where the JSON breaks, in the typist's terms."""
    return f"ligne {error.lineno}, colonne {error.colno}"
