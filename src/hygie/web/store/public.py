"""The catalogue's public pages, for anyone, signed in or not (``/store/…``).

* ``GET /store/applications/{app}`` — an app's page in plain language (``web/portal/store.py``
  :class:`~hygie.web.portal.store.AppView`): who publishes it, what it will read and write, its
  category and evaluation status, its last technical checks, its public dated changelog and its
  report history. Every app but a draft has one (a draft, like an unknown app, is 404): a
  suspended or delisted app keeps its page, whose changelog says why.
* ``GET|POST /store/applications/{app}/signaler`` — anyone may report a malfunction or a harmful
  effect, anonymously, with an optional contact address. There is no session here, hence no
  CSRF token: the form carries a **one-time token** stored when the form is shown (``kv.add``)
  and taken when it is sent (``kv.take``) — a replayed or doubly sent form files nothing twice.
  A form with faults is shown again (422) with what was typed and each message beside its field,
  and a fresh token.
* ``GET /store/signalements/{report}`` — the follow-up of one report: the triage's result in
  plain words (which authority, which deadline), its status, history and outcome. The report's
  id is the key (unguessable, ``secrets.token_urlsafe``): the page shows that report and nothing
  of any other.

Nothing here reads health data: the catalogue and the reports are the store's records.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from hygie.domain.store.catalogue import App
from hygie.ports import KeyValueStore
from hygie.store.service import StoreError, StoreService
from hygie.web.pages import render
from hygie.web.portal.store import (
    NATURES,
    ReportForm,
    app_view,
    file_report,
    report_view,
    shown_app,
)

__all__ = ["routes"]

_FORM_KIND = "store-report-form"  # one-time token -> the app its form reports
_FORM_TTL_US = 2 * 3600 * 1_000_000
_MAX_BODY = 64 * 1024  # a report is a few lines of text
TAGLINE = "Catalogue des applications de santé"


def _not_found(message: str) -> Response:
    return render(
        "message.html",
        status=404,
        title="Page introuvable",
        heading=message,
        message="Vérifiez l’adresse, ou cherchez l’application dans le catalogue de votre espace santé.",
        back="/",
        tagline=TAGLINE,
    )


def routes(store: StoreService, kv: KeyValueStore, clock: Callable[[], int]) -> list[BaseRoute]:
    async def public_app(request: Request) -> App | None:
        return shown_app(await store.app(str(request.path_params["app"])[:64]))

    async def application(request: Request) -> Response:
        app = await public_app(request)
        if app is None:
            return _not_found("Cette application n’est pas dans le catalogue.")
        return render(
            "store/application.html", title=app.name, tagline=TAGLINE, view=await app_view(store, app)
        )

    async def form_token(app: App) -> str:
        token = secrets.token_urlsafe(24)
        await kv.add(_FORM_KIND, token, {"app": app.id}, expires_us=clock() + _FORM_TTL_US)
        return token

    async def report_page(
        app: App, form: ReportForm, errors: dict[str, str], *, status: int = 200, expired: bool = False
    ) -> Response:
        return render(
            "store/signaler.html",
            status=status,
            title=f"Signaler un problème — {app.name}",
            tagline=TAGLINE,
            app=app,
            natures=NATURES,
            report=form,
            errors=errors,
            expired=expired,
            token=await form_token(app),
        )

    async def report(request: Request) -> Response:
        app = await public_app(request)
        if app is None:
            return _not_found("Cette application n’est pas dans le catalogue.")
        if request.method == "GET":
            return await report_page(app, ReportForm(), {})
        declared = request.headers.get("content-length", "")
        if not declared.isdigit():  # a body of unknown size is not read
            return render(
                "message.html",
                status=411,
                title="Signalement non reçu",
                heading="Votre signalement n’a pas pu être reçu.",
                message="Rechargez le formulaire et envoyez-le de nouveau.",
                back=f"/store/applications/{app.id}/signaler",
                tagline=TAGLINE,
            )
        if int(declared) > _MAX_BODY:
            return render(
                "message.html",
                status=413,
                title="Signalement trop long",
                heading="Votre signalement est trop long pour être reçu.",
                message="Raccourcissez votre description (5 000 caractères au plus) et recommencez.",
                back=f"/store/applications/{app.id}/signaler",
                tagline=TAGLINE,
            )
        async with request.form(max_files=0, max_fields=20) as data:
            values = {k: v for k, v in data.items() if isinstance(v, str)}
        typed = ReportForm.from_values(values)
        claimed = await kv.take(_FORM_KIND, values.get("formulaire", "")[:64] or "-")
        if claimed is None or claimed.get("app") != app.id:
            # sent twice, replayed, or too old: nothing is filed; what was typed is kept
            return await report_page(app, typed, {}, status=400, expired=True)
        try:
            filed = await file_report(store, app, typed, reporter=None, kind="anonyme")
        except StoreError as error:
            if error.status != 422:
                return _not_found("Cette application n’est pas dans le catalogue.")
            return await report_page(app, typed, error.by_field, status=422)
        return RedirectResponse(f"/store/signalements/{filed['id']}?envoye=1", status_code=303)

    async def follow_up(request: Request) -> Response:
        found = await store.report_of(str(request.path_params["report"])[:64])
        if found is None:
            return _not_found("Ce signalement n’existe pas.")
        app = await store.app(str(found["app_id"]))
        view = report_view(found, app.name if app else "Application retirée")
        return render(
            "store/suivi.html",
            title="Suivi de votre signalement",
            tagline=TAGLINE,
            report=view,
            sent=request.query_params.get("envoye") == "1",
            link=f"{request.base_url}store/signalements/{view.id}",
        )

    return [
        Route("/store/applications/{app}", application),
        Route("/store/applications/{app}/signaler", report, methods=["GET", "POST"]),
        Route("/store/signalements/{report}", follow_up),
    ]
