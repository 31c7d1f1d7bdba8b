"""BSP "Accès au dossier": how a professional comes to read a patient's record, in plain words.

* ``GET /bsp/patients/{patient}/acces`` — whether the professional may read the record now
  (a care relation, or an open emergency access and until when), and the two ways the rules
  offer when they may not;
* ``POST …/acces/relation`` — entering the care relationship: the professional attests the
  patient's agreement (``Patient/$declare-care``, ``fhir/operations/identity.py``); the patient
  sees it in their access history;
* ``POST …/acces/urgence`` — the break-glass screen: reason, justification, duration (four hours
  at most), after a clear statement of what it implies (``Patient/$break-glass``): the patient is
  told, the structure reviews it, every access under it is marked in the trail.

The operations decide; the page only explains and keeps what was typed when they refuse.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.domain.break_glass import MAX_HOURS, REASONS
from hygie.web.bsp.core import Bsp
from hygie.web.bsp.patients import require_id
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Professional

__all__ = ["routes"]

ATTESTATIONS = {
    "patient-present": "Le patient est présent (carte Vitale lue ou en face de moi) et accepte",
    "patient-consent": "Le patient a donné son accord à distance",
}
_GLASS_FIELDS = {"reason": "motif", "justification": "justification", "hours": "duree"}


def _parameters(**values: str) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": name, "valueString": value} for name, value in values.items() if value],
    }


def _field_errors(error: PortalError, fields: dict[str, str], fallback: str) -> dict[str, str]:
    """The operation's refusal, each message beside the field its expression names."""
    out: dict[str, str] = {}
    for expression, message in error.issues:
        name = next((f for key, f in fields.items() if expression and key in expression), fallback)
        out.setdefault(name, message)
    return out or {fallback: error.message}


def routes(bsp: Bsp) -> list[BaseRoute]:
    async def page(
        request: Request,
        visitor: Professional,
        *,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        patient_id = require_id(request.path_params["patient"])
        readable = await bsp.door.read(visitor.caller, "Patient", patient_id) is not None
        emergency = patient_id in visitor.emergency
        return await bsp.page(
            request,
            visitor,
            "bsp/acces.html",
            status=status,
            title="Accès au dossier",
            readable=readable,
            in_emergency=emergency,
            attestations=ATTESTATIONS,
            reasons=REASONS,
            max_hours=MAX_HOURS,
            values=values or {"duree": str(MAX_HOURS)},
            errors=errors or {},
        )

    async def show(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        return await page(request, visitor)

    async def declare(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        assert form is not None
        patient_id = require_id(request.path_params["patient"])
        attestation = form.get("attestation")
        reason = " ".join(form.get("raison").split())
        if attestation not in ATTESTATIONS:
            await bsp.failed(visitor, form)
            return await page(
                request,
                visitor,
                values={"raison": reason},
                errors={"attestation": "Indiquez comment le patient a donné son accord."},
                status=400,
            )
        try:
            await bsp.door.operation(
                visitor.caller,
                "POST",
                f"Patient/{patient_id}/$declare-care",
                resource=_parameters(attestation=attestation, reason=reason),
            )
        except PortalError as error:
            if error.status not in (400, 403, 422):
                raise
            await bsp.failed(visitor, form)
            errors = _field_errors(error, {"attestation": "attestation", "reason": "raison"}, "attestation")
            return await page(
                request,
                visitor,
                values={"attestation": attestation, "raison": reason},
                errors=errors,
                status=422,
            )
        return await bsp.done(
            visitor,
            form,
            f"/bsp/patients/{patient_id}",
            "Relation de soins enregistrée : le patient la voit dans l’historique des accès à son dossier.",
        )

    async def break_glass(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        assert form is not None
        patient_id = require_id(request.path_params["patient"])
        values = {name: form.get(name) for name in ("motif", "justification", "duree")}
        if form.get("compris") != "oui":
            await bsp.failed(visitor, form)
            return await page(
                request,
                visitor,
                values=values,
                errors={"compris": "Confirmez avoir lu ce qu’implique un accès en urgence."},
                status=400,
            )
        try:
            await bsp.door.operation(
                visitor.caller,
                "POST",
                f"Patient/{patient_id}/$break-glass",
                resource=_parameters(
                    reason=values["motif"], justification=values["justification"], hours=values["duree"]
                ),
            )
        except PortalError as error:
            if error.status not in (400, 403, 422):
                raise
            await bsp.failed(visitor, form)
            return await page(
                request,
                visitor,
                values=values,
                errors=_field_errors(error, _GLASS_FIELDS, "motif"),
                status=422,
            )
        return await bsp.done(
            visitor,
            form,
            f"/bsp/patients/{patient_id}",
            "Accès en urgence ouvert. Le patient en est informé et votre structure le contrôlera.",
        )

    base = "/bsp/patients/{patient}/acces"
    return [
        bsp.route(base, show),
        bsp.route(f"{base}/relation", declare, methods=("POST",)),
        bsp.route(f"{base}/urgence", break_glass, methods=("POST",)),
    ]
