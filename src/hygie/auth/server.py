"""The OAuth 2 / OpenID Connect / SMART authorisation server, framework-free.

Flows (``web/oauth.py`` carries them over HTTP and renders the sign-in pages):

* **authorization code with PKCE (S256 only)** — :meth:`AuthorizationServer.validate_authorize`
  checks the request (client, exact redirect URI, scopes narrowed to the registration, PKCE,
  SMART ``aud`` and ``launch``); once the user is signed in and has approved,
  :meth:`issue_code` returns the redirect with a single-use code (60 s);
  :meth:`token` exchanges it (verifier, redirect URI and client must match; a reused code
  revokes what it produced);
* **refresh tokens with rotation and reuse detection** — each use returns a new refresh token;
  presenting a used one revokes the whole grant (every token of its family);
* **client credentials with private_key_jwt** (SMART Backend Services);
* introspection (RFC 7662), revocation (RFC 7009), userinfo, and EHR launch contexts.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from hygie.auth import pkce
from hygie.auth.clients import Client, ClientRegistry
from hygie.auth.errors import OAuthError
from hygie.auth.keys import ALGORITHM, SigningKeys
from hygie.auth.scopes import InvalidScope, ScopeSet, parse_scopes
from hygie.auth.tokens import AccessToken, InvalidToken, TokenService
from hygie.ports import KeyValueStore

__all__ = [
    "AppGrant",
    "AuthorizationServer",
    "AuthorizeRequest",
    "LaunchContext",
    "Subject",
    "subject_from_json",
    "subject_to_json",
]

CODE_TTL_US = 60 * 1_000_000
LAUNCH_TTL_US = 10 * 60 * 1_000_000
REFRESH_TTL_US = 30 * 24 * 3600 * 1_000_000
_CODE, _CODE_USED, _REFRESH, _REFRESH_USED, _LAUNCH = "code", "code_used", "refresh", "refresh_used", "launch"
_GRANTS = "oauth_grants:"  # + account id: that person's grants to apps, by family


@dataclass(frozen=True, slots=True)
class AppGrant:
    """What a person let an app do: one grant (a token family), from sign-in until revoked."""

    family: str
    client_id: str
    scope: str
    patient: str | None
    created_us: int
    last_used_us: int
    until_us: int | None = None  # the end the person chose (None: until revoked)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Subject:
    """The signed-in person a grant is for."""

    account_id: str
    kind: str  # citizen | professional | operator
    fhir_user: str | None = None  # Patient/… or Practitioner/…
    patient: str | None = None  # a citizen's own Patient id
    name: str | None = None
    auth_time: int = 0
    acr: str | None = None
    amr: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LaunchContext:
    patient: str | None = None
    encounter: str | None = None
    fhir_context: tuple[dict[str, Any], ...] = ()
    need_patient_banner: bool = True
    smart_style_url: str | None = None
    intent: str | None = None


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    client: Client
    redirect_uri: str
    scopes: ScopeSet
    state: str
    code_challenge: str
    nonce: str | None = None
    launch: LaunchContext | None = None
    launch_id: str | None = None
    launch_account: str | None = None  # the person the EHR launch was made for
    needs_patient_choice: bool = False  # standalone launch asking launch/patient
    extra: dict[str, str] = field(default_factory=dict)

    def redirect_with(self, params: Mapping[str, str]) -> str:
        sep = "&" if "?" in self.redirect_uri else "?"
        return f"{self.redirect_uri}{sep}{urlencode({**params, 'state': self.state})}"


class AuthorizationServer:
    def __init__(
        self,
        kv: KeyValueStore,
        *,
        issuer: str,
        fhir_base: str,
        clock: Callable[[], int],
        access_lifetime_s: int = 3600,
        smart_style_url: str | None = None,
    ) -> None:
        self.kv = kv
        self.issuer = issuer.rstrip("/")
        self.fhir_base = fhir_base.rstrip("/")
        self.clock = clock
        self.clients = ClientRegistry(kv, clock)
        self.keys = SigningKeys(kv, clock)
        self.smart_style_url = smart_style_url
        self.tokens = TokenService(
            kv,
            self.keys,
            issuer=self.issuer,
            audience=self.fhir_base,
            clock=clock,
            client_active=self._client_active,
            lifetime_s=access_lifetime_s,
        )
        self.clients.status_listeners.append(self.tokens.forget_client)

    # -- endpoints -------------------------------------------------------------------------------

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/oauth/token"

    def endpoints(self) -> dict[str, str]:
        return {
            "authorization_endpoint": f"{self.issuer}/oauth/authorize",
            "token_endpoint": self.token_url,
            "introspection_endpoint": f"{self.issuer}/oauth/introspect",
            "revocation_endpoint": f"{self.issuer}/oauth/revoke",
            "userinfo_endpoint": f"{self.issuer}/oauth/userinfo",
            "end_session_endpoint": f"{self.issuer}/oauth/logout",
            "jwks_uri": f"{self.issuer}/oauth/jwks",
        }

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            **self.endpoints(),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [
                "none",
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384", "RS256", "ES256"],
            "scopes_supported": [
                "openid",
                "fhirUser",
                "profile",
                "launch",
                "launch/patient",
                "offline_access",
                "online_access",
            ],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "acr",
                "amr",
                "fhirUser",
                "name",
            ],
            "acr_values_supported": ["eidas1", "eidas2", "eidas3"],
        }

    def smart_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/oauth/jwks",
            "authorization_endpoint": f"{self.issuer}/oauth/authorize",
            "token_endpoint": self.token_url,
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
            "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
            "scopes_supported": [
                "openid",
                "fhirUser",
                "profile",
                "launch",
                "launch/patient",
                "offline_access",
                "online_access",
                "patient/*.rs",
                "patient/*.cruds",
                "user/*.rs",
                "user/*.cruds",
                "system/*.rs",
                "system/*.cruds",
            ],
            "response_types_supported": ["code"],
            "introspection_endpoint": f"{self.issuer}/oauth/introspect",
            "revocation_endpoint": f"{self.issuer}/oauth/revoke",
            "code_challenge_methods_supported": ["S256"],
            "capabilities": [
                "launch-ehr",
                "launch-standalone",
                "client-public",
                "client-confidential-symmetric",
                "client-confidential-asymmetric",
                "sso-openid-connect",
                "context-banner",
                "context-style",
                "context-ehr-patient",
                "context-ehr-encounter",
                "context-standalone-patient",
                "permission-offline",
                "permission-online",
                "permission-patient",
                "permission-user",
                "permission-v1",
                "permission-v2",
                "authorize-post",
            ],
        }

    # -- launch ------------------------------------------------------------------------------------

    async def create_launch(
        self, context: LaunchContext, *, account_id: str, client_id: str | None = None
    ) -> str:
        """An opaque EHR launch token carrying the patient/encounter context (10 minutes).

        It is bound to the person the portal launched the app for — nobody else's sign-in can use
        it (:meth:`check_launch_subject`) — and, with ``client_id``, to that app alone: a launch
        token leaked to another app opens nothing."""
        launch_id = secrets.token_urlsafe(24)
        await self.kv.put(
            _LAUNCH,
            launch_id,
            {
                "account_id": account_id,
                "client_id": client_id,
                "patient": context.patient,
                "encounter": context.encounter,
                "fhir_context": list(context.fhir_context),
                "need_patient_banner": context.need_patient_banner,
                "smart_style_url": context.smart_style_url,
                "intent": context.intent,
            },
            expires_us=self.clock() + LAUNCH_TTL_US,
        )
        return launch_id

    # -- authorize ---------------------------------------------------------------------------------

    async def validate_authorize(self, params: Mapping[str, str]) -> AuthorizeRequest:
        client_id = params.get("client_id", "")
        client = await self.clients.get(client_id) if client_id else None
        if client is None or client.status != "active":
            raise OAuthError("invalid_request", "unknown or suspended client_id")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            # never redirect to an unregistered URI (RFC 6749 §4.1.2.1)
            raise OAuthError(
                "invalid_request", "redirect_uri does not match a registered redirect URI exactly"
            )
        state = params.get("state", "")
        if params.get("response_type") != "code":
            raise OAuthError(
                "unsupported_response_type", "only response_type=code is supported", redirect=bool(state)
            )
        method = params.get("code_challenge_method")
        challenge = params.get("code_challenge", "")
        if method != "S256" or not pkce.valid_challenge(challenge):
            raise OAuthError(
                "invalid_request", "PKCE is required with code_challenge_method=S256", redirect=True
            )
        try:
            requested = parse_scopes(params.get("scope", ""))
        except InvalidScope as exc:
            raise OAuthError("invalid_scope", str(exc), redirect=True) from exc
        granted = requested.narrow(parse_scopes(client.scope))
        aud = params.get("aud")
        if aud is not None and aud.rstrip("/") != self.fhir_base:
            raise OAuthError("invalid_request", "aud is not this FHIR server", redirect=True)
        launch: LaunchContext | None = None
        launch_account: str | None = None
        launch_id = params.get("launch")
        if launch_id:
            data = await self.kv.get(_LAUNCH, launch_id)
            if data is None:
                raise OAuthError("invalid_request", "unknown or expired launch", redirect=True)
            if data.get("client_id") not in (None, client.client_id):
                raise OAuthError("invalid_request", "this launch was made for another app", redirect=True)
            launch_account = str(data["account_id"]) if data.get("account_id") else None
            launch = LaunchContext(
                patient=data.get("patient"),
                encounter=data.get("encounter"),
                fhir_context=tuple(data.get("fhir_context") or ()),
                need_patient_banner=bool(data.get("need_patient_banner", True)),
                smart_style_url=data.get("smart_style_url"),
                intent=data.get("intent"),
            )
        needs_choice = launch is None and "launch/patient" in requested.others
        return AuthorizeRequest(
            client=client,
            redirect_uri=redirect_uri,
            scopes=granted,
            state=state,
            code_challenge=challenge,
            nonce=params.get("nonce"),
            launch=launch,
            launch_id=launch_id,
            launch_account=launch_account,
            needs_patient_choice=needs_choice,
        )

    @staticmethod
    def check_launch_subject(request: AuthorizeRequest, subject: Subject) -> None:
        """An EHR launch is for the person it was made for: another signed-in person (a shared
        workstation, a forwarded link) gets no code with its patient context."""
        if request.launch_account is not None and request.launch_account != subject.account_id:
            raise OAuthError("access_denied", "this launch was made for another person", redirect=True)

    @staticmethod
    def granted(request: AuthorizeRequest, approved: ScopeSet | None) -> ScopeSet:
        """What a grant gives: what the person approved, within what the request may have."""
        return approved.narrow(request.scopes) if approved is not None else request.scopes

    @staticmethod
    def context_patient(
        request: AuthorizeRequest, subject: Subject, scopes: ScopeSet, patient: str | None = None
    ) -> str | None:
        """The patient a grant is about: the one chosen, or the launch's, or — for a citizen's
        ``patient/`` scopes — the citizen themselves."""
        chosen = patient or (request.launch.patient if request.launch else None)
        if (
            chosen is None
            and subject.kind == "citizen"
            and any(s.context == "patient" for s in scopes.resources)
        ):
            return subject.patient
        return chosen

    async def issue_code(
        self,
        request: AuthorizeRequest,
        subject: Subject,
        *,
        approved: ScopeSet | None = None,
        patient: str | None = None,
        family: str | None = None,
        until_us: int | None = None,
    ) -> str:
        """Redirect URL carrying a fresh code for ``subject`` (after sign-in and approval).

        ``family`` names the grant (the consent it was recorded under); ``until_us`` ends it: no
        access token outlives it and no refresh works after it — the duration the person chose."""
        self.check_launch_subject(request, subject)
        scopes = self.granted(request, approved)
        context_patient = self.context_patient(request, subject, scopes, patient)
        code = secrets.token_urlsafe(32)
        launch = request.launch or LaunchContext()
        await self.kv.put(
            _CODE,
            _digest(code),
            {
                "client_id": request.client.client_id,
                "redirect_uri": request.redirect_uri,
                "scope": scopes.text,
                "challenge": request.code_challenge,
                "nonce": request.nonce,
                "subject": subject_to_json(subject),
                "patient": context_patient,
                "encounter": launch.encounter,
                "fhir_context": list(launch.fhir_context),
                "need_patient_banner": launch.need_patient_banner if request.launch else True,
                "smart_style_url": launch.smart_style_url or self.smart_style_url,
                "family": family or secrets.token_urlsafe(16),
                "until": until_us,
            },
            expires_us=self.clock() + CODE_TTL_US,
        )
        return request.redirect_with({"code": code})

    # -- token -------------------------------------------------------------------------------------

    async def token(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return await self._authorization_code(form, authorization)
        if grant == "refresh_token":
            return await self._refresh(form, authorization)
        if grant == "client_credentials":
            return await self._client_credentials(form, authorization)
        raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")

    async def _authorization_code(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        client = await self.clients.authenticate(form, authorization, self.token_url)
        code = form.get("code", "")
        key = _digest(code)
        data = await self.kv.take(_CODE, key)
        if data is None:
            used = await self.kv.get(_CODE_USED, key)
            if used is not None:
                await self.tokens.revoke_family(used["family"], self.clock() + REFRESH_TTL_US)
                raise OAuthError(
                    "invalid_grant", "authorization code already used; the tokens it gave are revoked"
                )
            raise OAuthError("invalid_grant", "unknown or expired authorization code")
        await self.kv.put(
            _CODE_USED, key, {"family": data["family"]}, expires_us=self.clock() + REFRESH_TTL_US
        )
        if data["client_id"] != client.client_id:
            raise OAuthError("invalid_grant", "the code was issued to another client")
        if form.get("redirect_uri") != data["redirect_uri"]:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        if not pkce.verify(form.get("code_verifier"), data["challenge"]):
            raise OAuthError("invalid_grant", "PKCE verification failed (code_verifier)")
        subject = subject_from_json(data["subject"])
        return await self._grant_response(client, subject, data, data["family"], issue_id_token=True)

    async def _grant_response(
        self, client: Client, subject: Subject, data: Mapping[str, Any], family: str, *, issue_id_token: bool
    ) -> dict[str, Any]:
        scopes = parse_scopes(data["scope"])
        fhir_user = subject.fhir_user
        until = data.get("until")
        left_s = (int(until) - self.clock()) // 1_000_000 if until else None
        if left_s is not None and left_s <= 0:
            raise OAuthError("invalid_grant", "the authorisation has ended (the duration the person chose)")
        await self._remember_grant(subject, client, data, family, scopes)
        access, life = await self.tokens.issue(
            subject=subject.account_id,
            client_id=client.client_id,
            kind=subject.kind,
            scope=scopes.text,
            patient=data.get("patient"),
            encounter=data.get("encounter"),
            fhir_user=fhir_user,
            family=family,
            lifetime_s=min(self.tokens.lifetime_s, left_s) if left_s is not None else None,
        )
        response: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": life,
            "scope": scopes.text,
        }
        if data.get("patient"):
            response["patient"] = data["patient"]
            response["need_patient_banner"] = bool(data.get("need_patient_banner", True))
        if data.get("encounter"):
            response["encounter"] = data["encounter"]
        if data.get("fhir_context"):
            response["fhirContext"] = data["fhir_context"]
        if data.get("smart_style_url"):
            response["smart_style_url"] = data["smart_style_url"]
        if issue_id_token and scopes.has("openid"):
            now = self.clock() // 1_000_000
            id_claims: dict[str, Any] = {
                "iss": self.issuer,
                "sub": subject.account_id,
                "aud": client.client_id,
                "iat": now,
                "exp": now + 3600,
                "auth_time": subject.auth_time or now,
            }
            if data.get("nonce"):
                id_claims["nonce"] = data["nonce"]
            if fhir_user and scopes.has("fhirUser"):
                id_claims["fhirUser"] = f"{self.fhir_base}/{fhir_user}"
            if subject.acr:
                id_claims["acr"] = subject.acr
            if subject.amr:
                id_claims["amr"] = list(subject.amr)
            if subject.name and scopes.has("profile"):
                id_claims["name"] = subject.name
            response["id_token"] = await self.tokens.sign_id_token(id_claims)
        if scopes.has("offline_access") or scopes.has("online_access"):
            refresh = secrets.token_urlsafe(32)
            await self.kv.put(
                _REFRESH,
                _digest(refresh),
                {
                    **{k: v for k, v in data.items() if k != "challenge"},
                    "client_id": client.client_id,
                    "scope": scopes.text,
                    "family": family,
                    "subject": subject_to_json(subject),
                },
                expires_us=self.clock() + REFRESH_TTL_US,
            )
            response["refresh_token"] = refresh
        return response

    async def _refresh(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        client = await self.clients.authenticate(form, authorization, self.token_url)
        token = form.get("refresh_token", "")
        key = _digest(token)
        data = await self.kv.take(_REFRESH, key)
        if data is None:
            used = await self.kv.get(_REFRESH_USED, key)
            if used is not None:
                # reuse of a rotated token: the grant is compromised, revoke all of it
                await self.tokens.revoke_family(used["family"], self.clock() + REFRESH_TTL_US)
                await self.kv.put(
                    "refresh_family_revoked", used["family"], {}, expires_us=self.clock() + REFRESH_TTL_US
                )
                raise OAuthError("invalid_grant", "refresh token reuse detected: the whole grant is revoked")
            raise OAuthError("invalid_grant", "unknown or expired refresh token")
        await self.kv.put(
            _REFRESH_USED, key, {"family": data["family"]}, expires_us=self.clock() + REFRESH_TTL_US
        )
        if data["client_id"] != client.client_id:
            raise OAuthError("invalid_grant", "the refresh token belongs to another client")
        if await self.kv.get("refresh_family_revoked", data["family"]) is not None:
            raise OAuthError("invalid_grant", "the grant was revoked")
        if form.get("scope"):
            try:
                wanted = parse_scopes(form["scope"])
            except InvalidScope as exc:
                raise OAuthError("invalid_scope", str(exc)) from exc
            original = parse_scopes(data["scope"])
            narrowed = wanted.narrow(original)
            if narrowed.text != wanted.text:
                raise OAuthError("invalid_scope", "a refresh may only ask for a subset of the granted scopes")
            data = {**data, "scope": narrowed.text}
        subject = subject_from_json(data["subject"])
        return await self._grant_response(client, subject, data, data["family"], issue_id_token=False)

    async def _client_credentials(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        client = await self.clients.authenticate(form, authorization, self.token_url)
        if client.auth_method != "private_key_jwt":
            raise OAuthError(
                "unauthorized_client", "client_credentials requires private_key_jwt (SMART Backend Services)"
            )
        try:
            requested = parse_scopes(form.get("scope", ""))
        except InvalidScope as exc:
            raise OAuthError("invalid_scope", str(exc)) from exc
        if any(s.context != "system" for s in requested.resources):
            raise OAuthError("invalid_scope", "backend services ask for system/ scopes only")
        granted = requested.narrow(parse_scopes(client.scope))
        if not granted.resources:
            raise OAuthError("invalid_scope", "none of the requested scopes is registered for this client")
        access, life = await self.tokens.issue(
            subject=client.client_id,
            client_id=client.client_id,
            kind="system",
            scope=granted.text,
            organization=client.organization,
            lifetime_s=300,
        )
        return {"access_token": access, "token_type": "Bearer", "expires_in": life, "scope": granted.text}

    async def service_token(self, client_id: str, scope: str | None, lifetime_s: int) -> dict[str, Any]:
        """A backend-service token issued by the operator (``hygie client token``) for a registered,
        active client: the same token client_credentials gives, without the signed assertion —
        for scripts and load tests on the operator's own machine. Scopes narrow to the client's."""
        client = await self.clients.get(client_id)
        if client is None or client.status != "active":
            raise OAuthError("invalid_client", f"no active client {client_id!r}")
        registered = parse_scopes(client.scope)
        try:
            requested = parse_scopes(scope) if scope else registered
        except InvalidScope as exc:
            raise OAuthError("invalid_scope", str(exc)) from exc
        granted = requested.narrow(registered)
        if not any(s.context == "system" for s in granted.resources):
            raise OAuthError(
                "invalid_scope", "a service token needs system/ scopes registered for the client"
            )
        access, life = await self.tokens.issue(
            subject=client.client_id,
            client_id=client.client_id,
            kind="system",
            scope=granted.text,
            organization=client.organization,
            lifetime_s=lifetime_s,
        )
        return {"access_token": access, "token_type": "Bearer", "expires_in": life, "scope": granted.text}

    # -- introspection, revocation, userinfo -------------------------------------------------------

    async def introspect(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        await self.clients.authenticate(form, authorization, self.token_url)
        token = form.get("token", "")
        try:
            access = await self.tokens.verify(token)
        except InvalidToken:
            refresh = await self.kv.get(_REFRESH, _digest(token))
            if refresh is None or await self.kv.get("refresh_family_revoked", refresh["family"]):
                return {"active": False}
            return {
                "active": True,
                "token_type": "refresh_token",
                "client_id": refresh["client_id"],
                "scope": refresh["scope"],
            }
        out: dict[str, Any] = {
            "active": True,
            "token_type": "Bearer",
            "client_id": access.client_id,
            "scope": access.scopes.text,
            "sub": access.subject,
            "exp": access.expires,
            "iss": self.issuer,
            "aud": self.fhir_base,
        }
        if access.patient:
            out["patient"] = access.patient
        if access.fhir_user:
            out["fhirUser"] = access.fhir_user
        if access.organization:
            out["organization"] = access.organization
        return out

    async def revoke(self, form: Mapping[str, str], authorization: str | None) -> None:
        """RFC 7009: revoking an unknown token is not an error; a refresh token revokes its grant."""
        client = await self.clients.authenticate(form, authorization, self.token_url)
        token = form.get("token", "")
        refresh = await self.kv.get(_REFRESH, _digest(token))
        if refresh is not None:
            if refresh["client_id"] == client.client_id:
                await self.kv.delete(_REFRESH, _digest(token))
                await self.tokens.revoke_family(refresh["family"], self.clock() + REFRESH_TTL_US)
                await self.kv.put(
                    "refresh_family_revoked", refresh["family"], {}, expires_us=self.clock() + REFRESH_TTL_US
                )
            return
        try:
            access = await self.tokens.verify(token)
        except InvalidToken:
            return
        if access.client_id == client.client_id:
            await self.tokens.revoke_token(access.jti, access.expires)

    # -- a person's grants to apps ------------------------------------------------------------

    async def _remember_grant(
        self, subject: Subject, client: Client, data: Mapping[str, Any], family: str, scopes: ScopeSet
    ) -> None:
        """Keep the grant under its person, so that they can list and revoke it (refreshes too)."""
        now = self.clock()
        kind = _GRANTS + subject.account_id
        known = await self.kv.get(kind, family)
        lasts = REFRESH_TTL_US if scopes.has("offline_access") or scopes.has("online_access") else 0
        await self.kv.put(
            kind,
            family,
            {
                "client_id": client.client_id,
                "scope": scopes.text,
                "patient": data.get("patient"),
                "created": known["created"] if known else now,
                "last_used": now,
                "until": data.get("until"),
            },
            expires_us=min(
                now + max(lasts, self.tokens.lifetime_s * 1_000_000), int(data.get("until") or 2**62)
            ),
        )

    async def grants_of(self, account_id: str) -> list[AppGrant]:
        """The live grants a person gave to apps, newest first."""
        grants = []
        for family, value in await self.kv.list(_GRANTS + account_id):
            if await self.kv.get("refresh_family_revoked", family) is not None:
                continue
            grants.append(
                AppGrant(
                    family,
                    str(value["client_id"]),
                    str(value["scope"]),
                    value.get("patient"),
                    int(value["created"]),
                    int(value["last_used"]),
                    int(value["until"]) if value.get("until") else None,
                )
            )
        return sorted(grants, key=lambda g: g.last_used_us, reverse=True)

    async def revoke_grant(self, account_id: str, family: str) -> bool:
        """The person withdraws a grant: its refresh and access tokens stop working at once.
        False when the grant is not theirs (or no longer exists)."""
        kind = _GRANTS + account_id
        if await self.kv.get(kind, family) is None:
            return False
        until = self.clock() + REFRESH_TTL_US
        await self.tokens.revoke_family(family, until)
        await self.kv.put("refresh_family_revoked", family, {}, expires_us=until)
        await self.kv.delete(kind, family)
        return True

    async def revoke_grants_of_client(self, client_id: str) -> None:
        """Used when a client is suspended: its tokens stop working (TokenService checks status)."""
        await self.clients.set_status(client_id, "suspended")

    async def bearer(self, authorization: str | None) -> AccessToken:
        """The access token of an ``Authorization: Bearer`` header (raises InvalidToken)."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise InvalidToken("no bearer token")
        return await self.tokens.verify(authorization[7:].strip())

    async def userinfo(self, authorization: str | None) -> dict[str, Any]:
        access = await self.bearer(authorization)
        if not access.scopes.has("openid"):
            raise InvalidToken("the token was not granted the openid scope")
        info: dict[str, Any] = {"sub": access.subject}
        if access.fhir_user:
            info["fhirUser"] = f"{self.fhir_base}/{access.fhir_user}"
        return info

    async def _client_active(self, client_id: str) -> bool:
        client = await self.clients.get(client_id)
        return client is not None and client.status == "active"


def subject_to_json(subject: Subject) -> dict[str, Any]:
    return {
        "account_id": subject.account_id,
        "kind": subject.kind,
        "fhir_user": subject.fhir_user,
        "patient": subject.patient,
        "name": subject.name,
        "auth_time": subject.auth_time,
        "acr": subject.acr,
        "amr": list(subject.amr),
    }


def subject_from_json(data: Mapping[str, Any]) -> Subject:
    return Subject(
        account_id=data["account_id"],
        kind=data["kind"],
        fhir_user=data.get("fhir_user"),
        patient=data.get("patient"),
        name=data.get("name"),
        auth_time=int(data.get("auth_time") or 0),
        acr=data.get("acr"),
        amr=tuple(data.get("amr") or ()),
    )
