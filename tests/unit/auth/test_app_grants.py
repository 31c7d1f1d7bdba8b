"""A person's grants to apps: listed per account, revoked by the person, tokens dead at once."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from hygie.auth.errors import OAuthError
from hygie.auth.server import AuthorizationServer, Subject
from hygie.auth.tokens import InvalidToken
from hygie.stores.kv import MemoryKeyValueStore

pytestmark = pytest.mark.anyio

ISSUER = "http://127.0.0.1:8000"
FHIR = f"{ISSUER}/fhir"
REDIRECT = "https://app.example.fr/callback"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
CLAIRE = Subject("acc-claire", "citizen", fhir_user="Patient/p1", patient="p1")
PAUL = Subject("acc-paul", "citizen", fhir_user="Patient/p2", patient="p2")


@pytest.fixture
def server() -> AuthorizationServer:
    clock = lambda: time.time_ns() // 1000  # noqa: E731
    return AuthorizationServer(MemoryKeyValueStore(clock), issuer=ISSUER, fhir_base=FHIR, clock=clock)


async def grant(
    server: AuthorizationServer, name: str, subject: Subject, scope: str
) -> tuple[str, dict[str, Any]]:
    client, _ = await server.clients.register(name=name, scope=scope, redirect_uris=[REDIRECT])
    request = await server.validate_authorize(
        {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": REDIRECT,
            "scope": scope,
            "state": "s",
            "aud": FHIR,
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
        }
    )
    code = parse_qs(urlsplit(await server.issue_code(request, subject)).query)["code"][0]
    tokens = await server.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": client.client_id,
            "code_verifier": VERIFIER,
        },
        None,
    )
    return client.client_id, tokens


async def test_grants_are_listed_per_person_and_survive_refreshes(server: AuthorizationServer) -> None:
    app, tokens = await grant(server, "Carnet", CLAIRE, "openid patient/Observation.rs offline_access")
    await grant(server, "Autre", PAUL, "openid patient/Patient.r")
    mine = await server.grants_of(CLAIRE.account_id)
    assert [(g.client_id, set(g.scope.split()), g.patient) for g in mine] == [
        (app, {"openid", "patient/Observation.rs", "offline_access"}, "p1")
    ]
    refreshed = await server.token(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": app}, None
    )
    again = await server.grants_of(CLAIRE.account_id)
    assert len(again) == 1 and again[0].family == mine[0].family
    assert again[0].created_us == mine[0].created_us and again[0].last_used_us >= mine[0].last_used_us
    assert refreshed["access_token"]


async def test_revoking_a_grant_kills_its_tokens_at_once(server: AuthorizationServer) -> None:
    app, tokens = await grant(server, "Carnet", CLAIRE, "openid patient/Observation.rs offline_access")
    await server.tokens.verify(tokens["access_token"])
    family = (await server.grants_of(CLAIRE.account_id))[0].family
    # nobody else may revoke it
    assert not await server.revoke_grant(PAUL.account_id, family)
    await server.tokens.verify(tokens["access_token"])
    assert await server.revoke_grant(CLAIRE.account_id, family)
    with pytest.raises(InvalidToken):
        await server.tokens.verify(tokens["access_token"])
    with pytest.raises(OAuthError):
        await server.token(
            {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": app}, None
        )
    assert await server.grants_of(CLAIRE.account_id) == []
    assert not await server.revoke_grant(CLAIRE.account_id, family)
