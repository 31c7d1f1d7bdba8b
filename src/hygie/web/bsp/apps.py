"""BSP "Applications": the Store santé's catalogue for professionals, and the apps opened in a
patient's context.

* ``GET /bsp/applications`` — the catalogue of the Store santé as professionals see it
  (``search_catalogue(apps, "professionnels", …)``, ``web/portal/store.py``): search words,
  category, listing level, a criterion of the grid the app meets, and the **reimbursed** and
  **prescribable** filters; a card per app. Apart, the apps the operator registered directly,
  outside the store (``hygie client add --audience professional --launch-url …``,
  ``auth/clients.py``: ``StoreService.app_of_client`` knows nothing of them), each with its
  description and what its scopes let it read or write, in the consent screen's words. Then the
  authorisations the professional gave to apps, which they may withdraw;
* ``GET /bsp/applications/{app}`` — a store app's page (the public page's partial) and
  ``…/signaler`` its report form, filed as the signed-in professional; ``GET
  /bsp/applications/signalements`` their reports, with status and outcome;
* ``GET /bsp/patients/{patient}/applications`` — the same apps, each with a button that opens it
  for this patient;
* ``POST …/applications/{client}/ouvrir`` — a SMART **EHR launch**: the record must be open to the
  professional (the Patient is read through the door, so the opening is in the patient's audit
  trail), an opaque launch token is made for this patient, this professional and this app alone
  (``AuthorizationServer.create_launch``), and the browser goes to the app's launch URL with
  ``iss`` (the FHIR base) and ``launch``. The app then asks ``/oauth/authorize`` with that
  ``launch``: the professional's portal session signs them in (no second sign-in), and the
  consent screen shows what the app asks for this patient — as for every app, the professional
  may accept only part of it;
* ``POST /bsp/applications/autorisations/{family}/retirer`` — withdraws an authorisation: its
  tokens stop working at once.

What the app then reads is decided as for any token: its ``patient/`` scopes reach the launch
patient only, and only what the access policy lets this professional see (``domain/policy.py``);
every access is in the patient's audit trail under the app's ``client_id``. A store app listed
with data exchange for professionals is such a registered client (``app-<id>``, audience
professional, with its launch URL): it opens for a patient the same way, and stops being offered
the moment the store suspends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.auth.clients import Client
from hygie.auth.scopes import InvalidScope, parse_scopes
from hygie.auth.server import AuthorizationServer, LaunchContext
from hygie.domain.ens.controls import french_date, french_datetime
from hygie.domain.store.catalogue import App
from hygie.store.service import StoreService
from hygie.web.bsp.core import Bsp, patient_context
from hygie.web.bsp.patients import require_id
from hygie.web.oauth import scope_label
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Professional, person_name
from hygie.web.portal.store import (
    app_view,
    catalogue_view,
    launch_location,
    report_page,
    report_views,
    shown_app,
)

__all__ = ["AUDIENCE", "routes"]

AUDIENCE = "professional"  # the registered clients' audience (auth/clients.py)
STORE_AUDIENCE = "professionnels"  # the store's (domain/store/catalogue.py)
_BASE = "/bsp/applications"
_HIDDEN_SCOPES = frozenset({"openid"})  # said once on the page: every app knows who opens it


@dataclass(frozen=True, slots=True)
class Offered:
    """An app as the catalogue shows it."""

    client_id: str
    name: str
    description: str
    reads: tuple[str, ...]  # what its scopes let it do, in plain French
    origin: str  # where it runs (the launch URL's site)


def offered(client: Client) -> Offered:
    try:
        scopes = parse_scopes(client.scope)
    except InvalidScope:  # registered scopes are parsed at registration: not expected
        scopes = parse_scopes("")
    reads = [scope_label(s) for s in scopes.resources]
    reads += [scope_label(o) for o in sorted(scopes.others) if o not in _HIDDEN_SCOPES]
    url = client.launch_url or ""
    origin = "/".join(url.split("/", 3)[:3])
    return Offered(client.client_id, client.name, client.description, tuple(reads), origin)


def routes(bsp: Bsp) -> list[BaseRoute]:
    def server() -> AuthorizationServer:
        auth = bsp.services["runtime"].auth
        if auth is None:
            raise PortalError(503, "Les applications ne sont pas disponibles sur ce serveur.")
        assert isinstance(auth, AuthorizationServer)
        return auth

    def store() -> StoreService:
        found = bsp.services["runtime"].app_store
        assert isinstance(found, StoreService)
        return found

    async def catalogue() -> list[Offered]:
        return [offered(c) for c in await server().clients.offered_to(AUDIENCE)]

    async def operators_apps() -> list[Offered]:
        """The apps registered directly by the operator, outside the store."""
        return [
            offered(c)
            for c in await server().clients.offered_to(AUDIENCE)
            if await store().app_of_client(c.client_id) is None
        ]

    async def store_app(request: Request) -> App:
        app = shown_app(await store().app(str(request.path_params["app"])[:64]))
        if app is None:
            raise PortalError(404, "Cette application n’est pas dans le catalogue.")
        return app

    async def grants(visitor: Professional) -> list[dict[str, Any]]:
        auth = server()
        found = await auth.grants_of(visitor.account.id)
        # the patients' names, as the professional may see them (one search, through the door)
        patient_ids = sorted({g.patient for g in found if g.patient})
        names: dict[str, str] = {}
        if patient_ids:
            for patient in await bsp.door.search(
                visitor.caller, "Patient", [("_id", ",".join(patient_ids)), ("_count", "100")], limit=100
            ):
                names[str(patient.get("id"))] = person_name(patient)
        out = []
        for grant in found:
            client = await auth.clients.get(grant.client_id)
            out.append(
                {
                    "family": grant.family,
                    "name": client.name if client else grant.client_id,
                    "patient": grant.patient,
                    "patient_label": names.get(grant.patient or "", ""),
                    "since": french_date(grant.created_us),
                    "used": french_datetime(grant.last_used_us),
                }
            )
        return out

    async def index(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        return await bsp.page(
            request,
            visitor,
            "bsp/applications/index.html",
            title="Applications",
            catalogue=await catalogue_view(store(), STORE_AUDIENCE, request.query_params),
            apps=await operators_apps(),
            grants=await grants(visitor),
        )

    async def application(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        app = await store_app(request)
        client = await server().clients.get(app.client_id) if app.client_id else None
        return await bsp.page(
            request,
            visitor,
            "bsp/applications/application.html",
            title=app.name,
            view=await app_view(store(), app),
            opens=client is not None and client.offered_to(AUDIENCE) and app.listed,
        )

    async def report(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        app = await store_app(request)
        return await report_page(
            bsp,
            request,
            visitor,
            form,
            store(),
            app,
            reporter=visitor.account.id,
            kind="professionnel",
            base=_BASE,
            template="bsp/applications/signaler.html",
        )

    async def mine(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        return await bsp.page(
            request,
            visitor,
            "bsp/applications/signalements.html",
            title="Mes signalements",
            reports=await report_views(store(), await store().reports_of(visitor.account.id)),
        )

    async def follow_up(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        wanted = str(request.path_params["report"])
        found = [r for r in await store().reports_of(visitor.account.id) if r["id"] == wanted]
        if not found:
            raise PortalError(404, "Ce signalement n’existe pas ou n’est pas le vôtre.")
        (view,) = await report_views(store(), found)
        return await bsp.page(
            request, visitor, "bsp/applications/signalement.html", title="Suivi du signalement", report=view
        )

    async def open_record(visitor: Professional, patient_id: str) -> dict[str, Any]:
        """The Patient, read as the professional (audited): an app opens only on an open record."""
        try:
            patient = await bsp.door.read(visitor.caller, "Patient", patient_id)
        except PortalError as error:
            if error.status != 403:
                raise
            patient = None
        if patient is None:
            raise PortalError(404, "Ce patient n’existe pas ou vous n’avez pas accès à son dossier.")
        await bsp.auth.work_on(visitor, patient_context(patient))
        return patient

    async def for_patient(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        patient_id = require_id(request.path_params["patient"])
        await open_record(visitor, patient_id)
        return await bsp.page(
            request, visitor, "bsp/applications/patient.html", title="Applications", apps=await catalogue()
        )

    async def launch(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        patient_id = require_id(request.path_params["patient"])
        auth = server()
        client = await auth.clients.get(request.path_params["client"])
        if client is None or not client.offered_to(AUDIENCE) or client.launch_url is None:
            raise PortalError(404, "Cette application n’est pas proposée aux professionnels.")
        await open_record(visitor, patient_id)
        token = await auth.create_launch(
            LaunchContext(patient=patient_id), account_id=visitor.account.id, client_id=client.client_id
        )
        return await bsp.done(visitor, form, launch_location(client.launch_url, auth.fhir_base, token))

    async def withdraw(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        if not await server().revoke_grant(visitor.account.id, request.path_params["family"]):
            raise PortalError(404, "Cette autorisation n’existe plus.")
        return await bsp.done(
            visitor,
            form,
            "/bsp/applications",
            "Autorisation retirée : l’application n’a plus accès aux dossiers en votre nom.",
        )

    return [
        bsp.route(_BASE, index),
        bsp.route(f"{_BASE}/autorisations/{{family}}/retirer", withdraw, methods=("POST",)),
        # before "{app}": these paths are not apps
        bsp.route(f"{_BASE}/signalements", mine),
        bsp.route(f"{_BASE}/signalements/{{report}}", follow_up),
        bsp.route(f"{_BASE}/{{app}}", application),
        bsp.route(f"{_BASE}/{{app}}/signaler", report, methods=("GET", "POST")),
        bsp.route("/bsp/patients/{patient}/applications", for_patient),
        bsp.route("/bsp/patients/{patient}/applications/{client}/ouvrir", launch, methods=("POST",)),
    ]
