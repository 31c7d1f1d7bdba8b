"""Access tokens: signed JWTs (RS256) carrying the grant, verified on every FHIR request.

Claims: ``iss``, ``sub``, ``aud`` (the FHIR base URL), ``iat``, ``exp``, ``jti``,
``client_id``, ``scope``, ``kind`` (citizen | professional | operator | system), and the SMART
context ``patient``, ``encounter``, ``fhirUser``, plus ``fam`` (the grant family, revoked as a
whole on refresh-token reuse or revocation) and, for a backend client bound to a structure,
``organization`` (the ``Organization/…`` it acts as, from its registration).

Verification refuses ``alg=none`` and any algorithm but RS256, a key not in the published JWKS,
a bad signature, an expired token, a wrong issuer or audience, a revoked token or grant, and a
token of a suspended client. Revocation and client status are read through a one-second cache so
that the hot path stays cheap while a suspension still takes effect at once for people.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from hygie.auth.keys import ALGORITHM, SigningKeys
from hygie.auth.scopes import InvalidScope, ScopeSet, parse_scopes
from hygie.ports import KeyValueStore

__all__ = ["AccessToken", "InvalidToken", "TokenService"]

REVOKED_JTI = "revoked_jti"
REVOKED_FAMILY = "revoked_family"


class InvalidToken(Exception):
    """The bearer token cannot be used (RFC 6750 ``invalid_token``)."""


@dataclass(frozen=True, slots=True)
class AccessToken:
    subject: str
    client_id: str
    kind: str
    scopes: ScopeSet
    patient: str | None = None
    encounter: str | None = None
    fhir_user: str | None = None
    family: str | None = None
    jti: str = ""
    expires: int = 0
    claims: dict[str, Any] = field(default_factory=dict)
    organization: str | None = None  # the structure a bound backend client acts as


class _TtlCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.items: dict[str, tuple[float, Any]] = {}

    async def get(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        now = time.monotonic()
        hit = self.items.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await load()
        if len(self.items) > 10_000:
            self.items.clear()
        self.items[key] = (now + self.ttl, value)
        return value


class TokenService:
    def __init__(
        self,
        kv: KeyValueStore,
        keys: SigningKeys,
        *,
        issuer: str,
        audience: str,
        clock: Callable[[], int],
        client_active: Callable[[str], Awaitable[bool]],
        lifetime_s: int = 3600,
    ) -> None:
        self.kv = kv
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.clock = clock
        self.client_active = client_active
        self.lifetime_s = lifetime_s
        self._cache = _TtlCache(1.0)
        # tokens whose signature and claims were verified: token text -> parsed token (until exp)
        self._verified: dict[str, AccessToken] = {}

    async def issue(
        self,
        *,
        subject: str,
        client_id: str,
        kind: str,
        scope: str,
        patient: str | None = None,
        encounter: str | None = None,
        fhir_user: str | None = None,
        family: str | None = None,
        lifetime_s: int | None = None,
        organization: str | None = None,
    ) -> tuple[str, int]:
        """Sign an access token; returns it with its lifetime in seconds."""
        now = self.clock() // 1_000_000
        life = lifetime_s or self.lifetime_s
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "iat": now,
            "exp": now + life,
            "jti": secrets.token_urlsafe(16),
            "client_id": client_id,
            "scope": scope,
            "kind": kind,
        }
        context = {
            "patient": patient,
            "encounter": encounter,
            "fhirUser": fhir_user,
            "fam": family,
            "organization": organization,
        }
        claims.update({name: value for name, value in context.items() if value})
        key = await self.keys.current()
        token = jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}, claims, key)
        return token, life

    async def sign_id_token(self, claims: dict[str, Any]) -> str:
        key = await self.keys.current()
        return jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}, claims, key)

    def forget_client(self, client_id: str) -> None:
        """A client's status changed (suspended, reactivated): this process checks it afresh at
        the next call, not after its one-second cache (other processes within that second)."""
        self._cache.items.pop(f"c:{client_id}", None)

    async def verify(self, token: str) -> AccessToken:
        """The access token behind ``token``: signature, issuer, audience and expiry are checked
        once per token text (the result is kept until it expires); revocation of the token and of
        its grant, and the client's status, at every call (through one-second caches)."""
        known = self._verified.get(token)
        if known is not None and known.expires + 30 > self.clock() // 1_000_000:
            await self._still_valid(known.jti, known.family, known.client_id)
            return known
        parsed = await self._parse(token)
        await self._still_valid(parsed.jti, parsed.family, parsed.client_id)
        if len(self._verified) >= 50_000:
            self._verified.clear()
        self._verified[token] = parsed
        return parsed

    async def _still_valid(self, jti: str, family: str | None, client_id: str) -> None:
        if await self._cache.get(f"j:{jti}", lambda: self.kv.get(REVOKED_JTI, jti)):
            raise InvalidToken("token revoked")
        if family and await self._cache.get(f"f:{family}", lambda: self.kv.get(REVOKED_FAMILY, str(family))):
            raise InvalidToken("grant revoked")
        if client_id and not await self._cache.get(f"c:{client_id}", lambda: self.client_active(client_id)):
            raise InvalidToken("client suspended")

    async def _parse(self, token: str) -> AccessToken:
        if token.count(".") != 2:
            raise InvalidToken("malformed token")
        keyset = await self._cache.get("jwks", self.keys.published)
        try:
            decoded = jwt.decode(token, keyset, algorithms=[ALGORITHM])
        except (JoseError, ValueError, TypeError) as exc:
            # a key we do not know yet may come from a rotation in another process
            self.keys.forget_cache()
            try:
                decoded = jwt.decode(token, await self.keys.published(), algorithms=[ALGORITHM])
            except (JoseError, ValueError, TypeError):
                raise InvalidToken("signature or format not valid") from exc
        claims = decoded.claims
        registry = JWTClaimsRegistry(
            now=self.clock() // 1_000_000,
            leeway=30,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise InvalidToken(f"token rejected: {exc.description or exc.error}") from exc
        jti = str(claims.get("jti", ""))
        family = claims.get("fam")
        client_id = str(claims.get("client_id", ""))
        try:
            scopes = parse_scopes(str(claims.get("scope", "")))
        except InvalidScope as exc:
            raise InvalidToken("token scope not valid") from exc
        return AccessToken(
            subject=str(claims["sub"]),
            client_id=client_id,
            kind=str(claims.get("kind", "")),
            scopes=scopes,
            patient=claims.get("patient"),
            encounter=claims.get("encounter"),
            fhir_user=claims.get("fhirUser"),
            family=family,
            jti=jti,
            expires=int(claims["exp"]),
            claims=dict(claims),
            organization=claims.get("organization"),
        )

    async def revoke_token(self, jti: str, expires: int) -> None:
        await self.kv.put(REVOKED_JTI, jti, {"at": self.clock()}, expires_us=(expires + 60) * 1_000_000)
        self._cache.items.pop(f"j:{jti}", None)

    async def revoke_family(self, family: str, expires_us: int) -> None:
        await self.kv.put(REVOKED_FAMILY, family, {"at": self.clock()}, expires_us=expires_us)
        self._cache.items.pop(f"f:{family}", None)
