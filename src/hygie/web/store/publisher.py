"""The publishers' back office of the Store santé, under ``/editeur``.

A publisher (an organisation with a SIRET, ``StoreService.create_publisher``) declares its apps
here and follows them through the graduated process (``domain/store/catalogue.py``):

* ``GET /editeur`` — to ``/editeur/applications``: my apps, their pathway (self-assessment or
  a-priori evaluation), state, last changelog entry, the reviewer's note when one was sent back,
  the SMART ``client_id`` once listed with data exchange and the last technical checks;
* ``GET|POST /editeur/nouvelle`` and ``GET|POST /editeur/applications/{id}`` — one form for a
  draft: identity, category (CNNum 8), audience, launch, the SMART declaration (redirect URIs,
  hosts, scopes explained in plain French, JWKS), purpose and longest authorisation, business
  model; then the criteria grid that applies to the **saved** category and scopes, one answer
  per criterion (met, evidence, independent test), and — on the self-assessment pathway — the
  publisher's signed commitment. « Enregistrer le brouillon » keeps whatever was typed (only an
  unreadable JWKS or a duration that is not a number stop it: nothing is then saved);
  « Soumettre » saves, then submits: what is missing comes back beside each field, with a
  summary at the top. An app that is no longer a draft is shown read-only;
* ``GET /editeur/grille`` — the criteria grid in force (version, date, levels by category).

A publisher only ever sees the apps of its own organisation (any other is "unknown": 404). No
health data is read here; the records are the store's (``store/service.py``), which enforces the
process — this module only reads the form and says what the service answered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from hygie.auth.scopes import InvalidScope, parse_scope
from hygie.domain.store.catalogue import (
    AUDIENCES,
    BUSINESS_MODELS,
    CATEGORIES,
    CE_CLASSES,
    LAUNCH_MODES,
    PATHWAYS,
    REIMBURSEMENT,
    App,
    Assessment,
    declared_hosts,
    pathway,
)
from hygie.domain.store.grid import EVIDENCE, LEVELS, Criterion, Grid
from hygie.store.service import StoreError
from hygie.web.oauth import scope_label
from hygie.web.portal.forms import Submitted
from hygie.web.store.core import MemberPortal, StoreMember

__all__ = ["COMMITMENT", "routes"]

PARIS = ZoneInfo("Europe/Paris")
_UNKNOWN = "Cette application n’existe pas ou n’est pas la vôtre."
# the sentence a signatory commits to (kept word for word in the app's record)
COMMITMENT = (
    "Je m’engage, au nom de {publisher}, sur l’exactitude de cette auto-évaluation : l’application "
    "remplit les critères cochés, et je sais que l’autorité peut la contrôler à tout moment, la "
    "suspendre ou la déréférencer."
)
# the DSFR badge of each state
STATE_BADGES = {
    "draft": "",
    "submitted": "fr-badge--info",
    "under_review": "fr-badge--info",
    "listed": "fr-badge--success",
    "listed_data": "fr-badge--success",
    "suspended": "fr-badge--warning",
    "delisted": "fr-badge--error",
}
_TEXT_FIELDS = (
    "nom",
    "resume",
    "description",
    "site",
    "categorie",
    "classe_ce",
    "public",
    "lancement",
    "adresse_lancement",
    "redirections",
    "hotes",
    "portees",
    "jwks",
    "finalite",
    "duree",
    "modele",
    "remboursement",
    "signataire",
    "fonction",
)
_MAX_TEXT = 20_000  # a field's length kept (a JWKS of several keys fits)


def moment(us: int) -> str:
    """ "12/04/2026 à 14h05" (Paris time) from a timestamp in µs."""
    at = datetime.fromtimestamp(us / 1_000_000, PARIS)
    return at.strftime("%d/%m/%Y à %Hh%M")


@dataclass(frozen=True, slots=True)
class ScopeLine:
    """One declared scope, and what it means in plain French (or why it is not a scope)."""

    scope: str
    label: str
    valid: bool


def explain_scopes(scopes: str) -> list[ScopeLine]:
    out = []
    for text in scopes.split():
        try:
            out.append(ScopeLine(text, scope_label(parse_scope(text)), True))
        except InvalidScope:
            out.append(ScopeLine(text, "Portée non reconnue : vérifiez son orthographe (SMART v2).", False))
    return out


def values_of(app: App) -> dict[str, str]:
    """The form's fields as the saved app fills them."""
    values = {
        "nom": app.name,
        "resume": app.summary,
        "description": app.description,
        "site": app.website,
        "categorie": app.category,
        "classe_ce": app.ce_class,
        "public": app.audience,
        "lancement": app.launch_mode,
        "adresse_lancement": app.launch_url,
        "redirections": "\n".join(app.redirect_uris),
        "hotes": "\n".join(app.hosts),
        "portees": app.scopes,
        "jwks": orjson.dumps(app.jwks, option=orjson.OPT_INDENT_2).decode() if app.jwks else "",
        "finalite": app.purpose,
        "duree": str(app.max_days),
        "modele": app.business_model,
        "remboursement": app.reimbursement,
        "prescriptible": "oui" if app.prescribable else "",
    }
    for criterion_id, answer in app.assessment.items():
        values[f"critere-{criterion_id}"] = "oui" if answer.met else ""
        values[f"preuve-{criterion_id}"] = answer.evidence
        values[f"test-{criterion_id}"] = answer.test
    if app.commitment:
        values["signataire"] = str(app.commitment.get("by") or "")
        values["fonction"] = str(app.commitment.get("role") or "")
        values["engagement"] = "oui"
    return values


def values_from(form: Submitted) -> dict[str, str]:
    """What was typed, kept as typed (to show the form again)."""
    values = {name: form.get(name)[:_MAX_TEXT] for name in _TEXT_FIELDS}
    for name, value in form.values.items():
        if name.startswith(("critere-", "preuve-", "test-")) or name in ("prescriptible", "engagement"):
            values[name] = value.strip()[:_MAX_TEXT]
    return values


def app_from(
    values: Mapping[str, str], known: App | None, grid: Grid, *, publisher: str, now: int
) -> tuple[App, dict[str, str]]:
    """The draft the form describes, and what keeps it from being saved at all (field → message):
    only what cannot be stored — a JWKS that is not a JSON object, a duration that is not a
    number. Anything else may be incomplete in a draft."""
    errors: dict[str, str] = {}
    jwks: dict[str, Any] | None = None
    raw_jwks = values.get("jwks", "")
    if raw_jwks:
        try:
            parsed = orjson.loads(raw_jwks)
        except orjson.JSONDecodeError:
            errors["jwks"] = "Le JWKS n’est pas du JSON lisible : vérifiez les accolades et les guillemets."
        else:
            if isinstance(parsed, dict):
                jwks = parsed
            else:
                errors["jwks"] = 'Le JWKS est un objet JSON, de la forme {"keys": [ … ]}.'
    raw_days = values.get("duree", "")
    days = 0
    if raw_days.isdigit() and len(raw_days) <= 6:
        days = int(raw_days)
    else:
        errors["duree"] = "Indiquez un nombre entier de jours (par exemple 365)."
    category = values.get("categorie", "")
    # answers kept for criteria the page does not show now (the category or scopes changed)
    assessment: dict[str, Assessment] = dict(known.assessment) if known else {}
    for criterion in grid.criteria:
        cid = criterion.id
        if not any(f"{prefix}-{cid}" in values for prefix in ("critere", "preuve", "test")):
            continue
        assessment[cid] = Assessment(
            met=values.get(f"critere-{cid}") == "oui",
            evidence=values.get(f"preuve-{cid}", ""),
            test=values.get(f"test-{cid}", ""),
        )
    commitment: dict[str, Any] | None = None
    signatory, role = values.get("signataire", ""), values.get("fonction", "")
    if values.get("engagement") == "oui" and signatory and role:
        text = COMMITMENT.format(publisher=publisher)
        before = known.commitment if known else None
        same = before and (before.get("by"), before.get("role"), before.get("text")) == (
            signatory,
            role,
            text,
        )
        at = int(before["at"]) if before and same else now
        commitment = {"by": signatory, "role": role, "at": at, "text": text}
    app = App(
        id=known.id if known else "",
        publisher_id=known.publisher_id if known else "",
        name=values.get("nom", ""),
        summary=values.get("resume", ""),
        description=values.get("description", ""),
        category=category,
        ce_class=values.get("classe_ce", "") if category == "1" else "",
        audience=values.get("public", ""),
        launch_mode=values.get("lancement", ""),
        website=values.get("site", ""),
        launch_url=values.get("adresse_lancement", ""),
        redirect_uris=tuple(
            dict.fromkeys(
                line.strip() for line in values.get("redirections", "").splitlines() if line.strip()
            )
        ),
        hosts=declared_hosts([values.get("hotes", "")]),
        scopes=" ".join(dict.fromkeys(values.get("portees", "").split())),
        jwks=jwks,
        purpose=values.get("finalite", ""),
        max_days=days,
        business_model=values.get("modele", ""),
        reimbursement=values.get("remboursement", ""),
        prescribable=values.get("prescriptible") == "oui",
        assessment=assessment,
        commitment=commitment,
    )
    if known is not None:
        app = replace(app, state=known.state, changelog=known.changelog, review_note=known.review_note)
    return app, errors


@dataclass(frozen=True, slots=True)
class GridLine:
    criterion: Criterion
    level: str  # exige | recommande
    family: str


def grid_lines(grid: Grid, category: str, data_access: bool) -> list[GridLine]:
    """The criteria an app of this kind answers, mandatory ones first."""
    return [
        GridLine(c, level, grid.family_label(c.family))
        for c, level in grid.applicable(category if category in CATEGORIES else "3", data_access)
    ]


def _error_list(error: StoreError) -> list[tuple[str, str]]:
    return [(name, message) for name, message in error.problems]


def routes(portal: MemberPortal) -> list[BaseRoute]:
    store = portal.store

    async def own(visitor: StoreMember, app_id: str) -> App | None:
        app = await store.app(app_id)
        return app if app is not None and app.publisher_id == visitor.publisher_id else None

    async def publisher_name(visitor: StoreMember) -> str:
        publisher = await store.publisher(visitor.publisher_id)
        return publisher.name if publisher else visitor.account.login

    async def home(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        return RedirectResponse("/editeur/applications", status_code=303)

    async def index(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        apps = sorted(await store.apps_of(visitor.publisher_id), key=lambda a: -a.updated)
        return await portal.page(
            request,
            visitor,
            "editeur/applications.html",
            title="Mes applications",
            publisher=await publisher_name(visitor),
            apps=apps,
            pathways={a.id: PATHWAYS[pathway(a)] for a in apps},
            badges=STATE_BADGES,
            moment=moment,
        )

    async def form_page(
        request: Request,
        visitor: StoreMember,
        *,
        app: App | None,
        values: dict[str, str],
        errors: Mapping[str, str] | None = None,
        problems: Sequence[tuple[str, str]] = (),
        status: int = 200,
    ) -> Response:
        """The draft's form: ``values`` as shown; the grid for the category and scopes of
        ``values`` (the saved ones, or those just typed when the form comes back with errors)."""
        grid = await store.grid()
        shown, _ = app_from(values, app, grid, publisher="", now=0)
        errors = dict(errors or {})
        summary = list(problems) or list(errors.items())
        return await portal.page(
            request,
            visitor,
            "editeur/fiche.html",
            status=status,
            title=f"{app.name or 'Application sans nom'} — brouillon" if app else "Déposer une application",
            app=app,
            action=f"/editeur/applications/{app.id}" if app and app.id else "/editeur/nouvelle",
            values=values,
            errors=errors,
            summary=summary,
            refused=bool(problems),  # saved, but the submission was refused
            grid=grid,
            lines=grid_lines(grid, shown.category, shown.data_access),
            pathway=pathway(shown),
            pathways=PATHWAYS,
            data_access=shown.data_access,
            scopes=explain_scopes(app.scopes) if app else [],
            commitment=COMMITMENT.format(publisher=await publisher_name(visitor)),
            categories=CATEGORIES,
            ce_classes=CE_CLASSES,
            audiences=AUDIENCES,
            launch_modes=LAUNCH_MODES,
            business_models=BUSINESS_MODELS,
            reimbursement=REIMBURSEMENT,
            levels=LEVELS,
            evidence=EVIDENCE,
            badges=STATE_BADGES,
            moment=moment,
        )

    async def view_page(request: Request, visitor: StoreMember, app: App) -> Response:
        grid = await store.grid(app.grid_version or None)
        return await portal.page(
            request,
            visitor,
            "editeur/application.html",
            title=app.name or "Application sans nom",
            app=app,
            pathway=PATHWAYS[pathway(app)],
            lines=grid_lines(grid, app.category, app.data_access),
            grid=grid,
            scopes=explain_scopes(app.scopes),
            categories=CATEGORIES,
            audiences=AUDIENCES,
            launch_modes=LAUNCH_MODES,
            business_models=BUSINESS_MODELS,
            reimbursement=REIMBURSEMENT,
            levels=LEVELS,
            evidence=EVIDENCE,
            badges=STATE_BADGES,
            moment=moment,
        )

    async def save(request: Request, visitor: StoreMember, form: Submitted, known: App | None) -> Response:
        """« Enregistrer le brouillon » or « Soumettre »."""
        values = values_from(form)
        grid = await store.grid()
        draft, errors = app_from(
            values, known, grid, publisher=await publisher_name(visitor), now=portal.clock()
        )
        if errors:
            await portal.failed(visitor, form)
            return await form_page(request, visitor, app=known, values=values, errors=errors, status=422)
        try:
            saved = await store.save_draft(visitor.member, draft)
        except StoreError as error:
            await portal.failed(visitor, form)
            return await portal.error(request, visitor, error.status, str(error))
        if form.get("action") != "soumettre":
            return await portal.done(
                visitor,
                form,
                f"/editeur/applications/{saved.id}",
                f"Brouillon « {saved.name or 'sans nom'} » enregistré.",
            )
        try:
            submitted = await store.submit(visitor.member, saved.id)
        except StoreError as error:
            await portal.failed(visitor, form)
            if error.status != 422:
                return await portal.error(request, visitor, error.status, str(error))
            return await form_page(
                request,
                visitor,
                app=saved,
                values=values,
                errors=error.by_field,
                problems=_error_list(error),
                status=422,
            )
        if submitted.listed:
            message = (
                f"« {submitted.name} » est référencée après auto-évaluation : "
                "elle apparaît dès maintenant dans le catalogue."
            )
        else:
            message = f"« {submitted.name} » est transmise à l’autorité pour évaluation."
        return await portal.done(visitor, form, f"/editeur/applications/{submitted.id}", message)

    async def new(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        if form is None:
            defaults = {
                "categorie": "3",
                "public": "citoyens",
                "lancement": "autonome",
                "duree": "365",
                "modele": "gratuit",
                "remboursement": "non",
            }
            return await form_page(request, visitor, app=None, values=defaults)
        return await save(request, visitor, form, None)

    async def app_page(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        app = await own(visitor, str(request.path_params["app_id"]))
        if app is None:
            if form is not None:
                await portal.failed(visitor, form)
            return await portal.error(request, visitor, 404, _UNKNOWN)
        if form is not None:
            if app.state != "draft":
                await portal.failed(visitor, form)
                return await portal.error(
                    request,
                    visitor,
                    409,
                    "Une application soumise ne se modifie plus : attendez la décision, ou son renvoi.",
                )
            return await save(request, visitor, form, app)
        if app.state == "draft":
            return await form_page(request, visitor, app=app, values=values_of(app))
        return await view_page(request, visitor, app)

    async def criteria(request: Request, visitor: StoreMember, form: Submitted | None) -> Response:
        grid = await store.grid()
        families = [
            (family, [c for c in grid.criteria if c.family == family.code]) for family in grid.families
        ]
        return await portal.page(
            request,
            visitor,
            "editeur/grille.html",
            title="Grille des critères de référencement",
            grid=grid,
            families=families,
            categories=CATEGORIES,
            levels=LEVELS,
            evidence=EVIDENCE,
        )

    return [
        portal.route("/editeur", home),
        portal.route("/editeur/applications", index),
        portal.route("/editeur/nouvelle", new, methods=("GET", "POST")),
        portal.route("/editeur/applications/{app_id}", app_page, methods=("GET", "POST")),
        portal.route("/editeur/grille", criteria),
    ]
