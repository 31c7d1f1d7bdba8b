"""Federated sign-in against real OpenID providers (npm ``oidc-provider``), end to end over HTTP.

``tests/federation/oidc_provider.mjs`` runs two providers on free loopback ports: a
FranceConnect-like one (identity pivot claims, ``acr=eidas2``, signed userinfo) and a Pro Santé
Connect-like one (``preferred_username``/``SubjectNameID`` = IdNat_PS, ``acr=eidas1``). Hygie
runs in uvicorn on SQLite with ``federation_routes`` added; httpx plays the browser, following
every redirect by hand and submitting the provider's sign-in and consent forms.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.routing import Mount

from hygie.auth import pkce
from hygie.auth.federation import FederationClient, FederationError, FederationProvider
from hygie.bootstrap import Runtime
from hygie.config import load_settings
from hygie.domain.access import Caller
from hygie.domain.identity.fr_core import InsTraits, patient_from_traits
from hygie.domain.identity.status import IdentityState
from hygie.fhir.request import FhirRequest
from hygie.fhir.router import route
from hygie.web.app import create_app
from hygie.web.federation import federation_routes
from live_server import start_live_server

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "federation" / "oidc_provider.mjs"
PROVIDER_PASSWORD = "motdepasse-de-test"  # the accounts' password in oidc_provider.mjs
PASSWORD = "Un mot de passe solide 42"
IDNAT_PS = "810001234565"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Federation:
    base: str
    runtime: Runtime
    loop: asyncio.AbstractEventLoop
    providers: dict[str, FederationProvider]
    patient: str
    practitioner: str
    citizen_account: str
    professional_account: str
    client_id: str
    redirect_uri: str

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's event loop (where its stores were opened)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)


@pytest.fixture(scope="module")
def provider_issuers() -> Iterator[tuple[int, dict[str, str]]]:
    """The node providers; yields (Hygie's port, {name: issuer})."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("node and node_modules/oidc-provider are needed: run scripts/setup")
    hygie_port = _free_port()
    proc = subprocess.Popen(
        [node, str(SCRIPT), str(_free_port()), str(_free_port()), f"http://127.0.0.1:{hygie_port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            pytest.fail(f"oidc_provider.mjs did not start: {line!r}")
        yield hygie_port, json.loads(line[len("READY ") :])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="module")
def federation(
    provider_issuers: tuple[int, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    """Hygie on SQLite with both providers, a FR Core patient, a practitioner, their accounts."""
    port, issuers = provider_issuers
    providers = [
        FederationProvider(
            name="franceconnect",
            label="S’identifier avec FranceConnect",
            issuer=issuers["franceconnect"],
            client_id="hygie-franceconnect",
            client_secret="secret-franceconnect-de-test-0123456789abcdef",
            kind="citizen",
            scope="openid identite_pivot",
            acr_values="eidas2",
            token_auth_method="client_secret_post",
        ),
        FederationProvider(
            name="psc",
            label="Pro Santé Connect",
            issuer=issuers["psc"],
            client_id="hygie-psc",
            client_secret="secret-psc-de-test-0123456789abcdef",
            kind="professional",
            scope="openid scope_all",
            acr_values="eidas1",
        ),
    ]
    data = tmp_path_factory.mktemp("federation")
    base = f"http://127.0.0.1:{port}"
    settings = load_settings(data_dir=data, database_url=f"sqlite:///{data / 'hygie.sqlite3'}", base_url=base)

    def with_federation(runtime: Runtime) -> Starlette:
        hygie = create_app(runtime=runtime)

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            async with hygie.router.lifespan_context(hygie):
                yield

        return Starlette(
            routes=[*federation_routes(runtime, providers), Mount("", app=hygie)], lifespan=lifespan
        )

    live = start_live_server(settings, port, with_federation)
    runtime = live.runtime
    loop = live.loop
    call = live.call

    patient = patient_from_traits(
        InsTraits(
            birth_name="MARTIN",
            birth_given_names=("Claire", "Marie"),
            gender="female",
            birth_date=date(1985, 3, 14),
            birth_place_code="75056",
        ),
        None,
        IdentityState(),
    )
    # a homonym born the same day elsewhere: the birth place tells them apart
    homonym = patient_from_traits(
        InsTraits(
            birth_name="MARTIN",
            birth_given_names=("Claire", "Marie"),
            gender="female",
            birth_date=date(1985, 3, 14),
            birth_place_code="69123",
        ),
        None,
        IdentityState(),
    )
    patient_id = call(create_resource(runtime, patient))
    call(create_resource(runtime, homonym))
    practitioner_id = call(
        create_resource(
            runtime,
            {
                "resourceType": "Practitioner",
                "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.1", "value": IDNAT_PS}],
                "name": [{"family": "BERNARD", "given": ["Paul"]}],
            },
        )
    )
    assert runtime.accounts is not None and runtime.auth is not None
    citizen, _ = call(
        runtime.accounts.create("citizen", "claire@example.fr", PASSWORD, patient_id=patient_id)
    )
    professional, _ = call(
        runtime.accounts.create(
            "professional", "paul.bernard@example.fr", PASSWORD, totp=True, practitioner_id=practitioner_id
        )
    )
    redirect_uri = f"http://127.0.0.1:{_free_port()}/retour-appli"
    client, _ = call(
        runtime.auth.clients.register(
            name="Appli fédérée",
            scope="openid fhirUser launch/patient patient/*.rs",
            redirect_uris=[redirect_uri],
        )
    )
    yield Federation(
        base=base,
        runtime=runtime,
        loop=loop,
        providers={p.name: p for p in providers},
        patient=patient_id,
        practitioner=practitioner_id,
        citizen_account=citizen.id,
        professional_account=professional.id,
        client_id=client.client_id,
        redirect_uri=redirect_uri,
    )
    live.stop()


async def create_resource(runtime: Runtime, resource: dict[str, Any]) -> str:
    """Store a resource through the FHIR service as an operator (as ``hygie import`` does)."""
    request = FhirRequest(
        "POST", resource["resourceType"], resource=resource, caller=Caller.operator("tests/federation")
    )
    response = await route(runtime.service, request)
    assert response.status == 201, response.body
    body = orjson.loads(response.body) if isinstance(response.body, bytes) else response.body
    assert isinstance(body, dict)
    return str(body["id"])


# -- the browser, played by httpx -------------------------------------------------------------------


def _form_action(html: str, base: str) -> str:
    m = re.search(r'<form method="post" action="([^"]+)"', html)
    assert m, html[:800]
    return urljoin(base, m.group(1))


def _follow(http: httpx.Client, response: httpx.Response, stop_prefix: str) -> httpx.Response:
    """Follow redirects by hand until one points at ``stop_prefix`` (returned, not followed)."""
    for _ in range(15):
        if response.status_code not in (302, 303):
            return response
        target = urljoin(str(response.url), response.headers["location"])
        if target.startswith(stop_prefix):
            return response
        response = http.get(target)
    raise AssertionError("too many redirects")


def provider_sign_in(http: httpx.Client, authorize_url: str, login: str, stop_prefix: str) -> httpx.Response:
    """On the provider: its sign-in form, then its consent form; returns the redirect back."""
    page = _follow(http, http.get(authorize_url), stop_prefix)
    assert page.status_code == 200, page.text
    assert 'name="login"' in page.text
    response = http.post(
        _form_action(page.text, str(page.url)), data={"login": login, "password": PROVIDER_PASSWORD}
    )
    page = _follow(http, response, stop_prefix)
    if page.status_code == 200:  # the consent form
        assert "/confirm" in page.text
        page = _follow(http, http.post(_form_action(page.text, str(page.url))), stop_prefix)
    assert page.status_code in (302, 303), page.text
    return page


@dataclass
class Started:
    suite: str
    verifier: str
    state: str


def start_authorization(http: httpx.Client, fed: Federation) -> Started:
    """An app's /oauth/authorize: Hygie asks for a sign-in (``/connexion?suite=…``)."""
    verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    r = http.get(
        f"{fed.base}/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": fed.client_id,
            "redirect_uri": fed.redirect_uri,
            "scope": "openid fhirUser launch/patient patient/*.rs",
            "state": state,
            "aud": f"{fed.base}/fhir",
            "code_challenge": pkce.challenge_of(verifier),
            "code_challenge_method": "S256",
        },
    )
    assert r.status_code == 303
    suite = parse_qs(urlsplit(r.headers["location"]).query)["suite"][0]
    return Started(suite, verifier, state)


def federated_sign_in(
    http: httpx.Client, fed: Federation, provider: str, login: str, suite: str, retour: str | None = None
) -> httpx.Response:
    """``/federation/{provider}`` → provider → ``/federation/{provider}/retour``: Hygie's answer."""
    params = {"suite": suite} if retour is None else {"suite": suite, "retour": retour}
    r = http.get(f"{fed.base}/federation/{provider}", params=params)
    assert r.status_code == 303
    url = r.headers["location"]
    issuer = fed.providers[provider].issuer
    assert url.startswith(issuer)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 32
    assert len(query["nonce"]) >= 32
    assert query["acr_values"] == fed.providers[provider].acr_values
    assert query["redirect_uri"] == f"{fed.base}/federation/{provider}/retour"
    back = provider_sign_in(http, url, login, f"{fed.base}/")
    target = urljoin(str(back.url), back.headers["location"])
    assert target.startswith(f"{fed.base}/federation/{provider}/retour?")
    return http.get(target)


def session_subject(http: httpx.Client, fed: Federation) -> dict[str, Any]:
    sid = http.cookies.get("hygie_session", domain="127.0.0.1")
    assert sid
    record = fed.call(fed.runtime.kv.get("session", sid))
    assert record is not None
    subject: dict[str, Any] = record["subject"]
    return subject


def consent_and_token(
    http: httpx.Client, fed: Federation, started: Started, back: httpx.Response
) -> dict[str, Any]:
    """Back at /oauth/authorize: consent (the citizen's own record), then the token."""
    assert back.status_code == 303
    assert back.headers["location"].startswith("/oauth/authorize?")
    consent = http.get(f"{fed.base}{back.headers['location']}")
    assert consent.status_code == 200
    assert "Autoriser Appli fédérée" in consent.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', consent.text)
    assert csrf
    r = http.post(
        f"{fed.base}/oauth/autoriser",
        data={
            "csrf": csrf.group(1),
            "suite": started.suite,
            "patient": fed.patient,
            "decision": "accepter",
            "portee": ["openid", "fhirUser", "launch/patient", "patient/*.rs"],
        },
    )
    assert r.status_code == 303
    assert r.headers["location"].startswith(fed.redirect_uri)
    query = parse_qs(urlsplit(r.headers["location"]).query)
    assert query["state"] == [started.state]
    token = http.post(
        f"{fed.base}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": fed.redirect_uri,
            "client_id": fed.client_id,
            "code_verifier": started.verifier,
        },
    )
    assert token.status_code == 200, token.text
    body: dict[str, Any] = token.json()
    return body


def id_token_claims(fed: Federation, id_token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(httpx.get(f"{fed.base}/oauth/jwks").json())
    claims: dict[str, Any] = jwt.decode(
        id_token, keys, algorithms=["RS256", "RS384", "ES256", "ES384"]
    ).claims
    return claims


# -- tests --------------------------------------------------------------------------------------------


def test_franceconnect_citizen_is_matched_by_identity_pivot_then_by_link(federation: Federation) -> None:
    fed = federation
    issuer = fed.providers["franceconnect"].issuer
    with httpx.Client() as http:
        started = start_authorization(http, fed)
        back = federated_sign_in(http, fed, "franceconnect", "claire", started.suite)
        subject = session_subject(http, fed)
        assert subject["account_id"] == fed.citizen_account
        assert subject["kind"] == "citizen"
        assert subject["fhir_user"] == f"Patient/{fed.patient}"
        assert subject["acr"] == "eidas2"
        assert subject["amr"] == ["fed"]
        assert "hygie_federation" not in {c.name for c in http.cookies.jar if c.value}
        token = consent_and_token(http, fed, started, back)
    assert token["patient"] == fed.patient
    claims = id_token_claims(fed, token["id_token"])
    assert claims["acr"] == "eidas2"
    assert claims["amr"] == ["fed"]
    assert claims["fhirUser"] == f"{fed.base}/fhir/Patient/{fed.patient}"
    read = httpx.get(
        f"{fed.base}/fhir/Patient/{fed.patient}", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert read.status_code == 200
    assert read.json()["name"][0]["family"] == "MARTIN"
    # the identity is now linked: the next sign-in finds the account by (iss, sub)
    assert fed.runtime.accounts is not None
    account = fed.call(fed.runtime.accounts.by_federated(issuer, "claire"))
    assert account is not None
    assert account.id == fed.citizen_account
    with httpx.Client() as http:
        started = start_authorization(http, fed)
        back = federated_sign_in(http, fed, "franceconnect", "claire", started.suite)
        assert back.status_code == 303
        assert session_subject(http, fed)["account_id"] == fed.citizen_account


def test_psc_professional_is_matched_by_idnat_ps(federation: Federation) -> None:
    fed = federation
    with httpx.Client() as http:
        started = start_authorization(http, fed)
        back = federated_sign_in(http, fed, "psc", IDNAT_PS, started.suite)
        assert back.status_code == 303
        assert back.headers["location"].startswith("/oauth/authorize?")
        subject = session_subject(http, fed)
    assert subject["account_id"] == fed.professional_account
    assert subject["kind"] == "professional"
    assert subject["fhir_user"] == f"Practitioner/{fed.practitioner}"
    assert subject["acr"] == "eidas1"
    assert subject["amr"] == ["fed"]
    assert subject["patient"] is None


@pytest.mark.parametrize(
    ("provider", "login", "message"),
    [
        ("franceconnect", "inconnu", "Aucun compte Hygie ne correspond à l’identité transmise"),
        ("psc", "899700218896", "Aucun compte professionnel Hygie ne correspond"),
    ],
)
def test_unknown_identities_get_a_french_error_page(
    federation: Federation, provider: str, login: str, message: str
) -> None:
    with httpx.Client() as http:
        started = start_authorization(http, federation)
        page = federated_sign_in(http, federation, provider, login, started.suite)
        assert page.status_code == 403
        assert message in page.text
        assert "La connexion par un service d’identification a échoué" in page.text
        assert http.cookies.get("hygie_session") is None


def test_a_return_without_its_state_cookie_is_refused(federation: Federation) -> None:
    fed = federation
    with httpx.Client() as http:
        r = http.get(f"{fed.base}/federation/psc")
        url = r.headers["location"]
        back = provider_sign_in(http, url, IDNAT_PS, f"{fed.base}/")
        target = urljoin(str(back.url), back.headers["location"])
    with httpx.Client() as other_browser:  # the same return URL, another browser: login CSRF
        page = other_browser.get(target)
    assert page.status_code == 400
    assert "ouverte dans un autre navigateur" in page.text
    with httpx.Client() as http:
        page = http.get(f"{fed.base}/federation/inconnu")
        assert page.status_code == 404
        assert "n’est pas proposé" in page.text


def test_a_sign_in_started_from_a_portal_page_comes_back_to_it(federation: Federation) -> None:
    """``/ens/documents`` unsigned → ``/connexion?retour=…`` → the provider → ``/ens/documents``."""
    fed = federation
    with httpx.Client() as http:
        asked = http.get(f"{fed.base}/ens/documents")
        assert asked.status_code == 303
        assert asked.headers["location"] == "/connexion?retour=%2Fens%2Fdocuments"
        back = federated_sign_in(http, fed, "franceconnect", "claire", "", retour="/ens/documents")
        assert back.status_code == 303
        assert back.headers["location"] == "/ens/documents"
        assert session_subject(http, fed)["account_id"] == fed.citizen_account
        page = http.get(f"{fed.base}/ens/documents")
        assert page.status_code == 200
        assert "Documents" in page.text
    # a return elsewhere than this site is not followed: the person's portal instead
    for foreign in ("https://evil.example/ens", "//evil.example/ens", "/\\evil.example"):
        with httpx.Client() as http:
            back = federated_sign_in(http, fed, "franceconnect", "claire", "", retour=foreign)
            assert back.status_code == 303
            assert back.headers["location"] == "/ens"
    # the pending authorization of an app comes first, as for a local sign-in
    with httpx.Client() as http:
        started = start_authorization(http, fed)
        back = federated_sign_in(http, fed, "franceconnect", "claire", started.suite, retour="/ens/documents")
        assert back.headers["location"].startswith("/oauth/authorize?")


def test_an_identity_the_holder_removed_is_not_linked_again(federation: Federation) -> None:
    fed = federation
    accounts = fed.runtime.accounts
    assert accounts is not None
    issuer = fed.providers["franceconnect"].issuer
    with httpx.Client() as http:  # linked (by the identity pivot, or already)
        assert federated_sign_in(http, fed, "franceconnect", "claire", "").status_code == 303
    fed.call(accounts.unlink_federated(fed.citizen_account, issuer, "claire"))
    with httpx.Client() as http:
        page = federated_sign_in(http, fed, "franceconnect", "claire", "", retour="/ens/compte")
        assert page.status_code == 403
        assert "Vous avez retiré ce service d’identification de votre compte" in page.text
        assert "/connexion?retour=%2Fens%2Fcompte" in page.text  # back to the sign-in, same return
        assert http.cookies.get("hygie_session") is None
    assert fed.call(accounts.by_federated(issuer, "claire")) is None
    fed.call(accounts.allow_federated(fed.citizen_account, issuer, "claire"))
    with httpx.Client() as http:
        back = federated_sign_in(http, fed, "franceconnect", "claire", "", retour="/ens/compte")
        assert back.status_code == 303 and back.headers["location"] == "/ens/compte"
    linked = fed.call(accounts.by_federated(issuer, "claire"))
    assert linked is not None and linked.id == fed.citizen_account
    methods = [(s.method, s.via) for s in fed.call(accounts.sign_ins(fed.citizen_account))]
    assert methods[0] == ("fed", issuer)


def test_the_id_token_nonce_and_audience_are_checked(federation: Federation) -> None:
    """The relying party itself, on a real code: a wrong nonce or client id is refused."""
    provider = federation.providers["psc"]
    redirect_uri = f"{federation.base}/federation/psc/retour"

    def real_code(client: FederationClient) -> tuple[dict[str, str], str]:
        begun = asyncio.run(client.start(redirect_uri))
        with httpx.Client() as http:
            back = provider_sign_in(http, begun.url, IDNAT_PS, f"{federation.base}/")
        params = {k: v[0] for k, v in parse_qs(urlsplit(back.headers["location"]).query).items()}
        assert params["state"] == begun.state
        return params, begun.verifier

    client = FederationClient(provider)
    params, verifier = real_code(client)
    with pytest.raises(FederationError, match="nonce"):
        asyncio.run(client.finish(params, redirect_uri=redirect_uri, nonce="x" * 43, verifier=verifier))
    # a code replayed: the provider refuses it at the token endpoint
    with pytest.raises(FederationError, match="token endpoint"):
        asyncio.run(client.finish(params, redirect_uri=redirect_uri, nonce="x" * 43, verifier=verifier))
    # a response claiming another issuer (RFC 9207 mix-up)
    with pytest.raises(FederationError, match="response iss"):
        asyncio.run(
            client.finish(
                {**params, "iss": "https://evil.example"},
                redirect_uri=redirect_uri,
                nonce="n",
                verifier=verifier,
            )
        )
    # the discovery document must name the configured issuer
    lying = FederationProvider(
        name="psc",
        label="x",
        issuer=provider.issuer + "/autre",
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        kind="professional",
        discovery_url=f"{provider.issuer}/.well-known/openid-configuration",
    )
    with pytest.raises(FederationError, match="discovery issuer"):
        asyncio.run(FederationClient(lying).start(redirect_uri))
