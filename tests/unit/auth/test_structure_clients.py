"""A backend client registered for a structure: the binding is checked at registration, stored
with the client, carried by every backend-service token it gets (client_credentials and the
operator's ``hygie client token``), told by introspection, and becomes the Principal's
``organization`` — while an unbound backend client stays a platform job."""

from __future__ import annotations

import secrets
import time

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from hygie.auth.principals import PrincipalResolver
from hygie.auth.server import AuthorizationServer
from hygie.stores.kv import MemoryKeyValueStore

pytestmark = pytest.mark.anyio

ISSUER = "http://127.0.0.1:8000"
CABINET = "Organization/org-cabinet"
SCOPE = "system/DocumentReference.crus system/Patient.rs"


def clock() -> int:
    return time.time_ns() // 1000


@pytest.fixture
def server() -> AuthorizationServer:
    return AuthorizationServer(
        MemoryKeyValueStore(clock), issuer=ISSUER, fhir_base=f"{ISSUER}/fhir", clock=clock
    )


def assertion(client_id: str, key: RSAKey) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": f"{ISSUER}/oauth/token",
        "exp": now + 240,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode({"alg": "RS384", "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=["RS384"])


def form(client_id: str, key: RSAKey, **extra: str) -> dict[str, str]:
    return {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(client_id, key),
        **extra,
    }


async def test_the_binding_is_checked_at_registration(server: AuthorizationServer) -> None:
    with pytest.raises(ValueError, match="Organization/<id>"):
        await server.clients.register(name="x", scope=SCOPE, with_secret=True, organization="Practitioner/gp")
    with pytest.raises(ValueError, match="Organization/<id>"):
        await server.clients.register(name="x", scope=SCOPE, with_secret=True, organization="org-cabinet")
    with pytest.raises(ValueError, match="system/ scopes"):
        await server.clients.register(
            name="x",
            scope="launch patient/*.rs",
            redirect_uris=["https://app.example.fr/cb"],
            organization=CABINET,
        )
    client, _ = await server.clients.register(name="x", scope=SCOPE, with_secret=True, organization=CABINET)
    stored = await server.clients.get(client.client_id)
    assert stored is not None and stored.organization == CABINET


async def test_every_token_of_a_bound_client_carries_its_structure(server: AuthorizationServer) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "cab-1", "alg": "RS384"})
    client, _ = await server.clients.register(
        name="Logiciel de cabinet",
        scope=SCOPE,
        jwks={"keys": [key.as_dict(private=False)]},
        organization=CABINET,
    )
    cid = client.client_id
    out = await server.token(form(cid, key, grant_type="client_credentials", scope=SCOPE), None)
    access = await server.tokens.verify(out["access_token"])
    assert (access.kind, access.organization) == ("system", CABINET)
    operator = await server.service_token(cid, None, 600)
    assert (await server.tokens.verify(operator["access_token"])).organization == CABINET
    told = await server.introspect(form(cid, key, token=out["access_token"]), None)
    assert told["active"] and told["organization"] == CABINET

    async def read(rtype: str, rid: str) -> None:
        return None

    principal = await PrincipalResolver(read).principal(access)
    assert (principal.kind, principal.subject, principal.organization) == ("system", cid, CABINET)
    assert principal.structure == CABINET


async def test_an_unbound_backend_client_stays_a_platform_job(server: AuthorizationServer) -> None:
    client, _ = await server.clients.register(name="Export", scope="system/*.rs", with_secret=True)
    assert client.organization is None
    access = await server.tokens.verify(
        (await server.service_token(client.client_id, None, 600))["access_token"]
    )
    assert access.organization is None and "organization" not in access.claims

    async def read(rtype: str, rid: str) -> None:
        return None

    principal = await PrincipalResolver(read).principal(access)
    assert principal.kind == "system" and principal.structure is None
