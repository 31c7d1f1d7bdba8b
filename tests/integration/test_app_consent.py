"""The one consent screen for store apps, over HTTP: what it says, partial acceptance, the chosen
duration, the FHIR Consent the grant is recorded as, scopes cut to the registration, and a
suspended app's tokens refused at the next call."""

from __future__ import annotations

import re
import secrets
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pyotp
import pytest

from hygie.auth import pkce
from hygie.bootstrap import Runtime
from hygie.domain.access import Caller
from hygie.domain.store.catalogue import App, Assessment
from hygie.fhir.request import FhirRequest
from hygie.fhir.router import route
from hygie.web.portal.door import Door

pytestmark = pytest.mark.anyio

PASSWORD = "Un mot de passe solide 42"
REDIRECT = "https://glyco.exemple.fr/retour"
DAY_US = 86_400 * 1_000_000


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, html[:800]
    return found.group(1)


async def operator(runtime: Runtime, method: str, path: str, resource: dict[str, Any] | None = None) -> Any:
    response = await route(
        runtime.service, FhirRequest(method, path, resource=resource, caller=Caller.operator("tests"))
    )
    body = response.body
    return orjson.loads(body) if isinstance(body, bytes) else body


async def listed_app(runtime: Runtime) -> App:
    """A medical-device app listed with data exchange by the authority."""
    store = runtime.app_store
    publisher = await store.create_publisher("Glyco SAS", "73282932000074", "contact@glyco.exemple.fr")
    editor = await store.add_member("editeur-1", "publisher", publisher_id=publisher.id)
    authority = await store.add_member("ans-1", "authority", agency="ans")
    grid = await store.grid()
    app = App(
        id="",
        publisher_id="",
        name="Glyco",
        summary="Suivi de la glycémie connecté",
        description="Lecteur de glycémie et carnet.",
        category="1",
        ce_class="IIa",
        audience="citoyens",
        website="https://glyco.exemple.fr",
        redirect_uris=(REDIRECT,),
        hosts=("glyco.exemple.fr",),
        scopes="openid fhirUser patient/Patient.rs patient/Observation.crs offline_access",
        purpose="Suivre votre glycémie et la partager avec votre diabétologue.",
        max_days=180,
    )
    answers = {
        c.id: Assessment(True, "preuve", "Laboratoire X, conforme" if c.evidence == "test" else "")
        for c in grid.required("1", True)
    }
    draft = await store.save_draft(editor, replace(app, assessment=answers))
    await store.submit(editor, draft.id)
    await store.take(authority, draft.id)
    return await store.approve(authority, draft.id, "Évaluation favorable", data_exchange=True)


async def sign_in_to_consent(
    client: httpx.AsyncClient, runtime: Runtime, app: App, scope: str
) -> tuple[str, str, str]:
    """Claire signs in (password + TOTP) on an authorisation request; returns the consent page,
    the PKCE verifier and her patient id."""
    assert runtime.accounts is not None
    patient = await operator(
        runtime,
        "POST",
        "Patient",
        {
            "resourceType": "Patient",
            "name": [{"family": "MARTIN", "given": ["Claire"]}],
            "birthDate": "1985-04-12",
        },
    )
    _, uri = await runtime.accounts.create(
        "citizen", "claire@exemple.fr", PASSWORD, totp=True, patient_id=patient["id"]
    )
    assert uri is not None
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    verifier = secrets.token_urlsafe(48)
    r = await client.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": REDIRECT,
            "state": "etat",
            "scope": scope,
            "aud": "http://127.0.0.1:8000/fhir",
            "code_challenge": pkce.challenge_of(verifier),
            "code_challenge_method": "S256",
        },
    )
    assert r.status_code == 303, r.text
    login = await client.get(r.headers["location"])
    suite = parse_qs(urlsplit(r.headers["location"]).query)["suite"][0]
    r = await client.post(
        "/connexion",
        data={
            "csrf": field(login.text, "csrf"),
            "suite": suite,
            "identifiant": "claire@exemple.fr",
            "mot_de_passe": PASSWORD,
        },
    )
    r = await client.post(
        "/connexion/code",
        data={"csrf": field(r.text, "csrf"), "suite": suite, "code": pyotp.TOTP(secret).now()},
    )
    assert r.status_code == 303
    consent = await client.get(r.headers["location"])
    assert consent.status_code == 200
    return consent.text, verifier, str(patient["id"])


async def exchange(client: httpx.AsyncClient, app: App, location: str, verifier: str) -> dict[str, Any]:
    code = parse_qs(urlsplit(location).query)["code"][0]
    token = await client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": app.client_id,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.text
    body: dict[str, Any] = token.json()
    return body


async def test_the_consent_screen_records_a_partial_grant_as_a_consent_for_the_chosen_time(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    app = await listed_app(runtime)
    # the app asks for more than its registration (Condition): the screen never offers it
    page, verifier, patient = await sign_in_to_consent(
        client,
        runtime,
        app,
        "openid fhirUser patient/Patient.rs patient/Observation.crs patient/Condition.rs offline_access",
    )
    assert "Glyco SAS" in page and "Référencée avec échange de données" in page
    assert "Suivre votre glycémie" in page
    assert "Condition" not in page and "antécédents" not in page.casefold()
    # the durations offered stop at the app's maximum (180 days)
    assert re.findall(r'<option value="(\d+)"', page) == ["30", "90", "180"]
    # an unknown duration: a clear refusal, and the same request may be answered again
    form = {
        "csrf": field(page, "csrf"),
        "suite": field(page, "suite"),
        "patient": patient,
        "decision": "accepter",
        "portee": ["openid", "fhirUser", "patient/Observation.crs", "offline_access"],
        "duree": "9999",
    }
    refused = await client.post("/oauth/autoriser", data=form)
    assert refused.status_code == 400 and "combien de temps" in refused.text
    accepted = await client.post("/oauth/autoriser", data={**form, "duree": "30"})
    assert accepted.status_code == 303 and accepted.headers["location"].startswith(REDIRECT)
    tokens = await exchange(client, app, accepted.headers["location"], verifier)
    # partial acceptance: no Patient scope (unticked), no Condition (beyond the registration)
    assert tokens["scope"] == "fhirUser offline_access openid patient/Observation.crs"

    [consent] = await Door(runtime.service).search(
        Caller.operator("tests"), "Consent", [("patient", patient)]
    )
    assert consent["status"] == "active"
    assert any(c["code"] == "app" for cat in consent["category"] for c in cat["coding"])
    assert consent["provision"]["actor"][0]["reference"]["identifier"]["value"] == app.client_id
    assert [c["code"] for c in consent["provision"]["class"]] == ["Observation"]
    assert {a["coding"][0]["code"] for a in consent["provision"]["action"]} == {"access", "collect"}
    assert "end" in consent["provision"]["period"]
    # the Consent opens no access relation: the app's reach is its token, under Claire's rights
    assert await runtime.store.relations(patient, [f"Device/{app.client_id}", app.client_id], now_us=0) == []

    assert runtime.auth is not None and runtime.accounts is not None
    account = await runtime.accounts.by_login("claire@exemple.fr")
    assert account is not None
    [grant] = await runtime.auth.grants_of(account.id)
    assert grant.until_us is not None
    assert 29 * DAY_US < grant.until_us - grant.created_us <= 30 * DAY_US + 60_000_000

    # the app reads what was granted
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await client.get(f"/fhir/Observation?patient={patient}", headers=bearer)).status_code == 200
    assert (await client.get(f"/fhir/Patient/{patient}", headers=bearer)).status_code == 403

    # the authority suspends the app: its token stops working at the next call
    authority = await runtime.app_store.member("ans-1")
    assert authority is not None
    await runtime.app_store.decide(authority, app.id, "suspend", "Signalement d’un effet indésirable grave")
    assert (await client.get(f"/fhir/Observation?patient={patient}", headers=bearer)).status_code == 401
    refresh = await client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": app.client_id,
        },
    )
    assert refresh.status_code in (400, 401)


async def test_a_grant_ends_when_the_chosen_duration_is_over(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    app = await listed_app(runtime)
    page, verifier, patient = await sign_in_to_consent(
        client, runtime, app, "openid fhirUser patient/Observation.rs offline_access"
    )
    form = {
        "csrf": field(page, "csrf"),
        "suite": field(page, "suite"),
        "patient": patient,
        "decision": "accepter",
        "portee": ["openid", "patient/Observation.rs", "offline_access"],
        "duree": "30",
    }
    accepted = await client.post("/oauth/autoriser", data=form)
    tokens = await exchange(client, app, accepted.headers["location"], verifier)
    assert tokens["expires_in"] <= 3600
    # 31 days later (the server's clock moved on): the refresh is refused, the grant is over
    assert runtime.auth is not None
    real_clock = runtime.auth.clock
    runtime.auth.clock = lambda: real_clock() + 31 * DAY_US
    try:
        refresh = await client.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": app.client_id,
            },
        )
    finally:
        runtime.auth.clock = real_clock
    assert refresh.status_code == 400
    assert refresh.json()["error"] == "invalid_grant"
