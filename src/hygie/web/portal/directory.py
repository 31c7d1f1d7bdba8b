"""The health directory search for any portal: the service, and what a results page needs.

Both portals (``web/ens/directory.py`` for citizens, the professionals' one) build their
:class:`~hygie.domain.directory_search.DirectorySearch` here, on their own door, with the
deployment's settings: the commune list (``HYGIE_COMMUNES_CSV``, read once, when the first
search needs it) and the "professionnel numérique" label's URL (``HYGIE_DIGITAL_LABEL_URL``).
The results are rendered by the shared template ``annuaire/resultats.html`` (included with
``result``, ``show_mssante`` and ``write_links``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from hygie.config import Settings
from hygie.domain.access import Caller
from hygie.domain.directory_search import (
    DIGITAL_LABEL_URL,
    RADII_KM,
    DirectoryQuery,
    DirectoryReads,
    DirectoryResult,
    DirectorySearch,
    parse_query,
)
from hygie.domain.geo import Gazetteer, Place, load_gazetteer

__all__ = ["directory_page", "directory_search", "place_links"]

_FIELDS = ("qui", "ou", "rayon", "messages", "type")


def directory_search(reads: DirectoryReads, settings: Settings) -> DirectorySearch:
    """The directory search through ``reads`` (a portal's door), configured by ``settings``."""

    def gazetteer() -> Gazetteer:
        return load_gazetteer(settings.communes_csv)

    return DirectorySearch(
        reads, gazetteer, digital_label_url=settings.digital_label_url or DIGITAL_LABEL_URL
    )


def place_links(path: str, query: DirectoryQuery, places: tuple[Place, ...]) -> list[tuple[str, str]]:
    """(label, href) to run the same search around each of the other places a name may mean."""
    out = []
    for place in places:
        params = {"qui": query.who, "ou": place.label, "rayon": f"{query.radius_km:g}", "type": query.kind}
        if query.accepts_messages:
            params["messages"] = "1"
        out.append((place.label, f"{path}?{urlencode(params)}"))
    return out


async def directory_page(
    search: DirectorySearch, request: Request, caller: Caller, path: str
) -> dict[str, Any]:
    """What a directory page shows for the search in ``request``'s query (a GET form: a search
    changes nothing), read as ``caller``: what was typed, the result or the errors beside their
    fields, the other places a name may mean, and the HTTP status (400 with errors)."""
    typed = {k: request.query_params.get(k, "") for k in _FIELDS}
    asked = any(k in request.query_params for k in ("qui", "ou"))
    query, errors = parse_query(typed)
    if asked and query.empty and not errors:
        errors["qui"] = "Indiquez un nom, une profession ou une commune."
    result = (
        DirectoryResult(query, errors=errors, searched=True) if errors else await search.search(caller, query)
    )
    return {
        "status": 400 if result.errors else 200,
        "result": result,
        "typed": typed,
        "radii": RADII_KM,
        "radius": f"{query.radius_km:g}",
        "errors": result.errors,
        "alternatives": place_links(path, query, result.alternatives),
    }
