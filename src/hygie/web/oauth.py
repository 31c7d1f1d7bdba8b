"""HTTP side of the authorisation server: discovery, sign-in pages, authorize, token endpoints.

The protocol logic lives in ``auth/server.py``; this module only carries it over HTTP, keeps the
browser session (an opaque cookie naming a server-side record) and renders the French pages:
sign-in, second factor, patient choice (standalone launch by a professional) and the consent
screen where the person may accept only part of what an app asks.

Every form carries a CSRF token bound to the session; the session cookie is HttpOnly,
SameSite=Lax, and Secure when the issuer is https. A signed-in session keeps the account's
session generation (``auth/accounts.py`` ``session_generation``): when the holder changes their
password the generation changes, and every other session of the account is over at its next
request (:meth:`OAuthWeb.renew_session` gives the person at hand a new one).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from hygie.auth.accounts import InvalidResetLink, PasswordRejected, session_generation
from hygie.auth.errors import OAuthError
from hygie.auth.passwords import MIN_LENGTH
from hygie.auth.scopes import ResourceScope, parse_scopes
from hygie.auth.server import (
    AuthorizationServer,
    AuthorizeRequest,
    Subject,
    subject_from_json,
    subject_to_json,
)
from hygie.auth.sign_in import LoginOutcome
from hygie.auth.tokens import InvalidToken
from hygie.ports import KeyValueStore
from hygie.web.pages import render

__all__ = ["HOME_OF", "OAuthWeb", "SessionData", "local_path", "scope_label"]

# where a person lands after signing in, by kind of account
HOME_OF = {"citizen": "/ens", "professional": "/bsp", "publisher": "/editeur", "authority": "/autorite"}


def local_path(value: str) -> str:
    """A same-site path to return to after sign-in ("" when it could leave the site)."""
    if (
        not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(c in value for c in "\r\n")
    ):
        return ""
    return value


SESSION_COOKIE = "hygie_session"
SESSION_TTL_US = 8 * 3600 * 1_000_000
PENDING_TTL_US = 15 * 60 * 1_000_000
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class Accounts(Protocol):
    async def login(self, login: str, password: str, client_ip: str) -> LoginOutcome: ...

    async def second_factor(self, account_id: str, code: str) -> Subject | None: ...

    async def start_password_reset(self, login: str, base_url: str) -> None: ...

    async def complete_password_reset(self, token: str, new_password: str) -> None: ...


class PatientFinder(Protocol):
    async def find(self, subject: Subject, query: str) -> list[tuple[str, str]]:
        """(Patient id, label) pairs the signed-in professional may open."""
        ...

    async def label(self, subject: Subject, patient_id: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class SessionData:
    session_id: str
    csrf: str
    subject: Subject | None
    pending_account: str | None = None


_TYPE_LABELS = {
    "Observation": "mesures et résultats",
    "Patient": "identité",
    "Condition": "problèmes de santé et antécédents",
    "AllergyIntolerance": "allergies",
    "MedicationRequest": "prescriptions",
    "Immunization": "vaccinations",
    "DocumentReference": "documents",
    "Binary": "contenu des documents",
    "Appointment": "rendez-vous",
    "Encounter": "consultations et séjours",
    "Procedure": "actes",
    "*": "toutes les données",
}


def scope_label(scope: ResourceScope | str) -> str:
    """Plain French for one scope (the consent screen)."""
    if isinstance(scope, str):
        return {
            "openid": "Vous identifier auprès de l’application",
            "fhirUser": "Connaître votre profil (patient ou professionnel)",
            "profile": "Connaître votre nom",
            "offline_access": "Garder l’accès quand vous n’utilisez pas l’application",
            "online_access": "Garder l’accès pendant votre session",
            "launch": "S’ouvrir dans le contexte du dossier",
            "launch/patient": "S’ouvrir pour un patient choisi",
        }.get(scope, scope)
    what = _TYPE_LABELS.get(scope.resource_type, scope.resource_type)
    verbs = []
    if {"r", "s"} & scope.permissions:
        verbs.append("lire")
    if {"c", "u"} & scope.permissions:
        verbs.append("ajouter ou modifier")
    if "d" in scope.permissions:
        verbs.append("supprimer")
    whose = {"patient": "du patient", "user": "auxquelles vous avez accès", "system": "du système"}[
        scope.context
    ]
    restriction = " (partie seulement)" if scope.restrictions else ""
    return f"{' et '.join(verbs).capitalize()} : {what} {whose}{restriction}"


class OAuthWeb:
    def __init__(
        self,
        server: AuthorizationServer,
        kv: KeyValueStore,
        accounts: Accounts,
        patients: PatientFinder,
        clock: Callable[[], int],
        *,
        providers: Sequence[Any] = (),
    ) -> None:
        self.providers = list(providers)  # federation providers shown on the sign-in page
        self.server = server
        self.kv = kv
        self.accounts = accounts
        self.patients = patients
        self.clock = clock
        self.secure_cookie = server.issuer.startswith("https://")
        # the app store's side of the consent screen (store/consents.py ConsentScreen): what the
        # screen says of the app, and the Consent each citizen's grant is recorded as
        self.consent_screen: Any | None = None

    def routes(self) -> list[Route]:
        return [
            Route("/.well-known/openid-configuration", self.openid_configuration),
            Route("/fhir/.well-known/smart-configuration", self.smart_configuration),
            Route("/oauth/jwks", self.jwks),
            Route("/oauth/authorize", self.authorize, methods=["GET", "POST"]),
            Route("/oauth/patient", self.patient_choice, methods=["GET", "POST"]),
            Route("/oauth/autoriser", self.approve, methods=["POST"]),
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/oauth/introspect", self.introspect, methods=["POST"]),
            Route("/oauth/revoke", self.revoke, methods=["POST"]),
            Route("/oauth/userinfo", self.userinfo, methods=["GET", "POST"]),
            Route("/oauth/logout", self.logout, methods=["GET", "POST"]),
            Route("/connexion", self.login_page, methods=["GET", "POST"]),
            Route("/connexion/code", self.second_factor_page, methods=["POST"]),
            Route("/compte/mot-de-passe-oublie", self.forgotten_password, methods=["GET", "POST"]),
            Route("/compte/reinitialiser", self.reset_password, methods=["GET", "POST"]),
        ]

    # -- discovery ---------------------------------------------------------------------------------

    async def openid_configuration(self, _: Request) -> Response:
        return JSONResponse(self.server.openid_configuration())

    async def smart_configuration(self, _: Request) -> Response:
        return JSONResponse(self.server.smart_configuration())

    async def jwks(self, _: Request) -> Response:
        return JSONResponse(await self.server.keys.jwks(), headers={"Cache-Control": "public, max-age=300"})

    # -- session -----------------------------------------------------------------------------------

    async def session(self, request: Request) -> SessionData | None:
        sid = request.cookies.get(SESSION_COOKIE)
        if not sid:
            return None
        data = await self.kv.get("session", sid)
        if data is None:
            return None
        subject = subject_from_json(data["subject"]) if data.get("subject") else None
        if subject is not None and data.get("generation") != await session_generation(
            self.kv, subject.account_id
        ):
            # the account's sessions were ended (a change of password) after this one began
            await self.kv.delete("session", sid)
            return None
        return SessionData(sid, data["csrf"], subject, data.get("pending_account"))

    async def _new_session(self, subject: Subject | None, pending_account: str | None = None) -> SessionData:
        sid = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        record: dict[str, Any] = {"csrf": csrf, "pending_account": pending_account, "subject": None}
        if subject is not None:
            record["subject"] = subject_to_json(subject)
            record["generation"] = await session_generation(self.kv, subject.account_id)
        await self.kv.put("session", sid, record, expires_us=self.clock() + SESSION_TTL_US)
        return SessionData(sid, csrf, subject, pending_account)

    async def renew_session(self, session: SessionData) -> SessionData:
        """A new session for the same signed-in person, under the account's current generation,
        the old one deleted: after the holder ended their sessions (a change of password), the
        browser at hand stays signed in. Set its cookie with :meth:`set_cookie`."""
        assert session.subject is not None
        await self.kv.delete("session", session.session_id)
        return await self._new_session(session.subject)

    def set_cookie(self, response: Response, session: SessionData) -> Response:
        """Put the session's cookie on ``response``."""
        return self._set_cookie(response, session)

    def _set_cookie(self, response: Response, session: SessionData) -> Response:
        response.set_cookie(
            SESSION_COOKIE,
            session.session_id,
            httponly=True,
            samesite="lax",
            secure=self.secure_cookie,
            path="/",
        )
        return response

    async def _ensure_session(self, request: Request) -> SessionData:
        return await self.session(request) or await self._new_session(None)

    @staticmethod
    async def _form(request: Request) -> dict[str, str]:
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}

    # -- authorize ---------------------------------------------------------------------------------

    async def _params(self, request: Request) -> dict[str, str]:
        if request.method == "POST":
            return await self._form(request)
        return dict(request.query_params)

    async def authorize(self, request: Request) -> Response:
        params = await self._params(request)
        try:
            authz = await self.server.validate_authorize(params)
        except OAuthError as error:
            return self._authorize_error(params, error)
        suite = secrets.token_urlsafe(18)
        await self.kv.put("authz", suite, {"params": params}, expires_us=self.clock() + PENDING_TTL_US)
        session = await self.session(request)
        if session is None or session.subject is None:
            return RedirectResponse(f"/connexion?{urlencode({'suite': suite})}", status_code=303)
        return await self._continue(request, session, suite, authz)

    def _authorize_error(self, params: dict[str, str], error: OAuthError) -> Response:
        if error.redirect and params.get("redirect_uri"):
            sep = "&" if "?" in params["redirect_uri"] else "?"
            query = urlencode({**error.body(), "state": params.get("state", "")})
            return RedirectResponse(f"{params['redirect_uri']}{sep}{query}", status_code=303)
        return render(
            "message.html",
            status=400,
            title="Demande refusée",
            heading="Cette demande d’autorisation n’est pas valide",
            message=error.description,
        )

    async def _pending(self, suite: str) -> AuthorizeRequest | None:
        record = await self.kv.get("authz", suite)
        if record is None:
            return None
        try:
            return await self.server.validate_authorize(record["params"])
        except OAuthError:
            return None

    async def _continue(
        self,
        request: Request,
        session: SessionData,
        suite: str,
        authz: AuthorizeRequest,
        patient: str | None = None,
    ) -> Response:
        assert session.subject is not None
        try:
            self.server.check_launch_subject(authz, session.subject)
        except OAuthError as error:
            await self.kv.delete("authz", suite)
            return self._authorize_error({"redirect_uri": authz.redirect_uri, "state": authz.state}, error)
        if authz.needs_patient_choice and session.subject.kind != "citizen" and patient is None:
            return self._set_cookie(
                render(
                    "choix_patient.html",
                    title="Choisir le patient",
                    app_name=authz.client.name,
                    suite=suite,
                    q="",
                    patients=[],
                    csrf=session.csrf,
                ),
                session,
            )
        if patient is None and authz.launch is not None:
            patient = authz.launch.patient
        if patient is None and session.subject.kind == "citizen":
            patient = session.subject.patient
        return self._set_cookie(await self._consent_page(session, suite, authz, patient), session)

    async def _consent_page(
        self,
        session: SessionData,
        suite: str,
        authz: AuthorizeRequest,
        patient: str | None,
        *,
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        """The one consent screen, the same for every app (CNNum 13): who publishes it, its
        evaluation status, what it will read and write, why, and for how long — each part may be
        refused."""
        assert session.subject is not None
        reads = [s for s in authz.scopes.resources if {"r", "s"} & s.permissions]
        writes = [s for s in authz.scopes.resources if {"c", "u", "d"} & s.permissions]
        items = [
            {"scope": s.text, "label": scope_label(s), "writes": s in writes} for s in authz.scopes.resources
        ]
        items += [{"scope": o, "label": scope_label(o), "writes": False} for o in sorted(authz.scopes.others)]
        label = await self.patients.label(session.subject, patient) if patient else None
        about = (
            await self.consent_screen.describe(authz.client.client_id)
            if self.consent_screen is not None
            else None
        )
        return render(
            "consentement.html",
            status=status,
            title="Autoriser une application",
            app_name=authz.client.name,
            suite=suite,
            items=items,
            reads=bool(reads),
            writes=bool(writes),
            about=about,
            error=error,
            csrf=session.csrf,
            patient=patient,
            patient_label=label,
            professional=session.subject.kind == "professional",
        )

    async def patient_choice(self, request: Request) -> Response:
        session = await self.session(request)
        if request.method == "GET":
            suite = request.query_params.get("suite", "")
            authz = await self._pending(suite)
            if session is None or session.subject is None or authz is None:
                return _expired()
            q = request.query_params.get("q", "").strip()
            found = await self.patients.find(session.subject, q) if q else []
            return render(
                "choix_patient.html",
                title="Choisir le patient",
                app_name=authz.client.name,
                suite=suite,
                q=q,
                patients=[{"id": i, "label": label} for i, label in found],
                csrf=session.csrf,
            )
        form = await self._form(request)
        if (
            session is None
            or session.subject is None
            or not secrets.compare_digest(form.get("csrf", ""), session.csrf)
        ):
            return _expired()
        authz = await self._pending(form.get("suite", ""))
        if authz is None:
            return _expired()
        patient = form.get("patient", "")
        if not patient or await self.patients.label(session.subject, patient) is None:
            return _expired()
        return await self._continue(request, session, form.get("suite", ""), authz, patient=patient)

    async def approve(self, request: Request) -> Response:
        form = await self._form(request)
        session = await self.session(request)
        if (
            session is None
            or session.subject is None
            or not secrets.compare_digest(form.get("csrf", ""), session.csrf)
        ):
            return _expired()
        suite = form.get("suite", "")
        authz = await self._pending(suite)
        if authz is None:
            return _expired()
        pending = await self.kv.take("authz", suite)  # one decision per request, whatever the clicks
        if pending is None:
            return _expired()
        if form.get("decision") != "accepter":
            return RedirectResponse(
                authz.redirect_with({"error": "access_denied", "error_description": "la personne a refusé"}),
                status_code=303,
            )
        chosen = (await request.form()).getlist("portee")
        approved = parse_scopes(" ".join(str(c) for c in chosen))
        patient = form.get("patient") or None
        if (
            patient
            and authz.needs_patient_choice
            and await self.patients.label(session.subject, patient) is None
        ):
            return _expired()
        family = secrets.token_urlsafe(16)
        until: int | None = None
        if self.consent_screen is not None:
            about = await self.consent_screen.describe(authz.client.client_id)
            allowed = {str(days): days for days, _ in about["durations"]}
            # no choice sent (a form without the field): the screen's preselected duration
            days = allowed.get(form.get("duree") or str(about["default_days"]))
            if days is None:
                # an unknown duration: shown again, with the request kept for a second try
                await self.kv.put("authz", suite, pending, expires_us=self.clock() + PENDING_TTL_US)
                return self._set_cookie(
                    await self._consent_page(
                        session,
                        suite,
                        authz,
                        patient,
                        error="Choisissez pour combien de temps vous autorisez l’application.",
                        status=400,
                    ),
                    session,
                )
            until = self.clock() + days * 86_400 * 1_000_000
            granted = self.server.granted(authz, approved)
            context_patient = self.server.context_patient(authz, session.subject, granted, patient)
            if (
                session.subject.kind == "citizen"
                and context_patient
                and any(s.context == "patient" for s in granted.resources)
            ):
                from hygie.web.portal.door import PortalError  # noqa: PLC0415

                try:
                    await self.consent_screen.consents.record(
                        account_id=session.subject.account_id,
                        patient=context_patient,
                        client_id=authz.client.client_id,
                        app_name=authz.client.name,
                        scopes=granted,
                        family=family,
                        until_us=until,
                    )
                except PortalError as error:
                    return render(
                        "message.html",
                        status=error.status,
                        title="Autorisation impossible",
                        message=f"Votre accord n’a pas pu être enregistré dans votre dossier : {error.message} "
                        "L’application n’a reçu aucun accès.",
                    )
        try:
            url = await self.server.issue_code(
                authz, session.subject, approved=approved, patient=patient, family=family, until_us=until
            )
        except OAuthError as error:
            return self._authorize_error({"redirect_uri": authz.redirect_uri, "state": authz.state}, error)
        return RedirectResponse(url, status_code=303)

    # -- sign-in -----------------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        if request.method == "GET":
            suite = request.query_params.get("suite", "")
            authz = await self._pending(suite) if suite else None
            session = await self._ensure_session(request)
            return self._set_cookie(
                render(
                    "connexion.html",
                    title="Se connecter",
                    csrf=session.csrf,
                    suite=suite,
                    retour=local_path(request.query_params.get("retour", "")),
                    login="",
                    app_name=authz.client.name if authz else None,
                    providers=self.providers,
                ),
                session,
            )
        form = await self._form(request)
        current = await self.session(request)
        suite = form.get("suite", "")
        retour = local_path(form.get("retour", ""))
        login = form.get("identifiant", "").strip()
        if current is None or not secrets.compare_digest(form.get("csrf", ""), current.csrf):
            return _expired()
        session = current
        client_ip = request.client.host if request.client else "?"
        outcome = await self.accounts.login(login, form.get("mot_de_passe", ""), client_ip)
        if outcome.delay_s:
            await asyncio.sleep(min(outcome.delay_s, 8.0))
        if outcome.subject is None and outcome.second_factor_for is None:
            return self._set_cookie(
                render(
                    "connexion.html",
                    status=401,
                    title="Se connecter",
                    csrf=session.csrf,
                    suite=suite,
                    retour=retour,
                    login=login,
                    error=outcome.message,
                    providers=self.providers,
                ),
                session,
            )
        if outcome.second_factor_for is not None:
            pending = await self._new_session(None, pending_account=outcome.second_factor_for)
            return self._set_cookie(
                render(
                    "second_facteur.html",
                    title="Code de vérification",
                    csrf=pending.csrf,
                    suite=suite,
                    retour=retour,
                ),
                pending,
            )
        assert outcome.subject is not None
        return await self._signed_in(outcome.subject, suite, retour)

    # -- forgotten password ------------------------------------------------------------------------

    async def forgotten_password(self, request: Request) -> Response:
        """``/compte/mot-de-passe-oublie``: the login, then the same neutral answer whether an
        account exists or not (:meth:`Accounts.start_password_reset` sends the link)."""
        session = await self._ensure_session(request)
        if request.method == "GET":
            return self._set_cookie(
                render("mot_de_passe_oublie.html", title="Mot de passe oublié", csrf=session.csrf, login=""),
                session,
            )
        form = await self._form(request)
        current = await self.session(request)
        if current is None or not secrets.compare_digest(form.get("csrf", ""), current.csrf):
            return _expired()
        login = form.get("identifiant", "").strip()
        if not login:
            return self._set_cookie(
                render(
                    "mot_de_passe_oublie.html",
                    status=422,
                    title="Mot de passe oublié",
                    csrf=current.csrf,
                    login=login,
                    error="Saisissez l’adresse électronique de votre compte.",
                ),
                current,
            )
        await self.accounts.start_password_reset(login[:320], self.server.issuer)
        return render(
            "message.html",
            title="Lien envoyé",
            heading="Consultez votre messagerie",
            message=(
                "Si un compte existe pour cette adresse, un courriel vient de lui être envoyé avec un lien "
                "pour choisir un nouveau mot de passe. Le lien est valable 30 minutes et ne sert qu’une fois. "
                "Rien reçu ? Vérifiez les courriers indésirables, ou recommencez dans une minute."
            ),
            back="/connexion",
        )

    async def reset_password(self, request: Request) -> Response:
        """``/compte/reinitialiser?jeton=…``: a new password through the link of the e-mail; a
        password the rules refuse keeps the link usable, anything else wrong with it says so."""
        session = await self._ensure_session(request)
        if request.method == "GET":
            return self._set_cookie(
                render(
                    "reinitialiser.html",
                    title="Nouveau mot de passe",
                    csrf=session.csrf,
                    jeton=request.query_params.get("jeton", "")[:200],
                    min_length=MIN_LENGTH,
                    errors={},
                ),
                session,
            )
        form = await self._form(request)
        current = await self.session(request)
        if current is None or not secrets.compare_digest(form.get("csrf", ""), current.csrf):
            return _expired()
        token = form.get("jeton", "")[:200]
        password = form.get("nouveau_mot_de_passe", "")
        errors: dict[str, str] = {}
        if not password:
            errors["nouveau_mot_de_passe"] = "Choisissez un nouveau mot de passe."
        elif password != form.get("confirmation", ""):
            errors["confirmation"] = "Les deux mots de passe ne sont pas identiques."
        if not errors:
            try:
                await self.accounts.complete_password_reset(token, password)
            except PasswordRejected as error:
                errors["nouveau_mot_de_passe"] = " ".join(error.messages)
            except InvalidResetLink as error:
                return render(
                    "message.html",
                    status=400,
                    title="Lien expiré",
                    heading="Ce lien ne fonctionne plus",
                    message=" ".join(error.messages)
                    + " Demandez un nouveau lien depuis « Mot de passe oublié ? ».",
                    back="/compte/mot-de-passe-oublie",
                )
        if errors:
            return self._set_cookie(
                render(
                    "reinitialiser.html",
                    status=422,
                    title="Nouveau mot de passe",
                    csrf=current.csrf,
                    jeton=token,
                    min_length=MIN_LENGTH,
                    errors=errors,
                ),
                current,
            )
        return render(
            "message.html",
            title="Mot de passe changé",
            heading="Votre mot de passe est changé",
            message="Vous pouvez vous connecter avec votre nouveau mot de passe. "
            "Vos autres connexions en cours ont été fermées.",
            back="/connexion",
        )

    async def second_factor_page(self, request: Request) -> Response:
        form = await self._form(request)
        session = await self.session(request)
        suite = form.get("suite", "")
        retour = local_path(form.get("retour", ""))
        if (
            session is None
            or session.pending_account is None
            or not secrets.compare_digest(form.get("csrf", ""), session.csrf)
        ):
            return _expired()
        subject = await self.accounts.second_factor(session.pending_account, form.get("code", "").strip())
        if subject is None:
            return self._set_cookie(
                render(
                    "second_facteur.html",
                    status=401,
                    title="Code de vérification",
                    csrf=session.csrf,
                    suite=suite,
                    retour=retour,
                    error="Ce code n’est pas valide ou a déjà servi. Attendez le suivant.",
                ),
                session,
            )
        await self.kv.delete("session", session.session_id)
        return await self._signed_in(subject, suite, retour)

    async def _signed_in(self, subject: Subject, suite: str, retour: str = "") -> Response:
        # a new session id at each sign-in (no session fixation); back to the pending request,
        # else to the page that asked for the sign-in, else to the person's portal
        session = await self._new_session(subject)
        record = await self.kv.get("authz", suite) if suite else None
        if record:
            target = f"/oauth/authorize?{urlencode(record['params'])}"
        else:
            target = retour or HOME_OF.get(subject.kind, "/")
        return self._set_cookie(RedirectResponse(target, status_code=303), session)

    async def logout(self, request: Request) -> Response:
        session = await self.session(request)
        if session is not None:
            await self.kv.delete("session", session.session_id)
        target = request.query_params.get("post_logout_redirect_uri")
        response: Response
        if target and await self._known_redirect(target):
            response = RedirectResponse(target, status_code=303)
        else:
            response = render(
                "message.html",
                title="Déconnexion",
                heading="Vous êtes déconnecté",
                message="Votre session est fermée.",
                level="success",
                back="/",
            )
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def _known_redirect(self, uri: str) -> bool:
        return any(uri in client.get("redirect_uris", []) for _, client in await self.kv.list("client"))

    # -- token endpoints ---------------------------------------------------------------------------

    async def _oauth_json(
        self, request: Request, action: Callable[[dict[str, str], str | None], Awaitable[Any]]
    ) -> Response:
        form = await self._form(request)
        try:
            body = await action(form, request.headers.get("authorization"))
        except OAuthError as error:
            headers = dict(_NO_STORE)
            if error.status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="hygie"'
            return JSONResponse(error.body(), status_code=error.status, headers=headers)
        if body is None:
            return Response(status_code=200, headers=_NO_STORE)
        return JSONResponse(body, headers=_NO_STORE)

    async def token(self, request: Request) -> Response:
        return await self._oauth_json(request, self.server.token)

    async def introspect(self, request: Request) -> Response:
        return await self._oauth_json(request, self.server.introspect)

    async def revoke(self, request: Request) -> Response:
        return await self._oauth_json(request, self.server.revoke)

    async def userinfo(self, request: Request) -> Response:
        try:
            info = await self.server.userinfo(request.headers.get("authorization"))
        except InvalidToken as exc:
            return JSONResponse(
                {"error": "invalid_token", "error_description": str(exc)},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return JSONResponse(info, headers=_NO_STORE)


def _expired() -> Response:
    return render(
        "message.html",
        status=400,
        title="Session expirée",
        heading="Cette étape n’est plus valide",
        message="La page a expiré ou a déjà été utilisée. Recommencez depuis l’application.",
    )
