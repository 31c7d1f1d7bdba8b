"""BSP "Annuaire": professionals and structures, nearest first, with their secure mailboxes.

* ``/bsp/annuaire`` — the same search as the citizens' directory (``domain/directory_search.py``,
  ``web/portal/directory.py``: who, where, radius, nearest first with the distance), read through
  the door as the professional; professionals also see each one's MSSanté mailboxes (the secure
  mail between professionals), which citizens never do.

A plain GET form (a search changes nothing: no CSRF token, the address can be bookmarked).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.web.bsp.core import Bsp
from hygie.web.portal.directory import directory_page, directory_search
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Professional

__all__ = ["routes"]

_PATH = "/bsp/annuaire"


def routes(bsp: Bsp) -> list[BaseRoute]:
    search = directory_search(bsp.door, bsp.services["runtime"].settings)

    async def annuaire(request: Request, visitor: Professional, _: Submitted | None) -> Response:
        shown = await directory_page(search, request, visitor.caller, _PATH)
        return await bsp.page(
            request,
            visitor,
            "bsp/annuaire.html",
            title="Annuaire",
            write_links={},
            write_hint=False,
            show_mssante=True,
            **shown,
        )

    return [bsp.route(_PATH, annuaire)]
