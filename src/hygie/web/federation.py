"""HTTP side of federated sign-in: ``/federation/{provider}`` and ``/federation/{provider}/retour``.

* ``GET /federation/{provider}?suite=…&retour=…`` — sends the browser to the provider with
  ``state``, ``nonce``, PKCE S256 and ``acr_values`` (``auth/federation.py``). What the return
  needs (nonce, verifier, the pending authorization ``suite``, and ``retour``, the portal page
  that asked for the sign-in — a local path only, ``local_path``) is kept server-side under the
  state for 10 minutes, never in the browser's hands; the state is also put in a cookie (HttpOnly, SameSite=Lax, path ``/federation/``)
  so that a return in another browser is refused (login CSRF).
* ``GET /federation/{provider}/retour`` — the state is taken once, the code exchanged and the
  ID token validated; the account is found by the linking rules; then the person is signed in
  exactly like a local sign-in (a new ``hygie_session``, back to the pending
  ``/oauth/authorize``, else to ``retour``, else to the person's portal), with ``acr`` from the ID token and ``amr = ["fed"]``. Any failure
  renders a French error page.

Register the routes with :func:`federation_routes` (``web/app.py``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from hygie.auth.federation import FederatedAccounts, FederationClient, FederationError, FederationProvider
from hygie.bootstrap import Runtime, clock_us
from hygie.web.oauth import OAuthWeb, local_path
from hygie.web.pages import render
from hygie.web.patient_picker import ServicePatientFinder

__all__ = ["FEDERATION_COOKIE", "FederationWeb", "federation_routes"]

log = logging.getLogger("hygie.auth.federation")

FEDERATION_COOKIE = "hygie_federation"
STATE_TTL_US = 10 * 60 * 1_000_000
_KV_KIND = "federation-state"


class FederationWeb:
    """The two federation endpoints for a list of providers."""

    def __init__(
        self,
        runtime: Runtime,
        providers: Sequence[FederationProvider],
        *,
        clients: dict[str, FederationClient] | None = None,
        clock: Callable[[], int] = clock_us,
    ) -> None:
        assert runtime.auth is not None and runtime.accounts is not None
        self.runtime = runtime
        self.kv = runtime.kv
        self.clock = clock
        self.base_url = runtime.settings.base_url.rstrip("/")
        self.providers = {p.name: p for p in providers}
        self.clients = clients or {p.name: FederationClient(p) for p in providers}
        self.linking = FederatedAccounts(runtime.accounts, runtime.service)
        # the sign-in session is OAuthWeb's own (same store, same cookie)
        self.oauth = OAuthWeb(
            runtime.auth, runtime.kv, runtime.sign_in, ServicePatientFinder(runtime.service), clock
        )
        self.secure_cookie = self.base_url.startswith("https://")

    def routes(self) -> list[Route]:
        """The two endpoints, to add to the application's routes."""
        return [
            Route("/federation/{provider}", self.start, methods=["GET"]),
            Route("/federation/{provider}/retour", self.finish, methods=["GET"]),
        ]

    def redirect_uri(self, provider: FederationProvider) -> str:
        """The URI registered at the provider for Hygie's return."""
        return f"{self.base_url}/federation/{provider.name}/retour"

    async def start(self, request: Request) -> Response:
        """``GET /federation/{provider}?suite=…&retour=…``: off to the provider."""
        provider = self.providers.get(request.path_params["provider"])
        if provider is None:
            return _error("Ce service d’identification n’est pas proposé.", status=404)
        suite = request.query_params.get("suite", "")
        retour = local_path(request.query_params.get("retour", ""))
        try:
            begun = await self.clients[provider.name].start(self.redirect_uri(provider))
        except FederationError as error:
            log.warning("federation %s: start failed: %s", provider.name, error)
            return _error(error.message, status=502, suite=suite, retour=retour)
        await self.kv.put(
            _KV_KIND,
            begun.state,
            {
                "provider": provider.name,
                "nonce": begun.nonce,
                "verifier": begun.verifier,
                "suite": suite,
                "retour": retour,
            },
            expires_us=self.clock() + STATE_TTL_US,
        )
        response = RedirectResponse(begun.url, status_code=303)
        response.set_cookie(
            FEDERATION_COOKIE,
            begun.state,
            max_age=STATE_TTL_US // 1_000_000,
            httponly=True,
            samesite="lax",
            secure=self.secure_cookie,
            path="/federation/",
        )
        return response

    async def finish(self, request: Request) -> Response:
        """``GET /federation/{provider}/retour``: validate, find the account, sign in."""
        provider = self.providers.get(request.path_params["provider"])
        if provider is None:
            return _error("Ce service d’identification n’est pas proposé.", status=404)
        params = dict(request.query_params)
        state = params.get("state", "")
        cookie = request.cookies.get(FEDERATION_COOKIE, "")
        pending = await self.kv.take(_KV_KIND, state) if state else None
        if (
            pending is None
            or pending.get("provider") != provider.name
            or not cookie
            or not secrets.compare_digest(cookie, state)
        ):
            return _forget(
                _error(
                    "Cette connexion a expiré ou a été ouverte dans un autre navigateur. Recommencez.",
                    status=400,
                )
            )
        suite = str(pending.get("suite") or "")
        retour = local_path(str(pending.get("retour") or ""))
        try:
            identity = await self.clients[provider.name].finish(
                params,
                redirect_uri=self.redirect_uri(provider),
                nonce=str(pending["nonce"]),
                verifier=str(pending["verifier"]),
            )
            subject = await self.linking.subject(provider, identity, now_s=self.clock() // 1_000_000)
        except FederationError as error:
            log.warning("federation %s: sign-in refused: %s", provider.name, error)
            return _forget(_error(error.message, status=403, suite=suite, retour=retour))
        log.info(
            "federation %s: account %s signed in (acr %s)", provider.name, subject.account_id, subject.acr
        )
        return _forget(await self.oauth._signed_in(subject, suite, retour))


def federation_routes(runtime: Runtime, providers: Sequence[FederationProvider]) -> list[Route]:
    """The federation routes for ``providers`` (none when the list is empty)."""
    if not providers:
        return []
    return FederationWeb(runtime, providers).routes()


def _forget(response: Response) -> Response:
    response.delete_cookie(FEDERATION_COOKIE, path="/federation/")
    return response


def _error(message: str, *, status: int, suite: str = "", retour: str = "") -> Response:
    """The French error page, with a link back to the sign-in page (and its pending request, or
    the page that asked for the sign-in)."""
    query = {k: v for k, v in (("suite", suite), ("retour", retour)) if v}
    return render(
        "message.html",
        status=status,
        title="Connexion impossible",
        heading="La connexion par un service d’identification a échoué",
        message=message,
        back=f"/connexion?{urlencode(query)}" if query else "/connexion",
    )
