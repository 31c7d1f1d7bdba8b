"""The professionals' portal, the Bouquet de Services aux Professionnels (BSP), under ``/bsp``.

Server-rendered French pages on the State design system (DSFR), on the same frame as the
citizen's portal (``web/portal/``): every section is a module with ``routes(bsp)`` (see
:mod:`hygie.web.bsp.core`). Every datum is a FHIR resource read or written through the access
policy as the signed-in professional.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from hygie.web.bsp import (
    access,
    agenda,
    apps,
    directory,
    documents,
    home,
    identify,
    messages,
    patients,
    pharmacy,
    practice,
    prescriptions,
)
from hygie.web.bsp.core import Bsp
from hygie.web.portal.door import Door
from hygie.web.portal.forms import Forms
from hygie.web.portal.session import PortalAuth

if TYPE_CHECKING:
    from hygie.bootstrap import Runtime
    from hygie.web.oauth import OAuthWeb

__all__ = ["bsp_routes", "build_bsp"]

# the order matters where paths overlap: a patient's sub-pages before "/bsp/patients/{patient}"
SECTIONS = (
    home,
    identify,
    documents,
    access,
    apps,
    directory,
    practice,
    prescriptions,
    pharmacy,
    patients,
    messages,
    agenda,
)


def build_bsp(runtime: Runtime, oauth: OAuthWeb) -> Bsp:
    from hygie.bootstrap import clock_us  # noqa: PLC0415

    assert runtime.accounts is not None and runtime.break_glass is not None
    door = Door(runtime.service)
    auth = PortalAuth(
        oauth,
        runtime.accounts,
        runtime.resolver,
        door,
        runtime.kv,
        runtime.directory_read,
        break_glass=runtime.break_glass.open_for,
    )
    forms = Forms(runtime.kv, clock_us, max_upload_bytes=runtime.settings.max_upload_bytes)
    return Bsp(door, auth, forms, clock_us, {"runtime": runtime})


def bsp_routes(runtime: Runtime, oauth: OAuthWeb) -> list[BaseRoute]:
    bsp = build_bsp(runtime, oauth)
    routes: list[BaseRoute] = []
    for section in SECTIONS:
        routes.extend(section.routes(bsp))
    return routes
