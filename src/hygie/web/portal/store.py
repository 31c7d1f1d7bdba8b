"""The Store santé's catalogue as people read it: one view of an app, of the catalogue, of a
report — for the public pages (``web/store/public.py``), the citizens' portal
(``web/ens/store.py``) and the professionals' (``web/bsp/apps.py``).

An app reads the same wherever it is shown (the templates ``store/_fiche.html``,
``store/_catalogue.html``, ``store/_signaler.html``, ``store/_suivi.html`` render these views):

* **who publishes it** (name and SIRET), its category per CNNum 8 (with a medical device's CE
  class), its audience and how it launches;
* **what it will read and write**: its declared scopes in the consent screen's words
  (``web/oauth.py`` :func:`~hygie.web.oauth.scope_label`), split into what it reads and what it
  writes — a ``crs`` scope appears in both lists, as the person will meet it;
* its purpose, business model, reimbursement and whether professionals may prescribe it;
* **its evaluation**: its state, the pathway it followed (self-assessment or a-priori
  evaluation), the grid version it was assessed against and the criteria it meets, the last
  technical checks;
* its **public changelog** (every entry) and its **report history** — a report's date, category,
  severity, status and outcome, never its text nor who filed it (``store/service.py``).

Reports: :class:`ReportForm` is the one form (nature, text, and for an anonymous reporter an
optional contact address), checked whole so that every message goes beside its field; the
store triages and routes it; :func:`report_view` says the triage's result in plain words (which
authority, which deadline) and the follow-up (status, history, outcome).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from hygie.auth.scopes import InvalidScope, Permission, ResourceScope, parse_scopes
from hygie.domain.ens.controls import french_date
from hygie.domain.store.catalogue import (
    AUDIENCES,
    BUSINESS_MODELS,
    CATEGORIES,
    LAUNCH_MODES,
    LISTED,
    PATHWAYS,
    REIMBURSEMENT,
    STATES,
    App,
    CatalogueFilters,
    pathway,
    search_catalogue,
)
from hygie.domain.store.triage import CATEGORIES as REPORT_CATEGORIES
from hygie.domain.store.triage import QUEUES, SEVERITIES
from hygie.store.service import REPORT_STATUSES, StoreError, StoreService
from hygie.web.oauth import scope_label  # the consent screen's words
from hygie.web.portal.core import Portal
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import Submitted

__all__ = [
    "NATURES",
    "AppCard",
    "AppView",
    "CatalogueView",
    "ReportForm",
    "ReportView",
    "app_view",
    "catalogue_view",
    "file_report",
    "launch_location",
    "report_page",
    "report_view",
    "report_views",
    "scope_lists",
    "shown_app",
]

# what the reporter says happened (the form's radio buttons; the triage may refine it)
NATURES = {
    "dysfonctionnement": "Un dysfonctionnement : l’application ne marche pas comme prévu",
    "effet_indesirable": "Un effet néfaste pour la santé : un malaise, une erreur de dose, un soin retardé…",
    "autre": "Autre chose : vos données, l’accessibilité, une information trompeuse…",
}
# who handles a report, by the queue the triage routed it to
QUEUE_AGENCY = {
    "surveillance": "l’Autorité du numérique en santé (file de surveillance)",
    "controle": "l’Agence du médicament, l’ANSM (file de contrôle, matériovigilance)",
}
# the badge of a state in the catalogue (DSFR badge colours)
STATE_BADGES = {
    "listed": "info",
    "listed_data": "success",
    "suspended": "warning",
    "delisted": "error",
    "submitted": "new",
    "under_review": "new",
}
_READ: frozenset[Permission] = frozenset({"r", "s"})
_WRITE: frozenset[Permission] = frozenset({"c", "u", "d"})
_HIDDEN_SCOPES = frozenset({"openid"})  # every app that connects knows who opens it
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_TEXT_MIN, _TEXT_MAX = 10, 5000


def scope_lists(scopes: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(what it reads, what it writes, its other permissions), each in plain French."""
    try:
        parsed = parse_scopes(scopes)
    except InvalidScope:  # a declaration is parsed when it is registered: not expected
        return (), (), ()

    def part(scope: ResourceScope, permissions: frozenset[Permission]) -> str | None:
        kept = scope.permissions & permissions
        return scope_label(replace(scope, permissions=kept)) if kept else None

    reads = [label for s in parsed.resources if (label := part(s, _READ))]
    writes = [label for s in parsed.resources if (label := part(s, _WRITE))]
    others = [scope_label(o) for o in sorted(parsed.others) if o not in _HIDDEN_SCOPES]
    return tuple(reads), tuple(writes), tuple(others)


def launch_location(launch_url: str, iss: str, launch: str) -> str:
    """An app's launch URL with ``iss`` and ``launch`` (SMART App Launch, EHR launch): where both
    portals send the browser to open an app in their context."""
    separator = "&" if "?" in launch_url else "?"
    return f"{launch_url}{separator}{urlencode({'iss': iss, 'launch': launch})}"


def _siret(siret: str) -> str:
    """ "123 456 789 01234": the SIREN, then the establishment's number."""
    return f"{siret[:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}" if len(siret) == 14 else siret


def shown_app(app: App | None) -> App | None:
    """The app if the public may read its page: every app but a draft (a publisher's work)."""
    return app if app is not None and app.state != "draft" else None


@dataclass(frozen=True, slots=True)
class AppCard:
    """An app in the catalogue's list."""

    id: str
    name: str
    publisher: str
    category: str
    level: str  # its state
    level_label: str
    badge: str
    summary: str


@dataclass(frozen=True, slots=True)
class CatalogueView:
    """The catalogue of one audience, filtered: the form's choices and the matching apps."""

    filters: CatalogueFilters
    cards: tuple[AppCard, ...]
    criteria: tuple[tuple[str, str], ...]  # (id, "ID — title") of the grid in force
    categories: Mapping[str, str]
    levels: Mapping[str, str]
    professional: bool  # the reimbursed / prescribable filters
    filtered: bool
    total: int = 0  # the matching apps (``cards`` is one page of them)
    page: int = 1
    pages: int = 1

    def page_query(self, page: int) -> str:
        """The query string of another page of the same search."""
        return urlencode({**self.filters.to_query(), "page": str(page)})


PAGE_SIZE = 30  # apps per page of the catalogue


async def catalogue_view(store: StoreService, audience: str, query: Mapping[str, str]) -> CatalogueView:
    """The listed apps ``audience`` ("citoyens" / "professionnels") sees, filtered by ``query``
    (the form's parameters: ``q``, ``categorie``, ``niveau``, ``critere``, and for professionals
    ``rembourse``, ``prescriptible``)."""
    professional = audience == "professionnels"
    filters = CatalogueFilters.from_query(query)
    if not professional:  # a citizen's catalogue has no such filter
        filters = replace(filters, reimbursed=False, prescribable=False)
    names = {key: p.name for key, p in (await store.publishers()).items()}
    found = search_catalogue(await store.apps(), audience, filters, names)
    pages = max(1, -(-len(found) // PAGE_SIZE))
    raw_page = str(query.get("page", "1"))
    page = min(max(int(raw_page), 1), pages) if raw_page.isdigit() else 1
    total = len(found)
    found = found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    cards = tuple(
        AppCard(
            a.id,
            a.name,
            names.get(a.publisher_id, ""),
            a.category_label,
            a.state,
            a.state_label,
            STATE_BADGES.get(a.state, "info"),
            a.summary,
        )
        for a in found
    )
    grid = await store.grid()
    return CatalogueView(
        filters,
        cards,
        tuple((c.id, f"{c.id} — {c.title}") for c in grid.criteria),
        CATEGORIES,
        {state: STATES[state] for state in sorted(LISTED)},
        professional,
        bool(filters.to_query()),
        total,
        page,
        pages,
    )


@dataclass(frozen=True, slots=True)
class AppView:
    """An app's page, in plain language (see the module's description)."""

    id: str
    name: str
    summary: str
    description: str
    website: str
    publisher: str
    siret: str
    category: str  # its code: "1" a medical device
    category_label: str
    ce_class: str
    audience: str
    launch_mode: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    others: tuple[str, ...]
    purpose: str
    max_days: int
    business_model: str
    reimbursement: str
    reimbursed: bool
    prescribable: bool
    state: str
    state_label: str
    badge: str
    listed: bool
    data_exchange: bool
    listed_since: str
    pathway: str
    grid_version: int
    criteria_met: tuple[tuple[str, str, str], ...]  # (id, title, family)
    commitment: str  # "Engagement signé par … le …" of a self-assessment
    checks: tuple[Mapping[str, Any], ...]  # {label, ok, detail}
    checked_at: str
    changelog: tuple[Mapping[str, str], ...]  # newest first: {date, label, by, note}
    reports: tuple[Mapping[str, str], ...]  # newest first: {date, category, severity, status, outcome}
    for_citizens: bool
    for_professionals: bool


async def app_view(store: StoreService, app: App) -> AppView:
    publisher = await store.publisher(app.publisher_id)
    reads, writes, others = scope_lists(app.scopes)
    grid = await store.grid(app.grid_version) if app.grid_version else None
    met = (
        tuple((c.id, c.title, grid.family_label(c.family)) for c in grid.criteria if app.met(c.id))
        if grid is not None
        else ()
    )
    commitment = ""
    if app.commitment:
        by = str(app.commitment.get("by") or "l’éditeur")
        at = app.commitment.get("at")
        commitment = f"Engagement signé par {by}" + (f" le {french_date(int(at))}" if at else "")
    reports = sorted(await store.reports(app_id=app.id), key=lambda r: -int(r["at"]))
    return AppView(
        id=app.id,
        name=app.name,
        summary=app.summary,
        description=app.description,
        website=app.website if app.website.startswith("https://") else "",
        publisher=publisher.name if publisher else "Éditeur inconnu",
        siret=_siret(publisher.siret) if publisher else "",
        category=app.category,
        category_label=app.category_label,
        ce_class=app.ce_class if app.category == "1" else "",
        audience=AUDIENCES.get(app.audience, app.audience),
        launch_mode=LAUNCH_MODES.get(app.launch_mode, app.launch_mode),
        reads=reads,
        writes=writes,
        others=others,
        purpose=app.purpose,
        max_days=app.max_days,
        business_model=BUSINESS_MODELS.get(app.business_model, app.business_model),
        reimbursement=REIMBURSEMENT.get(app.reimbursement, app.reimbursement),
        reimbursed=app.reimbursement != "non",
        prescribable=app.prescribable,
        state=app.state,
        state_label=app.state_label,
        badge=STATE_BADGES.get(app.state, "info"),
        listed=app.listed,
        data_exchange=app.state == "listed_data",
        listed_since=french_date(app.listed_at) if app.listed_at else "",
        pathway=PATHWAYS[pathway(app)],
        grid_version=app.grid_version,
        criteria_met=met,
        commitment=commitment,
        checks=tuple(
            {"label": str(c.get("label", "")), "ok": bool(c.get("ok")), "detail": str(c.get("detail", ""))}
            for c in app.checks
        ),
        checked_at=french_date(app.checked_at) if app.checked_at else "",
        changelog=tuple(
            {"date": french_date(e.at), "label": e.label, "by": e.by, "note": e.note}
            for e in reversed(app.changelog)
        ),
        reports=tuple(
            {
                "date": french_date(int(r["at"])),
                "category": REPORT_CATEGORIES.get(r["category"], r["category"]),
                "severity": SEVERITIES.get(r["severity"], r["severity"]),
                "status": REPORT_STATUSES.get(r["status"], r["status"]),
                "outcome": str(r.get("outcome") or ""),
            }
            for r in reports
        ),
        for_citizens=app.for_audience("citoyens"),
        for_professionals=app.for_audience("professionnels"),
    )


@dataclass(frozen=True, slots=True)
class ReportForm:
    """What a reporter typed (kept when the form is shown again with its errors)."""

    nature: str = ""
    text: str = ""
    contact: str = ""

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> ReportForm:
        return cls(
            str(values.get("nature", "")).strip(),
            str(values.get("texte", "")).strip(),
            str(values.get("contact", "")).strip(),
        )

    def problems(self) -> list[tuple[str, str]]:
        """Every fault at once, as (form field, French message)."""
        out: list[tuple[str, str]] = []
        if self.nature not in NATURES:
            out.append(("nature", "Choisissez la nature du problème."))
        if len(self.text) < _TEXT_MIN:
            out.append(("texte", "Décrivez ce qui s’est passé (10 caractères au moins)."))
        elif len(self.text) > _TEXT_MAX:
            out.append(("texte", "Votre description dépasse 5 000 caractères : raccourcissez-la."))
        if self.contact and (len(self.contact) > 254 or not _EMAIL.match(self.contact)):
            out.append(("contact", "Cette adresse électronique n’est pas valide (exemple : nom@exemple.fr)."))
        return out


async def file_report(
    store: StoreService, app: App, form: ReportForm, *, reporter: str | None, kind: str
) -> dict[str, Any]:
    """File the report (triaged and routed by the store); :class:`StoreError` with every fault
    by field when the form is not right."""
    problems = form.problems()
    if problems:
        raise StoreError(problems)
    return await store.report(
        app.id, form.text, declared=form.nature, reporter=reporter, reporter_kind=kind, contact=form.contact
    )


async def report_page(
    portal: Portal[Any],
    request: Request,
    visitor: Any,
    form: Submitted | None,
    store: StoreService,
    app: App,
    *,
    reporter: str,
    kind: str,
    base: str,
    template: str,
) -> Response:
    """A signed-in person's report form on an app (the ENS's and the BSP's): shown, or filed and
    followed at ``{base}/signalements/{id}``; each fault beside its field, what was typed kept."""
    typed = ReportForm.from_values(form.values if form else {})
    errors: dict[str, str] = {}
    if form is not None:
        try:
            filed = await file_report(store, app, typed, reporter=reporter, kind=kind)
        except StoreError as error:
            if error.status != 422:
                raise PortalError(error.status, str(error)) from error
            errors = error.by_field
            await portal.failed(visitor, form)
        else:
            return await portal.done(
                visitor, form, f"{base}/signalements/{filed['id']}", "Votre signalement est envoyé."
            )
    return await portal.page(
        request,
        visitor,
        template,
        status=422 if errors else 200,
        title=f"Signaler un problème — {app.name}",
        app=app,
        natures=NATURES,
        report=typed,
        errors=errors,
    )


@dataclass(frozen=True, slots=True)
class ReportView:
    """A report as its reporter follows it."""

    id: str
    app_id: str
    app_name: str
    date: str
    nature: str
    category: str
    severity: str
    queue: str
    agency: str  # who handles it, in words
    due: str
    status: str
    status_label: str
    outcome: str
    reasons: tuple[str, ...]  # why the triage classed it so
    history: tuple[Mapping[str, str], ...]  # oldest first: {date, status, by, note}


def report_view(report: Mapping[str, Any], app_name: str) -> ReportView:
    triage = report.get("triage") or {}
    declared = str(report.get("declared") or "")
    return ReportView(
        id=str(report["id"]),
        app_id=str(report["app_id"]),
        app_name=app_name,
        date=french_date(int(report["at"])),
        nature=NATURES.get(declared, "").split(" :")[0] or "Non précisée",
        category=REPORT_CATEGORIES.get(report["category"], report["category"]),
        severity=SEVERITIES.get(report["severity"], report["severity"]).lower(),
        queue=QUEUES.get(report["queue"], report["queue"]),
        agency=QUEUE_AGENCY.get(report["queue"], report["queue"]),
        due=french_date(int(report["due"])),
        status=str(report["status"]),
        status_label=REPORT_STATUSES.get(report["status"], report["status"]),
        outcome=str(report.get("outcome") or ""),
        reasons=tuple(str(r) for r in triage.get("reasons") or ()),
        history=tuple(
            {
                "date": french_date(int(h["at"])),
                "status": REPORT_STATUSES.get(h["status"], h["status"]),
                "by": str(h.get("by") or ""),
                "note": str(h.get("note") or ""),
            }
            for h in report.get("history") or ()
        ),
    )


async def report_views(store: StoreService, reports: Iterable[Mapping[str, Any]]) -> list[ReportView]:
    """Several reports, each with its app's name."""
    names = {app.id: app.name for app in await store.apps()}  # the decoded catalogue, no read per report
    return [report_view(r, names.get(str(r["app_id"]), "Application retirée")) for r in reports]
