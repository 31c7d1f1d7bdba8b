"""Registered OAuth clients (SMART apps, backend services) and client authentication.

A client is public (PKCE only, ``token_endpoint_auth_method=none``), confidential with a
secret (``client_secret_basic`` / ``client_secret_post``; the secret is stored as an argon2id
hash), or confidential with a key (``private_key_jwt``: RFC 7523 client assertions signed with a
key of its registered JWKS, as SMART Backend Services require). Redirect URIs match exactly.

A backend client may be **bound to a structure** (``organization``, an ``Organization/…``
reference): its service tokens carry it, and the access policy then lets it act as that
structure only — through the structure's own care relations — instead of as a platform job
(``domain/policy.py``). A practice's or a hospital's software is registered so.

An app may be **offered to professionals** (``audience`` ``professional``): the professionals'
portal lists it, with its ``description`` and what its scopes let it read or write, and opens it
in a patient's context by an EHR launch — a redirect to its ``launch_url`` with ``iss`` and
``launch`` (``web/bsp/apps.py``). Such an app is an interactive SMART app: redirect URIs, the
``launch`` scope, and a launch URL under the same rules as its redirect URIs.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from hygie.auth.errors import OAuthError
from hygie.auth.scopes import InvalidScope, parse_scopes
from hygie.ports import KeyValueStore

__all__ = ["ASSERTION_TYPE", "AUDIENCES", "Client", "ClientRegistry", "import_jwks"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ["RS384", "ES384", "RS256", "ES256"]
_KIND = "client"
_JTI = "client_assertion_jti"
_hasher = PasswordHasher()
# a literal reference to an Organization (FHIR id: letters, digits, '-' and '.', 1 to 64)
_ORGANIZATION = re.compile(r"Organization/[A-Za-z0-9\-.]{1,64}")
# the portals that may offer an app to the people who sign in to them
AUDIENCES = ("citizen", "professional")
# where redirect and launch URLs may point: https, or plain http on the loopback only
_WEB_ORIGINS = ("https://", "http://127.0.0.1", "http://localhost", "http://[::1]")

AuthMethod = Literal["none", "client_secret_basic", "client_secret_post", "private_key_jwt"]


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    name: str
    auth_method: AuthMethod
    scope: str  # the scopes the client may ever obtain
    redirect_uris: tuple[str, ...] = ()
    jwks: dict[str, Any] | None = None
    secret_hash: str | None = None
    launch: Literal["ehr", "standalone", "both"] | None = None
    status: Literal["active", "suspended"] = "active"
    created: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    organization: str | None = None  # Organization/…: the structure its backend tokens act as
    launch_url: str | None = None  # where a portal opens it (EHR launch: ?iss=…&launch=…)
    audience: tuple[str, ...] = ()  # the portals that offer it ("professional": the BSP)
    description: str = ""  # one or two sentences the catalogue shows

    def offered_to(self, audience: str) -> bool:
        """Whether a portal lists this app for its people (and can launch it)."""
        return self.status == "active" and audience in self.audience and self.launch_url is not None

    @property
    def public(self) -> bool:
        return self.auth_method == "none"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["redirect_uris"] = list(self.redirect_uris)
        data["audience"] = list(self.audience)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Client:
        return cls(
            **{
                **data,
                "redirect_uris": tuple(data.get("redirect_uris", ())),
                "audience": tuple(data.get("audience", ())),
            }
        )


class ClientRegistry:
    def __init__(self, kv: KeyValueStore, clock: Callable[[], int]) -> None:
        self.kv = kv
        self.clock = clock
        # told of every status change (the token service forgets its cached status at once)
        self.status_listeners: list[Callable[[str], None]] = []

    async def register(
        self,
        *,
        name: str,
        scope: str,
        redirect_uris: list[str] | tuple[str, ...] = (),
        jwks: dict[str, Any] | None = None,
        with_secret: bool = False,
        launch: Literal["ehr", "standalone", "both"] | None = None,
        client_id: str | None = None,
        organization: str | None = None,
        launch_url: str | None = None,
        audience: list[str] | tuple[str, ...] = (),
        description: str = "",
    ) -> tuple[Client, str | None]:
        """Register a client; returns it with its secret (shown once) when one was asked for.

        ``organization`` binds the client's backend-service tokens to that structure;
        ``audience``, ``launch_url`` and ``description`` offer an app in a portal."""
        try:
            scopes = parse_scopes(scope)
        except InvalidScope as exc:
            raise ValueError(str(exc)) from exc
        if organization is not None:
            if not _ORGANIZATION.fullmatch(organization):
                raise ValueError(f"organization {organization!r} must be a reference Organization/<id>")
            if not any(s.context == "system" for s in scopes.resources):
                raise ValueError("a client bound to a structure is a backend service: give it system/ scopes")
        for uri in redirect_uris:
            if not uri.startswith(_WEB_ORIGINS):
                raise ValueError(f"redirect URI {uri!r} must be https (or http on loopback)")
            if "#" in uri:
                raise ValueError(f"redirect URI {uri!r} must not contain a fragment")
        _check_offer(scopes.others, redirect_uris, launch_url, audience, organization)
        if jwks is not None:
            import_jwks(jwks)
        secret = secrets.token_urlsafe(32) if with_secret else None
        method: AuthMethod
        if jwks is not None:
            method = "private_key_jwt"
        elif secret is not None:
            method = "client_secret_basic"
        else:
            method = "none"
        if method == "none" and not redirect_uris:
            raise ValueError("a public client needs at least one redirect URI")
        client = Client(
            client_id=client_id or secrets.token_urlsafe(16),
            name=name,
            auth_method=method,
            scope=scope,
            redirect_uris=tuple(redirect_uris),
            jwks=jwks,
            secret_hash=_hasher.hash(secret) if secret else None,
            launch=launch,
            created=self.clock(),
            organization=organization,
            launch_url=launch_url,
            audience=tuple(dict.fromkeys(audience)),
            description=" ".join(description.split()),
        )
        if not await self.kv.add(_KIND, client.client_id, client.to_json()):
            raise ValueError(f"client id {client.client_id!r} is already registered")
        return client, secret

    async def get(self, client_id: str) -> Client | None:
        data = await self.kv.get(_KIND, client_id)
        return Client.from_json(data) if data else None

    async def offered_to(self, audience: str) -> list[Client]:
        """The active apps a portal offers (``audience``), by name."""
        found = (Client.from_json(value) for _, value in await self.kv.list(_KIND))
        return sorted(
            (c for c in found if c.offered_to(audience)), key=lambda c: (c.name.casefold(), c.client_id)
        )

    async def set_status(self, client_id: str, status: Literal["active", "suspended"]) -> None:
        client = await self.get(client_id)
        if client is None:
            raise KeyError(client_id)
        await self.kv.put(_KIND, client_id, {**client.to_json(), "status": status})
        for listener in self.status_listeners:
            listener(client_id)

    async def authenticate(
        self, form: Mapping[str, str], authorization: str | None, token_url: str
    ) -> Client:
        """Identify and authenticate the client of a token-endpoint request (RFC 6749 §2.3)."""
        client_id = form.get("client_id")
        secret: str | None = None
        if authorization and authorization.lower().startswith("basic "):
            try:
                raw = base64.b64decode(authorization[6:].strip()).decode()
                basic_id, _, secret = raw.partition(":")
                basic_id, secret = unquote(basic_id), unquote(secret)
            except (ValueError, UnicodeDecodeError) as exc:
                raise OAuthError("invalid_client", "malformed Basic credentials", status=401) from exc
            if client_id and client_id != basic_id:
                raise OAuthError("invalid_request", "client_id differs from the Basic credentials")
            client_id = basic_id
        assertion = form.get("client_assertion")
        if assertion is not None:
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                raise OAuthError("invalid_client", "unsupported client_assertion_type", status=401)
            return await self._by_assertion(assertion, client_id, token_url)
        if not client_id:
            raise OAuthError("invalid_client", "client authentication failed", status=401)
        client = await self.get(client_id)
        if client is None or client.status != "active":
            raise OAuthError("invalid_client", "client authentication failed", status=401)
        if client.auth_method in ("client_secret_basic", "client_secret_post"):
            secret = secret if secret is not None else form.get("client_secret")
            if not secret or not client.secret_hash or not _verify_secret(client.secret_hash, secret):
                raise OAuthError("invalid_client", "client authentication failed", status=401)
            return client
        if client.auth_method == "private_key_jwt":
            raise OAuthError(
                "invalid_client", "this client must authenticate with private_key_jwt", status=401
            )
        if secret is not None or form.get("client_secret"):
            raise OAuthError("invalid_client", "a public client has no secret", status=401)
        return client

    async def _by_assertion(self, assertion: str, client_id: str | None, token_url: str) -> Client:
        # the issuer is read unverified only to find whose keys verify the signature
        issuer = client_id or _claimed_issuer(assertion)
        if not issuer:
            raise OAuthError("invalid_client", "client assertion has no issuer", status=401)
        client = await self.get(issuer)
        if client is None or client.status != "active" or client.jwks is None:
            raise OAuthError("invalid_client", "client authentication failed", status=401)
        try:
            keys = KeySet.import_key_set(client.jwks)  # type: ignore[arg-type]
            token = jwt.decode(assertion, keys, algorithms=ASSERTION_ALGORITHMS)
        except (JoseError, ValueError, TypeError) as exc:
            raise OAuthError("invalid_client", "client assertion signature is not valid", status=401) from exc
        claims = token.claims
        now = int(time.time())
        if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
            raise OAuthError(
                "invalid_client", "client assertion iss and sub must be the client_id", status=401
            )
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if token_url not in audiences:
            raise OAuthError(
                "invalid_client", "client assertion audience is not the token endpoint", status=401
            )
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= now or exp > now + 300 + 60:
            raise OAuthError(
                "invalid_client", "client assertion expired or valid for more than 5 minutes", status=401
            )
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise OAuthError("invalid_client", "client assertion has no jti", status=401)
        fresh = await self.kv.add(_JTI, f"{client.client_id}:{jti}", {}, expires_us=(exp + 60) * 1_000_000)
        if not fresh:
            raise OAuthError("invalid_client", "client assertion replayed (jti already used)", status=401)
        return client


def import_jwks(jwks: Mapping[str, Any]) -> KeySet:
    """A client's published key set, or ValueError when it holds no readable key (RFC 7517)."""
    try:
        return KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"invalid JWKS: {exc}") from exc


def _check_offer(
    others: frozenset[str],
    redirect_uris: list[str] | tuple[str, ...],
    launch_url: str | None,
    audience: list[str] | tuple[str, ...],
    organization: str | None,
) -> None:
    """An app offered in a portal is an interactive SMART app the portal can launch (EHR launch)."""
    unknown = [a for a in audience if a not in AUDIENCES]
    if unknown:
        raise ValueError(f"audience {unknown[0]!r} is not one of {', '.join(AUDIENCES)}")
    if launch_url is not None:
        if not launch_url.startswith(_WEB_ORIGINS):
            raise ValueError(f"launch URL {launch_url!r} must be https (or http on loopback)")
        if "#" in launch_url:
            raise ValueError(f"launch URL {launch_url!r} must not contain a fragment")
        if "launch" not in others:
            raise ValueError("an app opened by a launch URL needs the 'launch' scope (SMART EHR launch)")
        if not redirect_uris:
            raise ValueError("an app opened by a launch URL needs a redirect URI")
        if organization is not None:
            raise ValueError("a client bound to a structure is a backend service: it has no launch URL")
    if audience and launch_url is None:
        raise ValueError("an app offered in a portal needs a launch URL (--launch-url)")


def _claimed_issuer(assertion: str) -> str | None:
    import orjson  # noqa: PLC0415

    parts = assertion.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    return issuer if isinstance(issuer, str) else None


def _verify_secret(stored: str, given: str) -> bool:
    try:
        return _hasher.verify(stored, given)
    except (VerificationError, InvalidHashError):
        # keep the comparison shape constant
        hmac.compare_digest(stored, given)
        return False
