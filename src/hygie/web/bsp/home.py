"""BSP home: the services, and what waits for the professional (each section adds its own).

A section that has something to say on the home page (renewal requests to answer, unread
messages…) registers an async ``(visitor) -> list[Highlight]`` in ``bsp.services["highlights"]``
when its routes are built; the home page asks each, through the door as the professional.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.web.bsp.core import Bsp
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Professional

__all__ = ["Highlight", "highlight", "routes"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Highlight:
    text: str
    href: str


HighlightSource = Callable[[Professional], Awaitable[list[Highlight]]]


def highlight(bsp: Bsp, source: HighlightSource) -> None:
    """Register what a section shows on the home page."""
    bsp.services.setdefault("highlights", []).append(source)


def routes(bsp: Bsp) -> list[BaseRoute]:
    async def home(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        shown: list[Highlight] = []
        for source in bsp.services.get("highlights", []):
            try:
                shown.extend(await source(visitor))
            except PortalError as error:  # one section failing never hides the others
                log.warning("home highlight failed: %s", error.detail)
        return await bsp.page(request, visitor, "bsp/accueil.html", title="Accueil", highlights=shown)

    return [bsp.route("/bsp", home)]
