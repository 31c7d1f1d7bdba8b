"""ENS « Agenda »: appointments, personal entries, prevention and vaccination reminders, a month
view, and a private iCalendar feed for the person's own calendar app.

The rules are in :mod:`hygie.domain.ens.calendar`. The feed (``/ens/agenda/flux/<token>.ics``)
has no browser session: its token (kept hashed) names an account and a space, and the feed is
read through the door as that account's caller, built as for a page
(:meth:`~hygie.web.portal.session.PortalAuth.caller_for`) — the access policy decides and the
audit trail records each fetch, as for any read.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from hygie.domain.access import Caller
from hygie.domain.ens import calendar as rules
from hygie.domain.ens.vitals import PARIS
from hygie.web.ens.core import Ens
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Visitor, person_name

__all__ = ["routes"]

_SHOWN_KIND = "ens-agenda-feed-shown"  # session id -> the new feed address, shown once
_SHOWN_US = 15 * 60 * 1_000_000
REMINDER_BADGES = {"overdue": "warning", "due": "warning", "due-soon": "info", "upcoming": "info"}
FEED_HEADERS = {
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": 'inline; filename="agenda-sante.ics"',
    "Referrer-Policy": "no-referrer",
}


def routes(ens: Ens) -> list[BaseRoute]:
    runtime = ens.services["runtime"]
    kv = runtime.kv
    tokens = rules.FeedTokens(kv, ens.clock)

    def now() -> datetime:
        return datetime.fromtimestamp(ens.clock() / 1_000_000, UTC)

    def today() -> date:
        return now().astimezone(PARIS).date()

    async def gather(
        caller: Caller, patient_id: str, *, since_days: int = 400
    ) -> tuple[list[rules.Event], list[rules.Reminder], dict[str, Any] | None]:
        """Appointments (from ``since_days`` ago) and reminders, read as ``caller``."""
        since = today() - timedelta(days=since_days)
        appointments = await ens.door.search(
            caller,
            "Appointment",
            [
                ("patient", patient_id),
                ("date", f"ge{since.isoformat()}"),
                ("_sort", "date"),
                ("_count", "200"),
            ],
            limit=2000,
        )
        names: dict[str, str] = {}
        for a in appointments:
            for p in a.get("participant") or []:
                ref = str((p.get("actor") or {}).get("reference", ""))
                if (
                    ref.startswith("Practitioner/")
                    and not (p.get("actor") or {}).get("display")
                    and ref not in names
                ):
                    names[ref] = person_name(
                        await ens.door.read(caller, "Practitioner", ref.split("/", 1)[1])
                    )
        events = rules.appointment_events(appointments, names)
        patient = await ens.door.read(caller, "Patient", patient_id)
        birth = _birth(patient)
        tests: list[dict[str, Any]] = []
        for kind in ("Observation", "DiagnosticReport"):
            tests += await ens.door.search(
                caller, kind, [("patient", patient_id), ("code", rules.screening_loinc())], limit=200
            )
        immunizations = await ens.door.search(caller, "Immunization", [("patient", patient_id)], limit=1000)
        reminders = rules.screening_reminders(
            birth, (patient or {}).get("gender"), today(), rules.last_tests(tests)
        ) + rules.vaccination_reminders(birth, immunizations, today())
        order = {"overdue": 0, "due": 1, "due-soon": 2, "upcoming": 3}
        reminders.sort(key=lambda r: (order[r.status], r.due))
        return events, reminders, patient

    # ------------------------------------------------------------------ pages
    async def index(request: Request, visitor: Visitor, _form: Submitted | None) -> Response:
        events, reminders, _ = await gather(visitor.caller, visitor.patient_id)
        view = "mois" if request.query_params.get("vue") == "mois" else "liste"
        moment = now()
        upcoming = [e for e in events if (e.end or e.start) >= moment]
        past = [e for e in events if (e.end or e.start) < moment and e.day >= today() - timedelta(days=90)]
        year, month = rules.parse_month(request.query_params.get("mois", ""), today())
        grid = rules.month_grid(year, month, events, reminders, today())
        account = visitor.subject.account_id
        feed_since = await tokens.current(account, visitor.patient_id)
        shown = await kv.take(_SHOWN_KIND, visitor.session.session_id)
        feed_url = None
        if shown and shown.get("patient") == visitor.patient_id:
            feed_url = f"{runtime.settings.base_url.rstrip('/')}/ens/agenda/flux/{shown['token']}.ics"
        return await ens.page(
            request,
            visitor,
            "ens/agenda/index.html",
            title="Mon agenda",
            view=view,
            upcoming=upcoming,
            past=list(reversed(past)),
            reminders=reminders,
            grid=grid,
            badges=REMINDER_BADGES,
            feed_since=_french_us(feed_since) if feed_since else None,
            feed_url=feed_url,
            webcal_url=("webcal://" + feed_url.split("://", 1)[1]) if feed_url else None,
            paris=PARIS,
            days=[d.capitalize() for d in rules.DAYS],
        )

    async def form_page(
        request: Request,
        visitor: Visitor,
        *,
        values: dict[str, str],
        errors: dict[str, str] | None = None,
        event: rules.Event | None = None,
        status: int = 200,
    ) -> Response:
        return await ens.page(
            request,
            visitor,
            "ens/agenda/rendez-vous.html",
            status=status,
            title=("Modifier : " + event.title)
            if event and event.editable
            else (event.title if event else "Ajouter un rendez-vous ou un rappel"),
            event=event,
            values=values,
            errors=errors or {},
            paris=PARIS,
        )

    async def new(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        if form is None:
            start = (now() + timedelta(days=1)).astimezone(PARIS)
            values = {"date": start.date().isoformat(), "debut": "09:00", "fin": "09:30"}
            return await form_page(request, visitor, values=values)
        typed = {k: form.get(k) for k in ("objet", "date", "debut", "fin", "lieu", "note")}
        entry, errors = rules.parse_personal(typed, now())
        if entry is None:
            await ens.failed(visitor, form)
            return await form_page(request, visitor, values=typed, errors=errors, status=400)
        created = await ens.door.create(
            visitor.caller, rules.personal_appointment(entry, visitor.patient_ref, visitor.space.label)
        )
        return await ens.done(
            visitor,
            form,
            f"/ens/agenda?vue=liste#rdv-{created.get('id', '')}",
            f"« {entry.title} » ajouté à votre agenda.",
        )

    async def event_of(visitor: Visitor, id: str) -> tuple[rules.Event, dict[str, Any]]:
        appointment = await ens.door.read(visitor.caller, "Appointment", id)
        if appointment is None:
            raise PortalError(404, "Ce rendez-vous n’existe pas ou n’est plus disponible.")
        refs = {
            str((p.get("actor") or {}).get("reference", "")) for p in appointment.get("participant") or []
        }
        if visitor.patient_ref not in refs:
            raise PortalError(404, "Ce rendez-vous n’existe pas ou n’est plus disponible.")
        names: dict[str, str] = {}
        for ref in refs:
            if ref.startswith("Practitioner/"):
                names[ref] = person_name(
                    await ens.door.read(visitor.caller, "Practitioner", ref.split("/", 1)[1])
                )
        found = rules.appointment_events([appointment], names)
        if not found:
            raise PortalError(404, "Ce rendez-vous n’existe pas ou n’est plus disponible.")
        return found[0], appointment

    def only_personal(event: rules.Event) -> None:
        if not event.editable:
            raise PortalError(
                403,
                "Ce rendez-vous a été fixé par un professionnel ou une application : vous ne pouvez pas "
                "le modifier ici. Pour le déplacer ou l’annuler, contactez le cabinet ou le service concerné.",
            )

    async def edit(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        event, appointment = await event_of(visitor, str(request.path_params["id"]))
        if form is None:
            return await form_page(request, visitor, values=rules.form_of(event), event=event)
        only_personal(event)
        typed = {k: form.get(k) for k in ("objet", "date", "debut", "fin", "lieu", "note")}
        entry, errors = rules.parse_personal(typed, now())
        if entry is None:
            await ens.failed(visitor, form)
            return await form_page(request, visitor, values=typed, errors=errors, event=event, status=400)
        await ens.door.update(
            visitor.caller,
            rules.personal_appointment(entry, visitor.patient_ref, visitor.space.label, appointment),
            version=event.version or None,
        )
        return await ens.done(visitor, form, f"/ens/agenda/rdv/{event.id}", "Rendez-vous modifié.")

    async def remove(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        event, _ = await event_of(visitor, str(request.path_params["id"]))
        only_personal(event)
        if form is None:
            return await ens.page(
                request,
                visitor,
                "ens/agenda/supprimer.html",
                title="Supprimer un rendez-vous",
                event=event,
                paris=PARIS,
            )
        await ens.door.delete(visitor.caller, "Appointment", event.id)
        return await ens.done(
            visitor, form, "/ens/agenda", f"« {event.title} » a été supprimé de votre agenda."
        )

    async def subscribe(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        token = await tokens.issue(visitor.subject.account_id, visitor.patient_id)
        await kv.put(
            _SHOWN_KIND,
            visitor.session.session_id,
            {"token": token, "patient": visitor.patient_id},
            expires_us=ens.clock() + _SHOWN_US,
        )
        return await ens.done(
            visitor,
            form,
            "/ens/agenda#abonnement",
            "Nouvelle adresse d’abonnement créée : l’ancienne, s’il y en avait une, ne fonctionne plus.",
        )

    async def unsubscribe(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        done = await tokens.revoke(visitor.subject.account_id, visitor.patient_id)
        message = "L’adresse d’abonnement est révoquée : plus aucun agenda ne peut la lire." if done else None
        return await ens.done(visitor, form, "/ens/agenda#abonnement", message)

    async def feed(request: Request) -> Response:
        owner = await tokens.owner(str(request.path_params.get("token", "")))
        caller = None
        if owner is not None:
            address = request.client.host if request.client else None
            caller = await ens.auth.caller_for(owner.account_id, owner.patient_id, address)
        if owner is None or caller is None:
            return PlainTextResponse(
                "Ce calendrier n’existe pas ou son adresse a été révoquée.",
                status_code=404,
                headers=FEED_HEADERS,
            )
        try:
            events, reminders, patient = await gather(caller, owner.patient_id, since_days=90)
        except PortalError as error:
            status = 404 if error.status in (403, 404, 410) else 503
            return PlainTextResponse(error.message, status_code=status, headers=FEED_HEADERS)
        body = rules.icalendar_feed(events, reminders, owner=person_name(patient), today=today(), now=now())
        return Response(body, media_type="text/calendar; charset=utf-8", headers=FEED_HEADERS)

    return [
        ens.route("/ens/agenda", index),
        ens.route("/ens/agenda/nouveau", new, methods=("GET", "POST")),
        ens.route("/ens/agenda/abonnement", subscribe, methods=("POST",)),
        ens.route("/ens/agenda/abonnement/revoquer", unsubscribe, methods=("POST",)),
        ens.route("/ens/agenda/rdv/{id}", edit, methods=("GET", "POST")),
        ens.route("/ens/agenda/rdv/{id}/supprimer", remove, methods=("GET", "POST")),
        Route("/ens/agenda/flux/{token}.ics", feed, methods=["GET", "HEAD"]),
    ]


def _birth(patient: dict[str, Any] | None) -> date | None:
    text = str((patient or {}).get("birthDate", ""))
    try:
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def _french_us(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")
