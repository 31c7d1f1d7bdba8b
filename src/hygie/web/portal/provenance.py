"""The names of the apps that wrote what a page shows (CNNum recommendation 12).

What a third-party app writes carries ``meta.source = urn:hygie:app:<client_id>``, set by the
server (``domain/provenance.py``); a page names the app from the client registry, as the person
saw it on the consent screen. The rules that word the source are in the domain modules
(``domain/ens/vitals.py`` :func:`~hygie.domain.ens.vitals.source_of`, ``domain/ens/documents.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from hygie.domain.provenance import app_of, app_source

if TYPE_CHECKING:
    from hygie.auth.clients import ClientRegistry

__all__ = ["app_names"]

_MAX_APPS = 20  # distinct apps looked up for one page (a record is written by a handful)


async def app_names(clients: ClientRegistry | None, resources: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """``meta.source`` → the app's name, for the apps that wrote ``resources`` (an app no longer
    registered is left out: the page says "une application")."""
    if clients is None:
        return {}
    found = sorted({app for r in resources if (app := app_of(r)) is not None})
    names: dict[str, str] = {}
    for client_id in found[:_MAX_APPS]:
        client = await clients.get(client_id)
        if client is not None:
            names[app_source(client_id)] = client.name
    return names
