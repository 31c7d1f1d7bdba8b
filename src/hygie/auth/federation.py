"""Sign-in through an external OpenID provider: FranceConnect-style (citizens) and Pro Santé
Connect-style (professionals) federation, framework-free.

``web/federation.py`` carries it over HTTP; this module holds the provider configuration, the
OpenID Connect relying-party steps and the rules that find (or link) the Hygie account.

Configuration
-------------
In production the providers come from the environment variable ``HYGIE_FEDERATION_PROVIDERS``,
a JSON list of objects (read by :func:`providers_from_env`)::

    [{"name": "franceconnect", "label": "S’identifier avec FranceConnect",
      "issuer": "https://fcp.integ01.dev-franceconnect.fr/api/v2",
      "client_id": "…", "client_secret": "…", "kind": "citizen",
      "scope": "openid identite_pivot", "acr_values": "eidas2",
      "token_auth_method": "client_secret_post"},
     {"name": "psc", "label": "Pro Santé Connect",
      "issuer": "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet",
      "discovery_url": "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet/.well-known/wallet-openid-configuration",
      "client_id": "…", "client_secret": "…", "kind": "professional",
      "scope": "openid scope_all", "acr_values": "eidas1"}]

Keys: ``name`` (URL segment ``/federation/{name}``, ``[a-z0-9-]+``), ``label`` (button text),
``issuer``, ``client_id``, ``client_secret``, ``kind`` (``citizen`` or ``professional``: which
linking rule applies) and, optional, ``scope`` (default ``openid``), ``acr_values``,
``token_auth_method`` (``client_secret_basic``, the default, or ``client_secret_post``),
``algorithms`` (ID token algorithms accepted, default RS256/PS256/ES256: asymmetric only,
checked against the provider's JWKS) and ``discovery_url`` (default
``{issuer}/.well-known/openid-configuration``).

The flow
--------
Authorization code with ``state``, ``nonce`` (both 43 characters, FranceConnect asks for at
least 32) and PKCE S256, plus ``acr_values`` when configured. The return is checked (the RFC
9207 ``iss`` parameter when present), the code is exchanged at the token endpoint, and the ID
token is validated with the provider's JWKS: signature and algorithm, ``iss``, ``aud`` (and
``azp`` with several audiences), ``exp``/``iat`` (60 s leeway) and ``nonce``. The identity claims
are then read at the userinfo endpoint (a JSON object, or a signed JWT as FranceConnect answers,
validated like the ID token); its ``sub`` must be the ID token's.

Linking rules (:class:`FederatedAccounts`)
----------------------------------------
1. An identity already linked — ``(iss, sub)`` found by ``AccountService.by_federated`` — signs
   that account in, if it is active and of the provider's kind.
2. Otherwise, for a **citizen** provider: the identity pivot (``family_name``, ``given_name``,
   ``birthdate``, ``gender``, ``birthplace``, or ``birthcountry`` for a person born abroad) is
   compared with the INS traits of the Patients born that day with that gender (FR Core form,
   ``traits_of``): birth name and the whole list of birth first names compared after
   ``normalize_name`` (accents, case, hyphens), gender and birth date equal, and the birth place
   code equal to ``birthplace`` (or to ``birthcountry`` when ``birthplace`` is empty). Exactly one
   Patient must match, and exactly one active citizen account must be linked to it.
3. For a **professional** provider: the IdNat_PS (``SubjectNameID``, else
   ``preferred_username``) is searched as a Practitioner identifier of system
   ``urn:oid:1.2.250.1.71.4.2.1``; exactly one Practitioner, and exactly one active professional
   account linked to it.
4. When rule 2 or 3 finds the account, ``(iss, sub)`` is linked to it, so the next sign-in uses
   rule 1 — unless the account's holder removed that identity ("Connexion et sécurité",
   ``Account.refused_federated``): then the sign-in is refused until they allow it again. Anything else is refused with a French message (:class:`FederationError`): there is no
   account creation here, and no "closest match".

The resulting :class:`~hygie.auth.server.Subject` is that of a local sign-in, with ``acr`` from
the ID token and ``amr = ["fed"]``.

HTTP goes through :class:`HttpFetch` (default: the standard library's ``urllib`` in a worker
thread), so the runtime needs no HTTP client package.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast
from urllib.parse import urlencode, urlsplit

import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from hygie.auth import pkce
from hygie.auth.accounts import Account, AccountService, FederatedIdentityTaken
from hygie.auth.server import Subject
from hygie.auth.sign_in import subject_of
from hygie.domain.access import Caller
from hygie.domain.identity.fr_core import normalize_name, traits_of
from hygie.domain.identity.status import IdentityError
from hygie.fhir.interactions import FhirService
from hygie.fhir.outcome import FhirError
from hygie.fhir.request import FhirRequest
from hygie.fhir.router import route

__all__ = [
    "IDNAT_PS_SYSTEM",
    "FederatedAccounts",
    "FederatedIdentity",
    "FederationClient",
    "FederationError",
    "FederationProvider",
    "HttpFetch",
    "HttpResponse",
    "UrllibFetch",
    "parse_providers",
    "providers_from_env",
]

IDNAT_PS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
ENV_VAR = "HYGIE_FEDERATION_PROVIDERS"
LEEWAY_S = 60
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_DEFAULT_ALGORITHMS = ("RS256", "PS256", "ES256")
_ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})

ProviderKind = Literal["citizen", "professional"]
TokenAuthMethod = Literal["client_secret_basic", "client_secret_post"]


class FederationError(Exception):
    """A refused federated sign-in; ``message`` is for the person, in French."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        self.message = message
        self.detail = detail  # for the logs, never shown
        super().__init__(f"{message} ({detail})" if detail else message)


# -- configuration --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FederationProvider:
    """One external OpenID provider (see the module docstring for the JSON form)."""

    name: str
    label: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    kind: ProviderKind
    scope: str = "openid"
    acr_values: str | None = None
    token_auth_method: TokenAuthMethod = "client_secret_basic"
    algorithms: tuple[str, ...] = _DEFAULT_ALGORITHMS
    discovery_url: str | None = None

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"provider name {self.name!r}: lower-case letters, digits and hyphens")
        if self.kind not in ("citizen", "professional"):
            raise ValueError(f"provider {self.name}: kind must be citizen or professional")
        if self.token_auth_method not in ("client_secret_basic", "client_secret_post"):
            raise ValueError(f"provider {self.name}: unsupported token_auth_method")
        if not set(self.algorithms) <= _ASYMMETRIC or not self.algorithms:
            raise ValueError(f"provider {self.name}: algorithms must be asymmetric (RS/PS/ES)")
        if "openid" not in self.scope.split():
            raise ValueError(f"provider {self.name}: the scope must contain openid")
        for url in (self.issuer, self.discovery_url or self.issuer):
            if urlsplit(url).scheme not in ("https", "http"):
                raise ValueError(f"provider {self.name}: {url!r} is not an http(s) URL")

    @property
    def metadata_url(self) -> str:
        return self.discovery_url or f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"


def parse_providers(text: str) -> list[FederationProvider]:
    """Providers from their JSON list (``HYGIE_FEDERATION_PROVIDERS``); raises ValueError."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{ENV_VAR} is not valid JSON: {exc}") from exc
    if not isinstance(raw, list):
        raise ValueError(f"{ENV_VAR} must be a JSON list of providers")  # noqa: TRY004 (one error type for bad configuration)
    providers = []
    for item in raw:
        if not isinstance(item, dict):
            raise ValueError(f"{ENV_VAR}: each provider is a JSON object")  # noqa: TRY004
        data = dict(item)
        if "algorithms" in data:
            data["algorithms"] = tuple(data["algorithms"])
        try:
            providers.append(FederationProvider(**data))
        except TypeError as exc:
            raise ValueError(f"{ENV_VAR}: {exc}") from exc
    names = [p.name for p in providers]
    if len(set(names)) != len(names):
        raise ValueError(f"{ENV_VAR}: provider names must be unique")
    return providers


def providers_from_env(environ: Mapping[str, str] | None = None) -> list[FederationProvider]:
    """The providers configured in ``HYGIE_FEDERATION_PROVIDERS`` (none when it is unset)."""
    text = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    return parse_providers(text) if text else []


# -- HTTP -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """An HTTP answer: status, ``Content-Type`` and body."""

    status: int
    content_type: str
    body: bytes


class HttpFetch(Protocol):
    """How the relying party speaks HTTP to the provider (discovery, JWKS, token, userinfo)."""

    async def __call__(
        self, method: str, url: str, *, headers: Mapping[str, str], data: bytes | None = None
    ) -> HttpResponse: ...


class UrllibFetch:
    """:class:`HttpFetch` on the standard library, in a worker thread (10 s timeout)."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s

    async def __call__(
        self, method: str, url: str, *, headers: Mapping[str, str], data: bytes | None = None
    ) -> HttpResponse:
        if urlsplit(url).scheme not in ("https", "http"):
            raise FederationError(_UNAVAILABLE, detail=f"refusing to fetch {url!r}")
        return await asyncio.to_thread(self._fetch, method, url, dict(headers), data)

    def _fetch(self, method: str, url: str, headers: dict[str, str], data: bytes | None) -> HttpResponse:
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return HttpResponse(
                    response.status, response.headers.get("Content-Type", ""), response.read()
                )
        except urllib.error.HTTPError as error:
            return HttpResponse(error.code, error.headers.get("Content-Type", ""), error.read())
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise FederationError(_UNAVAILABLE, detail=f"{url}: {error}") from error


_UNAVAILABLE = "Le service d’identification ne répond pas. Réessayez dans quelques minutes."
_REFUSED = "L’identification auprès du service externe a échoué. Recommencez la connexion."


# -- the relying party ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FederatedIdentity:
    """A person as the provider vouched for them: validated ID token and userinfo claims."""

    issuer: str
    subject: str
    acr: str | None
    auth_time: int | None
    claims: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AuthorizationStart:
    """What the web layer keeps (server-side) between the redirect and the return."""

    url: str
    state: str
    nonce: str
    verifier: str


class FederationClient:
    """The OpenID Connect relying party for one provider (metadata and keys are cached)."""

    def __init__(
        self,
        provider: FederationProvider,
        *,
        fetch: HttpFetch | None = None,
        clock_s: Callable[[], int] | None = None,
    ) -> None:
        self.provider = provider
        self.fetch: HttpFetch = fetch or UrllibFetch()
        self.clock_s = clock_s
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None

    async def _json(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        response = await self.fetch(
            method, url, headers={"Accept": "application/json", **kwargs.pop("headers", {})}, **kwargs
        )
        try:
            return response.status, json.loads(response.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FederationError(_REFUSED, detail=f"{url}: answer is not JSON ({response.status})") from exc

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document; its ``issuer`` must be the configured one."""
        if self._metadata is None:
            status, data = await self._json("GET", self.provider.metadata_url)
            if status != 200 or not isinstance(data, dict):
                raise FederationError(_UNAVAILABLE, detail=f"discovery answered {status}")
            if data.get("issuer") != self.provider.issuer:
                raise FederationError(_REFUSED, detail=f"discovery issuer {data.get('issuer')!r}")
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(data.get(key), str):
                    raise FederationError(_REFUSED, detail=f"discovery lacks {key}")
            self._metadata = data
        return self._metadata

    async def keys(self, *, refresh: bool = False) -> KeySet:
        """The provider's public keys (``jwks_uri``), fetched again with ``refresh``."""
        if self._keys is None or refresh:
            status, data = await self._json("GET", (await self.metadata())["jwks_uri"])
            if status != 200 or not isinstance(data, dict):
                raise FederationError(_UNAVAILABLE, detail=f"JWKS answered {status}")
            try:
                self._keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise FederationError(_REFUSED, detail=f"bad JWKS: {exc}") from exc
        return self._keys

    async def start(self, redirect_uri: str) -> AuthorizationStart:
        """The authorization URL with fresh ``state``, ``nonce`` and PKCE verifier."""
        endpoint = (await self.metadata())["authorization_endpoint"]
        state, nonce, verifier = (
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(48),
        )
        params = {
            "response_type": "code",
            "client_id": self.provider.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.provider.scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce.challenge_of(verifier),
            "code_challenge_method": "S256",
        }
        if self.provider.acr_values:
            params["acr_values"] = self.provider.acr_values
        sep = "&" if "?" in endpoint else "?"
        return AuthorizationStart(f"{endpoint}{sep}{urlencode(params)}", state, nonce, verifier)

    async def finish(
        self, params: Mapping[str, str], *, redirect_uri: str, nonce: str, verifier: str
    ) -> FederatedIdentity:
        """Check the authorization response, exchange the code, validate the tokens."""
        if params.get("error"):
            if params["error"] == "access_denied":
                raise FederationError("Vous avez annulé l’identification.", detail="access_denied")
            raise FederationError(_REFUSED, detail=f"provider error {params['error']}")
        if "iss" in params and params["iss"] != self.provider.issuer:  # RFC 9207 (mix-up)
            raise FederationError(_REFUSED, detail=f"response iss {params['iss']!r}")
        code = params.get("code", "")
        if not code:
            raise FederationError(_REFUSED, detail="no code in the response")
        tokens = await self._exchange(code, redirect_uri, verifier)
        claims = await self._validate_jwt(tokens.get("id_token"), nonce=nonce, what="ID token")
        subject = str(claims["sub"])
        merged: dict[str, Any] = dict(claims)
        access = tokens.get("access_token")
        if isinstance(access, str) and (await self.metadata()).get("userinfo_endpoint"):
            info = await self._userinfo(access)
            if info.get("sub") != subject:
                raise FederationError(_REFUSED, detail="userinfo sub differs from the ID token's")
            merged = {**info, **claims}
        acr = claims.get("acr")
        auth_time = claims.get("auth_time")
        return FederatedIdentity(
            issuer=self.provider.issuer,
            subject=subject,
            acr=acr if isinstance(acr, str) else None,
            auth_time=auth_time if isinstance(auth_time, int) else None,
            claims=merged,
        )

    async def _exchange(self, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.provider.token_auth_method == "client_secret_post":
            form |= {"client_id": self.provider.client_id, "client_secret": self.provider.client_secret}
        else:
            pair = f"{_form_escape(self.provider.client_id)}:{_form_escape(self.provider.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        status, body = await self._json(
            "POST", (await self.metadata())["token_endpoint"], headers=headers, data=urlencode(form).encode()
        )
        if status != 200 or not isinstance(body, dict) or not body.get("id_token"):
            error = body.get("error") if isinstance(body, dict) else None
            raise FederationError(_REFUSED, detail=f"token endpoint answered {status} {error or ''}".strip())
        return cast(dict[str, Any], body)

    async def _userinfo(self, access_token: str) -> dict[str, Any]:
        url = (await self.metadata())["userinfo_endpoint"]
        response = await self.fetch(
            "GET", url, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        )
        if response.status != 200:
            raise FederationError(_REFUSED, detail=f"userinfo answered {response.status}")
        if response.content_type.split(";")[0].strip() == "application/jwt":
            return await self._validate_jwt(response.body.decode(), nonce=None, what="userinfo")
        try:
            data = json.loads(response.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FederationError(_REFUSED, detail="userinfo is not JSON") from exc
        if not isinstance(data, dict):
            raise FederationError(_REFUSED, detail="userinfo is not an object")
        return data

    async def _validate_jwt(self, value: object, *, nonce: str | None, what: str) -> dict[str, Any]:
        """Signature (provider JWKS, allowed algorithms), iss, aud/azp, exp, iat, nonce."""
        if not isinstance(value, str) or not value:
            raise FederationError(_REFUSED, detail=f"no {what}")
        algorithms = list(self.provider.algorithms)
        try:
            try:
                token = jwt.decode(value, await self.keys(), algorithms=algorithms)
            except JoseError:  # perhaps a rotated key: fetch the JWKS once more
                token = jwt.decode(value, await self.keys(refresh=True), algorithms=algorithms)
            options: dict[str, Any] = {
                "iss": {"essential": True, "value": self.provider.issuer},
                "aud": {"essential": True, "value": self.provider.client_id},
                "sub": {"essential": True},
            }
            if nonce is not None:
                options |= {
                    "exp": {"essential": True},
                    "iat": {"essential": True},
                    "nonce": {"essential": True, "value": nonce},
                }
            registry = jwt.JWTClaimsRegistry(now=self.clock_s, leeway=LEEWAY_S, **options)
            registry.validate(token.claims)
        except (JoseError, ValueError) as exc:
            raise FederationError(_REFUSED, detail=f"{what} rejected: {exc}") from exc
        claims = dict(token.claims)
        audience = claims["aud"]
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.provider.client_id:
            raise FederationError(_REFUSED, detail=f"{what}: several audiences and azp is not us")
        return claims


def _form_escape(value: str) -> str:
    """RFC 6749 §2.3.1: client id and secret are form-encoded before Basic encoding."""
    return urlencode({"": value})[1:]


# -- linking rules --------------------------------------------------------------------------------

NO_ACCOUNT_CITIZEN = (
    "Aucun compte Hygie ne correspond à l’identité transmise. Connectez-vous avec votre identifiant "
    "et votre mot de passe, ou adressez-vous à votre établissement pour faire vérifier votre identité."
)
NO_ACCOUNT_PROFESSIONAL = (
    "Aucun compte professionnel Hygie ne correspond à votre identifiant national (IdNat_PS). "
    "Adressez-vous à l’administrateur de votre structure."
)
WRONG_KIND = "Ce service d’identification ne permet pas d’ouvrir ce type de compte."
REFUSED_BY_HOLDER = (
    "Vous avez retiré ce service d’identification de votre compte. Connectez-vous avec votre "
    "identifiant et votre mot de passe ; vous pourrez l’autoriser à nouveau depuis la page "
    "« Connexion et sécurité »."
)
_FEDERATION_CALLER = Caller.operator("federation")


class FederatedAccounts:
    """Finds the Hygie account of a federated identity (module docstring, "Linking rules")."""

    def __init__(self, accounts: AccountService, service: FhirService) -> None:
        self.accounts = accounts
        self.service = service

    async def subject(
        self, provider: FederationProvider, identity: FederatedIdentity, *, now_s: int
    ) -> Subject:
        """The signed-in subject: ``acr`` from the ID token, ``amr = ["fed"]``."""
        account = await self.resolve(provider, identity)
        await self.accounts.record_sign_in(account.id, "fed", via=identity.issuer)
        return subject_of(account, auth_time_s=identity.auth_time or now_s, amr=("fed",), acr=identity.acr)

    async def resolve(self, provider: FederationProvider, identity: FederatedIdentity) -> Account:
        no_account = NO_ACCOUNT_CITIZEN if provider.kind == "citizen" else NO_ACCOUNT_PROFESSIONAL
        linked = await self.accounts.by_federated(identity.issuer, identity.subject)
        if linked is not None:
            if not linked.active:
                raise FederationError(no_account, detail=f"account {linked.id} is disabled")
            if linked.kind != provider.kind:
                raise FederationError(WRONG_KIND, detail=f"account {linked.id} is {linked.kind}")
            return linked
        if provider.kind == "citizen":
            patient_id = await self._patient_of(identity.claims)
            account = await self._account_where("citizen", "patient_id", patient_id, no_account)
        else:
            practitioner_id = await self._practitioner_of(identity.claims)
            account = await self._account_where(
                "professional", "practitioner_id", practitioner_id, no_account
            )
        if (identity.issuer, identity.subject) in account.refused_federated:
            # the holder removed this identity from their account: not linked again behind their back
            raise FederationError(REFUSED_BY_HOLDER, detail=f"account {account.id} refused this identity")
        try:
            return await self.accounts.link_federated(account.id, identity.issuer, identity.subject)
        except FederatedIdentityTaken as exc:  # linked meanwhile to another account
            raise FederationError(no_account, detail="identity taken by another account") from exc

    async def _search(self, resource_type: str, query: list[tuple[str, str]]) -> list[dict[str, Any]]:
        request = FhirRequest("GET", resource_type, [*query, ("_count", "50")], caller=_FEDERATION_CALLER)
        try:
            response = await route(self.service, request)
        except FhirError:
            return []
        if response.status != 200 or response.body is None:
            return []
        # a search Bundle may hold pre-serialised resources (orjson.Fragment): decode it whole
        body = orjson.loads(
            response.body if isinstance(response.body, bytes) else orjson.dumps(response.body)
        )
        return [
            entry["resource"]
            for entry in body.get("entry", [])
            if isinstance(entry.get("resource"), dict)
            and entry["resource"].get("resourceType") == resource_type
        ]

    async def _patient_of(self, claims: Mapping[str, Any]) -> str:
        pivot = {k: claims.get(k) for k in ("given_name", "family_name", "birthdate", "gender")}
        if not all(isinstance(v, str) and v for v in pivot.values()):
            raise FederationError(NO_ACCOUNT_CITIZEN, detail="identity pivot incomplete")
        birthplace = str(claims.get("birthplace") or "").strip().upper()
        place = birthplace or str(claims.get("birthcountry") or "").strip().upper()
        matches = []
        for patient in await self._search(
            "Patient", [("birthdate", str(pivot["birthdate"])), ("gender", str(pivot["gender"]))]
        ):
            try:
                traits = traits_of(patient)
            except IdentityError:
                continue
            if (
                normalize_name(traits.birth_name) == normalize_name(str(pivot["family_name"]))
                and normalize_name(" ".join(traits.birth_given_names))
                == normalize_name(str(pivot["given_name"]))
                and traits.gender == pivot["gender"]
                and traits.birth_date.isoformat() == pivot["birthdate"]
                and bool(place)
                and (traits.birth_place_code or "").upper() == place
            ):
                matches.append(str(patient["id"]))
        if len(matches) != 1:
            raise FederationError(
                NO_ACCOUNT_CITIZEN, detail=f"{len(matches)} Patients match the identity pivot"
            )
        return matches[0]

    async def _practitioner_of(self, claims: Mapping[str, Any]) -> str:
        idnat = claims.get("SubjectNameID") or claims.get("preferred_username")
        if not isinstance(idnat, str) or not idnat.strip():
            raise FederationError(NO_ACCOUNT_PROFESSIONAL, detail="no IdNat_PS claim")
        found = await self._search("Practitioner", [("identifier", f"{IDNAT_PS_SYSTEM}|{idnat.strip()}")])
        if len(found) != 1:
            raise FederationError(NO_ACCOUNT_PROFESSIONAL, detail=f"{len(found)} Practitioners have IdNat_PS")
        return str(found[0]["id"])

    async def _account_where(self, kind: str, link: str, resource_id: str, message: str) -> Account:
        """The one active account of ``kind`` linked to that Patient or Practitioner.

        A scan of the accounts: federation links an identity once, later sign-ins use the index.
        """
        found = [
            account
            for _, record in await self.accounts.kv.list("account")
            if record.get("kind") == kind and record.get(link) == resource_id
            for account in (Account.from_record(record),)
            if account.active
        ]
        if len(found) != 1:
            raise FederationError(message, detail=f"{len(found)} {kind} accounts for {resource_id}")
        return found[0]
