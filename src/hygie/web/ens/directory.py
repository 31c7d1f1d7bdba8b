"""Annuaire santé: find a professional or a care structure, near a place (``domain/directory_search.py``).

* ``/ens/annuaire`` — the search form (who: a name, a profession or a specialty; where: a
  commune, a postal code or an INSEE code; the radius; only those who accept messages) and,
  once asked, the results nearest first with their distance, address and phone.

A plain GET form (a search changes nothing: no CSRF token, the address can be bookmarked). The
directory is read through the door as the signed-in person, like any other page. Citizens are
not shown MSSanté mailboxes — they are the professionals' secure mail, not a way for patients to
write. A professional who accepts messages from patients gets a "write" link when they are in
the person's care team (the messaging page writes to the care team only:
``domain/ens/messaging.care_contacts``); the others say they accept messages from their patients,
and a note says who can be written to.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.domain.ens import messaging as msg
from hygie.web.ens.core import Ens
from hygie.web.portal.directory import directory_page, directory_search
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Visitor

__all__ = ["routes"]

_PATH = "/ens/annuaire"


def routes(ens: Ens) -> list[BaseRoute]:
    search = directory_search(ens.door, ens.services["runtime"].settings)

    async def annuaire(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        shown = await directory_page(search, request, visitor.caller, _PATH)
        result = shown["result"]
        write_links: dict[str, str] = {}
        if any(e.accepts_messages for e in result.entries):
            for contact in await msg.care_contacts(ens.door, visitor.caller, visitor.patient_id):
                write_links[contact.reference] = (
                    f"/ens/messages/nouveau?{urlencode({'a': contact.reference})}"
                )
        return await ens.page(
            request,
            visitor,
            "ens/annuaire.html",
            title="Annuaire santé",
            write_links=write_links,
            # some accept messages but are not in the care team: say where writing is possible
            write_hint=any(
                e.accepts_messages and (e.practitioner or e.organization) not in write_links
                for e in result.entries
            ),
            show_mssante=False,
            **shown,
        )

    return [ens.route(_PATH, annuaire)]
