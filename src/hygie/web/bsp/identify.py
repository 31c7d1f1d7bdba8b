"""BSP patient identification: by INS and birth date, or by traits, through the INSi service.

* ``POST /bsp/identification`` — the form of the "Patients" page, sent to ``Patient/$identify``
  (``fhir/operations/identity.py``) as the professional; refusals come back beside their fields
  with what was typed. The answer is kept for this session a quarter of an hour and shown by
* ``GET /bsp/identification/{ref}`` — the INSi outcome in plain French, each local record with
  its identity status and what the professional may do (open the record, or the access page),
  and the possible duplicates. Opening a record from here keeps its identity for the banner.

The INS never travels in a URL (it is a personal number): the form is POSTed and the result
page is named by a random reference.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.web.bsp.core import STATUS_BADGES, Bsp, patient_context
from hygie.web.bsp.patients import require_id
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import PatientContext, Professional

__all__ = ["routes"]

_KIND = "bsp-identification"
_OPEN = frozenset({"care-relation", "break-glass", "trusted"})  # $identify's access codes that open
# the identity documents of the RNIV (fr-core-cs-mode-validation-identity), in plain French
VALIDATION_MODES = {
    "CN": "Carte nationale d’identité",
    "PA": "Passeport",
    "CS": "Titre de séjour",
    "eCN": "Carte nationale d’identité électronique",
    "IN": "Identité numérique La Poste",
    "AV": "Application carte Vitale",
    "LEP": "Livret de famille et pièce d’identité du parent (mineur)",
    "LECV": "Livret de famille et application carte Vitale du parent (mineur)",
    "AN": "Acte de naissance (mineur)",
    "ANCV": "Acte de naissance et application carte Vitale du parent (mineur)",
    "CC": "Carte de séjour ou document de circulation pour mineur",
}
_KEEP_US = 15 * 60 * 1_000_000
# Parameters of $identify → the form's fields
_FIELDS = {
    "ins": "ins",
    "family": "nom",
    "given": "prenom",
    "gender": "sexe",
    "birthPlace": "lieu",
}
_OUTCOMES = {
    "found": "success",
    "verified": "success",
    "not-found": "warning",
    "ambiguous": "warning",
    "mismatch": "error",
    "blocked": "error",
    "unverified": "warning",
}


def _value(part: dict[str, Any]) -> Any:
    return next((v for k, v in part.items() if k.startswith("value") or k == "resource"), None)


def _parts(parameter: dict[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for part in parameter.get("part") or []:
        out.setdefault(str(part.get("name")), []).append(_value(part))
    return out


def summary_of(answer: dict[str, Any]) -> dict[str, Any]:
    """What the result page shows of a ``$identify`` answer."""
    top: dict[str, Any] = {}
    matches: list[dict[str, Any]] = []
    duplicates: list[dict[str, Any]] = []
    for parameter in answer.get("parameter") or []:
        name = parameter.get("name")
        if name == "match":
            parts = _parts(parameter)
            identity = (parts.get("identity") or [{}])[0] or {}
            context = patient_context(identity)
            status = (parts.get("identityStatus") or [None])[0] or {}
            context_json = context.to_json()
            if status.get("code"):
                context_json["status"] = status["code"]
                context_json["status_label"] = status.get("display") or context.status_label
            matches.append(
                {
                    "context": context_json,
                    "access": (parts.get("access") or [""])[0],
                    # the record is open to the caller: "open it", else "the ways to access it"
                    "opens": (parts.get("access") or [""])[0] in _OPEN,
                    "message": (parts.get("accessMessage") or [""])[0],
                    "attributes": [
                        a.get("display") or a.get("code") for a in parts.get("identityAttribute") or []
                    ],
                    "active": (parts.get("active") or [True])[0],
                }
            )
        elif name == "duplicate":
            parts = _parts(parameter)
            reference = str(((parts.get("patient") or [{}])[0] or {}).get("reference", ""))
            duplicates.append(
                {
                    "patient": reference.split("/", 1)[-1],
                    "certain": bool((parts.get("certain") or [False])[0]),
                    "reasons": [str(r) for r in parts.get("reason") or []],
                }
            )
        elif name == "ins":
            top["ins"] = (parameter.get("valueIdentifier") or {}).get("value")
        elif "part" not in parameter:
            top[str(name)] = _value(parameter)
    return {**top, "matches": matches, "duplicates": duplicates}


def routes(bsp: Bsp) -> list[BaseRoute]:
    async def identify(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        assert form is not None
        values = {
            k: " ".join(form.get(k).split())
            for k in ("ins", "naissance_ins", "nom", "prenom", "naissance", "sexe", "lieu")
        }
        by_ins = bool(values["ins"])
        parameters: list[dict[str, Any]] = []

        def add(name: str, value: str, kind: str = "valueString") -> None:
            if value:
                parameters.append({"name": name, kind: value})

        if by_ins:
            add("ins", values["ins"].replace(" ", "").upper())
            add("birthDate", values["naissance_ins"], "valueDate")
        else:
            add("family", values["nom"])
            add("given", values["prenom"])
            add("birthDate", values["naissance"], "valueDate")
            add("gender", values["sexe"], "valueCode")
            add("birthPlace", values["lieu"].upper())
        try:
            answer = await bsp.door.operation(
                visitor.caller,
                "POST",
                "Patient/$identify",
                resource={"resourceType": "Parameters", "parameter": parameters},
            )
        except PortalError as error:
            if error.status not in (400, 422):
                raise
            await bsp.failed(visitor, form)
            errors: dict[str, str] = {}
            for expression, message in error.issues:
                name = next(
                    (f for key, f in _FIELDS.items() if expression and f"[{key}]" in expression), None
                )
                if name is None and expression and "[birthDate]" in expression:
                    name = "naissance_ins" if by_ins else "naissance"
                errors.setdefault(name or ("ins" if by_ins else "nom"), message)
            return await bsp.page(
                request,
                visitor,
                "bsp/patients/index.html",
                status=400,
                title="Patients",
                patients=[],
                quick_query="",
                status_badges=STATUS_BADGES,
                values=values,
                errors=errors,
                identification_only=True,
            )
        ref = secrets.token_urlsafe(12)
        await bsp.auth.kv.put(
            _KIND,
            f"{visitor.session.session_id}:{ref}",
            summary_of(answer),
            expires_us=bsp.clock() + _KEEP_US,
        )
        return await bsp.done(visitor, form, f"/bsp/identification/{ref}")

    async def result(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        found = await bsp.auth.kv.get(_KIND, f"{visitor.session.session_id}:{request.path_params['ref']}")
        if found is None:
            raise PortalError(404, "Ce résultat d’identification a expiré : identifiez le patient à nouveau.")
        return await bsp.page(
            request,
            visitor,
            "bsp/patients/resultat.html",
            title="Résultat de l’identification",
            result=found,
            outcome_levels=_OUTCOMES,
            status_badges=STATUS_BADGES,
            ref=request.path_params["ref"],
        )

    async def open_record(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        """Keep the identity shown for the banner, then go to the record (or its access page)."""
        assert form is not None
        found = await bsp.auth.kv.get(_KIND, f"{visitor.session.session_id}:{request.path_params['ref']}")
        wanted = form.get("patient")
        match = next((m for m in (found or {}).get("matches", []) if m["context"]["patient"] == wanted), None)
        if match is None:
            raise PortalError(404, "Ce résultat d’identification a expiré : identifiez le patient à nouveau.")
        await bsp.auth.work_on(visitor, PatientContext.from_json(match["context"]))
        target = f"/bsp/patients/{wanted}" if match.get("opens") else f"/bsp/patients/{wanted}/acces"
        return await bsp.done(visitor, form, target)

    async def check_page(
        request: Request,
        visitor: Professional,
        *,
        values: dict[str, str],
        errors: dict[str, str],
        status: int = 200,
    ) -> Response:
        return await bsp.page(
            request,
            visitor,
            "bsp/patients/identite.html",
            status=status,
            title="Vérifier l’identité",
            modes=VALIDATION_MODES,
            values=values,
            errors=errors,
        )

    async def check(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        """A document check and/or an INSi re-verification (``Patient/[id]/$identity-check``)."""
        patient_id = require_id(request.path_params["patient"])
        if form is None:
            return await check_page(request, visitor, values={}, errors={})
        values = {"mode": form.get("mode"), "insi": form.get("insi")}
        parameters: list[dict[str, Any]] = []
        if values["mode"]:
            parameters.append({"name": "validationMode", "valueCode": values["mode"]})
        if values["insi"] == "oui":
            parameters.append({"name": "insi", "valueBoolean": True})
        try:
            await bsp.door.operation(
                visitor.caller,
                "POST",
                f"Patient/{patient_id}/$identity-check",
                resource={"resourceType": "Parameters", "parameter": parameters},
            )
        except PortalError as error:
            if error.status not in (400, 409, 412, 422):
                raise
            await bsp.failed(visitor, form)
            message = "; ".join(m for _, m in error.issues) or error.message
            return await check_page(request, visitor, values=values, errors={"mode": message}, status=422)
        patient = await bsp.door.read(visitor.caller, "Patient", patient_id)
        context = patient_context(patient) if patient else None
        if context is not None:
            await bsp.auth.work_on(visitor, context)
        label = context.status_label if context else "mise à jour"
        return await bsp.done(
            visitor, form, f"/bsp/patients/{patient_id}", f"Vérification enregistrée : {label}."
        )

    return [
        bsp.route("/bsp/patients/{patient}/identite", check, methods=("GET", "POST")),
        bsp.route("/bsp/identification", identify, methods=("POST",)),
        bsp.route("/bsp/identification/{ref}", result),
        bsp.route("/bsp/identification/{ref}/ouvrir", open_record, methods=("POST",)),
    ]
