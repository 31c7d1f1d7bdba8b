"""ENS "Applications": the Store santé's catalogue for citizens, connecting an app, reporting one.

* ``GET /ens/applications`` — the catalogue (``search_catalogue(apps, "citoyens", …)``): search
  words, category, listing level, a criterion of the grid the app meets; a card per app;
* ``GET /ens/applications/{app}`` — the app's page (the public page's partial,
  ``store/_fiche.html``) and what the person may do with it:

  - an app **listed with data exchange** whose SMART registration is active may be connected. A
    *widget* (an app that opens in the portal's context) is opened by
    ``POST /ens/applications/{app}/ouvrir``: a SMART **EHR launch** for the space open in the
    portal — an opaque launch token bound to this person and this app
    (``AuthorizationServer.create_launch``), then the browser goes to the app's launch URL with
    ``iss`` and ``launch``. The app asks ``/oauth/authorize``; the portal session signs the person
    in and **the one consent screen** (``consentement.html``) shows the publisher, the catalogue
    status, the purpose, each access (which may be refused) and the duration. A *standalone* app
    is connected from the app itself, which sends the person to the same screen;
  - any app shown may be reported (``…/signaler``), as the signed-in citizen;

* ``GET /ens/applications/signalements`` — "Mes signalements": status, deadline and outcome of
  each report the person filed; ``…/signalements/{report}`` its follow-up.

The catalogue is not health data (``store/service.py``); the grant and its FHIR ``Consent`` are
made by the consent screen, and revoked from "Qui voit mon dossier" (``web/ens/controls.py``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.auth.server import AuthorizationServer, LaunchContext
from hygie.domain.store.catalogue import App
from hygie.store.service import StoreService
from hygie.web.ens.core import Ens
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Visitor
from hygie.web.portal.store import (
    app_view,
    catalogue_view,
    launch_location,
    report_page,
    report_views,
    shown_app,
)

__all__ = ["routes"]

AUDIENCE = "citoyens"
_BASE = "/ens/applications"


def _store(ens: Ens) -> StoreService:
    store = ens.services["runtime"].app_store
    assert isinstance(store, StoreService)
    return store


def _server(ens: Ens) -> AuthorizationServer:
    auth = ens.services["runtime"].auth
    if auth is None:
        raise PortalError(503, "Les applications ne sont pas disponibles sur ce serveur.")
    assert isinstance(auth, AuthorizationServer)
    return auth


async def _app(ens: Ens, request: Request) -> App:
    app = shown_app(await _store(ens).app(str(request.path_params["app"])[:64]))
    if app is None:
        raise PortalError(404, "Cette application n’est pas dans le catalogue.")
    return app


async def connection(ens: Ens, app: App) -> dict[str, Any]:
    """How the person may connect ``app``: ``mode`` "widget" (a button that opens it here),
    "autonome" (from the app, whose site is given), or None with the reason in ``why``."""
    if not app.for_audience(AUDIENCE) or not app.listed:
        return {"mode": None, "why": "Cette application n’est pas proposée aux particuliers."}
    if app.state != "listed_data" or not app.client_id:
        return {"mode": None, "why": "Cette application n’accède pas à votre dossier de santé."}
    client = await _server(ens).clients.get(app.client_id)
    if client is None or client.status != "active":
        return {"mode": None, "why": "La connexion de cette application est suspendue."}
    if app.launch_mode == "widget" and client.launch_url and "citizen" in client.audience:
        return {"mode": "widget", "why": ""}
    return {"mode": "autonome", "why": ""}


def routes(ens: Ens) -> list[BaseRoute]:
    async def index(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        return await ens.page(
            request,
            visitor,
            "ens/applications/index.html",
            title="Applications",
            catalogue=await catalogue_view(_store(ens), AUDIENCE, request.query_params),
        )

    async def application(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        app = await _app(ens, request)
        return await ens.page(
            request,
            visitor,
            "ens/applications/application.html",
            title=app.name,
            view=await app_view(_store(ens), app),
            connect=await connection(ens, app),
        )

    async def launch(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        app = await _app(ens, request)
        if (await connection(ens, app))["mode"] != "widget":
            raise PortalError(409, "Cette application ne s’ouvre pas depuis votre espace santé.")
        auth = _server(ens)
        client = await auth.clients.get(app.client_id)
        assert client is not None and client.launch_url is not None
        token = await auth.create_launch(
            LaunchContext(patient=visitor.patient_id),
            account_id=visitor.subject.account_id,
            client_id=client.client_id,
        )
        return await ens.done(visitor, form, launch_location(client.launch_url, auth.fhir_base, token))

    async def report(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        app = await _app(ens, request)
        return await report_page(
            ens,
            request,
            visitor,
            form,
            _store(ens),
            app,
            reporter=visitor.subject.account_id,
            kind="citoyen",
            base=_BASE,
            template="ens/applications/signaler.html",
        )

    async def mine(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        store = _store(ens)
        return await ens.page(
            request,
            visitor,
            "ens/applications/signalements.html",
            title="Mes signalements",
            reports=await report_views(store, await store.reports_of(visitor.subject.account_id)),
        )

    async def follow_up(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        store = _store(ens)
        wanted = str(request.path_params["report"])
        found = [r for r in await store.reports_of(visitor.subject.account_id) if r["id"] == wanted]
        if not found:
            raise PortalError(404, "Ce signalement n’existe pas ou n’est pas le vôtre.")
        (view,) = await report_views(store, found)
        return await ens.page(
            request, visitor, "ens/applications/signalement.html", title="Suivi du signalement", report=view
        )

    return [
        ens.route(_BASE, index),
        # before "{app}": these paths are not apps
        ens.route(f"{_BASE}/signalements", mine),
        ens.route(f"{_BASE}/signalements/{{report}}", follow_up),
        ens.route(f"{_BASE}/{{app}}", application),
        ens.route(f"{_BASE}/{{app}}/ouvrir", launch, methods=("POST",)),
        ens.route(f"{_BASE}/{{app}}/signaler", report, methods=("GET", "POST")),
    ]
