"""The authorisation server's flows and the attacks RFC 6749/6750/7636 and SMART rule out."""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from hygie.auth import pkce
from hygie.auth.errors import OAuthError
from hygie.auth.scopes import parse_scopes
from hygie.auth.server import AuthorizationServer, LaunchContext, Subject
from hygie.auth.tokens import InvalidToken
from hygie.stores.kv import MemoryKeyValueStore

pytestmark = pytest.mark.anyio

ISSUER = "http://127.0.0.1:8000"
FHIR = f"{ISSUER}/fhir"
REDIRECT = "https://app.example.fr/callback"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


class Clock:
    def __init__(self) -> None:
        self.now = time.time_ns() // 1000

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1_000_000)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def server(clock: Clock) -> AuthorizationServer:
    return AuthorizationServer(MemoryKeyValueStore(clock), issuer=ISSUER, fhir_base=FHIR, clock=clock)


CITIZEN = Subject("acc-1", "citizen", fhir_user="Patient/p1", patient="p1")
DOCTOR = Subject("acc-2", "professional", fhir_user="Practitioner/dr")


async def public_app(
    server: AuthorizationServer, scope: str = "launch openid fhirUser patient/*.rs offline_access"
) -> str:
    client, _ = await server.clients.register(
        name="App", scope=scope, redirect_uris=[REDIRECT], launch="both"
    )
    return client.client_id


def params(client_id: str, **extra: str) -> dict[str, str]:
    base = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid fhirUser patient/Observation.rs offline_access",
        "state": secrets.token_urlsafe(16),
        "aud": FHIR,
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    base.update(extra)
    return base


def code_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["code"][0]


async def authorize(
    server: AuthorizationServer, client_id: str, subject: Subject = CITIZEN, **extra: str
) -> str:
    request = await server.validate_authorize(params(client_id, **extra))
    return code_of(await server.issue_code(request, subject))


async def exchange(
    server: AuthorizationServer, client_id: str, code: str, verifier: str = VERIFIER
) -> dict[str, Any]:
    return await server.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": client_id,
            "code_verifier": verifier,
        },
        None,
    )


def test_pkce_rfc7636_vector() -> None:
    assert pkce.challenge_of(VERIFIER) == CHALLENGE
    assert pkce.verify(VERIFIER, CHALLENGE)
    assert not pkce.verify("x" * 43, CHALLENGE)
    assert not pkce.verify(None, CHALLENGE)


async def test_code_flow_gives_tokens_with_patient_context(server: AuthorizationServer) -> None:
    app = await public_app(server)
    tokens = await exchange(server, app, await authorize(server, app))
    assert tokens["token_type"] == "Bearer"
    assert tokens["patient"] == "p1"
    assert tokens["scope"].split() == ["fhirUser", "offline_access", "openid", "patient/Observation.rs"]
    assert "refresh_token" in tokens
    access = await server.tokens.verify(tokens["access_token"])
    assert access.patient == "p1"
    assert access.fhir_user == "Patient/p1"
    claims = jwt.decode(tokens["id_token"], await server.keys.published()).claims
    assert claims["aud"] == app
    assert claims["fhirUser"] == f"{FHIR}/Patient/p1"


async def test_scopes_are_cut_to_the_registration(server: AuthorizationServer) -> None:
    client, _ = await server.clients.register(
        name="Narrow", scope="openid patient/Observation.rs", redirect_uris=[REDIRECT]
    )
    request = await server.validate_authorize(params(client.client_id, scope="openid patient/*.cruds"))
    assert request.scopes.text == "openid patient/Observation.rs"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge_method": "plain", "code_challenge": VERIFIER}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "patient/Observation.xyz"}, "invalid_scope"),
        ({"aud": "https://evil.example/fhir"}, "invalid_request"),
        ({"launch": "unknown"}, "invalid_request"),
    ],
)
async def test_bad_authorize_requests(
    server: AuthorizationServer, change: dict[str, str], error: str
) -> None:
    app = await public_app(server)
    with pytest.raises(OAuthError) as caught:
        await server.validate_authorize(params(app, **change))
    assert caught.value.error == error
    assert caught.value.redirect  # client and redirect URI are valid: the error goes back to the app


async def test_redirect_uri_must_match_exactly_and_is_never_used_otherwise(
    server: AuthorizationServer,
) -> None:
    app = await public_app(server)
    for uri in (
        REDIRECT + "/",
        REDIRECT + "?x=1",
        "https://app.example.fr/callbacks",
        "https://evil.example/cb",
    ):
        with pytest.raises(OAuthError) as caught:
            await server.validate_authorize(params(app, redirect_uri=uri))
        assert not caught.value.redirect


async def test_wrong_or_missing_verifier_is_refused(server: AuthorizationServer) -> None:
    app = await public_app(server)
    with pytest.raises(OAuthError) as caught:
        await exchange(server, app, await authorize(server, app), verifier="A" * 43)
    assert caught.value.error == "invalid_grant"
    with pytest.raises(OAuthError):
        await exchange(server, app, await authorize(server, app), verifier="")


async def test_code_is_single_use_and_reuse_revokes_its_tokens(server: AuthorizationServer) -> None:
    app = await public_app(server)
    code = await authorize(server, app)
    tokens = await exchange(server, app, code)
    with pytest.raises(OAuthError) as caught:
        await exchange(server, app, code)
    assert caught.value.error == "invalid_grant"
    with pytest.raises(InvalidToken):
        await server.tokens.verify(tokens["access_token"])


async def test_expired_code(server: AuthorizationServer, clock: Clock) -> None:
    app = await public_app(server)
    code = await authorize(server, app)
    clock.advance(61)
    with pytest.raises(OAuthError):
        await exchange(server, app, code)


async def test_code_bound_to_client_and_redirect(server: AuthorizationServer) -> None:
    app = await public_app(server)
    other = await public_app(server)
    with pytest.raises(OAuthError):
        await exchange(server, other, await authorize(server, app))
    code = await authorize(server, app)
    with pytest.raises(OAuthError):
        await server.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "client_id": app,
                "redirect_uri": "https://app.example.fr/other",
                "code_verifier": VERIFIER,
            },
            None,
        )


async def test_refresh_rotation_and_reuse_revokes_the_grant(server: AuthorizationServer) -> None:
    app = await public_app(server)
    first = await exchange(server, app, await authorize(server, app))
    second = await server.token(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": app}, None
    )
    assert second["refresh_token"] != first["refresh_token"]
    await server.tokens.verify(second["access_token"])
    with pytest.raises(OAuthError) as caught:
        await server.token(
            {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": app}, None
        )
    assert "reuse" in caught.value.description
    for token in (first["access_token"], second["access_token"]):
        with pytest.raises(InvalidToken):
            await server.tokens.verify(token)
    with pytest.raises(OAuthError):
        await server.token(
            {"grant_type": "refresh_token", "refresh_token": second["refresh_token"], "client_id": app}, None
        )


async def test_refresh_may_only_narrow(server: AuthorizationServer) -> None:
    app = await public_app(server)
    first = await exchange(server, app, await authorize(server, app))
    with pytest.raises(OAuthError):
        await server.token(
            {
                "grant_type": "refresh_token",
                "refresh_token": first["refresh_token"],
                "client_id": app,
                "scope": "patient/*.cruds",
            },
            None,
        )


def backend_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "pms-1", "alg": "RS384"})


def assertion(
    client_id: str,
    key: RSAKey | ECKey,
    *,
    alg: str = "RS384",
    aud: str = f"{ISSUER}/oauth/token",
    exp_in: int = 240,
    jti: str | None = None,
) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "exp": now + exp_in,
        "jti": jti or secrets.token_hex(8),
    }
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=[alg])


async def backend(server: AuthorizationServer, key: RSAKey) -> str:
    client, _ = await server.clients.register(
        name="Logiciel de cabinet",
        scope="system/DocumentReference.cruds system/Patient.rs",
        jwks={"keys": [key.as_dict(private=False)]},
    )
    return client.client_id


def cc_form(client_id: str, token: str, scope: str = "system/DocumentReference.c") -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": token,
    }


async def test_backend_services_client_credentials(server: AuthorizationServer) -> None:
    key = backend_key()
    cid = await backend(server, key)
    out = await server.token(
        cc_form(cid, assertion(cid, key), "system/DocumentReference.c system/Observation.rs"), None
    )
    assert out["scope"] == "system/DocumentReference.c"
    assert out["expires_in"] <= 300
    access = await server.tokens.verify(out["access_token"])
    assert access.kind == "system"


@pytest.mark.parametrize("attack", ["replay", "wrong_key", "wrong_aud", "too_long", "none_alg"])
async def test_backend_assertion_attacks(server: AuthorizationServer, attack: str) -> None:
    key = backend_key()
    cid = await backend(server, key)
    if attack == "replay":
        token = assertion(cid, key, jti="same")
        await server.token(cc_form(cid, token), None)
        token = assertion(cid, key, jti="same")
    elif attack == "wrong_key":
        token = assertion(cid, backend_key())
    elif attack == "wrong_aud":
        token = assertion(cid, key, aud="https://other/token")
    elif attack == "too_long":
        token = assertion(cid, key, exp_in=3600)
    else:
        header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
        body = (
            base64.urlsafe_b64encode(
                orjson.dumps(
                    {
                        "iss": cid,
                        "sub": cid,
                        "aud": f"{ISSUER}/oauth/token",
                        "exp": int(time.time()) + 60,
                        "jti": "n",
                    }
                )
            )
            .rstrip(b"=")
            .decode()
        )
        token = f"{header}.{body}."
    with pytest.raises(OAuthError) as caught:
        await server.token(cc_form(cid, token), None)
    assert caught.value.error == "invalid_client"
    assert caught.value.status == 401


async def test_access_token_attacks(server: AuthorizationServer, clock: Clock) -> None:
    app = await public_app(server)
    good = (await exchange(server, app, await authorize(server, app)))["access_token"]
    header, body, sig = good.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["patient"] = "someone-else"
    tampered_body = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    other_key = RSAKey.generate_key(2048, parameters={"kid": "evil"})
    forged = jwt.encode({"alg": "RS256", "kid": "evil"}, claims, other_key)
    wrong_aud = jwt.encode(
        {"alg": "RS256", "kid": (await server.keys.current()).kid},
        {**claims, "aud": "https://other/fhir"},
        await server.keys.current(),
    )
    for token in (f"{header}.{tampered_body}.{sig}", f"{none_header}.{body}.", forged, wrong_aud, "garbage"):
        with pytest.raises(InvalidToken):
            await server.tokens.verify(token)
    clock.advance(3600 + 120)
    with pytest.raises(InvalidToken):
        await server.tokens.verify(good)


async def test_key_rotation_keeps_old_tokens_valid(server: AuthorizationServer) -> None:
    app = await public_app(server)
    before = (await exchange(server, app, await authorize(server, app)))["access_token"]
    await server.keys.rotate()
    after = (await exchange(server, app, await authorize(server, app)))["access_token"]
    await server.tokens.verify(before)
    await server.tokens.verify(after)
    assert len((await server.keys.jwks())["keys"]) == 2


async def test_introspection_and_revocation(server: AuthorizationServer) -> None:
    app = await public_app(server)
    tokens = await exchange(server, app, await authorize(server, app))
    info = await server.introspect({"token": tokens["access_token"], "client_id": app}, None)
    assert info["active"] is True
    assert info["patient"] == "p1"
    await server.revoke({"token": tokens["access_token"], "client_id": app}, None)
    assert (await server.introspect({"token": tokens["access_token"], "client_id": app}, None)) == {
        "active": False
    }
    await server.revoke({"token": tokens["refresh_token"], "client_id": app}, None)
    with pytest.raises(OAuthError):
        await server.token(
            {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": app}, None
        )


async def test_suspended_client_tokens_stop_working(server: AuthorizationServer) -> None:
    app = await public_app(server)
    tokens = await exchange(server, app, await authorize(server, app))
    await server.revoke_grants_of_client(app)
    server.tokens._cache.items.clear()
    with pytest.raises(InvalidToken):
        await server.tokens.verify(tokens["access_token"])


async def test_ehr_launch_context_reaches_the_token(server: AuthorizationServer) -> None:
    app = await public_app(server, scope="launch openid fhirUser patient/*.rs user/*.rs")
    launch = await server.create_launch(LaunchContext(patient="p9", encounter="e1"), account_id="acc-2")
    request = await server.validate_authorize(
        params(app, launch=launch, scope="launch openid fhirUser patient/*.rs")
    )
    assert request.launch is not None
    tokens = await exchange(server, app, code_of(await server.issue_code(request, DOCTOR)))
    assert tokens["patient"] == "p9"
    assert tokens["encounter"] == "e1"
    assert (await server.tokens.verify(tokens["access_token"])).fhir_user == "Practitioner/dr"


async def test_standalone_launch_asks_for_a_patient(server: AuthorizationServer) -> None:
    app = await public_app(server, scope="launch/patient openid fhirUser patient/*.rs")
    request = await server.validate_authorize(params(app, scope="launch/patient openid patient/*.rs"))
    assert request.needs_patient_choice
    tokens = await exchange(server, app, code_of(await server.issue_code(request, DOCTOR, patient="p7")))
    assert tokens["patient"] == "p7"


async def test_confidential_symmetric_client(server: AuthorizationServer) -> None:
    client, secret = await server.clients.register(
        name="Web", scope="openid user/*.rs", redirect_uris=[REDIRECT], with_secret=True
    )
    assert secret
    request = await server.validate_authorize(params(client.client_id, scope="openid user/*.rs"))
    code = code_of(await server.issue_code(request, DOCTOR))
    basic = "Basic " + base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
    }
    out = await server.token(form, basic)
    assert out["scope"] == "openid user/*.rs"
    bad = "Basic " + base64.b64encode(f"{client.client_id}:wrong".encode()).decode()
    with pytest.raises(OAuthError) as caught:
        await server.token(form, bad)
    assert caught.value.status == 401


def test_scope_grammar() -> None:
    s = parse_scopes("patient/Observation.read user/*.* system/Patient.rs launch openid")
    assert s.permits("patient", "Observation", "search")[0]
    assert not s.permits("patient", "Observation", "create")[0]
    assert s.permits("user", "Condition", "delete")[0]
    v2 = parse_scopes(
        "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"
    )
    ok, restrictions = v2.permits("patient", "Observation", "read")
    assert ok
    assert restrictions == [
        (("category", "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"),)
    ]
    from hygie.auth.scopes import InvalidScope

    for bad in ("patient/Observation.sr", "patient/Observation.rr", "patient/Nope.rs", "doctor/*.rs"):
        with pytest.raises(InvalidScope):
            parse_scopes(bad)


async def test_a_verified_token_is_remembered_but_still_expires_and_can_be_revoked(
    server: AuthorizationServer, clock: Clock
) -> None:
    """Verification is kept per token text for speed; expiry, revocation and a suspended client
    still apply to the remembered token."""
    client, _ = await server.clients.register(
        name="svc", scope="system/*.rs", with_secret=True, client_id="svc"
    )
    out = await server.service_token(client.client_id, None, 120)
    token = out["access_token"]
    first = await server.tokens.verify(token)
    assert await server.tokens.verify(token) is first  # remembered
    await server.tokens.revoke_token(first.jti, first.expires)
    with pytest.raises(InvalidToken, match="revoked"):
        await server.tokens.verify(token)
    other = (await server.service_token(client.client_id, None, 120))["access_token"]
    await server.tokens.verify(other)
    clock.advance(120 + 31)
    with pytest.raises(InvalidToken):
        await server.tokens.verify(other)
    fresh = (await server.service_token(client.client_id, None, 120))["access_token"]
    await server.tokens.verify(fresh)
    await server.clients.set_status(client.client_id, "suspended")
    time.sleep(1.1)  # past the one-second status cache (monotonic time)
    with pytest.raises(InvalidToken, match="suspended"):
        await server.tokens.verify(fresh)
