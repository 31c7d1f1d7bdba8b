"""BSP "Patients": my patients, and a patient's record summary.

* ``GET /bsp/patients`` — the patients the professional has a care relation with (the access
  policy decides who they are: a search of ``Patient`` as the professional returns no one else),
  filtered by name or INS (the header's search box sends here), and the identification form
  (``web/bsp/identify.py``);
* ``GET /bsp/patients/{patient}`` — the record's summary: allergies, current problems and
  treatments, latest measures, recent documents, care team. Opening it reads the Patient as the
  professional (so the banner shows what the record says, identity status included); a
  professional who may not read the record is sent to its "Accès au dossier" page, where the
  rules that could open it are offered (care relationship, emergency access).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from hygie.domain.ens import carnet
from hygie.domain.ens import documents as doc_rules
from hygie.domain.ens.vitals import MEASURES, readings, search_codes, shown
from hygie.domain.french import fr_day
from hygie.web.bsp.core import STATUS_BADGES, Bsp, patient_context
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import Submitted
from hygie.web.portal.provenance import app_names
from hygie.web.portal.session import Professional, display_names, person_name

__all__ = ["routes"]

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_INS = re.compile(r"^[0-9]{13}[0-9]{2}$|^[0-9]{5}[0-9AB][0-9]{9}$", re.IGNORECASE)
_MY_PATIENTS = 100  # listed at most; the filter narrows the rest


@dataclass(frozen=True, slots=True)
class Item:
    title: str
    details: str
    day: str


def _items(kind: str, resources: list[dict[str, Any]], *, active_only: bool = False) -> list[Item]:
    summaries = [carnet.summary(kind, r) for r in resources]
    kept = [x for x in summaries if not active_only or x.state == "active"]
    # newest first, on the ISO day, then shown as dd/mm/yyyy
    return [Item(x.title, x.details, fr_day(x.day)) for x in sorted(kept, key=lambda x: x.day, reverse=True)]


def require_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise PortalError(404, "Ce patient n’existe pas ou vous n’y avez pas accès.")
    return value


def routes(bsp: Bsp) -> list[BaseRoute]:
    async def my_patients(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        query = " ".join(request.query_params.get("q", "").split())[:100]
        params: list[tuple[str, str]] = [("_count", "50")]
        if query:
            compact = query.replace(" ", "")
            params.append(("identifier", compact.upper()) if _INS.match(compact) else ("name", query))
        found = await bsp.door.search(visitor.caller, "Patient", params, limit=_MY_PATIENTS)
        patients = sorted(
            (patient_context(p) for p in found if p.get("active") is not False),
            key=lambda c: (c.label.split(" ")[-1], c.label),
        )
        return await bsp.page(
            request,
            visitor,
            "bsp/patients/index.html",
            title="Patients",
            patients=patients,
            quick_query=query,
            status_badges=STATUS_BADGES,
            values={},
            errors={},
        )

    async def summary(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        patient_id = require_id(request.path_params["patient"])
        try:
            patient = await bsp.door.read(visitor.caller, "Patient", patient_id)
        except PortalError as error:
            if error.status != 403:
                raise
            patient = None
        if patient is None:
            # no access (or no such patient): the rules that could open it are on the access page
            if await bsp.auth.working_on(visitor, patient_id) is not None:
                return RedirectResponse(f"/bsp/patients/{patient_id}/acces", status_code=303)
            raise PortalError(404, "Ce patient n’existe pas ou vous n’avez pas accès à son dossier.")
        await bsp.auth.work_on(visitor, patient_context(patient))

        def search(resource_type: str, *params: tuple[str, str], limit: int = 200) -> Any:
            return bsp.door.search(
                visitor.caller, resource_type, [("patient", patient_id), *params], limit=limit
            )

        allergies = _items("allergie", await search("AllergyIntolerance"), active_only=True)
        problems = _items("antecedent", await search("Condition"), active_only=True)
        treatments = _items("traitement", await search("MedicationRequest", ("status", "active")))
        treatments += _items("traitement", await search("MedicationStatement", ("status", "active")))
        # each measure's latest value in one $lastn (the 100 latest Observations of every code
        # mixed could hold none of a measure taken less often, as height is)
        observations = await bsp.door.lastn(
            visitor.caller,
            [("patient", patient_id), ("code", search_codes(MEASURES.values()))],
            per_code=5,
        )
        latest = []
        for measure in MEASURES.values():
            series = readings(measure, observations, {})
            if series:
                last = series[-1]
                latest.append(
                    {
                        "label": measure.label,
                        "value": shown(measure, last.values),
                        "day": last.when.strftime("%d/%m/%Y"),
                    }
                )
        found, included = await bsp.door.search_with_includes(
            visitor.caller,
            "DocumentReference",
            [
                ("patient", patient_id),
                ("status", "current"),
                ("_sort", "-date"),
                ("_count", "5"),
                ("_include", "DocumentReference:author"),
            ],
            limit=5,
        )
        names = {**display_names(included), **await app_names(bsp.services["runtime"].auth.clients, found)}
        recent = [
            doc_rules.summarize(
                d, patient_ref=f"Patient/{patient_id}", actor_ref=visitor.practitioner_ref, names=names
            )
            for d in found
        ]
        care = []
        for ref in patient.get("generalPractitioner") or []:
            reference = str((ref or {}).get("reference", ""))
            kind, _, rid = reference.partition("/")
            if kind in ("Practitioner", "PractitionerRole", "Organization") and _ID.fullmatch(rid):
                who = await bsp.door.read(visitor.caller, kind, rid)
                label = person_name(who) if kind == "Practitioner" else str((ref or {}).get("display") or "")
                care.append(label or str((ref or {}).get("display") or "Médecin traitant"))
        return await bsp.page(
            request,
            visitor,
            "bsp/patients/synthese.html",
            title="Synthèse du dossier",
            allergies=allergies,
            problems=problems,
            treatments=treatments,
            latest=latest,
            recent=recent,
            gp=care,
        )

    return [
        bsp.route("/bsp/patients", my_patients),
        bsp.route("/bsp/patients/{patient}", summary),
    ]
