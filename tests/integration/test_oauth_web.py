"""The authorisation server over HTTP: discovery, sign-in with a second factor, consent, tokens."""

from __future__ import annotations

import re
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest

from hygie.auth import pkce
from hygie.bootstrap import Runtime

pytestmark = pytest.mark.anyio

REDIRECT = "https://app.example.fr/callback"
PASSWORD = "Un mot de passe solide 42"


def _suite_of(html: str) -> str:
    m = re.search(r'name="suite" value="([^"]+)"', html)
    assert m
    return m.group(1)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


async def test_discovery_documents(client: httpx.AsyncClient) -> None:
    smart = (await client.get("/fhir/.well-known/smart-configuration")).json()
    assert smart["code_challenge_methods_supported"] == ["S256"]
    assert "launch-ehr" in smart["capabilities"]
    assert smart["token_endpoint"].endswith("/oauth/token")
    oidc = (await client.get("/.well-known/openid-configuration")).json()
    assert oidc["jwks_uri"].endswith("/oauth/jwks")
    jwks = (await client.get("/oauth/jwks")).json()
    assert jwks["keys"][0]["kty"] == "RSA"
    assert "d" not in jwks["keys"][0]


async def test_sign_in_with_totp_consent_and_token(client: httpx.AsyncClient, runtime: Runtime) -> None:
    assert runtime.auth is not None and runtime.accounts is not None
    app, _ = await runtime.auth.clients.register(
        name="Carnet de poids",
        scope="openid fhirUser patient/Observation.rs patient/Patient.r offline_access",
        redirect_uris=[REDIRECT],
    )
    _, uri = await runtime.accounts.create(
        "citizen", "claire@example.fr", PASSWORD, totp=True, patient_id="p1"
    )
    assert uri is not None
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    verifier = secrets.token_urlsafe(48)
    state = secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "state": state,
        "scope": "openid fhirUser patient/Observation.rs patient/Patient.r",
        "aud": "http://127.0.0.1:8000/fhir",
        "code_challenge": pkce.challenge_of(verifier),
        "code_challenge_method": "S256",
    }
    r = await client.get("/oauth/authorize", params=params)
    assert r.status_code == 303
    login_url = r.headers["location"]
    assert login_url.startswith("/connexion?suite=")
    page = await client.get(login_url)
    assert "Carnet de poids" in page.text
    suite = parse_qs(urlsplit(login_url).query)["suite"][0]
    wrong = await client.post(
        "/connexion",
        data={
            "csrf": csrf_of(page.text),
            "suite": suite,
            "identifiant": "claire@example.fr",
            "mot_de_passe": "faux",
        },
    )
    assert wrong.status_code == 401
    assert "incorrect" in wrong.text
    r = await client.post(
        "/connexion",
        data={
            "csrf": csrf_of(wrong.text),
            "suite": suite,
            "identifiant": "claire@example.fr",
            "mot_de_passe": PASSWORD,
        },
    )
    assert r.status_code == 200
    assert "Code de vérification" in r.text
    r = await client.post(
        "/connexion/code", data={"csrf": csrf_of(r.text), "suite": suite, "code": pyotp.TOTP(secret).now()}
    )
    assert r.status_code == 303
    consent = await client.get(r.headers["location"])
    assert consent.status_code == 200
    assert "Autoriser Carnet de poids" in consent.text
    # accept part of it: observations only
    r = await client.post(
        "/oauth/autoriser",
        data={
            "csrf": csrf_of(consent.text),
            "suite": _suite_of(consent.text),
            "patient": "p1",
            "decision": "accepter",
            "portee": ["patient/Observation.rs", "openid", "fhirUser"],
        },
    )
    assert r.status_code == 303
    back = urlsplit(r.headers["location"])
    assert back.geturl().startswith(REDIRECT)
    query = parse_qs(back.query)
    assert query["state"] == [state]
    token = await client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT,
            "client_id": app.client_id,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.text
    assert token.headers["cache-control"] == "no-store"
    body = token.json()
    assert body["patient"] == "p1"
    assert body["scope"] == "fhirUser openid patient/Observation.rs"
    info = await client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.json()["fhirUser"].endswith("/fhir/Patient/p1")
    # the same code twice: refused
    again = await client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT,
            "client_id": app.client_id,
            "code_verifier": verifier,
        },
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_authorize_errors_never_redirect_to_unknown_uris(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    assert runtime.auth is not None
    app, _ = await runtime.auth.clients.register(name="X", scope="openid", redirect_uris=[REDIRECT])
    r = await client.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": "https://evil.example/cb",
            "code_challenge": pkce.challenge_of("a" * 43),
            "code_challenge_method": "S256",
            "state": "s",
        },
    )
    assert r.status_code == 400
    assert "redirect" in r.text
    r = await client.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": REDIRECT,
            "code_challenge": "a" * 43,
            "code_challenge_method": "plain",
            "state": "s",
        },
    )
    assert r.status_code == 303
    assert "error=invalid_request" in r.headers["location"]


async def test_token_endpoint_errors_follow_rfc6749(client: httpx.AsyncClient) -> None:
    r = await client.post("/oauth/token", data={"grant_type": "password"})
    assert r.status_code == 400
    assert r.json()["error"] == "unsupported_grant_type"
    r = await client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "nobody"})
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    r = await client.get("/oauth/userinfo", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert "invalid_token" in r.headers["www-authenticate"]


async def test_forms_refuse_a_missing_csrf_token(client: httpx.AsyncClient) -> None:
    r = await client.post("/connexion", data={"identifiant": "x", "mot_de_passe": "y", "csrf": "forged"})
    assert r.status_code == 400


async def test_cors_lets_browser_apps_call_the_token_endpoint_and_fhir(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        "/oauth/token",
        headers={
            "Origin": "https://app.example.fr",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    r = await client.get("/fhir/metadata", headers={"Origin": "https://app.example.fr"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
