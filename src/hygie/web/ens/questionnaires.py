"""Questionnaires: the person's opinion on their care (``domain/ens/questionnaires.py``).

* ``/ens/questionnaires`` — the questionnaires proposed after a recent stay, and those answered;
* ``/ens/questionnaires/{questionnaire}/{encounter}`` — the form (radio groups, numbers, free
  text; required items marked), checked against the Questionnaire: errors per question in
  French, what was answered kept; saved as the person's ``QuestionnaireResponse``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.domain.ens import questionnaires as qs
from hygie.domain.ens.messaging import french_datetime
from hygie.web.ens.core import Ens
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Visitor

__all__ = ["routes"]


async def _questionnaires(ens: Ens, visitor: Visitor) -> dict[str, dict[str, Any]]:
    """The shipped questionnaires as the server holds them (absent ones are not proposed)."""
    out: dict[str, dict[str, Any]] = {}
    for reference in qs.reference_questionnaires():
        found = await ens.door.read(visitor.caller, "Questionnaire", str(reference["id"]))
        if found is not None and found.get("status") == "active":
            out[str(found["id"])] = found
    return out


async def _responses(ens: Ens, visitor: Visitor) -> list[dict[str, Any]]:
    return await ens.door.search(
        visitor.caller,
        "QuestionnaireResponse",
        [("subject", visitor.patient_ref), ("_sort", "-authored"), ("_count", "100")],
        limit=200,
    )


async def _proposals(
    ens: Ens, visitor: Visitor, questionnaires: dict[str, dict[str, Any]]
) -> list[qs.Proposal]:
    encounters = await ens.door.search(
        visitor.caller,
        "Encounter",
        [("patient", visitor.patient_ref), ("class", ",".join(qs.FOR_CLASS)), ("_count", "100")],
        limit=200,
    )
    weeks = ens.services["runtime"].settings.questionnaire_weeks
    return qs.proposals(
        encounters, await _responses(ens, visitor), questionnaires, now=datetime.now(UTC), weeks=weeks
    )


async def pending(ens: Ens, visitor: Visitor) -> int:
    """How many questionnaires wait for an answer (for the home page)."""
    return len(await _proposals(ens, visitor, await _questionnaires(ens, visitor)))


def routes(ens: Ens) -> list[BaseRoute]:
    async def listing(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        questionnaires = await _questionnaires(ens, visitor)
        proposed = await _proposals(ens, visitor, questionnaires)
        titles = {str(q.get("url")): str(q.get("title")) for q in questionnaires.values()}
        answered = [
            {
                "title": titles.get(str(r.get("questionnaire", "")).split("|")[0], "Questionnaire"),
                "authored": french_datetime(r.get("authored")).split(" à ")[0],
            }
            for r in await _responses(ens, visitor)
            if r.get("status") == "completed"
        ]
        return await ens.page(
            request,
            visitor,
            "ens/questionnaires/liste.html",
            title="Questionnaires",
            proposed=proposed,
            answered=answered,
        )

    async def form_page(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        qid, encounter_id = request.path_params["questionnaire"], request.path_params["sejour"]
        questionnaires = await _questionnaires(ens, visitor)
        proposal = next(
            (
                p
                for p in await _proposals(ens, visitor, questionnaires)
                if p.questionnaire_id == qid and p.encounter_id == encounter_id
            ),
            None,
        )
        if proposal is None:
            raise PortalError(404, "Ce questionnaire ne vous est pas proposé, ou vous y avez déjà répondu.")
        questionnaire = questionnaires[qid]
        values: dict[str, str] = {}
        errors: dict[str, str] = {}
        if form is not None:
            values = {k: v.strip() for k, v in form.values.items() if k not in ("csrf", "jeton")}
            answers, errors = qs.validate(questionnaire, values)
            if not errors:
                response = qs.response_resource(
                    questionnaire,
                    answers,
                    patient_ref=visitor.patient_ref,
                    author_ref=visitor.actor_ref,
                    encounter_ref=f"Encounter/{encounter_id}",
                    now_us=ens.clock(),
                )
                await ens.door.create(visitor.caller, response)
                return await ens.done(
                    visitor, form, "/ens/questionnaires", "Merci ! Vos réponses ont été enregistrées."
                )
            await ens.failed(visitor, form)
        return await ens.page(
            request,
            visitor,
            "ens/questionnaires/formulaire.html",
            status=422 if errors else 200,
            title=str(questionnaire.get("title") or "Questionnaire"),
            questionnaire=questionnaire,
            sections=qs.questions(questionnaire),
            proposal=proposal,
            values=values,
            errors=errors,
        )

    return [
        ens.route("/ens/questionnaires", listing),
        ens.route("/ens/questionnaires/{questionnaire}/{sejour}", form_page, methods=("GET", "POST")),
    ]
