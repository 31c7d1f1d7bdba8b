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

from hygie.domain.directory_search import RADII_KM, DirectoryResult, parse_query
from hygie.web.bsp.core import Bsp
from hygie.web.portal.directory import directory_search, place_links
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Professional

__all__ = ["routes"]

_PATH = "/bsp/annuaire"
_FIELDS = ("qui", "ou", "rayon", "messages", "type")


def routes(bsp: Bsp) -> list[BaseRoute]:
    search = directory_search(bsp.door, bsp.services["runtime"].settings)

    async def annuaire(request: Request, visitor: Professional, _: Submitted | None) -> Response:
        typed = {k: request.query_params.get(k, "") for k in _FIELDS}
        asked = any(k in request.query_params for k in ("qui", "ou"))
        query, errors = parse_query(typed)
        if asked and query.empty and not errors:
            errors["qui"] = "Indiquez un nom, une profession ou une commune."
        result = (
            DirectoryResult(query, errors=errors, searched=True)
            if errors
            else await search.search(visitor.caller, query)
        )
        return await bsp.page(
            request,
            visitor,
            "bsp/annuaire.html",
            status=400 if result.errors else 200,
            title="Annuaire",
            result=result,
            typed=typed,
            radii=RADII_KM,
            radius=f"{query.radius_km:g}",
            errors=result.errors,
            alternatives=place_links(_PATH, query, result.alternatives),
            write_links={},
            write_hint=False,
            show_mssante=True,
        )

    return [bsp.route(_PATH, annuaire)]
