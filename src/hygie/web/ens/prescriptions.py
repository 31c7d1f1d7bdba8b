"""ENS « Ordonnances »: prescriptions grouped, their delivery state, renewal requests.

The rules are in :mod:`hygie.domain.ens.prescriptions`; every read and the renewal request (a
``Task`` owned by the prescriber) go through the door as the signed-in person.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.domain.ens import prescriptions as rules
from hygie.domain.ens.vitals import PARIS
from hygie.web.ens.core import Ens
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Visitor, person_name

__all__ = ["routes"]

_LOCK_KIND = "ens-renewal-lock"
_LOCK_US = 30 * 1_000_000
BADGES = {
    "prescribed": "info",
    "partial": "new",
    "dispensed": "success",
    "expired": "warning",
    "cancelled": "error",
    "stopped": "error",
    "completed": "success",
    "on-hold": "warning",
}
TASK_BADGES = {"requested": "info", "received": "info", "accepted": "success", "in-progress": "info",
               "completed": "success", "rejected": "error", "cancelled": "warning"}  # fmt: skip


def routes(ens: Ens) -> list[BaseRoute]:
    kv = ens.services["runtime"].kv

    def now() -> datetime:
        return datetime.fromtimestamp(ens.clock() / 1_000_000, UTC)

    async def prescriber_names(visitor: Visitor, requests: list[dict[str, Any]]) -> dict[str, str]:
        names: dict[str, str] = {}
        refs = {
            str((r.get("requester") or {}).get("reference", ""))
            for r in requests
            if not (r.get("requester") or {}).get("display")
        }
        for ref in sorted(r for r in refs if "/" in r)[:30]:
            kind, id = ref.split("/", 1)
            if kind == "PractitionerRole":
                role = await ens.door.read(visitor.caller, kind, id)
                practitioner_ref = str(((role or {}).get("practitioner") or {}).get("reference", ""))
                if practitioner_ref.startswith("Practitioner/"):
                    found = await ens.door.read(
                        visitor.caller, "Practitioner", practitioner_ref.split("/", 1)[1]
                    )
                    names[ref] = person_name(found)
            elif kind in ("Practitioner", "Organization"):
                found = await ens.door.read(visitor.caller, kind, id)
                names[ref] = (
                    person_name(found) if kind == "Practitioner" else str((found or {}).get("name", ""))
                )
        return names

    async def load(visitor: Visitor) -> tuple[list[rules.Prescription], list[dict[str, Any]]]:
        requests = await ens.door.search(
            visitor.caller,
            "MedicationRequest",
            [("patient", visitor.patient_id), ("_sort", "-authoredon"), ("_count", "200")],
            limit=2000,
        )
        dispenses = await ens.door.search(
            visitor.caller,
            "MedicationDispense",
            [("patient", visitor.patient_id), ("_count", "200")],
            limit=5000,
        )
        tasks = await ens.door.search(
            visitor.caller,
            "Task",
            [
                ("patient", visitor.patient_id),
                ("code", f"{rules.RENEWAL_CODE['system']}|{rules.RENEWAL_CODE['code']}"),
                ("_count", "200"),
            ],
            limit=2000,
        )
        today = now().astimezone(PARIS).date()
        found = rules.group(requests, dispenses, await prescriber_names(visitor, requests), today)
        for p in found:
            p.renewals = rules.renewals_of(p, tasks)
        return found, tasks

    async def one(visitor: Visitor, id: str) -> tuple[rules.Prescription, list[dict[str, Any]]]:
        # the line must be readable by this person (the door decides), else it does not exist
        if await ens.door.read(visitor.caller, "MedicationRequest", id) is None:
            raise PortalError(404, "Cette ordonnance n’existe pas ou n’est plus disponible.")
        found, tasks = await load(visitor)
        prescription = next((p for p in found if any(line.id == id for line in p.lines)), None)
        if prescription is None:
            raise PortalError(404, "Cette ordonnance n’existe pas ou n’est plus disponible.")
        return prescription, tasks

    async def index(request: Request, visitor: Visitor, _form: Submitted | None) -> Response:
        found, _ = await load(visitor)
        everything = request.query_params.get("vue") == "toutes"
        recent = now().astimezone(PARIS).date() - timedelta(days=365)
        shown = [
            p
            for p in found
            if everything or p.current or p.open_renewal is not None or (p.authored or date.min) >= recent
        ]
        return await ens.page(
            request,
            visitor,
            "ens/ordonnances/index.html",
            title="Mes ordonnances",
            prescriptions=shown,
            total=len(found),
            everything=everything,
            badges=BADGES,
            task_badges=TASK_BADGES,
        )

    async def detail_page(
        request: Request,
        visitor: Visitor,
        prescription: rules.Prescription,
        *,
        note: str = "",
        errors: dict[str, str] | None = None,
        refusal: str | None = None,
        status: int = 200,
    ) -> Response:
        title = "Ordonnance" + (
            f" du {prescription.authored.strftime('%d/%m/%Y')}" if prescription.authored else ""
        )
        return await ens.page(
            request,
            visitor,
            "ens/ordonnances/ordonnance.html",
            status=status,
            title=title,
            p=prescription,
            badges=BADGES,
            task_badges=TASK_BADGES,
            why_not=rules.why_not_renewable(prescription),
            values={"message": note},
            errors=errors or {},
            refusal=refusal,
        )

    async def detail(request: Request, visitor: Visitor, _form: Submitted | None) -> Response:
        prescription, _ = await one(visitor, str(request.path_params["id"]))
        return await detail_page(request, visitor, prescription)

    async def renew(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        prescription, tasks = await one(visitor, str(request.path_params["id"]))
        note = form.get("message")
        why_not = rules.why_not_renewable(prescription)
        if why_not:
            await ens.failed(visitor, form)
            return await detail_page(request, visitor, prescription, note=note, refusal=why_not, status=409)
        error = rules.check_note(note)
        if error:
            await ens.failed(visitor, form)
            return await detail_page(
                request, visitor, prescription, note=note, errors={"message": error}, status=400
            )
        lock = f"{visitor.patient_id}|{prescription.key}"
        if not await kv.add(
            _LOCK_KIND, lock, {"by": visitor.session.session_id}, expires_us=ens.clock() + _LOCK_US
        ):
            await ens.failed(visitor, form)
            return await detail_page(
                request, visitor, prescription, note=note, status=409,
                refusal="Une demande de renouvellement de cette ordonnance est en cours d’envoi.",
            )  # fmt: skip
        try:
            # read again under the lock: another tab may have sent one meanwhile
            prescription, tasks = await one(visitor, str(request.path_params["id"]))
            pending = rules.open_request(prescription, tasks)
            if pending is not None:
                await ens.failed(visitor, form)
                return await detail_page(
                    request, visitor, prescription, note=note, status=409,
                    refusal=(
                        f"Vous avez déjà demandé le renouvellement de cette ordonnance le {pending.asked} : "
                        f"la demande est {pending.words}. Une seule demande à la fois est possible ; "
                        "vous pouvez l’annuler pour en envoyer une autre."
                    ),
                )  # fmt: skip
            task = rules.renewal_task(prescription, visitor.patient_ref, visitor.actor_ref, now(), note)
            await ens.door.create(visitor.caller, task)
        finally:
            await kv.delete(_LOCK_KIND, lock)
        return await ens.done(
            visitor,
            form,
            f"/ens/ordonnances/{prescription.key}",
            f"Votre demande de renouvellement a été envoyée à {prescription.prescriber_name}.",
        )

    async def cancel(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        prescription, tasks = await one(visitor, str(request.path_params["id"]))
        task_id = str(request.path_params["task"])
        task = next((t for t in tasks if t.get("id") == task_id), None)
        renewal = next((r for r in prescription.renewals if r.id == task_id), None)
        if task is None or renewal is None:
            raise PortalError(404, "Cette demande n’existe pas ou n’est plus disponible.")
        if task.get("status") != "requested":
            raise PortalError(
                409,
                "Le prescripteur a déjà pris en compte cette demande : elle ne peut plus être annulée ici.",
            )
        changed = dict(task)
        changed["status"] = "cancelled"
        changed["statusReason"] = {"text": "Annulée par la personne"}
        changed["lastModified"] = now().astimezone(PARIS).isoformat()
        await ens.door.update(visitor.caller, changed, version=renewal.version or None)
        return await ens.done(
            visitor, form, f"/ens/ordonnances/{prescription.key}", "Votre demande a été annulée."
        )

    return [
        ens.route("/ens/ordonnances", index),
        ens.route("/ens/ordonnances/{id}", detail),
        ens.route("/ens/ordonnances/{id}/renouvellement", renew, methods=("POST",)),
        ens.route("/ens/ordonnances/{id}/renouvellement/{task}/annuler", cancel, methods=("POST",)),
    ]
