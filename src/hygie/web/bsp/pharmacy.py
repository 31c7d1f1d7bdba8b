"""BSP "Officine": a pharmacist opens an e-prescription by its code and dispenses it.

A pharmacist has no care relationship with the patient: what opens *this prescription and
nothing else* is proof of holding it — the QR code's payload, or the number printed in clear
with the patient's birth date (``MedicationRequest/$lookup`` and ``$dispense``,
``fhir/operations/eprescription.py``, decide and trace it in the patient's trail).

* ``GET /bsp/officine`` — the two ways in: a field where the QR code is scanned (a scanner
  types it like a keyboard and ends with Enter) or pasted, or the number and the birth date.
  A professional who is not a pharmacist reads why the page is not for them.
* ``POST /bsp/officine`` — ``$lookup``; a refusal (malformed code, wrong key, unknown
  prescription, too many attempts) comes back beside its field in plain French. Opened, the way
  in is kept server-side for this browser session (:data:`_KEEP_US`) and the prescription's page
  is named by a random reference: **the QR code's payload never travels in a URL** (nor in a
  log line: it is only ever POSTed, once).
* ``GET /bsp/officine/{ref}`` — the prescription read again (every page shows the current state,
  a colleague may have dispensed meanwhile): the patient's name and birth date, the prescriber,
  the validity, and per line what was handed over, what the delivery under way still lacks and
  the renewals left, with a dispensing form.
* ``POST /bsp/officine/{ref}/delivrer`` — one line: packs handed over (a part of a delivery,
  or the rest of it), a generic handed over instead, or "not delivered" with the reason →
  ``$dispense``. A refusal (beyond the renewals, *non substituable*, expired…) is shown beside
  the line, with the prescription as it stands; nothing is written.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.domain.eprescription import records
from hygie.domain.eprescription.medicines import Catalogue, Medicine
from hygie.fhir.operations.eprescription import PHARMACIST
from hygie.web.bsp.core import Bsp
from hygie.web.bsp.patients import require_id
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Professional

__all__ = ["dispense_parameters", "opening_parameters", "reading_of", "routes", "substitutes"]

_KIND: Final = "bsp-officine"
_KEEP_US: Final = 15 * 60 * 1_000_000
_REASON_MAX: Final = 500
# the operations' parameters → the page's fields
_OPENING_FIELDS: Final = {"code": "code", "number": "numero", "birthDate": "naissance"}
_LINE_FIELDS: Final = {
    "quantity": "quantite",
    "substitute": "generique",
    "substitution-reason": "generique",
    "not-delivered": "motif",
    "prescription": "quantite",
}
_PATH: Final = re.compile(r"Parameters\.parameter\[([\w-]+)\](?:\[\d+\](?:\.part\[([\w-]+)\])?)?")
_STATE_BADGES: Final = {
    "à délivrer": "info",
    "délivrée en partie": "new",
    "entièrement délivrée": "success",
    "expirée": "warning",
}
_STATUS_WORDS: Final = {
    "active": "À délivrer",
    "dispensed": "Entièrement délivrée",
    "expired": "Expirée",
}


def opening_parameters(opening: dict[str, str]) -> list[dict[str, Any]]:
    """How the prescription is opened: its QR code's payload, or its number and the birth date."""
    if opening.get("code"):
        return [{"name": "code", "valueString": opening["code"]}]
    out = [{"name": "number", "valueString": opening.get("number", "")}]
    if opening.get("birthDate"):
        out.append({"name": "birthDate", "valueDate": opening["birthDate"]})
    return out


def dispense_parameters(opening: dict[str, str], line_id: str, values: dict[str, str]) -> dict[str, Any]:
    """``$dispense`` of one line: the packs handed over (and the generic), or not delivered."""
    parts: list[dict[str, Any]] = [
        {"name": "prescription", "valueReference": {"reference": f"MedicationRequest/{line_id}"}}
    ]
    if values.get("action") == "non-delivre":
        parts.append({"name": "not-delivered", "valueString": values.get("motif", "")})
    else:
        quantity = values.get("quantite", "")
        if re.fullmatch(r"\d{1,6}", quantity):
            parts.append({"name": "quantity", "valueInteger": int(quantity)})
        else:
            parts.append({"name": "quantity", "valueString": quantity})
        if values.get("generique"):
            parts.append({"name": "substitute", "valueString": values["generique"]})
            if values.get("motif-substitution"):
                parts.append({"name": "substitution-reason", "valueString": values["motif-substitution"]})
    return {
        "resourceType": "Parameters",
        "parameter": [*opening_parameters(opening), {"name": "line", "part": parts}],
    }


def _value(parameter: dict[str, Any]) -> Any:
    return next((v for k, v in parameter.items() if k.startswith("value") or k == "resource"), None)


def _parts(parameter: dict[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for part in parameter.get("part") or []:
        if isinstance(part, dict):
            out.setdefault(str(part.get("name")), []).append(_value(part))
    return out


def _one(parts: dict[str, list[Any]], name: str, default: Any = None) -> Any:
    found = parts.get(name) or [default]
    return found[0]


def substitutes(catalogue: Catalogue, line: dict[str, Any]) -> list[Medicine]:
    """The generics a pharmacy may hand over instead (same substance, strength and unit of dose),
    none on a *non substituable* line (``$dispense`` checks it again)."""
    if (line.get("substitution") or {}).get("allowedBoolean") is False:
        return []
    cip13 = records.cip13_of(line.get("medicationCodeableConcept"))
    prescribed = catalogue.by_cip13(cip13) if cip13 else None
    if prescribed is None:
        return []
    return sorted(
        (
            m
            for m in catalogue.medicines
            if m.cip13 != prescribed.cip13
            and (m.atc, m.strength, m.unit) == (prescribed.atc, prescribed.strength, prescribed.unit)
        ),
        key=lambda m: m.name,
    )


def _packs(count: int, unit: str) -> str:
    return f"{count} {unit}{'s' if count > 1 else ''}"


def reading_of(answer: dict[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    """What the page shows of a ``$lookup`` (or ``$dispense``) answer."""
    reading: dict[str, Any] = {"lines": []}
    for parameter in answer.get("parameter") or []:
        name = parameter.get("name")
        if name == "line":
            parts = _parts(parameter)
            line = _one(parts, "medicationRequest", {}) or {}
            quantity = _one(parts, "quantity", {}) or {}
            unit = str(quantity.get("unit") or "boîte")
            per = int(quantity.get("value") or 1)
            allowed = int(_one(parts, "deliveries-allowed", 1))
            handed = int(_one(parts, "handed-over", 0))
            lacking = int(_one(parts, "packs-lacking", 0))
            state = str(_one(parts, "state", ""))
            medication = _one(parts, "medication", {}) or {}
            reading["lines"].append(
                {
                    "id": str((_one(parts, "prescription", {}) or {}).get("reference", "")).removeprefix(
                        "MedicationRequest/"
                    ),
                    "medicine": str(medication.get("text") or "Médicament"),
                    "dosage": str(_one(parts, "dosage", "")),
                    "per_delivery": _packs(per, unit),
                    "unit": unit,
                    "substitution_allowed": bool(_one(parts, "substitution-allowed", True)),
                    "state": state,
                    "badge": _STATE_BADGES.get(state, "error"),
                    "deliveries_allowed": allowed,
                    "deliveries_done": int(_one(parts, "deliveries-done", 0)),
                    "handed": _packs(handed, unit) if handed else "rien",
                    "lacking": lacking,
                    "in_progress": 0 < lacking < per,
                    "renewals_remaining": int(_one(parts, "renewals-remaining", 0)),
                    "open": state in ("à délivrer", "délivrée en partie") and lacking > 0,
                    "generics": substitutes(catalogue, line),
                }
            )
        elif name in ("prescriber", "patient"):
            reading[str(name)] = {k: v[0] for k, v in _parts(parameter).items() if v}
        elif name != "dispense":
            reading[str(name)] = _value(parameter)
    reading["status_words"] = _STATUS_WORDS.get(str(reading.get("status")), str(reading.get("status") or ""))
    return reading


def _field_errors(
    issues: tuple[tuple[str | None, str], ...], fields: dict[str, str], fallback: str
) -> tuple[dict[str, str], list[str]]:
    """Each message beside the field its expression names; the others for the top of the page."""
    out: dict[str, str] = {}
    general: list[str] = []
    for expression, message in issues:
        found = _PATH.search(expression or "")
        name = None
        if found:
            name = fields.get(found.group(2) or "") or fields.get(found.group(1))
        if name is None:
            if expression and not found:  # a rule on the prescription itself (expired)
                general.append(message)
                continue
            name = fallback
        out[name] = f"{out[name]} {message}" if name in out else message
    return out, general


def routes(bsp: Bsp) -> list[BaseRoute]:
    runtime = bsp.services["runtime"]
    kv = bsp.auth.kv

    def catalogue() -> Catalogue:
        services = runtime.service.prescriptions
        if services is None:
            raise PortalError(404, "Ce service ne propose pas l’ordonnance numérique.")
        found: Catalogue = services.catalogue
        return found

    def key(visitor: Professional, ref: str) -> str:
        return f"{visitor.session.session_id}:{ref}"

    async def start_page(
        request: Request,
        visitor: Professional,
        *,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        return await bsp.page(
            request,
            visitor,
            "bsp/officine/index.html",
            status=status,
            title="Officine",
            pharmacist=visitor.profession == PHARMACIST,
            values=values or {},
            errors=errors or {},
        )

    async def start(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        if form is None:
            return await start_page(request, visitor)
        return await open_prescription(request, visitor, form)

    async def open_prescription(request: Request, visitor: Professional, form: Submitted) -> Response:
        if visitor.profession != PHARMACIST:
            return await start_page(request, visitor, status=403)
        code = "".join(form.get("code").split())
        number = " ".join(form.get("numero").split())
        birth = form.get("naissance")
        kept = {"numero": number, "naissance": birth}  # the QR code's payload is not shown again
        opening = {"code": code} if code else {"number": number, "birthDate": birth}
        errors: dict[str, str] = {}
        if not code and not number:
            errors["code"] = "Scannez ou collez le QR code de l’ordonnance, ou saisissez son numéro."
        elif not code and not birth:
            errors["naissance"] = "Avec le numéro seul, indiquez aussi la date de naissance du patient."
        if not errors:
            try:
                await bsp.door.operation(
                    visitor.caller,
                    "POST",
                    "MedicationRequest/$lookup",
                    resource={"resourceType": "Parameters", "parameter": opening_parameters(opening)},
                )
            except PortalError as error:
                if error.status not in (400, 404, 422, 429):
                    raise
                fallback = "code" if code else "numero"
                errors, general = _field_errors(
                    error.issues or ((None, error.message),), _OPENING_FIELDS, fallback
                )
                if general:
                    errors[fallback] = " ".join(general)
                await bsp.failed(visitor, form)
                return await start_page(request, visitor, values=kept, errors=errors, status=error.status)
        if errors:
            await bsp.failed(visitor, form)
            return await start_page(request, visitor, values=kept, errors=errors, status=400)
        ref = secrets.token_urlsafe(12)
        await kv.put(_KIND, key(visitor, ref), {"opening": opening}, expires_us=bsp.clock() + _KEEP_US)
        return await bsp.done(visitor, form, f"/bsp/officine/{ref}")

    async def opened(visitor: Professional, ref: str) -> dict[str, str]:
        if visitor.profession != PHARMACIST:
            raise PortalError(403, "Seul un pharmacien peut ouvrir une ordonnance par son code.")
        found = await kv.get(_KIND, key(visitor, ref))
        if found is None:
            raise PortalError(
                404, "Cette ordonnance n’est plus ouverte sur ce poste : scannez à nouveau son QR code."
            )
        opening: dict[str, str] = found["opening"]
        return opening

    async def reading_page(
        request: Request,
        visitor: Professional,
        opening: dict[str, str],
        *,
        values: dict[str, dict[str, str]] | None = None,
        errors: dict[str, dict[str, str]] | None = None,
        general: list[str] | None = None,
        status: int = 200,
    ) -> Response:
        answer = await bsp.door.operation(
            visitor.caller,
            "POST",
            "MedicationRequest/$lookup",
            resource={"resourceType": "Parameters", "parameter": opening_parameters(opening)},
        )
        reading = reading_of(answer, catalogue())
        return await bsp.page(
            request,
            visitor,
            "bsp/officine/ordonnance.html",
            status=status,
            title=f"Ordonnance n° {reading.get('number', '')}",
            reading=reading,
            ref=request.path_params["ref"],
            values=values or {},
            errors=errors or {},
            general=general or [],
        )

    async def show(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        opening = await opened(visitor, request.path_params["ref"])
        return await reading_page(request, visitor, opening)

    async def dispense(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        assert form is not None
        ref = request.path_params["ref"]
        opening = await opened(visitor, ref)
        line_id = require_id(form.get("ligne"))
        values = {
            "action": "non-delivre" if form.get("action") == "non-delivre" else "delivrer",
            "quantite": form.get("quantite"),
            "generique": form.get("generique"),
            "motif-substitution": " ".join(form.get("motif-substitution").split()),
            "motif": " ".join(form.get("motif").split()),
        }
        problem: dict[str, str] = {}
        if values["action"] == "non-delivre" and not values["motif"]:
            problem["motif"] = "Indiquez pourquoi la ligne n’est pas délivrée."
        elif values["action"] == "delivrer" and not values["quantite"]:
            problem["quantite"] = "Indiquez le nombre de boîtes remises."
        for name in ("motif", "motif-substitution"):
            if len(values[name]) > _REASON_MAX:
                problem[name] = f"{_REASON_MAX} caractères au plus (il y en a {len(values[name])})."
        if problem:
            await bsp.failed(visitor, form)
            return await reading_page(
                request, visitor, opening, values={line_id: values}, errors={line_id: problem}, status=400
            )
        try:
            answer = await bsp.door.operation(
                visitor.caller,
                "POST",
                "MedicationRequest/$dispense",
                resource=dispense_parameters(opening, line_id, values),
            )
        except PortalError as error:
            if error.status not in (400, 404, 409, 422, 429):
                raise
            await bsp.failed(visitor, form)
            fallback = "motif" if values["action"] == "non-delivre" else "quantite"
            fields, general = _field_errors(error.issues or ((None, error.message),), _LINE_FIELDS, fallback)
            return await reading_page(
                request,
                visitor,
                opening,
                values={line_id: values},
                errors={line_id: fields},
                general=general,
                status=error.status,
            )
        after = reading_of(answer, catalogue())
        line = next((item for item in after["lines"] if item["id"] == line_id), None)
        medicine = line["medicine"] if line else "la ligne"
        if values["action"] == "non-delivre":
            message = f"Enregistré : {medicine} non délivré ({values['motif']})."
        else:
            handed = _packs(int(values["quantite"]), line["unit"]) if line else values["quantite"]
            state = f" ; la ligne est {line['state']}" if line else ""
            message = f"Délivrance enregistrée : {medicine}, {handed}{state}."
        return await bsp.done(visitor, form, f"/bsp/officine/{ref}", message)

    return [
        bsp.route("/bsp/officine", start, methods=("GET", "POST")),
        bsp.route("/bsp/officine/{ref}", show),
        bsp.route("/bsp/officine/{ref}/delivrer", dispense, methods=("POST",)),
    ]
