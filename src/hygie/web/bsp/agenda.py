"""BSP « Agenda »: teleconsultations with patients, tele-expertise requests between professionals.

The rules are in ``domain/bsp/telehealth.py``; every read and write goes through ``bsp.door`` as
the professional.

* ``GET /bsp/agenda`` — my teleconsultations still to come, by day (the soonest first) with their
  « Rejoindre » link; the tele-expertise requests I received (waiting first) and those I sent,
  with their state;
* ``GET|POST /bsp/agenda/teleconsultation`` — schedule a teleconsultation with one of my patients
  (``?patient=``): an Appointment with its own video room on the referenced video service
  (``HYGIE_VIDEO_SERVICE_URL``), which the patient's agenda shows too;
* ``GET|POST /bsp/agenda/tele-expertise/nouvelle`` — ask a colleague found in the directory
  (``?qui=``, ``?a=``) for an opinion about a patient (``?patient=``): the question, documents of
  the record, the patient's consent (one transaction: the Task and the act's Encounter);
* ``GET /bsp/agenda/tele-expertise/{id}`` — a request as its requester or its colleague sees it;
  ``POST …/repondre`` — the colleague gives their opinion, or declines.

The home page shows the requests waiting for my answer (``web/bsp/home.py``).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.domain.bsp import messaging as pro
from hygie.domain.bsp import telehealth as tele
from hygie.domain.ens.messaging import PARIS
from hygie.web.bsp.core import Bsp
from hygie.web.bsp.home import Highlight, highlight
from hygie.web.bsp.messages import correspondent, my_patients, open_patient, record_documents
from hygie.web.portal.door import PortalError, as_json
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Professional

__all__ = ["routes"]

_EXPERTISE = f"{tele.TELE_EXPERTISE['system']}|{tele.TELE_EXPERTISE['code']}"
_TELECONSULTATION = f"{tele.TELECONSULTATION['system']}|{tele.TELECONSULTATION['code']}"
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_GONE = "Cette demande n’existe pas ou ne vous concerne pas."
_CLOSED = "Ce dossier ne vous est pas ouvert : choisissez un de vos patients."


def routes(bsp: Bsp) -> list[BaseRoute]:
    runtime = bsp.services["runtime"]

    def now() -> datetime:
        return datetime.fromtimestamp(bsp.clock() / 1_000_000, PARIS)

    async def tasks(visitor: Professional, role: str) -> list[dict[str, Any]]:
        return await bsp.door.search(
            visitor.caller,
            "Task",
            [
                (role, visitor.practitioner_ref),
                ("code", _EXPERTISE),
                ("_sort", "-authored-on"),
                ("_count", "100"),
            ],
            limit=200,
        )

    async def waiting(visitor: Professional) -> list[Highlight]:
        count = sum(1 for t in await tasks(visitor, "owner") if tele.view_expertise(t).waiting)
        if not count:
            return []
        plural = "s" if count > 1 else ""
        return [
            Highlight(f"{count} demande{plural} de télé-expertise en attente de votre avis", "/bsp/agenda")
        ]

    highlight(bsp, waiting)

    async def index(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        moment = now()
        appointments = await bsp.door.search(
            visitor.caller,
            "Appointment",
            [
                ("actor", visitor.practitioner_ref),
                ("service-type", _TELECONSULTATION),
                ("date", f"ge{(moment - timedelta(days=1)).date().isoformat()}"),
                ("_sort", "date"),
                ("_count", "200"),
            ],
            limit=500,
        )
        consultations = [c for c in (tele.view_consultation(a, {}) for a in appointments) if c is not None]
        received = [tele.view_expertise(t) for t in await tasks(visitor, "owner")]
        received.sort(key=lambda e: not e.waiting)  # waiting first, each group the most recent first
        sent = [tele.view_expertise(t) for t in await tasks(visitor, "requester")]
        return await bsp.page(
            request,
            visitor,
            "bsp/agenda/index.html",
            title="Agenda",
            days=tele.consultation_days(consultations, moment),
            received=received,
            sent=sent,
        )

    # -- teleconsultation -----------------------------------------------------------------------

    async def consultation_page(
        request: Request,
        visitor: Professional,
        *,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        values = values or {"patient": request.query_params.get("patient", ""), "duree": "20"}
        return await bsp.page(
            request,
            visitor,
            "bsp/agenda/teleconsultation.html",
            status=status,
            title="Programmer une téléconsultation",
            configured=bool(runtime.settings.video_service_url),
            patients=await my_patients(bsp, visitor),
            durations=tele.DURATIONS,
            values=values,
            errors=errors or {},
        )

    async def schedule(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        if form is None:
            return await consultation_page(request, visitor)
        values = {k: form.get(k) for k in ("patient", "date", "heure", "duree", "motif")}
        draft, errors = tele.parse_teleconsultation(values, now())
        patient = await open_patient(bsp, visitor, values["patient"]) if values["patient"] else None
        if patient is None:
            errors["patient"] = "Choisissez le patient." if not values["patient"] else _CLOSED
        service = runtime.settings.video_service_url
        if not service:
            errors["patient"] = "Aucun service de téléconsultation référencé n’est configuré."
        if errors or draft is None or patient is None or not service:
            await bsp.failed(visitor, form)
            return await consultation_page(request, visitor, values=values, errors=errors, status=400)
        appointment = tele.teleconsultation(
            patient=(f"Patient/{patient.patient_id}", patient.label),
            practitioner=(visitor.practitioner_ref, visitor.name),
            draft=draft,
            link=tele.room_link(service),
            now_us=bsp.clock(),
        )
        await bsp.door.create(visitor.caller, appointment)
        when = draft.start.strftime("%d/%m/%Y à %Hh%M")
        return await bsp.done(
            visitor,
            form,
            "/bsp/agenda",
            f"Téléconsultation programmée avec {patient.label} le {when} : elle apparaît aussi dans son agenda.",
        )

    # -- tele-expertise -------------------------------------------------------------------------

    async def request_page(
        request: Request,
        visitor: Professional,
        *,
        values: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        query = request.query_params
        values = values or {
            "a": query.get("a", ""),
            "patient": query.get("patient", ""),
            "priorite": "routine",
        }
        errors = dict(errors or {})
        wanted = " ".join(query.get("qui", "").split())[:100]
        expert = await correspondent(bsp, visitor, str(values.get("a") or ""))
        if expert is not None and expert.kind != "professionnel":
            expert = None
        if values.get("a") and expert is None:
            errors.setdefault("a", "Choisissez un professionnel de l’annuaire.")
        found: list[pro.Correspondent] = []
        if wanted and expert is None:
            found = [
                c
                for c in await pro.find_correspondents(bsp.door, visitor.caller, wanted)
                if c.kind == "professionnel" and c.reference != visitor.practitioner_ref
            ]
        patient = await open_patient(bsp, visitor, str(values["patient"])) if values.get("patient") else None
        if values.get("patient") and patient is None:
            errors.setdefault("patient", _CLOSED)
        return await bsp.page(
            request,
            visitor,
            "bsp/agenda/demande.html",
            status=status,
            title="Demander une télé-expertise",
            expert=expert,
            wanted=wanted,
            found=found,
            searched=bool(wanted) and expert is None,
            patient=patient,
            patients=await my_patients(bsp, visitor) if patient is None else [],
            documents=await record_documents(bsp, visitor, patient.patient_id) if patient else [],
            priorities=tele.PRIORITIES,
            values=values,
            errors=errors,
        )

    async def ask(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        if form is None:
            return await request_page(request, visitor)
        values: dict[str, Any] = {
            "a": form.get("a"),
            "patient": form.get("patient"),
            "question": form.get("question"),
            "priorite": form.get("priorite"),
            "documents": form.lists.get("documents", []),
            "consentement": form.get("consentement"),
        }
        expert = await correspondent(bsp, visitor, values["a"])
        patient = await open_patient(bsp, visitor, values["patient"]) if values["patient"] else None
        documents = await record_documents(bsp, visitor, patient.patient_id) if patient else []
        draft, errors = tele.check_request(
            values["question"],
            values["priorite"],
            values["consentement"] == "oui",
            values["documents"],
            {d["id"]: d["title"] for d in documents},
        )
        if expert is None or expert.kind != "professionnel" or expert.reference == visitor.practitioner_ref:
            errors["a"] = "Choisissez le professionnel à qui demander son avis."
        if patient is None:
            errors["patient"] = _CLOSED
        if errors or draft is None or expert is None or patient is None:
            await bsp.failed(visitor, form)
            return await request_page(request, visitor, values=values, errors=errors, status=400)
        encounter_urn, task_urn = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
        task, encounter = tele.expertise_resources(
            patient=(f"Patient/{patient.patient_id}", patient.label),
            requester=(visitor.practitioner_ref, visitor.name),
            expert=(expert.reference, expert.name),
            request=draft,
            now_us=bsp.clock(),
            encounter_ref=encounter_urn,
            structure=visitor.organization,
        )
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": encounter_urn,
                    "resource": encounter,
                    "request": {"method": "POST", "url": "Encounter"},
                },
                {"fullUrl": task_urn, "resource": task, "request": {"method": "POST", "url": "Task"}},
            ],
        }
        response = as_json((await bsp.door.call(visitor.caller, "POST", "", resource=bundle)).body)
        location = str(((response.get("entry") or [{}])[-1].get("response") or {}).get("location", ""))
        task_id = location.split("/Task/", 1)[-1].split("/", maxsplit=1)[0] if "/Task/" in location else ""
        if not task_id:
            raise PortalError(500, "La demande n’a pas pu être envoyée. Réessayez dans un instant.", location)
        return await bsp.done(
            visitor,
            form,
            f"/bsp/agenda/tele-expertise/{task_id}",
            f"Demande de télé-expertise envoyée à {expert.name}.",
        )

    async def expertise_of(visitor: Professional, task_id: str) -> tuple[dict[str, Any], tele.Expertise]:
        task = await bsp.door.read(visitor.caller, "Task", task_id) if _ID.fullmatch(task_id) else None
        if task is None or not tele.is_expertise(task):
            raise PortalError(404, _GONE)
        view = tele.view_expertise(task)
        if visitor.practitioner_ref not in (view.requester_ref, view.expert_ref):
            raise PortalError(404, _GONE)
        return task, view

    async def detail_page(
        request: Request,
        visitor: Professional,
        *,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        _, view = await expertise_of(visitor, request.path_params["id"])
        return await bsp.page(
            request,
            visitor,
            "bsp/agenda/tele-expertise.html",
            status=status,
            title="Demande de télé-expertise",
            expertise=view,
            mine_to_answer=view.expert_ref == visitor.practitioner_ref and view.waiting,
            values=values or {},
            errors=errors or {},
        )

    async def detail(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        return await detail_page(request, visitor)

    async def answer(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        assert form is not None
        task, view = await expertise_of(visitor, request.path_params["id"])
        if view.expert_ref != visitor.practitioner_ref or not view.waiting:
            raise PortalError(409, "Cette demande a déjà reçu une réponse.")
        decline = form.get("action") == "decliner"
        text = form.get("avis")
        problem = tele.check_answer(text, decline)
        if problem:
            await bsp.failed(visitor, form)
            return await detail_page(
                request, visitor, values={"avis": text}, errors={"avis": problem}, status=400
            )
        encounter = (
            await bsp.door.read(visitor.caller, "Encounter", view.encounter_id) if view.encounter_id else None
        )
        answered, act = tele.answer_expertise(task, encounter, text, bsp.clock(), decline=decline)
        entries: list[dict[str, Any]] = [
            {
                "resource": answered,
                "request": {"method": "PUT", "url": f"Task/{view.id}", "ifMatch": f'W/"{view.version}"'},
            }
        ]
        if act is not None and encounter is not None:
            version = str((encounter.get("meta") or {}).get("versionId") or "")
            entries.append(
                {
                    "resource": act,
                    "request": {
                        "method": "PUT",
                        "url": f"Encounter/{view.encounter_id}",
                        "ifMatch": f'W/"{version}"',
                    },
                }
            )
        await bsp.door.call(
            visitor.caller,
            "POST",
            "",
            resource={"resourceType": "Bundle", "type": "transaction", "entry": entries},
        )
        message = "Vous avez décliné la demande." if decline else "Votre avis a été transmis."
        return await bsp.done(visitor, form, f"/bsp/agenda/tele-expertise/{view.id}", message)

    return [
        bsp.route("/bsp/agenda", index),
        bsp.route("/bsp/agenda/teleconsultation", schedule, methods=("GET", "POST")),
        bsp.route("/bsp/agenda/tele-expertise/nouvelle", ask, methods=("GET", "POST")),
        bsp.route("/bsp/agenda/tele-expertise/{id}", detail),
        bsp.route("/bsp/agenda/tele-expertise/{id}/repondre", answer, methods=("POST",)),
    ]
