"""The citizen's portal, the Espace Numérique de Santé (ENS), under ``/ens``.

Server-rendered French pages on the State design system (DSFR); every section is a module with
``routes(ens)`` (see :mod:`hygie.web.ens.core` for what they share). Every datum is a FHIR
resource read or written through the access policy as the signed-in person.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from hygie.web.ens import (
    account,
    agenda,
    alerts,
    carnet,
    controls,
    directory,
    documents,
    export,
    home,
    lifecycle,
    messages,
    prescriptions,
    profile,
    questionnaires,
    store,
    vitals,
)
from hygie.web.ens.core import Ens
from hygie.web.portal.door import Door
from hygie.web.portal.forms import Forms
from hygie.web.portal.session import PortalAuth

if TYPE_CHECKING:
    from hygie.bootstrap import Runtime
    from hygie.web.oauth import OAuthWeb

__all__ = ["build_ens", "ens_routes"]

SECTIONS = (
    home,
    profile,
    carnet,
    documents,
    vitals,
    prescriptions,
    agenda,
    messages,
    directory,
    controls,
    store,
    alerts,
    questionnaires,
    export,
    lifecycle,
    account,
)


def build_ens(runtime: Runtime, oauth: OAuthWeb) -> Ens:
    from hygie.bootstrap import clock_us  # noqa: PLC0415

    assert runtime.accounts is not None
    door = Door(runtime.service)
    auth = PortalAuth(oauth, runtime.accounts, runtime.resolver, door, runtime.kv, runtime.directory_read)
    forms = Forms(runtime.kv, clock_us, max_upload_bytes=runtime.settings.max_upload_bytes)
    return Ens(door, auth, forms, clock_us, {"runtime": runtime})


def ens_routes(runtime: Runtime, oauth: OAuthWeb) -> list[BaseRoute]:
    ens = build_ens(runtime, oauth)
    routes: list[BaseRoute] = []
    for section in SECTIONS:
        routes.extend(section.routes(ens))
    return routes
