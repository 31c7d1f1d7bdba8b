"""BSP "Ordonnances": a prescriber writes an e-prescription, renews one, and reads their inbox.

Pages (every read and write through ``bsp.door`` as the professional; the rules are the
operation's, ``MedicationRequest/$prescribe`` in ``fhir/operations/eprescription.py``, which
answers each refusal with the path of the faulty field):

* ``GET|POST /bsp/patients/{patient}/prescrire`` — the prescription form: up to
  :data:`FORM_LINES` lines without JavaScript (a medicine of the list — an ``<input list>`` whose
  datalist the browser offers natively —, dose per take, takes per day, duration, renewals,
  *non substituable*, instructions) and the validity. A refusal (422) comes back beside each
  faulty field of the right line, everything typed kept, nothing stored. With
  ``?renouvellement=<Task>`` the form is prefilled from the lines a renewal request names and
  answers it (``renews``): the Task is completed in the same transaction.
* ``GET /bsp/patients/{patient}/prescrire/{ref}`` — the written prescription: its number in
  clear, its QR code, the lines in French, the PDF to download. The QR code's payload is the
  prescription's key at the pharmacy: it never travels in a URL; the answer of ``$prescribe`` is
  kept server-side for this browser session (:data:`_KEEP_US`) and the page is named by a
  random reference.
* ``GET /bsp/ordonnances`` — the prescriber's inbox: the renewal requests they own (status
  ``requested``), oldest first, with "Renouveler" and "Refuser" (``POST
  /bsp/ordonnances/{task}/refuser``: the Task becomes ``rejected`` with the reason, which the
  patient reads in their space); then the prescriptions they wrote, newest first, with their
  dispensing state (grouped by :func:`hygie.domain.ens.prescriptions.group`, as the patient
  sees them).

The home page shows "N demandes de renouvellement" (:func:`hygie.web.bsp.home.highlight`).
"""

from __future__ import annotations

import math
import re
import secrets
from datetime import UTC, datetime
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.domain.ens import prescriptions as ens_rules
from hygie.domain.ens.vitals import PARIS
from hygie.domain.eprescription import records
from hygie.domain.eprescription.medicines import Catalogue
from hygie.domain.eprescription.rules import PRESCRIBERS
from hygie.domain.french import fr_day
from hygie.fhir.operations.trust import qr_svg
from hygie.web.bsp.core import Bsp, patient_context
from hygie.web.bsp.home import Highlight, highlight
from hygie.web.bsp.patients import require_id
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Professional, person_name

__all__ = [
    "FORM_LINES",
    "errors_of",
    "form_values",
    "line_values",
    "prescription_parameters",
    "routes",
]

FORM_LINES: Final = 5  # lines of the form (an operation accepts more: MAX_LINES)
_KIND: Final = "bsp-prescription"
_KEEP_US: Final = 30 * 60 * 1_000_000
_REASON_MAX: Final = 500
_INBOX_MAX: Final = 100
_WRITTEN_LINES: Final = 300  # lines read for "the prescriptions I wrote"
_WRITTEN_SHOWN: Final = 30
_DISPENSE_CHUNK: Final = 40
RENEWAL_CODE_QUERY: Final = f"{ens_rules.RENEWAL_CODE['system']}|{ens_rules.RENEWAL_CODE['code']}"

# a line's fields in the form (``l{i}-{field}``) and the operation's part names
LINE_FIELDS: Final = ("medicament", "dose", "prises", "duree", "renouvellements", "consignes")
_PARTS: Final = {
    "medication": "medicament",
    "dose": "dose",
    "takes-per-day": "prises",
    "duration-days": "duree",
    "renewals": "renouvellements",
    "substitution-allowed": "non-substituable",
    "instructions": "consignes",
}
_FIELD_WORDS: Final = {
    "medicament": "médicament",
    "dose": "dose",
    "prises": "prises par jour",
    "duree": "durée",
    "renouvellements": "renouvellements",
    "non-substituable": "substitution",
    "consignes": "consignes",
}
_TOP_FIELDS: Final = {"start": "debut", "end": "fin"}
_LINE_PATH: Final = re.compile(r"Parameters\.parameter\[line\]\[(\d+)\](?:\.part\[([\w-]+)\])?")
_TOP_PATH: Final = re.compile(r"Parameters\.parameter\[([\w-]+)\]$")
_FRACTION: Final = re.compile(r"^(\d{1,3})\s*/\s*(\d{1,3})$")
_ISO_DAY: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# -- the form and the operation's Parameters (pure) ---------------------------------------------------


def form_values(form: Submitted) -> dict[str, str]:
    """What was typed, per field name (spaces tidied), to send and to show again."""
    values = {
        "debut": form.get("debut"),
        "fin": form.get("fin"),
        "renouvellement": form.get("renouvellement"),
    }
    for i in range(FORM_LINES):
        for name in LINE_FIELDS:
            key = f"l{i}-{name}"
            values[key] = " ".join(form.get(key).split())
        values[f"l{i}-non-substituable"] = "oui" if form.get(f"l{i}-non-substituable") == "oui" else ""
    return values


def _filled(values: dict[str, str], i: int) -> bool:
    """A line of the form counts when something but its defaults was typed in it."""
    return any(values.get(f"l{i}-{name}") for name in ("medicament", "dose", "prises", "duree", "consignes"))


def _decimal(name: str, text: str) -> dict[str, Any]:
    """A dose as typed: "1", "1,5", "1/2"; anything else is sent as typed, for the rules to explain."""
    fraction = _FRACTION.match(text)
    if fraction and int(fraction.group(2)):
        return {"name": name, "valueDecimal": int(fraction.group(1)) / int(fraction.group(2))}
    try:
        number = float(text.replace(",", "."))
    except ValueError:
        return {"name": name, "valueString": text}
    if not math.isfinite(number):
        return {"name": name, "valueString": text}
    return {"name": name, "valueDecimal": number}


def _integer(name: str, text: str) -> dict[str, Any]:
    if re.fullmatch(r"-?\d{1,9}", text):
        return {"name": name, "valueInteger": int(text)}
    return {"name": name, "valueString": text}


def prescription_parameters(patient_id: str, values: dict[str, str]) -> tuple[dict[str, Any], list[int]]:
    """The ``$prescribe`` Parameters of the form, and the form row of each ``line`` sent (the
    operation's paths count the lines sent, the form shows five)."""
    parameters: list[dict[str, Any]] = [{"name": "patient", "valueString": f"Patient/{patient_id}"}]
    for name, field in (("start", "debut"), ("end", "fin")):
        text = values.get(field, "")
        if text:
            kind = "valueDate" if _ISO_DAY.match(text) else "valueString"
            parameters.append({"name": name, kind: text})
    if values.get("renouvellement"):
        parameters.append({"name": "renews", "valueString": f"Task/{values['renouvellement']}"})
    rows: list[int] = []
    for i in range(FORM_LINES):
        if not _filled(values, i):
            continue
        rows.append(i)
        parts: list[dict[str, Any]] = []
        typed = {name: values.get(f"l{i}-{name}", "") for name in (*LINE_FIELDS, "non-substituable")}
        if typed["medicament"]:
            parts.append({"name": "medication", "valueString": typed["medicament"]})
        if typed["dose"]:
            parts.append(_decimal("dose", typed["dose"]))
        if typed["prises"]:
            parts.append(_integer("takes-per-day", typed["prises"]))
        if typed["duree"]:
            parts.append(_integer("duration-days", typed["duree"]))
        parts.append(_integer("renewals", typed["renouvellements"] or "0"))
        parts.append({"name": "substitution-allowed", "valueBoolean": typed["non-substituable"] != "oui"})
        if typed["consignes"]:
            parts.append({"name": "instructions", "valueString": typed["consignes"]})
        parameters.append({"name": "line", "part": parts})
    return {"resourceType": "Parameters", "parameter": parameters}, rows


def errors_of(
    issues: list[tuple[str | None, str]] | tuple[tuple[str | None, str], ...], rows: list[int], fallback: str
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Each refusal beside its field (``l{row}-{field}``, ``debut``, ``fin``), and the summary shown
    above the form: (anchor, sentence) with the line and the field named."""
    fields: dict[str, str] = {}
    summary: list[tuple[str, str]] = []
    for expression, message in issues:
        found = _LINE_PATH.search(expression or "")
        top = _TOP_PATH.search(expression or "")
        if found and int(found.group(1)) < len(rows):
            row = rows[int(found.group(1))]
            field = _PARTS.get(found.group(2) or "", "medicament")
            key = f"l{row}-{field}"
            said = f"Ligne {row + 1}, {_FIELD_WORDS[field]} : {message}"
        elif top and top.group(1) in _TOP_FIELDS:
            key = _TOP_FIELDS[top.group(1)]
            said = message
        else:
            key, said = fallback, message
        if key in fields:
            fields[key] = f"{fields[key]} {message}"
        else:
            fields[key] = message
        summary.append((key, said))
    return fields, summary


def _dose_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return f"{float(value):g}".replace(".", ",") if not float(value).is_integer() else str(int(value))


def line_values(i: int, line: dict[str, Any], catalogue: Catalogue) -> dict[str, str]:
    """Row ``i`` of the form, prefilled from a stored line (a renewal starts from what was written)."""
    cip13 = records.cip13_of(line.get("medicationCodeableConcept"))
    medicine = catalogue.by_cip13(cip13) if cip13 else None
    name = medicine.name if medicine else ens_rules.medicine_of(line, {})
    dosage = next((d for d in line.get("dosageInstruction") or [] if isinstance(d, dict)), {})
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    dose = next(
        (
            (r.get("doseQuantity") or {}).get("value")
            for r in dosage.get("doseAndRate") or []
            if isinstance(r, dict)
        ),
        None,
    )
    request = line.get("dispenseRequest") or {}
    renewals = request.get("numberOfRepeatsAllowed")
    return {
        f"l{i}-medicament": name,
        f"l{i}-dose": _dose_text(dose),
        f"l{i}-prises": _dose_text(repeat.get("frequency")),
        f"l{i}-duree": _dose_text((repeat.get("boundsDuration") or {}).get("value")),
        f"l{i}-renouvellements": str(renewals) if isinstance(renewals, int) else "0",
        f"l{i}-non-substituable": "oui"
        if (line.get("substitution") or {}).get("allowedBoolean") is False
        else "",
        f"l{i}-consignes": str(dosage.get("patientInstruction") or ""),
    }


def line_summary(line: dict[str, Any]) -> dict[str, str]:
    """A stored line in French, as the prescriber reads it back."""
    request = line.get("dispenseRequest") or {}
    quantity = request.get("quantity") or {}
    packs = quantity.get("value")
    unit = str(quantity.get("unit") or "boîte")
    renewals = request.get("numberOfRepeatsAllowed")
    return {
        "id": str(line.get("id", "")),
        "medicine": ens_rules.medicine_of(line, {}),
        "dosage": ens_rules.dosage_of(line),
        "quantity": f"{packs} {unit}{'s' if isinstance(packs, int) and packs > 1 else ''}" if packs else "—",
        "renewals": f"À renouveler {renewals} fois"
        if isinstance(renewals, int) and renewals
        else "Non renouvelable",
        "substitution": "Non substituable"
        if (line.get("substitution") or {}).get("allowedBoolean") is False
        else "Substitution autorisée",
    }


def _named(answer: dict[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for parameter in answer.get("parameter") or []:
        value = next((v for k, v in parameter.items() if k.startswith("value")), None)
        out.setdefault(str(parameter.get("name")), []).append(value)
    return out


def _ref_id(value: Any, kind: str) -> str | None:
    reference = str((value or {}).get("reference", "")) if isinstance(value, dict) else str(value or "")
    return reference.split("/", 1)[1] if reference.startswith(f"{kind}/") else None


# -- pages ---------------------------------------------------------------------------------------


def routes(bsp: Bsp) -> list[BaseRoute]:
    runtime = bsp.services["runtime"]
    kv = bsp.auth.kv

    def catalogue() -> Catalogue:
        services = runtime.service.prescriptions
        if services is None:
            raise PortalError(404, "Ce service ne propose pas l’ordonnance numérique.")
        found: Catalogue = services.catalogue
        return found

    def prescribers() -> frozenset[str]:
        services = runtime.service.prescriptions
        return services.config.prescribers if services is not None else PRESCRIBERS

    def now() -> datetime:
        return datetime.fromtimestamp(bsp.clock() / 1_000_000, UTC).astimezone(PARIS)

    async def open_renewals(visitor: Professional) -> list[dict[str, Any]]:
        """The renewal requests waiting for this prescriber (Tasks they own, ``requested``)."""
        return await bsp.door.search(
            visitor.caller,
            "Task",
            [
                ("owner", visitor.practitioner_ref),
                ("status", "requested"),
                ("code", RENEWAL_CODE_QUERY),
                ("_count", str(_INBOX_MAX)),
            ],
            limit=_INBOX_MAX,
        )

    async def waiting(visitor: Professional) -> list[Highlight]:
        count = len(await open_renewals(visitor))
        if not count:
            return []
        plural = "s" if count > 1 else ""
        return [Highlight(f"{count} demande{plural} de renouvellement", "/bsp/ordonnances")]

    highlight(bsp, waiting)

    async def renewal_of(
        visitor: Professional, patient_id: str, task_id: str
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A renewal request this prescriber may answer now, and the lines it names."""
        task = await bsp.door.read(visitor.caller, "Task", require_id(task_id))
        if task is None or not ens_rules.is_renewal(task):
            raise PortalError(404, "Cette demande de renouvellement n’existe pas ou n’est plus disponible.")
        if (task.get("for") or {}).get("reference") != f"Patient/{patient_id}":
            raise PortalError(404, "Cette demande de renouvellement concerne un autre patient.")
        if (task.get("owner") or {}).get("reference") != visitor.practitioner_ref:
            raise PortalError(403, "Cette demande de renouvellement est adressée à un autre prescripteur.")
        if task.get("status") not in ens_rules.OPEN_TASK_STATUSES:
            raise PortalError(
                409,
                "Cette demande de renouvellement a déjà été traitée "
                f"({ens_rules.TASK_WORDS.get(str(task.get('status')), task.get('status'))}).",
            )
        lines = []
        for line_id in records.renewed_lines(task):
            line = await bsp.door.read(visitor.caller, "MedicationRequest", require_id(line_id))
            if line is not None and line.get("status") not in ("cancelled", "stopped", "entered-in-error"):
                lines.append(line)
        return task, lines

    def renewal_view(task: dict[str, Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
        note = next(
            (str(n["text"]) for n in task.get("note") or [] if isinstance(n, dict) and n.get("text")), ""
        )
        return {
            "id": str(task.get("id")),
            "asked": fr_day(str(task.get("authoredOn") or "")[:10]),
            "note": note,
            "number": str((task.get("groupIdentifier") or {}).get("value") or ""),
            "lines": [line_summary(line) for line in lines],
        }

    async def form_page(
        request: Request,
        visitor: Professional,
        *,
        values: dict[str, str],
        errors: dict[str, str] | None = None,
        summary: list[tuple[str, str]] | None = None,
        renewal: dict[str, Any] | None = None,
        status: int = 200,
    ) -> Response:
        medicines = sorted(catalogue().medicines, key=lambda m: (m.inn, m.name))
        return await bsp.page(
            request,
            visitor,
            "bsp/ordonnances/prescrire.html",
            status=status,
            title="Renouveler une ordonnance" if renewal else "Prescrire",
            values=values,
            errors=errors or {},
            summary=summary or [],
            renewal=renewal,
            rows=range(FORM_LINES),
            medicines=medicines,
            may_prescribe=visitor.profession in prescribers(),
            today=now().date().isoformat(),
        )

    async def open_patient(visitor: Professional, patient_id: str) -> None:
        """The record as the professional may read it (the banner shows what it says)."""
        patient = await bsp.door.read(visitor.caller, "Patient", patient_id)
        if patient is None:
            raise PortalError(404, "Ce patient n’existe pas ou vous n’avez pas accès à son dossier.")
        await bsp.auth.work_on(visitor, patient_context(patient))

    async def prescribe(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        patient_id = require_id(request.path_params["patient"])
        await open_patient(visitor, patient_id)
        if form is None:
            values: dict[str, str] = {f"l{i}-renouvellements": "0" for i in range(FORM_LINES)}
            renewal = None
            task_id = request.query_params.get("renouvellement", "")
            if task_id:
                task, lines = await renewal_of(visitor, patient_id, task_id)
                renewal = renewal_view(task, lines)
                values["renouvellement"] = renewal["id"]
                for i, line in enumerate(lines[:FORM_LINES]):
                    values.update(line_values(i, line, catalogue()))
            return await form_page(request, visitor, values=values, renewal=renewal)
        if visitor.profession not in prescribers():
            raise PortalError(
                403, "Votre profession ne vous permet pas d’établir une ordonnance de médicaments ici."
            )
        values = form_values(form)
        renewal = None
        if values["renouvellement"]:
            task, lines = await renewal_of(visitor, patient_id, values["renouvellement"])
            renewal = renewal_view(task, lines)
        parameters, rows = prescription_parameters(patient_id, values)
        try:
            answer = await bsp.door.operation(
                visitor.caller, "POST", "MedicationRequest/$prescribe", resource=parameters
            )
        except PortalError as error:
            if error.status not in (400, 422):
                raise
            await bsp.failed(visitor, form)
            issues = error.issues or ((None, error.message),)
            fields, summary = errors_of(issues, rows, "l0-medicament")
            return await form_page(
                request,
                visitor,
                values=values,
                errors=fields,
                summary=summary,
                renewal=renewal,
                status=422,
            )
        out = _named(answer)
        document = _ref_id((out.get("documentReference") or [None])[0], "DocumentReference")
        kept = {
            "patient": patient_id,
            "number": str((out.get("number") or [""])[0]),
            "code": str((out.get("code") or [""])[0]),
            "start": str((out.get("validity-start") or [""])[0]),
            "end": str((out.get("validity-end") or [""])[0]),
            "lines": [
                rid for v in out.get("medicationRequest") or [] if (rid := _ref_id(v, "MedicationRequest"))
            ],
            "document": document,
            "renewal": bool(values["renouvellement"]),
        }
        ref = secrets.token_urlsafe(12)
        await kv.put(_KIND, f"{visitor.session.session_id}:{ref}", kept, expires_us=bsp.clock() + _KEEP_US)
        message = (
            f"Ordonnance n° {kept['number']} enregistrée : la demande de renouvellement est traitée."
            if kept["renewal"]
            else f"Ordonnance n° {kept['number']} enregistrée."
        )
        return await bsp.done(visitor, form, f"/bsp/patients/{patient_id}/prescrire/{ref}", message)

    async def written(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        patient_id = require_id(request.path_params["patient"])
        kept = await kv.get(_KIND, f"{visitor.session.session_id}:{request.path_params['ref']}")
        if kept is None or kept.get("patient") != patient_id:
            raise PortalError(
                404,
                "Cette page a expiré. L’ordonnance, avec son QR code, est dans les documents du dossier du patient.",
            )
        lines = []
        for line_id in kept.get("lines") or []:
            line = await bsp.door.read(visitor.caller, "MedicationRequest", require_id(str(line_id)))
            if line is not None:
                lines.append(line_summary(line))
        return await bsp.page(
            request,
            visitor,
            "bsp/ordonnances/ordonnance.html",
            title=f"Ordonnance n° {kept['number']}",
            kept=kept,
            lines=lines,
            qr=qr_svg(str(kept["code"])) if kept.get("code") else None,
        )

    async def inbox_page(
        request: Request,
        visitor: Professional,
        *,
        values: dict[str, dict[str, str]] | None = None,
        errors: dict[str, dict[str, str]] | None = None,
        status: int = 200,
    ) -> Response:
        tasks = sorted(await open_renewals(visitor), key=lambda t: str(t.get("authoredOn") or ""))
        requests = await bsp.door.search(
            visitor.caller,
            "MedicationRequest",
            [
                ("requester", visitor.practitioner_ref),
                ("_sort", "-authoredon"),
                ("_count", "100"),
            ],
            limit=_WRITTEN_LINES,
        )
        known = {str(r.get("id")): r for r in requests}
        patients: dict[str, str] = {}

        async def patient_name(patient_id: str) -> str:
            if patient_id not in patients:
                try:
                    found = await bsp.door.read(visitor.caller, "Patient", require_id(patient_id))
                except PortalError:
                    found = None
                patients[patient_id] = person_name(found) if found else "Patient (dossier non accessible)"
            return patients[patient_id]

        asked = []
        for task in tasks:
            patient_id = _ref_id(task.get("for"), "Patient") or ""
            lines = []
            for line_id in records.renewed_lines(task):
                line = known.get(line_id)
                if line is None:
                    try:
                        line = await bsp.door.read(visitor.caller, "MedicationRequest", require_id(line_id))
                    except PortalError:
                        line = None
                if line is not None:
                    lines.append(line)
            view = renewal_view(task, lines)
            view["patient"] = patient_id
            view["patient_name"] = await patient_name(patient_id) if patient_id else "Patient inconnu"
            asked.append(view)
        ids = list(known)
        dispenses: list[dict[str, Any]] = []
        for start in range(0, len(ids), _DISPENSE_CHUNK):
            chunk = ids[start : start + _DISPENSE_CHUNK]
            dispenses += await bsp.door.search(
                visitor.caller,
                "MedicationDispense",
                [("prescription", ",".join(f"MedicationRequest/{i}" for i in chunk)), ("_count", "200")],
                limit=2000,
            )
        grouped = ens_rules.group(requests, dispenses, {}, now().date())[:_WRITTEN_SHOWN]
        mine = []
        for prescription in grouped:
            patient_id = _ref_id((known.get(prescription.key) or {}).get("subject"), "Patient") or ""
            mine.append(
                {
                    "p": prescription,
                    "patient": patient_id,
                    "patient_name": await patient_name(patient_id) if patient_id else "Patient inconnu",
                }
            )
        return await bsp.page(
            request,
            visitor,
            "bsp/ordonnances/index.html",
            status=status,
            title="Ordonnances",
            asked=asked,
            mine=mine,
            badges=_BADGES,
            values=values or {},
            errors=errors or {},
            may_prescribe=visitor.profession in prescribers(),
        )

    async def inbox(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        return await inbox_page(request, visitor)

    async def refuse(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        assert form is not None
        task_id = require_id(request.path_params["task"])
        task = await bsp.door.read(visitor.caller, "Task", task_id)
        if (
            task is None
            or not ens_rules.is_renewal(task)
            or (task.get("owner") or {}).get("reference") != visitor.practitioner_ref
        ):
            raise PortalError(
                404, "Cette demande de renouvellement n’existe pas ou ne vous est pas adressée."
            )
        if task.get("status") != "requested":
            raise PortalError(409, "Cette demande de renouvellement a déjà été traitée.")
        reason = " ".join(form.get("motif").split())
        problem = None
        if not reason:
            problem = "Indiquez le motif du refus : le patient le lira dans son espace santé."
        elif len(reason) > _REASON_MAX:
            problem = f"Le motif fait {_REASON_MAX} caractères au plus (il en fait {len(reason)})."
        if problem:
            await bsp.failed(visitor, form)
            return await inbox_page(
                request,
                visitor,
                values={task_id: {"motif": reason}},
                errors={task_id: {"motif": problem}},
                status=400,
            )
        changed = dict(task)
        changed["status"] = "rejected"
        changed["statusReason"] = {"text": reason}
        changed["lastModified"] = now().isoformat(timespec="seconds")
        version = str((task.get("meta") or {}).get("versionId") or "") or None
        await bsp.door.update(visitor.caller, changed, version=version)
        return await bsp.done(
            visitor,
            form,
            "/bsp/ordonnances",
            "Demande refusée : le patient lit votre motif dans son espace santé.",
        )

    base = "/bsp/patients/{patient}/prescrire"
    return [
        bsp.route(base, prescribe, methods=("GET", "POST")),
        bsp.route(f"{base}/{{ref}}", written),
        bsp.route("/bsp/ordonnances", inbox),
        bsp.route("/bsp/ordonnances/{task}/refuser", refuse, methods=("POST",)),
    ]


_BADGES: Final = {
    "prescribed": "info",
    "partial": "new",
    "dispensed": "success",
    "expired": "warning",
    "cancelled": "error",
    "stopped": "error",
    "completed": "success",
    "on-hold": "warning",
}
