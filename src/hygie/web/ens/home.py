"""The ENS home page (the tiles of every service, what is new) and the choice of space."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from hygie.domain.ens.vaccination import due
from hygie.web.ens import messages, questionnaires, vitals
from hygie.web.ens.core import Ens
from hygie.web.oauth import local_path
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Visitor, person_name

__all__ = ["routes"]


def _plural(n: int, one: str, many: str) -> str:
    return one.format(n=n) if n == 1 else many.format(n=n)


async def _highlights(ens: Ens, visitor: Visitor, patient: dict[str, Any] | None) -> list[dict[str, str]]:
    """What needs the person's attention, each with the page to deal with it."""
    out: list[dict[str, str]] = []
    unread = await messages.unread_count(ens, visitor)
    if unread:
        text = _plural(unread, "{n} nouveau message", "{n} nouveaux messages")
        out.append({"href": "/ens/messages", "text": text})
    notices = await vitals.watch_of(ens).notices(visitor.caller, visitor.patient_id)
    if notices:
        text = _plural(len(notices), "{n} mesure hors de vos seuils", "{n} mesures hors de vos seuils")
        out.append({"href": "/ens/mesures", "text": text})
    birth = (patient or {}).get("birthDate")
    if isinstance(birth, str) and len(birth) >= 10:
        immunizations = await ens.door.search(
            visitor.caller, "Immunization", [("patient", visitor.patient_id)]
        )
        today = datetime.now(UTC).date()
        late = [
            d
            for d in due(date.fromisoformat(birth[:10]), immunizations, today)
            if d.status in ("overdue", "due")
        ]
        if late:
            text = _plural(len(late), "{n} vaccination à faire", "{n} vaccinations à faire")
            out.append({"href": "/ens/carnet/vaccins", "text": text})
    waiting = await questionnaires.pending(ens, visitor)
    if waiting:
        text = _plural(waiting, "{n} questionnaire à remplir", "{n} questionnaires à remplir")
        out.append({"href": "/ens/questionnaires", "text": text})
    return out


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
            highlights=await _highlights(ens, visitor, patient),
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
