"""The ASGI application: ``/fhir`` (the FHIR API) and the home page, on one stateless process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route

from hygie.bootstrap import Runtime, open_runtime
from hygie.config import Settings, load_settings
from hygie.web.fhir_api import FhirApi, Receive, Scope, Send

__all__ = ["create_app"]

_HOME = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hygie</title></head>
<body><main>
<h1>Hygie</h1>
<p>Espace numérique de santé et bouquet de services aux professionnels, sur FHIR R4.</p>
<ul>
<li><a href="/fhir/metadata">API FHIR R4 : déclaration de capacités</a> (<code>/fhir</code>)</li>
</ul>
</main></body></html>
"""


async def home(_: Request) -> HTMLResponse:
    return HTMLResponse(_HOME)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Starlette:
    """Build the app; the store is opened at start-up (lifespan) unless a runtime is given."""
    fhir = _StartedLater()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        rt = runtime or await open_runtime(settings or load_settings())
        fhir.api = FhirApi(rt.service, max_body_bytes=rt.settings.max_body_bytes)
        try:
            yield
        finally:
            if runtime is None:
                await rt.close()

    routes = [Route("/", home), Route("/fhir", fhir), Mount("/fhir", app=fhir)]
    return Starlette(routes=routes, lifespan=lifespan)


class _StartedLater:
    """The FHIR app, created once the store is open (in the lifespan)."""

    api: FhirApi | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.api is None:
            raise RuntimeError("the FHIR API is not started (lifespan did not run)")
        await self.api(scope, receive, send)
