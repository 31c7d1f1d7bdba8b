"""The ENS home page (the tiles of every service, what is new) and the choice of space."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from hygie.web.ens.core import Ens
from hygie.web.oauth import local_path
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Visitor, person_name

__all__ = ["routes"]


def routes(ens: Ens) -> list[BaseRoute]:
    async def home(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        patient = await ens.door.read(visitor.caller, "Patient", visitor.patient_id)
        documents = await ens.door.search(
            visitor.caller,
            "DocumentReference",
            [("patient", visitor.patient_id), ("status", "current"), ("_sort", "-date"), ("_count", "3")],
            limit=3,
        )
        recent = [
            {
                "id": d["id"],
                "title": d.get("description") or (d.get("type") or {}).get("text") or "Document",
                "date": str(d.get("date", ""))[:10],
            }
            for d in documents
        ]
        given = person_name(patient).split(" ")[0] if patient else ""
        return await ens.page(
            request,
            visitor,
            "ens/accueil.html",
            title="Accueil",
            greeting=given,
            recent=recent,
            highlights=[],
        )

    async def choose_space(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        if await ens.auth.choose_space(visitor, form.get("patient")):
            await ens.forms.flash(visitor.session.session_id, "Espace changé.")
        return RedirectResponse(local_path(form.get("retour")) or "/ens", status_code=303)

    return [
        ens.route("/ens", home),
        ens.route("/ens/espace", choose_space, methods=("POST",)),
    ]
