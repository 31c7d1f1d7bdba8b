"""What every page of the citizen portal (ENS) shares: the visitor, the door, forms, the layout.

A section of the portal is a module of ``web/ens/`` with ``routes(ens) -> list[Route]``; its
handlers take ``(request, visitor, form)`` and are wrapped by :meth:`Ens.route`, which

* sends a visitor who is not signed in (as a citizen) to the sign-in page and back;
* on POST, reads the form once, checks the CSRF token and claims the form's one-time ``jeton``
  (a double submission creates nothing twice: :class:`~hygie.web.portal.forms.Forms`);
* turns a :class:`~hygie.web.portal.door.PortalError` (a refusal of the access policy, a
  conflict, a missing record) into a plain French page with the right HTTP status.

Every read and write of health data goes through ``ens.door`` as ``visitor.caller``: the access
policy decides and the audit trail records, exactly as for the FHIR API.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hygie.web.pages import render
from hygie.web.portal.door import Door, PortalError
from hygie.web.portal.forms import Forms, Submitted
from hygie.web.portal.session import PortalAuth, Visitor, sign_in_redirect

__all__ = ["NAV", "Ens", "Handler", "NavItem"]

log = logging.getLogger(__name__)

_FORM_OVERHEAD = 256 * 1024  # the text fields and multipart framing around an upload

Handler = Callable[[Request, Visitor, Submitted | None], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class NavItem:
    path: str
    label: str
    icon: str  # DSFR icon class
    summary: str  # one line for the home page tile


# the portal's sections, in the order of the menu and of the home page
NAV: tuple[NavItem, ...] = (
    NavItem(
        "/ens/profil", "Mon profil", "fr-icon-user-line", "Identité, proches, médecin traitant, directives"
    ),
    NavItem(
        "/ens/carnet",
        "Carnet de santé",
        "fr-icon-heart-pulse-line",
        "Allergies, antécédents, traitements, vaccins",
    ),
    NavItem(
        "/ens/documents",
        "Documents",
        "fr-icon-file-text-line",
        "Comptes rendus, ordonnances, résultats, vos ajouts",
    ),
    NavItem(
        "/ens/mesures",
        "Mesures",
        "fr-icon-line-chart-line",
        "Poids, tension, glycémie… et vos seuils d’alerte",
    ),
    NavItem(
        "/ens/ordonnances", "Ordonnances", "fr-icon-capsule-line", "Vos prescriptions et leur délivrance"
    ),
    NavItem(
        "/ens/agenda",
        "Agenda",
        "fr-icon-calendar-line",
        "Rendez-vous, rappels de prévention et de vaccination",
    ),
    NavItem("/ens/messages", "Messagerie", "fr-icon-mail-line", "Échanges sécurisés avec vos soignants"),
    NavItem(
        "/ens/controles",
        "Qui voit mon dossier",
        "fr-icon-lock-line",
        "Accès, historique, partages, applications",
    ),
    NavItem("/ens/alertes", "Alertes santé", "fr-icon-alarm-warning-line", "Messages des autorités de santé"),
    NavItem("/ens/questionnaires", "Questionnaires", "fr-icon-survey-line", "Votre avis sur vos soins"),
    NavItem("/ens/export", "Exporter", "fr-icon-download-line", "Tout votre dossier, en fichier ou en PDF"),
    NavItem(
        "/ens/mon-espace", "Mon espace", "fr-icon-settings-5-line", "Ouverture, fermeture et conservation"
    ),
)


@dataclass
class Ens:
    door: Door
    auth: PortalAuth
    forms: Forms
    clock: Callable[[], int]
    services: dict[str, Any]  # section services (outbox, calendar feeds…) by name

    def route(
        self, path: str, handler: Handler, methods: tuple[str, ...] = ("GET",), name: str | None = None
    ) -> Route:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            visitor = await self.auth.citizen(request)
            if visitor is None:
                return sign_in_redirect(request)
            # the page's reads (the gate's included) are audited in one durable write, before the
            # page is returned
            async with self.door.page():
                return await serve(request, visitor)

        async def serve(request: Request, visitor: Visitor) -> Response:
            # a section may bar pages (a closed space shows only "Mon espace": web/ens/lifecycle.py)
            gate = self.services.get("gate")
            if gate is not None:
                barred: Response | None = await gate(request, visitor)
                if barred is not None:
                    return barred
            form: Submitted | None = None
            if request.method == "POST":
                declared = request.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.forms.max_upload_bytes + _FORM_OVERHEAD:
                    # refused before anything is read or spooled to disk
                    limit = self.forms.max_upload_bytes // (1024 * 1024)
                    return await self.error(
                        request, visitor, 413, f"Le fichier envoyé est trop volumineux (au plus {limit} Mo)."
                    )
                form = await self.forms.read(request)
                if not visitor.csrf_ok(form.values):
                    return await self.error(
                        request, visitor, 400, "Ce formulaire a expiré. Rechargez la page et recommencez."
                    )
                repeated = await self.forms.claim(visitor.session.session_id, form)
                if repeated is not None:
                    return repeated
            try:
                return await handler(request, visitor, form)
            except PortalError as error:
                if form is not None:
                    await self.forms.release(visitor.session.session_id, form)
                if error.status >= 500:
                    log.warning("portal error on %s: %s", request.url.path, error.detail)
                return await self.error(request, visitor, error.status, error.message)

        return Route(path, endpoint, methods=list(methods), name=name)

    async def page(
        self, request: Request, visitor: Visitor, template: str, *, status: int = 200, **context: Any
    ) -> Response:
        """A portal page: the layout (menu, spaces, messages) around ``template``."""
        messages = await self.forms.messages(visitor.session.session_id)
        path = request.url.path
        current = next((item for item in NAV if path == item.path or path.startswith(item.path + "/")), None)
        return render(
            template,
            status=status,
            visitor=visitor,
            nav=NAV,
            current=current,
            messages=messages,
            jeton=Forms.token(),
            csrf=visitor.csrf,
            request_path=path,
            tagline="Mon espace santé",
            **context,
        )

    async def error(self, request: Request, visitor: Visitor, status: int, message: str) -> Response:
        return await self.page(
            request,
            visitor,
            "ens/erreur.html",
            status=status,
            title="Impossible d’afficher la page",
            message=message,
        )

    async def done(
        self, visitor: Visitor, form: Submitted | None, location: str, message: str | None = None
    ) -> Response:
        """After a successful POST: remember it (no double submission), leave a message, redirect."""
        if form is None:
            from starlette.responses import RedirectResponse  # noqa: PLC0415

            return RedirectResponse(location, status_code=303)
        return await self.forms.done(visitor.session.session_id, form, location, message)

    async def failed(self, visitor: Visitor, form: Submitted | None) -> None:
        """A POST that is shown again with its errors: the same form may be sent once corrected."""
        if form is not None:
            await self.forms.release(visitor.session.session_id, form)
