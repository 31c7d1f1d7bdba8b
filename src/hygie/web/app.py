"""The ASGI application: one stateless process serving every entry point.

* ``/fhir`` — the FHIR R4 API (``web/fhir_api.py``);
* ``/.well-known/openid-configuration``, ``/fhir/.well-known/smart-configuration``, ``/oauth/*``,
  ``/connexion`` — the authorisation server and its sign-in pages (``web/oauth.py``);
* ``/static/dsfr`` — the State design system, from its npm package.

The store is opened at start-up (lifespan); the routes are built then, around the runtime.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from hygie import delivery
from hygie.auth.federation import providers_from_env
from hygie.bootstrap import Runtime, clock_us, open_runtime
from hygie.config import Settings, load_settings
from hygie.store.consents import AppConsents, ConsentScreen
from hygie.web.bsp import bsp_routes
from hygie.web.ens import ens_routes
from hygie.web.federation import federation_routes
from hygie.web.fhir_api import FhirApi, Receive, Scope, Send
from hygie.web.oauth import OAuthWeb
from hygie.web.pages import dsfr_static, render
from hygie.web.patient_picker import ServicePatientFinder
from hygie.web.portal.door import Door
from hygie.web.portal.session import PortalAuth
from hygie.web.store import store_routes

__all__ = ["build_routes", "create_app"]


async def home(_: Request) -> Response:
    return render("accueil.html", title="Accueil")


def fhir_api(runtime: Runtime) -> FhirApi:
    return FhirApi(
        runtime.service, max_body_bytes=runtime.settings.max_body_bytes, authenticate=runtime.authenticate
    )


def _consent_screen(runtime: Runtime, oauth: OAuthWeb) -> ConsentScreen:
    """The consent screen's store side: the app's record, and the Consent a citizen's grant is
    written as — as the person, through the door, as their portal pages write."""
    assert runtime.accounts is not None
    door = Door(runtime.service)
    people = PortalAuth(oauth, runtime.accounts, runtime.resolver, door, runtime.kv, runtime.directory_read)
    return ConsentScreen(runtime.app_store, AppConsents(door, people.caller_for, clock_us))


def build_routes(runtime: Runtime, fhir: FhirApi | None = None) -> list[BaseRoute]:
    assert runtime.auth is not None
    fhir = fhir or fhir_api(runtime)
    providers = providers_from_env()  # HYGIE_FEDERATION_PROVIDERS (JSON); none when unset
    oauth = OAuthWeb(
        runtime.auth,
        runtime.kv,
        runtime.sign_in,
        ServicePatientFinder(runtime.service),
        clock_us,
        providers=providers,
    )
    oauth.consent_screen = _consent_screen(runtime, oauth)
    routes: list[BaseRoute] = [
        Route("/", home),
        *oauth.routes(),
        *federation_routes(runtime, providers),
        *ens_routes(runtime, oauth),
        *bsp_routes(runtime, oauth),
        *store_routes(runtime, oauth),
        Route("/fhir", fhir),
        Mount("/fhir", app=fhir),
    ]
    static = dsfr_static()
    if static is not None:
        routes.append(Mount("/static/dsfr", app=static, name="dsfr"))
    routes.append(
        Mount("/static/hygie", app=StaticFiles(directory=Path(__file__).parent / "static"), name="hygie")
    )
    return routes


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Starlette:
    """Build the app; the store is opened at start-up (lifespan) unless a runtime is given.

    FHIR API requests (the hot path) go straight to :class:`FhirApi`, before any framework
    routing or middleware; everything else (pages, OAuth, discovery, static files) goes through
    Starlette.
    """
    front = _Front()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        rt = runtime or await open_runtime(settings or load_settings())
        front.fhir = fhir_api(rt)
        front.pages = Starlette(routes=build_routes(rt, front.fhir), middleware=[cors()])
        try:
            async with delivery.running(rt):  # notifications and the outbox, in the background
                yield
        finally:
            if runtime is None:
                await rt.close()

    return _Hygie(front, routes=[Mount("", app=front)], lifespan=lifespan)


def cors() -> Middleware:
    """Browser apps on other origins (SMART apps) call discovery, the token endpoint and the FHIR
    API with a bearer token: any origin may, without credentials — cookies never cross origins,
    so the sign-in session is not exposed."""
    return Middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_credentials=False,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "Accept",
            "Prefer",
            "If-Match",
            "If-None-Match",
            "If-None-Exist",
            "X-Request-Id",
        ],
        expose_headers=["Location", "ETag", "Last-Modified", "Content-Location", "X-Request-Id"],
        max_age=600,
    )


class _Hygie(Starlette):
    """The application object: FHIR requests skip even the outer framework layers."""

    def __init__(self, front: _Front, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.front = front

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fhir = self.front.fhir
        if fhir is not None and scope["type"] == "http" and _is_fhir(scope["path"]):
            await fhir(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _is_fhir(path: str) -> bool:
    return (path == "/fhir" or path.startswith("/fhir/")) and not path.startswith("/fhir/.well-known/")


class _Front:
    """Dispatches FHIR requests directly and the rest to the framework (both built at start-up)."""

    fhir: FhirApi | None = None
    pages: Starlette | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fhir is None or self.pages is None:
            raise RuntimeError("the application is not started (lifespan did not run)")
        if _is_fhir(scope.get("path", "")):
            await self.fhir(scope, receive, send)
            return
        await self.pages(scope, receive, send)
