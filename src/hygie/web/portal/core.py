"""What every page of a portal shares, whichever portal: the visitor, the door, forms, the layout.

Hygie has two portals built the same way — the citizen's space (``web/ens/``) and the
professionals' services (``web/bsp/``). A section of a portal is a module with
``routes(portal) -> list[Route]``; its handlers take ``(request, visitor, form)`` and are wrapped
by :meth:`Portal.route`, which

* sends a visitor who is not signed in (as the portal's kind of person) to the sign-in page and
  back;
* on POST, refuses an oversized body before reading it, reads the form once, checks the CSRF
  token and claims the form's one-time ``jeton`` (a double submission creates nothing twice:
  :class:`~hygie.web.portal.forms.Forms`);
* turns a :class:`~hygie.web.portal.door.PortalError` (a refusal of the access policy, a
  conflict, a missing record) into a plain French page with the right HTTP status;
* audits the page's reads in one durable write before the page is sent (``Door.page``).

Every read and write of health data goes through ``portal.door`` as ``visitor.caller``: the
access policy decides and the audit trail records, exactly as for the FHIR API.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from hygie.web.oauth import SessionData
from hygie.web.pages import render
from hygie.web.portal.door import Door, PortalError
from hygie.web.portal.forms import Forms, Submitted
from hygie.web.portal.session import sign_in_redirect

__all__ = ["NavItem", "Portal", "PortalVisitor"]

log = logging.getLogger(__name__)

_FORM_OVERHEAD = 256 * 1024  # the text fields and multipart framing around an upload


class PortalVisitor(Protocol):
    """What the frame needs of a visitor: the browser session and its CSRF check."""

    @property
    def session(self) -> SessionData: ...

    @property
    def csrf(self) -> str: ...

    def csrf_ok(self, form: dict[str, Any]) -> bool: ...


V = TypeVar("V", bound=PortalVisitor)


@dataclass(frozen=True, slots=True)
class NavItem:
    path: str
    label: str
    icon: str  # DSFR icon class
    summary: str  # one line for the home page tile


@dataclass
class Portal(Generic[V]):
    door: Door
    forms: Forms
    clock: Callable[[], int]
    services: dict[str, Any]  # section services (runtime, gate…) by name
    resolve: Callable[[Request], Awaitable[V | None]]  # the visitor of a request, None: sign in
    nav: tuple[NavItem, ...]
    home: str  # "/ens", "/bsp"
    tagline: str
    # extra layout context for every page of this portal (the BSP's patient banner)
    layout: Callable[[Request, V], Awaitable[dict[str, Any]]] | None = None

    def route(
        self,
        path: str,
        handler: Callable[[Request, V, Submitted | None], Awaitable[Response]],
        methods: tuple[str, ...] = ("GET",),
        name: str | None = None,
    ) -> Route:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            visitor = await self.resolve(request)
            if visitor is None:
                return sign_in_redirect(request)
            # the page's reads (the gate's included) are audited in one durable write, before the
            # page is returned
            async with self.door.page():
                return await serve(request, visitor)

        async def serve(request: Request, visitor: V) -> Response:
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

    def current(self, path: str) -> NavItem | None:
        """The menu entry a path belongs to (the longest match)."""
        matches = [item for item in self.nav if path == item.path or path.startswith(item.path + "/")]
        return max(matches, key=lambda item: len(item.path), default=None)

    async def page(
        self, request: Request, visitor: V, template: str, *, status: int = 200, **context: Any
    ) -> Response:
        """A portal page: the layout (menu, messages, the portal's own frame) around ``template``."""
        messages = await self.forms.messages(visitor.session.session_id)
        path = request.url.path
        extra = await self.layout(request, visitor) if self.layout is not None else {}
        return render(
            template,
            status=status,
            visitor=visitor,
            nav=self.nav,
            current=self.current(path),
            messages=messages,
            jeton=Forms.token(),
            csrf=visitor.csrf,
            request_path=path,
            tagline=self.tagline,
            **{**extra, **context},
        )

    async def error(self, request: Request, visitor: V, status: int, message: str) -> Response:
        return await self.page(
            request,
            visitor,
            f"{self.home.strip('/')}/erreur.html",
            status=status,
            title="Impossible d’afficher la page",
            message=message,
        )

    async def done(
        self, visitor: V, form: Submitted | None, location: str, message: str | None = None
    ) -> Response:
        """After a successful POST: remember it (no double submission), leave a message, redirect."""
        if form is None:
            return RedirectResponse(location, status_code=303)
        return await self.forms.done(visitor.session.session_id, form, location, message)

    async def failed(self, visitor: V, form: Submitted | None) -> None:
        """A POST that is shown again with its errors: the same form may be sent once corrected."""
        if form is not None:
            await self.forms.release(visitor.session.session_id, form)
